"""`python -m infra.publish_web`: the web client built for a deployed stage, checked offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.config import Settings
from infra.publish_web import CHALICE_CONFIG, WEB_DIR, PublishError, api_max_upload_bytes, build, main, spa_config
from tests.support.web_limits import expected_limits

OUTPUTS = [
    {"OutputKey": "UserPoolId", "OutputValue": "eu-west-1_Ab12"},
    {"OutputKey": "UserPoolClientId", "OutputValue": "3n4b5urk1ft4fl3mg5e62d9ado"},
    {"OutputKey": "Region", "OutputValue": "eu-west-1"},
    {"OutputKey": "SpaBucketName", "OutputValue": "photosky-dev-spa-210987654321"},
    {"OutputKey": "SpaDistributionId", "OutputValue": "E2QWRUHAPOMQZL"},
    {"OutputKey": "EndpointURL", "OutputValue": "https://abc123.execute-api.eu-west-1.amazonaws.com/api/"},
    {"OutputKey": "WebsocketUrl", "OutputValue": "wss://def456.execute-api.eu-west-1.amazonaws.com/api"},
]
PLAIN = {item["OutputKey"]: item["OutputValue"] for item in OUTPUTS}


def test_config_points_the_spa_at_the_stage(tmp_path: Path) -> None:
    out = build(PLAIN, tmp_path / "web")
    assert json.loads((out / "config.json").read_text()) == {
        "api_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/api",
        "ws_url": "wss://def456.execute-api.eu-west-1.amazonaws.com/api",
        "region": "eu-west-1",
        "user_pool_id": "eu-west-1_Ab12",
        "user_pool_client_id": "3n4b5urk1ft4fl3mg5e62d9ado",
        "cognito_endpoint": "https://cognito-idp.eu-west-1.amazonaws.com/",
        "environment": "aws",
        # The API's own limits; the upload size is the dev stage's PHOTOSKY_MAX_UPLOAD_BYTES.
        "limits": expected_limits(dev_max_upload_bytes()),
    }
    shipped = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    sources = {path.relative_to(WEB_DIR).as_posix() for path in WEB_DIR.rglob("*") if path.is_file()}
    assert shipped == sources | {"config.json"}
    assert {"index.html", "app.js", "auth.js", "api.js", "dom.js", "styles.css"} <= shipped
    assert {"views/gallery.js", "views/photo.js", "views/upload.js", "views/auth.js", "views/profile.js"} <= shipped
    for name in ("app.js", "views/gallery.js"):
        assert (out / name).read_bytes() == (WEB_DIR / name).read_bytes()


def dev_max_upload_bytes() -> int:
    """What the dev stage's API is configured with, read the way Chalice merges .chalice/config.json."""
    config = json.loads(CHALICE_CONFIG.read_text())
    stage = config["stages"]["dev"].get("environment_variables", {})
    return int(stage.get("PHOTOSKY_MAX_UPLOAD_BYTES") or config["environment_variables"]["PHOTOSKY_MAX_UPLOAD_BYTES"])


def write_chalice_config(path: Path, top: dict[str, str], dev: dict[str, str]) -> Path:
    path.write_text(
        json.dumps(
            {
                "version": "2.0",
                "app_name": "photosky",
                "environment_variables": top,
                "stages": {"dev": {"environment_variables": dev}, "prod": {}},
            }
        )
    )
    return path


def test_the_upload_limit_is_the_stages_own(tmp_path: Path) -> None:
    config = write_chalice_config(
        tmp_path / "config.json", {"PHOTOSKY_MAX_UPLOAD_BYTES": "1000"}, {"PHOTOSKY_MAX_UPLOAD_BYTES": "2000"}
    )
    assert api_max_upload_bytes("dev", config) == 2000  # the stage's value wins, as in Chalice
    assert api_max_upload_bytes("prod", config) == 1000
    assert spa_config(PLAIN, chalice_config=config)["limits"]["max_upload_bytes"] == 2000
    prod = {**PLAIN, "SpaBucketName": "photosky-prod-spa-210987654321-eu-west-1"}
    assert spa_config(prod, chalice_config=config)["limits"]["max_upload_bytes"] == 1000
    unset = write_chalice_config(tmp_path / "unset.json", {}, {})
    assert api_max_upload_bytes("dev", unset) == Settings.max_upload_bytes  # the API's default


@pytest.mark.parametrize("value", ["25MB", "0", "-1"])
def test_a_bad_upload_limit_is_refused(tmp_path: Path, value: str) -> None:
    config = write_chalice_config(tmp_path / "config.json", {}, {"PHOTOSKY_MAX_UPLOAD_BYTES": value})
    with pytest.raises(PublishError, match="PHOTOSKY_MAX_UPLOAD_BYTES"):
        api_max_upload_bytes("dev", config)


def test_the_stage_comes_from_the_spa_bucket(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="stage"):
        spa_config({**PLAIN, "SpaBucketName": "my-own-bucket"})
    with pytest.raises(PublishError, match="stage 'qa'"):
        spa_config({**PLAIN, "SpaBucketName": "photosky-qa-spa-210987654321-eu-west-1"})


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


def test_without_a_websocket_url_the_spa_polls() -> None:
    # web/live.js never connects without `ws_url`: the `chalice deploy` path until --ws-url is given.
    resources_only = {k: v for k, v in PLAIN.items() if k != "WebsocketUrl"}
    assert "ws_url" not in spa_config(resources_only)
    given = spa_config(resources_only, ws_url="wss://xyz.execute-api.eu-west-1.amazonaws.com/api/")
    assert given["ws_url"] == "wss://xyz.execute-api.eu-west-1.amazonaws.com/api"
    # --ws-url wins over the output, as --api-url does.
    assert spa_config(PLAIN, ws_url="wss://xyz.execute-api.eu-west-1.amazonaws.com/api")["ws_url"].startswith(
        "wss://xyz."
    )


@pytest.mark.parametrize(
    "ws_url",
    [
        "ws://def456.execute-api.eu-west-1.amazonaws.com/api",  # the token would travel in clear
        "https://def456.execute-api.eu-west-1.amazonaws.com/api",
        "wss://def456.execute-api.eu-west-1.amazonaws.com/api?token=x",  # the SPA adds the token itself
        "wss://x.test/api<script>",
    ],
)
def test_a_bad_websocket_url_is_refused(ws_url: str) -> None:
    with pytest.raises(PublishError, match="wss URL"):
        spa_config({**PLAIN, "WebsocketUrl": ws_url})
    with pytest.raises(PublishError, match="wss URL"):
        spa_config(PLAIN, ws_url=ws_url)


def test_the_command_takes_the_websocket_url_for_the_chalice_deploy_path(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps([o for o in OUTPUTS if o["OutputKey"] not in ("EndpointURL", "WebsocketUrl")]))
    out = tmp_path / "site"
    api, ws = (
        "https://xyz.execute-api.eu-west-1.amazonaws.com/api",
        "wss://uvw.execute-api.eu-west-1.amazonaws.com/api/",
    )
    assert main(["--outputs", str(outputs), "--out", str(out), "--api-url", api, "--ws-url", ws]) == 0
    assert json.loads((out / "config.json").read_text())["ws_url"] == ws.rstrip("/")


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
