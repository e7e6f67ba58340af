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
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
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
}
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


def render_policy(text: str, values: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ConfigureError(f"no value for the policy placeholder ${{{match.group(1)}}}")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(fill, text)


def configure(stage: str, outputs: Mapping[str, str], image_layer_arn: str, project_dir: Path = PROJECT_DIR) -> None:
    if not _LAYER_ARN.match(image_layer_arn):
        raise ConfigureError(f"not a Lambda layer version ARN: {image_layer_arn!r}")
    values = placeholder_values(outputs, stage)
    config_path = project_dir / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    if stage not in config.get("stages", {}):
        raise ConfigureError(f"stage {stage!r} is not in .chalice/config.json")
    config["stages"][stage]["lambda_architecture"] = LAMBDA_ARCHITECTURE
    environment = config["stages"][stage].setdefault("environment_variables", {})
    for variable, output in ENVIRONMENT_FROM_OUTPUTS.items():
        environment[variable] = outputs[output]
    functions = config["stages"][stage].setdefault("lambda_functions", {})
    for function in LAYERED_FUNCTIONS:
        functions.setdefault(function, {})["layers"] = [image_layer_arn]
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    for template in sorted(POLICIES_DIR.glob("*.json")):
        rendered = render_policy(template.read_text(), values)
        json.loads(rendered)  # still a valid document
        (project_dir / ".chalice" / f"policy-{template.stem}.json").write_text(rendered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.configure_stage", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, choices=("dev", "prod"))
    parser.add_argument("--outputs", required=True, type=Path, help="the resources stack's outputs (JSON)")
    parser.add_argument("--image-layer-arn", required=True, help="the published image-libraries layer version")
    args = parser.parse_args(argv)
    try:
        configure(args.stage, read_outputs(json.loads(args.outputs.read_text())), args.image_layer_arn)
    except (ConfigureError, OSError, ValueError, KeyError) as e:
        print(f"infra.configure_stage: error: {e}", file=sys.stderr)
        return 1
    print(f"configured stage {args.stage}: now run `chalice deploy --stage {args.stage}` (with Python 3.12+)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
