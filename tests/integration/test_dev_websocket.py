"""The dev stack's WebSocket endpoint (devstack/websocket.py) in front of a small Chalice app of this file's own.

The server runs on a free 127.0.0.1 port; a real client (the `websockets` package) and raw sockets (for what a real
client never sends: unmasked frames, reserved bits, bad UTF-8, ...) talk to it, and boto3's apigatewaymanagementapi
calls its @connections API as the app's handlers would. The app records every event it is invoked with.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from chalice.app import Chalice, WebsocketEvent
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from devstack.websocket import (
    FRAME_MAX_BYTES,
    MESSAGE_MAX_BYTES,
    URL_MAX_CHARS,
    CloseCode,
    Frame,
    MessageAssembler,
    Opcode,
    ProtocolError,
    WebSocketServer,
    accept_key,
    parse_close,
    read_frame,
)

HOST = "127.0.0.1"
WAIT_SECONDS = 5.0
# The connection id format API Gateway uses, e.g. 'L0SM9cOFvHcCIhw='.
CONNECTION_ID = re.compile(r"[A-Za-z0-9+/]{15}=")
REFUSALS = {"forbidden": 403, "unauthorized": 401, "throttled": 429}
ACCEPTED = "good"  # any token but the ones above is let in


# --- the app under the endpoint -----------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Every event the app's handlers got, in order, and what they noticed."""

    events: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, event: dict[str, Any]) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def of(self, event_type: str, connection_id: str | None = None) -> list[dict[str, Any]]:
        with self.changed:
            return [
                e
                for e in self.events
                if e["requestContext"]["eventType"] == event_type
                and connection_id in (None, e["requestContext"]["connectionId"])
            ]

    def wait_for(self, event_type: str, connection_id: str | None = None, count: int = 1) -> list[dict[str, Any]]:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.of(event_type, connection_id)) >= count, WAIT_SECONDS):
                pytest.fail(f"no {count} {event_type} event(s) for {connection_id} within {WAIT_SECONDS} s: {self}")
        return self.of(event_type, connection_id)


# One session for every client: a session loads botocore's service models once (a fresh one per test cost ~0.15 s).
_SESSION = boto3.session.Session()


def management_client(endpoint_url: str) -> Any:
    return _SESSION.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # One attempt, and a push that hangs fails the test quickly rather than after botocore's 60 s.
        config=Config(retries={"total_max_attempts": 1}, proxies={}, read_timeout=WAIT_SECONDS),
    )


def small_app(recorder: Recorder, management: Callable[[], Any]) -> Chalice:
    app = Chalice(app_name="wstest")
    app.experimental_feature_flags.update(["WEBSOCKETS"])

    @app.on_ws_connect()
    def connect_handler(event: WebsocketEvent) -> dict[str, Any]:
        recorder.add(event.to_dict())
        token = (event.to_dict()["queryStringParameters"] or {}).get("token")
        if token == "crash":
            raise RuntimeError("the connect handler broke")
        if token == "post-early":  # API Gateway: the connection does not exist until $connect has answered
            client = management()
            try:
                client.post_to_connection(ConnectionId=event.connection_id, Data=b"too early")
            except client.exceptions.GoneException:
                recorder.notes.append("gone during $connect")
        if token in REFUSALS:
            return {"statusCode": REFUSALS[token], "body": json.dumps({"message": f"refused: {token}"})}
        return {"statusCode": 200}

    @app.on_ws_message()
    def message_handler(event: WebsocketEvent) -> dict[str, Any]:
        recorder.add(event.to_dict())
        if event.body == "crash":
            raise RuntimeError("the message handler broke")
        if event.to_dict()["isBase64Encoded"]:
            reply = event.body
        elif len(event.body) > FRAME_MAX_BYTES:  # an echo could exceed what @connections accepts
            reply = f"received {len(event.body)} characters"
        else:
            reply = f"echo:{event.body}"
        management().post_to_connection(ConnectionId=event.connection_id, Data=reply.encode())
        return {"statusCode": 200, "body": "never sent: Chalice's routes have no route response"}

    @app.on_ws_disconnect()
    def disconnect_handler(event: WebsocketEvent) -> dict[str, Any]:
        recorder.add(event.to_dict())
        return {"statusCode": 200}

    return app


@dataclass
class Endpoint:
    server: WebSocketServer
    recorder: Recorder
    clients: Callable[[], Any]

    @property
    def management(self) -> Any:
        """boto3's apigatewaymanagementapi client for this endpoint (the one the app's handlers use)."""
        return self.clients()

    @property
    def url(self) -> str:
        return self.server.ws_url

    def connect(self, token: str | None = ACCEPTED, path: str = "/", **options: Any) -> ClientConnection:
        query = "" if token is None else f"?token={token}"
        client: ClientConnection = connect(
            self.url + path + query,
            proxy=None,
            compression=None,
            ping_interval=None,
            open_timeout=WAIT_SECONDS,
            close_timeout=2,
            max_size=None,
            **options,
        )
        return client

    def connected_id(self, before: set[str]) -> str:
        """The connection that opened since `before` (the set of ids then open)."""
        new = set(self.server.connection_ids_open()) - before
        assert len(new) == 1, new
        return new.pop()


@pytest.fixture
def make_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Endpoint]]:
    # Chalice's WebSocket wrapper reads the region (Lambda always has it) to name the API's endpoint.
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    started: list[WebSocketServer] = []

    def make(**options: Any) -> Endpoint:
        recorder = Recorder()
        clients: dict[str, Any] = {}

        def management() -> Any:
            if "client" not in clients:
                clients["client"] = management_client(started[-1].management_url)
            return clients["client"]

        options = {"close_grace": 0.5, "watch_interval": 0.05, **options}
        server = WebSocketServer((HOST, 0), small_app(recorder, management), **options)
        started.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return Endpoint(server, recorder, management)

    yield make
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def endpoint(make_endpoint: Callable[..., Endpoint]) -> Endpoint:
    return make_endpoint()


# --- raw sockets: what a well-behaved client never sends -----------------------------------------------------------


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        header = struct.pack("!BB", first, mask_bit | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawClient:
    """A WebSocket client on a bare socket: the handshake, then frames exactly as given."""

    def __init__(
        self,
        port: int,
        path: str = "/?token=good",
        headers: dict[str, str] | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self.sock = sock or socket.create_connection((HOST, port), timeout=WAIT_SECONDS)
        self.sock.settimeout(WAIT_SECONDS)
        self.key = base64.b64encode(os.urandom(16)).decode()
        fields = {
            "Host": f"{HOST}:{port}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": self.key,
            "Sec-WebSocket-Version": "13",
            **(headers or {}),
        }
        request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v) + "\r\n"
        self.sock.sendall(request.encode())
        self.buffer = b""
        head = self._read_until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode()

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before {marker!r}; got {self.buffer!r}")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def send(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def frame(self) -> Frame:
        """The server's next frame (unmasked, as a server's must be)."""
        first, second = self._read(2)
        assert not second & 0x80, "a server must not mask its frames"
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", self._read(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", self._read(8))
        return Frame(bool(first & 0x80), Opcode(first & 0x0F), self._read(size))

    def close_code(self) -> int:
        """The code of the close frame the server sends next (skipping anything before it)."""
        while True:
            frame = self.frame()
            if frame.opcode == Opcode.CLOSE:
                return int(struct.unpack("!H", frame.payload[:2])[0])

    def at_eof(self) -> bool:
        self.sock.settimeout(WAIT_SECONDS)
        return self._read(1) == b""

    def close(self) -> None:
        self.sock.close()


def received_close(error: ConnectionClosed) -> int | None:
    """The code of the close frame the server sent (None: it sent none)."""
    return None if error.rcvd is None else error.rcvd.code


# --- the handshake ------------------------------------------------------------------------------------------------


def test_a_connect_handler_answering_200_completes_the_handshake_with_api_gateways_event(endpoint: Endpoint) -> None:
    with endpoint.connect("good", additional_headers={"Origin": "http://127.0.0.1:8080"}) as ws:
        assert ws.response is not None
        assert ws.response.status_code == 101
        (event,) = endpoint.recorder.wait_for("CONNECT")
        context = event["requestContext"]
        connection_id = context["connectionId"]
        assert CONNECTION_ID.fullmatch(connection_id), connection_id
        assert endpoint.server.connection_ids_open() == [connection_id]
        assert context["routeKey"] == "$connect"
        assert context["apiId"] == endpoint.server.api_id
        assert re.fullmatch(r"[a-z0-9]{10}", context["apiId"])
        assert context["stage"] == "api"
        assert context["domainName"] == endpoint.url.removeprefix("ws://")
        assert context["identity"]["sourceIp"] == HOST
        assert context["messageDirection"] == "IN"
        assert isinstance(context["connectedAt"], int)
        assert abs(context["connectedAt"] / 1000 - time.time()) < 60
        assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["requestTime"])
        assert context["requestId"]
        assert event["queryStringParameters"] == {"token": "good"}
        assert event["multiValueQueryStringParameters"] == {"token": ["good"]}
        assert event["headers"]["Origin"] == "http://127.0.0.1:8080"
        assert event["headers"]["X-Forwarded-For"] == HOST
        assert event["multiValueHeaders"]["Sec-WebSocket-Version"] == ["13"]
        assert event["isBase64Encoded"] is False


def test_a_connect_without_a_query_string_has_null_parameters(endpoint: Endpoint) -> None:
    with endpoint.connect(None):
        (event,) = endpoint.recorder.wait_for("CONNECT")
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


@pytest.mark.parametrize("token", sorted(REFUSALS))
def test_a_non_2xx_status_refuses_the_handshake_with_that_status(endpoint: Endpoint, token: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        endpoint.connect(token)
    assert refused.value.response.status_code == REFUSALS[token]
    assert json.loads(refused.value.response.body or b"") == {"message": f"refused: {token}"}
    assert endpoint.server.connection_ids_open() == []
    time.sleep(0.1)
    assert endpoint.recorder.of("DISCONNECT") == []  # never connected, so never disconnected


def test_a_connect_handler_that_raises_is_a_502(endpoint: Endpoint, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(InvalidStatus) as refused:
        endpoint.connect("crash")
    assert refused.value.response.status_code == 502
    assert endpoint.server.connection_ids_open() == []
    assert "the $connect handler failed" in caplog.text


@pytest.mark.parametrize("path", ["/", "/api", "/api/"])
def test_the_stage_url_is_accepted_like_the_root(endpoint: Endpoint, path: str) -> None:
    with endpoint.connect("good", path=path) as ws:
        assert ws.response is not None
        assert ws.response.status_code == 101


@pytest.mark.parametrize("path", ["/other", "/api/more", "/@connections"])
def test_a_path_api_gateway_does_not_serve_is_a_403(endpoint: Endpoint, path: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        endpoint.connect("good", path=path)
    assert refused.value.response.status_code == 403
    assert endpoint.recorder.of("CONNECT") == []


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-WebSocket-Version": "8"}, 426),
        ({"Sec-WebSocket-Key": ""}, 400),
        ({"Sec-WebSocket-Key": "dG9vIHNob3J0"}, 400),  # 9 bytes, not 16
        ({"Connection": "keep-alive"}, 400),
        ({"Upgrade": ""}, 426),  # a plain GET of the WebSocket URL
    ],
)
def test_a_handshake_rfc_6455_does_not_allow_is_refused_before_connect(
    endpoint: Endpoint, headers: dict[str, str], status: int
) -> None:
    client = RawClient(endpoint.server.server_address[1], headers=headers)
    try:
        assert client.status == status, client.head
    finally:
        client.close()
    assert endpoint.recorder.of("CONNECT") == []
    if status == 426 and "Sec-WebSocket-Version" in headers:
        assert "Sec-WebSocket-Version: 13" in client.head


def test_the_accept_header_is_rfc_6455s() -> None:
    # RFC 6455 section 1.3's own example.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_url_over_api_gateways_limit_is_a_414(endpoint: Endpoint) -> None:
    client = RawClient(endpoint.server.server_address[1], path="/?token=" + "a" * URL_MAX_CHARS)
    try:
        assert client.status == 414
    finally:
        client.close()
    assert endpoint.recorder.of("CONNECT") == []


def test_a_post_to_a_connection_whose_connect_has_not_answered_is_gone(endpoint: Endpoint) -> None:
    with endpoint.connect("post-early"):
        endpoint.recorder.wait_for("CONNECT")
    assert endpoint.recorder.notes == ["gone during $connect"]


# --- messages both ways -------------------------------------------------------------------------------------------


def test_a_text_message_reaches_the_default_handler_and_its_push_comes_back(endpoint: Endpoint) -> None:
    with endpoint.connect() as ws:
        ws.send("hello")
        assert ws.recv(timeout=WAIT_SECONDS) == "echo:hello"
        (event,) = endpoint.recorder.of("MESSAGE")
    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"]) == ("$default", "MESSAGE")
    assert context["messageId"]
    assert context["connectionId"] == endpoint.recorder.of("CONNECT")[0]["requestContext"]["connectionId"]
    assert (event["body"], event["isBase64Encoded"]) == ("hello", False)


def test_a_binary_message_reaches_the_handler_as_base64(endpoint: Endpoint) -> None:
    with endpoint.connect() as ws:
        ws.send(b"\x00\xffbinary")
        assert ws.recv(timeout=WAIT_SECONDS) == base64.b64encode(b"\x00\xffbinary").decode()
    (event,) = endpoint.recorder.of("MESSAGE")
    assert event["isBase64Encoded"] is True


def test_a_message_handler_that_raises_gets_api_gateways_error_message(endpoint: Endpoint) -> None:
    with endpoint.connect() as ws:
        ws.send("crash")
        error = json.loads(ws.recv(timeout=WAIT_SECONDS))
        ws.send("still open")
        assert ws.recv(timeout=WAIT_SECONDS) == "echo:still open"
    (event, _) = endpoint.recorder.of("MESSAGE")
    assert error == {
        "message": "Internal server error",
        "connectionId": event["requestContext"]["connectionId"],
        "requestId": event["requestContext"]["requestId"],
    }


def test_a_fragmented_message_is_reassembled_around_a_ping(endpoint: Endpoint) -> None:
    client = RawClient(endpoint.server.server_address[1])
    try:
        assert client.status == 101
        assert f"Sec-WebSocket-Accept: {accept_key(client.key)}" in client.head
        client.send(client_frame(Opcode.TEXT, "héllo, ".encode()[:3], fin=False))  # cut inside the 'é'
        client.send(client_frame(Opcode.PING, b"keep-alive"))
        client.send(client_frame(Opcode.CONTINUATION, "héllo, ".encode()[3:], fin=False))
        client.send(client_frame(Opcode.CONTINUATION, b"world"))
        assert client.frame() == Frame(True, Opcode.PONG, b"keep-alive")
        assert client.frame() == Frame(True, Opcode.TEXT, "echo:héllo, world".encode())
    finally:
        client.close()
    (event,) = endpoint.recorder.of("MESSAGE")
    assert event["body"] == "héllo, world"


def test_a_push_over_32_kib_arrives_in_32_kib_frames(endpoint: Endpoint) -> None:
    message = ("0123456789abcdef" * 5000).encode()  # 80,000 bytes: three frames
    client = RawClient(endpoint.server.server_address[1])
    try:
        connection_id = endpoint.connected_id(set())
        endpoint.management.post_to_connection(ConnectionId=connection_id, Data=message)
        frames = [client.frame()]
        while not frames[-1].fin:
            frames.append(client.frame())
    finally:
        client.close()
    assert [(f.opcode, len(f.payload)) for f in frames] == [
        (Opcode.TEXT, FRAME_MAX_BYTES),
        (Opcode.CONTINUATION, FRAME_MAX_BYTES),
        (Opcode.CONTINUATION, len(message) - 2 * FRAME_MAX_BYTES),
    ]
    assert b"".join(f.payload for f in frames) == message


def test_the_largest_frame_and_message_api_gateway_takes_are_delivered(endpoint: Endpoint) -> None:
    with endpoint.connect() as ws:
        ws.send("f" * FRAME_MAX_BYTES)  # one frame of exactly 32 KiB
        assert ws.recv(timeout=WAIT_SECONDS) == "echo:" + "f" * FRAME_MAX_BYTES
        ws.send(["m" * FRAME_MAX_BYTES] * (MESSAGE_MAX_BYTES // FRAME_MAX_BYTES))  # 128 KiB in four frames
        assert ws.recv(timeout=WAIT_SECONDS) == f"received {MESSAGE_MAX_BYTES} characters"


def test_ping_is_answered_with_pong(endpoint: Endpoint) -> None:
    with endpoint.connect() as ws:
        assert ws.ping(b"are you there").wait(WAIT_SECONDS)


# --- what closes a connection: 1002, 1007, 1009 ---------------------------------------------------------------------

PROTOCOL_ERRORS = {
    "unmasked": client_frame(Opcode.TEXT, b"hello", masked=False),
    "reserved bit": client_frame(Opcode.TEXT, b"hello", rsv=0x40),
    "unknown opcode": client_frame(0x3, b"hello"),
    "continuation first": client_frame(Opcode.CONTINUATION, b"hello"),
    "fragmented ping": client_frame(Opcode.PING, b"x", fin=False),
    "ping over 125 bytes": client_frame(Opcode.PING, b"x" * 126),
    "close with 1 byte": client_frame(Opcode.CLOSE, b"\x03"),
    "close with code 1005": client_frame(Opcode.CLOSE, struct.pack("!H", 1005)),
}


@pytest.mark.parametrize("kind", list(PROTOCOL_ERRORS))
def test_a_frame_rfc_6455_forbids_closes_the_connection_with_1002(endpoint: Endpoint, kind: str) -> None:
    client = RawClient(endpoint.server.server_address[1])
    try:
        connection_id = endpoint.connected_id(set())
        client.send(PROTOCOL_ERRORS[kind])
        assert client.close_code() == CloseCode.PROTOCOL_ERROR
        assert client.at_eof()
    finally:
        client.close()
    (event,) = endpoint.recorder.wait_for("DISCONNECT", connection_id)
    assert event["requestContext"]["disconnectStatusCode"] == CloseCode.PROTOCOL_ERROR
    assert endpoint.recorder.of("MESSAGE") == []


def test_a_new_message_inside_a_fragmented_one_closes_with_1002(endpoint: Endpoint) -> None:
    client = RawClient(endpoint.server.server_address[1])
    try:
        client.send(client_frame(Opcode.TEXT, b"part", fin=False))
        client.send(client_frame(Opcode.TEXT, b"another"))
        assert client.close_code() == CloseCode.PROTOCOL_ERROR
    finally:
        client.close()


@pytest.mark.parametrize(
    "frames",
    [
        [client_frame(Opcode.TEXT, b"\xff\xfe")],
        [client_frame(Opcode.TEXT, b"ok", fin=False), client_frame(Opcode.CONTINUATION, b"\xc3")],  # cut 'é'
        [client_frame(Opcode.CLOSE, struct.pack("!H", 1000) + b"\xff")],
    ],
    ids=["text", "fragmented text", "close reason"],
)
def test_text_that_is_not_utf8_closes_with_1007(endpoint: Endpoint, frames: list[bytes]) -> None:
    client = RawClient(endpoint.server.server_address[1])
    try:
        for frame in frames:
            client.send(frame)
        assert client.close_code() == CloseCode.INVALID_DATA
    finally:
        client.close()
    assert endpoint.recorder.of("MESSAGE") == []


def test_a_frame_over_32_kib_closes_with_1009(endpoint: Endpoint) -> None:
    with endpoint.connect() as ws:
        ws.send("x" * (FRAME_MAX_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_SECONDS)
    assert received_close(closed.value) == CloseCode.MESSAGE_TOO_BIG
    (event,) = endpoint.recorder.wait_for("DISCONNECT")
    assert event["requestContext"]["disconnectStatusCode"] == CloseCode.MESSAGE_TOO_BIG
    assert endpoint.recorder.of("MESSAGE") == []


def test_a_message_over_128_kib_in_small_frames_closes_with_1009(endpoint: Endpoint) -> None:
    def send_then_receive(ws: Any) -> None:
        # The close may come while fragments are still going out (the send raises) or after (the receive does).
        ws.send(["y" * FRAME_MAX_BYTES] * (MESSAGE_MAX_BYTES // FRAME_MAX_BYTES) + ["y"])
        ws.recv(timeout=WAIT_SECONDS)

    with endpoint.connect() as ws, pytest.raises(ConnectionClosed) as closed:
        send_then_receive(ws)
    assert received_close(closed.value) == CloseCode.MESSAGE_TOO_BIG
    assert endpoint.recorder.of("MESSAGE") == []


def test_a_frame_length_with_its_top_bit_set_is_refused_before_reading_it() -> None:
    header = struct.pack("!BBQ", 0x81, 0xFF, 1 << 63) + b"mask"
    with pytest.raises(ProtocolError) as refused:
        read_frame(_reader(header))
    assert refused.value.code == CloseCode.PROTOCOL_ERROR


def test_a_huge_frame_is_refused_from_its_header() -> None:
    # 8 GiB announced, nothing sent after the header: refused without waiting for (or allocating) the payload.
    with pytest.raises(ProtocolError) as refused:
        read_frame(_reader(struct.pack("!BBQ", 0x82, 0xFF, 8 << 30)))
    assert refused.value.code == CloseCode.MESSAGE_TOO_BIG


def _reader(data: bytes) -> Callable[[int], bytes]:
    position = 0

    def read(size: int) -> bytes:
        nonlocal position
        chunk = data[position : position + size]
        position += size
        return chunk

    return read


@pytest.mark.parametrize(
    ("payload", "expected"),
    [(b"", (1005, "")), (struct.pack("!H", 4000) + b"bye", (4000, "bye")), (struct.pack("!H", 1000), (1000, ""))],
)
def test_close_frames_are_read_as_rfc_6455_says(payload: bytes, expected: tuple[int, str]) -> None:
    assert parse_close(payload) == expected


@pytest.mark.parametrize("code", [999, 1004, 1006, 1015, 2999, 5000])
def test_close_codes_that_may_not_be_sent_are_protocol_errors(code: int) -> None:
    with pytest.raises(ProtocolError):
        parse_close(struct.pack("!H", code))


def test_the_assembler_starts_afresh_after_each_message() -> None:
    assembler = MessageAssembler(max_bytes=10)
    assert assembler.feed(Frame(False, Opcode.TEXT, b"12345")) is None
    assert assembler.feed(Frame(True, Opcode.CONTINUATION, b"67890")) == (Opcode.TEXT, b"1234567890")
    assert assembler.feed(Frame(True, Opcode.BINARY, b"1234567890")) == (Opcode.BINARY, b"1234567890")


# --- the @connections management API ------------------------------------------------------------------------------


def test_get_connection_describes_it(endpoint: Endpoint) -> None:
    with endpoint.connect(user_agent_header="photosky-test/1"):
        connection_id = endpoint.connected_id(set())
        info = endpoint.management.get_connection(ConnectionId=connection_id)
    assert info["Identity"] == {"SourceIp": HOST, "UserAgent": "photosky-test/1"}
    assert abs(info["ConnectedAt"].timestamp() - time.time()) < 60
    assert info["LastActiveAt"] >= info["ConnectedAt"]


@pytest.mark.parametrize("operation", ["post_to_connection", "get_connection", "delete_connection"])
def test_an_unknown_connection_is_gone_as_boto3_expects(endpoint: Endpoint, operation: str) -> None:
    client = endpoint.management
    arguments: dict[str, Any] = {"ConnectionId": "L0SM9cOFvHcCIhw="}
    if operation == "post_to_connection":
        arguments["Data"] = b"anyone?"
    with pytest.raises(client.exceptions.GoneException) as gone:
        getattr(client, operation)(**arguments)
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_a_post_over_128_kib_is_payload_too_large(endpoint: Endpoint) -> None:
    with endpoint.connect() as ws:
        connection_id = endpoint.connected_id(set())
        client = endpoint.management
        with pytest.raises(client.exceptions.PayloadTooLargeException):
            client.post_to_connection(ConnectionId=connection_id, Data=b"z" * (MESSAGE_MAX_BYTES + 1))
        client.post_to_connection(ConnectionId=connection_id, Data=b"z" * MESSAGE_MAX_BYTES)
        assert ws.recv(timeout=WAIT_SECONDS) == "z" * MESSAGE_MAX_BYTES


def test_a_post_that_is_not_utf8_arrives_as_a_binary_message(endpoint: Endpoint) -> None:
    with endpoint.connect() as ws:
        endpoint.management.post_to_connection(ConnectionId=endpoint.connected_id(set()), Data=b"\xff\x00")
        assert ws.recv(timeout=WAIT_SECONDS) == b"\xff\x00"


def test_connection_ids_are_url_decoded_and_the_stage_prefix_is_accepted(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    endpoint = make_endpoint(connection_ids=lambda: "a+b/c=d%e==")  # every character boto3 must encode
    staged = management_client(endpoint.server.management_url + "/api")
    with endpoint.connect() as ws:
        assert endpoint.server.connection_ids_open() == ["a+b/c=d%e=="]
        endpoint.management.post_to_connection(ConnectionId="a+b/c=d%e==", Data=b"plain")
        staged.post_to_connection(ConnectionId="a+b/c=d%e==", Data=b"staged")
        assert [ws.recv(timeout=WAIT_SECONDS), ws.recv(timeout=WAIT_SECONDS)] == ["plain", "staged"]


def test_delete_closes_the_connection_and_disconnect_runs_once(endpoint: Endpoint) -> None:
    with endpoint.connect() as ws:
        connection_id = endpoint.connected_id(set())
        endpoint.management.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_SECONDS)
    assert received_close(closed.value) == CloseCode.NORMAL
    (event,) = endpoint.recorder.wait_for("DISCONNECT", connection_id)
    assert event["requestContext"]["disconnectStatusCode"] == CloseCode.NORMAL
    with pytest.raises(endpoint.management.exceptions.GoneException):
        endpoint.management.post_to_connection(ConnectionId=connection_id, Data=b"after")
    _assert_one_disconnect_each(endpoint)


# --- $disconnect, exactly once --------------------------------------------------------------------------------------


def _assert_one_disconnect_each(endpoint: Endpoint) -> None:
    time.sleep(0.2)  # long enough for a second, wrong, $disconnect to show up
    connected = [e["requestContext"]["connectionId"] for e in endpoint.recorder.of("CONNECT")]
    disconnected = [e["requestContext"]["connectionId"] for e in endpoint.recorder.of("DISCONNECT")]
    assert sorted(disconnected) == sorted(connected)


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4001, "signing out")])
def test_a_close_from_the_client_runs_disconnect_once_with_its_code(endpoint: Endpoint, code: int, reason: str) -> None:
    with endpoint.connect() as ws:
        connection_id = endpoint.connected_id(set())
        ws.close(code, reason)
    assert ws.close_code == code  # the server echoed the client's code
    (event,) = endpoint.recorder.wait_for("DISCONNECT", connection_id)
    context = event["requestContext"]
    assert (context["routeKey"], context["disconnectStatusCode"]) == ("$disconnect", code)
    assert context["disconnectReason"] == f"Client-side close frame status set to {code}"
    assert context["connectedAt"] == endpoint.recorder.of("CONNECT")[0]["requestContext"]["connectedAt"]
    assert endpoint.server.connection_ids_open() == []
    _assert_one_disconnect_each(endpoint)


def test_a_close_frame_without_a_code_is_reported_as_1005(endpoint: Endpoint) -> None:
    client = RawClient(endpoint.server.server_address[1])
    try:
        connection_id = endpoint.connected_id(set())
        client.send(client_frame(Opcode.CLOSE, b""))
        assert client.frame() == Frame(True, Opcode.CLOSE, b"")  # echoed as sent: no code
        assert client.at_eof()
    finally:
        client.close()
    (event,) = endpoint.recorder.wait_for("DISCONNECT", connection_id)
    assert event["requestContext"]["disconnectStatusCode"] == 1005


def test_a_dropped_tcp_connection_runs_disconnect_once_as_1006(endpoint: Endpoint) -> None:
    client = RawClient(endpoint.server.server_address[1])
    connection_id = endpoint.connected_id(set())
    client.send(client_frame(Opcode.TEXT, b"half a mess", fin=False))
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset, as a crash
    client.close()
    (event,) = endpoint.recorder.wait_for("DISCONNECT", connection_id)
    assert event["requestContext"]["disconnectStatusCode"] == CloseCode.ABNORMAL
    assert endpoint.server.connection_ids_open() == []
    _assert_one_disconnect_each(endpoint)


def test_a_client_that_never_answers_our_close_is_dropped_after_the_grace(endpoint: Endpoint) -> None:
    client = RawClient(endpoint.server.server_address[1])
    try:
        connection_id = endpoint.connected_id(set())
        started = time.monotonic()
        endpoint.management.delete_connection(ConnectionId=connection_id)
        assert client.close_code() == CloseCode.NORMAL
        assert client.at_eof()  # we never answered; the server hung up anyway
        assert time.monotonic() - started < endpoint.server.close_grace + 1
    finally:
        client.close()
    (event,) = endpoint.recorder.wait_for("DISCONNECT", connection_id)
    assert event["requestContext"]["disconnectStatusCode"] == CloseCode.NORMAL


@pytest.mark.parametrize("limit", ["idle_timeout", "max_lifetime"])
def test_api_gateways_time_limits_close_with_1001(make_endpoint: Callable[..., Endpoint], limit: str) -> None:
    endpoint = make_endpoint(**{limit: 0.3})
    with endpoint.connect() as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=WAIT_SECONDS)
    assert received_close(closed.value) == CloseCode.GOING_AWAY
    (event,) = endpoint.recorder.wait_for("DISCONNECT")
    assert event["requestContext"]["disconnectStatusCode"] == CloseCode.GOING_AWAY


def test_activity_keeps_a_connection_past_the_idle_timeout(make_endpoint: Callable[..., Endpoint]) -> None:
    # 2.4 s in all, past the 1.5 s limit, never quiet for more than 0.2 s and a round trip: margin enough for a
    # loaded machine (with 0.3 s and 0.1 s steps, one slow round trip under a full test run closed it).
    endpoint = make_endpoint(idle_timeout=1.5)
    with endpoint.connect() as ws:
        for _ in range(12):
            ws.send("ping")
            assert ws.recv(timeout=WAIT_SECONDS) == "echo:ping"
            time.sleep(0.2)
    (event,) = endpoint.recorder.wait_for("DISCONNECT")
    assert event["requestContext"]["disconnectStatusCode"] == CloseCode.NORMAL  # the client's close, not the limit's


def test_stopping_the_server_closes_every_connection_and_runs_their_disconnect(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    endpoint = make_endpoint()
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(endpoint.connect()) for _ in range(3)]
        endpoint.server.shutdown()
        for ws in clients:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=WAIT_SECONDS)
            assert received_close(closed.value) == CloseCode.GOING_AWAY
    assert len(endpoint.recorder.of("DISCONNECT")) == 3  # before shutdown() returned
    _assert_one_disconnect_each(endpoint)


# --- many clients -------------------------------------------------------------------------------------------------


def test_many_clients_each_get_only_their_own_messages(endpoint: Endpoint) -> None:
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(endpoint.connect()) for _ in range(25)]
        _talk_at_once(endpoint, clients)
    assert len(endpoint.recorder.of("MESSAGE")) == 75
    endpoint.recorder.wait_for("DISCONNECT", count=25)
    _assert_one_disconnect_each(endpoint)


def _talk_at_once(endpoint: Endpoint, clients: list[ClientConnection]) -> None:
    """Every client sends three messages and reads three answers, all clients at once, then closes."""
    ids = endpoint.server.connection_ids_open()
    assert len(set(ids)) == 25
    errors: list[BaseException] = []

    def talk(index: int, ws: ClientConnection) -> None:
        try:
            for round_ in range(3):
                ws.send(f"{index}-{round_}")
                assert ws.recv(timeout=WAIT_SECONDS) == f"echo:{index}-{round_}"
            ws.close()
        except BaseException as e:  # reported by the test's own thread below
            errors.append(e)

    threads = [threading.Thread(target=talk, args=(i, ws)) for i, ws in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS * 2)
    assert errors == []


# --- the token in the query string ----------------------------------------------------------------------------------


def test_the_query_string_is_never_logged(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "eyJzZWNyZXQiOiJ0b2tlbiJ9.c2VjcmV0.dG9rZW4"
    with endpoint.connect(secret) as ws:
        ws.send("hi")
        ws.recv(timeout=WAIT_SECONDS)
    with pytest.raises(InvalidStatus):
        endpoint.connect("unauthorized&secret=" + secret)
    with pytest.raises(InvalidStatus):
        endpoint.connect("crash&secret=" + secret)
    # A request line the HTTP parser refuses: http.server would log it whole.
    with socket.create_connection((HOST, endpoint.server.server_address[1]), timeout=WAIT_SECONDS) as raw:
        raw.sendall(f"GET /?token={secret} extra HTTP/1.1\r\n\r\n".encode())
        assert raw.recv(65536).startswith(b"HTTP/1.1 400")
    endpoint.recorder.wait_for("DISCONNECT")
    # The endpoint's records (the test's own client logs its request line, as a browser's devtools would show it).
    logged = "\n".join(caplog.handler.format(r) for r in caplog.records if not r.name.startswith("websockets."))
    assert "connected " in logged, "the endpoint logged nothing: the check below would prove nothing"
    assert "the $connect handler failed" in logged  # tracebacks included
    assert secret not in logged
    # http.server's own request log goes straight to stderr, request line and all, unless silenced.
    assert secret not in capfd.readouterr().err


# --- the dev stack's wiring: ports, environment, config.json ------------------------------------------------------


def test_the_websocket_port_must_differ_from_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    from devstack.__main__ import StartupError, _ports

    monkeypatch.setenv("PHOTOSKY_API_PORT", "18000")
    monkeypatch.setenv("PHOTOSKY_WS_PORT", "18000")
    with pytest.raises(StartupError, match="PHOTOSKY_WS_PORT"):
        _ports(serve_api=True)


def test_a_busy_websocket_port_is_a_startup_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from devstack.__main__ import StartupError, _ports

    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(socket.socket()) for _ in range(5)]
        for sock in held:
            sock.bind((HOST, 0))
        ports = [sock.getsockname()[1] for sock in held]
        for sock in held[:4]:
            sock.close()  # free again: only the WebSocket port stays taken
        held[4].listen()
        for variable, port in zip(("AWS", "WEB", "MEDIA", "API", "WS"), ports, strict=True):
            monkeypatch.setenv(f"PHOTOSKY_{variable}_PORT", str(port))
        with pytest.raises(StartupError, match=f"port {ports[4]} .*in use.*PHOTOSKY_WS_PORT=<port> make aws"):
            _ports(serve_api=False)


def test_the_api_is_pointed_at_the_stacks_websocket_and_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.config import Settings
    from devstack.__main__ import point_realtime_at_stack

    for name in ("PHOTOSKY_WS_MANAGEMENT_URL", "PHOTOSKY_JWKS_URL", "PHOTOSKY_USER_POOL_CLIENT_ID"):
        monkeypatch.setenv(name, "set by someone else")
    point_realtime_at_stack(
        ws_url="ws://127.0.0.1:8100",
        aws_endpoint="http://127.0.0.1:5000",
        user_pool_id="us-east-1_abc",
        client_id="spa-client",
    )
    assert os.environ["PHOTOSKY_WS_MANAGEMENT_URL"] == "http://127.0.0.1:8100"
    # The emulated pool's keys: the default would be the real Cognito's, on the internet.
    assert os.environ["PHOTOSKY_JWKS_URL"] == "http://127.0.0.1:5000/us-east-1_abc/.well-known/jwks.json"
    assert os.environ["PHOTOSKY_USER_POOL_CLIENT_ID"] == "spa-client"
    settings = Settings.from_env({**os.environ, "TABLE_NAME": "t", "BUCKET_NAME": "b", "AWS_REGION": "us-east-1"})
    assert (settings.ws_management_url, settings.jwks_url) == (
        "http://127.0.0.1:8100",
        "http://127.0.0.1:5000/us-east-1_abc/.well-known/jwks.json",
    )

    point_realtime_at_stack(ws_url=None, aws_endpoint="http://127.0.0.1:5000", user_pool_id="p", client_id="c")
    assert "PHOTOSKY_WS_MANAGEMENT_URL" not in os.environ  # a stack without one: realtime off, never a stale URL


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"ws_url": "ws://127.0.0.1:8100"}, "ws://127.0.0.1:8100"),
        ({}, None),  # a stack older than the WebSocket API
        ({"ws_url": "https://elsewhere"}, None),
        ([], None),
        ("{not json", None),
    ],
)
def test_chalice_local_reads_the_stacks_ws_url_when_it_has_one(tmp_path: Any, document: Any, expected: str) -> None:
    from devstack.chalice_local import read_ws_url

    path = tmp_path / "outputs.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    assert read_ws_url(path) == expected
    assert read_ws_url(tmp_path / "missing.json") is None


def test_config_json_gains_ws_url_and_the_policy_lets_the_spa_connect(tmp_path: Any) -> None:
    from devstack.web import dev_content_security_policy, spa_config

    outputs = {
        "api_url": "http://127.0.0.1:8000",
        "aws_endpoint_url": "http://127.0.0.1:5000",
        "region": "us-east-1",
        "user_pool_id": "us-east-1_abc",
        "user_pool_client_id": "client123",
        "ws_url": "ws://127.0.0.1:8100",
    }
    config = spa_config(outputs, 1000)
    assert config["ws_url"] == "ws://127.0.0.1:8100"
    connect_src = next(
        part.split()[1:] for part in dev_content_security_policy(config).split(";") if "connect-src" in part
    )
    assert "ws://127.0.0.1:8100" in connect_src
    without = spa_config({k: v for k, v in outputs.items() if k != "ws_url"}, 1000)
    assert "ws_url" not in without  # the SPA polls
    assert "ws://" not in dev_content_security_policy(without)


def test_a_client_that_stops_reading_is_dropped_instead_of_hanging_the_pushes(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    endpoint = make_endpoint(send_timeout=0.2)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills fast
    sock.connect((HOST, endpoint.server.server_address[1]))
    client = RawClient(endpoint.server.server_address[1], sock=sock)
    try:
        connection_id = endpoint.connected_id(set())
        started = time.monotonic()
        # The client never reads: its buffers fill, then a push gives up (410) instead of blocking for ever.
        assert _pushes_until_gone(endpoint, connection_id) > 1
        assert time.monotonic() - started < WAIT_SECONDS
        (event,) = endpoint.recorder.wait_for("DISCONNECT", connection_id)
        assert event["requestContext"]["disconnectStatusCode"] == CloseCode.ABNORMAL
    finally:
        client.close()


def _pushes_until_gone(endpoint: Endpoint, connection_id: str, most: int = 1000) -> int:
    """How many 128 KiB pushes to the connection succeed before one is a 410."""
    client = endpoint.management
    for count in range(most):
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=b"x" * MESSAGE_MAX_BYTES)
        except client.exceptions.GoneException:
            return count
    pytest.fail(f"{most} pushes of {MESSAGE_MAX_BYTES} bytes to a client that reads nothing all succeeded")
