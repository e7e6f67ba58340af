"""`python -m infra.configure_stage --stage dev --outputs outputs.json`: prepare `chalice deploy --stage dev`.

For the second deploy path, where infra/resources.yaml is deployed as its own stack first. Takes that stack's
outputs (`aws cloudformation describe-stacks --stack-name photosky-dev-resources --query "Stacks[0].Outputs"`)
and writes what `chalice deploy` reads:

- the stage's environment variables in .chalice/config.json (names, ARNs, the cursor secret's ARN: never the
  secret itself, since that file is tracked);
- .chalice/policy-*.json, the functions' policies from infra/policies with every placeholder filled in;
- the image-libraries layer (built by `python -m infra.package --layer-only`, published with
  `aws lambda publish-layer-version`) on the worker and the reconciler, never on the API;
- the stage's Lambda architecture (Chalice's `lambda_architecture`): the layer is built from arm64 wheels, so the
  functions must run on arm64 too, as they do in the single stack.

This path has no CDN for media: the API is not given PHOTOSKY_MEDIA_URL and hands out S3 presigned URLs.

Live status: `chalice deploy` creates the WebSocket API too, but its id exists only once it has run, and the
policies name that API (execute-api:ManageConnections on its @connections) and the functions need its management
endpoint (PHOTOSKY_WS_MANAGEMENT_URL). So the id is read from Chalice's record of the last deploy
(.chalice/deployed/<stage>.json). Before the first deploy there is none: the policies leave out the statements that
name the API and the stage has no management endpoint, so realtime is off (no connection is accepted, nothing is
pushed, the SPA polls); running this and `make chalice-deploy` again turns it on.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.package import LAMBDA_ARCHITECTURE

PROJECT_DIR = Path(__file__).resolve().parent.parent
POLICIES_DIR = Path(__file__).resolve().parent / "policies"

# Stage environment variable -> the resources stack output that holds its value.
ENVIRONMENT_FROM_OUTPUTS = {
    "TABLE_NAME": "TableName",
    "BUCKET_NAME": "BucketName",
    "COGNITO_USER_POOL_ARN": "UserPoolArn",
    "UPLOADS_QUEUE_NAME": "UploadsQueueName",
    "PHOTOSKY_CURSOR_SECRET_ARN": "CursorSecretArn",
    # CORS: the SPA's distribution and any SpaOrigins (see app.py's preflight routes).
    "PHOTOSKY_ALLOWED_ORIGINS": "ApiAllowedOrigins",
    # The audience of the ID tokens a WebSocket connect presents.
    "PHOTOSKY_USER_POOL_CLIENT_ID": "UserPoolClientId",
}
# The placeholder for the WebSocket API's id in infra/policies, and the setting that turns realtime on.
WEBSOCKET_API_PLACEHOLDER = "${WebsocketAPI}"
WS_MANAGEMENT_URL = "PHOTOSKY_WS_MANAGEMENT_URL"
# wss://<id>.execute-api.<region>.<dns suffix>/<stage>/, as chalice.deploy.planner records it.
_WEBSOCKET_API_URL = re.compile(r"^wss://([a-z0-9]+)\.execute-api\.[a-z0-9-]+\.[a-z0-9.]+/[A-Za-z0-9_-]+/?$")
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
LAYERED_FUNCTIONS = ("process_uploads", "release_abandoned_uploads")
_LAYER_ARN = re.compile(r"^arn:aws[\w-]*:lambda:[\w-]+:\d{12}:layer:[\w-]+:\d+$")


class ConfigureError(Exception):
    pass


def read_outputs(document: Any) -> dict[str, str]:
    """Accepts describe-stacks' list of {OutputKey, OutputValue}, or a plain {name: value} object."""
    if isinstance(document, list):
        return {item["OutputKey"]: item["OutputValue"] for item in document}
    if isinstance(document, dict):
        return {str(key): str(value) for key, value in document.items()}
    raise ConfigureError("outputs must be describe-stacks' Outputs list or a JSON object")


def placeholder_values(outputs: Mapping[str, str], stage: str) -> dict[str, str]:
    missing = sorted({*ENVIRONMENT_FROM_OUTPUTS.values(), "TableArn", "Region"} - set(outputs))
    if missing:
        raise ConfigureError(f"the resources stack outputs lack: {', '.join(missing)}")
    # arn:<partition>:dynamodb:<region>:<account>:table/<name>
    _, partition, _, _, account, _ = outputs["TableArn"].split(":", 5)
    return {
        "AWS::Partition": partition,
        "AWS::Region": outputs["Region"],
        "AWS::AccountId": account,
        "Stage": stage,
        "PhotoBucket": outputs["BucketName"],
        # The API looks users up (cognito-idp:AdminGetUser) in exactly this pool.
        "UserPool.Arn": outputs["UserPoolArn"],
    }


@dataclass(frozen=True)
class WebsocketApi:
    """The WebSocket API a previous `chalice deploy` of the stage created."""

    api_id: str
    management_url: str  # https://<id>.execute-api.<region>.<dns suffix>/<stage>


def deployed_websocket_api(project_dir: Path, stage: str) -> WebsocketApi | None:
    """The stage's WebSocket API from Chalice's record of its last deploy, or None before the first one."""
    path = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise ConfigureError(f"{path} is not Chalice's record of a deploy: {e}") from None
    resources = record.get("resources") if isinstance(record, dict) else None
    if not isinstance(resources, list):
        raise ConfigureError(f"{path} is not Chalice's record of a deploy: it lists no resources")
    apis = [r for r in resources if isinstance(r, dict) and r.get("resource_type") == "websocket_api"]
    if not apis:
        return None
    url = str(apis[0].get("websocket_api_url", ""))
    match = _WEBSOCKET_API_URL.match(url)
    if match is None or match.group(1) != apis[0].get("websocket_api_id"):
        raise ConfigureError(f"{path} records a WebSocket API without a usable id and URL: {url!r}")
    return WebsocketApi(match.group(1), "https://" + url.removeprefix("wss://").rstrip("/"))


def without_statements_naming(text: str, placeholder: str) -> str:
    """A policy document with the statements that mention `placeholder` left out."""
    document = json.loads(text)
    document["Statement"] = [s for s in document["Statement"] if placeholder not in json.dumps(s)]
    return json.dumps(document, indent=2) + "\n"


def render_policy(text: str, values: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ConfigureError(f"no value for the policy placeholder ${{{match.group(1)}}}")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(fill, text)


def configure(
    stage: str, outputs: Mapping[str, str], image_layer_arn: str, project_dir: Path = PROJECT_DIR
) -> WebsocketApi | None:
    """Returns the WebSocket API the stage's realtime settings name, or None if realtime stays off for now."""
    if not _LAYER_ARN.match(image_layer_arn):
        raise ConfigureError(f"not a Lambda layer version ARN: {image_layer_arn!r}")
    values = placeholder_values(outputs, stage)
    websocket = deployed_websocket_api(project_dir, stage)
    if websocket is not None:
        values["WebsocketAPI"] = websocket.api_id
    config_path = project_dir / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    if stage not in config.get("stages", {}):
        raise ConfigureError(f"stage {stage!r} is not in .chalice/config.json")
    config["stages"][stage]["lambda_architecture"] = LAMBDA_ARCHITECTURE
    environment = config["stages"][stage].setdefault("environment_variables", {})
    for variable, output in ENVIRONMENT_FROM_OUTPUTS.items():
        environment[variable] = outputs[output]
    if websocket is not None:
        environment[WS_MANAGEMENT_URL] = websocket.management_url
    else:
        environment.pop(WS_MANAGEMENT_URL, None)
    functions = config["stages"][stage].setdefault("lambda_functions", {})
    for function in LAYERED_FUNCTIONS:
        functions.setdefault(function, {})["layers"] = [image_layer_arn]
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    for template in sorted(POLICIES_DIR.glob("*.json")):
        text = template.read_text()
        if websocket is None:
            text = without_statements_naming(text, WEBSOCKET_API_PLACEHOLDER)
        rendered = render_policy(text, values)
        json.loads(rendered)  # still a valid document
        (project_dir / ".chalice" / f"policy-{template.stem}.json").write_text(rendered)
    return websocket


def main(argv: list[str] | None = None, project_dir: Path = PROJECT_DIR) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.configure_stage", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, choices=("dev", "prod"))
    parser.add_argument("--outputs", required=True, type=Path, help="the resources stack's outputs (JSON)")
    parser.add_argument("--image-layer-arn", required=True, help="the published image-libraries layer version")
    args = parser.parse_args(argv)
    try:
        outputs = read_outputs(json.loads(args.outputs.read_text()))
        websocket = configure(args.stage, outputs, args.image_layer_arn, project_dir)
    except (ConfigureError, OSError, ValueError, KeyError) as e:
        print(f"infra.configure_stage: error: {e}", file=sys.stderr)
        return 1
    print(f"configured stage {args.stage}: now run `make chalice-deploy STAGE={args.stage}` (with Python 3.12+)")
    if websocket is None:
        print(
            f"live status stays off: no WebSocket API recorded for {args.stage} yet; after the deploy, run this and "
            "`make chalice-deploy` again to turn it on"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
