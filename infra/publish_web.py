"""`python -m infra.publish_web --outputs outputs.json`: the web client, built for the SPA bucket of a deployed stage.

Takes the stack's outputs (`aws cloudformation describe-stacks --stack-name photosky-dev --query
"Stacks[0].Outputs"`), copies web/ (subfolders included) to build/web/ and writes build/web/config.json, which
points the same SPA the dev stack serves at the stage's API and Cognito user pool, with the limits that stage's API
enforces (its PHOTOSKY_MAX_UPLOAD_BYTES and PHOTOSKY_TRASH_DAYS in .chalice/config.json, and the API's own
constants). Nothing is uploaded from here: it prints the two AWS CLI commands that publish the folder (`aws s3 sync`
to the SPA bucket, a CloudFront invalidation).

For the `chalice deploy` path the resources stack has no API output: pass `--api-url` (the URL `chalice deploy`
printed), and `--ws-url` (its "Websocket API URL") for live status. Without a WebSocket URL (no `WebsocketUrl`
output, no `--ws-url`), config.json has no `ws_url` and the SPA polls uploads as before.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chalicelib.config import Settings
from devstack.web import client_limits
from infra.configure_stage import ConfigureError, read_outputs

PROJECT_DIR = Path(__file__).resolve().parent.parent
WEB_DIR = PROJECT_DIR / "web"
CHALICE_CONFIG = PROJECT_DIR / ".chalice" / "config.json"
REQUIRED_OUTPUTS = ("UserPoolId", "UserPoolClientId", "Region", "SpaBucketName", "SpaDistributionId")
# infra/resources.yaml names the SPA bucket photosky-<stage>-spa-<account>-<region>.
_SPA_BUCKET = re.compile(r"^photosky-(?P<stage>[a-z0-9]+)-spa-")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_API_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~/-]*)?$")
# The SPA appends `?token=...` itself: no query here.
_WS_URL = re.compile(r"^wss://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~/-]*)?$")


class PublishError(Exception):
    pass


def stage_of(outputs: Mapping[str, str]) -> str:
    """The stage a stack serves, read from its SPA bucket's name."""
    match = _SPA_BUCKET.match(outputs.get("SpaBucketName", ""))
    if match is None:
        raise PublishError(f"cannot tell the stage from SpaBucketName {outputs.get('SpaBucketName')!r}")
    return match["stage"]


def _stage_setting(stage: str, name: str, default: int, chalice_config: Path) -> int:
    """A positive whole-number setting of the stage's API as `chalice package`/`deploy` hand it over, or `default`."""
    from chalice.config import Config

    document: dict[str, Any] = json.loads(chalice_config.read_text())
    if stage not in document.get("stages", {}):
        raise PublishError(f"stage {stage!r} is not in {chalice_config.name}")
    # Chalice's own merge: top level, then the stage, then the function's settings.
    environment = Config(
        chalice_stage=stage, function_name="api_handler", config_from_disk=document
    ).environment_variables
    raw = environment.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise PublishError(f"{name} of stage {stage!r} is not a positive number: {raw!r}")
    return int(raw)


def api_max_upload_bytes(stage: str, chalice_config: Path = CHALICE_CONFIG) -> int:
    """The stage's PHOTOSKY_MAX_UPLOAD_BYTES as `chalice package`/`deploy` hand it to the API, or the default."""
    return _stage_setting(stage, "PHOTOSKY_MAX_UPLOAD_BYTES", Settings.max_upload_bytes, chalice_config)


def api_trash_days(stage: str, chalice_config: Path = CHALICE_CONFIG) -> int:
    """The stage's PHOTOSKY_TRASH_DAYS (how long the trash keeps a photo), or the default."""
    return _stage_setting(stage, "PHOTOSKY_TRASH_DAYS", Settings.trash_days, chalice_config)


def spa_config(
    outputs: Mapping[str, str],
    api_url: str | None = None,
    chalice_config: Path = CHALICE_CONFIG,
    ws_url: str | None = None,
) -> dict[str, Any]:
    """config.json for a deployed stage; the keys are the ones the dev stack serves (devstack/web.py)."""
    missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
    api = api_url or outputs.get("EndpointURL")
    if api is None:
        missing.append("EndpointURL (or pass --api-url)")
    if missing or api is None:
        raise PublishError(f"the stack outputs lack: {', '.join(missing)}")
    region = outputs["Region"]
    if not _REGION.match(region):
        raise PublishError(f"Region output is not an AWS region: {region!r}")
    if not _API_URL.match(api):
        raise PublishError(f"the API URL must be an https URL, got {api!r}")
    websocket = ws_url or outputs.get("WebsocketUrl")
    if websocket is not None and not _WS_URL.match(websocket):
        raise PublishError(f"the WebSocket URL must be a wss URL without a query, got {websocket!r}")
    return {
        "api_url": api.rstrip("/"),
        **({"ws_url": websocket.rstrip("/")} if websocket else {}),
        "region": region,
        "user_pool_id": outputs["UserPoolId"],
        "user_pool_client_id": outputs["UserPoolClientId"],
        "cognito_endpoint": f"https://cognito-idp.{region}.amazonaws.com/",
        "environment": "aws",
        "limits": client_limits(
            api_max_upload_bytes(stage_of(outputs), chalice_config), api_trash_days(stage_of(outputs), chalice_config)
        ),
    }


def build(
    outputs: Mapping[str, str],
    out_dir: Path,
    api_url: str | None = None,
    web_dir: Path = WEB_DIR,
    ws_url: str | None = None,
) -> Path:
    """A fresh copy of web/ (dotfiles left out) plus its config.json in `out_dir`."""
    config = spa_config(outputs, api_url, ws_url=ws_url)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(web_dir, out_dir, ignore=shutil.ignore_patterns(".*"))
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out_dir


def publish_commands(outputs: Mapping[str, str], out_dir: Path) -> list[str]:
    # no-cache: browsers revalidate (cheap 304s), so a new release is picked up at once; nothing is hashed here.
    return [
        f"aws s3 sync {out_dir}/ s3://{outputs['SpaBucketName']}/ --delete --cache-control no-cache",
        f"aws cloudfront create-invalidation --distribution-id {outputs['SpaDistributionId']} --paths '/*'",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.publish_web", description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, required=True, help="the stack's outputs (describe-stacks JSON)")
    parser.add_argument("--api-url", help="the API's URL, when the outputs have no EndpointURL (chalice deploy)")
    parser.add_argument("--ws-url", help="the WebSocket API's URL, when the outputs have no WebsocketUrl")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "build" / "web", help="default: build/web")
    args = parser.parse_args(argv)
    try:
        outputs = read_outputs(json.loads(args.outputs.read_text()))
        out_dir = build(outputs, args.out.resolve(), args.api_url, ws_url=args.ws_url)
    except (OSError, ValueError, ConfigureError, PublishError) as e:
        print(f"infra.publish_web: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out_dir} (config.json for the API at {spa_config(outputs, args.api_url)['api_url']}); publish with:")
    for command in publish_commands(outputs, out_dir):
        print(f"  {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
