"""The parts of `chalice local`'s attach step (devstack/chalice_local.py) that need no server: when it runs, reading a
dev stack's outputs, its messages, and the hook into chalice 1.34's local gateway. The real CLI against real stacks
is tests/e2e/test_chalice_local.py."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import chalice.local
import pytest
from chalice.app import Chalice, CognitoUserPoolAuthorizer
from chalice.config import Config

from devstack import chalice_local
from devstack.auth import CognitoIdTokenVerifier, StaticJwks
from devstack.chalice_local import DevStack, NotAttached
from devstack.gateway import ApiGatewayHTTPServer
from tests.conftest import POOL, PROJECT_DIR

OUTPUTS: dict[str, Any] = {
    "api_url": "http://127.0.0.1:8000",
    "aws_endpoint_url": "http://127.0.0.1:5000",
    "region": "us-east-1",
    "user_pool_id": POOL.pool_id,
    "user_pool_client_id": POOL.client_id,
    "table_name": "photosky-local",
    "bucket_name": "photosky-local-photos",
    "demo_user": {"username": "demo", "password": "PhotoSky-demo-2026"},
    "user_pool_arn": POOL.arn,
    "web_url": "http://127.0.0.1:8080",
    "media_url": "http://127.0.0.1:8090",
    "media_key_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:photosky-local-media-signing-key-x",
}
WHAT_TO_RUN = ("make aws", "make dev", "chalice local --stage local --port 8001")
STACK = DevStack(outputs_file=Path("outputs.json"), **{name: OUTPUTS[name] for name in chalice_local.REQUIRED_OUTPUTS})


def write(path: Path, document: Any) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


# --- when it runs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"AWS_CHALICE_CLI_MODE": "true", "PHOTOSKY_STAGE": "local"}, True),
        ({"AWS_CHALICE_CLI_MODE": "true", "PHOTOSKY_STAGE": "dev"}, False),  # `chalice package --stage dev`
        ({"AWS_CHALICE_CLI_MODE": "", "PHOTOSKY_STAGE": "local"}, False),
        ({"PHOTOSKY_STAGE": "local"}, False),  # the dev stack's own process, tests, Lambda
    ],
)
def test_it_runs_only_when_the_chalice_cli_loads_the_local_stage(environ: dict[str, str], expected: bool) -> None:
    assert chalice_local.wanted(environ) is expected


@pytest.fixture
def chalice_globals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put chalice.local's two hooked globals back after the test, whatever it installed."""
    monkeypatch.setattr(chalice.local, "LocalGatewayAuthorizer", chalice.local.LocalGatewayAuthorizer)
    monkeypatch.setattr(chalice.local, "LocalDevServer", chalice.local.LocalDevServer)


def test_outside_the_cli_it_changes_nothing(chalice_globals: None, tmp_path: Path) -> None:
    environ_before = dict(os.environ)
    authorizer, server = chalice.local.LocalGatewayAuthorizer, chalice.local.LocalDevServer
    # An outputs file that would make it attach, were it wanted.
    outputs = write(tmp_path / "outputs.json", OUTPUTS)
    chalice_local.attach_to_dev_stack({"PHOTOSKY_STAGE": "local", "PHOTOSKY_DEVSTACK_OUTPUTS": str(outputs)})
    assert (chalice.local.LocalGatewayAuthorizer, chalice.local.LocalDevServer) == (authorizer, server)
    assert dict(os.environ) == environ_before


@pytest.mark.parametrize(
    ("stage", "cli_mode", "imports_devstack"),
    [("dev", "true", False), ("local", "", False), ("local", "true", True)],
)
def test_app_imports_the_attach_step_only_for_the_cli_and_the_local_stage(
    tmp_path: Path, stage: str, cli_mode: str, imports_devstack: bool
) -> None:
    """app.py's own guard, in a fresh interpreter: devstack is never imported where it is not wanted."""
    probe = "import sys, app; print(sorted(m for m in sys.modules if m.split('.')[0] == 'devstack'))"
    env = {
        **os.environ,
        "PHOTOSKY_STAGE": stage,
        "AWS_CHALICE_CLI_MODE": cli_mode,
        "PHOTOSKY_DEVSTACK_OUTPUTS": str(tmp_path / "no-such-outputs.json"),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if imports_devstack:
        # The attach step ran, found no stack and ended the process with its one line.
        assert done.returncode == chalice_local.EXIT_CODE, done
        assert done.stderr.startswith(chalice_local.PREFIX + "no dev stack is running"), done.stderr
    else:
        assert (done.returncode, done.stdout.strip()) == (0, "[]"), done


# --- reading the outputs ------------------------------------------------------------------------------------------


def test_the_outputs_file_is_the_projects_unless_named() -> None:
    assert chalice_local.outputs_path({}) == PROJECT_DIR / ".devstack" / "outputs.json"
    assert chalice_local.outputs_path({"PHOTOSKY_DEVSTACK_OUTPUTS": " "}) == PROJECT_DIR / ".devstack" / "outputs.json"
    assert chalice_local.outputs_path({"PHOTOSKY_DEVSTACK_OUTPUTS": "stacks/a.json"}) == Path("stacks/a.json")


def test_a_running_stacks_outputs_are_read(tmp_path: Path) -> None:
    path = write(tmp_path / "outputs.json", {**OUTPUTS, "ws_url": "ws://127.0.0.1:8001"})  # other keys: ignored
    assert chalice_local.read_outputs(path) == dataclasses.replace(STACK, outputs_file=path)


def test_no_outputs_file_says_no_stack_runs_and_what_to_run(tmp_path: Path) -> None:
    missing = tmp_path / "outputs.json"
    with pytest.raises(NotAttached) as refused:
        chalice_local.read_outputs(missing)
    message = str(refused.value)
    assert message.startswith(f"no dev stack is running (no {missing})")
    assert all(command in message for command in WHAT_TO_RUN), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("{not json", "cannot read the dev stack's outputs"),
        ([OUTPUTS], "not a JSON object"),
        ({k: v for k, v in OUTPUTS.items() if k != "media_key_secret_arn"}, "lacks media_key_secret_arn"),
        ({**OUTPUTS, "user_pool_id": "", "web_url": 8080}, "lacks user_pool_id, web_url"),
    ],
)
def test_an_unusable_outputs_file_is_named_with_what_is_wrong(tmp_path: Path, document: Any, says: str) -> None:
    path = write(tmp_path / "outputs.json", document)
    with pytest.raises(NotAttached) as refused:
        chalice_local.read_outputs(path)
    message = str(refused.value)
    assert says in message, message
    assert str(path) in message
    assert "make aws" in message
    assert "\n" not in message


# --- the hook into chalice's local gateway --------------------------------------------------------------------------


def small_app() -> Chalice:
    app = Chalice(app_name="hooked")
    cognito = CognitoUserPoolAuthorizer("Users", provider_arns=[POOL.arn])

    @app.route("/mine", authorizer=cognito)
    def mine() -> dict[str, str]:
        request = app.current_request
        assert request is not None
        return {"sub": request.context["authorizer"]["claims"]["sub"]}

    return app


def pool_verifier() -> CognitoIdTokenVerifier:
    return CognitoIdTokenVerifier(issuer=POOL.issuer, audiences=[POOL.client_id], jwks=StaticJwks(POOL.jwks()))


@pytest.fixture
def hooked(chalice_globals: None) -> None:
    chalice_local.install_token_checks(pool_verifier(), STACK)


def test_every_gateway_chalice_builds_then_checks_tokens(hooked: None) -> None:
    gateway = chalice.local.LocalGateway(small_app(), Config.create(chalice_stage="local"))
    with pytest.raises(chalice.local.NotAuthorizedError) as refused:
        gateway.handle_request("GET", "/mine", {"authorization": "a.b.c"}, b"")
    assert refused.value.body == b'{"message":"Unauthorized"}'
    with pytest.raises(chalice.local.NotAuthorizedError):
        gateway.handle_request("GET", "/mine", {}, b"")  # Chalice's own authorizer lets this through
    response = gateway.handle_request("GET", "/mine", {"authorization": POOL.id_token("someone")}, b"")
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"sub": "someone"})


def test_the_server_chalice_builds_is_the_dev_stacks(hooked: None) -> None:
    app = small_app()
    server = chalice.local.create_local_server(app, Config.create(chalice_stage="local"), "127.0.0.1", 0)
    try:
        # API Gateway's front door (devstack/gateway.py), and still Chalice's thread-local current_request.
        assert isinstance(server.server, ApiGatewayHTTPServer)
        assert isinstance(app, chalice.local.LocalChalice)
    finally:
        server.server.server_close()


def test_a_chalice_that_builds_its_gateway_differently_is_refused_not_left_unverified(
    chalice_globals: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    class RefactoredGateway(chalice.local.LocalGateway):
        def __init__(self, app_object: Chalice, config: Config) -> None:  # no longer names LocalGatewayAuthorizer
            self._app_object = app_object

    monkeypatch.setattr(chalice.local, "LocalGateway", RefactoredGateway)
    authorizer, server = chalice.local.LocalGatewayAuthorizer, chalice.local.LocalDevServer
    with pytest.raises(NotAttached, match="refusing to serve the API unverified"):
        chalice_local.install_token_checks(pool_verifier(), STACK)
    assert (chalice.local.LocalGatewayAuthorizer, chalice.local.LocalDevServer) == (authorizer, server)
