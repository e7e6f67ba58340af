"""Chalice's local API Gateway, made to check Cognito tokens the way the real one does.

Chalice's `LocalGatewayAuthorizer` (used by `chalice local` and `chalice.test.Client`) decodes a Cognito token
without verifying it, lets requests with no token through, and crashes on a token without dots. Here that
authorizer is replaced, for routes with a `CognitoUserPoolAuthorizer`, by one that verifies the ID token and
answers 401 `{"message":"Unauthorized"}` like API Gateway. It reaches into two private attributes of chalice
1.34 (`LocalGateway._authorizer`, `TestHTTPClient._local_gateway`); chalice is pinned and the auth tests fail
loudly if those move.
"""

from __future__ import annotations

import logging
from typing import Any

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
)
from chalice.test import Client

from chalicelib import web
from devstack.auth import CognitoIdTokenVerifier, TokenRejected

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


def verifying_dev_server(
    app_object: Chalice, config: Config, verifier: CognitoIdTokenVerifier, host: str, port: int
) -> LocalDevServer:
    """`chalice local`'s threaded HTTP server, with every connection served by the verifying gateway."""

    class Handler(ChaliceRequestHandler):
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

    return LocalDevServer(app_object, config, host, port, handler_cls=Handler)
