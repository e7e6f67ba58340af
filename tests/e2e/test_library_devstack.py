"""The library on the real dev stack (moto server, the HTTP API with real token checks, the S3 -> SQS -> worker
path): trash and restore, favourites, the timeline, duplicates, a batch and account deletion, as a client sees them.
What each route refuses is tests/integration/test_library_api.py; the web client is tests/browser."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devstack.clients import emulated_client
from tests.e2e.test_devstack import Reply
from tests.e2e.test_photos_devstack import api_as, bucket_keys, person, settled, upload  # noqa: F401 (fixtures)
from tests.support.imaging_samples import encode, exif, noise

pytestmark = pytest.mark.e2e


def ids(reply: Reply) -> list[str]:
    assert reply.status == 200, reply.body
    return [photo["photo_id"] for photo in reply.body["items"]]


def test_a_library_day_trash_restore_favourites_timeline_duplicates_and_a_batch(
    api_as: Callable[..., Reply],  # noqa: F811
) -> None:
    old = encode(noise((320, 240)), "JPEG", exif=exif(taken="2019:07:14 09:00:00"))
    new = encode(noise((320, 240)), "JPEG")
    first = settled(api_as, upload(api_as, old, "image/jpeg")["photo_id"])
    second = settled(api_as, upload(api_as, new, "image/jpeg")["photo_id"])
    assert (first["status"], second["status"]) == ("READY", "READY")
    assert first["sha256"] == hashlib.sha256(old).hexdigest()

    buckets = api_as("GET", "/photos/timeline").body["buckets"]
    assert buckets == [{"month": second["created_at"][:7], "count": 1}, {"month": "2019-07", "count": 1}]
    assert ids(api_as("GET", "/photos?sort=taken&to=2019-12-31")) == [first["photo_id"]]

    favourite = api_as("PATCH", f"/photos/{first['photo_id']}", body={"favorite": True, "version": 1})
    assert favourite.status == 200, favourite.body
    assert ids(api_as("GET", "/photos?favorite=true")) == [first["photo_id"]]

    # The same bytes again: refused up front when the client says, rejected by the worker when it does not.
    told = api_as(
        "POST",
        "/photos",
        body={"filename": "f", "content_type": "image/jpeg", "size_bytes": len(old), "sha256": first["sha256"]},
    )
    assert (told.status, told.body["Code"], told.body["photo_id"]) == (409, "DuplicatePhoto", first["photo_id"])
    copy = settled(api_as, upload(api_as, old, "image/jpeg")["photo_id"])
    assert (copy["status"], copy["duplicate_of"]) == ("REJECTED", first["photo_id"])

    assert api_as("DELETE", f"/photos/{first['photo_id']}").status == 204
    assert ids(api_as("GET", "/photos?favorite=true")) == []
    assert ids(api_as("GET", "/trash")) == [first["photo_id"]]
    assert api_as("GET", "/users/me").body["usage"]["trash"] == {"photos": 1, "bytes": len(old)}
    assert [bucket["month"] for bucket in api_as("GET", "/photos/timeline").body["buckets"]] == [
        second["created_at"][:7]
    ]
    restored = api_as("POST", f"/photos/{first['photo_id']}/restore")
    assert (restored.status, restored.body["trashed_at"], restored.body["favorite"]) == (200, None, True)

    results = api_as(
        "POST",
        "/photos/batch",
        body={"action": "add_tags", "photo_ids": [first["photo_id"], second["photo_id"]], "tags": ["summer"]},
    )
    assert [result["status"] for result in results.body["results"]] == ["done", "done"]
    assert set(ids(api_as("GET", "/photos?tag=summer"))) == {first["photo_id"], second["photo_id"]}
    results = api_as(
        "POST", "/photos/batch", body={"action": "trash", "photo_ids": [first["photo_id"], second["photo_id"]]}
    )
    assert [result["status"] for result in results.body["results"]] == ["done", "done"]
    assert api_as("DELETE", "/trash").status == 204
    assert ids(api_as("GET", "/trash")) == []
    usage = api_as("GET", "/users/me").body["usage"]
    assert (usage["photos"], usage["trash"]["photos"]) == (0, 0)


def test_deleting_an_account_on_the_dev_stack_leaves_nothing_of_it(
    devstack: dict[str, Any],
    api_as: Callable[..., Reply],  # noqa: F811
    bucket_keys: Callable[[], set[str]],  # noqa: F811
) -> None:
    photo = settled(api_as, upload(api_as, encode(noise((200, 150)), "JPEG"), "image/jpeg")["photo_id"])
    owner = photo["owner_id"]
    album = api_as("POST", "/albums", body={"title": "Mine"}).body
    api_as("POST", f"/albums/{album['album_id']}/photos", body={"photo_ids": [photo["photo_id"]]})

    assert api_as("DELETE", "/users/me").status == 204

    assert api_as("GET", "/users/me").status == 404
    assert api_as("GET", f"/albums/{album['album_id']}").status == 404
    assert not [key for key in bucket_keys() if owner in key]
    dynamodb = emulated_client("dynamodb", devstack)
    left = dynamodb.query(
        TableName=devstack["table_name"],
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USER#{owner}"}},
    )["Items"]
    assert all(item["SK"]["S"].startswith("RATE#") for item in left), left  # rate counters expire by TTL


def test_copies_uploaded_at_the_same_moment_leave_exactly_one_in_the_library(
    api_as: Callable[..., Reply],  # noqa: F811
) -> None:
    data = encode(noise((400, 300)), "JPEG")
    with ThreadPoolExecutor(4) as pool:
        started = list(pool.map(lambda _: upload(api_as, data, "image/jpeg")["photo_id"], range(4)))
    photos = [settled(api_as, photo_id) for photo_id in started]
    ready = [photo for photo in photos if photo["status"] == "READY"]
    assert len(ready) == 1, photos
    copies = [photo for photo in photos if photo is not ready[0]]
    assert {(photo["status"], photo["duplicate_of"]) for photo in copies} == {("REJECTED", ready[0]["photo_id"])}
    assert api_as("GET", "/users/me").body["usage"]["photos"] == 1
