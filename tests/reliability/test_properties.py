"""Property tests (hypothesis): pagination cursors, tag normalisation, and request validation through the real API.

Budgets are modest by default (the whole reliability run stays around a minute); `make fuzz` sets
PHOTOSKY_FUZZ_EXAMPLES to run that many examples per property instead. Runs are derandomized (the same examples
every time, so a failure reproduces) and keep no example database.
"""

from __future__ import annotations

import json
import os
import string
import unicodedata
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from chalice.test import Client
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chalicelib import errors, validation
from chalicelib.cursors import CursorCodec
from chalicelib.photos import schemas
from chalicelib.photos.models import TAG_MAX, TAGS_MAX, BatchAction, ListQuery
from tests.integration.conftest import User
from tests.reliability.support import assert_invariants, body, create_profile, jpeg, start_upload

pytestmark = pytest.mark.suite("properties")

FUZZ_EXAMPLES = int(os.environ.get("PHOTOSKY_FUZZ_EXAMPLES") or 0)


def budget(default: int) -> settings:
    return settings(
        max_examples=FUZZ_EXAMPLES or default,
        deadline=None,
        derandomize=True,
        database=None,
        # The fixtures (moto, the API, the `cases` counter) are meant to be shared by every example of a test.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# --- cursors ---------------------------------------------------------------------------------------------------------

SECRET = b"property-test-cursor-secret-32-bytes!"
codec = CursorCodec(SECRET)
owners = st.text(min_size=1, max_size=64)
tags = st.none() | st.text(min_size=1, max_size=TAG_MAX)
attribute = st.fixed_dictionaries({"S": st.text(max_size=80)})
last_keys = st.dictionaries(st.sampled_from(["PK", "SK", "GSI1PK", "GSI1SK"]), attribute, min_size=1)
B64 = string.ascii_letters + string.digits + "-_"


def scope(owner: str, tag: str | None) -> str:
    # What PhotoService.list signs a cursor with.
    return f"{owner}\x00{ListQuery(tag=tag).scope}"


def rejected_as_invalid_cursor(cursor: str, at: str) -> bool:
    """True if decoding is refused with the cursor's 400; any other exception fails the test."""
    try:
        codec.decode(cursor, scope=at)
    except errors.Invalid as e:
        refused: errors.Invalid | None = e
    else:
        refused = None
    if refused is not None:
        assert refused.field == "cursor"
    return refused is not None


@budget(150)
@given(last_key=last_keys, owner=owners, tag=tags)
def test_a_cursor_round_trips_for_any_owner_tag_and_key(cases: Any, last_key: Any, owner: str, tag: Any) -> None:
    cases.tried()
    cursor = codec.encode(last_key, scope=scope(owner, tag))
    assert codec.decode(cursor, scope=scope(owner, tag)) == last_key
    assert set(cursor) <= set(B64 + ".")  # safe in a query string as is


@budget(150)
@given(last_key=last_keys, owner=owners, tag=tags, data=st.data())
def test_a_tampered_or_truncated_cursor_is_rejected(
    cases: Any, last_key: Any, owner: str, tag: Any, data: st.DataObject
) -> None:
    cases.tried()
    at = scope(owner, tag)
    cursor = codec.encode(last_key, scope=at)
    position = data.draw(st.integers(0, len(cursor) - 1), label="position")
    replacement = data.draw(st.sampled_from(B64 + ".=+/ %"), label="replacement")
    assume(replacement != cursor[position])
    tampered = cursor[:position] + replacement + cursor[position + 1 :]
    if not rejected_as_invalid_cursor(tampered, at):
        # Base64's last character carries spare bits: a change there can decode to the very same bytes.
        assert codec.decode(tampered, scope=at) == last_key
    cut = data.draw(st.integers(0, len(cursor) - 1), label="cut")
    if not rejected_as_invalid_cursor(cursor[:cut], at):
        assert codec.decode(cursor[:cut], scope=at) == last_key


@budget(150)
@given(last_key=last_keys, owner=owners, other_owner=owners, tag=tags, other_tag=tags)
def test_a_cursor_used_by_another_owner_or_with_another_tag_is_rejected(
    cases: Any, last_key: Any, owner: str, other_owner: str, tag: Any, other_tag: Any
) -> None:
    cases.tried()
    assume(scope(owner, tag) != scope(other_owner, other_tag))
    cursor = codec.encode(last_key, scope=scope(owner, tag))
    assert rejected_as_invalid_cursor(cursor, scope(other_owner, other_tag))


@budget(250)
@given(text=st.text(max_size=3000) | st.from_regex(r"[A-Za-z0-9_-]{0,120}\.[A-Za-z0-9_-]{0,40}", fullmatch=True))
def test_any_string_as_a_cursor_is_rejected_not_crashed_on(cases: Any, text: str) -> None:
    cases.tried()
    assert rejected_as_invalid_cursor(text, scope("owner", None))


# --- tags -------------------------------------------------------------------------------------------------------------


def assert_names_tags(error: errors.Invalid) -> None:
    assert error.field == "tags"
    assert str(error).startswith("tags: ")


# Characters whose case folding or compatibility forms are tricky: dotted and dotless i, sharp s, titlecase
# digraphs, final sigma, a ligature, fullwidth letters, combining marks, Devanagari signs, Cherokee (whose case
# folding goes to upper case), square katakana words (NFKC spells them out).
TRICKY_TAG_TEXT = (
    r"[ 0-9A-Za-z._\u00a0\u3000İıßẞǅΣςﬁＡａ\u0301\u0307\u0323\u093c\u093fक\uab70\u13a0\u3300\u2460-]{0,50}"
)


@budget(400)
@given(raw=st.text(max_size=60) | st.from_regex(TRICKY_TAG_TEXT, fullmatch=True))
def test_a_tag_normalises_to_a_valid_stable_tag_or_is_a_400_naming_tags(cases: Any, raw: str) -> None:
    cases.tried()
    try:
        tag = schemas.normalize_tag(raw)
    except errors.Invalid as e:
        assert_names_tags(e)
        return
    assert 1 <= len(tag) <= TAG_MAX
    assert len(raw) <= TAG_MAX  # limits count the tag as sent, too
    assert tag == tag.strip()
    assert "  " not in tag
    assert tag == validation.caseless(tag)  # folded (lower-case but for the few scripts folding to upper case)
    assert unicodedata.is_normalized("NFKC", tag)
    assert "#" not in tag
    assert "/" not in tag
    assert schemas.normalize_tag(tag) == tag  # idempotent: a stored tag reads back the same


@budget(300)
@given(raw=st.text(max_size=60) | st.from_regex(TRICKY_TAG_TEXT, fullmatch=True))
def test_canonically_equivalent_tags_are_the_same_tag(cases: Any, raw: str) -> None:
    cases.tried()
    spellings = {unicodedata.normalize(form, raw) for form in ("NFC", "NFD", "NFKC", "NFKD")}
    outcomes = set()
    for spelling in spellings:
        try:
            outcomes.add(schemas.normalize_tag(spelling))
        except errors.Invalid:
            outcomes.add(None)
    # Decomposed spellings are longer, so one may pass the limit where another fits; otherwise they agree.
    assert len(outcomes - {None}) <= 1, outcomes


@budget(150)
@given(
    raw=st.lists(
        st.text(max_size=45)
        | st.sampled_from(["Sea", "sea", " SEA ", "sun", "Caf\u00e9", "cafe\u0301", "\u0130zmir", "izmir"]),
        max_size=30,
    )
)
def test_a_tag_list_is_deduplicated_bounded_and_stable_or_a_400_naming_tags(cases: Any, raw: list[str]) -> None:
    cases.tried()
    try:
        changes = schemas.parse_photo_changes({"tags": raw, "version": 1})
    except errors.Invalid as e:
        assert_names_tags(e)
        return
    assert changes.tags is not None
    assert len(changes.tags) <= TAGS_MAX
    assert len(set(changes.tags)) == len(changes.tags)
    assert changes.tags == schemas.parse_photo_changes({"tags": list(changes.tags), "version": 1}).tags


# --- user text: NFC, stable --------------------------------------------------------------------------------------

text_values = st.text(max_size=80) | st.from_regex(
    r"[ a-zA-Z\u00a0\u3000\u0301\u0308\u0323\u0958\u1100\u1161\u11a8\u200b\u200e\u2066\u2069\u3164\r\n\t]{0,40}",
    fullmatch=True,
)


def stored_text(value: str, multiline: bool) -> str | errors.Invalid:
    """What validation.text stores for `value`, or the Invalid it raises."""
    try:
        return validation.text({"f": value}, "f", max_length=40, multiline=multiline)
    except errors.Invalid as e:
        return e


@budget(400)
@given(value=text_values, multiline=st.booleans())
def test_accepted_text_is_nfc_within_its_limit_and_reads_back_the_same(cases: Any, value: str, multiline: bool) -> None:
    cases.tried()
    stored = stored_text(value, multiline)
    if isinstance(stored, errors.Invalid):
        assert stored.field == "f"
        return
    assert unicodedata.is_normalized("NFC", stored)
    assert stored == stored.strip()
    assert len(stored) <= 40
    assert not stored or not all(validation.is_invisible(ch) for ch in stored)  # something to see
    assert "\r" not in stored
    # Idempotent: a stored value sent back (a client editing one field and resending the rest) is kept as is.
    assert stored_text(stored, multiline) == stored
    # Canonically equivalent input is stored the same (a decomposed spelling can only be refused as too long).
    for form in ("NFC", "NFD"):
        again = stored_text(unicodedata.normalize(form, value), multiline)
        if isinstance(again, errors.Invalid):
            assert "characters" in again.problem, again
        else:
            assert again == stored


# --- request bodies through the real API ---------------------------------------------------------------------------

ALLOWED_STATUSES = {200, 201, 400, 404, 409, 413, 415, 429}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def bodies(fields: list[str]) -> st.SearchStrategy[bytes]:
    """Request bodies: objects using the route's fields (and others) with any values, any JSON, or raw bytes."""
    field_values = {
        "filename": st.text(max_size=300),
        "content_type": st.sampled_from(["image/jpeg", "image/png", "IMAGE/JPG; q=1", "text/html", ""]) | st.text(),
        "size_bytes": st.integers(-5, 30 * 1024 * 1024) | json_values,
        "tags": st.lists(st.text(max_size=45), max_size=25) | json_values,
        "version": st.integers(-1, 3) | json_values,
        "sha256": st.from_regex(r"[0-9a-fA-F]{60,68}", fullmatch=True) | json_values,
        "favorite": st.booleans() | json_values,
        "action": st.sampled_from([action.value for action in BatchAction]) | st.text(max_size=12),
        "photo_ids": st.lists(st.text(max_size=70), max_size=60) | json_values,
    }
    objects = st.dictionaries(
        st.sampled_from([*fields, "owner_id", "photo_id"]) | st.text(max_size=10),
        json_values,
        max_size=len(fields) + 1,
    )
    plausible = st.fixed_dictionaries(
        {}, optional={name: field_values.get(name, json_values | st.text(max_size=600)) for name in fields}
    )
    as_json = (plausible | objects | json_values).map(lambda value: json.dumps(value).encode())
    return as_json | st.binary(max_size=64) | st.sampled_from([b"", b"{", b"NaN", b'{"a": Infinity}', b"[" * 5000])


def assert_contract_reply(response: Any) -> None:
    assert response.status_code in ALLOWED_STATUSES, (response.status_code, response.body)
    if response.status_code >= 400:
        reply = body(response)
        # A duplicate upload also names the photo it copies (issue 13).
        extra = {"photo_id"} if reply.get("Code") == "DuplicatePhoto" else set()
        assert set(reply) == {"Code", "Message", *extra}, reply
        assert reply["Message"]


class Api:
    def __init__(self, aws: boto3.session.Session, api: Client, alice: User) -> None:
        self.aws, self.alice = aws, alice
        create_profile(alice, "Alice")
        self.photo_id = start_upload(alice, jpeg(), tags=["sea"])["photo"]["photo_id"]


@pytest.fixture
def real_api(aws: boto3.session.Session, api: Client, alice: User) -> Api:
    return Api(aws, api, alice)


ROUTE_FIELDS = {
    "POST /photos": ["filename", "content_type", "size_bytes", "title", "description", "tags", "sha256"],
    "PATCH /photos/{id}": ["title", "description", "tags", "favorite", "version"],
    "POST /photos/batch": ["action", "photo_ids", "tags"],
    "POST /users": ["display_name", "bio"],
    "PATCH /users/me": ["display_name", "bio"],
}


@pytest.mark.parametrize("route", ROUTE_FIELDS)
def test_any_request_body_gets_a_contract_status_and_error_shape_never_a_500(
    real_api: Api, carol: User, cases: Any, route: str
) -> None:
    method, path = route.split(" ")
    path = path.replace("{id}", real_api.photo_id)
    # POST /users is tried by a user without a profile (carol), so valid bodies get their 201 once, then 409.
    caller = carol if route == "POST /users" else real_api.alice

    @budget(30)
    @given(payload=bodies(ROUTE_FIELDS[route]))
    def send(payload: bytes) -> None:
        cases.tried()
        assert_contract_reply(caller.call(method, path, raw=payload))

    send()
    assert_invariants(real_api.aws)


@budget(40)
@given(cursor=st.text(min_size=1, max_size=300), tag=st.none() | st.text(min_size=1, max_size=50))
def test_any_cursor_or_tag_in_the_query_is_a_contract_reply_never_a_500(
    real_api: Api, cases: Any, cursor: str, tag: str | None
) -> None:
    cases.tried()
    query = f"cursor={quote(cursor, safe='')}" + (f"&tag={quote(tag, safe='')}" if tag is not None else "")
    response = real_api.alice.call("GET", f"/photos?{query}")
    assert_contract_reply(response)
    if cursor.strip():
        assert response.status_code == 400, response.body
