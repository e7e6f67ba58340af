"""The upload worker's use cases: turn an uploaded object into a READY photo (or a REJECTED one), and release
uploads that never arrived. Runs only in the worker Lambda; it is the only code that decodes images.

Nothing from the client is trusted here: the presigned POST's policy is not enforced by emulators (and a policy
is only as good as its author), so size and type are checked again against the object itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from chalicelib import errors, keys, sweep
from chalicelib.clock import iso_utc
from chalicelib.imaging import ImageRejected, ProcessedImage
from chalicelib.photos.models import WRITE_ATTEMPTS, Photo, PhotoStatus, StoredObject

if TYPE_CHECKING:
    from chalicelib.photos.service import PhotoEvents

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    READY = "ready"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"  # rejected: the owner's library already holds these bytes
    ALREADY_DONE = "already-done"  # a duplicate delivery: the photo left PENDING before
    NOT_ARRIVED = "not-arrived"  # the event came, but the object is not (yet, or any more) there
    ORPHAN_REMOVED = "orphan-removed"  # no photo for this object (deleted meanwhile): its objects are removed
    NOT_AN_UPLOAD = "not-an-upload"
    # The reconciler's own outcomes.
    ABANDONED_RELEASED = "abandoned-released"  # the upload never arrived: the photo is gone, its quota released
    CHANGED_MEANWHILE = "changed-meanwhile"  # someone else wrote the photo first; the next run looks again
    FAILED = "failed"  # this item raised; the others still ran, and the next run tries it again
    LEFT_FOR_NEXT_RUN = "left-for-next-run"  # the run's time budget ran out first


class IngestRepository(Protocol):
    def get(self, owner_id: str, photo_id: str) -> Photo | None: ...
    def claim_holder(self, owner_id: str, digest: str) -> str | None: ...
    def replace(self, photo: Photo, previous: Photo, *, release_usage: bool = False) -> bool: ...
    def delete(self, photo: Photo) -> bool: ...
    def stale_pending(self, cutoff: str) -> list[tuple[str, str]]: ...


class IngestStorage(Protocol):
    def head(self, key: str) -> StoredObject | None: ...
    def read(self, key: str, *, max_bytes: int) -> bytes | None: ...
    def write(self, key: str, data: bytes, *, content_type: str) -> None: ...
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
        reconcile_budget: timedelta = timedelta(minutes=3),
        elapsed: Callable[[], float] = time.monotonic,
        events: PhotoEvents | None = None,
        sweep_threads: int = 1,
    ) -> None:
        self._repository = repository
        self._storage = storage
        self._process_image = process_image
        self._clock = clock
        self._upload_grace = upload_grace
        self._reconcile_budget = reconcile_budget.total_seconds()
        self._elapsed = elapsed
        self._events = events
        self._sweep_threads = sweep_threads

    def _settled(self, photo: Photo) -> None:
        """Tell the owner's open connections the photo settled (READY or REJECTED): once its write succeeded, and
        before the upload object is tidied away, so the client hears as soon as it can read the result."""
        if self._events is not None:
            self._events.photos(photo.owner_id, changed=(photo,))

    def ingest(self, object_key: str) -> Outcome:
        """Idempotent: any number of deliveries, in any order, leave the photo as one delivery would."""
        parsed = keys.parse_upload_object(object_key)
        if parsed is None:
            return Outcome.NOT_AN_UPLOAD
        owner_id, photo_id = parsed
        inspected: Inspected | None = None
        for _ in range(WRITE_ATTEMPTS):
            photo = self._repository.get(owner_id, photo_id)
            if photo is None:
                # Deleted while the upload was in flight (or never ours): leave nothing behind.
                self._storage.delete(*keys.photo_objects(owner_id, photo_id))
                return Outcome.ORPHAN_REMOVED
            if photo.status is not PhotoStatus.PENDING:
                # A crash may have left the upload after the photo was settled, and a copy rejected only at its last
                # step may have left the objects it wrote first: a REJECTED photo keeps none.
                if photo.status is PhotoStatus.REJECTED:
                    self._storage.delete(*keys.photo_objects(owner_id, photo_id))
                else:
                    self._storage.delete(object_key)
                return Outcome.ALREADY_DONE
            if inspected is None:
                inspected = self._inspect(photo, object_key)
                if inspected is None:
                    return Outcome.NOT_ARRIVED
            settled = self._settle(photo, object_key, inspected)
            if settled is not None:
                return settled
            # Someone wrote the photo meanwhile (an edit, a delete): look again, reusing the verified result.
        raise RuntimeError(f"photo {photo_id} kept changing while it was processed; SQS will redeliver")

    def _inspect(self, photo: Photo, object_key: str) -> Inspected | None:
        """The upload's bytes and the verdict on them; None if it is not (or no longer) there."""
        try:
            data = self._read_declared(photo, object_key)
        except ImageRejected as rejected:
            return Inspected(b"", rejected)
        if data is None:
            return None
        try:
            return Inspected(data, self._process_image(data, photo.content_type))
        except ImageRejected as rejected:
            return Inspected(b"", rejected)

    def _read_declared(self, photo: Photo, object_key: str) -> bytes | None:
        """The upload's bytes if it is exactly the declared size; a second POST may replace it between any two
        calls, so the size is checked before reading (never read more than declared) and on what was read."""
        declared = photo.size_bytes
        stored = self._storage.head(object_key)
        if stored is None:
            return None
        if stored.size != declared:
            raise ImageRejected(f"the uploaded file is {stored.size} bytes, but {declared} were declared")
        try:
            data = self._storage.read(object_key, max_bytes=declared)
        except errors.TooLarge as e:
            raise ImageRejected(f"the uploaded file is larger than the {declared} bytes declared") from e
        if data is not None and len(data) != declared:
            raise ImageRejected(f"the uploaded file is {len(data)} bytes, but {declared} were declared")
        return data

    def _settle(self, photo: Photo, object_key: str, inspected: Inspected) -> Outcome | None:
        now = iso_utc(self._clock())
        processed = inspected.result
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
            self._settled(rejected)
            self._storage.delete(object_key)
            log.info("rejected %s/%s: %s", photo.owner_id, photo.photo_id, processed.reason)
            return Outcome.REJECTED

        owner, photo_id = photo.owner_id, photo.photo_id
        # The hash of the bytes that were verified (never the client's word for it). A copy already in the library
        # is turned away before anything is written; one that settles at the same moment loses at the claim below.
        digest = hashlib.sha256(inspected.data).hexdigest()
        holder = self._repository.claim_holder(owner, digest)
        if holder is not None and holder != photo_id:
            return self._reject_duplicate(photo, object_key, holder)
        # Objects first, item last: a READY photo always has its original and both previews, in the format it
        # records (WebP for new photos; S3 and CloudFront serve each with the Content-Type written here).
        preview_format = processed.preview_format
        for size, preview in (("large", processed.large), ("small", processed.small)):
            self._storage.write(
                keys.preview_object(owner, photo_id, size, preview_format),
                preview.data,
                content_type=preview_format.content_type,
            )
        # The bytes that were verified, not a copy of the upload key: the presigned POST stays valid for its whole
        # window, so other bytes may sit there by now, and the original is served inline as the checked type.
        self._storage.write(keys.original_object(owner, photo_id), inspected.data, content_type=processed.content_type)
        ready = dataclasses.replace(
            photo,
            status=PhotoStatus.READY,
            width=processed.width,
            height=processed.height,
            taken_at=processed.taken_at,
            sha256=digest,
            preview_format=preview_format,
            updated_at=now,
            revision=photo.revision + 1,
        )
        try:
            if not self._repository.replace(ready, photo):
                return None
        except errors.DuplicatePhoto as duplicate:
            return self._reject_duplicate(photo, object_key, duplicate.photo_id)
        self._settled(ready)
        self._storage.delete(object_key)
        return Outcome.READY

    def _reject_duplicate(self, photo: Photo, object_key: str, holder: str) -> Outcome | None:
        """Settle the upload as REJECTED, naming the library photo it copies, and release its quota.

        What an earlier step (or delivery) wrote for it goes first, while the photo is still PENDING (which may have
        objects or not): a REJECTED photo never has any. The upload goes last, as for any rejection: until then a
        redelivery can read it and settle the photo.
        """
        owner, photo_id = photo.owner_id, photo.photo_id
        self._storage.delete(keys.original_object(owner, photo_id), *keys.preview_objects(owner, photo_id))
        rejected = dataclasses.replace(
            photo,
            status=PhotoStatus.REJECTED,
            rejection_reason=f"a copy of this photo is already in your library (photo {holder})",
            duplicate_of=holder,
            updated_at=iso_utc(self._clock()),
            revision=photo.revision + 1,
        )
        if not self._repository.replace(rejected, photo, release_usage=True):
            return None
        self._settled(rejected)
        self._storage.delete(object_key)
        log.info("rejected %s/%s as a copy of %s", owner, photo_id, holder)
        return Outcome.DUPLICATE

    def release_abandoned(self) -> dict[Outcome, int]:
        """Settle PENDING photos whose upload deadline (plus grace) has passed, however long ago: process the ones
        whose object did arrive (its event was lost), delete the rest and release their quota.

        Each item is settled on its own: one that fails is counted and logged, and the others still run. The run
        stops taking items once its time budget is spent; the next scheduled run carries on. Releases run on
        `sweep_threads` threads (chalicelib.sweep); the uploads that did arrive are processed after them, one at a
        time: decoding forks a guarded child (imaging.process_guarded), which must not happen while other threads
        may hold locks, and one decode at a time bounds the memory.
        """
        started = self._elapsed()
        cutoff = iso_utc(self._clock() - self._upload_grace)
        counts: dict[Outcome, int] = {}
        arrived: list[tuple[str, str]] = []
        lock = threading.Lock()

        def out_of_time() -> bool:
            return self._elapsed() - started >= self._reconcile_budget

        def settle(item: tuple[str, str], step: Callable[[str, str], Outcome | None]) -> None:
            """One item on its own: a failure is counted and logged, and the others still run."""
            owner_id, photo_id = item
            try:
                outcome = step(owner_id, photo_id)
            except Exception:
                log.exception("could not settle stale upload %s/%s; the next run tries again", owner_id, photo_id)
                outcome = Outcome.FAILED
            if outcome is not None:
                with lock:
                    counts[outcome] = counts.get(outcome, 0) + 1

        def release_or_defer(owner_id: str, photo_id: str) -> Outcome | None:
            if self._storage.head(keys.upload_object(owner_id, photo_id)) is not None:
                with lock:
                    arrived.append((owner_id, photo_id))
                return None  # settled below, once no other thread runs
            return self._release_missing(owner_id, photo_id)

        def process(owner_id: str, photo_id: str) -> Outcome:
            return self.ingest(keys.upload_object(owner_id, photo_id))

        stale = self._repository.stale_pending(cutoff)
        left = sweep.each_until(
            stale, lambda item: settle(item, release_or_defer), threads=self._sweep_threads, out_of_time=out_of_time
        )
        position = {item: n for n, item in enumerate(stale)}
        arrived.sort(key=position.__getitem__)  # the oldest first, as they were listed
        left += sweep.each_until(arrived, lambda item: settle(item, process), threads=1, out_of_time=out_of_time)
        if left:
            counts[Outcome.LEFT_FOR_NEXT_RUN] = left
            log.warning("reconciler budget spent: %d stale uploads left for the next run", left)
        return counts

    def _release_missing(self, owner_id: str, photo_id: str) -> Outcome:
        """An overdue upload whose object never arrived: delete the photo and release its quota."""
        photo = self._repository.get(owner_id, photo_id)
        if photo is None or photo.status is not PhotoStatus.PENDING:
            return Outcome.ALREADY_DONE
        if self._repository.delete(photo):
            log.info("released abandoned upload %s/%s (%d bytes)", owner_id, photo_id, photo.size_bytes)
            if self._events is not None:
                # A client still showing the upload as pending learns it is gone.
                self._events.photos(owner_id, deleted=(photo_id,))
            return Outcome.ABANDONED_RELEASED
        return Outcome.CHANGED_MEANWHILE


@dataclasses.dataclass(frozen=True)
class Inspected:
    """An upload as the worker read it: the bytes it checked (empty when rejected before or by the check) and the
    verdict on them."""

    data: bytes
    result: ProcessedImage | ImageRejected
