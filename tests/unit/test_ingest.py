"""The upload worker's state machine and the reconciler, on the in-memory photo repository and bucket.

No image library here: `process_image` is a stand-in that accepts, rejects or crashes according to the bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import errors, keys
from chalicelib.clock import iso_utc
from chalicelib.ids import new_ulid
from chalicelib.imaging import ImageRejected, Preview, ProcessedImage
from chalicelib.photos.ingest import Outcome, UploadProcessor
from chalicelib.photos.models import WRITE_ATTEMPTS, Photo, PhotoStatus, PreviewFormat, StoredObject
from chalicelib.users.models import Usage
from tests.support.fakes import InMemoryPhotoRepository

OWNER = "a11ce000-0000-4000-8000-000000000001"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)
ROOMY = {"max_photos": 1000, "max_bytes": 10**9, "max_pending": 1000}
GOOD = b"GOOD image bytes"


class Bucket:
    """The worker's side of S3, with hooks for what happens between its calls."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str | None]] = {}
        # Run after the call answered: what happens between this call and the worker's next one.
        self.after_head: Callable[[str], None] | None = None
        self.after_read: Callable[[str], None] | None = None

    def put(self, key: str, data: bytes, content_type: str | None = "image/png") -> None:
        self.objects[key] = (data, content_type)

    def head(self, key: str) -> StoredObject | None:
        found = None
        if key in self.objects:
            data, content_type = self.objects[key]
            found = StoredObject(size=len(data), content_type=content_type)
        if self.after_head is not None:
            self.after_head(key)
        return found

    def read(self, key: str, *, max_bytes: int) -> bytes | None:
        if key not in self.objects:
            return None
        data = self.objects[key][0]
        if len(data) > max_bytes:  # as S3Storage.read: it never reads more than asked into memory
            raise errors.TooLarge(f"object is {len(data)} bytes, over {max_bytes}")
        if self.after_read is not None:
            self.after_read(key)
        return data

    def write(self, key: str, data: bytes, *, content_type: str) -> None:
        self.objects[key] = (data, content_type)

    def delete(self, *object_keys: str) -> None:
        for key in object_keys:
            self.objects.pop(key, None)


class Imaging:
    """A stand-in for imaging.process: bytes starting with BAD are rejected, BOOM crashes, anything else passes."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.preview_format = PreviewFormat.WEBP  # JPEG: a Pillow without WebP

    def __call__(self, data: bytes, declared_type: str) -> ProcessedImage:
        self.seen.append(data)
        if data.startswith(b"BAD"):
            raise ImageRejected("the file is not an image")
        if data.startswith(b"BOOM"):
            raise RuntimeError("the decoder crashed")
        return ProcessedImage(
            content_type=declared_type,
            width=640,
            height=480,
            taken_at="2026-08-01T12:00:00.000Z",
            large=Preview(b"large:" + data[:4], 64, 48),
            small=Preview(b"small:" + data[:4], 16, 12),
            frames=1,
            preview_format=self.preview_format,
        )


class Elapsed:
    """The reconciler's stopwatch: seconds move only when a test says so."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture
def repository() -> InMemoryPhotoRepository:
    return InMemoryPhotoRepository()


@pytest.fixture
def bucket() -> Bucket:
    return Bucket()


@pytest.fixture
def imaging() -> Imaging:
    return Imaging()


@pytest.fixture
def elapsed() -> Elapsed:
    return Elapsed()


@pytest.fixture
def worker(repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging, elapsed: Elapsed) -> UploadProcessor:
    return UploadProcessor(
        repository,
        bucket,
        process_image=imaging,
        clock=lambda: NOW,
        upload_grace=GRACE,
        reconcile_budget=timedelta(seconds=3),
        elapsed=elapsed,
    )


def photo_id(n: int) -> str:
    return new_ulid(now_ms=1_795_000_000_000 + n * 1000, randomness=n.to_bytes(10, "big"))


def start(
    repository: InMemoryPhotoRepository,
    n: int = 1,
    *,
    size: int = len(GOOD),
    expires: datetime = NOW + timedelta(minutes=10),
    tags: tuple[str, ...] = (),
) -> Photo:
    stamp = iso_utc(NOW - timedelta(hours=1))
    photo = Photo(
        photo_id=photo_id(n),
        owner_id=OWNER,
        status=PhotoStatus.PENDING,
        filename="cat.png",
        content_type="image/png",
        size_bytes=size,
        created_at=stamp,
        updated_at=stamp,
        upload_expires_at=iso_utc(expires),
        tags=tags,
    )
    repository.add_reserving_quota(photo, **ROOMY)
    return photo


def upload_key(photo: Photo) -> str:
    return keys.upload_object(photo.owner_id, photo.photo_id)


def uploaded(bucket: Bucket, photo: Photo, data: bytes = GOOD) -> str:
    bucket.put(upload_key(photo), data)
    return upload_key(photo)


def ready_objects(photo: Photo, preview_format: PreviewFormat = PreviewFormat.WEBP) -> set[str]:
    return {
        keys.original_object(photo.owner_id, photo.photo_id),
        keys.preview_object(photo.owner_id, photo.photo_id, "large", preview_format),
        keys.preview_object(photo.owner_id, photo.photo_id, "small", preview_format),
    }


def stored(repository: InMemoryPhotoRepository, photo: Photo) -> Photo | None:
    return repository.get(photo.owner_id, photo.photo_id)


# --- one delivery ----------------------------------------------------------------------------------------------


def test_a_good_upload_becomes_ready_with_previews_and_the_verified_original(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    photo = start(repository, tags=("cats",))

    assert worker.ingest(uploaded(bucket, photo)) is Outcome.READY

    ready = stored(repository, photo)
    assert ready == dataclasses.replace(
        photo,
        status=PhotoStatus.READY,
        width=640,
        height=480,
        taken_at="2026-08-01T12:00:00.000Z",
        sha256=hashlib.sha256(GOOD).hexdigest(),  # of the verified bytes
        preview_format=PreviewFormat.WEBP,  # recorded with READY, in the same write
        updated_at=iso_utc(NOW),
        revision=photo.revision + 1,  # the owner's version is untouched: the worker never makes it stale
    )
    assert imaging.seen == [GOOD]
    assert bucket.objects == {
        keys.original_object(OWNER, photo.photo_id): (GOOD, "image/png"),
        f"previews/{OWNER}/{photo.photo_id}/large.webp": (b"large:GOOD", "image/webp"),
        f"previews/{OWNER}/{photo.photo_id}/small.webp": (b"small:GOOD", "image/webp"),
    }
    assert repository.usage(OWNER) == Usage(photos=1, bytes=len(GOOD), pending=0)


def test_previews_made_as_jpeg_are_written_and_recorded_as_jpeg(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    imaging.preview_format = PreviewFormat.JPEG  # a Pillow without WebP
    photo = start(repository)

    assert worker.ingest(uploaded(bucket, photo)) is Outcome.READY

    ready = stored(repository, photo)
    assert ready is not None
    assert ready.preview_format is PreviewFormat.JPEG
    assert set(bucket.objects) == ready_objects(photo, PreviewFormat.JPEG)
    assert bucket.objects[f"previews/{OWNER}/{photo.photo_id}/large.jpg"] == (b"large:GOOD", "image/jpeg")


@pytest.mark.suite("faults")
def test_the_original_is_the_bytes_that_were_checked_even_if_the_upload_is_replaced_after_the_read(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    photo = start(repository)
    key = uploaded(bucket, photo)
    swapped = b"<svg onload=x>!!"  # a second POST with the still-valid form, of the same size
    assert len(swapped) == len(GOOD)
    bucket.after_read = lambda read_key: bucket.put(read_key, swapped, "image/svg+xml")

    assert worker.ingest(key) is Outcome.READY

    assert imaging.seen == [GOOD]
    assert bucket.objects[keys.original_object(OWNER, photo.photo_id)] == (GOOD, "image/png")


def test_an_upload_the_check_rejects_is_rejected_removed_and_its_quota_released(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket
) -> None:
    bad = b"BAD: an svg, say"
    photo = start(repository, size=len(bad))

    assert worker.ingest(uploaded(bucket, photo, bad)) is Outcome.REJECTED

    rejected = stored(repository, photo)
    assert rejected is not None
    assert (rejected.status, rejected.rejection_reason) == (PhotoStatus.REJECTED, "the file is not an image")
    assert (rejected.revision, rejected.version, rejected.updated_at) == (2, 1, iso_utc(NOW))
    assert bucket.objects == {}
    assert repository.usage(OWNER) == Usage()


def test_a_file_of_another_size_than_declared_is_rejected_without_being_decoded(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    photo = start(repository, size=len(GOOD))

    assert worker.ingest(uploaded(bucket, photo, GOOD + b"padding")) is Outcome.REJECTED

    rejected = stored(repository, photo)
    assert rejected is not None
    assert rejected.status is PhotoStatus.REJECTED
    assert "declared" in (rejected.rejection_reason or "")
    assert imaging.seen == []
    assert bucket.objects == {}
    assert repository.usage(OWNER) == Usage()


@pytest.mark.suite("faults")
def test_a_smaller_file_swapped_in_between_head_and_read_is_rejected(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    photo = start(repository)
    key = uploaded(bucket, photo)
    bucket.after_head = lambda head_key: bucket.put(head_key, b"GOOD but short")

    assert worker.ingest(key) is Outcome.REJECTED

    assert "declared" in (getattr(stored(repository, photo), "rejection_reason", "") or "")
    assert imaging.seen == []
    assert repository.usage(OWNER) == Usage()


@pytest.mark.suite("faults")
def test_a_larger_file_swapped_in_between_head_and_read_is_rejected_without_being_read(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    """The storage refuses to read more than was declared; the worker rejects the upload at once rather than fail
    the delivery (which the reconciler would count as a failure until SQS gave up)."""
    photo = start(repository)
    key = uploaded(bucket, photo)
    bigger = GOOD + b" and then some"
    bucket.after_head = lambda _: bucket.put(key, bigger) if bucket.objects[key][0] == GOOD else None

    assert worker.ingest(key) is Outcome.REJECTED
    rejected = stored(repository, photo)
    assert rejected is not None
    assert "larger than" in (rejected.rejection_reason or "")
    assert imaging.seen == []
    assert repository.usage(OWNER) == Usage()


def test_an_event_before_the_object_is_there_changes_nothing(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    photo = start(repository)

    assert worker.ingest(upload_key(photo)) is Outcome.NOT_ARRIVED

    assert stored(repository, photo) == photo
    assert repository.usage(OWNER) == Usage(photos=1, bytes=len(GOOD), pending=1)
    assert (bucket.objects, imaging.seen) == ({}, [])


def test_an_object_gone_between_head_and_read_has_not_arrived(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket
) -> None:
    photo = start(repository)
    key = uploaded(bucket, photo)
    bucket.after_head = bucket.delete

    assert worker.ingest(key) is Outcome.NOT_ARRIVED
    assert stored(repository, photo) == photo


@pytest.mark.parametrize("key", ["originals/a/b", "uploads/a", "uploads/a/b/c", "uploads//b", "previews/a/b/large.jpg"])
def test_keys_that_are_not_uploads_are_ignored(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, key: str
) -> None:
    bucket.put(key, GOOD)
    assert worker.ingest(key) is Outcome.NOT_AN_UPLOAD
    assert key in bucket.objects


# --- duplicates, deletes and races -----------------------------------------------------------------------------


def test_duplicate_deliveries_change_nothing_and_remove_a_leftover_upload(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    photo = start(repository)
    key = uploaded(bucket, photo)
    assert worker.ingest(key) is Outcome.READY
    settled, objects, usage = stored(repository, photo), dict(bucket.objects), repository.usage(OWNER)

    assert worker.ingest(key) is Outcome.ALREADY_DONE
    uploaded(bucket, photo, b"BAD second post!")  # a crash may have left it, or a second POST
    assert worker.ingest(key) is Outcome.ALREADY_DONE

    assert (stored(repository, photo), bucket.objects, repository.usage(OWNER)) == (settled, objects, usage)
    assert imaging.seen == [GOOD]


def test_a_rejection_delivered_twice_releases_the_quota_once(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket
) -> None:
    start(repository, 2, size=1000)  # another photo's usage stays
    bad = b"BAD!"
    photo = start(repository, size=len(bad))
    key = uploaded(bucket, photo, bad)
    assert worker.ingest(key) is Outcome.REJECTED
    uploaded(bucket, photo, bad)
    assert worker.ingest(key) is Outcome.ALREADY_DONE
    assert repository.usage(OWNER) == Usage(photos=1, bytes=1000, pending=1)


def test_an_event_for_a_photo_that_is_gone_removes_its_objects(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket
) -> None:
    photo = start(repository)
    assert repository.delete(photo)
    # Previews of both formats: one an older worker wrote, one this one did.
    for key in (upload_key(photo), *ready_objects(photo), *ready_objects(photo, PreviewFormat.JPEG)):
        bucket.put(key, GOOD)

    assert worker.ingest(upload_key(photo)) is Outcome.ORPHAN_REMOVED

    assert bucket.objects == {}
    assert repository.usage(OWNER) == Usage()


def test_a_photo_deleted_while_it_is_processed_leaves_no_objects_and_releases_once(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    photo = start(repository)
    key = uploaded(bucket, photo)

    def owner_deletes_it(_: str) -> None:
        current = stored(repository, photo)
        assert current is not None
        assert repository.delete(current)

    bucket.after_read = owner_deletes_it

    assert worker.ingest(key) is Outcome.ORPHAN_REMOVED

    assert stored(repository, photo) is None
    assert bucket.objects == {}  # the previews and original it wrote first are gone too
    assert repository.usage(OWNER) == Usage()
    assert imaging.seen == [GOOD]


def test_an_edit_between_the_read_and_the_write_is_kept_and_the_upload_is_checked_once(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    photo = start(repository)
    repository.race(times=1, title="edited meanwhile", version=2)

    assert worker.ingest(uploaded(bucket, photo)) is Outcome.READY

    ready = stored(repository, photo)
    assert ready is not None
    assert (ready.status, ready.title, ready.version, ready.width) == (PhotoStatus.READY, "edited meanwhile", 2, 640)
    assert repository.writes["replace"] == 2
    assert imaging.seen == [GOOD]
    assert bucket.objects.keys() == ready_objects(photo)
    assert repository.usage(OWNER) == Usage(photos=1, bytes=len(GOOD), pending=0)


def test_a_rejection_that_races_an_edit_retries_and_releases_the_quota_once(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    bad = b"BAD!"
    photo = start(repository, size=len(bad))
    repository.race(times=1, title="edited meanwhile")

    assert worker.ingest(uploaded(bucket, photo, bad)) is Outcome.REJECTED

    rejected = stored(repository, photo)
    assert rejected is not None
    assert (rejected.status, rejected.title) == (PhotoStatus.REJECTED, "edited meanwhile")
    assert imaging.seen == [bad]
    assert repository.usage(OWNER) == Usage()


def test_a_photo_that_keeps_changing_raises_so_the_queue_redelivers(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, imaging: Imaging
) -> None:
    photo = start(repository)
    key = uploaded(bucket, photo)
    repository.race(times=None)

    with pytest.raises(RuntimeError, match="kept changing"):
        worker.ingest(key)

    assert repository.writes["replace"] == WRITE_ATTEMPTS
    assert imaging.seen == [GOOD]
    current = stored(repository, photo)
    assert current is not None
    assert current.status is PhotoStatus.PENDING
    assert key in bucket.objects  # kept for the redelivery
    assert repository.usage(OWNER) == Usage(photos=1, bytes=len(GOOD), pending=1)

    repository.before_write = None
    assert worker.ingest(key) is Outcome.READY


def test_an_unavailable_repository_fails_the_delivery_and_keeps_the_upload(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket
) -> None:
    photo = start(repository)
    key = uploaded(bucket, photo)
    repository.fail("replace")

    with pytest.raises(errors.Unavailable):
        worker.ingest(key)

    assert stored(repository, photo) == photo
    assert key in bucket.objects
    assert worker.ingest(key) is Outcome.READY


# --- the reconciler --------------------------------------------------------------------------------------------


def test_the_reconciler_releases_uploads_that_never_arrived_and_ingests_ones_whose_event_was_lost(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket
) -> None:
    never = start(repository, 1, size=30, expires=NOW - timedelta(days=30))
    lost_event = start(repository, 2, expires=NOW - timedelta(hours=1))
    uploaded(bucket, lost_event)
    in_grace = start(repository, 3, size=7, expires=NOW - GRACE)  # exactly at the cutoff: not past it yet
    current = start(repository, 4, size=9, expires=NOW + timedelta(minutes=5))

    assert worker.release_abandoned() == {Outcome.ABANDONED_RELEASED: 1, Outcome.READY: 1}

    assert stored(repository, never) is None
    assert getattr(stored(repository, lost_event), "status", None) is PhotoStatus.READY
    assert stored(repository, in_grace) == in_grace
    assert stored(repository, current) == current
    assert repository.usage(OWNER) == Usage(photos=3, bytes=len(GOOD) + 7 + 9, pending=2)
    assert worker.release_abandoned() == {}


def test_an_arrived_upload_of_the_wrong_size_is_rejected_by_the_reconciler(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket
) -> None:
    photo = start(repository, expires=NOW - timedelta(days=1))
    uploaded(bucket, photo, GOOD + b"!")
    assert worker.release_abandoned() == {Outcome.REJECTED: 1}
    assert repository.usage(OWNER) == Usage()


@pytest.mark.suite("faults")
def test_an_item_that_raises_is_counted_failed_while_the_others_settle(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket
) -> None:
    crashing = start(repository, 1, size=len(b"BOOM!"), expires=NOW - timedelta(days=3))
    uploaded(bucket, crashing, b"BOOM!")
    unreachable = start(repository, 2, expires=NOW - timedelta(days=2))
    repository.fail("delete")  # the first release fails; the next one goes through
    abandoned = start(repository, 3, expires=NOW - timedelta(days=1))

    assert worker.release_abandoned() == {
        Outcome.FAILED: 2,
        Outcome.ABANDONED_RELEASED: 1,
    }
    assert stored(repository, abandoned) is None
    assert stored(repository, unreachable) == unreachable
    assert stored(repository, crashing) == crashing

    # The next run tries both again: the transient failure has passed; the crashing file still crashes.
    assert worker.release_abandoned() == {Outcome.FAILED: 1, Outcome.ABANDONED_RELEASED: 1}
    assert stored(repository, unreachable) is None
    assert repository.usage(OWNER) == Usage(photos=1, bytes=len(b"BOOM!"), pending=1)


@pytest.mark.suite("faults")
def test_a_spent_time_budget_leaves_the_rest_for_the_next_run_which_finishes_them(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket, elapsed: Elapsed
) -> None:
    photos = [start(repository, n, expires=NOW - timedelta(days=10 - n)) for n in range(1, 6)]

    def one_second_per_item(_: str) -> None:
        elapsed.seconds += 1

    bucket.after_head = one_second_per_item  # the budget is 3 seconds

    assert worker.release_abandoned() == {Outcome.ABANDONED_RELEASED: 3, Outcome.LEFT_FOR_NEXT_RUN: 2}
    # Earliest deadline first: the oldest went, the newest are left.
    assert [stored(repository, p) is None for p in photos] == [True, True, True, False, False]

    assert worker.release_abandoned() == {Outcome.ABANDONED_RELEASED: 2}
    assert repository.photos == {}
    assert repository.usage(OWNER) == Usage()


def test_an_abandoned_upload_changed_meanwhile_is_left_for_the_next_run(
    worker: UploadProcessor, repository: InMemoryPhotoRepository
) -> None:
    photo = start(repository, expires=NOW - timedelta(days=1))
    repository.race(times=1, title="edited meanwhile")

    assert worker.release_abandoned() == {Outcome.CHANGED_MEANWHILE: 1}
    assert getattr(stored(repository, photo), "title", None) == "edited meanwhile"

    assert worker.release_abandoned() == {Outcome.ABANDONED_RELEASED: 1}
    assert repository.usage(OWNER) == Usage()


def test_an_abandoned_upload_settled_meanwhile_is_already_done(
    worker: UploadProcessor, repository: InMemoryPhotoRepository, bucket: Bucket
) -> None:
    settled, deleted = start(repository, 1, expires=NOW - timedelta(days=2)), start(repository, 2, expires=NOW)

    def settle_them(_: str) -> None:
        # Between the reconciler's query and its look at each item: one settles, the other is deleted.
        for photo in (settled, deleted):
            current = stored(repository, photo)
            if current is not None and current.status is PhotoStatus.PENDING:
                if photo is settled:
                    ready = dataclasses.replace(current, status=PhotoStatus.READY, revision=current.revision + 1)
                    assert repository.replace(ready, current)
                else:
                    assert repository.delete(current)

    worker_later = UploadProcessor(
        repository,
        bucket,
        process_image=Imaging(),
        clock=lambda: NOW + timedelta(hours=1),
        upload_grace=GRACE,
    )
    bucket.after_head = settle_them

    assert worker_later.release_abandoned() == {Outcome.ALREADY_DONE: 2}
    assert repository.usage(OWNER) == Usage(photos=1, bytes=len(GOOD), pending=0)


def test_on_several_threads_every_stale_upload_is_settled_and_arrived_ones_are_decoded_on_the_callers_thread(
    repository: InMemoryPhotoRepository, bucket: Bucket, elapsed: Elapsed
) -> None:
    """Releases run on the sweep's threads; an upload whose object did arrive is decoded after them, on the
    run's own thread: decoding forks a guarded child, which must not happen while other threads may hold locks."""
    decoded_on: list[str] = []
    imaging = Imaging()

    def process_image(data: bytes, declared_type: str) -> ProcessedImage:
        decoded_on.append(threading.current_thread().name)
        return imaging(data, declared_type)

    worker = UploadProcessor(
        repository,
        bucket,
        process_image=process_image,
        clock=lambda: NOW,
        upload_grace=GRACE,
        elapsed=elapsed,
        sweep_threads=4,
    )
    abandoned = [start(repository, n, expires=NOW - timedelta(hours=n)) for n in range(1, 13)]
    arrived = [start(repository, n, expires=NOW - timedelta(hours=n)) for n in range(20, 23)]
    for n, photo in enumerate(arrived):
        uploaded(bucket, photo, GOOD[:-1] + bytes([n]))  # bytes of its own: not a copy of another

    assert worker.release_abandoned() == {Outcome.ABANDONED_RELEASED: 12, Outcome.READY: 3}
    assert all(stored(repository, photo) is None for photo in abandoned)
    assert all(stored(repository, photo).status is PhotoStatus.READY for photo in arrived)  # type: ignore[union-attr]
    assert decoded_on == [threading.current_thread().name] * 3
    assert repository.usage(OWNER).pending == 0
