"""Photo library use cases: start an upload, list, read, edit and delete. No boto3, no chalice."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from chalicelib import errors, keys
from chalicelib.clock import iso_utc
from chalicelib.cursors import CursorCodec
from chalicelib.ids import is_ulid, new_ulid
from chalicelib.photos.models import (
    WRITE_ATTEMPTS,
    DownloadUrls,
    NewPhoto,
    Page,
    Photo,
    PhotoChanges,
    PhotoStatus,
    PresignedUpload,
)
from chalicelib.users.models import Quota


class PhotoRepository(Protocol):
    def get(self, owner_id: str, photo_id: str) -> Photo | None: ...
    def list_page(
        self, owner_id: str, *, limit: int, tag: str | None, start_key: dict[str, Any] | None
    ) -> tuple[list[Photo], dict[str, Any] | None]: ...
    def add_reserving_quota(self, photo: Photo, *, max_photos: int, max_bytes: int, max_pending: int) -> None: ...
    def replace(self, photo: Photo, previous: Photo, *, release_usage: bool = False) -> bool: ...
    def delete(self, photo: Photo) -> bool: ...


class PhotoStorage(Protocol):
    def presigned_upload(
        self, *, key: str, content_type: str, size_bytes: int, expires_in: int, now: datetime
    ) -> PresignedUpload: ...
    def download_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str: ...
    def delete(self, *object_keys: str) -> None: ...


class PhotoService:
    def __init__(
        self,
        repository: PhotoRepository,
        storage: PhotoStorage,
        *,
        clock: Callable[[], datetime],
        cursors: CursorCodec,
        quota: Quota,
        upload_url_seconds: int,
        download_url_seconds: int,
        new_id: Callable[[], str] = new_ulid,
    ) -> None:
        self._repository = repository
        self._storage = storage
        self._clock = clock
        self._cursors = cursors
        self._quota = quota
        self._upload_url_seconds = upload_url_seconds
        self._download_url_seconds = download_url_seconds
        self._new_id = new_id

    def start_upload(self, owner_id: str, new: NewPhoto) -> tuple[Photo, PresignedUpload]:
        """Reserve quota for a PENDING photo and hand back a presigned POST for exactly its upload key."""
        now = self._clock()
        stamp = iso_utc(now)
        photo = Photo(
            photo_id=self._new_id(),
            owner_id=owner_id,
            status=PhotoStatus.PENDING,
            filename=new.filename,
            content_type=new.content_type,
            size_bytes=new.size_bytes,
            created_at=stamp,
            updated_at=stamp,
            upload_expires_at=iso_utc(now + timedelta(seconds=self._upload_url_seconds)),
            title=new.title,
            description=new.description,
            tags=new.tags,
        )
        self._repository.add_reserving_quota(
            photo, max_photos=self._quota.photos, max_bytes=self._quota.bytes, max_pending=self._quota.pending
        )
        upload = self._storage.presigned_upload(
            key=keys.upload_object(owner_id, photo.photo_id),
            content_type=photo.content_type,
            size_bytes=photo.size_bytes,
            expires_in=self._upload_url_seconds,
            now=now,
        )
        return photo, upload

    def get(self, owner_id: str, photo_id: str) -> Photo:
        photo = self._repository.get(owner_id, photo_id) if is_ulid(photo_id) else None
        if photo is None:
            # Also what another user's photo looks like: its existence is not revealed.
            raise errors.NotFound("no such photo")
        return photo

    def list(self, owner_id: str, *, limit: int, cursor: str | None, tag: str | None) -> Page:
        scope = f"{owner_id}\x00{tag or ''}"
        start_key = self._cursors.decode(cursor, scope=scope) if cursor else None
        items, last_key = self._repository.list_page(owner_id, limit=limit, tag=tag, start_key=start_key)
        next_cursor = self._cursors.encode(last_key, scope=scope) if last_key else None
        return Page(items=items, next_cursor=next_cursor)

    def update(self, owner_id: str, photo_id: str, changes: PhotoChanges) -> Photo:
        for _ in range(WRITE_ATTEMPTS):
            current = self.get(owner_id, photo_id)
            if current.version != changes.version:
                raise errors.Conflict(
                    f"version {changes.version} is stale: the photo is at version {current.version}; "
                    "read it again and reapply your change"
                )
            edited = dataclasses.replace(
                current,
                title=changes.title if "title" in changes.sent else current.title,
                description=changes.description if "description" in changes.sent else current.description,
                tags=changes.tags if changes.tags is not None else current.tags,
                updated_at=iso_utc(self._clock()),
                version=current.version + 1,
                revision=current.revision + 1,
            )
            if self._repository.replace(edited, current):
                return edited
        raise errors.Unavailable("the photo is changing too fast to edit; retry")

    def delete(self, owner_id: str, photo_id: str) -> None:
        for _ in range(WRITE_ATTEMPTS):
            photo = self._repository.get(owner_id, photo_id) if is_ulid(photo_id) else None
            if photo is None:
                if is_ulid(photo_id):
                    # An earlier DELETE may have removed the item and then failed on S3 (its client got a 503 and
                    # retried): finish it, or the original and previews would outlive the photo for good. Only the
                    # caller's own keys are touched, so another user's photo id changes nothing of theirs.
                    self._storage.delete(*keys.photo_objects(owner_id, photo_id))
                raise errors.NotFound("no such photo")
            if self._repository.delete(photo):
                # The item goes first: objects left behind by a failure here are removed by the client's retry
                # (above), whereas an item without its objects would be a broken photo.
                self._storage.delete(*keys.photo_objects(photo.owner_id, photo.photo_id))
                return
        raise errors.Unavailable("the photo is changing too fast to delete; retry")

    def download_urls(self, photo: Photo) -> DownloadUrls:
        if photo.status is not PhotoStatus.READY:
            return DownloadUrls(original=None, large=None, small=None)
        expires = self._download_url_seconds
        owner, photo_id = photo.owner_id, photo.photo_id
        return DownloadUrls(
            original=self._storage.download_url(
                keys.original_object(owner, photo_id), expires_in=expires, filename=photo.filename
            ),
            large=self._storage.download_url(keys.preview_object(owner, photo_id, "large"), expires_in=expires),
            small=self._storage.download_url(keys.preview_object(owner, photo_id, "small"), expires_in=expires),
        )
