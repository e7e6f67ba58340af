"""Share-link secrets: the token in the URL, the optional password, and the access token a right password earns.

- The token is 256 random bits, URL-safe base64 (43 characters). Only its SHA-256 is stored, so a copy of the table
  opens no album; SHA-256 suffices (no salt, no stretching) because the token is random, not chosen by a person.
- The password is hashed with scrypt (memory-hard: n=2**14, r=8 takes 16 MiB and ~50 ms per guess), with a random
  salt, and its parameters stored beside it so they can be raised later without breaking old links.
- Unlocking returns an access token: HMAC-SHA256 over the link id and an expiry, keyed by a key derived from the
  cursor secret for this purpose alone. It is stateless and dies with its expiry; a revoked link's tokens are
  refused because the link is gone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

TOKEN_BYTES = 32
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCRYPT_SALT_BYTES = 16
_SCRYPT_KEY_BYTES = 32
# scrypt needs 128 * n * r bytes (16 MiB here); OpenSSL's default ceiling is 32 MiB.
_SCRYPT_MAXMEM = 64 * 2**20
ACCESS_TOKEN_SECONDS = 3600
_ACCESS_KEY_LABEL = b"photosky share-link access v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_token(token: str) -> bool:
    """Cheap shape check before any read: 43 URL-safe base64 characters."""
    return len(token) == 43 and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in token)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(_SCRYPT_SALT_BYTES)
    derived = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(derived)}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=_SCRYPT_KEY_BYTES
    )


def password_matches(password: str, stored: str) -> bool:
    scheme, n, r, p, salt, expected = stored.split("$")
    if scheme != "scrypt":
        raise ValueError(f"unknown password hash scheme {scheme!r}")
    derived = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    return hmac.compare_digest(derived, _unb64(expected))


class AccessTokens:
    """Signs and checks the access tokens that unlocking a password link hands out."""

    def __init__(self, secret: Callable[[], bytes]) -> None:
        self._secret = secret
        self._key: bytes | None = None

    def _signing_key(self) -> bytes:
        if self._key is None:
            self._key = hmac.new(self._secret(), _ACCESS_KEY_LABEL, hashlib.sha256).digest()
        return self._key

    def _sign(self, link_id: str, expires: int) -> str:
        return _b64(hmac.new(self._signing_key(), f"{link_id}.{expires}".encode(), hashlib.sha256).digest())

    def issue(self, link_id: str, expires: int) -> str:
        return f"{expires}.{self._sign(link_id, expires)}"

    def valid(self, token: str | None, link_id: str, now: int) -> bool:
        if not token or len(token) > 100 or token.count(".") != 1:
            return False
        expires_text, signature = token.split(".")
        # hmac.compare_digest refuses str with non-ASCII characters (TypeError): a header is whatever a client sent.
        if not token.isascii() or not expires_text.isdigit() or len(expires_text) > 12:
            return False
        expires = int(expires_text)
        return expires > now and hmac.compare_digest(signature, self._sign(link_id, expires))
