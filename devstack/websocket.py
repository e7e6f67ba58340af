"""The dev stack's WebSocket endpoint: API Gateway's WebSocket API in front of the app's Chalice handlers.

In AWS a client connects to `wss://<api-id>.execute-api.<region>.amazonaws.com/<stage>`; API Gateway invokes the
app's `@app.on_ws_connect`, `@app.on_ws_message` and `@app.on_ws_disconnect` functions with events of its own shape,
and the backend reaches a client through the `@connections` management API. Here one `ThreadingHTTPServer` on
127.0.0.1 plays both parts on one port, so `ws_url` and PHOTOSKY_WS_MANAGEMENT_URL differ only in their scheme.
RFC 6455 is implemented here on the standard library (handshake, masked client frames, fragmentation, text, binary,
close, ping, pong): the libraries that speak it run their own server, and this one must also serve plain HTTP routes.

- Upgrade at `/`, `/<stage>` or `/<stage>/` (the stage URL API Gateway serves; any other path is a 403): the
  `$connect` handler gets a CONNECT event (query string, headers, a fresh connection id). A 2xx `statusCode`
  completes the handshake (101); any other status refuses it with that status and the handler's body, as API
  Gateway does; a handler that raises (or answers no status) is a 502.
- Text messages (binary ones as base64 text, `isBase64Encoded: true`), reassembled from their frames, go to the
  `$default` handler one at a time per connection. Its return value is dropped (Chalice's routes have no route
  response); a handler that raises, or a missing `$default` route, gets API Gateway's error message on the socket.
- A close from either side, a dropped TCP connection, a protocol error, `DELETE @connections`, the idle timeout or the
  connection's time limit end the connection; `$disconnect` then runs exactly once, after the connection is gone
  (a POST to it is already a 410), with `disconnectStatusCode` and `disconnectReason`.
- `POST|GET|DELETE /@connections/<id>` (also under `/<stage>`), over plain HTTP, the way boto3's
  `apigatewaymanagementapi` calls them (the id URL-encoded): POST sends the body as one message (a text frame, or
  binary if it is not UTF-8), GET describes the connection, DELETE closes it (204). An unknown id, or one whose
  `$connect` has not finished, is a 410 with `x-amzn-ErrorType: GoneException`, which botocore raises as
  `GoneException`. Requests are not SigV4-checked (nor are they by the emulated AWS).

API Gateway's limits, copied: frames of at most 32 KiB (a larger frame closes the connection with 1009) and
messages of at most 128 KiB (1009; a larger @connections POST is a 413 PayloadTooLargeException), so a message
from the backend reaches the client in 32 KiB frames; a URL of at most 4096 characters (414); a connection idle
(no frame either way) for 10 minutes or open for 2 hours is closed with 1001.

The query string carries the client's ID token: nothing here logs it, nor the request line (paths only).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import hashlib
import json
import logging
import re
import secrets
import socket
import string
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from chalice.local import LambdaContext

from devstack.serving import DevServer

if TYPE_CHECKING:
    from chalice.app import Chalice

log = logging.getLogger(__name__)

# API Gateway's WebSocket quotas (none can be raised): frame size, message payload size, idle connection timeout,
# connection duration and URL length.
FRAME_MAX_BYTES = 32 * 1024
MESSAGE_MAX_BYTES = 128 * 1024
IDLE_TIMEOUT_SECONDS = 10 * 60.0
CONNECTION_MAX_SECONDS = 2 * 60 * 60.0
URL_MAX_CHARS = 4096
# API Gateway's integration timeout, given to the handlers as their Lambda context's time limit.
INTEGRATION_TIMEOUT_MS = 29_000
# How long a connection the server closes waits for the client's close frame before the TCP connection is dropped.
CLOSE_GRACE_SECONDS = 2.0
# How often the limits above are checked.
WATCH_INTERVAL_SECONDS = 1.0
# A request (the handshake, a management call) must arrive within this; an open WebSocket has no read timeout.
REQUEST_TIMEOUT_SECONDS = 60.0
# A client that stops reading fills its socket buffer; a push to it gives up after this and drops the connection.
SEND_TIMEOUT_SECONDS = 5.0
# How long stopping the server waits for open connections to close and their `$disconnect` to finish.
STOP_TIMEOUT_SECONDS = 5.0
# Route keys API Gateway invokes (Chalice's `app.websocket_handlers` keys).
CONNECT, MESSAGE, DISCONNECT = "$connect", "$default", "$disconnect"
# RFC 6455 section 1.3: the GUID the Sec-WebSocket-Accept value is derived with.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_API_ID_ALPHABET = string.ascii_lowercase + string.digits
_MANAGEMENT_PATH = re.compile(r"/@connections/(?P<id>[^/]+)")

Handler = Callable[[dict[str, Any], LambdaContext], Any]


class Opcode(enum.IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    NO_STATUS = 1005  # never sent: stands for "the close frame had no code"
    ABNORMAL = 1006  # never sent: stands for "the TCP connection ended without a close frame"
    INVALID_DATA = 1007
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


class ProtocolError(Exception):
    """The client broke RFC 6455 or one of API Gateway's limits: the connection is closed with `code`."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ConnectionDropped(Exception):
    """The TCP connection ended (or was ended) in the middle of reading a frame."""


class ConnectionGone(Exception):
    """The connection is closed or closing: nothing more can be sent to it (the management API's 410)."""


# --- frames (RFC 6455 section 5) ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: Opcode
    payload: bytes


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept answer to a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode() + _ACCEPT_GUID, usedforsecurity=False).digest()).decode()


def _unmask(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return payload
    # One big-integer XOR instead of a Python loop over every byte (a 32 KiB frame: ~30 µs instead of ~3 ms).
    key = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(len(payload), "big")


def _read_exactly(read: Callable[[int], bytes], size: int) -> bytes:
    data = read(size) if size else b""
    if len(data) != size:
        raise ConnectionDropped(f"connection ended {size - len(data)} bytes short of a frame")
    return data


def read_frame(read: Callable[[int], bytes], *, max_payload: int = FRAME_MAX_BYTES) -> Frame:
    """The next frame from a client, unmasked; ProtocolError for anything RFC 6455 or API Gateway refuses (a frame
    over `max_payload` is refused from its header, before its payload is read)."""
    first, second = _read_exactly(read, 2)
    if first & 0x70:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set, but no extension was negotiated")
    try:
        opcode = Opcode(first & 0x0F)
    except ValueError:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"unknown opcode {first & 0x0F:#x}") from None
    fin = bool(first & 0x80)
    if not second & 0x80:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "a client's frames must be masked")
    length = second & 0x7F
    if opcode >= Opcode.CLOSE and (not fin or length > 125):
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "a control frame must be whole and at most 125 bytes")
    if length == 126:
        (length,) = struct.unpack("!H", _read_exactly(read, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", _read_exactly(read, 8))
        if length >> 63:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "frame length has its most significant bit set")
    if length > max_payload:
        raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, f"frame of {length} bytes; frames may have {max_payload}")
    mask = _read_exactly(read, 4)
    return Frame(fin, opcode, _unmask(_read_exactly(read, length), mask))


def encode_frame(opcode: Opcode, payload: bytes, *, fin: bool = True) -> bytes:
    """A server frame (never masked)."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


def message_frames(data: bytes, opcode: Opcode, *, frame_bytes: int = FRAME_MAX_BYTES) -> list[bytes]:
    """One message as the frames API Gateway sends it in: at most `frame_bytes` of payload each."""
    chunks = [data[start : start + frame_bytes] for start in range(0, len(data), frame_bytes)] or [b""]
    last = len(chunks) - 1
    return [
        encode_frame(opcode if index == 0 else Opcode.CONTINUATION, chunk, fin=index == last)
        for index, chunk in enumerate(chunks)
    ]


def _valid_close_code(code: int) -> bool:
    # RFC 6455 section 7.4 and IANA's registry: 1004-1006 and 1015 are never sent; 3000-4999 are for applications.
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


def parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a close frame; NO_STATUS when it has no code."""
    if not payload:
        return CloseCode.NO_STATUS, ""
    if len(payload) == 1:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "a close frame's payload cannot be 1 byte")
    (code,) = struct.unpack("!H", payload[:2])
    if not _valid_close_code(code):
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"close code {code} may not be sent")
    try:
        return code, payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(CloseCode.INVALID_DATA, "a close reason must be UTF-8") from None


class MessageAssembler:
    """Data frames in, whole messages out (RFC 6455 section 5.4), at most `max_bytes` each."""

    def __init__(self, max_bytes: int = MESSAGE_MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._opcode: Opcode | None = None
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, frame: Frame) -> tuple[Opcode, bytes] | None:
        """The message `frame` completes, or None while it is still in pieces."""
        if frame.opcode == Opcode.CONTINUATION:
            if self._opcode is None:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "a continuation frame with no message to continue")
        elif self._opcode is not None:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "a new message before the fragmented one ended")
        else:
            self._opcode = frame.opcode
        self._size += len(frame.payload)
        if self._size > self._max_bytes:
            raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, f"message over {self._max_bytes} bytes")
        self._parts.append(frame.payload)
        if not frame.fin:
            return None
        opcode, data = self._opcode, b"".join(self._parts)
        self._opcode, self._parts, self._size = None, [], 0
        if opcode == Opcode.TEXT:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(CloseCode.INVALID_DATA, "a text message must be UTF-8") from None
        return opcode, data


# --- connections --------------------------------------------------------------------------------------------------


def new_connection_id() -> str:
    """An id in API Gateway's format (e.g. 'L0SM9cOFvHcCIhw='): 16 base64 characters, so '+', '/' and '=' occur and
    must survive URL encoding in @connections calls."""
    return base64.b64encode(secrets.token_bytes(11)).decode()


def _new_api_id() -> str:
    return "".join(secrets.choice(_API_ID_ALPHABET) for _ in range(10))


def _short_id() -> str:
    return base64.b64encode(secrets.token_bytes(7)).decode()[:10] + "="


def _set_send_timeout(sock: socket.socket, seconds: float) -> None:
    # A socket timeout would also apply to the reads of an open WebSocket, which have none (the watchdog enforces
    # the idle limit); SO_SNDTIMEO bounds the sends alone.
    with contextlib.suppress(OSError):
        whole = int(seconds)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", whole, int((seconds - whole) * 1e6)))


class Connection:
    """One client's WebSocket. Its request thread reads; anyone may send (one frame sequence at a time) or close."""

    def __init__(
        self, connection_id: str, sock: socket.socket, *, source_ip: str, user_agent: str, clock: Callable[[], float]
    ) -> None:
        self.connection_id = connection_id
        self.source_ip = source_ip
        self.user_agent = user_agent
        self._sock = sock
        self._clock = clock
        self.connected_at = clock()
        self.last_active_at = self.connected_at
        # Held for a whole frame sequence (and for the handshake's 101): frames of two senders never interleave.
        self.write_lock = threading.Lock()
        # Set once, by the first close (either side): the code and reason `$disconnect` reports.
        self.closing_since: float | None = None
        self.close_code: int = CloseCode.NORMAL
        self.close_reason = ""

    def touch(self) -> None:
        self.last_active_at = self._clock()

    def send_message(self, data: bytes) -> None:
        """Send one message (text if it is UTF-8); ConnectionGone if the connection is closing or the send fails
        (a failed send leaves the stream unusable, so the connection is dropped)."""
        try:
            data.decode("utf-8")
            opcode = Opcode.TEXT
        except UnicodeDecodeError:
            opcode = Opcode.BINARY
        with self.write_lock:
            if self.closing_since is not None:
                raise ConnectionGone(self.connection_id)
            try:
                for frame in message_frames(data, opcode):
                    self._sock.sendall(frame)
            except OSError:
                self.closing_since = self._clock()
                self.close_code, self.close_reason = CloseCode.ABNORMAL, "Send to the client failed"
                self.drop()
                raise ConnectionGone(self.connection_id) from None
        self.touch()

    def send_pong(self, payload: bytes) -> None:
        with self.write_lock, contextlib.suppress(OSError):
            if self.closing_since is None:
                self._sock.sendall(encode_frame(Opcode.PONG, payload))

    def close(self, code: int, reason: str, *, echo: bool = False) -> bool:
        """Send a close frame (a client's own `code` back when `echo`, none for NO_STATUS) and remember why the
        connection ends; False if it was already closing."""
        with self.write_lock:
            if self.closing_since is not None:
                return False
            self.closing_since = self._clock()
            self.close_code, self.close_reason = code, reason
            payload = b"" if code == CloseCode.NO_STATUS else struct.pack("!H", code)
            if not echo and payload:
                # A control frame carries at most 125 bytes; never cut a UTF-8 character in two.
                payload += reason.encode()[:123].decode("utf-8", "ignore").encode()
            with contextlib.suppress(OSError):
                self._sock.sendall(encode_frame(Opcode.CLOSE, payload))
            return True

    def drop(self) -> None:
        """End the TCP connection now: the reading thread sees the end of the stream."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def describe(self) -> dict[str, Any]:
        """GetConnection's answer."""
        return {
            "connectedAt": _iso(self.connected_at),
            "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent},
            "lastActiveAt": _iso(self.last_active_at),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- API Gateway's events -----------------------------------------------------------------------------------------


def _request_time(epoch: float) -> str:
    # API Gateway's CLF-like requestTime, in English whatever the locale: "09/Feb/2019:23:09:58 +0000".
    moment = datetime.fromtimestamp(epoch, UTC)
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[moment.month - 1]
    return f"{moment:%d}/{month}/{moment:%Y:%H:%M:%S} +0000"


def _multi_value(pairs: list[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value  # the last value, as API Gateway's single-value map has it
        multi.setdefault(name, []).append(value)
    return single, multi


@dataclass(frozen=True)
class Api:
    """What API Gateway puts in every event's requestContext about itself."""

    api_id: str
    stage: str
    domain_name: str


def request_context(
    api: Api, connection: Connection, *, route_key: str, event_type: str, now: float, **extra: Any
) -> dict[str, Any]:
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": _short_id(),
        "requestTime": _request_time(now),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": int(connection.connected_at * 1000),
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
        "requestId": _short_id(),
        "domainName": api.domain_name,
        "connectionId": connection.connection_id,
        "apiId": api.api_id,
        **extra,
    }


def connect_event(
    api: Api, connection: Connection, headers: list[tuple[str, str]], query: list[tuple[str, str]], now: float
) -> dict[str, Any]:
    single_headers, multi_headers = _multi_value(headers)
    parameters, multi_parameters = _multi_value(query)
    return {
        "headers": single_headers or {},
        "multiValueHeaders": multi_headers or {},
        "queryStringParameters": parameters,
        "multiValueQueryStringParameters": multi_parameters,
        "requestContext": request_context(api, connection, route_key=CONNECT, event_type="CONNECT", now=now),
        "isBase64Encoded": False,
    }


def message_event(api: Api, connection: Connection, body: str, *, is_base64: bool, now: float) -> dict[str, Any]:
    context = request_context(api, connection, route_key=MESSAGE, event_type="MESSAGE", now=now, messageId=_short_id())
    return {"requestContext": context, "body": body, "isBase64Encoded": is_base64}


def disconnect_event(api: Api, connection: Connection, code: int, reason: str, now: float) -> dict[str, Any]:
    context = request_context(
        api,
        connection,
        route_key=DISCONNECT,
        event_type="DISCONNECT",
        now=now,
        disconnectStatusCode=int(code),
        disconnectReason=reason,
    )
    return {"headers": {}, "multiValueHeaders": {}, "requestContext": context, "isBase64Encoded": False}


def websocket_routes(app_object: Chalice) -> dict[str, tuple[str, Handler]]:
    """route key -> (Lambda function name, the handler Lambda would invoke) for the app's WebSocket handlers."""
    routes: dict[str, tuple[str, Handler]] = {}
    for route_key, config in app_object.websocket_handlers.items():
        routes[route_key] = (config.name, app_object.handler_map[config.name])
    return routes


# --- the server ---------------------------------------------------------------------------------------------------


class WebSocketServer(DevServer):
    """The WebSocket API and its @connections management API on one port. Stop it with `shutdown()` (which closes
    every connection and waits for their `$disconnect`), then `server_close()`."""

    def __init__(
        self,
        address: tuple[str, int],
        app_object: Chalice,
        *,
        stage: str = "api",
        api_id: str | None = None,
        function_prefix: str = "photosky-local-",
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        max_lifetime: float = CONNECTION_MAX_SECONDS,
        close_grace: float = CLOSE_GRACE_SECONDS,
        send_timeout: float = SEND_TIMEOUT_SECONDS,
        watch_interval: float = WATCH_INTERVAL_SECONDS,
        connection_ids: Callable[[], str] = new_connection_id,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.routes = websocket_routes(app_object)
        self.stage = stage
        self.api_id = api_id or _new_api_id()
        self.function_prefix = function_prefix
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self.close_grace = close_grace
        self.send_timeout = send_timeout
        self.watch_interval = watch_interval
        self.connection_ids = connection_ids
        self.clock = clock
        self._connections: dict[str, Connection] = {}
        # Connections whose request thread is still running (reading, or in `$disconnect`): stopping waits for them.
        self._sessions = 0
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        super().__init__(address, _Handler)
        # The port the OS chose when asked for port 0.
        host, port = address[0], self.server_address[1]
        self.ws_url = f"ws://{host}:{port}"
        self.management_url = f"http://{host}:{port}"
        self._watchdog = threading.Thread(target=self._watch, name="websocket-watchdog", daemon=True)
        self._watchdog.start()

    # -- the registry of open connections --

    def connection(self, connection_id: str) -> Connection | None:
        with self._lock:
            return self._connections.get(connection_id)

    def connection_ids_open(self) -> list[str]:
        with self._lock:
            return list(self._connections)

    def session_started(self) -> None:
        with self._lock:
            self._sessions += 1

    def session_ended(self) -> None:
        with self._lock:
            self._sessions -= 1
            self._lock.notify_all()

    def register(self, connection: Connection) -> bool:
        with self._lock:
            if self._stopping.is_set():
                return False
            self._connections[connection.connection_id] = connection
            return True

    def unregister(self, connection: Connection) -> None:
        with self._lock:
            self._connections.pop(connection.connection_id, None)

    # -- invoking the app's handlers as Lambda would --

    def invoke(self, route_key: str, event: dict[str, Any]) -> Any:
        """The handler's result; KeyError if the app has no handler for `route_key`."""
        name, handler = self.routes[route_key]
        context = LambdaContext(
            function_name=self.function_prefix + name, memory_size=512, max_runtime_ms=INTEGRATION_TIMEOUT_MS
        )
        return handler(event, context)

    def api(self, domain_name: str) -> Api:
        return Api(api_id=self.api_id, stage=self.stage, domain_name=domain_name)

    # -- limits and stopping --

    def _watch(self) -> None:
        while not self._stopping.wait(self.watch_interval):
            now = self.clock()
            for connection in self._open():
                if connection.closing_since is not None:
                    if now - connection.closing_since >= self.close_grace:
                        connection.drop()  # the client never answered the close frame
                elif now - connection.last_active_at >= self.idle_timeout:
                    connection.close(CloseCode.GOING_AWAY, "Going away: idle timeout")
                elif now - connection.connected_at >= self.max_lifetime:
                    connection.close(CloseCode.GOING_AWAY, "Going away: connection duration limit")

    def _open(self) -> list[Connection]:
        with self._lock:
            return list(self._connections.values())

    def shutdown(self) -> None:
        super().shutdown()
        self._stopping.set()
        for connection in self._open():
            connection.close(CloseCode.GOING_AWAY, "Going away: the dev stack is stopping")
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        with self._lock:
            if not self._lock.wait_for(lambda: self._sessions == 0, timeout=self.close_grace):
                for connection in self._connections.values():
                    connection.drop()
                self._lock.wait_for(lambda: self._sessions == 0, timeout=max(0.0, deadline - time.monotonic()))
            if self._sessions:
                log.warning("%d WebSocket connection(s) still running their handlers at stop", self._sessions)
        self._watchdog.join(timeout=self.watch_interval + 1)


class _Handler(BaseHTTPRequestHandler):
    server: WebSocketServer
    protocol_version = "HTTP/1.1"  # keep-alive for boto3's management calls
    timeout = REQUEST_TIMEOUT_SECONDS

    def version_string(self) -> str:
        return "PhotoSkyLocalWebSocket"

    # -- logging: never the request line, whose query string may carry a token. http.server prints it (to stderr)
    # from log_request, and from log_error through log_message: both replaced by path-only lines, and log_message
    # silenced for anything else that would print it. --

    def _path(self) -> str:
        # No `path` yet when the request line itself was refused.
        return str(getattr(self, "path", "")).split("?", 1)[0]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self._path(), code)

    def log_error(self, format: str, *args: Any) -> None:
        # `args` can hold the whole request line ("Bad request syntax (...)"); the status is enough.
        log.info("refused a malformed request from %s", self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:
        pass  # everything worth saying goes through log_request / log_error above, scrubbed

    # -- routing --

    def do_GET(self) -> None:
        if len(self.path) > URL_MAX_CHARS:
            self._json(HTTPStatus.REQUEST_URI_TOO_LONG, {"message": "Request-URI Too Long"})
            return
        path = self._path()
        if _management_id(path, self.server.stage) is not None:
            self._manage("GET")
        elif path not in ("/", f"/{self.server.stage}", f"/{self.server.stage}/"):
            self._json(HTTPStatus.FORBIDDEN, {"message": "Forbidden"})
        elif "websocket" not in self.headers.get("Upgrade", "").lower():
            self._json(HTTPStatus.UPGRADE_REQUIRED, {"message": "Upgrade Required"}, {"Upgrade": "websocket"})
        else:
            self._upgrade()

    def do_POST(self) -> None:
        self._manage("POST")

    def do_DELETE(self) -> None:
        self._manage("DELETE")

    def _json(self, status: int, document: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # -- the @connections management API --

    def _manage(self, method: str) -> None:
        request_id = str(uuid.uuid4())
        body = self._read_body()
        if body is None:
            return
        connection_id = _management_id(self._path(), self.server.stage)
        if connection_id is None:
            self._json(HTTPStatus.FORBIDDEN, {"message": "Forbidden"}, {"x-amzn-RequestId": request_id})
            return
        connection = self.server.connection(connection_id)
        if connection is None:
            self._gone(request_id)
            return
        if method == "GET":
            self._json(HTTPStatus.OK, connection.describe(), {"x-amzn-RequestId": request_id})
        elif method == "DELETE":
            connection.close(CloseCode.NORMAL, "Closed through the @connections API")
            self._empty(HTTPStatus.NO_CONTENT, request_id)
        elif len(body) > MESSAGE_MAX_BYTES:
            self._json(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"message": f"Message of {len(body)} bytes; the limit is {MESSAGE_MAX_BYTES}"},
                {"x-amzn-ErrorType": "PayloadTooLargeException", "x-amzn-RequestId": request_id},
            )
        else:
            try:
                connection.send_message(body)
            except ConnectionGone:
                self._gone(request_id)
                return
            self._empty(HTTPStatus.OK, request_id)

    def _read_body(self) -> bytes | None:
        """The request's body (read whole, so the connection stays usable), or None after answering a 400."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._json(HTTPStatus.LENGTH_REQUIRED, {"message": "Content-Length required"})
            return None
        raw = self.headers.get("Content-Length", "0").strip() or "0"
        if not raw.isdigit() or int(raw) > 16 * MESSAGE_MAX_BYTES:
            self.close_connection = True
            self._json(HTTPStatus.BAD_REQUEST, {"message": "Invalid Content-Length"})
            return None
        return self.rfile.read(int(raw))

    def _gone(self, request_id: str) -> None:
        self._json(
            HTTPStatus.GONE,
            {"message": "GoneException: no such connection"},
            {"x-amzn-ErrorType": "GoneException", "x-amzn-RequestId": request_id},
        )

    def _empty(self, status: int, request_id: str) -> None:
        self.send_response(status)
        self.send_header("x-amzn-RequestId", request_id)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # -- the WebSocket itself --

    def _upgrade(self) -> None:
        self.close_connection = True  # after the WebSocket (or a refused handshake), this TCP connection is done
        refusal = _handshake_problem(self.request_version, self.headers)
        if refusal is not None:
            status, message, extra = refusal
            self._json(status, {"message": message}, extra)
            return
        server = self.server
        connection = Connection(
            server.connection_ids(),
            self.connection,
            source_ip=self.client_address[0],
            user_agent=self.headers.get("User-Agent", ""),
            clock=server.clock,
        )
        api = server.api(self.headers.get("Host", ""))
        accepted = self._connect(connection, api)
        if accepted is None:
            return
        server.session_started()
        try:
            code, reason = self._open_websocket(connection, accepted)
        finally:
            connection.drop()
            server.unregister(connection)
        try:
            self._disconnect(connection, api, code, reason)
        finally:
            server.session_ended()

    def _connect(self, connection: Connection, api: Api) -> dict[str, str] | None:
        """Run `$connect`; the headers to add to the 101 if it accepted, else None once the refusal is sent."""
        server = self.server
        query = urllib.parse.parse_qsl(self.path.partition("?")[2], keep_blank_values=True)
        headers = [
            *self.headers.items(),
            ("X-Forwarded-For", self.client_address[0]),
            ("X-Forwarded-Port", str(server.server_address[1])),
            ("X-Forwarded-Proto", "http"),
        ]
        if CONNECT not in server.routes:  # no $connect route: API Gateway lets everyone in
            return {}
        try:
            result = server.invoke(CONNECT, connect_event(api, connection, headers, query, server.clock()))
        except Exception:
            log.exception("the $connect handler failed (connection %s)", connection.connection_id)
            self._json(HTTPStatus.BAD_GATEWAY, {"message": "Internal server error"})
            return None
        status = result.get("statusCode") if isinstance(result, dict) else None
        if not isinstance(status, int) or not 200 <= status <= 599:
            log.error("the $connect handler answered no statusCode (connection %s)", connection.connection_id)
            self._json(HTTPStatus.BAD_GATEWAY, {"message": "Internal server error"})
            return None
        result_headers = result.get("headers") or {}
        if 200 <= status <= 299:
            protocol = result_headers.get("Sec-WebSocket-Protocol")
            return {"Sec-WebSocket-Protocol": protocol} if isinstance(protocol, str) else {}
        log.info("connect refused with %d (connection %s)", status, connection.connection_id)
        body = result.get("body")
        payload = body.encode() if isinstance(body, str) else b""
        self.send_response(status)
        for name, value in result_headers.items():
            if isinstance(value, str) and name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        return None

    def _open_websocket(self, connection: Connection, extra_headers: Mapping[str, str]) -> tuple[int, str]:
        """Complete the handshake and read until the connection ends; returns `$disconnect`'s code and reason."""
        key = self.headers["Sec-WebSocket-Key"].strip()
        # From here on reads block without a timeout (the watchdog enforces the idle and duration limits); sends
        # have one of their own.
        self.connection.settimeout(None)
        _set_send_timeout(self.connection, self.server.send_timeout)
        # Registered and answered under the write lock: a push that finds the connection waits for the 101 to go out.
        with connection.write_lock:
            if not self.server.register(connection):
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"message": "Service Unavailable"})
                return CloseCode.GOING_AWAY, "Going away: the dev stack is stopping"
            self.send_response(HTTPStatus.SWITCHING_PROTOCOLS)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept_key(key))
            for name, value in extra_headers.items():
                self.send_header(name, value)
            self.end_headers()
        log.info("connected %s", connection.connection_id)
        try:
            return self._read_frames(connection)
        except Exception:
            log.exception("WebSocket %s failed", connection.connection_id)
            connection.close(CloseCode.INTERNAL_ERROR, "Internal server error")
            return CloseCode.INTERNAL_ERROR, "Internal server error"

    def _read_frames(self, connection: Connection) -> tuple[int, str]:
        assembler = MessageAssembler()
        while True:
            try:
                frame = read_frame(self.rfile.read)
                connection.touch()
                if frame.opcode == Opcode.CLOSE:
                    code, reason = parse_close(frame.payload)
                    if connection.close(code, reason, echo=True):  # the client's close: answered with its code
                        status = "not set" if code == CloseCode.NO_STATUS else f"set to {code}"
                        return code, f"Client-side close frame status {status}"
                    return connection.close_code, connection.close_reason  # the client's answer to ours
                if frame.opcode == Opcode.PING:
                    connection.send_pong(frame.payload)
                elif frame.opcode != Opcode.PONG and connection.closing_since is None:
                    message = assembler.feed(frame)
                    if message is not None:
                        self._deliver(connection, *message)
            except ProtocolError as e:
                log.info("closing %s with %d: %s", connection.connection_id, e.code, e.reason)
                if not connection.close(e.code, e.reason):
                    return connection.close_code, connection.close_reason
                return e.code, e.reason
            except (ConnectionDropped, OSError):
                if connection.closing_since is not None:  # closed by us, and the client left without answering
                    return connection.close_code, connection.close_reason
                return CloseCode.ABNORMAL, "Connection closed abnormally (no close frame)"

    def _deliver(self, connection: Connection, opcode: Opcode, data: bytes) -> None:
        server = self.server
        is_base64 = opcode == Opcode.BINARY
        body = base64.b64encode(data).decode() if is_base64 else data.decode("utf-8")
        event = message_event(
            server.api(self.headers.get("Host", "")), connection, body, is_base64=is_base64, now=server.clock()
        )
        if MESSAGE not in server.routes:
            self._error_frame(connection, "Forbidden", event)
            return
        try:
            server.invoke(MESSAGE, event)
        except Exception:
            log.exception("the $default handler failed (connection %s)", connection.connection_id)
            self._error_frame(connection, "Internal server error", event)

    def _error_frame(self, connection: Connection, message: str, event: dict[str, Any]) -> None:
        # What API Gateway sends a client whose message it could not route or whose integration failed.
        document = {
            "message": message,
            "connectionId": connection.connection_id,
            "requestId": event["requestContext"]["requestId"],
        }
        with contextlib.suppress(ConnectionGone):
            connection.send_message(json.dumps(document).encode())

    def _disconnect(self, connection: Connection, api: Api, code: int, reason: str) -> None:
        log.info("disconnected %s (%d)", connection.connection_id, code)
        if DISCONNECT not in self.server.routes:
            return
        try:
            self.server.invoke(DISCONNECT, disconnect_event(api, connection, code, reason, self.server.clock()))
        except Exception:
            log.exception("the $disconnect handler failed (connection %s)", connection.connection_id)


def _management_id(path: str, stage: str) -> str | None:
    """The connection id a management path names (URL-decoded), or None if it is not one."""
    for prefix in ("", f"/{stage}"):
        if path.startswith(prefix + "/@connections/"):
            match = _MANAGEMENT_PATH.fullmatch(path[len(prefix) :])
            if match:
                return urllib.parse.unquote(match["id"])
    return None


def _handshake_problem(version: str, headers: Message) -> tuple[int, str, dict[str, str]] | None:
    """(status, message, headers) refusing a handshake RFC 6455 section 4.2.1 does not allow, or None."""
    if version != "HTTP/1.1":
        return HTTPStatus.BAD_REQUEST, "a WebSocket handshake needs HTTP/1.1", {}
    if not headers.get("Host"):
        return HTTPStatus.BAD_REQUEST, "a WebSocket handshake needs a Host header", {}
    connection_tokens = {token.strip().lower() for token in headers.get("Connection", "").split(",")}
    if "upgrade" not in connection_tokens:
        return HTTPStatus.BAD_REQUEST, "a WebSocket handshake needs Connection: Upgrade", {}
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        return HTTPStatus.UPGRADE_REQUIRED, "only WebSocket version 13 is supported", {"Sec-WebSocket-Version": "13"}
    try:
        key = base64.b64decode(headers.get("Sec-WebSocket-Key", "").strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 16:
        return HTTPStatus.BAD_REQUEST, "Sec-WebSocket-Key must be 16 bytes in base64", {}
    return None


def serve_websocket(host: str, port: int, app_object: Chalice, *, stage: str = "api") -> WebSocketServer:
    """Start the endpoint on a daemon thread; stop it with `shutdown()` then `server_close()`."""
    server = WebSocketServer((host, port), app_object, stage=stage, function_prefix=f"{app_object.app_name}-local-")
    # A short poll interval: shutdown() waits for the loop to notice, and Ctrl-C should feel instant.
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="websocket-server", daemon=True
    ).start()
    return server
