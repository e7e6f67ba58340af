from __future__ import annotations

import pytest

from chalicelib.config import GIB, ConfigError, Settings, user_pool_arns

BASE = {"TABLE_NAME": "t", "BUCKET_NAME": "b", "AWS_REGION": "eu-west-1", "PHOTOSKY_CURSOR_SECRET": "s" * 16}


def test_defaults_apply_when_only_the_required_variables_are_set() -> None:
    settings = Settings.from_env(BASE)
    assert (settings.table_name, settings.bucket_name, settings.region) == ("t", "b", "eu-west-1")
    assert settings.quota_bytes == 10 * GIB


def test_lambda_region_wins_over_the_cli_default_region() -> None:
    assert Settings.from_env({**BASE, "AWS_DEFAULT_REGION": "us-east-1"}).region == "eu-west-1"
    env = {k: v for k, v in BASE.items() if k != "AWS_REGION"}
    assert Settings.from_env({**env, "AWS_DEFAULT_REGION": "us-east-1"}).region == "us-east-1"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"PHOTOSKY_QUOTA_PHOTOS": "many", "PHOTOSKY_QUOTA_BYTES": "-1"})
    message = str(caught.value)
    for expected in ("TABLE_NAME", "BUCKET_NAME", "AWS_REGION", "PHOTOSKY_QUOTA_PHOTOS", "PHOTOSKY_QUOTA_BYTES"):
        assert expected in message


def test_settings_are_immutable() -> None:
    settings = Settings.from_env(BASE)
    with pytest.raises(AttributeError):
        settings.table_name = "other"  # type: ignore[misc]


def test_user_pool_arns_accept_a_comma_separated_list() -> None:
    one = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_A"
    two = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_B"
    assert user_pool_arns({"COGNITO_USER_POOL_ARN": f"{one}, {two}"}) == [one, two]


@pytest.mark.parametrize("value", ["", " , ", "us-east-1_A", "arn:aws:s3:::bucket"])
def test_user_pool_arns_refuse_missing_or_malformed_values(value: str) -> None:
    with pytest.raises(ConfigError, match="COGNITO_USER_POOL_ARN"):
        user_pool_arns({"COGNITO_USER_POOL_ARN": value})


def test_the_cursor_key_may_come_as_a_secret_arn_instead() -> None:
    env = {k: v for k, v in BASE.items() if k != "PHOTOSKY_CURSOR_SECRET"}
    settings = Settings.from_env({**env, "PHOTOSKY_CURSOR_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x"})
    assert settings.cursor_secret is None
    assert settings.cursor_secret_arn == "arn:aws:secretsmanager:eu-west-1:1:secret:x"
    with pytest.raises(ConfigError, match="PHOTOSKY_CURSOR_SECRET or PHOTOSKY_CURSOR_SECRET_ARN"):
        Settings.from_env(env)
    with pytest.raises(ConfigError, match="at least 16"):
        Settings.from_env({**env, "PHOTOSKY_CURSOR_SECRET": "short"})


POOL_ARN = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Pool"


def test_realtime_is_off_unless_a_management_url_is_set() -> None:
    settings = Settings.from_env(BASE)
    assert settings.ws_management_url is None
    assert settings.ws_max_connections == 10
    assert settings.jwks_url is None
    assert settings.token_issuer is None


def test_realtime_settings_derive_the_issuer_and_jwks_url_from_the_pool() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "AWS_REGION": "us-east-1",  # the pool's own region names its issuer, whatever the Lambda's
            "COGNITO_USER_POOL_ARN": POOL_ARN,
            "PHOTOSKY_WS_MANAGEMENT_URL": "https://abc123.execute-api.eu-west-1.amazonaws.com/dev/",
            "PHOTOSKY_USER_POOL_CLIENT_ID": "spaclient",
            "PHOTOSKY_WS_MAX_CONNECTIONS": "3",
        }
    )
    assert settings.ws_management_url == "https://abc123.execute-api.eu-west-1.amazonaws.com/dev"
    assert settings.user_pool_client_id == "spaclient"
    assert settings.token_issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"
    assert settings.jwks_url == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool/.well-known/jwks.json"
    assert settings.ws_max_connections == 3


def test_the_dev_stack_points_the_jwks_url_at_its_emulated_pool() -> None:
    url = "http://127.0.0.1:5001/eu-west-1_Pool/.well-known/jwks.json"
    env = {**BASE, "COGNITO_USER_POOL_ARN": POOL_ARN, "PHOTOSKY_JWKS_URL": url}
    assert Settings.from_env(env).jwks_url == url


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PHOTOSKY_WS_MANAGEMENT_URL", "wss://abc.execute-api.eu-west-1.amazonaws.com/dev"),
        ("PHOTOSKY_WS_MANAGEMENT_URL", "https://abc.example/dev?x=1"),
        ("PHOTOSKY_JWKS_URL", "file:///etc/passwd"),
        ("PHOTOSKY_WS_MAX_CONNECTIONS", "0"),
        ("PHOTOSKY_WS_MAX_CONNECTIONS", "ten"),
    ],
)
def test_malformed_realtime_settings_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**BASE, name: value})
