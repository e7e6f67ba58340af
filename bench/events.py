"""API Gateway REST proxy events and a Lambda context, as AWS hands them to the API function.

The Cognito authorizer's claims arrive under requestContext.authorizer.claims, every value a string (API Gateway
stringifies them: `email_verified` is "true", `auth_time` is "1732350000").
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

ACCOUNT_ID = "123456789012"
API_ID = "abc123defg"
STAGE_NAME = "api"


def cognito_claims(sub: str, username: str = "bench-user") -> dict[str, str]:
    now = int(time.time())
    return {
        "sub": sub,
        "cognito:username": username,
        "email": f"{username}@photosky.test",
        "email_verified": "true",
        "aud": "benchclientid0123456789",
        "token_use": "id",
        "auth_time": str(now),
        "iat": str(now),
        "exp": str(now + 3600),
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_BenchPool",
        "event_id": str(uuid.uuid4()),
    }


def api_gateway_event(
    method: str,
    resource: str,
    *,
    sub: str,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """A REST API (v1) proxy event for `resource` (the route template, e.g. /photos/{photo_id})."""
    path = resource
    for name, value in (path_parameters or {}).items():
        path = path.replace("{" + name + "}", value)
    raw_body = None if body is None else json.dumps(body)
    headers = {
        "Accept": "application/json",
        "Authorization": "eyJraWQiOiJiZW5jaCJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl",  # opaque: API Gateway checked it
        "Host": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "photosky-bench",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if raw_body is not None:
        headers["Content-Type"] = "application/json"
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "res123",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": request_id[:20],
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "path": f"/{STAGE_NAME}{path}" + (f"?{urlencode(query)}" if query else ""),
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE_NAME,
            "domainPrefix": API_ID,
            "requestTimeEpoch": int(time.time() * 1000),
            "requestId": request_id,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "photosky-bench"},
            "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "apiId": API_ID,
            "authorizer": {"claims": cognito_claims(sub)},
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }


@dataclass
class LambdaContext:
    """The attributes frameworks read from the runtime's context object."""

    function_name: str = "photosky-local-api"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/photosky-local-api"
    log_stream_name: str = "2026/11/23/[$LATEST]bench"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
