"""`chalice local --stage local` against a running dev stack (`make aws`, or `make dev` with `--port 8001`).

The Chalice CLI sets `AWS_CHALICE_CLI_MODE` and the stage's variables (`PHOTOSKY_STAGE=local`) before it imports
app.py, which then calls `attach_to_dev_stack()` before it builds its authorizer. The attach step reads the running
stack's outputs.json, checks that its emulated AWS answers, points boto3 and the API's settings at it as the dev stack
does for its own API (its live status pushes included: `chalice local` runs no WebSocket API, so they go to the dev
stack's, at `ws_url`), and makes Chalice's local gateway check Cognito tokens as the dev stack's does (Chalice's own
local authorizer verifies nothing). When it cannot, it prints one line saying what to run and ends the process.

The hook is two globals of `chalice.local` (chalice 1.34), both looked up when `chalice local` builds its server:
`LocalGatewayAuthorizer`, which `LocalGateway.__init__` instantiates, and `LocalDevServer`, which
`create_local_server` instantiates (replaced by the dev stack's own server: the verifying gateway behind
API Gateway's HTTP front door, devstack/gateway.py). If chalice stops looking them up there, the attach step refuses
to start rather than serve the API unverified.

Chalice's reloader restarts its worker process on every change under the project, so this runs again in each new
worker, against whatever stack is running then.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from chalice.app import Chalice
    from chalice.config import Config
    from chalice.local import LocalDevServer

    from devstack.auth import CognitoIdTokenVerifier

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent
OUTPUTS_VARIABLE = "PHOTOSKY_DEVSTACK_OUTPUTS"
DEFAULT_OUTPUTS = PROJECT_DIR / ".devstack" / "outputs.json"
# The emulated AWS is on this machine: if it has not answered within a second, it is not going to.
PROBE_TIMEOUT_SECONDS = 1.0
EXIT_CODE = 2
PREFIX = "photosky chalice local: "
WHAT_TO_RUN = "run `make aws` in another terminal first (or `make dev`, then `chalice local --stage local --port 8001`)"
# What the attach step reads from outputs.json; `media_key_secret_arn` is the newest (a stack older than it must be
# restarted).
REQUIRED_OUTPUTS = (
    "aws_endpoint_url",
    "region",
    "user_pool_id",
    "user_pool_client_id",
    "user_pool_arn",
    "api_url",
    "web_url",
    "media_url",
    "media_key_secret_arn",
)


class NotAttached(Exception):
    """`chalice local` cannot serve the API against a dev stack; the message says why and what to do (one line)."""


@dataclass(frozen=True)
class DevStack:
    """What the API needs from a running dev stack's outputs.json."""

    outputs_file: Path
    aws_endpoint_url: str
    region: str
    user_pool_id: str
    user_pool_client_id: str
    user_pool_arn: str
    api_url: str
    web_url: str
    media_url: str
    media_key_secret_arn: str


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether this process is the Chalice CLI loading the `local` stage (app.py checks the same before importing
    this module)."""
    return bool(environ.get("AWS_CHALICE_CLI_MODE")) and environ.get("PHOTOSKY_STAGE") == "local"


def outputs_path(environ: Mapping[str, str]) -> Path:
    named = environ.get(OUTPUTS_VARIABLE, "").strip()
    return Path(named) if named else DEFAULT_OUTPUTS


def read_outputs(path: Path) -> DevStack:
    """The stack described by `path`, or NotAttached saying what is wrong with it."""
    try:
        document: Any = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotAttached(f"no dev stack is running (no {path}): {WHAT_TO_RUN}") from None
    except (OSError, ValueError) as e:
        raise NotAttached(f"cannot read the dev stack's outputs {path} ({e}): {WHAT_TO_RUN}") from None
    if not isinstance(document, dict):
        raise NotAttached(f"{path} is not a dev stack's outputs file (not a JSON object): {WHAT_TO_RUN}")
    missing = [name for name in REQUIRED_OUTPUTS if not isinstance(document.get(name), str) or not document[name]]
    if missing:
        raise NotAttached(
            f"{path} lacks {', '.join(missing)} (written by an older dev stack?): restart the dev stack "
            "(`make aws` or `make dev`)"
        )
    return DevStack(outputs_file=path, **{name: document[name] for name in REQUIRED_OUTPUTS})


def read_ws_url(path: Path) -> str | None:
    """The stack's WebSocket endpoint (`ws_url`), or None for a stack older than it (its API then pushes nothing).
    Read apart from `read_outputs`: a stack without one can still serve the rest of the API."""
    try:
        url = json.loads(path.read_text()).get("ws_url")
    except (OSError, ValueError, AttributeError):
        return None
    return url if isinstance(url, str) and url.startswith("ws://") else None


def check_answers(stack: DevStack, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
    """NotAttached unless the stack's emulated AWS answers and still has its user pool (an outputs file left by a
    killed stack names a dead port, or a port another stack now holds)."""
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError

    cognito = boto3.session.Session().client(
        "cognito-idp",
        endpoint_url=stack.aws_endpoint_url,
        region_name=stack.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BotoConfig(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1}),
    )
    try:
        cognito.describe_user_pool(UserPoolId=stack.user_pool_id)
    except (BotoCoreError, ClientError) as e:
        reason = e.response["Error"]["Code"] if isinstance(e, ClientError) else type(e).__name__
        raise NotAttached(
            f"the dev stack of {stack.outputs_file} does not answer at {stack.aws_endpoint_url} ({reason}; "
            f"stopped without cleaning up?): {WHAT_TO_RUN}"
        ) from None


def install_token_checks(verifier: CognitoIdTokenVerifier, stack: DevStack) -> None:
    """Make the server `chalice local` builds from now on the dev stack's: tokens checked by `verifier`."""
    import chalice
    from chalice import local
    from chalice.cli.factory import CLIFactory

    from devstack.gateway import VerifyingAuthorizer, verifying_dev_server

    hooks = {
        "LocalGateway.__init__ instantiates LocalGatewayAuthorizer": (
            local.LocalGateway.__init__.__code__.co_names,
            "LocalGatewayAuthorizer",
        ),
        "create_local_server instantiates LocalDevServer": (
            local.create_local_server.__code__.co_names,
            "LocalDevServer",
        ),
        "CLIFactory.create_local_server calls chalice.local.create_local_server": (
            CLIFactory.create_local_server.__code__.co_names,
            "create_local_server",
        ),
    }
    broken = [what for what, (names, name) in hooks.items() if name not in names]
    if broken:
        raise NotAttached(
            f"chalice {chalice.__version__} no longer builds its local server as 1.34 did ({'; '.join(broken)} is "
            "no longer true), so its token checks cannot be replaced; refusing to serve the API unverified: "
            "devstack/chalice_local.py needs updating"
        )

    class DevStackAuthorizer(VerifyingAuthorizer):
        """What `LocalGateway` builds: the dev stack's verifying authorizer, bound to this stack's verifier."""

        def __init__(self, app_object: Chalice) -> None:
            super().__init__(app_object, verifier)

    def dev_stack_server(app_object: Chalice, config: Config, host: str, port: int) -> LocalDevServer:
        try:
            server = verifying_dev_server(app_object, config, verifier, host, port)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                give_up(
                    f"port {port} on {host} is already in use (by the dev stack's own API from `make dev`?): "
                    f"pick another, e.g. `chalice local --stage local --port {port + 1}`"
                )
            give_up(f"cannot listen on {host}:{port}: {e.strerror}")
        if not stack.api_url.endswith(f":{port}"):
            log.info("the web client at %s sends the SPA to %s, not to this server", stack.web_url, stack.api_url)
        return server

    local.LocalGatewayAuthorizer = DevStackAuthorizer  # type: ignore[misc]
    local.LocalDevServer = dev_stack_server  # type: ignore[assignment, misc]


def attach(environ: Mapping[str, str]) -> DevStack:
    """Point this process at the running dev stack, or NotAttached saying why it cannot."""
    from chalicelib.config import ConfigError, Settings
    from devstack.__main__ import (
        isolate_from_real_aws,
        point_api_at_stack,
        point_realtime_at_stack,
        stack_token_verifier,
    )

    stack = read_outputs(outputs_path(environ))
    # First: even the probe's client would read a developer's AWS profile.
    isolate_from_real_aws(stack.aws_endpoint_url, stack.region)
    check_answers(stack)
    point_api_at_stack(
        user_pool_arn=stack.user_pool_arn,
        web_url=stack.web_url,
        media_url=stack.media_url,
        media_key_secret_arn=stack.media_key_secret_arn,
    )
    ws_url = read_ws_url(stack.outputs_file)
    point_realtime_at_stack(
        ws_url=ws_url,
        aws_endpoint=stack.aws_endpoint_url,
        user_pool_id=stack.user_pool_id,
        client_id=stack.user_pool_client_id,
    )
    if ws_url is None:
        log.info(
            "the dev stack of %s has no WebSocket API (older than it?): no live status is pushed", stack.outputs_file
        )
    try:
        Settings.from_env()  # a malformed PHOTOSKY_* setting: said now, not as a 500 on some request
    except ConfigError as e:
        raise NotAttached(str(e)) from None
    verifier = stack_token_verifier(stack.aws_endpoint_url, stack.region, stack.user_pool_id, stack.user_pool_client_id)
    install_token_checks(verifier, stack)
    return stack


def give_up(message: str) -> NoReturn:
    """Print the one line and end the process at once.

    `os._exit`, not `sys.exit`: with autoreload (the default), the Chalice CLI imports app.py in its server thread,
    where SystemExit would end that thread only and leave the process running, serving nothing. Any exit code but 3
    stops the reloader from starting another worker.
    """
    sys.stdout.flush()
    print(PREFIX + message, file=sys.stderr, flush=True)
    os._exit(EXIT_CODE)


def attach_to_dev_stack(environ: Mapping[str, str] = os.environ) -> None:
    """Called by app.py when the Chalice CLI imports it for the `local` stage; does nothing otherwise."""
    if not wanted(environ):
        return
    try:
        stack = attach(environ)
    except NotAttached as e:
        give_up(str(e))
    log.info(
        "attached to the dev stack at %s (%s) with token checks on (user pool %s)",
        stack.aws_endpoint_url,
        stack.outputs_file,
        stack.user_pool_id,
    )
