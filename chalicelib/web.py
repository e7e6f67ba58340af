"""HTTP edge: request body parsing, the caller's identity, and the one table mapping domain errors to HTTP.

Chalice middleware never sees exceptions raised by REST views, so the mapping lives in a view decorator.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from chalice.app import Request, Response

from chalicelib import errors, logs

F = TypeVar("F", bound=Callable[..., Any])

# (status, Code) per domain error; the Code names follow Chalice's own error classes.
_STATUS: dict[type[errors.DomainError], tuple[int, str]] = {
    errors.Invalid: (400, "BadRequestError"),
    errors.NotFound: (404, "NotFoundError"),
    errors.Conflict: (409, "ConflictError"),
    errors.TooLarge: (413, "RequestEntityTooLargeError"),
    errors.UnsupportedType: (415, "UnsupportedMediaType"),
    errors.QuotaExceeded: (429, "TooManyRequestsError"),
    errors.Unavailable: (503, "ServiceUnavailableError"),
}

UNAUTHORIZED_BODY = {"message": "Unauthorized"}


def error_response(error: errors.DomainError) -> Response:
    if isinstance(error, errors.Unauthenticated):
        # The same body API Gateway's Cognito authorizer sends, so clients handle one 401 shape.
        return Response(body=UNAUTHORIZED_BODY, status_code=401)
    status, code = next(mapped for kind, mapped in _STATUS.items() if isinstance(error, kind))
    headers: dict[str, str | list[str]] = {}
    if isinstance(error, errors.Unavailable):
        headers["Retry-After"] = str(error.retry_after)
    return Response(body={"Code": code, "Message": str(error)}, status_code=status, headers=headers)


def http_errors(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except errors.DomainError as e:
            return error_response(e)

    return cast(F, wrapper)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_body(request: Request | None) -> Any:
    """The request's JSON document; anything unparsable is a 400 naming the problem, never a 500."""
    raw = request.raw_body if request is not None else b""
    if not raw:
        raise errors.Invalid("", "request body must be a JSON object")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as e:
        raise errors.Invalid("", "request body is not UTF-8") from e
    except RecursionError as e:
        raise errors.Invalid("", "request body is nested too deeply") from e
    except ValueError as e:
        raise errors.Invalid("", f"request body is not valid JSON ({e})") from e


def current_user_id(request: Request | None) -> str:
    """The caller's Cognito `sub`, as verified by the authorizer (API Gateway in AWS, the dev stack locally)."""
    sub = _claimed_sub(request) if request is not None else None
    if not sub:
        raise errors.Unauthenticated("no verified identity on the request")
    return sub


def _claimed_sub(request: Request) -> str | None:
    """The authorizer's `sub` claim, if the request carries one (logging needs it without raising)."""
    claims = ((request.context or {}).get("authorizer") or {}).get("claims") or {}
    sub = claims.get("sub")
    return sub if isinstance(sub, str) else None


def log_requests(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """HTTP middleware: one log line per request with who, which route, the status and the latency."""
    started = time.perf_counter()
    response = get_response(request)
    lambda_context = getattr(request, "lambda_context", None)
    logs.emit(
        "request",
        request_id=(request.context or {}).get("requestId") or getattr(lambda_context, "aws_request_id", None),
        user_id=_claimed_sub(request),
        method=request.method,
        route=(request.context or {}).get("resourcePath"),  # the template, e.g. /photos/{photo_id}
        status=response.status_code,
        latency_ms=logs.elapsed_ms(started),
    )
    return response
