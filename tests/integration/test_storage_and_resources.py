"""The S3 adapter and the provisioned resources, on in-process moto."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from chalicelib import deps, errors, keys
from chalicelib.photos.events import uploaded_object_keys
from chalicelib.photos.models import StoredObject
from devstack import resources
from tests.integration.conftest import BUCKET, TABLE


@pytest.fixture
def s3(aws: boto3.session.Session) -> Any:
    return aws.client("s3")


def test_head_and_read_report_missing_objects_as_none(aws: boto3.session.Session) -> None:
    storage = deps.storage()
    assert storage.head("uploads/nobody/nothing") is None
    assert storage.read("uploads/nobody/nothing", max_bytes=10) is None


def test_read_refuses_objects_larger_than_allowed(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/u/p", Body=b"x" * 100)
    with pytest.raises(errors.TooLarge):
        deps.storage().read("uploads/u/p", max_bytes=99)
    assert deps.storage().read("uploads/u/p", max_bytes=100) == b"x" * 100


def test_write_sets_the_verified_content_type_and_a_long_private_cache_life(s3: Any) -> None:
    deps.storage().write("originals/u/p", b"data", content_type="image/png")
    assert deps.storage().head("originals/u/p") == StoredObject(size=4, content_type="image/png")
    assert s3.head_object(Bucket=BUCKET, Key="originals/u/p")["CacheControl"] == "private, max-age=31536000, immutable"


def test_delete_is_idempotent_and_takes_many_keys(s3: Any) -> None:
    for key in ("a/1", "a/2"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    deps.storage().delete("a/1", "a/2", "a/never-existed")
    deps.storage().delete("a/1")
    deps.storage().delete()
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_download_urls_are_sigv4_and_name_the_file_safely(aws: boto3.session.Session) -> None:
    url = deps.storage().download_url("originals/u/p", expires_in=600, filename='Été "2024"/x.jpg')
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["600"]
    assert query["response-content-disposition"] == ["inline; filename*=UTF-8''%C3%89t%C3%A9%20%222024%22%2Fx.jpg"]


def test_presigned_upload_expires_when_it_says(aws: boto3.session.Session) -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    upload = deps.storage().presigned_upload(
        key="uploads/u/p", content_type="image/png", size_bytes=5, expires_in=900, now=now
    )
    assert upload.expires_at == "2026-11-23T10:15:00.000Z"
    assert upload.fields["key"] == "uploads/u/p"


def test_the_table_expires_pending_photos_and_has_the_overloaded_indexes(aws: boto3.session.Session) -> None:
    dynamodb = aws.client("dynamodb")
    ttl = dynamodb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == resources.TTL_ATTRIBUTE == "expires_at_epoch"
    indexes = dynamodb.describe_table(TableName=TABLE)["Table"]["GlobalSecondaryIndexes"]
    assert [index["IndexName"] for index in indexes] == [keys.GSI1, keys.GSI2]
    for index in indexes:
        name = index["IndexName"]
        assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [
            (f"{name}PK", "HASH"),
            (f"{name}SK", "RANGE"),
        ]
        assert index["Projection"]["ProjectionType"] == "ALL"


def test_the_bucket_clears_debris_under_uploads_and_blocks_public_access(s3: Any) -> None:
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert [(rule["Filter"]["Prefix"], rule["Status"]) for rule in rules] == [(keys.UPLOADS_PREFIX, "Enabled")]
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())


def test_uploads_notify_the_queue_that_redrives_to_a_dead_letter_queue(aws: boto3.session.Session) -> None:
    s3, sqs = aws.client("s3"), aws.client("sqs")
    queue_url, dlq_url = resources.create_queues(sqs, "uploads", "uploads-dlq")
    resources.notify_queue_of_uploads(s3, sqs, BUCKET, queue_url, keys.UPLOADS_PREFIX)
    s3.put_object(Bucket=BUCKET, Key="originals/u/p", Body=b"x")  # outside the prefix: no event
    s3.put_object(Bucket=BUCKET, Key="uploads/u/p q", Body=b"x")
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]]
    created = [key for body in bodies for key in uploaded_object_keys(body, bucket=BUCKET)]
    assert created == ["uploads/u/p q"]
    redrive = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert "uploads-dlq" in redrive["RedrivePolicy"]
    assert dlq_url.endswith("uploads-dlq")
