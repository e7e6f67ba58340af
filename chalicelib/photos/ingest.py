"""The upload worker's use cases: turn an uploaded object into a READY photo (or a REJECTED one), and release
uploads that never arrived. Runs only in the worker Lambda; it is the only code that decodes images.

Nothing from the client is trusted here: the presigned POST's policy is not enforced by emulators (and a policy
is only as good as its author), so size and type are checked again against the object itself.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from chalicelib import keys
from chalicelib.clock import iso_utc
from chalicelib.imaging import ImageRejected, ProcessedImage
from chalicelib.photos.models import Photo, PhotoStatus
from chalicelib.photos.service import WRITE_ATTEMPTS, object_keys
from chalicelib.storage import StoredObject

log = logging.getLogger(__name__)

# The reconciler looks this far back for upload deadlines; PENDING items older than this are left to the TTL.
RECONCILE_LOOKBACK = timedelta(hours=48)


class Outcome(StrEnum):
    READY = "ready"
    REJECTED = "rejected"
    ALREADY_DONE = "already-done"  # a duplicate delivery: the photo left PENDING before
    NOT_ARRIVED = "not-arrived"  # the event came, but the object is not (yet, or any more) there
    ORPHAN_REMOVED = "orphan-removed"  # no photo for this object (deleted meanwhile): its objects are removed
    NOT_AN_UPLOAD = "not-an-upload"


class IngestRepository(Protocol):
    def get(self, owner_id: str, photo_id: str) -> Photo | None: ...
    def replace(self, photo: Photo, previous: Photo, *, release_usage: bool = False) -> bool: ...
    def delete(self, photo: Photo) -> bool: ...
    def pending_deadlines_before(self, hour: str, cutoff: str) -> list[tuple[str, str]]: ...


class IngestStorage(Protocol):
    def head(self, key: str) -> StoredObject | None: ...
    def read(self, key: str, *, max_bytes: int) -> bytes | None: ...
    def write(self, key: str, data: bytes, *, content_type: str) -> None: ...
    def copy(self, source_key: str, target_key: str, *, content_type: str) -> bool: ...
    def delete(self, *object_keys: str) -> None: ...


ProcessImage = Callable[[bytes, str], ProcessedImage]


class UploadProcessor:
    def __init__(
        self,
        repository: IngestRepository,
        storage: IngestStorage,
        *,
        process_image: ProcessImage,
        clock: Callable[[], datetime],
        upload_grace: timedelta,
    ) -> None:
        self._repository = repository
        self._storage = storage
        self._process_image = process_image
        self._clock = clock
        self._upload_grace = upload_grace

    def ingest(self, object_key: str) -> Outcome:
        """Idempotent: any number of deliveries, in any order, leave the photo as one delivery would."""
        parsed = keys.parse_upload_object(object_key)
        if parsed is None:
            return Outcome.NOT_AN_UPLOAD
        owner_id, photo_id = parsed
        processed: ProcessedImage | ImageRejected | None = None
        for _ in range(WRITE_ATTEMPTS):
            photo = self._repository.get(owner_id, photo_id)
            if photo is None:
                # Deleted while the upload was in flight (or never ours): leave nothing behind.
                self._storage.delete(*object_keys(owner_id, photo_id))
                return Outcome.ORPHAN_REMOVED
            if photo.status is not PhotoStatus.PENDING:
                self._storage.delete(object_key)  # a crash may have left it after the photo was settled
                return Outcome.ALREADY_DONE
            if processed is None:
                processed = self._inspect(photo, object_key)
                if processed is None:
                    return Outcome.NOT_ARRIVED
            settled = self._settle(photo, object_key, processed)
            if settled is Outcome.NOT_ARRIVED:
                # The upload went away while it was processed (the photo was deleted, or settled by another
                # delivery): look at the photo and the upload again from the start.
                processed = None
                continue
            if settled is not None:
                return settled
            # Someone wrote the photo meanwhile (an edit, a delete): look again, reusing the decoded result.
        raise RuntimeError(f"photo {photo_id} kept changing while it was processed; SQS will redeliver")

    def _inspect(self, photo: Photo, object_key: str) -> ProcessedImage | ImageRejected | None:
        stored = self._storage.head(object_key)
        if stored is None:
            return None
        if stored.size != photo.size_bytes:
            return ImageRejected(f"the uploaded file is {stored.size} bytes, but {photo.size_bytes} were declared")
        data = self._storage.read(object_key, max_bytes=photo.size_bytes)
        if data is None:
            return None
        try:
            return self._process_image(data, photo.content_type)
        except ImageRejected as rejected:
            return rejected

    def _settle(self, photo: Photo, object_key: str, processed: ProcessedImage | ImageRejected) -> Outcome | None:
        now = iso_utc(self._clock())
        if isinstance(processed, ImageRejected):
            rejected = dataclasses.replace(
                photo,
                status=PhotoStatus.REJECTED,
                rejection_reason=processed.reason,
                updated_at=now,
                revision=photo.revision + 1,
            )
            if not self._repository.replace(rejected, photo, release_usage=True):
                return None
            self._storage.delete(object_key)
            log.info("rejected %s/%s: %s", photo.owner_id, photo.photo_id, processed.reason)
            return Outcome.REJECTED

        owner, photo_id = photo.owner_id, photo.photo_id
        # Objects first, item last: a READY photo always has its original and both previews.
        self._storage.write(
            keys.preview_object(owner, photo_id, "large"), processed.large.data, content_type="image/jpeg"
        )
        self._storage.write(
            keys.preview_object(owner, photo_id, "small"), processed.small.data, content_type="image/jpeg"
        )
        if not self._storage.copy(
            object_key, keys.original_object(owner, photo_id), content_type=processed.content_type
        ):
            return Outcome.NOT_ARRIVED
        ready = dataclasses.replace(
            photo,
            status=PhotoStatus.READY,
            width=processed.width,
            height=processed.height,
            taken_at=processed.taken_at,
            updated_at=now,
            revision=photo.revision + 1,
        )
        if not self._repository.replace(ready, photo):
            return None
        self._storage.delete(object_key)
        return Outcome.READY

    def release_abandoned(self) -> dict[Outcome | str, int]:
        """Settle PENDING photos whose upload deadline (plus grace) has passed: process the ones whose object did
        arrive (its event was lost), delete the rest and release their quota."""
        now = self._clock()
        cutoff = now - self._upload_grace
        counts: dict[Outcome | str, int] = {}
        hour = (cutoff - RECONCILE_LOOKBACK).replace(minute=0, second=0, microsecond=0)
        while hour <= cutoff:
            for owner_id, photo_id in self._repository.pending_deadlines_before(iso_utc(hour)[:13], iso_utc(cutoff)):
                outcome = self._release_one(owner_id, photo_id)
                counts[outcome] = counts.get(outcome, 0) + 1
            hour += timedelta(hours=1)
        return counts

    def _release_one(self, owner_id: str, photo_id: str) -> Outcome | str:
        upload = keys.upload_object(owner_id, photo_id)
        if self._storage.head(upload) is not None:
            return self.ingest(upload)
        photo = self._repository.get(owner_id, photo_id)
        if photo is None or photo.status is not PhotoStatus.PENDING:
            return Outcome.ALREADY_DONE
        if self._repository.delete(photo):
            log.info("released abandoned upload %s/%s (%d bytes)", owner_id, photo_id, photo.size_bytes)
            return "abandoned-released"
        return "changed-meanwhile"
