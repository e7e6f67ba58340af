"""The photo routes end to end through Chalice's gateway (with real token checks) on in-process moto.

The upload worker is not involved: every photo here stays PENDING (the worker's tests cover READY and REJECTED).
"""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from chalicelib import deps, keys
from chalicelib.photos.models import PreviewFormat
from tests.integration.conftest import BUCKET, TABLE, User
from tests.support.cognito import REGION

ISO_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
NO_URLS = {"original": None, "large": None, "small": None}
PHOTO_FIELDS = {
    "favorite",
    "trashed_at",
    "purge_at",
    "sha256",
    "duplicate_of",
    "photo_id",
    "owner_id",
    "status",
    "title",
    "description",
    "tags",
    "filename",
    "content_type",
    "size_bytes",
    "width",
    "height",
    "taken_at",
    "created_at",
    "updated_at",
    "version",
    "rejection_reason",
    "urls",
}
# The fields SigV4 adds to a presigned POST, as conditions of its policy.
SIGNING_FIELDS = ("x-amz-algorithm", "x-amz-credential", "x-amz-date")
UNKNOWN_PHOTO_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


# --- helpers -----------------------------------------------------------------------------------------------------


def body(response: Any) -> Any:
    return json.loads(response.body)


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def start_upload(user: User, **fields: Any) -> dict[str, Any]:
    """POST /photos with a valid body (overridden by `fields`); the 201 reply `{photo, upload}`."""
    response = user.call(
        "POST", "/photos", {"filename": "cat.jpg", "content_type": "image/jpeg", "size_bytes": 1234, **fields}
    )
    assert response.status_code == 201, response.body
    return body(response)


def new_photo(user: User, **fields: Any) -> dict[str, Any]:
    photo = start_upload(user, **fields)["photo"]
    # ULIDs made in the same millisecond sort at random; a pause keeps "newest first" well defined.
    time.sleep(0.002)
    return photo


def new_photos(user: User, count: int, **fields: Any) -> list[dict[str, Any]]:
    """`count` photos, newest first (the order the listing must return)."""
    return [new_photo(user, filename=f"p{n}.jpg", **fields) for n in range(count)][::-1]


def list_photos(user: User, **params: Any) -> Any:
    query = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in params.items())
    return user.call("GET", f"/photos?{query}" if query else "/photos")


def listed(user: User, **params: Any) -> dict[str, Any]:
    response = list_photos(user, **params)
    assert response.status_code == 200, response.body
    return body(response)


def listed_ids(user: User, **params: Any) -> list[str]:
    return [photo["photo_id"] for photo in listed(user, **params)["items"]]


def all_pages(user: User, **params: Any) -> list[list[str]]:
    """Follow next_cursor to the end: the photo ids of each page."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = listed(user, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([photo["photo_id"] for photo in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


def usage(user: User) -> dict[str, int]:
    """photos, bytes and pending of the caller's usage (the trash's share is `trash_usage`)."""
    response = user.call("GET", "/users/me")
    assert response.status_code == 200, response.body
    counted = dict(body(response)["usage"])
    del counted["trash"]
    return counted


def trash_usage(user: User) -> dict[str, int]:
    response = user.call("GET", "/users/me")
    assert response.status_code == 200, response.body
    return dict(body(response)["usage"]["trash"])


def use_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Make the app read these variables: the cached settings are loaded now, before the first request."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    deps.reset()
    deps.settings()


def user_items(dynamodb: Any, sub: str) -> list[dict[str, Any]]:
    """The user's library items; not the write-rate counters, which every write request adds to (bad ones too)."""
    response = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.user_pk(sub)}},
        ConsistentRead=True,
    )
    return [item for item in response["Items"] if not item["SK"]["S"].startswith(keys.RATE_PREFIX)]


def object_keys_of(owner: str, photo_id: str) -> list[str]:
    """Every object a photo may have: its upload, its original, and previews in either format."""
    return [
        keys.upload_object(owner, photo_id),
        keys.original_object(owner, photo_id),
        *(keys.preview_object(owner, photo_id, size, fmt) for fmt in PreviewFormat for size in ("large", "small")),
    ]


def bucket_keys(s3: Any) -> set[str]:
    return {obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def decode_policy(fields: dict[str, str]) -> dict[str, Any]:
    return json.loads(base64.b64decode(fields["policy"]))


def assert_bad_request(response: Any, field: str) -> None:
    assert response.status_code == 400, response.body
    assert body(response)["Code"] == "BadRequestError"
    if field:
        assert body(response)["Message"].startswith(f"{field}: "), body(response)["Message"]


# --- POST /photos --------------------------------------------------------------------------------------------------


def test_starting_an_upload_returns_a_pending_photo_with_every_contract_field(alice: User) -> None:
    before = datetime.now(UTC)
    response = alice.call(
        "POST",
        "/photos",
        {
            "filename": "Cat on a mat.JPG",
            "content_type": "image/jpeg",
            "size_bytes": 123_456,
            "title": "  Whiskers ",
            "description": "On the mat.\nAgain.",
            "tags": [" Cats ", "cats", "Mat", "black  cat"],
        },
    )
    assert response.status_code == 201, response.body
    created = body(response)
    assert set(created) == {"photo", "upload"}
    photo = created["photo"]
    assert set(photo) == PHOTO_FIELDS
    assert re.match(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", photo["photo_id"])
    expected = {
        "owner_id": alice.sub,
        "status": "PENDING",
        "title": "Whiskers",
        "description": "On the mat.\nAgain.",
        "tags": ["cats", "mat", "black cat"],
        "filename": "Cat on a mat.JPG",
        "content_type": "image/jpeg",
        "size_bytes": 123_456,
        "width": None,
        "height": None,
        "taken_at": None,
        "version": 1,
        "rejection_reason": None,
        "favorite": False,
        "trashed_at": None,
        "purge_at": None,
        "sha256": None,
        "duplicate_of": None,
        "urls": NO_URLS,
    }
    assert {name: photo[name] for name in expected} == expected
    assert re.match(ISO_UTC, photo["created_at"])
    assert photo["updated_at"] == photo["created_at"]
    assert before - timedelta(seconds=1) <= parse_iso(photo["created_at"]) <= datetime.now(UTC)


def test_the_upload_is_a_sigv4_presigned_post_for_exactly_the_photos_upload_key(alice: User) -> None:
    before = datetime.now(UTC)
    created = start_upload(alice, content_type="image/png", size_bytes=4321)
    photo, upload = created["photo"], created["upload"]
    assert set(upload) == {"url", "fields", "expires_at"}
    assert BUCKET in upload["url"]
    assert upload["url"].startswith("https://")
    fields = upload["fields"]
    assert fields["key"] == f"uploads/{alice.sub}/{photo['photo_id']}"
    assert fields["Content-Type"] == "image/png"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert re.match(rf"^[^/]+/\d{{8}}/{REGION}/s3/aws4_request$", fields["x-amz-credential"])
    assert re.match(r"^\d{8}T\d{6}Z$", fields["x-amz-date"])
    assert re.match(r"^[0-9a-f]{64}$", fields["x-amz-signature"])
    assert set(fields) == {"key", "Content-Type", "policy", "x-amz-signature", *SIGNING_FIELDS}
    assert re.match(ISO_UTC, upload["expires_at"])
    expires_in = (parse_iso(upload["expires_at"]) - before).total_seconds()
    assert 899 <= expires_in <= 902


def test_the_upload_policy_pins_bucket_key_type_and_exact_size(alice: User) -> None:
    upload = start_upload(alice, content_type="image/webp", size_bytes=5555)["upload"]
    fields = upload["fields"]
    policy = decode_policy(fields)
    conditions = policy["conditions"]
    signing = [c for c in conditions if isinstance(c, dict) and set(c) <= set(SIGNING_FIELDS)]
    assert {name: value for c in signing for name, value in c.items()} == {
        name: fields[name] for name in SIGNING_FIELDS
    }
    # Nothing else: no `starts-with` loosening the key or the type, no open size range.
    assert sorted((c for c in conditions if c not in signing), key=json.dumps) == sorted(
        [
            {"bucket": BUCKET},
            {"key": fields["key"]},
            {"Content-Type": "image/webp"},
            ["content-length-range", 5555, 5555],
        ],
        key=json.dumps,
    )
    expiration = parse_iso(policy["expiration"])
    assert abs((expiration - parse_iso(upload["expires_at"])).total_seconds()) <= 2


CONTENT_TYPE_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "IMAGE/PNG; charset=x": "image/png",
    "image/heif": "image/heic",
    " image/gif ": "image/gif",
}


def test_content_type_aliases_are_stored_and_signed_as_the_canonical_type(alice: User, subtests: Any) -> None:
    for declared, stored in CONTENT_TYPE_ALIASES.items():
        with subtests.test(declared=declared):
            created = start_upload(alice, content_type=declared)
            assert created["photo"]["content_type"] == stored
            assert created["upload"]["fields"]["Content-Type"] == stored
            assert {"Content-Type": stored} in decode_policy(created["upload"]["fields"])["conditions"]


def test_a_declared_size_over_the_upload_limit_is_413(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    use_settings(monkeypatch, PHOTOSKY_MAX_UPLOAD_BYTES="1000")
    response = alice.call("POST", "/photos", {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 1001})
    assert response.status_code == 413, response.body
    assert body(response)["Code"] == "RequestEntityTooLargeError"
    assert "size_bytes" in body(response)["Message"]
    assert listed_ids(alice) == []
    assert start_upload(alice, size_bytes=1000)["photo"]["size_bytes"] == 1000


def test_the_default_upload_limit_is_25_mib(alice: User) -> None:
    too_big = alice.call(
        "POST", "/photos", {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 25 * 1024**2 + 1}
    )
    assert too_big.status_code == 413
    assert start_upload(alice, size_bytes=25 * 1024**2)["photo"]["size_bytes"] == 25 * 1024**2


def test_content_types_that_are_not_allowed_images_are_415(alice: User, subtests: Any) -> None:
    for content_type in ("image/svg+xml", "text/html", "application/pdf", "image/tiff", "image/*"):
        with subtests.test(content_type=content_type):
            response = alice.call(
                "POST", "/photos", {"filename": "a.jpg", "content_type": content_type, "size_bytes": 10}
            )
            assert response.status_code == 415, response.body
            assert body(response)["Code"] == "UnsupportedMediaType"
            assert content_type in body(response)["Message"]
    assert listed_ids(alice) == []


VALID_NEW_PHOTO = {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 10}


def _new_photo_json(**fields: Any) -> bytes:
    return json.dumps({**VALID_NEW_PHOTO, **fields}).encode()


# case -> (request body, the field the 400 must name; "" for the body as a whole)
INVALID_NEW_PHOTOS: dict[str, tuple[bytes, str]] = {
    "filename-missing": (json.dumps({"content_type": "image/jpeg", "size_bytes": 10}).encode(), "filename"),
    "filename-with-slash": (_new_photo_json(filename="../etc/passwd"), "filename"),
    "filename-with-backslash": (_new_photo_json(filename="dir\\a.jpg"), "filename"),
    "filename-empty": (_new_photo_json(filename=""), "filename"),
    "filename-256-chars": (_new_photo_json(filename="x" * 252 + ".jpg"), "filename"),
    "content-type-null": (_new_photo_json(content_type=None), "content_type"),
    "size-missing": (json.dumps({"filename": "a.jpg", "content_type": "image/jpeg"}).encode(), "size_bytes"),
    "size-zero": (_new_photo_json(size_bytes=0), "size_bytes"),
    "size-negative": (_new_photo_json(size_bytes=-1), "size_bytes"),
    "size-true": (_new_photo_json(size_bytes=True), "size_bytes"),
    "size-string": (_new_photo_json(size_bytes="10"), "size_bytes"),
    "size-fraction": (_new_photo_json(size_bytes=10.5), "size_bytes"),
    "tags-not-a-list": (_new_photo_json(tags="cats"), "tags"),
    "21-tags": (_new_photo_json(tags=[f"t{n}" for n in range(21)]), "tags"),
    "tag-with-hash": (_new_photo_json(tags=["#cats"]), "tags"),
    "tag-with-slash": (_new_photo_json(tags=["a/b"]), "tags"),
    "tag-41-chars": (_new_photo_json(tags=["x" * 41]), "tags"),
    "tag-blank": (_new_photo_json(tags=["  "]), "tags"),
    "tag-not-a-string": (_new_photo_json(tags=[3]), "tags"),
    "tag-41-chars-as-sent": (_new_photo_json(tags=[" " + "x" * 40]), "tags"),
    "filename-only-invisible": (_new_photo_json(filename="\u200b\u3164"), "filename"),
    "filename-with-rlo": (_new_photo_json(filename="photo\u202egpj.exe"), "filename"),
    "filename-256-chars-with-a-space": (_new_photo_json(filename=" " + "x" * 251 + ".jpg"), "filename"),
    "title-invisible": (_new_photo_json(title="\u2800"), "title"),
    "title-with-lrm": (_new_photo_json(title="a\u200eb"), "title"),
    "description-with-rlo": (_new_photo_json(description="a\u202eb"), "description"),
    "unknown-field-owner-id": (_new_photo_json(owner_id="b0b00000-0000-4000-8000-000000000002"), "owner_id"),
    "unknown-field-status": (_new_photo_json(status="READY"), "status"),
    "title-201-chars": (_new_photo_json(title="x" * 201), "title"),
    "title-with-line-break": (_new_photo_json(title="line\nbreak"), "title"),
    "title-not-a-string": (_new_photo_json(title=5), "title"),
    "description-2001-chars": (_new_photo_json(description="x" * 2001), "description"),
    "array-body": (b"[]", ""),
    "string-body": (b'"a.jpg"', ""),
    "empty-body": (b"", ""),
    "malformed-json": (b"{", ""),
    "nan": (b'{"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": NaN}', ""),
    "not-utf8": (b'{"filename": "\xff"}', ""),
}


def test_invalid_new_photos_are_400_naming_the_field(alice: User, dynamodb: Any, subtests: Any) -> None:
    for case, (raw, field) in INVALID_NEW_PHOTOS.items():
        with subtests.test(case=case):
            assert_bad_request(alice.call("POST", "/photos", raw=raw), field)
    assert listed_ids(alice) == []
    assert user_items(dynamodb, alice.sub) == []


def test_integral_numbers_written_as_floats_are_whole_numbers(alice: User) -> None:
    # JSON Schema (and openapi.yaml) count 1234.0 as an integer; clients that serialise numbers as floats work.
    photo = start_upload(alice, size_bytes=1234.0)["photo"]
    assert photo["size_bytes"] == 1234
    edited = alice.call("PATCH", f"/photos/{photo['photo_id']}", {"title": "Float", "version": 1.0})
    assert edited.status_code == 200, edited.body
    assert body(edited)["version"] == 2


def test_exactly_20_tags_of_40_characters_are_accepted(alice: User) -> None:
    tags = [f"{n:02d}" + "x" * 38 for n in range(20)]
    assert start_upload(alice, tags=tags)["photo"]["tags"] == tags


# --- usage and quota -----------------------------------------------------------------------------------------------


def test_uploads_count_against_usage_shown_on_the_profile(alice: User) -> None:
    alice.call("POST", "/users", {"display_name": "Alice"})
    assert usage(alice) == {"photos": 0, "bytes": 0, "pending": 0}
    new_photo(alice, size_bytes=1000)
    new_photo(alice, size_bytes=234)
    assert usage(alice) == {"photos": 2, "bytes": 1234, "pending": 2}


def test_the_upload_after_the_photo_quota_is_429_and_creates_nothing(
    alice: User, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, PHOTOSKY_QUOTA_PHOTOS="2")
    alice.call("POST", "/users", {"display_name": "Alice"})
    kept = new_photos(alice, 2, size_bytes=100)
    items_before = user_items(dynamodb, alice.sub)

    response = alice.call("POST", "/photos", {**VALID_NEW_PHOTO, "tags": ["cats"]})
    assert response.status_code == 429, response.body
    assert body(response)["Code"] == "TooManyRequestsError"
    assert usage(alice) == {"photos": 2, "bytes": 200, "pending": 2}
    assert body(alice.call("GET", "/users/me"))["quota"]["photos"] == 2
    assert listed_ids(alice) == [photo["photo_id"] for photo in kept]
    assert listed_ids(alice, tag="cats") == []
    assert user_items(dynamodb, alice.sub) == items_before


def test_the_byte_quota_refuses_an_upload_that_would_pass_it_but_not_one_that_fits(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, PHOTOSKY_QUOTA_BYTES="1000")
    alice.call("POST", "/users", {"display_name": "Alice"})
    first = new_photo(alice, size_bytes=600)

    over = alice.call("POST", "/photos", {**VALID_NEW_PHOTO, "size_bytes": 401})
    assert over.status_code == 429, over.body
    assert body(over)["Code"] == "TooManyRequestsError"
    assert usage(alice) == {"photos": 1, "bytes": 600, "pending": 1}

    fits = new_photo(alice, size_bytes=400)  # exactly fills the quota
    assert usage(alice) == {"photos": 2, "bytes": 1000, "pending": 2}
    assert listed_ids(alice) == [fits["photo_id"], first["photo_id"]]
    assert alice.call("POST", "/photos", {**VALID_NEW_PHOTO, "size_bytes": 1}).status_code == 429


def test_a_single_upload_larger_than_the_byte_quota_is_429(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    use_settings(monkeypatch, PHOTOSKY_QUOTA_BYTES="1000")
    alice.call("POST", "/users", {"display_name": "Alice"})
    response = alice.call("POST", "/photos", {**VALID_NEW_PHOTO, "size_bytes": 1001})
    assert response.status_code == 429, response.body
    assert body(response)["Code"] == "TooManyRequestsError"
    assert listed_ids(alice) == []
    assert usage(alice) == {"photos": 0, "bytes": 0, "pending": 0}


def test_quotas_are_per_user(alice: User, bob: User, monkeypatch: pytest.MonkeyPatch) -> None:
    use_settings(monkeypatch, PHOTOSKY_QUOTA_PHOTOS="1")
    new_photo(alice)
    assert alice.call("POST", "/photos", VALID_NEW_PHOTO).status_code == 429
    assert start_upload(bob)["photo"]["owner_id"] == bob.sub


def test_a_new_photo_is_one_photo_item_one_tag_copy_per_tag_and_the_usage_item(alice: User, dynamodb: Any) -> None:
    photo = new_photo(alice, tags=["cats", "mat"], size_bytes=777)
    items = user_items(dynamodb, alice.sub)
    by_sk = {item["SK"]["S"]: item for item in items}
    assert set(by_sk) == {
        keys.photo_sk(photo["photo_id"]),
        keys.photo_tag_key(alice.sub, photo["photo_id"], "cats")["SK"]["S"],
        keys.photo_tag_key(alice.sub, photo["photo_id"], "mat")["SK"]["S"],
        keys.USAGE_SK,
    }
    assert by_sk[keys.USAGE_SK]["photos"] == {"N": "1"}
    assert by_sk[keys.USAGE_SK]["bytes"] == {"N": "777"}
    assert by_sk[keys.USAGE_SK]["pending"] == {"N": "1"}
    for tag in ("cats", "mat"):
        copy = by_sk[keys.photo_tag_key(alice.sub, photo["photo_id"], tag)["SK"]["S"]]
        # Keys only: a 2,000-character description is not written again per tag (the listing reads the photo).
        assert copy == {
            **keys.photo_tag_key(alice.sub, photo["photo_id"], tag),
            "entity": {"S": "photo_tag"},
            "GSI1PK": {"S": keys.tag_index_pk(alice.sub, tag)},
            "GSI1SK": {"S": keys.photo_sk(photo["photo_id"])},
        }
    # No TTL on a photo: TTL would remove it without releasing the quota it reserved.
    assert "expires_at_epoch" not in by_sk[keys.photo_sk(photo["photo_id"])]
    # ... and the one rate-limit counter the POST spent.
    assert dynamodb.scan(TableName=TABLE)["Count"] == 5


def test_dynamodb_throttling_on_upload_is_503_with_retry_after_and_writes_nothing(
    alice: User, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice.call("POST", "/users", {"display_name": "Alice"})

    def throttled(**kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
            "TransactWriteItems",
        )

    with monkeypatch.context() as patch:
        patch.setattr(deps.dynamodb(), "transact_write_items", throttled)
        response = alice.call("POST", "/photos", {**VALID_NEW_PHOTO, "tags": ["cats"]})
    assert response.status_code == 503, response.body
    assert response.headers["Retry-After"] == "1"
    assert body(response)["Code"] == "ServiceUnavailableError"
    assert listed_ids(alice) == []
    assert usage(alice) == {"photos": 0, "bytes": 0, "pending": 0}
    assert [item["SK"]["S"] for item in user_items(dynamodb, alice.sub)] == [keys.PROFILE_SK]
    assert start_upload(alice)["photo"]["status"] == "PENDING"


# --- GET /photos ---------------------------------------------------------------------------------------------------


def test_the_listing_is_newest_first_with_the_photo_shape(alice: User) -> None:
    photos = new_photos(alice, 3, tags=["cats"])
    page = listed(alice)
    assert [photo["photo_id"] for photo in page["items"]] == [photo["photo_id"] for photo in photos]
    assert page["items"] == photos
    assert page["next_cursor"] is None


def test_an_empty_library_lists_nothing(alice: User) -> None:
    assert listed(alice) == {"items": [], "next_cursor": None}


def test_the_listing_paginates_with_limit_and_cursor(alice: User) -> None:
    photos = new_photos(alice, 5)
    pages = all_pages(alice, limit=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [photo_id for page in pages for photo_id in page] == [photo["photo_id"] for photo in photos]


def test_limit_is_optional_and_caps_the_page(alice: User) -> None:
    new_photos(alice, 3)
    assert len(listed(alice)["items"]) == 3
    assert len(listed(alice, limit=100)["items"]) == 3
    assert len(listed(alice, limit=1)["items"]) == 1


def test_a_limit_outside_1_to_100_is_400_naming_limit(alice: User, subtests: Any) -> None:
    for limit in ("0", "101", "abc", "-1", "+5", "1.5", " 5"):
        with subtests.test(limit=limit):
            assert_bad_request(list_photos(alice, limit=limit), "limit")


@pytest.mark.parametrize("limit", ["²", "1" * 5000], ids=["superscript-two", "5000-digits"])
def test_a_limit_that_only_looks_numeric_is_400_not_500(alice: User, limit: str) -> None:
    assert_bad_request(list_photos(alice, limit=limit), "limit")


def test_an_unknown_query_parameter_is_400_naming_it(alice: User) -> None:
    assert_bad_request(list_photos(alice, owner=alice.sub), "owner")


def test_an_invalid_tag_filter_is_400_naming_tag(alice: User, subtests: Any) -> None:
    # An empty `?tag=` is a 400 (the spec's minLength 1), not every photo: it used to list everything.
    for tag in ("#cats", "x" * 41, "a/b", "cats#", "", " ", "\u200b"):
        with subtests.test(tag=tag):
            assert_bad_request(list_photos(alice, tag=tag), "tag")


def test_another_users_photos_never_appear_in_your_listing(alice: User, bob: User) -> None:
    alices = new_photos(alice, 2, tags=["cats"])
    bobs = new_photos(bob, 2, tags=["cats"])
    assert listed_ids(alice) == [photo["photo_id"] for photo in alices]
    assert listed_ids(bob) == [photo["photo_id"] for photo in bobs]
    assert listed_ids(alice, tag="cats") == [photo["photo_id"] for photo in alices]
    assert listed_ids(bob, tag="cats") == [photo["photo_id"] for photo in bobs]


def test_the_tag_filter_lists_only_photos_with_that_tag_newest_first(alice: User) -> None:
    first = new_photo(alice, tags=["cats", "mat"])
    new_photo(alice, tags=["dogs"])
    new_photo(alice)
    last = new_photo(alice, tags=["Cats"])
    page = listed(alice, tag="cats")
    assert [photo["photo_id"] for photo in page["items"]] == [last["photo_id"], first["photo_id"]]
    # The tag copies carry the whole photo, not a subset of it.
    assert page["items"] == [last, first]
    assert page["next_cursor"] is None
    assert listed_ids(alice, tag="mat") == [first["photo_id"]]
    assert listed_ids(alice, tag="birds") == []


def test_the_tag_filter_is_case_and_space_insensitive(alice: User) -> None:
    photo = new_photo(alice, tags=["cats", "black cat"])
    assert listed_ids(alice, tag="Cats") == [photo["photo_id"]]
    assert listed_ids(alice, tag=" BLACK   Cat ") == [photo["photo_id"]]


def test_tags_and_the_filter_are_compared_caseless_nfkc(alice: User) -> None:
    # "İstanbul" used to be a 400 (lower() leaves a combining dot), and "cafe\u0301" a 400 or another tag than "café".
    photo = new_photo(alice, tags=["\u0130stanbul", "cafe\u0301", "\uff26\uff29\uff33\uff28"])
    assert photo["tags"] == ["istanbul", "caf\u00e9", "fish"]
    for tag in ("istanbul", "ISTANBUL", "\u0130STANBUL", "caf\u00e9", "CAFE\u0301", "fish", "\ufb01sh"):
        assert listed_ids(alice, tag=tag) == [photo["photo_id"]], tag


def test_null_tags_on_create_mean_no_tags(alice: User) -> None:
    # openapi.yaml documents it (NewPhoto.tags: null or a list); PATCH has always read null as "remove them all".
    assert start_upload(alice, tags=None)["photo"]["tags"] == []


def test_text_fields_are_stored_nfc(alice: User) -> None:
    photo = new_photo(alice, filename="cafe\u0301.jpg", title="Cre\u0300me", description="bru\u0302le\u0301e")
    assert (photo["filename"], photo["title"], photo["description"]) == (
        "caf\u00e9.jpg",
        "Cr\u00e8me",
        "br\u00fbl\u00e9e",
    )


def test_the_tag_filter_paginates_with_its_own_cursor(alice: User) -> None:
    tagged = []
    for n in range(5):
        tagged.append(new_photo(alice, tags=["cats"]))
        new_photo(alice, tags=["dogs"] if n % 2 else [])
    pages = all_pages(alice, tag="cats", limit=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [photo_id for page in pages for photo_id in page] == [photo["photo_id"] for photo in reversed(tagged)]


# --- cursor safety -------------------------------------------------------------------------------------------------


def first_cursor(user: User, **params: Any) -> str:
    cursor = listed(user, limit=1, **params)["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


def flip(char: str) -> str:
    return "B" if char != "B" else "C"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tampered_cursors(cursor: str, other_photo_id: str) -> dict[str, str]:
    payload, signature = cursor.split(".")
    padded = payload + "=" * (-len(payload) % 4)
    start_key = json.loads(base64.urlsafe_b64decode(padded))
    moved = json.dumps(start_key).replace(start_key["SK"]["S"], keys.photo_sk(other_photo_id)).encode()
    middle = len(payload) // 2
    return {
        "first-char-flipped": flip(payload[0]) + payload[1:] + "." + signature,
        "middle-char-flipped": payload[:middle] + flip(payload[middle]) + payload[middle + 1 :] + "." + signature,
        "signature-flipped": payload + "." + flip(signature[0]) + signature[1:],
        "start-key-rewritten": b64(moved) + "." + signature,
        "signature-dropped": payload,
        "extra-part": cursor + ".x",
    }


def test_a_tampered_cursor_is_400_naming_cursor(alice: User, subtests: Any) -> None:
    photos = new_photos(alice, 3)
    for kind, cursor in tampered_cursors(first_cursor(alice), photos[-1]["photo_id"]).items():
        with subtests.test(kind=kind):
            assert_bad_request(list_photos(alice, cursor=cursor), "cursor")


GARBAGE_CURSORS = {
    "word": "garbage",
    "short-parts": "a.b",
    "non-ascii": "é.é",
    "dots": "....",
    "huge": "x" * 3000,
    "unsigned-start-key": b64(b'{"PK":{"S":"USER#x"},"SK":{"S":"PHOTO#x"}}') + ".AAAAAAAAAAAAAAAAAAAAAA",
    "nul": "\x00.\x00",
    "json-array": b64(b"[]") + ".AAAA",
}


def test_a_garbage_cursor_is_400_naming_cursor(alice: User, subtests: Any) -> None:
    new_photos(alice, 2)
    for kind, cursor in GARBAGE_CURSORS.items():
        with subtests.test(kind=kind):
            assert_bad_request(list_photos(alice, cursor=cursor), "cursor")


def test_another_users_cursor_is_400(alice: User, bob: User) -> None:
    new_photos(alice, 2, tags=["cats"])
    new_photos(bob, 2, tags=["cats"])
    assert_bad_request(list_photos(bob, cursor=first_cursor(alice)), "cursor")
    assert_bad_request(list_photos(bob, tag="cats", cursor=first_cursor(alice, tag="cats")), "cursor")


def test_a_cursor_only_works_with_the_filter_it_came_from(alice: User) -> None:
    new_photos(alice, 3, tags=["cats", "mat"])
    unfiltered = first_cursor(alice)
    cats = first_cursor(alice, tag="cats")
    assert_bad_request(list_photos(alice, tag="cats", cursor=unfiltered), "cursor")
    assert_bad_request(list_photos(alice, cursor=cats), "cursor")
    assert_bad_request(list_photos(alice, tag="mat", cursor=cats), "cursor")
    # Each cursor still works where it came from.
    assert len(listed(alice, cursor=unfiltered)["items"]) == 2
    assert len(listed(alice, tag="cats", cursor=cats)["items"]) == 2


# --- GET /photos/{id} ----------------------------------------------------------------------------------------------


def test_reading_your_pending_photo_shows_it_without_urls(alice: User) -> None:
    photo = new_photo(alice, title="Whiskers", tags=["cats"])
    response = alice.call("GET", f"/photos/{photo['photo_id']}")
    assert response.status_code == 200
    assert body(response) == photo
    assert body(response)["urls"] == NO_URLS


def test_another_users_photo_is_404_exactly_like_a_missing_one(alice: User, bob: User) -> None:
    photo = new_photo(alice)
    theirs = bob.call("GET", f"/photos/{photo['photo_id']}")
    missing = bob.call("GET", f"/photos/{UNKNOWN_PHOTO_ID}")
    assert theirs.status_code == missing.status_code == 404
    assert body(theirs) == body(missing)
    assert body(theirs)["Code"] == "NotFoundError"
    assert set(body(theirs)) == {"Code", "Message"}


MALFORMED_PHOTO_IDS = {
    "word": "nope",
    "2000-chars": "x" * 2000,
    "lower-case-ulid": "01hzzzzzzzzzzzzzzzzzzzzzzz",
    "ulid-out-of-range": "81HZZZZZZZZZZZZZZZZZZZZZZZ",
    "emoji": "%F0%9F%90%88",
    "key-prefix": "PHOTO%23x",
}


def test_malformed_photo_ids_are_404(alice: User, subtests: Any) -> None:
    photo = new_photo(alice)
    for kind, photo_id in MALFORMED_PHOTO_IDS.items():
        for method, payload in (("GET", None), ("PATCH", {"version": 1, "title": "x"}), ("DELETE", None)):
            with subtests.test(kind=kind, method=method):
                response = alice.call(method, f"/photos/{photo_id}", payload)
                assert response.status_code == 404, response.body
                assert body(response)["Code"] == "NotFoundError"
    with subtests.test(kind="your-own-id-in-lower-case"):
        assert alice.call("GET", f"/photos/{photo['photo_id'].lower()}").status_code == 404
    assert body(alice.call("GET", f"/photos/{photo['photo_id']}")) == photo


# --- PATCH /photos/{id} --------------------------------------------------------------------------------------------


def test_editing_changes_the_sent_fields_and_bumps_version_and_updated_at(alice: User) -> None:
    photo = new_photo(alice, title="Old", description="old text", tags=["a"])
    time.sleep(0.002)
    response = alice.call(
        "PATCH",
        f"/photos/{photo['photo_id']}",
        {"version": 1, "title": " New ", "description": "new\r\ntext", "tags": ["B", "c", "b"]},
    )
    assert response.status_code == 200, response.body
    edited = body(response)
    assert edited["version"] == 2
    assert (edited["title"], edited["description"], edited["tags"]) == ("New", "new\ntext", ["b", "c"])
    assert re.match(ISO_UTC, edited["updated_at"])
    assert edited["updated_at"] > photo["updated_at"]
    unchanged = {"title", "description", "tags", "version", "updated_at"}
    assert {k: v for k, v in edited.items() if k not in unchanged} == {
        k: v for k, v in photo.items() if k not in unchanged
    }
    assert body(alice.call("GET", f"/photos/{photo['photo_id']}")) == edited


def test_editing_one_field_leaves_the_others_alone(alice: User) -> None:
    photo = new_photo(alice, title="Keep", description="keep", tags=["keep"])
    edited = body(alice.call("PATCH", f"/photos/{photo['photo_id']}", {"version": 1, "description": "changed"}))
    assert (edited["title"], edited["description"], edited["tags"]) == ("Keep", "changed", ["keep"])


def test_a_null_title_clears_it(alice: User) -> None:
    photo = new_photo(alice, title="Whiskers", description="keep")
    response = alice.call("PATCH", f"/photos/{photo['photo_id']}", {"version": 1, "title": None})
    assert response.status_code == 200, response.body
    assert (body(response)["title"], body(response)["description"]) == (None, "keep")
    assert body(alice.call("GET", f"/photos/{photo['photo_id']}"))["title"] is None


def test_changing_tags_moves_the_photo_between_tag_listings(alice: User, dynamodb: Any) -> None:
    photo = new_photo(alice, tags=["a", "b"])
    response = alice.call("PATCH", f"/photos/{photo['photo_id']}", {"version": 1, "tags": ["b", "c"]})
    assert response.status_code == 200, response.body
    assert listed_ids(alice, tag="a") == []
    assert listed_ids(alice, tag="b") == [photo["photo_id"]]
    assert listed_ids(alice, tag="c") == [photo["photo_id"]]
    # The tag copies carry the edit too.
    assert listed(alice, tag="b")["items"][0] == body(response)
    tag_sks = sorted(item["SK"]["S"] for item in user_items(dynamodb, alice.sub) if item["entity"]["S"] == "photo_tag")
    assert tag_sks == [keys.photo_tag_key(alice.sub, photo["photo_id"], tag)["SK"]["S"] for tag in ("b", "c")]


def test_clearing_tags_removes_the_photo_from_every_tag_listing(alice: User) -> None:
    photo = new_photo(alice, tags=["a", "b"])
    response = alice.call("PATCH", f"/photos/{photo['photo_id']}", {"version": 1, "tags": []})
    assert body(response)["tags"] == []
    assert listed_ids(alice, tag="a") == listed_ids(alice, tag="b") == []
    assert listed_ids(alice) == [photo["photo_id"]]


def test_a_stale_version_is_rejected_with_409_and_changes_nothing(alice: User) -> None:
    photo = new_photo(alice, title="First", tags=["a"])
    current = body(alice.call("PATCH", f"/photos/{photo['photo_id']}", {"version": 1, "title": "Second"}))
    assert current["version"] == 2
    stale = alice.call("PATCH", f"/photos/{photo['photo_id']}", {"version": 1, "title": "Third", "tags": ["z"]})
    assert stale.status_code == 409, stale.body
    assert body(stale)["Code"] == "ConflictError"
    assert body(alice.call("GET", f"/photos/{photo['photo_id']}")) == current
    assert listed_ids(alice, tag="z") == []
    ahead = alice.call("PATCH", f"/photos/{photo['photo_id']}", {"version": 3, "title": "Third"})
    assert ahead.status_code == 409


BAD_VERSIONS = {
    "missing": {"title": "x"},
    "null": {"version": None, "title": "x"},
    "zero": {"version": 0, "title": "x"},
    "string": {"version": "1", "title": "x"},
    "true": {"version": True, "title": "x"},
    "fraction": {"version": 1.5, "title": "x"},
}


def test_a_missing_or_malformed_version_is_400_naming_version(alice: User, subtests: Any) -> None:
    photo = new_photo(alice, title="Keep")
    for case, patch in BAD_VERSIONS.items():
        with subtests.test(case=case):
            assert_bad_request(alice.call("PATCH", f"/photos/{photo['photo_id']}", patch), "version")
    assert body(alice.call("GET", f"/photos/{photo['photo_id']}")) == photo


# case -> (request body, the field the 400 must name; "" for the body as a whole)
INVALID_EDITS: dict[str, tuple[bytes, str]] = {
    "nothing-to-update": (b'{"version": 1}', ""),
    "unknown-field-status": (b'{"version": 1, "status": "READY"}', "status"),
    "unknown-field-size": (b'{"version": 1, "size_bytes": 1}', "size_bytes"),
    "unknown-field-owner": (b'{"version": 1, "owner_id": "b0b00000-0000-4000-8000-000000000002"}', "owner_id"),
    "bad-tag": (b'{"version": 1, "tags": ["#x"]}', "tags"),
    "tags-not-a-list": (b'{"version": 1, "tags": "x"}', "tags"),
    "title-too-long": (b'{"version": 1, "title": "' + b"x" * 201 + b'"}', "title"),
    "array": (b"[]", ""),
    "malformed": (b"{", ""),
    "empty": (b"", ""),
}


def test_invalid_edits_are_400_and_change_nothing(alice: User, subtests: Any) -> None:
    photo = new_photo(alice, title="Keep")
    for case, (raw, field) in INVALID_EDITS.items():
        with subtests.test(case=case):
            response = alice.call("PATCH", f"/photos/{photo['photo_id']}", raw=raw)
            assert_bad_request(response, field)
            assert body(response)["Message"]
    assert body(alice.call("GET", f"/photos/{photo['photo_id']}")) == photo


def test_editing_another_users_photo_is_404_and_leaves_it_unchanged(alice: User, bob: User) -> None:
    photo = new_photo(alice, title="Alice's", tags=["cats"])
    response = bob.call("PATCH", f"/photos/{photo['photo_id']}", {"version": 1, "title": "Bob's", "tags": ["x"]})
    assert response.status_code == 404, response.body
    assert body(response) == body(bob.call("GET", f"/photos/{UNKNOWN_PHOTO_ID}"))
    assert body(alice.call("GET", f"/photos/{photo['photo_id']}")) == photo
    assert listed_ids(bob) == []


# --- DELETE /photos/{id} -------------------------------------------------------------------------------------------


def test_deleting_removes_the_photo_its_tag_copies_its_objects_and_its_usage(
    alice: User, aws: Any, dynamodb: Any
) -> None:
    alice.call("POST", "/users", {"display_name": "Alice"})
    gone = new_photo(alice, tags=["cats", "mat"], size_bytes=1000)
    kept = new_photo(alice, tags=["cats"], size_bytes=234)
    s3 = aws.client("s3")
    for photo in (gone, kept):
        for key in object_keys_of(alice.sub, photo["photo_id"]):
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert usage(alice) == {"photos": 2, "bytes": 1234, "pending": 2}

    response = alice.call("DELETE", f"/photos/{gone['photo_id']}")
    assert response.status_code == 204
    assert response.body == b""

    assert alice.call("GET", f"/photos/{gone['photo_id']}").status_code == 404
    assert listed_ids(alice) == [kept["photo_id"]]
    assert listed_ids(alice, tag="cats") == [kept["photo_id"]]
    assert listed_ids(alice, tag="mat") == []
    assert usage(alice) == {"photos": 1, "bytes": 234, "pending": 1}
    assert bucket_keys(s3) == set(object_keys_of(alice.sub, kept["photo_id"]))
    sks = {item["SK"]["S"] for item in user_items(dynamodb, alice.sub)}
    assert sks == {
        keys.PROFILE_SK,
        keys.USAGE_SK,
        keys.photo_sk(kept["photo_id"]),
        keys.photo_tag_key(alice.sub, kept["photo_id"], "cats")["SK"]["S"],
    }


def test_deleting_twice_is_404_the_second_time(alice: User) -> None:
    alice.call("POST", "/users", {"display_name": "Alice"})
    photo = new_photo(alice, size_bytes=500)  # never uploaded: no objects to delete is fine
    assert alice.call("DELETE", f"/photos/{photo['photo_id']}").status_code == 204
    again = alice.call("DELETE", f"/photos/{photo['photo_id']}")
    assert again.status_code == 404
    assert body(again)["Code"] == "NotFoundError"
    assert usage(alice) == {"photos": 0, "bytes": 0, "pending": 0}


def test_deleting_another_users_photo_is_404_and_keeps_it_and_its_usage(alice: User, bob: User, aws: Any) -> None:
    alice.call("POST", "/users", {"display_name": "Alice"})
    photo = new_photo(alice, tags=["cats"], size_bytes=500)
    s3 = aws.client("s3")
    for key in object_keys_of(alice.sub, photo["photo_id"]):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")

    response = bob.call("DELETE", f"/photos/{photo['photo_id']}")
    assert response.status_code == 404
    assert body(response) == body(bob.call("GET", f"/photos/{UNKNOWN_PHOTO_ID}"))

    assert body(alice.call("GET", f"/photos/{photo['photo_id']}")) == photo
    assert listed_ids(alice, tag="cats") == [photo["photo_id"]]
    assert usage(alice) == {"photos": 1, "bytes": 500, "pending": 1}
    assert bucket_keys(s3) == set(object_keys_of(alice.sub, photo["photo_id"]))


def test_deleting_frees_quota_for_a_new_upload(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    use_settings(monkeypatch, PHOTOSKY_QUOTA_PHOTOS="1")
    photo = new_photo(alice)
    assert alice.call("POST", "/photos", VALID_NEW_PHOTO).status_code == 429
    assert alice.call("DELETE", f"/photos/{photo['photo_id']}").status_code == 204
    assert start_upload(alice)["photo"]["status"] == "PENDING"
