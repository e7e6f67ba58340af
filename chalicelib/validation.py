"""Field validators shared by every request schema, and the text rules they apply.

Each raises `errors.Invalid` naming the field, so a client always learns which field to fix.

User text is stored NFC-normalised, so "cafe\u0301" (as macOS file names and some keyboards send it) and "café"
are the same text; tags and tag filters are compared in a stronger caseless form (`caseless`). openapi.yaml's
patterns spell out the same character sets (tests/integration/test_openapi.py checks them code point by code point).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from typing import Any

from chalicelib import errors

_MISSING = object()

# Bidirectional formatting characters (Unicode UAX #9). Embeddings and overrides reorder the text that follows
# them, as far as the end of the paragraph: "photo\u202egpj.exe" shows as "photoexe.jpg". Isolates and marks
# only steer the text they surround or touch, and right-to-left writers need them for mixed Arabic or Hebrew and
# Latin text; so multi-line text (a bio, a description, shown as a block of its own) keeps them, and single-line
# text (names, titles, file names, shown inside other text and in the Content-Disposition of a download) keeps none.
BIDI_EMBEDDINGS = frozenset("\u202a\u202b\u202c\u202d\u202e")  # LRE RLE PDF LRO RLO
BIDI_ISOLATES = frozenset("\u2066\u2067\u2068\u2069")  # LRI RLI FSI PDI
BIDI_MARKS = frozenset("\u200e\u200f\u061c")  # LRM RLM ALM
BIDI_CONTROLS = BIDI_EMBEDDINGS | BIDI_ISOLATES | BIDI_MARKS
LINE_SEPARATORS = frozenset("\u2028\u2029")

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): drawn as nothing, Hangul fillers included.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
    (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
# Format characters that are drawn: they sit in front of the digits they span (Prepended_Concatenation_Mark).
_VISIBLE_FORMAT = frozenset("\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd")
_BLANK = frozenset("\u2800")  # BRAILLE PATTERN BLANK: a symbol, and drawn as nothing


def is_invisible(ch: str) -> bool:
    """True for a character that draws nothing: white space, controls, format characters, fillers, blanks."""
    if ch in _VISIBLE_FORMAT:
        return False
    if unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp") or ch in _BLANK:
        return True
    code = ord(ch)
    return any(first <= code <= last for first, last in _DEFAULT_IGNORABLE)


def caseless(value: str) -> str:
    """`value` in the form tags are stored and compared in: compatibility-normalised and case-folded.

    NFKC first (fullwidth "ＣＡＴ" is "CAT", the ligature "ﬁ" is "fi", "e\u0301" is "é"), then Unicode case folding
    (stronger than lower(): "ß" is "ss", "ς" is "σ"), then NFKC again, since folding can undo normalisation
    (Unicode's NFKC_Casefold does the same). Folding turns the Turkish "İ" into "i" plus a combining dot above,
    which draws exactly like "i", so that dot is dropped: "İstanbul", "ISTANBUL" and "istanbul" are one tag.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    while "i\u0307" in folded:  # each pass is shorter, so this ends; "İ\u0307" needs two
        folded = unicodedata.normalize("NFKC", folded.replace("i\u0307", "i"))
    return folded


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
    """A present, non-null string field: NFC-normalised, stripped of surrounding white space, checked.

    `max_length` counts the characters as sent (surrounding spaces included, as JSON Schema's maxLength does) and
    also bounds the stored value, so no stored text is ever longer than its limit. Control characters are refused
    (a multi-line field keeps tabs and line breaks, CRLF becoming LF); so are bidirectional controls (see
    `BIDI_CONTROLS`; a multi-line field may keep isolates and marks), and a value that is not empty once stripped
    must have at least one visible character.
    """
    value = body.get(field, _MISSING)
    if value is _MISSING:
        raise errors.Invalid(field, "is required")
    if not isinstance(value, str):
        raise errors.Invalid(field, "must be a string")
    if len(value) > max_length:
        raise errors.Invalid(field, _length_problem(min_length, max_length) + " (surrounding spaces count)")
    if multiline:
        value = value.replace("\r\n", "\n")  # browsers send form text with CRLF line breaks
    _refuse_controls(field, value, multiline)
    value = unicodedata.normalize("NFC", value).strip()
    blank = all(is_invisible(ch) for ch in value)  # true of "" too
    if blank and (value or min_length):
        raise errors.Invalid(field, "must have at least one visible character (not only spaces or invisible ones)")
    if not min_length <= len(value) <= max_length:
        raise errors.Invalid(field, _length_problem(min_length, max_length))
    return value


def _length_problem(min_length: int, max_length: int) -> str:
    if min_length:
        return f"must be {min_length} to {max_length} characters"
    return f"must be at most {max_length} characters"


def _refuse_controls(field: str, value: str, multiline: bool) -> None:
    allowed_controls = {"\n", "\t"} if multiline else set()
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed_controls for ch in value):
        raise errors.Invalid(field, "must not contain control characters")
    if multiline:
        if any(ch in BIDI_EMBEDDINGS for ch in value):
            raise errors.Invalid(
                field,
                "must not contain bidirectional embeddings or overrides (U+202A to U+202E); "
                "isolates (U+2066 to U+2069) and the marks U+200E, U+200F and U+061C are allowed",
            )
        return
    if any(ch in LINE_SEPARATORS for ch in value):
        raise errors.Invalid(field, "must be a single line (no line or paragraph separators)")
    if any(ch in BIDI_CONTROLS for ch in value):
        raise errors.Invalid(
            field,
            "must not contain bidirectional control characters "
            "(U+202A to U+202E, U+2066 to U+2069, U+200E, U+200F, U+061C)",
        )


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
