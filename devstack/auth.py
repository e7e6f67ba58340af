"""Verify Cognito ID tokens the way API Gateway's Cognito user-pool authorizer does.

Used only by the dev stack and the test harness: in AWS, API Gateway has already checked the token before
the Lambda runs, so none of this (nor PyJWT/cryptography) is on the API Lambda's cold path.

A token passes only if it is a three-part JWS, signed RS256 by a key in the pool's JWKS, unexpired, issued
by the pool (`iss`), for one of the app clients (`aud`), and an ID token (`token_use` = id).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jwt


class TokenRejected(Exception):
    """The request's token is not a valid ID token for this pool. The reason is for logs, never for clients."""


def cognito_issuer(region: str, user_pool_id: str) -> str:
    # Real Cognito and moto both issue this form, whatever endpoint served the token.
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


class StaticJwks:
    """A fixed key set (tests)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = _index_keys(jwks)

    def key(self, kid: str) -> Any:
        return self._keys.get(kid)


class HttpJwks:
    """A pool's JWKS fetched over HTTP, cached, and fetched again (at most every `refresh_seconds`) when a
    token names a key we have not seen, which is how Cognito key rotation shows up."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        refresh_seconds: float = 30.0,
        fetch: Callable[[str, float], bytes] | None = None,
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._refresh_seconds = refresh_seconds
        self._fetch = fetch or _http_get
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self._refresh_seconds:
                self._fetched_at = time.monotonic()
                try:
                    self._keys = _index_keys(json.loads(self._fetch(self._url, self._timeout)))
                except (OSError, ValueError) as e:
                    raise TokenRejected(f"cannot load the pool's JWKS from {self._url}: {e}") from e
            return self._keys.get(kid)


def _http_get(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a URL we configure
        body: bytes = response.read()
        return body


def _index_keys(jwks: Mapping[str, Any]) -> dict[str, Any]:
    keys = {}
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") == "RSA" and jwk.get("kid"):
            keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm="RS256").key
    return keys


class CognitoIdTokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audiences: Iterable[str],
        jwks: StaticJwks | HttpJwks,
        leeway_seconds: int = 0,
    ) -> None:
        self._issuer = issuer
        self._audiences = sorted(set(audiences))
        if not self._audiences:
            raise ValueError("at least one app client id (audience) is required")
        self._jwks = jwks
        self._leeway = leeway_seconds

    def verify(self, authorization: str | None) -> dict[str, str]:
        """Return the token's claims as API Gateway passes them to the Lambda (every value a string)."""
        if not authorization:
            raise TokenRejected("no Authorization header")
        token = authorization.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if token.count(".") != 2:
            raise TokenRejected("not a JWS compact token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise TokenRejected(f"unreadable token header: {e}") from e
        if header.get("alg") != "RS256":
            raise TokenRejected(f"algorithm {header.get('alg')!r} is not RS256")
        kid = header.get("kid")
        key = self._jwks.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenRejected(f"unknown signing key {kid!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._audiences,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "token_use"]},
            )
        except jwt.PyJWTError as e:
            raise TokenRejected(f"token failed verification: {e}") from e
        if claims.get("token_use") != "id":
            raise TokenRejected(f"token_use is {claims.get('token_use')!r}, not 'id'")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenRejected("token has no subject")
        return {name: _as_api_gateway_string(value) for name, value in claims.items()}


def _as_api_gateway_string(value: Any) -> str:
    # API Gateway's REST Cognito authorizer hands every claim to the Lambda as a string.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))
