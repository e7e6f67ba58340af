"""Wall-clock time in the one format the API uses: ISO-8601 UTC with millisecond precision and a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def utc_now() -> str:
    return iso_utc(now())
