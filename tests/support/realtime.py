"""Events as API Gateway's WebSocket API sends them to PhotoSky's handlers (app.py's websocket_*), for tests and
for the capacity trace (ops/capacity), which invoke the handlers the way the runtime does."""

from __future__ import annotations

import time
from typing import Any

# The WebSocket API id the tests' management URL names (tests/integration/test_realtime.py: MANAGEMENT_URL).
API_ID = "abc123defg"


def ws_event(
    connection_id: str, route: str, *, token: str | None = None, body: str | None = None, api_id: str = API_ID
) -> dict[str, Any]:
    """What API Gateway's WebSocket API sends its integration."""
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    return {
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "connectionId": connection_id,
            "domainName": f"{api_id}.execute-api.us-east-1.amazonaws.com",
            "stage": "dev",
            "apiId": api_id,
            "requestTimeEpoch": int(time.time() * 1000),
        },
        "queryStringParameters": {"token": token} if token is not None else None,
        "body": body,
        "isBase64Encoded": False,
    }
