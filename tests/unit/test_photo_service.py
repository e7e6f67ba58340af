"""PhotoService on the in-memory photo repository: uploads, reads, listings, edits and deletes, with their races."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import errors, keys
from chalicelib.clock import iso_utc
from chalicelib.cursors import CursorCodec
from chalicelib.ids import new_ulid
from chalicelib.media import S3Media
from chalicelib.photos.models import (
    WRITE_ATTEMPTS,
    DownloadUrls,
    ListQuery,
    NewPhoto,
    Photo,
    PhotoChanges,
    PhotoStatus,
    PresignedUpload,
    PreviewFormat,
)
from chalicelib.photos.service import PhotoService
from chalicelib.users.models import Quota, Usage
from tests.support.fakes import InMemoryPhotoRepository, InMemoryUserRepository

OWNER = "a11ce000-0000-4000-8000-000000000001"
OTHER = "b0b00000-0000-4000-8000-000000000002"
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
QUOTA = Quota(photos=5, bytes=1000, pending=3)
UPLOAD_SECONDS = 900


class RecordingStorage:
    """The service's side of the bucket: what it presigned, linked and deleted, in order."""

    def __init__(self, on_delete: Any = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.on_delete = on_delete

    def presigned_upload(
        self, *, key: str, content_type: str, size_bytes: int, expires_in: int, now: datetime
    ) -> PresignedUpload:
        self.calls.append(("presign", (key, content_type, size_bytes, expires_in, now)))
        return PresignedUpload(
            url="https://bucket.example", fields={"key": key}, expires_at=iso_utc(now + timedelta(seconds=expires_in))
        )

    def download_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        return f"https://bucket.example/{key}?expires={expires_in}&filename={filename}"

    def delete(self, *object_keys: str) -> None:
        if self.on_delete is not None:
            self.on_delete(object_keys)
        self.calls.append(("delete", object_keys))

    @property
    def deleted(self) -> list[tuple[str, ...]]:
        return [args for name, args in self.calls if name == "delete"]


class Clock:
    """Moves one second on every reading, so each write has its own time."""

    def __init__(self) -> None:
        self.ticks = itertools.count()

    def __call__(self) -> datetime:
        return START + timedelta(seconds=next(self.ticks))


@pytest.fixture
def users() -> InMemoryUserRepository:
    return InMemoryUserRepository()


@pytest.fixture
def repository(users: InMemoryUserRepository) -> InMemoryPhotoRepository:
    return InMemoryPhotoRepository(users)


@pytest.fixture
def storage() -> RecordingStorage:
    return RecordingStorage()


def make_service(repository: InMemoryPhotoRepository, storage: RecordingStorage) -> PhotoService:
    made = itertools.count(1)
    return PhotoService(
        repository,
        storage,
        clock=Clock(),
        cursors=CursorCodec(b"0123456789abcdef0123456789abcdef"),
        quota=QUOTA,
        # Without a CDN the owner's URLs are S3 presigned ones of this lifetime (chalicelib/media.py).
        media=S3Media(storage, owner_seconds=300, shared_seconds=60),
        upload_url_seconds=UPLOAD_SECONDS,
        # Ids made in order, a millisecond apart: the listing order is the upload order, reversed.
        new_id=lambda: new_ulid(now_ms=1_795_000_000_000 + next(made), randomness=bytes(10)),
    )


@pytest.fixture
def service(repository: InMemoryPhotoRepository, storage: RecordingStorage) -> PhotoService:
    return make_service(repository, storage)


def upload(service: PhotoService, owner: str = OWNER, *, size: int = 100, **fields: Any) -> Photo:
    photo, _ = service.start_upload(
        owner, NewPhoto(filename="cat.jpg", content_type="image/jpeg", size_bytes=size, **fields)
    )
    return photo


def settle(repository: InMemoryPhotoRepository, photo: Photo, status: PhotoStatus = PhotoStatus.READY) -> Photo:
    """What the worker does to a photo: a new revision, never a new version."""
    current = repository.get(photo.owner_id, photo.photo_id)
    assert current is not None
    ready = dataclasses.replace(current, status=status, revision=current.revision + 1)
    assert repository.replace(ready, current, release_usage=status is PhotoStatus.REJECTED)
    return ready


# --- starting an upload ----------------------------------------------------------------------------------------


def test_start_upload_reserves_quota_and_presigns_exactly_the_upload_key(
    service: PhotoService, repository: InMemoryPhotoRepository, storage: RecordingStorage
) -> None:
    photo, presigned = service.start_upload(
        OWNER, NewPhoto("cat.jpg", "image/png", 123, title="Cat", description="d", tags=("cats",))
    )

    assert photo.status is PhotoStatus.PENDING
    assert (photo.owner_id, photo.filename, photo.content_type, photo.size_bytes) == (
        OWNER,
        "cat.jpg",
        "image/png",
        123,
    )
    assert (photo.title, photo.description, photo.tags) == ("Cat", "d", ("cats",))
    assert (photo.version, photo.revision) == (1, 1)
    assert photo.created_at == photo.updated_at == iso_utc(START)
    assert photo.upload_expires_at == iso_utc(START + timedelta(seconds=UPLOAD_SECONDS))
    assert repository.get(OWNER, photo.photo_id) == photo
    assert repository.usage(OWNER) == Usage(photos=1, bytes=123, pending=1)
    assert storage.calls == [
        ("presign", (keys.upload_object(OWNER, photo.photo_id), "image/png", 123, UPLOAD_SECONDS, START))
    ]
    assert presigned.fields == {"key": keys.upload_object(OWNER, photo.photo_id)}
    assert presigned.expires_at == photo.upload_expires_at


def test_usage_reserved_by_an_upload_is_what_the_user_repository_reports(
    service: PhotoService, users: InMemoryUserRepository
) -> None:
    upload(service, size=40)
    assert users.get_usage(OWNER) == Usage(photos=1, bytes=40, pending=1)


@pytest.mark.parametrize(
    ("sizes", "error"),
    [
        ([1001], errors.QuotaExceeded),  # larger than the whole quota
        ([600, 401], errors.QuotaExceeded),  # bytes
        ([100, 100, 100, 100], errors.TooManyPending),  # pending uploads (quota: 3)
    ],
)
def test_an_upload_over_quota_is_refused_before_anything_is_presigned(
    service: PhotoService,
    repository: InMemoryPhotoRepository,
    storage: RecordingStorage,
    sizes: list[int],
    error: type[Exception],
) -> None:
    for size in sizes[:-1]:
        upload(service, size=size)
    before = (repository.usage(OWNER), dict(repository.photos), len(storage.calls))
    with pytest.raises(error):
        upload(service, size=sizes[-1])
    assert (repository.usage(OWNER), dict(repository.photos), len(storage.calls)) == before


def test_the_photo_count_quota_counts_settled_photos(
    service: PhotoService, repository: InMemoryPhotoRepository
) -> None:
    for _ in range(QUOTA.photos):
        settle(repository, upload(service, size=1))
    with pytest.raises(errors.QuotaExceeded) as raised:
        upload(service, size=1)
    assert type(raised.value) is errors.QuotaExceeded


def test_an_unavailable_repository_presigns_nothing(
    service: PhotoService, repository: InMemoryPhotoRepository, storage: RecordingStorage
) -> None:
    repository.fail("add_reserving_quota")
    with pytest.raises(errors.Unavailable):
        upload(service)
    assert storage.calls == []
    assert repository.usage(OWNER) == Usage()


# --- reading ---------------------------------------------------------------------------------------------------


def test_get_returns_the_owners_photo(service: PhotoService) -> None:
    photo = upload(service)
    assert service.get(OWNER, photo.photo_id) == photo


def test_another_users_photo_is_not_found(service: PhotoService) -> None:
    photo = upload(service)
    with pytest.raises(errors.NotFound):
        service.get(OTHER, photo.photo_id)


@pytest.mark.parametrize(
    "photo_id", ["", "nope", "01jd0000000000000000000000", "81JD0000000000000000000000", "x" * 500]
)
def test_an_id_that_is_not_a_ulid_is_not_found_without_a_lookup(
    service: PhotoService, repository: InMemoryPhotoRepository, photo_id: str
) -> None:
    repository.fail("get", AssertionError("looked up an impossible id"), times=None)
    with pytest.raises(errors.NotFound):
        service.get(OWNER, photo_id)


def test_an_absent_ulid_is_not_found(service: PhotoService) -> None:
    with pytest.raises(errors.NotFound):
        service.get(OWNER, new_ulid())


# --- listing ---------------------------------------------------------------------------------------------------


def follow(service: PhotoService, *, limit: int, tag: str | None = None, owner: str = OWNER) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    for _ in range(100):
        page = service.list(owner, limit=limit, cursor=cursor, query=ListQuery(tag=tag))
        pages.append([p.photo_id for p in page.items])
        if page.next_cursor is None:
            return pages
        assert isinstance(page.next_cursor, str)
        cursor = page.next_cursor
    raise AssertionError(f"still paging after {len(pages)} pages")


def test_listing_pages_newest_first_through_opaque_cursors(
    service: PhotoService, repository: InMemoryPhotoRepository
) -> None:
    ids = [settle(repository, upload(service, size=1, tags=("cats",) if n % 2 else ())).photo_id for n in range(5)]
    newest_first = list(reversed(ids))
    assert follow(service, limit=2) == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    assert follow(service, limit=5) == [newest_first]
    assert follow(service, limit=1, tag="cats") == [[ids[3]], [ids[1]]]
    assert follow(service, limit=2, tag="dogs") == [[]]


def test_a_cursor_is_refused_by_another_owner_or_another_tag(service: PhotoService) -> None:
    for _ in range(3):
        upload(service, tags=("cats",))
        upload(service, OTHER, tags=("cats",))
    untagged = service.list(OWNER, limit=1, cursor=None, query=ListQuery(tag=None)).next_cursor
    tagged = service.list(OWNER, limit=1, cursor=None, query=ListQuery(tag="cats")).next_cursor
    assert untagged is not None
    assert tagged is not None
    for owner, cursor, tag in [
        (OTHER, untagged, None),
        (OWNER, untagged, "cats"),
        (OWNER, tagged, None),
        (OWNER, tagged, "dogs"),
        (OWNER, untagged[:-2] + "AA", None),
        (OWNER, "not-a-cursor", None),
    ]:
        with pytest.raises(errors.Invalid):
            service.list(owner, limit=1, cursor=cursor, query=ListQuery(tag=tag))


# --- editing ---------------------------------------------------------------------------------------------------


def test_update_changes_what_was_sent_and_moves_version_revision_and_time(
    service: PhotoService, repository: InMemoryPhotoRepository
) -> None:
    photo = upload(service, title="old", description="keep me", tags=("cats",))
    edited = service.update(
        OWNER, photo.photo_id, PhotoChanges(version=1, title="new", tags=("dogs",), sent=frozenset({"title", "tags"}))
    )
    assert (edited.title, edited.description, edited.tags) == ("new", "keep me", ("dogs",))
    assert (edited.version, edited.revision) == (2, 2)
    assert edited.updated_at > photo.updated_at
    assert repository.get(OWNER, photo.photo_id) == edited
    assert [p.photo_id for p in service.list(OWNER, limit=5, cursor=None, query=ListQuery(tag="dogs")).items] == [
        photo.photo_id
    ]


def test_update_clears_a_field_sent_as_none(service: PhotoService) -> None:
    photo = upload(service, title="old", description="old")
    edited = service.update(OWNER, photo.photo_id, PhotoChanges(version=1, title=None, sent=frozenset({"title"})))
    assert (edited.title, edited.description) == (None, "old")


def test_a_stale_version_is_a_conflict_and_changes_nothing(
    service: PhotoService, repository: InMemoryPhotoRepository
) -> None:
    photo = upload(service)
    first = service.update(OWNER, photo.photo_id, PhotoChanges(version=1, title="a", sent=frozenset({"title"})))
    with pytest.raises(errors.Conflict, match="stale"):
        service.update(OWNER, photo.photo_id, PhotoChanges(version=1, title="b", sent=frozenset({"title"})))
    assert repository.get(OWNER, photo.photo_id) == first


def test_update_of_a_missing_or_foreign_photo_is_not_found(service: PhotoService) -> None:
    photo = upload(service)
    for owner, photo_id in [(OTHER, photo.photo_id), (OWNER, new_ulid()), (OWNER, "nope")]:
        with pytest.raises(errors.NotFound):
            service.update(owner, photo_id, PhotoChanges(version=1, title="x", sent=frozenset({"title"})))


def test_an_edit_that_loses_a_race_to_the_worker_retries_and_keeps_the_workers_write(
    service: PhotoService, repository: InMemoryPhotoRepository
) -> None:
    photo = upload(service)
    # Between the edit's read and its write, the worker settles the photo: a new revision, the same version.
    repository.race(times=1, status=PhotoStatus.READY, width=640)

    edited = service.update(OWNER, photo.photo_id, PhotoChanges(version=1, title="t", sent=frozenset({"title"})))

    assert repository.writes["replace"] == 2
    assert (edited.status, edited.width, edited.title, edited.version) == (PhotoStatus.READY, 640, "t", 2)
    assert repository.get(OWNER, photo.photo_id) == edited


def test_an_edit_that_loses_a_race_to_another_edit_is_a_conflict(
    service: PhotoService, repository: InMemoryPhotoRepository
) -> None:
    photo = upload(service)
    repository.race(times=1, title="theirs", version=2)
    with pytest.raises(errors.Conflict):
        service.update(OWNER, photo.photo_id, PhotoChanges(version=1, title="mine", sent=frozenset({"title"})))
    stored = repository.get(OWNER, photo.photo_id)
    assert stored is not None
    assert stored.title == "theirs"


def test_an_edit_that_always_loses_gives_up_with_unavailable_after_write_attempts(
    service: PhotoService, repository: InMemoryPhotoRepository
) -> None:
    photo = upload(service)
    repository.race(times=None)
    with pytest.raises(errors.Unavailable):
        service.update(OWNER, photo.photo_id, PhotoChanges(version=1, title="t", sent=frozenset({"title"})))
    assert repository.writes["replace"] == WRITE_ATTEMPTS
    stored = repository.get(OWNER, photo.photo_id)
    assert stored is not None
    assert (stored.title, stored.version) == (None, 1)


def test_an_unavailable_repository_fails_the_edit_with_unavailable(
    service: PhotoService, repository: InMemoryPhotoRepository
) -> None:
    photo = upload(service)
    repository.fail("replace")
    with pytest.raises(errors.Unavailable):
        service.update(OWNER, photo.photo_id, PhotoChanges(version=1, title="t", sent=frozenset({"title"})))
    assert repository.get(OWNER, photo.photo_id) == photo


# --- deleting --------------------------------------------------------------------------------------------------


def test_delete_moves_a_ready_photo_to_the_trash_keeping_its_objects_and_its_quota(
    repository: InMemoryPhotoRepository,
) -> None:
    storage = RecordingStorage()
    service = make_service(repository, storage)
    photo = upload(service, size=70)
    settle(repository, photo)

    service.delete(OWNER, photo.photo_id)

    trashed = repository.get(OWNER, photo.photo_id)
    assert trashed is not None
    assert trashed.trashed_at is not None
    assert trashed.purge_at is not None
    assert trashed.purge_at > trashed.trashed_at
    assert storage.deleted == []
    assert repository.usage(OWNER) == Usage(photos=1, bytes=70, trash_photos=1, trash_bytes=70)
    service.delete(OWNER, photo.photo_id)  # again: already there, nothing changes
    assert repository.get(OWNER, photo.photo_id) == trashed


def test_a_permanent_delete_marks_the_photo_then_removes_every_object_then_the_item_and_releases_quota(
    repository: InMemoryPhotoRepository,
) -> None:
    marked_at_delete: list[bool] = []

    def objects_deleted(_: object) -> None:
        stored = repository.get(OWNER, photo.photo_id)
        marked_at_delete.append(stored is not None and stored.purging)

    storage = RecordingStorage(on_delete=objects_deleted)
    service = make_service(repository, storage)
    photo = upload(service, size=70)
    settle(repository, photo)

    service.delete(OWNER, photo.photo_id, permanent=True)

    assert repository.get(OWNER, photo.photo_id) is None
    assert storage.deleted == [keys.photo_objects(OWNER, photo.photo_id)]
    # The objects went while the photo was marked as being purged (a restore is refused), and the item after them.
    assert marked_at_delete == [True]
    assert repository.usage(OWNER) == Usage()


def test_deleting_a_pending_upload_frees_its_pending_slot(
    service: PhotoService, repository: InMemoryPhotoRepository
) -> None:
    photos = [upload(service) for _ in range(QUOTA.pending)]
    service.delete(OWNER, photos[0].photo_id)
    assert repository.usage(OWNER) == Usage(photos=2, bytes=200, pending=2)
    upload(service)


def test_a_delete_of_a_missing_id_cleans_the_callers_own_objects_then_is_not_found(
    service: PhotoService, repository: InMemoryPhotoRepository, storage: RecordingStorage
) -> None:
    theirs = upload(service, OTHER)
    missing = new_ulid()
    with pytest.raises(errors.NotFound):
        service.delete(OWNER, missing)
    # Another user's photo id touches only the caller's own keys: their photo and objects are left alone.
    with pytest.raises(errors.NotFound):
        service.delete(OWNER, theirs.photo_id)
    assert storage.deleted == [keys.photo_objects(OWNER, missing), keys.photo_objects(OWNER, theirs.photo_id)]
    assert repository.get(OTHER, theirs.photo_id) == theirs
    assert repository.usage(OTHER) == Usage(photos=1, bytes=100, pending=1)


def test_a_delete_retried_after_the_item_went_finishes_removing_the_objects(
    repository: InMemoryPhotoRepository,
) -> None:
    def s3_is_busy(object_keys: tuple[str, ...]) -> None:
        raise errors.Unavailable("S3 is busy")

    failing = RecordingStorage(on_delete=s3_is_busy)
    photo = upload(make_service(repository, failing))
    with pytest.raises(errors.Unavailable):
        make_service(repository, failing).delete(OWNER, photo.photo_id)
    assert repository.get(OWNER, photo.photo_id) is None

    storage = RecordingStorage()
    with pytest.raises(errors.NotFound):
        make_service(repository, storage).delete(OWNER, photo.photo_id)
    assert storage.deleted == [keys.photo_objects(OWNER, photo.photo_id)]
    assert repository.usage(OWNER) == Usage()


def test_a_delete_of_an_id_that_is_not_a_ulid_touches_nothing(
    service: PhotoService, repository: InMemoryPhotoRepository, storage: RecordingStorage
) -> None:
    repository.fail("get", AssertionError("looked up an impossible id"), times=None)
    with pytest.raises(errors.NotFound):
        service.delete(OWNER, "../../etc")
    assert storage.calls == []


def test_a_delete_that_loses_a_race_retries_with_the_new_revision(
    service: PhotoService, repository: InMemoryPhotoRepository, storage: RecordingStorage
) -> None:
    photo = upload(service, size=60)
    repository.race(times=1, title="edited meanwhile")
    service.delete(OWNER, photo.photo_id)
    assert repository.writes["delete"] == 2
    assert repository.get(OWNER, photo.photo_id) is None
    assert storage.deleted == [keys.photo_objects(OWNER, photo.photo_id)]
    assert repository.usage(OWNER) == Usage()


def test_a_delete_that_always_loses_gives_up_with_unavailable_and_keeps_the_objects(
    service: PhotoService, repository: InMemoryPhotoRepository, storage: RecordingStorage
) -> None:
    photo = upload(service)
    repository.race(times=None)
    with pytest.raises(errors.Unavailable):
        service.delete(OWNER, photo.photo_id)
    assert repository.writes["delete"] == WRITE_ATTEMPTS
    assert repository.get(OWNER, photo.photo_id) is not None
    assert storage.deleted == []
    assert repository.usage(OWNER) == Usage(photos=1, bytes=100, pending=1)


def test_an_unavailable_repository_fails_the_delete_before_any_object_goes(
    service: PhotoService, repository: InMemoryPhotoRepository, storage: RecordingStorage
) -> None:
    photo = upload(service)
    repository.fail("delete")
    with pytest.raises(errors.Unavailable):
        service.delete(OWNER, photo.photo_id)
    assert storage.deleted == []
    assert repository.get(OWNER, photo.photo_id) == photo


# --- download links --------------------------------------------------------------------------------------------


def test_only_a_ready_photo_has_download_urls(service: PhotoService, repository: InMemoryPhotoRepository) -> None:
    photo = upload(service)
    assert service.download_urls(photo) == DownloadUrls(original=None, large=None, small=None)
    urls = service.download_urls(settle(repository, photo))
    assert (
        urls.original
        == f"https://bucket.example/{keys.original_object(OWNER, photo.photo_id)}?expires=300&filename=cat.jpg"
    )
    # Settled without a preview format, as every photo before WebP previews: its JPEG previews.
    assert urls.large == f"https://bucket.example/previews/{OWNER}/{photo.photo_id}/large.jpg?expires=300&filename=None"
    assert urls.small == f"https://bucket.example/previews/{OWNER}/{photo.photo_id}/small.jpg?expires=300&filename=None"
    webp = dataclasses.replace(settle(repository, upload(service)), preview_format=PreviewFormat.WEBP)
    assert service.download_urls(webp).large == (
        f"https://bucket.example/previews/{OWNER}/{webp.photo_id}/large.webp?expires=300&filename=None"
    )
    rejected = settle(repository, upload(service), PhotoStatus.REJECTED)
    assert service.download_urls(rejected) == DownloadUrls(original=None, large=None, small=None)
