"""Opaque, tamper-evident pagination cursors.

A cursor is DynamoDB's LastEvaluatedKey, signed with HMAC-SHA256 together with who asked and how (owner and tag
filter). A forged, truncated or borrowed cursor (another user's, another filter's) is a 400, and nothing a client
sends ever reaches DynamoDB as a start key unsigned.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from chalicelib import errors

_SIGNATURE_BYTES = 16
MAX_CURSOR_LENGTH = 2048


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes | Callable[[], bytes]) -> None:
        """`secret` may be a function: it is then called once, on first use (e.g. a Secrets Manager read that a
        request which never pages should not pay for)."""
        self._secret: bytes | None = None
        self._load_secret: Callable[[], bytes] = secret if callable(secret) else (lambda: secret)
        if not callable(secret):
            self._key()

    def secret(self) -> bytes:
        """The secret itself, loaded on first use: other signers derive their own keys from it."""
        return self._key()

    def _key(self) -> bytes:
        if self._secret is None:
            secret = self._load_secret()
            if len(secret) < 16:
                raise ValueError("the cursor secret must be at least 16 bytes")
            self._secret = secret
        return self._secret

    def _sign(self, scope: str, payload: bytes) -> bytes:
        return hmac.new(self._key(), scope.encode() + b"\x00" + payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def encode(self, last_key: dict[str, Any], *, scope: str) -> str:
        payload = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._sign(scope, payload))}"

    def decode(self, cursor: str, *, scope: str) -> dict[str, Any]:
        invalid = errors.Invalid("cursor", "is not a cursor this listing returned")
        if len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") != 1:
            raise invalid
        payload_text, signature_text = cursor.split(".")
        try:
            payload, signature = _b64decode(payload_text), _b64decode(signature_text)
        except ValueError:
            raise invalid from None
        if not hmac.compare_digest(signature, self._sign(scope, payload)):
            raise invalid
        try:
            key = json.loads(payload)
        except ValueError:
            raise invalid from None
        if not isinstance(key, dict):
            raise invalid
        return key
