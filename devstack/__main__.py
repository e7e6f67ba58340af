"""`python -m devstack` (`make dev`): PhotoSky fully offline on 127.0.0.1.

Starts an emulated AWS (moto server: DynamoDB, S3, SQS, Cognito), creates the table, bucket, queues, user pool,
SPA app client and a confirmed demo user, serves the API through Chalice's local gateway with real Cognito
token checks, serves the app's WebSocket API for live status (API Gateway's WebSocket API and its @connections
management API, devstack/websocket.py), runs the upload worker on the bucket's S3 -> SQS events (and the scheduled
reconciler), serves the media endpoint (CloudFront's signed URL check in front of the bucket, devstack/media.py)
with a fresh signing key in the emulated Secrets Manager, serves the web client (web/, with its /config.json) as
the one origin the API allows, writes `.devstack/outputs.json`, and runs until Ctrl-C.

`python -m devstack --no-api` (`make aws`) starts all of it but the API server: Chalice's own `chalice local --stage
local` serves the API against this stack instead (devstack/chalice_local.py), at the `api_url` written here.
"""

from __future__ import annotations

import argparse
import errno
import faulthandler
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalice.app import Chalice
    from chalice.config import Config
    from chalice.local import LocalDevServer

    from devstack.auth import CognitoIdTokenVerifier
    from devstack.events import EventPump
    from devstack.media import MediaServer
    from devstack.resources import Provisioned
    from devstack.web import WebServer
    from devstack.websocket import WebSocketServer

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REGION = "us-east-1"
STAGE = "local"
DEMO_USERNAME = "demo"
DEMO_EMAIL = "demo@photosky.test"
# A local emulator's account: the password is printed and written to outputs.json on purpose.
DEFAULT_DEMO_PASSWORD = "PhotoSky-demo-2026"

log = logging.getLogger("devstack")


class StartupError(Exception):
    """The stack cannot start; the message tells the user what to do."""


def _port_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    try:
        port = int(raw)
    except ValueError:
        raise StartupError(f"{name} must be a port number, got {raw!r}") from None
    if not 1 <= port <= 65535:
        raise StartupError(f"{name} must be between 1 and 65535, got {port}")
    return port


def _ensure_port_free(port: int, variable: str, command: str = "make dev") -> None:
    # Same socket options as the servers use, so a port in TIME_WAIT is not mistaken for a busy one.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {HOST} is already in use (is another dev stack running?). "
                    f"Stop it, or pick another port: {variable}=<port> {command}"
                ) from None
            raise StartupError(f"cannot listen on {HOST}:{port}: {e.strerror}") from None


# Variables of .chalice/config.json that describe the stack itself: the dev stack creates these resources under
# these names and is always the `local` stage, so a developer's environment (perhaps set for a deployed stage)
# never changes them. Every other PHOTOSKY_* setting set in the environment wins over the file.
STACK_VARIABLES = frozenset({"PHOTOSKY_STAGE", "TABLE_NAME", "BUCKET_NAME", "UPLOADS_QUEUE_NAME"})


def stage_environment(config_env: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The API's environment variables: the stage's from .chalice/config.json, and the developer's settings on top.

    `chalice local` lets the file win, so `PHOTOSKY_QUOTA_PHOTOS=2 make dev` had a quota of 10000. Here a PHOTOSKY_*
    variable set (non-empty) in the environment wins, but for the ones naming the stack (`STACK_VARIABLES`).
    """
    merged = dict(config_env)
    for name, value in environ.items():
        if name.startswith("PHOTOSKY_") and name not in STACK_VARIABLES and value.strip():
            merged[name] = value
    return merged


def isolate_from_real_aws(endpoint: str, region: str = REGION) -> None:
    """Point every boto3 client at moto, with throwaway credentials, before any client exists (the dev stack, and
    `chalice local` attached to it)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )


class _SerializedDynamoDB:
    """WSGI wrapper: one DynamoDB request at a time in the emulated AWS.

    moto's DynamoDB is not thread-safe: a transaction deep-copies the table to roll back from, and concurrent
    requests from the threaded server lose writes (measured: three concurrent uploads, 3 rounds in 8 ended with
    wrong usage counters). Real DynamoDB applies every write atomically; a lock gives the dev stack the same.
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with self._lock:
                return self._app(environ, start_response)
        return self._app(environ, start_response)


def _start_moto(port: int) -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from devstack.moto_gaps import add_cognito_delete_user

    add_cognito_delete_user()
    # Built here rather than with ThreadedMotoServer, whose start() hangs forever when the port is taken.
    app = _SerializedDynamoDB(DomainDispatcherApplication(create_backend_app))
    server = make_server(HOST, port, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, name="moto-server", daemon=True).start()
    return server


def _write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)  # readers never see half a file


def chalice_local_command(api_url: str) -> str:
    """The command that serves the API of a `--no-api` stack at its `api_url`."""
    port = api_url.rsplit(":", 1)[1]
    return ".venv/bin/chalice local --stage local" + ("" if port == "8000" else f" --port {port}")


def _recipe(outputs: dict[str, Any], *, serve_api: bool = True) -> str:
    demo = outputs["demo_user"]
    if serve_api:
        api = f"{outputs['api_url']}   (upload worker running on S3 -> SQS events)"
    else:
        api = (
            f"{outputs['api_url']}   NOT served here (upload worker running on S3 -> SQS events); next, in another\n"
            f"               terminal: {chalice_local_command(outputs['api_url'])}"
        )
    return f"""
PhotoSky dev stack is up (all on {HOST}):
  web client   {outputs["web_url"]}   (sign in as the demo user; API description at {outputs["openapi_url"]})
  API          {api}
  media        {outputs["media_url"]}   (signed URLs checked as CloudFront does; key in the emulated Secrets Manager)
  live status  {outputs["ws_url"]}?token=<ID token>   (WebSocket API; its @connections API: http, same port)
  emulated AWS {outputs["aws_endpoint_url"]}  (moto: DynamoDB, S3, SQS, Cognito, Secrets Manager; {outputs["region"]})
  user pool    {outputs["user_pool_id"]}   SPA app client {outputs["user_pool_client_id"]}
  demo user    {demo["username"]} / {demo["password"]}
  outputs      {outputs["outputs_file"]}

Get an ID token and call the API:
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={outputs["region"]}
  TOKEN=$(aws --endpoint-url {outputs["aws_endpoint_url"]} cognito-idp initiate-auth \\
      --auth-flow USER_PASSWORD_AUTH --client-id {outputs["user_pool_client_id"]} \\
      --auth-parameters USERNAME={demo["username"]},PASSWORD={demo["password"]} \\
      --query AuthenticationResult.IdToken --output text)
  curl -s -X POST {outputs["api_url"]}/users -H "Authorization: $TOKEN" \\
      -H 'Content-Type: application/json' -d '{{"display_name": "Demo"}}'
  curl -s {outputs["api_url"]}/users/me -H "Authorization: $TOKEN"
(or `python -m devstack.token` for a token without the AWS CLI)

Ctrl-C stops everything (the emulated AWS keeps nothing between runs).
"""


def _provision(stage_env: Mapping[str, str]) -> tuple[Provisioned, str]:
    """Create every resource of the `local` stage in the emulated AWS, and the demo user. Returns its password."""
    import boto3

    from devstack import resources

    session = boto3.session.Session()
    cognito = session.client("cognito-idp")
    provisioned = resources.provision(
        names=resources.Names.for_stage(STAGE, table=stage_env["TABLE_NAME"], bucket=stage_env["BUCKET_NAME"]),
        region=REGION,
        dynamodb=session.client("dynamodb"),
        s3=session.client("s3"),
        sqs=session.client("sqs"),
        cognito=cognito,
    )
    demo_password = os.environ.get("PHOTOSKY_DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
    try:
        resources.create_confirmed_user(cognito, provisioned.user_pool_id, DEMO_USERNAME, demo_password, DEMO_EMAIL)
    except cognito.exceptions.InvalidPasswordException as e:
        policy = ", ".join(f"{rule}={value}" for rule, value in resources.PASSWORD_POLICY.items())
        raise StartupError(f"PHOTOSKY_DEMO_PASSWORD does not meet the user pool's password policy ({policy})") from e
    return provisioned, demo_password


def point_api_at_stack(*, user_pool_arn: str, web_url: str, media_url: str, media_key_secret_arn: str) -> None:
    """Put in the environment what the API reads about this stack, before app.py is imported (the dev stack, and
    `chalice local` attached to it)."""
    # The app reads the pool ARN at import, for its authorizer.
    os.environ["COGNITO_USER_POOL_ARN"] = user_pool_arn
    # The web client is the one browser origin the API answers (CORS), as the SPA's distribution is in AWS.
    os.environ["PHOTOSKY_ALLOWED_ORIGINS"] = web_url
    # The API signs media URLs for this stack's media endpoint with the key it trusts (see _serve_media). A key
    # given directly in the environment would sign URLs the endpoint refuses: the secret is the one source here.
    os.environ["PHOTOSKY_MEDIA_URL"] = media_url
    os.environ["PHOTOSKY_MEDIA_KEY_SECRET_ARN"] = media_key_secret_arn
    if os.environ.pop("PHOTOSKY_MEDIA_KEY", None) is not None:
        log.info("PHOTOSKY_MEDIA_KEY ignored: the dev stack signs with its own key (PHOTOSKY_MEDIA_KEY_SECRET_ARN)")


def management_url(ws_url: str) -> str:
    """The @connections management API's base URL: the WebSocket endpoint's port, over plain HTTP."""
    return "http" + ws_url.removeprefix("ws")


def jwks_url(aws_endpoint: str, user_pool_id: str) -> str:
    """Where the emulated Cognito publishes the pool's signing keys."""
    return f"{aws_endpoint}/{user_pool_id}/.well-known/jwks.json"


def point_realtime_at_stack(*, ws_url: str | None, aws_endpoint: str, user_pool_id: str, client_id: str) -> None:
    """Put in the environment what the realtime code reads (chalicelib/realtime): where to push (this stack's
    @connections API; none: realtime off) and how to check a connecting client's token."""
    # The audience and keys of the tokens `$connect` accepts. The default key location is the real Cognito's:
    # pointing it at the emulated pool is what keeps a connect from reaching the internet.
    os.environ["PHOTOSKY_USER_POOL_CLIENT_ID"] = client_id
    os.environ["PHOTOSKY_JWKS_URL"] = jwks_url(aws_endpoint, user_pool_id)
    if ws_url:
        os.environ["PHOTOSKY_WS_MANAGEMENT_URL"] = management_url(ws_url)
    else:
        os.environ.pop("PHOTOSKY_WS_MANAGEMENT_URL", None)


def stack_token_verifier(aws_endpoint: str, region: str, user_pool_id: str, client_id: str) -> CognitoIdTokenVerifier:
    """Checks ID tokens as API Gateway's Cognito authorizer does, against the pool's keys on the emulated AWS."""
    from devstack.auth import CognitoIdTokenVerifier, HttpJwks, cognito_issuer

    return CognitoIdTokenVerifier(
        issuer=cognito_issuer(region, user_pool_id),
        audiences=[client_id],
        jwks=HttpJwks(jwks_url(aws_endpoint, user_pool_id)),
    )


def _load_app(
    chalice_config: Config,
    provisioned: Provisioned,
    web_url: str,
    *,
    media_url: str,
    media_key_secret_arn: str,
    aws_endpoint: str,
    ws_url: str,
) -> Chalice:
    """Import app.py as `chalice local` does, in this stack's environment: the API serves it, the event pump runs
    its handlers."""
    from chalice.deploy.validate import validate_routes

    from chalicelib.config import ConfigError, Settings

    # As `chalice local` does, the stage's variables go into the environment before app.py is imported (but the
    # developer's own PHOTOSKY_* settings win).
    os.environ.update(stage_environment(chalice_config.environment_variables, os.environ))
    point_api_at_stack(
        user_pool_arn=provisioned.user_pool_arn,
        web_url=web_url,
        media_url=media_url,
        media_key_secret_arn=media_key_secret_arn,
    )
    point_realtime_at_stack(
        ws_url=ws_url,
        aws_endpoint=aws_endpoint,
        user_pool_id=provisioned.user_pool_id,
        client_id=provisioned.user_pool_client_id,
    )
    try:
        Settings.from_env()  # a bad override is a clear startup error, not a 500 on the first request
    except ConfigError as e:
        raise StartupError(str(e)) from None
    stage_env = chalice_config.environment_variables
    overridden = sorted(name for name, value in stage_env.items() if os.environ.get(name) != value)
    if overridden:  # names only: a value may be a secret (PHOTOSKY_CURSOR_SECRET)
        log.info("set by the environment over .chalice/config.json: %s", ", ".join(overridden))
    app_object: Chalice = chalice_config.chalice_app
    validate_routes(app_object.routes)
    return app_object


def _serve_api(
    app_object: Chalice, chalice_config: Config, provisioned: Provisioned, aws_endpoint: str, port: int
) -> LocalDevServer:
    from devstack.gateway import verifying_dev_server

    verifier = stack_token_verifier(aws_endpoint, REGION, provisioned.user_pool_id, provisioned.user_pool_client_id)
    try:
        api = verifying_dev_server(app_object, chalice_config, verifier, HOST, port)
    except OSError as e:
        raise StartupError(f"cannot serve the API on {HOST}:{port}: {e}") from None
    threading.Thread(target=api.server.serve_forever, name="api-server", daemon=True).start()
    return api


# The signing key's secret in the emulated Secrets Manager (a fresh key every start: nothing outlives the stack).
MEDIA_KEY_SECRET_NAME = f"photosky-{STAGE}-media-signing-key"


def _serve_media(port: int, bucket: str) -> tuple[MediaServer, str]:
    """The media endpoint, trusting a key pair made now, whose private half is stored as a secret for the API.
    Returns the server and the secret's ARN."""
    import boto3

    from devstack.media import SigningKey, TrustedKeyGroup, serve_media, store_signing_key

    session = boto3.session.Session()
    key = SigningKey.generate()
    secret_arn = store_signing_key(session.client("secretsmanager"), MEDIA_KEY_SECRET_NAME, key)
    trusted = TrustedKeyGroup()
    trusted.trust(key.key_pair_id, key.public_key_pem)
    try:
        server = serve_media(HOST, port, s3=session.client("s3"), bucket=bucket, keys=trusted)
    except OSError as e:
        raise StartupError(f"cannot serve the media endpoint on {HOST}:{port}: {e}") from None
    log.info("media endpoint trusts key %s", key.key_pair_id)
    return server, secret_arn


def _serve_web(port: int, outputs: Mapping[str, Any]) -> WebServer:
    from devstack.web import serve_web, spa_config

    try:
        return serve_web(
            HOST,
            port,
            PROJECT_DIR / "web",
            PROJECT_DIR / "openapi.yaml",
            spa_config(outputs),
            media_url=outputs["media_url"],
        )
    except OSError as e:
        raise StartupError(f"cannot serve the web client on {HOST}:{port}: {e}") from None


def _serve_websocket(app_object: Chalice, port: int, stage: str) -> WebSocketServer:
    from devstack.websocket import serve_websocket

    try:
        return serve_websocket(HOST, port, app_object, stage=stage)
    except OSError as e:
        raise StartupError(f"cannot serve the WebSocket API on {HOST}:{port}: {e}") from None


def _start_event_pump(app_object: Chalice) -> EventPump:
    import boto3

    from devstack.events import EventPump

    pump = EventPump(app_object, boto3.session.Session().client("sqs"), region=REGION)
    pump.start()
    return pump


def _wait_for_stop_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


STOP_REPORT_SECONDS = 10.0


def _timed_stop(what: str, *steps: Any) -> None:
    started = time.monotonic()
    for step in steps:
        step()
    log.info("stopped %s in %.2f s", what, time.monotonic() - started)


def _ports(*, serve_api: bool) -> tuple[int, int, int, int, int]:
    """The API's, emulated AWS's, web client's, media endpoint's and WebSocket API's ports, checked free (but the
    API's when this process does not serve it)."""
    api_port = _port_from_env("PHOTOSKY_API_PORT", 8000)
    aws_port = _port_from_env("PHOTOSKY_AWS_PORT", 5000)
    web_port = _port_from_env("PHOTOSKY_WEB_PORT", 8080)
    media_port = _port_from_env("PHOTOSKY_MEDIA_PORT", 8090)
    ws_port = _port_from_env("PHOTOSKY_WS_PORT", 8100)
    if len({api_port, aws_port, web_port, media_port, ws_port}) < 5:
        raise StartupError(
            "PHOTOSKY_API_PORT, PHOTOSKY_AWS_PORT, PHOTOSKY_WEB_PORT, PHOTOSKY_MEDIA_PORT and PHOTOSKY_WS_PORT must "
            "all differ"
        )
    command = "make dev" if serve_api else "make aws"
    if serve_api:
        _ensure_port_free(api_port, "PHOTOSKY_API_PORT", command)
    _ensure_port_free(aws_port, "PHOTOSKY_AWS_PORT", command)
    _ensure_port_free(web_port, "PHOTOSKY_WEB_PORT", command)
    _ensure_port_free(media_port, "PHOTOSKY_MEDIA_PORT", command)
    _ensure_port_free(ws_port, "PHOTOSKY_WS_PORT", command)
    return api_port, aws_port, web_port, media_port, ws_port


def run(outputs_path: Path, *, serve_api: bool = True) -> int:
    """Start the stack, write its outputs and run until Ctrl-C. Without `serve_api` (`make aws`), the API is left to
    `chalice local`, which will listen at the `api_url` written: that port is neither bound nor checked here."""
    api_port, aws_port, web_port, media_port, ws_port = _ports(serve_api=serve_api)
    web_url = f"http://{HOST}:{web_port}"
    ws_url = f"ws://{HOST}:{ws_port}"
    started = time.monotonic()

    endpoint = f"http://{HOST}:{aws_port}"
    isolate_from_real_aws(endpoint)
    try:
        moto = _start_moto(aws_port)
    except OSError as e:
        raise StartupError(f"cannot start the emulated AWS on {HOST}:{aws_port}: {e}") from None

    api = None
    pump = None
    web = None
    media = None
    websocket = None
    try:
        from chalice.cli.factory import CLIFactory

        chalice_config = CLIFactory(str(PROJECT_DIR)).create_config_obj(chalice_stage_name=STAGE)
        provisioned, demo_password = _provision(chalice_config.environment_variables)
        media, media_key_secret_arn = _serve_media(media_port, provisioned.bucket_name)
        app_object = _load_app(
            chalice_config,
            provisioned,
            web_url,
            media_url=media.media_url,
            media_key_secret_arn=media_key_secret_arn,
            aws_endpoint=endpoint,
            ws_url=ws_url,
        )
        if serve_api:
            api = _serve_api(app_object, chalice_config, provisioned, endpoint, api_port)
        # In this process with `--no-api` too: `chalice local` serves no WebSocket API, and the pushes of its API
        # come here (PHOTOSKY_WS_MANAGEMENT_URL, devstack/chalice_local.py).
        websocket = _serve_websocket(app_object, ws_port, chalice_config.api_gateway_stage)
        pump = _start_event_pump(app_object)
        outputs: dict[str, Any] = {
            "api_url": f"http://{HOST}:{api_port}",
            "aws_endpoint_url": endpoint,
            "region": REGION,
            "user_pool_id": provisioned.user_pool_id,
            "user_pool_client_id": provisioned.user_pool_client_id,
            "table_name": provisioned.table_name,
            "bucket_name": provisioned.bucket_name,
            "demo_user": {"username": DEMO_USERNAME, "password": demo_password},
            "user_pool_arn": provisioned.user_pool_arn,
            "uploads_queue_url": provisioned.uploads_queue_url,
            "uploads_dlq_url": provisioned.uploads_dlq_url,
            "web_url": web_url,
            "openapi_url": f"{web_url}/openapi.yaml",
            "media_url": media.media_url,
            "media_key_secret_arn": media_key_secret_arn,
            "ws_url": websocket.ws_url,
        }
        web = _serve_web(web_port, outputs)
        _write_json_atomically(outputs_path, outputs)
        print(_recipe({**outputs, "outputs_file": str(outputs_path)}, serve_api=serve_api), flush=True)
        log.info("ready in %.1f s", time.monotonic() - started)
        _wait_for_stop_signal()
        print("\nstopping PhotoSky dev stack...", flush=True)
        # Should stopping ever hang, say where: every thread's stack goes to stderr after STOP_REPORT_SECONDS.
        faulthandler.dump_traceback_later(STOP_REPORT_SECONDS, exit=False)
        return 0
    finally:
        # Outputs describe a running stack; a stale file would send clients to dead ports.
        outputs_path.unlink(missing_ok=True)
        if web is not None:
            _timed_stop("web server", web.shutdown, web.server_close)
        if websocket is not None:
            # Before the worker and the emulated AWS: closing each connection runs its `$disconnect`, which writes.
            _timed_stop("WebSocket API", websocket.shutdown, websocket.server_close)
        if pump is not None:
            _timed_stop("event pump", pump.stop)
        if media is not None:
            _timed_stop("media endpoint", media.shutdown, media.server_close)
        if api is not None:
            _timed_stop("API", api.server.shutdown, api.server.server_close)
        _timed_stop("emulated AWS", moto.shutdown, moto.server_close)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--outputs",
        type=Path,
        default=PROJECT_DIR / ".devstack" / "outputs.json",
        help="where to write the stack's endpoints and ids (default: .devstack/outputs.json)",
    )
    parser.add_argument(
        "--no-api",
        action="store_true",
        help="everything but the API server (`make aws`): serve the API with `chalice local --stage local`",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("PHOTOSKY_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    # werkzeug logs every emulated AWS call; keep the console for the API's own lines.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        return run(args.outputs.resolve(), serve_api=not args.no_api)
    except StartupError as e:
        print(f"photosky dev stack: error: {e}", file=sys.stderr)
        return 2


def _exit_now(code: int) -> None:
    """Leave without the interpreter's teardown once everything is stopped and written.

    Freeing the emulated AWS's state object by object is all the teardown would do, and after a long session (a
    fuzzing run left thousands of photos) it took over 10 s with no Python frame running: Ctrl-C seemed to hang.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
