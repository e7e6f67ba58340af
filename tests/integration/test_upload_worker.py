"""The upload worker on in-process moto: verify, preview, settle; idempotent under duplicates, races and deletes."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from chalice.test import Client
from PIL import Image

from chalicelib import deps, keys
from chalicelib.photos.ingest import Outcome, UploadProcessor
from chalicelib.photos.models import ListQuery, NewPhoto, Photo, PhotoChanges, PhotoStatus, PreviewFormat
from chalicelib.photos.repository import DynamoPhotoRepository
from chalicelib.users.models import Usage
from tests.integration.conftest import BUCKET, TABLE

OWNER = "0a000000-0000-4000-8000-00000000000a"


def jpeg(width: int = 640, height: int = 480) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@pytest.fixture
def s3(aws: boto3.session.Session) -> Any:
    return aws.client("s3")


@pytest.fixture
def worker(aws: boto3.session.Session) -> UploadProcessor:
    return deps.upload_processor()


def start_upload(data: bytes, *, content_type: str = "image/jpeg", tags: tuple[str, ...] = ()) -> Photo:
    photo, _ = deps.photo_service().start_upload(
        OWNER, NewPhoto(filename="cat.jpg", content_type=content_type, size_bytes=len(data), tags=tags)
    )
    return photo


def upload(s3: Any, photo: Photo, data: bytes) -> str:
    key = keys.upload_object(photo.owner_id, photo.photo_id)
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=photo.content_type)
    return key


def objects(s3: Any) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def stored(photo: Photo) -> Photo | None:
    return deps.photo_repository().get(photo.owner_id, photo.photo_id)


def usage() -> Usage:
    return deps.user_service()._repository.get_usage(OWNER)


def test_a_good_upload_becomes_ready_with_previews_and_its_original(worker: UploadProcessor, s3: Any) -> None:
    data = jpeg(2000, 1000)
    photo = start_upload(data, tags=("cats",))
    key = upload(s3, photo, data)

    assert worker.ingest(key) is Outcome.READY

    ready = stored(photo)
    assert ready is not None
    assert (ready.status, ready.width, ready.height) == (PhotoStatus.READY, 2000, 1000)
    assert ready.version == photo.version  # the worker never makes the owner's version stale
    assert ready.preview_format is PreviewFormat.WEBP
    assert objects(s3) == {
        keys.original_object(OWNER, photo.photo_id),
        keys.preview_object(OWNER, photo.photo_id, "large", PreviewFormat.WEBP),
        keys.preview_object(OWNER, photo.photo_id, "small", PreviewFormat.WEBP),
    }
    stored_large = s3.get_object(
        Bucket=BUCKET, Key=keys.preview_object(OWNER, photo.photo_id, "large", ready.preview_format)
    )
    assert stored_large["ContentType"] == "image/webp"
    large = Image.open(io.BytesIO(stored_large["Body"].read()))
    assert (large.format, large.size) == ("WEBP", (1024, 512))
    assert usage() == Usage(photos=1, bytes=len(data))
    # The tag copy follows the photo, so tag listings show it READY too.
    tagged, _ = deps.photo_repository().list_page(OWNER, limit=10, query=ListQuery(tag="cats"), start_key=None)
    assert [p.status for p in tagged] == [PhotoStatus.READY]


def test_a_ready_photo_has_download_urls(worker: UploadProcessor, s3: Any) -> None:
    data = jpeg()
    photo = start_upload(data)
    worker.ingest(upload(s3, photo, data))
    urls = deps.photo_service().download_urls(deps.photo_service().get(OWNER, photo.photo_id))
    assert urls.original is not None
    assert keys.original_object(OWNER, photo.photo_id) in urls.original
    assert "cat.jpg" in urls.original  # saved under the uploaded name
    assert urls.large is not None
    assert urls.large.split("?")[0].endswith("/large.webp")
    assert urls.small is not None
    assert "X-Amz-Signature" in urls.small


@pytest.mark.parametrize(
    ("payload", "declared", "reason"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "image/jpeg", "not"),
        (jpeg(1600, 1200)[: len(jpeg(1600, 1200)) // 2], "image/jpeg", "truncated"),
    ],
    ids=["svg-as-jpeg", "truncated-jpeg"],
)
def test_a_hostile_upload_is_rejected_removed_and_its_quota_released(
    worker: UploadProcessor, s3: Any, payload: bytes, declared: str, reason: str
) -> None:
    photo = start_upload(payload, content_type=declared)
    assert usage() == Usage(photos=1, bytes=len(payload), pending=1)
    assert worker.ingest(upload(s3, photo, payload)) is Outcome.REJECTED
    rejected = stored(photo)
    assert rejected is not None
    assert rejected.status is PhotoStatus.REJECTED
    assert rejected.rejection_reason
    assert reason in rejected.rejection_reason.lower()
    assert objects(s3) == set()
    assert usage() == Usage()
    # Deleting the rejected photo later must not release its quota a second time.
    deps.photo_service().delete(OWNER, photo.photo_id)
    assert usage() == Usage()


def test_a_file_whose_size_differs_from_the_declaration_is_rejected(worker: UploadProcessor, s3: Any) -> None:
    photo = start_upload(jpeg())
    key = upload(s3, photo, jpeg() + b"\x00" * 100)  # emulators do not enforce the policy's size range
    assert worker.ingest(key) is Outcome.REJECTED
    rejected = stored(photo)
    assert rejected is not None
    assert "declared" in (rejected.rejection_reason or "")
    assert usage() == Usage()


def test_duplicate_deliveries_change_nothing(worker: UploadProcessor, s3: Any) -> None:
    data = jpeg()
    photo = start_upload(data)
    key = upload(s3, photo, data)
    assert worker.ingest(key) is Outcome.READY
    settled = stored(photo)
    assert worker.ingest(key) is Outcome.ALREADY_DONE
    assert stored(photo) == settled
    assert usage() == Usage(photos=1, bytes=len(data))


def test_a_rejection_delivered_twice_releases_the_quota_once(worker: UploadProcessor, s3: Any) -> None:
    payload = b"definitely not an image"
    other = start_upload(jpeg())
    photo = start_upload(payload)
    key = upload(s3, photo, payload)
    assert worker.ingest(key) is Outcome.REJECTED
    upload(s3, photo, payload)  # e.g. the client retried its POST
    assert worker.ingest(key) is Outcome.ALREADY_DONE
    assert usage() == Usage(photos=1, bytes=other.size_bytes, pending=1)  # `other` is still uploading
    assert objects(s3) == set()


def test_an_event_before_the_object_is_readable_is_a_no_op(worker: UploadProcessor) -> None:
    photo = start_upload(jpeg())
    assert worker.ingest(keys.upload_object(OWNER, photo.photo_id)) is Outcome.NOT_ARRIVED
    assert stored(photo) == photo


def test_an_event_for_a_deleted_photo_removes_its_objects(worker: UploadProcessor, s3: Any) -> None:
    data = jpeg()
    photo = start_upload(data)
    key = upload(s3, photo, data)
    deps.photo_service().delete(OWNER, photo.photo_id)
    upload(s3, photo, data)  # the upload landed after the delete
    assert worker.ingest(key) is Outcome.ORPHAN_REMOVED
    assert objects(s3) == set()
    assert usage() == Usage()


def test_keys_outside_uploads_are_ignored(worker: UploadProcessor) -> None:
    assert worker.ingest(keys.original_object(OWNER, "01JD0000000000000000000000")) is Outcome.NOT_AN_UPLOAD


class EditsDuringProcessing(DynamoPhotoRepository):
    """Lets the owner's PATCH land between the worker's read and its write."""

    def __init__(self, real: DynamoPhotoRepository, edit: Any) -> None:
        self.__dict__.update(real.__dict__)
        self._edit = edit

    def replace(self, photo: Photo, previous: Photo, *, release_usage: bool = False) -> bool:
        if self._edit is not None:
            edit, self._edit = self._edit, None
            edit()
        return super().replace(photo, previous, release_usage=release_usage)


def test_an_edit_racing_the_worker_is_kept_and_the_photo_still_becomes_ready(s3: Any) -> None:
    data = jpeg()
    photo = start_upload(data, tags=("old",))
    key = upload(s3, photo, data)
    service = deps.photo_service()
    edit = lambda: service.update(  # noqa: E731
        OWNER, photo.photo_id, PhotoChanges(version=1, title="Named", tags=("new",), sent=frozenset({"title", "tags"}))
    )
    racing = UploadProcessor(
        EditsDuringProcessing(deps.photo_repository(), edit),
        deps.storage(),
        process_image=deps.upload_processor()._process_image,
        clock=lambda: datetime.now(UTC),
        upload_grace=timedelta(minutes=15),
    )
    assert racing.ingest(key) is Outcome.READY
    final = stored(photo)
    assert final is not None
    assert (final.status, final.title, final.tags, final.version) == (PhotoStatus.READY, "Named", ("new",), 2)
    old, _ = deps.photo_repository().list_page(OWNER, limit=10, query=ListQuery(tag="old"), start_key=None)
    assert old == []


def test_a_delete_racing_the_worker_leaves_no_objects(s3: Any) -> None:
    data = jpeg()
    photo = start_upload(data)
    key = upload(s3, photo, data)
    racing = UploadProcessor(
        EditsDuringProcessing(deps.photo_repository(), lambda: deps.photo_service().delete(OWNER, photo.photo_id)),
        deps.storage(),
        process_image=deps.upload_processor()._process_image,
        clock=lambda: datetime.now(UTC),
        upload_grace=timedelta(minutes=15),
    )
    assert racing.ingest(key) is Outcome.ORPHAN_REMOVED
    assert stored(photo) is None
    assert objects(s3) == set()
    assert usage() == Usage()


def processor_at(moment: datetime) -> UploadProcessor:
    real = deps.upload_processor()
    return UploadProcessor(
        deps.photo_repository(),
        deps.storage(),
        process_image=real._process_image,
        clock=lambda: moment,
        upload_grace=timedelta(minutes=15),
    )


def test_the_reconciler_releases_uploads_that_never_arrived_and_finishes_ones_whose_event_was_lost(s3: Any) -> None:
    never = start_upload(jpeg())
    arrived_data = jpeg(300, 200)
    arrived = start_upload(arrived_data)
    upload(s3, arrived, arrived_data)  # its S3 event was lost
    fresh = start_upload(jpeg())

    deadline = datetime.fromisoformat(never.upload_expires_at.replace("Z", "+00:00"))
    # Before the deadline plus grace nothing is touched.
    assert processor_at(deadline + timedelta(minutes=5)).release_abandoned() == {}
    counts = processor_at(deadline + timedelta(minutes=16)).release_abandoned()

    assert counts == {Outcome.ABANDONED_RELEASED: 2, Outcome.READY: 1}  # `fresh` is abandoned too by then
    assert stored(never) is None
    assert stored(fresh) is None
    settled = stored(arrived)
    assert settled is not None
    assert settled.status is PhotoStatus.READY
    assert usage() == Usage(photos=1, bytes=len(arrived_data))


@pytest.mark.suite("faults")
def test_an_upload_abandoned_a_month_ago_is_still_released_with_its_quota(s3: Any) -> None:
    """The reconciler once looked back 48 hours and left older PENDING photos to TTL, which deleted them without
    releasing their quota. Now no photo carries a TTL and the reconciler finds every stale upload, however old."""
    forgotten = start_upload(jpeg())
    assert usage() == Usage(photos=1, bytes=forgotten.size_bytes, pending=1)
    deadline = datetime.fromisoformat(forgotten.upload_expires_at.replace("Z", "+00:00"))

    counts = processor_at(deadline + timedelta(days=30)).release_abandoned()

    assert counts == {Outcome.ABANDONED_RELEASED: 1}
    assert stored(forgotten) is None
    assert usage() == Usage()


@pytest.mark.suite("faults")
def test_no_photo_item_carries_a_ttl_in_any_state(s3: Any, dynamodb: Any) -> None:
    pending = start_upload(jpeg())
    data = jpeg()
    ready = start_upload(data)
    deps.upload_processor().ingest(upload(s3, ready, data))
    rejected = start_upload(b"not an image")
    deps.upload_processor().ingest(upload(s3, rejected, b"not an image"))
    for photo in (pending, ready, rejected):
        item = dynamodb.get_item(TableName=TABLE, Key=keys.photo_key(OWNER, photo.photo_id))["Item"]
        assert "expires_at_epoch" not in item, photo.photo_id


class SecondPostDuringProcessing:
    """A second POST of other bytes of the same size lands on the upload key right after the worker read it (the
    presigned POST stays valid for its whole window)."""

    def __init__(self, storage: Any, s3: Any, other: bytes) -> None:
        self._storage, self._s3, self._other = storage, s3, other

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def read(self, key: str, *, max_bytes: int) -> bytes | None:
        data = self._storage.read(key, max_bytes=max_bytes)
        self._s3.put_object(Bucket=BUCKET, Key=key, Body=self._other, ContentType="image/jpeg")
        return data


@pytest.mark.suite("faults")
def test_the_stored_original_is_the_file_that_was_verified_not_a_later_post(s3: Any) -> None:
    verified = jpeg(640, 480)
    swapped = b"<html><script>alert(1)</script></html>".ljust(len(verified), b" ")
    assert len(swapped) == len(verified)
    photo = start_upload(verified)
    key = upload(s3, photo, verified)
    racing = UploadProcessor(
        deps.photo_repository(),
        SecondPostDuringProcessing(deps.storage(), s3, swapped),
        process_image=deps.upload_processor()._process_image,
        clock=lambda: datetime.now(UTC),
        upload_grace=timedelta(minutes=15),
    )

    assert racing.ingest(key) is Outcome.READY

    original = s3.get_object(Bucket=BUCKET, Key=keys.original_object(OWNER, photo.photo_id))
    assert original["Body"].read() == verified
    assert original["ContentType"] == "image/jpeg"


@pytest.mark.suite("faults")
def test_the_pending_counter_follows_every_way_an_upload_settles(s3: Any) -> None:
    data = jpeg()
    ready, rejected, deleted, abandoned = (start_upload(data) for _ in range(4))
    assert usage().pending == 4
    deps.upload_processor().ingest(upload(s3, ready, data))
    assert usage().pending == 3
    deps.upload_processor().ingest(upload(s3, rejected, b"x" * len(data)))
    assert usage().pending == 2
    deps.photo_service().delete(OWNER, deleted.photo_id)
    assert usage().pending == 1
    deadline = datetime.fromisoformat(abandoned.upload_expires_at.replace("Z", "+00:00"))
    processor_at(deadline + timedelta(hours=1)).release_abandoned()
    assert usage() == Usage(photos=1, bytes=len(data), pending=0)


def test_the_sqs_handler_processes_s3_events_and_skips_test_events(api: Client, s3: Any) -> None:
    data = jpeg()
    photo = start_upload(data)
    key = upload(s3, photo, data)
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET})
    created = json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Post",
                    "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": len(data)}},
                }
            ]
        }
    )
    for body in (test_event, created):
        api.lambda_.invoke("process_uploads", api.events.generate_sqs_event(message_bodies=[body], queue_name="q"))
    settled = stored(photo)
    assert settled is not None
    assert settled.status is PhotoStatus.READY
