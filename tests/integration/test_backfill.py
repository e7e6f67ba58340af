"""`python -m ops.backfill` against moto in-process: photos stored before the library features (no index attributes,
no month counted) join the timeline exactly once, whatever the new code does to them first."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import deps
from chalicelib.photos.repository import _photo_item
from ops.backfill import backfill
from tests.integration.conftest import TABLE, User
from tests.reliability.support import body, upload_ready

# What an earlier PhotoSky wrote for a photo: everything but the attributes the library added.
LIBRARY_ATTRIBUTES = ("indexed", "GSI2PK", "GSI2SK", "favorite", "trashed_at", "purge_at", "sha256", "duplicate_of")


@pytest.fixture
def s3(aws: boto3.session.Session) -> Any:
    return aws.client("s3")


def make_legacy(photo_id: str, owner_id: str) -> None:
    """Rewrite a stored photo as an earlier version wrote it, and forget that it was counted in its month."""
    client = deps.dynamodb()
    photo = deps.photo_repository().get(owner_id, photo_id)
    assert photo is not None
    item = {name: value for name, value in _photo_item(photo).items() if name not in LIBRARY_ATTRIBUTES}
    client.put_item(TableName=TABLE, Item=item)
    client.update_item(
        TableName=TABLE,
        Key={"PK": {"S": f"USER#{owner_id}"}, "SK": {"S": f"MONTH#{photo.month}"}},
        UpdateExpression="ADD #count :minus_one",
        ExpressionAttributeNames={"#count": "count"},
        ExpressionAttributeValues={":minus_one": {"N": "-1"}},
    )
    if photo.sha256:
        client.delete_item(
            TableName=TABLE, Key={"PK": {"S": f"USER#{owner_id}"}, "SK": {"S": f"SHA256#{photo.sha256}"}}
        )


def timeline(user: User) -> list[dict[str, Any]]:
    response = user.call("GET", "/photos/timeline")
    assert response.status_code == 200, response.body
    return list(body(response)["buckets"])


def taken_order(user: User) -> list[str]:
    response = user.call("GET", "/photos?sort=taken")
    assert response.status_code == 200, response.body
    return [photo["photo_id"] for photo in body(response)["items"]]


def test_legacy_photos_join_the_timeline_once_and_a_second_run_does_nothing(api: Client, s3: Any, alice: User) -> None:
    photos = [upload_ready(api, s3, alice)["photo_id"] for _ in range(3)]
    month = deps.photo_repository().get(alice.sub, photos[0]).month  # type: ignore[union-attr]
    for photo_id in photos:
        make_legacy(photo_id, alice.sub)
    assert timeline(alice) == []
    assert taken_order(alice) == []

    assert backfill(deps.dynamodb(), TABLE) == {"rewritten": 3, "changed_meanwhile": 0}

    assert timeline(alice) == [{"month": month, "count": 3}]
    assert taken_order(alice) == photos[::-1]
    assert backfill(deps.dynamodb(), TABLE) == {"rewritten": 0, "changed_meanwhile": 0}


def test_a_legacy_photo_the_new_code_writes_first_is_counted_by_that_write_and_not_again(
    api: Client, s3: Any, alice: User
) -> None:
    edited, trashed, untouched = (upload_ready(api, s3, alice)["photo_id"] for _ in range(3))
    month = deps.photo_repository().get(alice.sub, edited).month  # type: ignore[union-attr]
    for photo_id in (edited, trashed, untouched):
        make_legacy(photo_id, alice.sub)

    assert alice.call("PATCH", f"/photos/{edited}", {"title": "Edited", "version": 1}).status_code == 200
    assert timeline(alice) == [{"month": month, "count": 1}]
    assert alice.call("DELETE", f"/photos/{trashed}").status_code == 204  # never counted: nothing to take off
    assert timeline(alice) == [{"month": month, "count": 1}]

    assert backfill(deps.dynamodb(), TABLE) == {"rewritten": 1, "changed_meanwhile": 0}
    assert timeline(alice) == [{"month": month, "count": 2}]
    assert alice.call("POST", f"/photos/{trashed}/restore").status_code == 200
    assert timeline(alice) == [{"month": month, "count": 3}]
