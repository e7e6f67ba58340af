"""The `chalice deploy` path: a resources stack's outputs become the stage's settings and concrete policies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra.configure_stage import ConfigureError, configure, read_outputs
from tests.conftest import PROJECT_DIR

ACCOUNT, REGION = "210987654321", "eu-west-1"
LAYER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:photosky-dev-image-libraries:3"
OUTPUTS = [
    {"OutputKey": "TableName", "OutputValue": "photosky-dev"},
    {"OutputKey": "TableArn", "OutputValue": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/photosky-dev"},
    {"OutputKey": "BucketName", "OutputValue": f"photosky-dev-photos-{ACCOUNT}-{REGION}"},
    {"OutputKey": "UserPoolArn", "OutputValue": f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_Ab12"},
    {"OutputKey": "UploadsQueueName", "OutputValue": "photosky-dev-uploads"},
    {
        "OutputKey": "CursorSecretArn",
        "OutputValue": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:photosky-dev-cursor-secret-AbCdEf",
    },
    {"OutputKey": "Region", "OutputValue": REGION},
    {"OutputKey": "ApiAllowedOrigins", "OutputValue": "https://d111111abcdef8.cloudfront.net,http://localhost:5173"},
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".chalice").mkdir()
    shutil.copyfile(PROJECT_DIR / ".chalice" / "config.json", tmp_path / ".chalice" / "config.json")
    return tmp_path


def test_the_stage_gets_the_stacks_names_and_arns_but_never_the_secret(project: Path) -> None:
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    config = json.loads((project / ".chalice" / "config.json").read_text())
    environment = config["stages"]["dev"]["environment_variables"]
    assert environment["BUCKET_NAME"] == f"photosky-dev-photos-{ACCOUNT}-{REGION}"
    assert environment["COGNITO_USER_POOL_ARN"].endswith(f"userpool/{REGION}_Ab12")
    assert environment["PHOTOSKY_CURSOR_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
    assert "PHOTOSKY_CURSOR_SECRET" not in environment
    assert environment["PHOTOSKY_ALLOWED_ORIGINS"] == "https://d111111abcdef8.cloudfront.net,http://localhost:5173"
    assert "BUCKET_NAME" not in config["stages"]["prod"].get("environment_variables", {})


def test_policies_are_rendered_with_concrete_arns(project: Path) -> None:
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    for name in ("api", "worker", "reconciler"):
        text = (project / ".chalice" / f"policy-{name}.json").read_text()
        assert "${" not in text
        resources = [r for s in json.loads(text)["Statement"] for r in _as_list(s["Resource"])]
        assert all(r.startswith("arn:aws:") for r in resources)
        assert any(f"{ACCOUNT}" in r or f"photosky-dev-photos-{ACCOUNT}" in r for r in resources)


def test_the_api_may_look_up_users_in_the_stacks_pool_only(project: Path) -> None:
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    for name in ("api", "worker", "reconciler"):
        statements = json.loads((project / ".chalice" / f"policy-{name}.json").read_text())["Statement"]
        cognito = [s for s in statements if any(a.startswith("cognito-idp:") for a in s["Action"])]
        if name != "api":
            assert cognito == [], name
            continue
        assert [(s["Action"], s["Resource"]) for s in cognito] == [
            (["cognito-idp:AdminGetUser"], f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_Ab12")
        ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_configuring_twice_gives_the_same_files(project: Path) -> None:
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    first = {p.name: p.read_text() for p in (project / ".chalice").iterdir()}
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    assert {p.name: p.read_text() for p in (project / ".chalice").iterdir()} == first


def test_missing_outputs_are_named(project: Path) -> None:
    partial = [o for o in OUTPUTS if o["OutputKey"] not in ("UserPoolArn", "Region")]
    with pytest.raises(ConfigureError, match="Region, UserPoolArn"):
        configure("dev", read_outputs(partial), LAYER, project)


def test_an_unknown_stage_is_refused(project: Path) -> None:
    with pytest.raises(ConfigureError, match="staging"):
        configure("staging", read_outputs(OUTPUTS), LAYER, project)


def test_the_image_layer_goes_on_the_worker_and_reconciler_only(project: Path) -> None:
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    functions = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["dev"]["lambda_functions"]
    assert {name: f["layers"] for name, f in functions.items()} == {
        "process_uploads": [LAYER],
        "release_abandoned_uploads": [LAYER],
    }


def test_the_stage_runs_on_the_architecture_the_layer_is_built_for(project: Path) -> None:
    # The layer holds aarch64 wheels (infra.package builds it for the single stack's arm64 functions too).
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    config = json.loads((project / ".chalice" / "config.json").read_text())
    assert config["stages"]["dev"]["lambda_architecture"] == "arm64"
    assert "lambda_architecture" not in config["stages"]["prod"]


def test_the_api_gets_no_media_cdn_on_this_path(project: Path) -> None:
    # `chalice deploy` has no distribution for media: the API falls back to S3 presigned URLs.
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    environment = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["dev"][
        "environment_variables"
    ]
    assert not {"PHOTOSKY_MEDIA_URL", "PHOTOSKY_MEDIA_KEY_SECRET_ARN", "PHOTOSKY_MEDIA_KEY"} & set(environment)


@pytest.mark.parametrize("arn", ["", "photosky-layer", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:x"])
def test_a_layer_arn_must_name_a_layer_version(project: Path, arn: str) -> None:
    with pytest.raises(ConfigureError, match="layer version ARN"):
        configure("dev", read_outputs(OUTPUTS), arn, project)
