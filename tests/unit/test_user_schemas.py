from __future__ import annotations

from typing import Any

import pytest

from chalicelib import errors
from chalicelib.users import schemas
from chalicelib.users.models import Account, Profile, Quota, Usage


def invalid(body: Any, parse: Any = schemas.parse_new_profile) -> errors.Invalid:
    with pytest.raises(errors.Invalid) as caught:
        parse(body)
    return caught.value


def test_display_name_is_trimmed_and_bio_is_optional() -> None:
    new = schemas.parse_new_profile({"display_name": "  Ada Lovelace  "})
    assert new.display_name == "Ada Lovelace"
    assert new.bio is None


def test_empty_or_null_bio_means_no_bio() -> None:
    assert schemas.parse_new_profile({"display_name": "A", "bio": ""}).bio is None
    assert schemas.parse_new_profile({"display_name": "A", "bio": None}).bio is None


def test_bio_keeps_line_breaks_and_normalises_crlf() -> None:
    assert schemas.parse_new_profile({"display_name": "A", "bio": "one\r\ntwo\tthree"}).bio == "one\ntwo\tthree"


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({}, "display_name", "is required"),
        ({"display_name": None}, "display_name", "must be a string"),
        ({"display_name": 42}, "display_name", "must be a string"),
        ({"display_name": ["a"]}, "display_name", "must be a string"),
        ({"display_name": "   "}, "display_name", "must have at least one visible character"),
        ({"display_name": "\u200b\u3164"}, "display_name", "must have at least one visible character"),
        ({"display_name": "x" * 65}, "display_name", "must be 1 to 64 characters"),
        ({"display_name": " " + "x" * 64}, "display_name", "must be 1 to 64 characters (surrounding spaces count)"),
        ({"display_name": "Ada\u202eecalevol"}, "display_name", "must not contain bidirectional control"),
        ({"display_name": "Ada\u2028L"}, "display_name", "must be a single line"),
        ({"display_name": "a\nb"}, "display_name", "must not contain control characters"),
        ({"display_name": "a\x00b"}, "display_name", "must not contain control characters"),
        ({"display_name": "ok", "bio": "x" * 501}, "bio", "must be at most 500 characters"),
        ({"display_name": "ok", "bio": 7}, "bio", "must be a string"),
        ({"display_name": "ok", "bio": "bell\x07"}, "bio", "must not contain control characters"),
        ({"display_name": "ok", "bio": "a\rb"}, "bio", "must not contain control characters"),
        ({"display_name": "ok", "bio": "\u202ereversed"}, "bio", "must not contain bidirectional embeddings"),
        ({"display_name": "ok", "bio": "\u200b"}, "bio", "must have at least one visible character"),
        ({"display_name": "ok", "bio": "\n" + "x" * 500}, "bio", "must be at most 500 characters"),
        ({"display_name": "ok", "user_id": "someone-else"}, "user_id", "unknown field"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else None,
)
def test_invalid_profile_fields_are_named(body: dict[str, Any], field: str, problem: str) -> None:
    error = invalid(body)
    assert error.field == field
    assert problem in error.problem
    assert str(error).startswith(f"{field}: ")


@pytest.mark.parametrize("body", [None, [], "display_name", 3, ["display_name", "x"]])
def test_body_must_be_an_object(body: Any) -> None:
    assert "JSON object" in str(invalid(body))


def test_display_name_at_the_limits_is_accepted() -> None:
    assert schemas.parse_new_profile({"display_name": "x" * 64}).display_name == "x" * 64
    assert schemas.parse_new_profile({"display_name": "é"}).display_name == "é"


def test_a_65_character_name_is_refused_even_when_trimming_would_make_it_fit() -> None:
    # The limit counts the characters as sent, as openapi.yaml's maxLength does (it used to be 64 after trimming).
    assert invalid({"display_name": " " + "x" * 64}).field == "display_name"
    assert invalid({"display_name": "x" * 64 + "\t"}).field == "display_name"
    assert schemas.parse_new_profile({"display_name": " " + "x" * 62 + " "}).display_name == "x" * 62


def test_names_and_bios_are_stored_nfc_normalised() -> None:
    new = schemas.parse_new_profile({"display_name": "Rene\u0301e", "bio": "cafe\u0301\r\nstreet"})
    assert new.display_name == "Ren\u00e9e"
    assert new.bio == "caf\u00e9\nstreet"
    changes = schemas.parse_profile_changes({"display_name": "Zoe\u0308"})
    assert changes.display_name == "Zo\u00eb"


def test_a_bio_keeps_the_bidi_isolates_and_marks_right_to_left_writers_need() -> None:
    bio = "\u05e9\u05dc\u05d5\u05dd \u2066PhotoSky 2.0\u2069\u200f!\nمرحبا\u061c"
    assert schemas.parse_new_profile({"display_name": "A", "bio": bio}).bio == bio


def test_update_needs_at_least_one_field() -> None:
    assert "nothing to update" in str(invalid({}, schemas.parse_profile_changes))


def test_update_distinguishes_clearing_the_bio_from_leaving_it() -> None:
    cleared = schemas.parse_profile_changes({"bio": None})
    assert cleared.bio_set
    assert cleared.bio is None
    untouched = schemas.parse_profile_changes({"display_name": "New"})
    assert not untouched.bio_set
    assert untouched.display_name == "New"


def test_update_rejects_a_null_display_name() -> None:
    assert invalid({"display_name": None}, schemas.parse_profile_changes).field == "display_name"


def test_public_view_hides_private_fields() -> None:
    profile = Profile("u1", "Ada", None, "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z")
    assert schemas.public_profile_out(profile) == {
        "user_id": "u1",
        "display_name": "Ada",
        "bio": None,
        "created_at": "2026-01-01T00:00:00.000Z",
    }
    account = schemas.account_out(Account(profile, Usage(2, 300, 1), Quota(10, 1000, 5)))
    assert account["usage"] == {"photos": 2, "bytes": 300, "pending": 1, "trash": {"photos": 0, "bytes": 0}}
    assert account["quota"] == {"photos": 10, "bytes": 1000, "pending": 5}
    assert account["updated_at"] == "2026-01-02T00:00:00.000Z"
