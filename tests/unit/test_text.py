"""User text rules (chalicelib/validation.py) and tags: NFC, caseless tags, bidi controls, invisible-only values."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from chalicelib import errors, validation
from chalicelib.photos import schemas as photo_schemas
from chalicelib.photos.models import TAG_MAX

pytestmark = pytest.mark.suite("edges")

NEW_PHOTO = {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 10}


def new_photo(**fields: Any) -> Any:
    return photo_schemas.parse_new_photo({**NEW_PHOTO, **fields}, max_upload_bytes=100)


def refused(parse: Any, *args: Any, **kwargs: Any) -> errors.Invalid:
    with pytest.raises(errors.Invalid) as caught:
        parse(*args, **kwargs)
    return caught.value


# --- NFC --------------------------------------------------------------------------------------------------------------


def test_every_text_field_is_stored_nfc() -> None:
    photo = new_photo(filename="cafe\u0301.jpg", title="Cafe\u0301", description="cre\u0300me\nbru\u0302le\u0301e")
    assert photo.filename == "caf\u00e9.jpg"
    assert photo.title == "Caf\u00e9"
    assert photo.description == "cr\u00e8me\nbr\u00fbl\u00e9e"
    changes = photo_schemas.parse_photo_changes({"title": "Cafe\u0301", "description": "e\u0301", "version": 1})
    assert (changes.title, changes.description) == ("Caf\u00e9", "\u00e9")


def test_nfc_is_not_nfkc_outside_tags() -> None:
    # Compatibility characters are the user's choice in names and titles ("Ⅻ", "ﬁ", fullwidth digits).
    assert new_photo(title="Louis \u216b \ufb01le").title == "Louis \u216b \ufb01le"


def test_a_value_that_nfc_makes_longer_than_the_limit_is_refused() -> None:
    # U+0958 DEVANAGARI LETTER QA is a composition exclusion: NFC makes it two characters. No stored value is ever
    # longer than its limit.
    assert len(unicodedata.normalize("NFC", "\u0958")) == 2
    assert new_photo(title="x" * 198 + "\u0958").title == "x" * 198 + "\u0915\u093c"
    error = refused(new_photo, title="x" * 199 + "\u0958")
    assert (error.field, error.problem) == ("title", "must be at most 200 characters")


# --- limits count the characters as sent --------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "limit"), [("title", 200), ("description", 2000), ("filename", 255)], ids=str)
def test_limits_count_surrounding_spaces(field: str, limit: int) -> None:
    value = "x" * (limit - 4) + ".jpg"
    assert getattr(new_photo(**{field: value}), field) == value
    assert refused(new_photo, **{field: " " + value}).field == field
    assert refused(new_photo, **{field: value + "\n"}).field == field


# --- bidi controls ------------------------------------------------------------------------------------------------

BIDI = sorted(validation.BIDI_CONTROLS)


@pytest.mark.parametrize("control", BIDI, ids=lambda ch: f"U+{ord(ch):04X}")
@pytest.mark.parametrize("field", ["filename", "title"])
def test_single_line_fields_refuse_every_bidi_control(field: str, control: str) -> None:
    error = refused(new_photo, **{field: f"photo{control}gpj.exe"})
    assert error.field == field
    assert "bidirectional" in error.problem


@pytest.mark.parametrize("control", BIDI, ids=lambda ch: f"U+{ord(ch):04X}")
def test_descriptions_keep_isolates_and_marks_and_refuse_embeddings_and_overrides(control: str) -> None:
    description = f"\u05d0\u05d1 {control}AB 12{control} \u05d2"
    if control in validation.BIDI_EMBEDDINGS:
        error = refused(new_photo, description=description)
        assert (error.field, "embeddings or overrides" in error.problem) == ("description", True)
    else:
        assert new_photo(description=description).description == description


def test_the_bidi_sets_are_unicodes_explicit_formatting_characters_and_marks() -> None:
    formatting = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}
    found = {ch for ch in map(chr, range(0x10000)) if unicodedata.bidirectional(ch) in formatting}
    assert found == validation.BIDI_EMBEDDINGS | validation.BIDI_ISOLATES
    # The rest of Unicode's Bidi_Control property: invisible marks of a strong direction.
    assert {unicodedata.name(ch) for ch in validation.BIDI_MARKS} == {
        "LEFT-TO-RIGHT MARK",
        "RIGHT-TO-LEFT MARK",
        "ARABIC LETTER MARK",
    }


# --- visible characters -------------------------------------------------------------------------------------------

INVISIBLE_ONLY = {
    "zero-width-space": "\u200b",
    "zero-width-joiners": "\u200c\u200d",
    "word-joiner": "\u2060",
    "bom": "\ufeff",
    "hangul-filler": "\u3164",
    "halfwidth-hangul-filler": "\uffa0",
    "hangul-choseong-filler": "\u115f",
    "hangul-jungseong-filler": "\u1160",
    "braille-blank": "\u2800",
    "soft-hyphen": "\u00ad",
    "variation-selector": "\ufe0f",
    "mongolian-vowel-separator": "\u180e",
    "tag-characters": "\U000e0041\U000e0042",
    "ideographic-space-and-filler": "\u3000\u3164",
    "spaces-around-a-zero-width-space": "  \u200b  ",
}


@pytest.mark.parametrize("value", INVISIBLE_ONLY.values(), ids=INVISIBLE_ONLY.keys())
@pytest.mark.parametrize("field", ["filename", "title", "description"])
def test_a_value_made_only_of_invisible_characters_is_refused(field: str, value: str) -> None:
    error = refused(new_photo, **{field: value})
    assert error.field == field
    assert error.problem.startswith("must have at least one visible character")


@pytest.mark.parametrize("value", ["", " ", " \u3000 ", "\u00a0"])
def test_an_empty_or_white_space_title_still_means_none(value: str) -> None:
    assert new_photo(title=value).title is None


@pytest.mark.parametrize("value", ["\u0600\u0661", "\u3164\u3131", "a\u200bb", "\u2800\u2801", "\U0001f408"])
def test_invisible_characters_beside_visible_ones_are_kept(value: str) -> None:
    assert new_photo(title=value).title == value


# --- tags -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        ("cafe\u0301", "caf\u00e9"),
        ("Caf\u00e9", "caf\u00e9"),
        ("CAFE\u0301", "caf\u00e9"),
        ("\u0130stanbul", "istanbul"),
        ("ISTANBUL", "istanbul"),
        ("\u0130\u0307", "i"),
        ("\uff23\uff21\uff34", "cat"),  # fullwidth
        ("\ufb01sh", "fish"),  # ligature
        ("Stra\u00dfe", "strasse"),
        ("\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3", "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c3"),
        ("\u0939\u093f\u0902\u0926\u0940", "\u0939\u093f\u0902\u0926\u0940"),  # Devanagari with vowel signs
        ("  New \u3000  York ", "new york"),
        ("\u2460", "1"),
    ],
)
def test_tags_are_caseless_nfkc(raw: str, tag: str) -> None:
    assert photo_schemas.normalize_tag(raw) == tag
    assert photo_schemas.normalize_tag(tag) == tag


def test_spellings_of_one_tag_are_one_tag() -> None:
    tags = new_photo(tags=["cafe\u0301", "Caf\u00e9", "CAF\u00c9", "\uff43\uff41\uff46\u00e9"]).tags
    assert tags == ("caf\u00e9",)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "x" * (TAG_MAX + 1),
        " " + "x" * TAG_MAX,  # limits count the tag as sent
        "\u3300" * 11,  # fits as sent, 44 characters once NFKC spells out each square katakana word
        "\u0301cafe",  # starts with a mark
        "caf\u00e9\u200b",
        "#cats",
        "\uff03cats",  # fullwidth '#' is '#'
        "a\uff0fb",  # fullwidth '/' is '/'
        "-x",
        "x_",
    ],
)
def test_invalid_tags_are_refused_naming_the_field(raw: str) -> None:
    assert refused(photo_schemas.normalize_tag, raw).field == "tags"
    assert refused(photo_schemas.normalize_tag, raw, "tag").field == "tag"


def test_null_tags_mean_no_tags_on_create_and_removing_them_on_edit() -> None:
    assert new_photo(tags=None).tags == ()
    changes = photo_schemas.parse_photo_changes({"tags": None, "version": 1})
    assert changes.tags == ()
    assert "tags" in changes.sent


# --- the tag filter -------------------------------------------------------------------------------------------------


def test_the_tag_filter_uses_the_same_normaliser() -> None:
    assert photo_schemas.parse_list_query({"tag": "\u0130STANBUL"})[2].tag == "istanbul"
    assert photo_schemas.parse_list_query({"tag": "cafe\u0301"})[2].tag == "caf\u00e9"
    assert photo_schemas.parse_list_query({})[2].tag is None


@pytest.mark.parametrize("tag", ["", " ", "\u200b"])
def test_an_empty_tag_filter_is_a_400_not_every_photo(tag: str) -> None:
    assert refused(photo_schemas.parse_list_query, {"tag": tag}).field == "tag"
