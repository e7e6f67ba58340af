"""`python -m infra.publish_web`: the web client built for a deployed stage, checked offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.publish_web import WEB_DIR, PublishError, build, main, spa_config

OUTPUTS = [
    {"OutputKey": "UserPoolId", "OutputValue": "eu-west-1_Ab12"},
    {"OutputKey": "UserPoolClientId", "OutputValue": "3n4b5urk1ft4fl3mg5e62d9ado"},
    {"OutputKey": "Region", "OutputValue": "eu-west-1"},
    {"OutputKey": "SpaBucketName", "OutputValue": "photosky-dev-spa-210987654321"},
    {"OutputKey": "SpaDistributionId", "OutputValue": "E2QWRUHAPOMQZL"},
    {"OutputKey": "EndpointURL", "OutputValue": "https://abc123.execute-api.eu-west-1.amazonaws.com/api/"},
]
PLAIN = {item["OutputKey"]: item["OutputValue"] for item in OUTPUTS}


def test_config_points_the_spa_at_the_stage(tmp_path: Path) -> None:
    out = build(PLAIN, tmp_path / "web")
    assert json.loads((out / "config.json").read_text()) == {
        "api_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/api",
        "region": "eu-west-1",
        "user_pool_id": "eu-west-1_Ab12",
        "user_pool_client_id": "3n4b5urk1ft4fl3mg5e62d9ado",
        "cognito_endpoint": "https://cognito-idp.eu-west-1.amazonaws.com/",
        "environment": "aws",
    }
    shipped = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    sources = {path.relative_to(WEB_DIR).as_posix() for path in WEB_DIR.rglob("*") if path.is_file()}
    assert shipped == sources | {"config.json"}
    assert {"index.html", "app.js", "auth.js", "api.js", "styles.css"} <= shipped
    assert (out / "app.js").read_bytes() == (WEB_DIR / "app.js").read_bytes()


def test_dotfiles_are_left_out_and_a_rebuild_starts_clean(tmp_path: Path) -> None:
    web = tmp_path / "src"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html>")
    (web / ".env").write_text("SECRET=1")
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.js").write_text("old release")
    build(PLAIN, out, web_dir=web)
    assert sorted(path.name for path in out.iterdir()) == ["config.json", "index.html"]


def test_the_api_url_can_be_given_for_the_chalice_deploy_path() -> None:
    resources_only = {k: v for k, v in PLAIN.items() if k != "EndpointURL"}
    with pytest.raises(PublishError, match="EndpointURL"):
        spa_config(resources_only)
    config = spa_config(resources_only, "https://xyz.execute-api.eu-west-1.amazonaws.com/api")
    assert config["api_url"] == "https://xyz.execute-api.eu-west-1.amazonaws.com/api"


def test_missing_outputs_are_named() -> None:
    with pytest.raises(PublishError) as caught:
        spa_config({"Region": "eu-west-1", "EndpointURL": PLAIN["EndpointURL"]})
    for name in ("UserPoolId", "UserPoolClientId", "SpaBucketName", "SpaDistributionId"):
        assert name in str(caught.value)


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"EndpointURL": "http://abc123.execute-api.eu-west-1.amazonaws.com/api/"}, "https"),
        ({"EndpointURL": "https://x.test/api?q=<script>"}, "https"),
        ({"Region": "Ireland"}, "region"),
    ],
)
def test_bad_values_are_refused(override: dict[str, str], problem: str) -> None:
    with pytest.raises(PublishError, match=problem):
        spa_config({**PLAIN, **override})


def test_the_command_writes_the_folder_and_prints_the_publish_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(OUTPUTS))
    out = tmp_path / "site"
    assert main(["--outputs", str(outputs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"aws s3 sync {out}/ s3://photosky-dev-spa-210987654321/ --delete --cache-control no-cache" in printed
    assert "aws cloudfront create-invalidation --distribution-id E2QWRUHAPOMQZL --paths '/*'" in printed
    assert (out / "config.json").exists()

    outputs.write_text("[{]")
    assert main(["--outputs", str(outputs), "--out", str(out)]) == 1
    assert "infra.publish_web: error:" in capsys.readouterr().err
