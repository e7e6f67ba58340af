"""Photo ids: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32), so ids sort by creation time."""

from __future__ import annotations

import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}\Z")


def new_ulid(now_ms: int | None = None, randomness: bytes | None = None) -> str:
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    random_bits = int.from_bytes(randomness if randomness is not None else os.urandom(10), "big")
    value = (millis << 80) | random_bits
    return "".join(_ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))


def is_ulid(value: str) -> bool:
    return bool(ULID_PATTERN.match(value))
