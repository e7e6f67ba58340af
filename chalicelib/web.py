"""HTTP edge: request body parsing, the caller's identity, and the one table mapping domain errors to HTTP.

Chalice middleware never sees exceptions raised by REST views, so the mapping lives in a view decorator.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from chalice.app import Request, Response

from chalicelib import deps, errors, logs

F = TypeVar("F", bound=Callable[..., Any])

# (status, Code) per domain error; the Code names follow Chalice's own error classes.
ERROR_STATUS: dict[type[errors.DomainError], tuple[int, str]] = {
    errors.Invalid: (400, "BadRequestError"),
    errors.PasswordRequired: (401, "PasswordRequired"),
    errors.WrongPassword: (401, "WrongPassword"),
    errors.Forbidden: (403, "ForbiddenError"),
    errors.NotFound: (404, "NotFoundError"),
    errors.DuplicatePhoto: (409, "DuplicatePhoto"),
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
    status, code = next(mapped for kind, mapped in ERROR_STATUS.items() if isinstance(error, kind))
    headers: dict[str, str | list[str]] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(body={"Code": code, "Message": str(error), **error.details}, status_code=status, headers=headers)


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


def current_username(request: Request | None) -> str | None:
    """The caller's Cognito user name (`cognito:username`, in every ID token), for showing to people they share with."""
    claims = (((request.context or {}) if request is not None else {}).get("authorizer") or {}).get("claims") or {}
    username = claims.get("cognito:username")
    return username if isinstance(username, str) and username else None


def header(request: Request | None, name: str) -> str | None:
    """A request header by name, whatever its case."""
    wanted = name.lower()
    headers = request.headers if request is not None else {}
    return next((value for key, value in (headers or {}).items() if key.lower() == wanted), None)


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


# --- CORS: only the configured SPA origins may read API responses from a browser ------------------------------------

# What the SPA sends beyond the CORS-safelisted headers, and which response headers its code may read.
# X-Link-Access carries a password-protected share link's access token (see chalicelib/albums/links.py).
ALLOWED_REQUEST_HEADERS = "Authorization, Content-Type, X-Link-Access"
EXPOSED_RESPONSE_HEADERS = "Retry-After"
PREFLIGHT_MAX_AGE_SECONDS = 600


def allowed_origin(headers: Mapping[str, str] | None) -> str | None:
    """The request's Origin if it is one of the configured SPA origins (exact match), else None."""
    origin = next((value for name, value in (headers or {}).items() if name.lower() == "origin"), None)
    if not origin:
        return None  # not a cross-origin browser request: no need to read the settings at all
    return origin if origin in deps.settings().allowed_origins else None


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSED_RESPONSE_HEADERS,
        "Vary": "Origin",
    }


def allow_spa_origin(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """HTTP middleware: CORS headers on every response (errors included) to a request from an allowed origin."""
    response = get_response(request)
    origin = allowed_origin(request.headers)
    if origin is not None:
        response.headers.update(cors_headers(origin))
    else:
        # Caches must not serve a response made for one origin to another.
        response.headers.setdefault("Vary", "Origin")
    return response


def preflight_response(request: Request | None, allowed_methods: list[str]) -> Response:
    """The answer to a CORS preflight: permission for an allowed origin, a 403 otherwise. It carries no data."""
    origin = allowed_origin(request.headers) if request is not None else None
    if origin is None:
        return Response(
            body={"Code": "ForbiddenError", "Message": "Origin: this origin may not call the API from a browser"},
            status_code=403,
        )
    return Response(
        body="",
        status_code=204,
        headers={
            # The middleware adds Allow-Origin and Vary to this response like to any other.
            "Access-Control-Allow-Methods": ", ".join(allowed_methods),
            "Access-Control-Allow-Headers": ALLOWED_REQUEST_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
        },
    )
