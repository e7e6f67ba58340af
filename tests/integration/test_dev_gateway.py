"""The dev stack's HTTP server (devstack.gateway) over raw sockets: framing, header limits and the listen backlog.

The real server (`verifying_dev_server`, as `make dev` builds it) runs in a thread on a free 127.0.0.1 port, on
in-process moto; requests are written byte by byte, so nothing in an HTTP client library tidies them up first.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client

from devstack.auth import CognitoIdTokenVerifier, StaticJwks
from devstack.gateway import LISTEN_BACKLOG, MAX_BODY_BYTES, MAX_HEADER_BYTES, verifying_dev_server
from tests.conftest import POOL, PROJECT_DIR, STAGE

pytestmark = pytest.mark.suite("edges")

HOST = "127.0.0.1"
ALICE = "a11ce000-0000-4000-8000-000000000001"
READ_SECONDS = 1.0  # how long to wait for anything more once the server has answered


class DevServer:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.port: int = server.server.server_address[1]
        self.token = POOL.id_token(ALICE)
        self.started = False

    def start(self) -> None:
        threading.Thread(target=self.server.server.serve_forever, daemon=True).start()
        self.started = True

    def exchange(self, raw: bytes, *, read_seconds: float = READ_SECONDS, done_sending: bool = False) -> bytes:
        """Send `raw` on a fresh connection; everything the server sends until it closes or goes quiet."""
        with socket.create_connection((HOST, self.port), timeout=5) as conn:
            conn.sendall(raw)
            if done_sending:
                conn.shutdown(socket.SHUT_WR)  # so a body cut short is known to be cut short
            conn.settimeout(read_seconds)
            received = b""
            try:
                while chunk := conn.recv(65536):
                    received += chunk
            except TimeoutError:
                pass
            return received

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        token: bool = True,
        more: dict[str, str] | None = None,
        **headers: str,
    ) -> bytes:
        """The bytes of a request; header names are keyword arguments, `_` for `-` (or `more`, a dict)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        if token:
            lines.append(f"Authorization: {self.token}")
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in {**headers, **(more or {})}.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def dev_server(aws: boto3.session.Session) -> Iterator[DevServer]:
    from app import app

    verifier = CognitoIdTokenVerifier(issuer=POOL.issuer, audiences=[POOL.client_id], jwks=StaticJwks(POOL.jwks()))
    config = Client(app, stage_name=STAGE, project_dir=str(PROJECT_DIR)).http._config
    server = verifying_dev_server(app, config, verifier, HOST, 0)
    running = DevServer(server)
    try:
        yield running
    finally:
        if running.started:
            server.server.shutdown()  # waits for serve_forever, so only once it runs
        server.server.server_close()


@pytest.fixture
def served(dev_server: DevServer) -> DevServer:
    dev_server.start()
    return dev_server


def responses(received: bytes) -> list[tuple[int, dict[str, str], Any]]:
    """The HTTP responses in `received`, in order: (status, headers, parsed JSON body)."""
    found: list[tuple[int, dict[str, str], Any]] = []
    rest = received
    while rest:
        if not rest.startswith(b"HTTP/1."):  # an HTTP/0.9 answer (a bare body, as http.server sends one)
            found.append((0, {}, rest))
            break
        head, _, rest = rest.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("iso-8859-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
        length = int(headers.get("content-length", "0"))
        body, rest = rest[:length], rest[length:]
        is_json = headers.get("content-type") == "application/json"
        found.append((int(status_line.split()[1]), headers, json.loads(body) if body and is_json else body))
    return found


def chunked(data: bytes, *sizes: int) -> bytes:
    """`data` as a chunked body, cut into chunks of `sizes` (the rest in one more)."""
    out, at = b"", 0
    for size in (*sizes, len(data)):
        piece = data[at : at + size]
        if piece:
            out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        at += len(piece)
    return out + b"0\r\n\r\n"


def profile_exists(dev: DevServer) -> bool:
    (status, _, _), *_ = responses(dev.exchange(dev.request("GET", "/users/me", Connection="close")))
    assert status in (200, 404)
    return status == 200


# --- chunked bodies and request smuggling -------------------------------------------------------------------------


def test_a_chunked_body_is_decoded_as_the_requests_body(served: DevServer) -> None:
    payload = json.dumps({"display_name": "Alice"}).encode()
    raw = served.request(
        "POST",
        "/users",
        body=chunked(payload, 5, 3),
        Content_Type="application/json",
        Transfer_Encoding="chunked",
        Connection="close",
    )
    [(status, _, reply)] = responses(served.exchange(raw))
    assert (status, reply["display_name"]) == (201, "Alice")


def smuggled_request(display_name: str) -> bytes:
    payload = json.dumps({"display_name": display_name}).encode()
    return (
        f"POST /users HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {POOL.id_token(ALICE)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def test_a_chunked_body_that_holds_a_request_is_only_a_body(served: DevServer) -> None:
    raw = served.request("GET", "/health", token=False, Transfer_Encoding="chunked")
    replies = responses(served.exchange(raw + chunked(smuggled_request("Mallory"))))
    assert [(status, reply) for status, _, reply in replies] == [(200, {"status": "ok"})]
    assert not profile_exists(served)


def test_a_request_sent_where_a_chunked_body_belongs_is_never_run(served: DevServer) -> None:
    # Chalice used to leave a chunked body on the connection and run it as the next request: here, a profile
    # created with a token the outer request never showed. It is a 400 now, and the connection is closed.
    raw = served.request("GET", "/health", token=False, Transfer_Encoding="chunked")
    replies = responses(served.exchange(raw + smuggled_request("Mallory")))
    assert [(status, headers.get("connection")) for status, headers, _ in replies] == [(400, "close")]
    assert "chunked" in replies[0][2]["message"]
    assert not profile_exists(served)


@pytest.mark.parametrize(
    "framing",
    [
        {"Transfer_Encoding": "chunked", "Content_Length": "5"},
        {"Transfer_Encoding": "gzip, chunked"},
        {"Transfer_Encoding": "identity"},
        {"Content_Length": "abc"},
        {"Content_Length": "-1"},
        {"Content_Length": "5, 6"},
        {"Content_Length": "+5"},
    ],
    ids=["both", "gzip-chunked", "identity", "not-a-number", "negative", "two-lengths", "signed"],
)
def test_framing_that_cannot_be_trusted_is_a_json_400_that_closes_the_connection(
    served: DevServer, framing: dict[str, str]
) -> None:
    # What follows would be a second request on a connection left open; it must never be answered or run.
    payload = b'{"display_name": "Alice"}'
    follow_up = served.request("POST", "/users", body=payload, Content_Type="application/json")
    follow_up = follow_up.replace(b"\r\n\r\n", f"\r\nContent-Length: {len(payload)}\r\n\r\n".encode(), 1)
    raw = served.request("POST", "/users", Content_Type="application/json", more=framing) + b"hello" + follow_up
    [(status, headers, reply)] = responses(served.exchange(raw))
    assert status == 400
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert reply["message"].startswith("Bad Request")
    assert not profile_exists(served)


@pytest.mark.parametrize(
    "body",
    [b"5\r\nabc\r\n0\r\n\r\n", b"zz\r\n", b"3\nabc\n0\n\n", b"3\r\nabcXY0\r\n\r\n", b"-1\r\n", b"3\r\nab"],
    ids=["short-chunk", "not-hex", "bare-newlines", "no-crlf-after-data", "negative-size", "cut-short"],
)
def test_a_malformed_chunked_body_is_a_json_400(served: DevServer, body: bytes) -> None:
    raw = served.request("POST", "/users", body=body, Content_Type="application/json", Transfer_Encoding="chunked")
    [(status, headers, _)] = responses(served.exchange(raw, done_sending=True))
    assert (status, headers["connection"]) == (400, "close")


def test_a_body_cut_short_of_its_content_length_is_a_400_not_a_request_with_half_a_body(served: DevServer) -> None:
    # The part that arrived is a whole JSON object: Chalice used to run the request with it.
    raw = served.request("POST", "/users", Content_Type="application/json", Content_Length="100")
    [(status, _, reply)] = responses(served.exchange(raw + b'{"display_name": "Alice"}', done_sending=True))
    assert status == 400
    assert "shorter than its Content-Length" in reply["message"]
    assert not profile_exists(served)


def test_a_body_over_api_gateways_10_mib_is_413_without_reading_it(served: DevServer) -> None:
    raw = served.request("POST", "/users", Content_Type="application/json", Content_Length=str(MAX_BODY_BYTES + 1))
    [(status, headers, reply)] = responses(served.exchange(raw))
    assert (status, headers["connection"]) == (413, "close")
    assert str(MAX_BODY_BYTES) in reply["message"]


def test_keep_alive_still_serves_requests_one_after_another(served: DevServer) -> None:
    payload = b'{"display_name": "Alice"}'
    first = served.request("POST", "/users", body=chunked(payload), Content_Type="application/json")
    first = first.replace(b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n", 1)
    second = served.request("GET", "/users/me", Connection="close")
    replies = responses(served.exchange(first + second))
    assert [status for status, _, _ in replies] == [201, 200]


# --- header size ----------------------------------------------------------------------------------------------------


def test_headers_within_api_gateways_10_kib_are_served(served: DevServer) -> None:
    raw = served.request("GET", "/health", token=False, X_Padding="p" * 9000, Connection="close")
    [(status, _, reply)] = responses(served.exchange(raw))
    assert (status, reply) == (200, {"status": "ok"})


@pytest.mark.parametrize("shape", ["one-header", "many-headers", "long-url"])
def test_a_request_line_and_headers_over_10_kib_are_a_json_431(served: DevServer, shape: str) -> None:
    if shape == "one-header":
        raw = served.request("GET", "/health", token=False, X_Padding="p" * MAX_HEADER_BYTES)
    elif shape == "many-headers":
        raw = served.request("GET", "/health", token=False, more={f"X-Pad-{n}": "p" * 500 for n in range(21)})
    else:
        raw = served.request("GET", "/health?q=" + "q" * MAX_HEADER_BYTES, token=False)
    [(status, headers, reply)] = responses(served.exchange(raw))
    assert (status, headers["connection"], headers["content-type"]) == (431, "close", "application/json")
    assert str(MAX_HEADER_BYTES) in reply["message"]


def test_http_servers_own_refusals_are_json_too(served: DevServer) -> None:
    [(status, headers, reply)] = responses(served.exchange(b"NONSENSE\r\n\r\n"))
    assert (status, headers["content-type"]) == (400, "application/json")
    assert reply["message"]


# --- listen backlog -------------------------------------------------------------------------------------------------


def test_a_burst_of_connections_queues_instead_of_being_refused(dev_server: DevServer) -> None:
    # The server is listening but not yet accepting, as when every thread is busy: connections wait in the backlog.
    # With socketserver's default of 5, the 7th connect got no answer (Linux drops the SYN of a full queue).
    burst = 64
    assert burst < LISTEN_BACKLOG
    sockets = []
    try:
        for _ in range(burst):
            sockets.append(socket.create_connection((HOST, dev_server.port), timeout=2))
        dev_server.start()
        for conn in sockets:
            conn.sendall(dev_server.request("GET", "/health", token=False, Connection="close"))
        for conn in sockets:
            conn.settimeout(10)
            [(status, _, _)] = responses(conn.makefile("rb").read())
            assert status == 200
    finally:
        for conn in sockets:
            conn.close()
