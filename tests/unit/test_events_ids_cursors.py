from __future__ import annotations

import json

import pytest

from chalicelib import errors, keys
from chalicelib.cursors import CursorCodec
from chalicelib.ids import is_ulid, new_ulid
from chalicelib.photos.events import uploaded_object_keys

BUCKET = "photosky-local-photos"


def s3_record(key: str, *, bucket: str = BUCKET, event: str = "ObjectCreated:Post") -> dict[str, object]:
    return {
        "eventSource": "aws:s3",
        "eventName": event,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}},
    }


def test_created_objects_are_read_with_their_keys_decoded() -> None:
    body = json.dumps({"Records": [s3_record("uploads/u-1/01JD%2Bx+y"), s3_record("uploads/u-2/01JE")]})
    assert uploaded_object_keys(body, bucket=BUCKET) == ["uploads/u-1/01JD+x y", "uploads/u-2/01JE"]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}),
        json.dumps({"Records": [s3_record("uploads/u/1", event="ObjectRemoved:Delete")]}),
        json.dumps({"Records": [s3_record("uploads/u/1", bucket="someone-elses-bucket")]}),
        json.dumps({"Records": [{**s3_record("uploads/u/1"), "eventSource": "aws:sqs"}]}),
        json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}),
        json.dumps({"Records": "nope"}),
        json.dumps(["not", "a", "notification"]),
        "not json at all",
        "",
    ],
    ids=[
        "test-event",
        "removal",
        "other-bucket",
        "not-s3",
        "no-object",
        "records-not-list",
        "array",
        "garbage",
        "empty",
    ],
)
def test_messages_that_can_never_succeed_yield_nothing_instead_of_failing(body: str) -> None:
    assert uploaded_object_keys(body, bucket=BUCKET) == []


def test_ulids_sort_by_time_and_match_their_pattern() -> None:
    earlier = new_ulid(now_ms=1_700_000_000_000, randomness=b"\xff" * 10)
    later = new_ulid(now_ms=1_700_000_000_001, randomness=b"\x00" * 10)
    assert earlier < later
    assert len(earlier) == 26
    assert is_ulid(earlier)
    assert is_ulid(new_ulid())


@pytest.mark.parametrize(
    "value", ["", "nope", "01jd0000000000000000000000", "01JD000000000000000000000I", "8" + "0" * 25]
)
def test_values_that_are_not_ulids_are_refused(value: str) -> None:
    assert not is_ulid(value)


def test_upload_object_keys_round_trip_and_other_keys_do_not_parse() -> None:
    assert keys.parse_upload_object(keys.upload_object("u-1", "01JD")) == ("u-1", "01JD")
    for other in ("originals/u-1/01JD", "uploads/u-1", "uploads/u-1/01JD/extra", "uploads//01JD", "uploads/u-1/"):
        assert keys.parse_upload_object(other) is None


CODEC = CursorCodec(b"0123456789abcdef-secret")
LAST_KEY = {"PK": {"S": "USER#u-1"}, "SK": {"S": "PHOTO#01JD"}}


def test_a_cursor_decodes_to_the_key_it_encodes_for_the_same_scope() -> None:
    cursor = CODEC.encode(LAST_KEY, scope="u-1|")
    assert CODEC.decode(cursor, scope="u-1|") == LAST_KEY
    assert "USER#" not in cursor  # opaque: clients cannot read or build table keys


def flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


@pytest.mark.parametrize(
    ("mutate", "scope"),
    [
        (lambda c: flip(c, 3), "u-1|"),
        (lambda c: flip(c, len(c) - 2), "u-1|"),
        (lambda c: c, "u-2|"),
        (lambda c: c, "u-1|cats"),
        (lambda c: c.split(".")[0], "u-1|"),
        (lambda c: c + ".x", "u-1|"),
        (lambda c: "!!!." + c.split(".")[1], "u-1|"),
        (lambda c: "x" * 5000, "u-1|"),
        (lambda c: CursorCodec(b"another-secret-0123456").encode(LAST_KEY, scope="u-1|"), "u-1|"),
    ],
    ids=[
        "payload-tampered",
        "signature-tampered",
        "other-user",
        "other-filter",
        "unsigned",
        "extra-part",
        "not-base64",
        "huge",
        "other-secret",
    ],
)
def test_tampered_or_borrowed_cursors_are_invalid(mutate: object, scope: str) -> None:
    cursor = mutate(CODEC.encode(LAST_KEY, scope="u-1|"))  # type: ignore[operator]
    with pytest.raises(errors.Invalid) as caught:
        CODEC.decode(cursor, scope=scope)
    assert caught.value.field == "cursor"


def test_a_correctly_signed_payload_that_is_not_an_object_is_invalid() -> None:
    signed_list = CODEC.encode(["PK", "SK"], scope="s")  # type: ignore[arg-type]
    with pytest.raises(errors.Invalid):
        CODEC.decode(signed_list, scope="s")


def test_the_cursor_secret_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        CursorCodec(b"short")
