"""Cognito ID tokens checked on the WebSocket connect, in pure Python.

API Gateway's WebSocket APIs have no Cognito authorizer, so `$connect` checks the token itself, exactly as the REST
API's authorizer does (devstack/auth.py is the reference, and the tests hold the two to the same verdicts): a
three-part JWS signed RS256 by a key in the pool's JWKS, issued by the pool, for the SPA's app client, an ID token,
unexpired and not issued in the future, with a subject.

Pure Python (chalicelib/rs256.py) because the deployment zip ships no native code; only the connect handler imports
this module, on first use, so the REST API's cold path never pays for it.

A rejection's reason is for logs. It never contains the token or any part of it beyond a truncated `alg` or `kid`,
since the token is a bearer credential for an hour.
"""

from __future__ import annotations

import json
import math
import threading
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from chalicelib import clock as clocks
from chalicelib import logs, rs256

# A Cognito ID token is 1 to 2 KiB with custom attributes and groups; anything far larger is not one, and capping
# it bounds the JSON and base64 work an unauthenticated caller can ask for.
MAX_TOKEN_CHARS = 16 * 1024
# The JWKS fetch runs inside a connect request: short, so a slow endpoint costs a rejected connect, not a hung one.
FETCH_TIMEOUT_SECONDS = 2.0
MAX_JWKS_BYTES = 256 * 1024
# A token naming a key we do not know makes us fetch the JWKS again (Cognito rotating its keys), at most this often
# per container, so forged `kid`s cannot turn connects into a flood of fetches.
REFETCH_SECONDS = 60.0
# Until a first fetch has succeeded there is nothing to verify with: retry sooner than a refetch, so one failed
# fetch at a cold start does not turn every connect away for a minute.
RETRY_FIRST_FETCH_SECONDS = 5.0
# The claims devstack/auth.py (PyJWT's `require`) insists on; present and not null.
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "token_use")

Fetch = Callable[[str], bytes]
Clock = Callable[[], datetime]


class TokenRejected(Exception):
    """The token does not open a connection. The reason is for logs, never for clients, and never holds the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def http_get(url: str) -> bytes:
    """GET a JWKS document: http(s) only (urllib would also open file: URLs), a short timeout and a size cap."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("the JWKS URL is not http(s)")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked above
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
        body: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
    return body


def signing_keys(document: bytes) -> dict[str, rs256.PublicKey]:
    """The RS256 signature keys of a JWKS document, by `kid`. Keys for other uses or algorithms, and keys too weak
    to trust, are left out; ValueError if nothing usable remains (a broken document, not a rotation)."""
    jwks = json.loads(document)
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS document (no keys list)")
    keys = {}
    for jwk in entries:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            continue
        try:
            keys[jwk["kid"]] = rs256.public_key_from_jwk(jwk)
        except ValueError:
            continue
    if not keys:
        raise ValueError("the JWKS has no usable RS256 signing key")
    return keys


class _Jwks:
    """The pool's keys, fetched on first use and again (rarely) when a token names a key not among them."""

    def __init__(self, url: str, fetch: Fetch, clock: Clock) -> None:
        self._url = url
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, rs256.PublicKey] | None = None
        self._last_attempt: float | None = None
        # The dev stack serves connects from several threads; in Lambda this is uncontended.
        self._lock = threading.Lock()

    def key(self, kid: str) -> rs256.PublicKey | None:
        with self._lock:
            if (self._keys is None or kid not in self._keys) and self._may_fetch():
                self._refresh()
            if self._keys is None:
                raise TokenRejected("the pool's signing keys are unavailable (the JWKS fetch failed)")
            return self._keys.get(kid)

    def _may_fetch(self) -> bool:
        if self._last_attempt is None:
            return True
        elapsed = self._clock().timestamp() - self._last_attempt
        wait = REFETCH_SECONDS if self._keys is not None else RETRY_FIRST_FETCH_SECONDS
        # A wall clock set back (elapsed < 0) would otherwise block fetching until it caught up again.
        return elapsed >= wait or elapsed < 0

    def _refresh(self) -> None:
        self._last_attempt = self._clock().timestamp()
        try:
            self._keys = signing_keys(self._fetch(self._url))
        # Whatever goes wrong fetching or reading the document (network, HTTP, JSON, a hostile body) must end in a
        # rejected connect, never an error response; the keys we had, if any, stay in use.
        except Exception as e:
            logs.emit("jwks_fetch_failed", url=self._url, error=f"{type(e).__name__}: {e}"[:300])


class IdTokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str,
        fetch: Fetch | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not issuer or not audience or not jwks_url:
            raise ValueError("an issuer, an audience (the app client id) and a JWKS URL are all required")
        self._issuer = issuer
        self._audience = audience
        self._clock = clock or clocks.now
        self._jwks = _Jwks(jwks_url, fetch or http_get, self._clock)

    def verify(self, token: str | None) -> dict[str, Any]:
        """The token's claims (as JSON decoded them) if it is a valid ID token of the pool; TokenRejected otherwise."""
        if not token:
            raise TokenRejected("no token")
        if not isinstance(token, str):
            raise TokenRejected("the token is not a string")
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected(f"the token is longer than {MAX_TOKEN_CHARS} characters")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenRejected("not a JWS compact token (three base64url parts)")
        header_part, payload_part, signature_part = parts
        header = _json_object(_decoded(header_part, "header"), "header")
        payload = _decoded(payload_part, "payload")
        signature = _decoded(signature_part, "signature")

        # The algorithm is pinned, not taken from the token: no "none", and no HS256 keyed with the public key.
        if header.get("alg") != "RS256":
            raise TokenRejected(f"algorithm {_shown(header.get('alg'))} is not RS256")
        if "crit" in header:
            raise TokenRejected("the header names critical extensions, which are not supported")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenRejected("the header has no key id (kid)")
        key = self._jwks.key(kid)
        if key is None:
            raise TokenRejected(f"unknown signing key {_shown(kid)}")
        # Both parts were checked to be base64url, so they are ASCII.
        if not rs256.verify(key, f"{header_part}.{payload_part}".encode("ascii"), signature):
            raise TokenRejected("the signature does not verify")

        claims = _json_object(payload, "payload")
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        """Cognito's token_use, then the registered claims as devstack/auth.py's PyJWT call checks them (no leeway)."""
        # First, so that an access token (which has no `aud`) is logged as what it is.
        if claims.get("token_use") != "id":
            raise TokenRejected(f"token_use is {_shown(claims.get('token_use'))}, not 'id'")
        for name in REQUIRED_CLAIMS:
            if claims.get(name) is None:
                raise TokenRejected(f"the token has no {name} claim")
        now = self._clock().timestamp()
        if _numeric_date(claims, "exp") <= now:
            raise TokenRejected("the token has expired")
        if _numeric_date(claims, "iat") > now:
            raise TokenRejected("the token was issued in the future (iat)")
        if "nbf" in claims and _numeric_date(claims, "nbf") > now:
            raise TokenRejected("the token is not valid yet (nbf)")
        if claims["iss"] != self._issuer:
            raise TokenRejected(f"the token was issued by {_shown(claims['iss'])}, not this pool")
        if self._audience not in _audiences(claims["aud"]):
            raise TokenRejected("the token is not for this app client (aud)")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise TokenRejected("the token's sub is not a non-empty string")
        if "jti" in claims and not isinstance(claims["jti"], str):
            raise TokenRejected("the token's jti is not a string")


def _decoded(part: str, name: str) -> bytes:
    try:
        return rs256.b64url_decode(part)
    except ValueError:
        raise TokenRejected(f"the token's {name} is not base64url") from None


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # ValueError covers bad JSON and bad UTF-8
        raise TokenRejected(f"the token's {name} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenRejected(f"the token's {name} is not a JSON object")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> int:
    """A NumericDate claim (RFC 7519: a JSON number of seconds), truncated to whole seconds as PyJWT does."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenRejected(f"the token's {name} is not a number")
    return int(value)


def _audiences(aud: Any) -> list[str]:
    # Cognito's ID tokens carry one audience, a string; RFC 7519 also allows a list, which PyJWT accepts too.
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(item, str) for item in aud):
        return aud
    raise TokenRejected("the token's aud is neither a string nor a list of strings")


def _shown(value: Any) -> str:
    """A header or claim value fit for a log line: its repr, cut short (the caller chose it)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
