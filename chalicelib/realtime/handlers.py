"""The WebSocket API's three routes, as app.py's handlers call them: `$connect`, `$disconnect` and `$default`.

Each returns what API Gateway expects of a WebSocket integration (`{"statusCode": ...}`); on `$connect` anything
but 2xx refuses the handshake, and the client sees that status. The token arrives in the query string (browsers
cannot set headers on a WebSocket) and is never logged: only the verifier's reason is, which never contains it.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib import deps, errors, logs
from chalicelib.realtime import messages

OK: dict[str, Any] = {"statusCode": 200}
UNAUTHORIZED: dict[str, Any] = {"statusCode": 401}
# Realtime is off on this stage (no PHOTOSKY_WS_MANAGEMENT_URL), or a dependency failed: the client polls instead.
UNAVAILABLE: dict[str, Any] = {"statusCode": 503}


def connect(connection_id: str, token: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    if deps.settings().ws_management_url is None:
        logs.emit("ws_connect", outcome="realtime_off", connection_id=connection_id)
        return UNAVAILABLE
    # Imported here: the token check (pure-Python RS256) is loaded by the connect function only, never by the API.
    from chalicelib.realtime.tokens import TokenRejected

    try:
        verifier = deps.id_token_verifier()
    except errors.Unavailable as e:
        # Realtime on without what a token is checked against: a misconfigured stage, said in the log.
        logs.emit("ws_connect", outcome="misconfigured", reason=str(e), connection_id=connection_id)
        return UNAVAILABLE
    try:
        claims = verifier.verify(token)
    except TokenRejected as rejected:
        logs.emit(
            "ws_connect",
            outcome="rejected",
            reason=str(rejected),
            connection_id=connection_id,
            latency_ms=logs.elapsed_ms(started),
        )
        return UNAUTHORIZED
    user_id = str(claims["sub"])
    try:
        evicted = deps.connections().add(user_id, connection_id)
    except errors.Unavailable as e:
        logs.emit("ws_connect", outcome="unavailable", reason=str(e), user_id=user_id, connection_id=connection_id)
        return UNAVAILABLE
    evicted_count = _evict(evicted)
    logs.emit(
        "ws_connect",
        outcome="connected",
        user_id=user_id,
        connection_id=connection_id,
        evicted=evicted_count,
        latency_ms=logs.elapsed_ms(started),
    )
    return OK


def _evict(connection_ids: list[str]) -> int:
    """Close each connection forgotten past the bound. The new connection is made either way: a close that fails is
    logged by the notifier (it never raises), and that socket, which hears nothing more, is closed at its next ping
    (`message`)."""
    notifier = deps.notifier()
    for old in connection_ids:
        notifier.close(old)
    return len(connection_ids)


def disconnect(connection_id: str) -> dict[str, Any]:
    """API Gateway ignores what `$disconnect` returns; a failure here leaves the items to TTL and a later 410."""
    try:
        user_id = deps.connections().remove(connection_id)
    except errors.Unavailable as e:
        logs.emit("ws_disconnect", outcome="unavailable", reason=str(e), connection_id=connection_id)
        return OK
    logs.emit(
        "ws_disconnect", outcome="removed" if user_id else "unknown", user_id=user_id, connection_id=connection_id
    )
    return OK


def message(connection_id: str, body: str | None) -> dict[str, Any]:
    """A client's frame: a ping gets a pong (API Gateway closes a connection idle for 10 minutes); anything else an
    error message. Either way the connection stays open, unless a ping comes from a connection no longer stored (its
    eviction's close failed, its account was deleted): that one is closed, since no push would ever reach it and a
    pong would keep its client from falling back to polling."""
    reply = messages.reply_to(body)
    if reply is messages.PONG and _forgotten(connection_id):
        logs.emit("ws_message", outcome="closed_unknown", connection_id=connection_id)
        deps.notifier().close(connection_id)
        return OK
    deps.notifier().reply(connection_id, reply)
    if reply is not messages.PONG:
        logs.emit("ws_message", outcome="refused", connection_id=connection_id)
    return OK


def _forgotten(connection_id: str) -> bool:
    """True only when the connection is known to be no longer stored; a failed lookup keeps it open (pong)."""
    try:
        return deps.connections().owner(connection_id) is None
    except errors.Unavailable:
        return False
