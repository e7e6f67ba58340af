"""Structured logs: one JSON object per line on stdout, which Lambda ships to CloudWatch Logs unchanged.

Only what is passed to `emit` is written: callers pass identifiers, routes, outcomes and timings, never request
headers or bodies, tokens, presigned URLs or image metadata.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from chalicelib.clock import utc_now


def emit(kind: str, **fields: Any) -> None:
    line = json.dumps({"time": utc_now(), "type": kind, **fields}, default=str, separators=(",", ":"))
    # One write per line, so lines from the threaded dev server never interleave.
    sys.stdout.write(line + "\n")


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading), to one decimal."""
    return round((time.perf_counter() - started) * 1000, 1)
