"""moto_state: a restored table and bucket are exactly the saved ones, whatever happened in between, so a case's
writes never leak into the next case the suites start from the same saved scene."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto.core.base_backend import BackendDict

from chalicelib import keys
from chalicelib.photos.models import PreviewFormat
from devstack import resources
from tests.integration.conftest import BUCKET, TABLE, User
from tests.reliability import moto_state
from tests.reliability.moto_state import MadeOnce, restore, save
from tests.reliability.support import (
    Snapshot,
    aws_clients,
    body,
    create_profile,
    jpeg,
    snapshot,
    start_upload,
    upload_ready,
)
from tests.support.albums import create_album, share
from tests.support.cognito import REGION


def everything(aws: boto3.session.Session, user: User) -> tuple[Snapshot, dict[str, Any], dict[str, Any], Any]:
    """All that could tell two states apart: every item (write-rate counters too) and every object's bytes; each
    object's metadata as S3 answers it; both indexes as a Scan of them reads them; and the API's own listing."""
    dynamodb, s3 = aws_clients(aws)
    objects = {}
    for key in snapshot(aws).objects:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        objects[key] = {name: head.get(name) for name in ("ContentType", "ETag", "LastModified", "ContentLength")}
    indexes = {
        index: sorted(
            repr(sorted(item.items()))
            for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE, IndexName=index)
            for item in page["Items"]
        )
        for index in (keys.GSI1, keys.GSI2)
    }
    # Without the presigned URLs, which are signed for the moment they are asked for.
    listing = [{**photo, "urls": None} for photo in body(user.call("GET", "/photos?limit=100"))["items"]]
    return snapshot(aws, counters=True), objects, indexes, listing


def build(api: Client, s3: Any, alice: User) -> dict[str, str]:
    create_profile(alice, "Alice")
    ready = upload_ready(api, s3, alice, jpeg(16, 16), tags=["sea"])["photo_id"]
    pending = start_upload(alice, jpeg(16, 16), tags=["later"])["photo"]["photo_id"]
    return {"ready": ready, "pending": pending}


def mess_up(aws: boto3.session.Session, api: Client, s3: Any, alice: User, photos: dict[str, str]) -> None:
    """A case's worth of writes: items updated, added, deleted (through the app and directly), objects added,
    overwritten with other bytes and another type, and deleted."""
    dynamodb, _ = aws_clients(aws)
    version = body(alice.call("GET", f"/photos/{photos['ready']}"))["version"]
    edited = alice.call("PATCH", f"/photos/{photos['ready']}", {"title": "edited", "version": version})
    assert edited.status_code == 200, edited.body
    assert alice.call("DELETE", f"/photos/{photos['ready']}").status_code == 204  # to the trash: a transaction
    upload_ready(api, s3, alice, jpeg(16, 16))
    dynamodb.delete_item(TableName=TABLE, Key=keys.photo_key(alice.sub, photos["pending"]))
    original = keys.original_object(alice.sub, photos["ready"])
    s3.put_object(Bucket=BUCKET, Key=original, Body=b"other bytes", ContentType="text/plain")
    s3.delete_object(Bucket=BUCKET, Key=keys.preview_object(alice.sub, photos["ready"], "small", PreviewFormat.WEBP))


def test_a_restored_table_and_bucket_are_exactly_the_saved_ones(
    aws: boto3.session.Session, api: Client, s3: Any, alice: User
) -> None:
    photos = build(api, s3, alice)
    saved, before = save(), everything(aws, alice)
    mess_up(aws, api, s3, alice, photos)
    messed = everything(aws, alice)
    assert all(part != was for part, was in zip(messed, before, strict=True)), "every part of the state changed"
    restore(saved)
    assert everything(aws, alice) == before


def test_a_saved_state_outlives_a_moto_reset_and_restores_into_a_fresh_moto(
    aws: boto3.session.Session, api: Client, s3: Any, alice: User
) -> None:
    """What a later test does: its own moto (reset, which closes every live key's buffer), its own empty table and
    bucket, then the state a module saved."""
    build(api, s3, alice)
    saved, before = save(), everything(aws, alice)
    BackendDict.reset()
    dynamodb = aws.client("dynamodb")
    resources.create_table(dynamodb, TABLE)
    resources.create_bucket(aws.client("s3"), BUCKET, REGION)
    assert snapshot(aws) == Snapshot({}, {})
    restore(saved)
    assert everything(aws, alice) == before


def test_each_case_starts_from_the_made_state_and_its_own_copy_of_what_make_returned(
    aws: boto3.session.Session, api: Client, s3: Any, alice: User
) -> None:
    made = MadeOnce()
    photos = made("scene", lambda: build(api, s3, alice))
    made_photos, before = dict(photos), everything(aws, alice)
    for case in range(2):
        mess_up(aws, api, s3, alice, photos)
        photos["ready"] = f"changed by case {case}"  # a case may change its copy of the value
        photos = made("scene", lambda: pytest.fail("made twice"))
        assert everything(aws, alice) == before, f"case {case}'s writes leaked into the next case"
        assert photos == made_photos
    assert made.built == ["scene"]


def test_saving_without_the_aws_fixtures_table_is_a_clear_error() -> None:
    with pytest.raises(LookupError, match="is the `aws` fixture active"):
        save()


def test_what_make_returns_is_copied_and_what_it_keeps_is_shared(aws: boto3.session.Session, api: Client) -> None:
    made = MadeOnce()
    first = made("value", lambda: {"api": api, "ids": ["a"]}, keep=[api])
    again: dict[str, Any] = made("value", lambda: pytest.fail("made twice"))
    assert again == first
    assert again["ids"] is not first["ids"]
    assert again["api"] is api  # an API client is what a value is bound to, not what it knows: never copied


# An item with every kind of attribute value, binary ones nested too (the app writes none, the snapshot reads them).
EVERY_TYPE = {
    "PK": {"S": "TEST#every-type"},
    "SK": {"S": "ITEM"},
    "number": {"N": "12.50"},
    "binary": {"B": b"\x00\xffbytes"},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "binaries": {"BS": [b"\x01", b"\x02"]},
    "map": {"M": {"inner": {"B": b"\x03"}, "list": {"L": [{"S": "x"}, {"N": "3"}, {"B": b"\x04"}]}}},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
}


def test_a_snapshot_read_from_moto_is_what_the_api_reads(
    aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(api, s3, alice)
    upload_ready(api, s3, bob, jpeg(16, 16))
    album_id = create_album(alice)["album_id"]
    share(alice, album_id, bob, "contributor")
    dynamodb, _ = aws_clients(aws)
    dynamodb.put_item(TableName=TABLE, Item=EVERY_TYPE)
    # A binary value an update wrote (moto keeps it as bytes, where a put keeps the request's base64 text).
    dynamodb.update_item(
        TableName=TABLE,
        Key={"PK": EVERY_TYPE["PK"], "SK": EVERY_TYPE["SK"]},
        UpdateExpression="SET updated = :b",
        ExpressionAttributeValues={":b": {"B": b"\x05updated"}},
    )
    # Were the bucket versioned, a deleted object's latest version would be a delete marker: not listed.
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key="versioned/deleted", Body=b"gone")
    s3.delete_object(Bucket=BUCKET, Key="versioned/deleted")
    options = [
        {"user_id": user_id, "quick": quick, "counters": counters}
        for user_id in (None, alice.sub)
        for quick in (False, True)
        for counters in (False, True)
    ]
    from_moto = [snapshot(aws, **option) for option in options]  # type: ignore[arg-type]
    assert EVERY_TYPE.items() <= from_moto[0].items[("TEST#every-type", "ITEM")].items()
    monkeypatch.setattr(moto_state, "in_process", lambda dynamodb: False)
    through_the_api = [snapshot(aws, **option) for option in options]  # type: ignore[arg-type]
    assert from_moto == through_the_api


def test_a_client_of_another_endpoint_is_not_read_from_in_process_moto(aws: boto3.session.Session) -> None:
    """A dev stack's moto server is another process: its state is read through the API."""
    assert moto_state.in_process(aws.client("dynamodb"))
    assert not moto_state.in_process(aws.client("dynamodb", endpoint_url="http://127.0.0.1:5000"))
