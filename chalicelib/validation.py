"""Field validators shared by every request schema.

Each raises `errors.Invalid` naming the field, so a client always learns which field to fix.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from typing import Any

from chalicelib import errors

_MISSING = object()


def require_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise errors.Invalid("", "request body must be a JSON object")
    return body


def reject_unknown_fields(body: Mapping[str, Any], allowed: Collection[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise errors.Invalid(unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")


def text(
    body: Mapping[str, Any],
    field: str,
    *,
    max_length: int,
    min_length: int = 0,
    multiline: bool = False,
) -> str:
    """A present, non-null string field, stripped of surrounding white space, within the length bounds.

    Control characters (and, unless `multiline`, line breaks) are refused: they break rendering and logs.
    """
    value = body.get(field, _MISSING)
    if value is _MISSING:
        raise errors.Invalid(field, "is required")
    if not isinstance(value, str):
        raise errors.Invalid(field, "must be a string")
    value = value.strip()
    if multiline:
        value = value.replace("\r\n", "\n")  # browsers send form text with CRLF line breaks
    allowed_controls = {"\n", "\t"} if multiline else set()
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed_controls for ch in value):
        raise errors.Invalid(field, "must not contain control characters")
    if not min_length <= len(value) <= max_length:
        if min_length:
            raise errors.Invalid(field, f"must be {min_length} to {max_length} characters")
        raise errors.Invalid(field, f"must be at most {max_length} characters")
    return value


def whole_number(value: Any) -> int | None:
    """`value` as an int if it is a JSON integer (1 and 1.0 alike, as JSON Schema counts them), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def optional_text(body: Mapping[str, Any], field: str, *, max_length: int, multiline: bool = False) -> str | None:
    """Like `text`, but null or an empty string mean "none"."""
    if body.get(field) is None:
        return None
    return text(body, field, max_length=max_length, multiline=multiline) or None
