"""Live status on the real dev stack, as the SPA gets it: a real WebSocket client (the `websockets` package) at
`<ws_url>?token=<ID token>`, tokens from the emulated Cognito, uploads through the API and the emulated S3.

The app's own `$connect` checks the token (chalicelib/realtime), the dev stack's endpoint (devstack/websocket.py)
turns its answer into the handshake's status, and the worker's pushes reach the socket through the endpoint's
@connections API.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from devstack.clients import emulated_client
from devstack.token import new_confirmed_user
from tests.e2e import test_devstack as devstack_suite
from tests.e2e.test_devstack import BAD_TOKEN_KINDS, Reply, User, call, sign_in
from tests.e2e.test_photos_devstack import upload
from tests.support.imaging_samples import encode, noise

pytestmark = pytest.mark.e2e

# test_devstack.py's session fixtures, under their own names: the demo user and every kind of token to turn away.
cognito = devstack_suite.cognito
demo = devstack_suite.demo
moto_jwk = devstack_suite.moto_jwk
bad_tokens = devstack_suite.bad_tokens

OPEN_SECONDS = 10.0
# The contract: the owner hears of a settled photo within 2 s of the worker settling it.
PUSH_SECONDS = 2.0
# Bound only: the worker settles a small JPEG in well under a second here.
SETTLE_SECONDS = 15.0
# How long a socket that must receive nothing is watched.
QUIET_SECONDS = 1.0


def open_socket(ws_url: str, token: str | None) -> ClientConnection:
    url = ws_url if token is None else f"{ws_url}?token={token}"
    # No proxy (127.0.0.1 only), no compression (API Gateway negotiates none), no automatic pings: what is on the
    # socket is what the test sends and the stack pushes.
    client: ClientConnection = connect(
        url, proxy=None, compression=None, ping_interval=None, open_timeout=OPEN_SECONDS, close_timeout=2
    )
    return client


def next_message(ws: ClientConnection, timeout: float) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


@pytest.fixture
def new_person(devstack: dict[str, Any]) -> Callable[[], tuple[User, Callable[..., Reply]]]:
    """A fresh user with a profile, and a function calling the API as them."""

    def make() -> tuple[User, Callable[..., Reply]]:
        cognito_client = emulated_client("cognito-idp", devstack)
        person = sign_in(cognito_client, devstack["user_pool_client_id"], *new_confirmed_user(devstack, "live"))

        def api_as(method: str, path: str, **kwargs: Any) -> Reply:
            return call(devstack["api_url"], method, path, token=person.id_token, **kwargs)

        assert api_as("POST", "/users", body={"display_name": "Live"}).status == 201
        return person, api_as

    return make


def test_outputs_and_config_json_name_the_websocket_endpoint(devstack: dict[str, Any]) -> None:
    assert devstack["ws_url"].startswith("ws://127.0.0.1:")
    config = call(devstack["web_url"], "GET", "/config.json").body
    assert config["ws_url"] == devstack["ws_url"]


def test_the_demo_users_token_connects_and_a_ping_gets_a_pong(devstack: dict[str, Any], demo: User) -> None:
    with open_socket(devstack["ws_url"], demo.id_token) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert next_message(ws, PUSH_SECONDS) == {"type": "pong"}
        ws.send("not json")
        assert next_message(ws, PUSH_SECONDS)["type"] == "error"  # answered, and the socket stays open
        ws.send(json.dumps({"type": "ping"}))
        assert next_message(ws, PUSH_SECONDS) == {"type": "pong"}


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
def test_a_bad_token_never_gets_a_connection(
    devstack: dict[str, Any], bad_tokens: dict[str, str | None], kind: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(devstack["ws_url"], bad_tokens[kind])
    response = refused.value.response
    assert response is not None
    assert response.status_code == 401


def _ready_message(ws: ClientConnection, photo_id: str) -> tuple[dict[str, Any], float]:
    """The first `photo` message saying `photo_id` settled, and when it arrived (epoch seconds)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        message = next_message(ws, max(0.0, deadline - time.monotonic()))
        arrived = time.time()
        photo = message.get("photo") or {}
        if message.get("type") == "photo" and photo.get("photo_id") == photo_id and photo.get("status") != "PENDING":
            return message, arrived


def test_an_upload_settling_reaches_its_owner_within_2_s_and_nobody_else(
    devstack: dict[str, Any], new_person: Callable[[], tuple[User, Callable[..., Reply]]]
) -> None:
    alice, alice_api = new_person()
    bob, _ = new_person()
    with (
        open_socket(devstack["ws_url"], alice.id_token) as alices,
        open_socket(devstack["ws_url"], bob.id_token) as bobs,
    ):
        photo = upload(alice_api, encode(noise((320, 240)), "JPEG"), "image/jpeg")
        message, arrived = _ready_message(alices, photo["photo_id"])
        assert message["photo"]["status"] == "READY", message
        assert set(message["photo"]) == {
            "photo_id",
            "status",
            "version",
            "updated_at",
            "rejection_reason",
            "duplicate_of",
        }
        settled_at = datetime.fromisoformat(message["photo"]["updated_at"]).timestamp()
        lag = arrived - settled_at
        print(f"READY pushed {lag * 1000:.0f} ms after the worker settled the photo")
        assert lag <= PUSH_SECONDS, lag
        stored = alice_api("GET", f"/photos/{photo['photo_id']}").body
        assert (stored["status"], stored["version"]) == ("READY", message["photo"]["version"])

        # Bob's socket works (a pong comes back) but carried nothing of Alice's.
        bobs.send(json.dumps({"type": "ping"}))
        assert next_message(bobs, PUSH_SECONDS) == {"type": "pong"}
        with pytest.raises(TimeoutError):
            bobs.recv(timeout=QUIET_SECONDS)


# --- the token in the query string is never logged ------------------------------------------------------------------


@pytest.fixture
def devstack_log(devstack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Callable[[], str]:
    """The session dev stack's log (tests/e2e/conftest.py writes it beside its outputs.json)."""
    api_port = devstack["api_url"].rsplit(":", 1)[1]
    aws_port = devstack["aws_endpoint_url"].rsplit(":", 1)[1]
    marker = f"(api {api_port}, aws {aws_port})"
    candidates = {p.resolve() for p in tmp_path_factory.getbasetemp().glob("devstack*/devstack.log")}
    logs = [p for p in candidates if marker in p.read_text(errors="replace")]
    assert len(logs) == 1, logs
    path: Path = logs[0]
    return lambda: path.read_text(errors="replace")


def test_the_query_string_never_appears_in_the_dev_stacks_log(
    devstack: dict[str, Any], demo: User, devstack_log: Callable[[], str]
) -> None:
    unknown = f"not-a-token-{uuid.uuid4().hex}"
    disconnects = devstack_log().count('"ws_disconnect"')
    with open_socket(devstack["ws_url"], demo.id_token) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert next_message(ws, PUSH_SECONDS) == {"type": "pong"}
    for refused in (unknown, demo.id_token + "x"):
        with pytest.raises(InvalidStatus):
            open_socket(devstack["ws_url"], refused)
    with contextlib.suppress(TimeoutError):  # this connection's $disconnect is logged after the close
        _wait_for(lambda: devstack_log().count('"ws_disconnect"') > disconnects)
    log = devstack_log()
    assert "ws_connect" in log, "nothing about the connections was logged: the check below would prove nothing"
    for secret in (demo.id_token, unknown, demo.id_token.split(".")[2]):
        assert secret not in log


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.1)
