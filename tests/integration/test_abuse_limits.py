"""Abuse limits through the real API: outstanding uploads are capped, and each user's writes are rate limited."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from chalicelib import deps, errors, keys
from chalicelib.ratelimit import DynamoRateCounter, WriteRateLimiter
from tests.integration.conftest import BUCKET, TABLE, User
from tests.integration.test_photos_api import use_settings, user_items
from tests.integration.test_upload_worker import jpeg

pytestmark = pytest.mark.suite("abuse")

NEW_PHOTO = {"filename": "cat.jpg", "content_type": "image/jpeg", "size_bytes": 1000}


def body(response: Any) -> Any:
    return json.loads(response.body)


def library_items(dynamodb: Any, user: User) -> list[dict[str, Any]]:
    return user_items(dynamodb, user.sub)


def start(user: User, **fields: Any) -> Any:
    return user.call("POST", "/photos", {**NEW_PHOTO, **fields})


# --- outstanding uploads -------------------------------------------------------------------------------------------


def test_uploads_past_the_pending_cap_are_429_and_reserve_nothing(
    alice: User, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, PHOTOSKY_MAX_PENDING_UPLOADS="2")
    assert alice.call("POST", "/users", {"display_name": "Alice"}).status_code == 201
    assert [start(alice).status_code for _ in range(2)] == [201, 201]
    before = library_items(dynamodb, alice)

    refused = start(alice, tags=["cats"])

    assert refused.status_code == 429, refused.body
    assert body(refused)["Code"] == "TooManyRequestsError"
    assert "2 uploads are still in progress" in body(refused)["Message"]
    assert refused.headers["Retry-After"] == "5"  # uploads settle within seconds: worth trying again
    assert library_items(dynamodb, alice) == before
    me = body(alice.call("GET", "/users/me"))
    assert (me["usage"]["pending"], me["quota"]["pending"]) == (2, 2)


def test_a_settled_or_deleted_upload_frees_its_place_under_the_pending_cap(
    alice: User, bob: User, aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, PHOTOSKY_MAX_PENDING_UPLOADS="2")
    data = jpeg()
    first = body(start(alice, size_bytes=len(data)))["photo"]
    second = body(start(alice))["photo"]
    assert start(alice).status_code == 429
    assert start(bob).status_code == 201  # the cap is per user

    upload_key = keys.upload_object(alice.sub, first["photo_id"])
    aws.client("s3").put_object(Bucket=BUCKET, Key=upload_key, Body=data, ContentType="image/jpeg")
    deps.upload_processor().ingest(upload_key)
    assert start(alice).status_code == 201  # `first` is READY now
    assert start(alice).status_code == 429

    assert alice.call("DELETE", f"/photos/{second['photo_id']}").status_code == 204
    assert start(alice).status_code == 201


def test_a_quota_refusal_is_not_reported_as_the_pending_cap(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    use_settings(monkeypatch, PHOTOSKY_QUOTA_BYTES="1500", PHOTOSKY_MAX_PENDING_UPLOADS="5")
    assert start(alice).status_code == 201
    refused = start(alice)
    assert refused.status_code == 429
    assert "storage quota reached" in body(refused)["Message"]
    assert "Retry-After" not in refused.headers  # waiting does not help: photos must be deleted


# --- the per-user write rate ---------------------------------------------------------------------------------------


def test_writes_past_the_rate_limit_are_429_with_retry_after_and_change_nothing(
    alice: User, bob: User, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, PHOTOSKY_WRITE_RATE_LIMIT="3", PHOTOSKY_WRITE_RATE_WINDOW_SECONDS="3600")
    assert alice.call("POST", "/users", {"display_name": "Alice"}).status_code == 201
    photo = body(start(alice))["photo"]
    assert alice.call("PATCH", "/users/me", {"bio": "hi"}).status_code == 200
    before = library_items(dynamodb, alice)

    for method, path, payload in [
        ("POST", "/photos", NEW_PHOTO),
        ("PATCH", f"/photos/{photo['photo_id']}", {"title": "t", "version": 1}),
        ("DELETE", f"/photos/{photo['photo_id']}", None),
        ("PATCH", "/users/me", {"bio": "again"}),
    ]:
        refused = alice.call(method, path, payload)
        assert refused.status_code == 429, (method, path, refused.body)
        assert body(refused)["Code"] == "TooManyRequestsError"
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert library_items(dynamodb, alice) == before
    # Reads are not limited, and another user has a budget of their own.
    assert alice.call("GET", f"/photos/{photo['photo_id']}").status_code == 200
    assert bob.call("POST", "/users", {"display_name": "Bob"}).status_code == 201


def test_a_malformed_write_still_spends_from_the_budget(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """Otherwise invalid bodies would be a free way to make the API work."""
    use_settings(monkeypatch, PHOTOSKY_WRITE_RATE_LIMIT="2", PHOTOSKY_WRITE_RATE_WINDOW_SECONDS="3600")
    assert [alice.call("POST", "/photos", raw=b"{").status_code for _ in range(3)] == [400, 400, 429]


def test_the_counter_refuses_exactly_past_the_limit_and_starts_again_in_the_next_window(
    aws: boto3.session.Session,
) -> None:
    now = [1_000_000.0]
    limiter = WriteRateLimiter(
        DynamoRateCounter(aws.client("dynamodb"), TABLE), limit=3, window_seconds=60, clock=lambda: now[0]
    )
    for _ in range(3):
        limiter.spend("u-1")
    with pytest.raises(errors.RateLimited) as refused:
        limiter.spend("u-1")
    assert refused.value.retry_after == 20  # 1_000_000 is 40 s into its minute
    limiter.spend("u-2")
    now[0] += 20
    limiter.spend("u-1")  # a new window
    counter = aws.client("dynamodb").get_item(TableName=TABLE, Key=keys.rate_key("u-1", 999_960))["Item"]
    assert counter["count"] == {"N": "3"}
    # The counter removes itself (DynamoDB TTL) an hour after its window ends.
    assert int(counter["expires_at_epoch"]["N"]) == 999_960 + 60 + 3600
