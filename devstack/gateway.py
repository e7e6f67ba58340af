"""Chalice's local API Gateway, made to check Cognito tokens the way the real one does.

Chalice's `LocalGatewayAuthorizer` (used by `chalice local` and `chalice.test.Client`) decodes a Cognito token
without verifying it, lets requests with no token through, and crashes on a token without dots. Here that
authorizer is replaced, for routes with a `CognitoUserPoolAuthorizer`, by one that verifies the ID token and
answers 401 `{"message":"Unauthorized"}` like API Gateway. It reaches into two private attributes of chalice
1.34 (`LocalGateway._authorizer`, `TestHTTPClient._local_gateway`); chalice is pinned and the auth tests fail
loudly if those move.

The dev server also reads HTTP the way API Gateway's front door does, where that is cheap (`ApiGatewayRequestHandler`):
a chunked request body is decoded (not read as the next request), framing it cannot trust is a 400 that closes the
connection, the request line and headers may take 10240 bytes (431 past that), a body 10 MiB (413), and bursts of
connections queue instead of being reset.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
from typing import IO, Any

from chalice.app import Chalice, CognitoUserPoolAuthorizer
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    LambdaContext,
    LocalDevServer,
    LocalGateway,
    LocalGatewayAuthorizer,
    LocalGatewayException,
    NotAuthorizedError,
    ThreadedHTTPServer,
)
from chalice.test import Client

from chalicelib import web
from devstack.auth import CognitoIdTokenVerifier, TokenRejected
from devstack.serving import LISTEN_BACKLOG

log = logging.getLogger(__name__)


class VerifyingAuthorizer(LocalGatewayAuthorizer):
    def __init__(self, app_object: Chalice, verifier: CognitoIdTokenVerifier) -> None:
        super().__init__(app_object)
        self._verifier = verifier

    def authorize(
        self, raw_path: str, lambda_event: dict[str, Any], lambda_context: LambdaContext
    ) -> tuple[dict[str, Any], LambdaContext]:
        route_entry = self._route_for_event(lambda_event)
        if route_entry is None or not isinstance(route_entry.authorizer, CognitoUserPoolAuthorizer):
            return super().authorize(raw_path, lambda_event, lambda_context)
        try:
            claims = self._verifier.verify((lambda_event.get("headers") or {}).get("authorization"))
        except TokenRejected as e:
            log.info(
                "401 %s %s: %s", lambda_event["requestContext"]["httpMethod"], raw_path.split("?", maxsplit=1)[0], e
            )
            raise NotAuthorizedError(
                {
                    "x-amzn-RequestId": lambda_context.aws_request_id,
                    "x-amzn-ErrorType": "UnauthorizedException",
                    "Content-Type": "application/json",
                },
                b'{"message":"Unauthorized"}',
            ) from e
        lambda_event["requestContext"]["authorizer"] = {
            "claims": claims,
            "principalId": claims.get("cognito:username", claims["sub"]),
        }
        return lambda_event, lambda_context


class VerifyingLocalGateway(LocalGateway):
    def __init__(self, app_object: Chalice, config: Config, verifier: CognitoIdTokenVerifier) -> None:
        super().__init__(app_object, config)
        self._authorizer = VerifyingAuthorizer(app_object, verifier)

    def handle_request(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Any:
        try:
            return super().handle_request(method, path, headers, body)
        except LocalGatewayException as e:
            # API Gateway's own error responses (401, unknown route) carry the SPA's CORS headers in AWS (see
            # infra/package.py); without them the browser hides a 401 from the SPA, which then cannot sign in again.
            origin = web.allowed_origin(headers)
            if origin is not None:
                e.headers = {**e.headers, **web.cors_headers(origin)}
            raise


def verifying_test_client(
    app_object: Chalice, verifier: CognitoIdTokenVerifier, *, stage: str, project_dir: str
) -> Client:
    """A `chalice.test.Client` whose HTTP requests pass through the verifying gateway."""
    client = Client(app_object, stage_name=stage, project_dir=project_dir)
    http = client.http
    http._local_gateway = VerifyingLocalGateway(app_object, http._config, verifier)
    return client


# API Gateway (REST) quotas that cannot be raised: "total combined size of request line and header values" and
# payload size. https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
MAX_HEADER_BYTES = 10240
MAX_BODY_BYTES = 10 * 1024 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,20}")


class RequestRefused(Exception):
    """The request cannot be served as sent; answered with `status` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _HeaderBudget:
    """Wraps the connection's reader while the request's headers are read: past the budget, the read fails."""

    def __init__(self, rfile: IO[bytes], budget: int) -> None:
        self._rfile = rfile
        self.remaining = budget
        self.exceeded = False

    def readline(self, limit: int = -1) -> bytes:
        allowed = self.remaining + 1  # one byte over the budget is enough to know
        if limit >= 0:
            allowed = min(allowed, limit)
        line = self._rfile.readline(allowed) if allowed > 0 else b""
        self.remaining -= len(line)
        if self.remaining < 0 or allowed <= 0:
            self.exceeded = True
            # http.server answers LineTooLong with 431 (through send_error, below).
            raise http.client.LineTooLong(f"request line and headers over {MAX_HEADER_BYTES} bytes")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rfile, name)


class ApiGatewayRequestHandler(ChaliceRequestHandler):
    """Chalice's local request handler, reading HTTP as API Gateway does where that is cheap.

    Chalice reads a body only by Content-Length: a `Transfer-Encoding: chunked` body was left on the connection and
    read as the next request (request smuggling), a malformed Content-Length dropped the connection without an
    answer, and a negative one waited for the client to hang up. Here a chunked body is decoded; framing that cannot
    be trusted (both headers, several lengths, an unknown coding, a bad chunk, a body cut short) is a 400; every
    refusal is a JSON `{"message": ...}` like API Gateway's own, and closes the connection.
    """

    rfile: Any  # the connection's reader, behind a _HeaderBudget while the headers are read
    request_version: str
    _header_budget: _HeaderBudget | None = None

    def parse_request(self) -> bool:
        budget = _HeaderBudget(self.rfile, MAX_HEADER_BYTES - len(self.raw_requestline))
        self._header_budget = budget
        self.rfile = budget
        try:
            return bool(super().parse_request())
        finally:
            self.rfile = budget._rfile

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own refusals (bad request line, headers too large) as JSON instead of an HTML page.
        if self._header_budget is not None and self._header_budget.exceeded:
            code, message = 431, f"Request header fields too large: over {MAX_HEADER_BYTES} bytes with the request line"
        self._refuse(code, message or self.responses.get(code, ("Bad Request",))[0], cors=False)

    def _generic_handle(self) -> None:
        try:
            super()._generic_handle()
        except RequestRefused as e:  # raised by _parse_payload, before anything was written
            self._refuse(e.status, e.message, cors=True)

    # Chalice binds its verbs to its own _generic_handle; these go through the one above.
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _parse_payload(self) -> tuple[dict[str, str], bytes | None]:
        headers = dict(self.headers)
        codings = self.headers.get_all("Transfer-Encoding") or []
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        if codings:
            if lengths:
                raise RequestRefused(400, "Bad Request: both Transfer-Encoding and Content-Length")
            if self.request_version != "HTTP/1.1":
                raise RequestRefused(400, "Bad Request: Transfer-Encoding needs HTTP/1.1")
            if [c.strip().lower() for c in ",".join(codings).split(",")] != ["chunked"]:
                raise RequestRefused(400, "Bad Request: the only Transfer-Encoding accepted is chunked")
            body = self._read_chunked()
            headers = {name: value for name, value in headers.items() if name.lower() != "transfer-encoding"}
            headers["Content-Length"] = str(len(body))
            return headers, body or None
        if len(lengths) > 1 or (lengths and not _DIGITS.fullmatch(next(iter(lengths)))):
            raise RequestRefused(400, "Bad Request: Content-Length must be one whole number")
        length = int(next(iter(lengths))) if lengths else 0
        if length > MAX_BODY_BYTES:
            raise RequestRefused(413, f"HTTP content length exceeded {MAX_BODY_BYTES} bytes.")
        if not length:
            return headers, None
        sent = self.rfile.read(length)
        if len(sent) != length:
            raise RequestRefused(400, "Bad Request: the body is shorter than its Content-Length")
        return headers, sent

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            size_text = line.removesuffix(b"\r\n").split(b";", 1)[0]  # chunk extensions are ignored
            if not line.endswith(b"\r\n") or not _CHUNK_SIZE.fullmatch(size_text):
                raise RequestRefused(400, "Bad Request: malformed chunked body")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(body) + size > MAX_BODY_BYTES:
                raise RequestRefused(413, f"HTTP content length exceeded {MAX_BODY_BYTES} bytes.")
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.read(2) != b"\r\n":
                raise RequestRefused(400, "Bad Request: malformed chunked body")
            body += chunk
        trailers = 0
        while (line := self.rfile.readline(MAX_HEADER_BYTES + 1)) != b"\r\n":  # trailer fields, discarded
            trailers += len(line)
            if not line.endswith(b"\r\n") or trailers > MAX_HEADER_BYTES:
                raise RequestRefused(400, "Bad Request: malformed chunked body")
        return bytes(body)

    def _refuse(self, status: int, message: str, *, cors: bool) -> None:
        body = json.dumps({"message": message}).encode()
        self.log_error("code %d, message %s", status, message)
        # http.server answers a request line it cannot read in HTTP/0.9: no status line, no headers. API Gateway
        # answers HTTP/1.1.
        if not self.request_version.startswith("HTTP/1."):
            self.request_version = "HTTP/1.1"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if cors:
            # As for the gateway's other own responses (see VerifyingLocalGateway): the SPA must be able to read it.
            origin = web.allowed_origin(dict(self.headers))
            if origin is not None:
                for name, value in web.cors_headers(origin).items():
                    self.send_header(name, value)
        self.send_header("Connection", "close")  # what follows on this connection cannot be trusted
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class ApiGatewayHTTPServer(ThreadedHTTPServer):
    request_queue_size = LISTEN_BACKLOG


def verifying_dev_server(
    app_object: Chalice, config: Config, verifier: CognitoIdTokenVerifier, host: str, port: int
) -> LocalDevServer:
    """`chalice local`'s threaded HTTP server, with every connection served by the verifying gateway."""

    class Handler(ApiGatewayRequestHandler):
        def __init__(self, request: Any, client_address: Any, server: Any, app_object: Chalice, config: Config):
            # The base __init__ serves the request, so the gateway must be in place before it runs.
            self.local_gateway = VerifyingLocalGateway(app_object, config, verifier)
            super(ChaliceRequestHandler, self).__init__(request, client_address, server)

        def log_message(self, format: str, *args: Any) -> None:
            logging.getLogger("devstack.api").debug("%s " + format, self.address_string(), *args)

        def __getattr__(self, name: str) -> Any:
            # Verbs Chalice's handler lacks (TRACE, QUERY, any token) would get http.server's 501 HTML page; API
            # Gateway never answers 5xx for a client's choice of verb, so they go through the gateway like any
            # other and get its JSON 405 (or 403 for an unknown route).
            if name.startswith("do_"):
                return self._generic_handle
            raise AttributeError(name)

    return LocalDevServer(app_object, config, host, port, handler_cls=Handler, server_cls=ApiGatewayHTTPServer)
