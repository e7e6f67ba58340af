"""The `chalice deploy` path: a resources stack's outputs become the stage's settings and concrete policies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra.configure_stage import POLICIES_DIR, ConfigureError, configure, main, read_outputs
from tests.conftest import PROJECT_DIR

ACCOUNT, REGION = "210987654321", "eu-west-1"
LAYER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:photosky-dev-image-libraries:3"
OUTPUTS = [
    {"OutputKey": "TableName", "OutputValue": "photosky-dev"},
    {"OutputKey": "TableArn", "OutputValue": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/photosky-dev"},
    {"OutputKey": "BucketName", "OutputValue": f"photosky-dev-photos-{ACCOUNT}-{REGION}"},
    {"OutputKey": "UserPoolArn", "OutputValue": f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_Ab12"},
    {"OutputKey": "UserPoolClientId", "OutputValue": "3n4b5urk1ft4fl3mg5e62d9ado"},
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


POLICIES = sorted(path.stem for path in POLICIES_DIR.glob("*.json"))


def test_policies_are_rendered_with_concrete_arns(project: Path) -> None:
    assert {"api", "worker", "reconciler", "websocket_connect", "websocket_disconnect", "websocket_message"} == set(
        POLICIES
    )
    record_websocket_api(project)
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    for name in POLICIES:
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


# --- live status: the WebSocket API `chalice deploy` creates ---------------------------------------------------------

WEBSOCKET_API_ID = "abc123defg"


def record_websocket_api(
    project: Path, url: str = f"wss://{WEBSOCKET_API_ID}.execute-api.{REGION}.amazonaws.com/api/"
) -> None:
    """.chalice/deployed/dev.json as `chalice deploy` leaves it (chalice.deploy.planner records its id and URL)."""
    (project / ".chalice" / "deployed").mkdir(exist_ok=True)
    resources = [
        {
            "name": "api_handler",
            "resource_type": "lambda_function",
            "lambda_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:photosky-dev",
        },
        {
            "name": "websocket_api",
            "resource_type": "websocket_api",
            "websocket_api_url": url,
            "websocket_api_id": WEBSOCKET_API_ID,
        },
    ]
    record = {"resources": resources, "schema_version": "2.0", "backend": "api"}
    (project / ".chalice" / "deployed" / "dev.json").write_text(json.dumps(record))


def connections_grants(project: Path) -> dict[str, list[tuple[list[str], Any]]]:
    """{policy: [(actions, resource)] of its execute-api statements} as rendered into .chalice/."""
    found = {}
    for name in POLICIES:
        statements = json.loads((project / ".chalice" / f"policy-{name}.json").read_text())["Statement"]
        grants = [
            (s["Action"], s["Resource"]) for s in statements if any(a.startswith("execute-api:") for a in s["Action"])
        ]
        if grants:
            found[name] = grants
    return found


def stage_environment(project: Path) -> dict[str, str]:
    environment: dict[str, str] = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["dev"][
        "environment_variables"
    ]
    return environment


def test_after_a_deploy_realtime_names_the_stages_websocket_api(project: Path) -> None:
    record_websocket_api(project)
    websocket = configure("dev", read_outputs(OUTPUTS), LAYER, project)
    assert websocket is not None
    management = f"https://{WEBSOCKET_API_ID}.execute-api.{REGION}.amazonaws.com/api"
    assert websocket.management_url == management
    environment = stage_environment(project)
    assert environment["PHOTOSKY_WS_MANAGEMENT_URL"] == management
    assert environment["PHOTOSKY_USER_POOL_CLIENT_ID"] == "3n4b5urk1ft4fl3mg5e62d9ado"  # the tokens' audience
    connections = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{WEBSOCKET_API_ID}/api"
    post = [(["execute-api:ManageConnections"], f"{connections}/POST/@connections/*")]
    post_and_delete = [
        (
            ["execute-api:ManageConnections"],
            [f"{connections}/POST/@connections/*", f"{connections}/DELETE/@connections/*"],
        )
    ]
    assert connections_grants(project) == {
        "api": post_and_delete,
        "worker": post,
        "reconciler": post_and_delete,
        "websocket_message": post_and_delete,
        "websocket_connect": [(["execute-api:ManageConnections"], f"{connections}/DELETE/@connections/*")],
    }


def test_before_the_first_deploy_realtime_stays_off(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The WebSocket API's id exists only once `chalice deploy` has created it: until then no policy may name an API,
    # and without a management endpoint no connection is accepted and nothing is pushed (the SPA polls).
    assert configure("dev", read_outputs(OUTPUTS), LAYER, project) is None
    assert "PHOTOSKY_WS_MANAGEMENT_URL" not in stage_environment(project)
    assert connections_grants(project) == {}
    for name in POLICIES:
        text = (project / ".chalice" / f"policy-{name}.json").read_text()
        assert "${" not in text, name
        assert json.loads(text)["Statement"], name
    outputs = project / "outputs.json"
    outputs.write_text(json.dumps(OUTPUTS))
    assert main(["--stage", "dev", "--outputs", str(outputs), "--image-layer-arn", LAYER], project) == 0
    assert "live status stays off" in capsys.readouterr().out


def test_a_stage_whose_record_is_gone_turns_realtime_off_again(project: Path) -> None:
    record_websocket_api(project)
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    (project / ".chalice" / "deployed" / "dev.json").unlink()
    configure("dev", read_outputs(OUTPUTS), LAYER, project)
    assert "PHOTOSKY_WS_MANAGEMENT_URL" not in stage_environment(project)
    assert connections_grants(project) == {}


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("{not json", "not Chalice's record"),
        ('{"resources": 3}', "lists no resources"),
        (None, "without a usable id"),
    ],
)
def test_a_broken_record_of_the_deploy_is_refused(project: Path, record: str | None, problem: str) -> None:
    record_websocket_api(project, url="https://abc123defg.execute-api.eu-west-1.amazonaws.com/api/")  # not wss
    if record is not None:
        (project / ".chalice" / "deployed" / "dev.json").write_text(record)
    with pytest.raises(ConfigureError, match=problem):
        configure("dev", read_outputs(OUTPUTS), LAYER, project)
