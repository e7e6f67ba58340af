"""Photo library use cases: start an upload, list, read, edit and delete. No boto3, no chalice."""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib import errors, keys, sweep
from chalicelib.clock import iso_utc
from chalicelib.cursors import CursorCodec
from chalicelib.ids import is_ulid, new_ulid
from chalicelib.photos.models import (
    TAGS_MAX,
    WRITE_ATTEMPTS,
    BatchAction,
    BatchResult,
    DownloadUrls,
    ListQuery,
    NewPhoto,
    Page,
    Photo,
    PhotoChanges,
    PhotoStatus,
    PresignedUpload,
)
from chalicelib.users.models import Quota

if TYPE_CHECKING:
    from chalicelib.media import MediaLinks


class PhotoRepository(Protocol):
    def get(self, owner_id: str, photo_id: str) -> Photo | None: ...
    def get_many(self, owner_id: str, photo_ids: Sequence[str]) -> dict[str, Photo]: ...
    def list_page(
        self, owner_id: str, *, limit: int, query: ListQuery, start_key: dict[str, Any] | None
    ) -> tuple[list[Photo], dict[str, Any] | None]: ...
    def timeline(self, owner_id: str) -> list[tuple[str, int]]: ...
    def trash_page(
        self, owner_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Photo], dict[str, Any] | None]: ...
    def trashed(self, owner_id: str) -> list[Photo]: ...
    def expired_trash(self, now: str) -> list[tuple[str, str]]: ...
    def claim_holder(self, owner_id: str, digest: str) -> str | None: ...
    def add_reserving_quota(self, photo: Photo, *, max_photos: int, max_bytes: int, max_pending: int) -> None: ...
    def replace(self, photo: Photo, previous: Photo, *, release_usage: bool = False) -> bool: ...
    def delete(self, photo: Photo) -> bool: ...
    def trash(self, photo: Photo, *, trashed_at: str, purge_at: str, purging: bool = False) -> Photo | None: ...
    def restore(self, photo: Photo, *, now: str) -> Photo | None: ...


class PhotoEvents(Protocol):
    """Who is told about a change once it is written (chalicelib/realtime): the owner's open connections, and the
    people of the albums a photo left or rejoined. Never raises."""

    def photos(
        self,
        owner_id: str,
        *,
        changed: Sequence[Photo] = (),
        deleted: Sequence[str] = (),
        albums: Iterable[str] = (),
    ) -> None: ...


@dataclasses.dataclass(frozen=True)
class Change:
    """What one or more writes did to an owner's photos, for `PhotoEvents`."""

    changed: tuple[Photo, ...] = ()
    deleted: tuple[str, ...] = ()
    albums: frozenset[str] = frozenset()

    def __add__(self, other: Change) -> Change:
        return Change(self.changed + other.changed, self.deleted + other.deleted, self.albums | other.albums)

    def __bool__(self) -> bool:
        return bool(self.changed or self.deleted or self.albums)


NO_CHANGE = Change()


def albums_left(before: Photo, after: Photo) -> frozenset[str]:
    """The albums a trash took the photo out of: what it added to the photo's `album_return`."""
    return frozenset(entry.split("#", 1)[0] for entry in after.album_return[len(before.album_return) :])


def albums_returning(photo: Photo) -> frozenset[str]:
    """The albums a restore may put the photo back into (those it still may join; the others change nothing)."""
    return frozenset(entry.split("#", 1)[0] for entry in photo.album_return)


class PhotoStorage(Protocol):
    def presigned_upload(
        self, *, key: str, content_type: str, size_bytes: int, expires_in: int, now: datetime
    ) -> PresignedUpload: ...
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
        media: MediaLinks,
        upload_url_seconds: int,
        trash_days: int = 30,
        new_id: Callable[[], str] | None = None,
        events: PhotoEvents | None = None,
        sweep_threads: int = 1,
    ) -> None:
        self._repository = repository
        self._storage = storage
        self._clock = clock
        self._cursors = cursors
        self._quota = quota
        self._upload_url_seconds = upload_url_seconds
        self._media = media
        self._trash_days = trash_days
        self._new_id = new_id
        self._events = events
        self._sweep_threads = sweep_threads

    def _publish(self, owner_id: str, change: Change) -> None:
        """Tell whoever listens what was written; only ever after the write."""
        if change and self._events is not None:
            self._events.photos(owner_id, changed=change.changed, deleted=change.deleted, albums=change.albums)

    def start_upload(self, owner_id: str, new: NewPhoto) -> tuple[Photo, PresignedUpload]:
        """Reserve quota for a PENDING photo and hand back a presigned POST for exactly its upload key."""
        if new.sha256 is not None:
            # A courtesy to the client, who learns before uploading; the worker checks the real bytes anyway.
            holder = self._repository.claim_holder(owner_id, new.sha256)
            if holder is not None:
                raise errors.DuplicatePhoto(holder)
        now = self._clock()
        stamp = iso_utc(now)
        photo = Photo(
            # The id carries the same moment as created_at, so a listing by upload date is a range of ids.
            photo_id=self._new_id() if self._new_id else new_ulid(int(now.timestamp() * 1000)),
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

    def _get_if_id(self, owner_id: str, photo_id: str) -> Photo | None:
        return self._repository.get(owner_id, photo_id) if is_ulid(photo_id) else None

    def get(self, owner_id: str, photo_id: str) -> Photo:
        photo = self._get_if_id(owner_id, photo_id)
        if photo is None:
            # Also what another user's photo looks like: its existence is not revealed.
            raise errors.NotFound("no such photo")
        return photo

    def list(self, owner_id: str, *, limit: int, cursor: str | None, query: ListQuery) -> Page:
        scope = f"{owner_id}\x00{query.scope}"
        start_key = self._cursors.decode(cursor, scope=scope) if cursor else None
        items, last_key = self._repository.list_page(owner_id, limit=limit, query=query, start_key=start_key)
        next_cursor = self._cursors.encode(last_key, scope=scope) if last_key else None
        return Page(items=items, next_cursor=next_cursor)

    def timeline(self, owner_id: str) -> builtins.list[tuple[str, int]]:
        return self._repository.timeline(owner_id)

    def trash(self, owner_id: str, *, limit: int, cursor: str | None) -> Page:
        scope = f"{owner_id}\x00trash"
        start_key = self._cursors.decode(cursor, scope=scope) if cursor else None
        items, last_key = self._repository.trash_page(owner_id, limit=limit, start_key=start_key)
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
            if current.trashed:
                raise errors.Conflict("the photo is in the trash: restore it to edit it")
            edited = dataclasses.replace(
                current,
                title=changes.title if "title" in changes.sent else current.title,
                description=changes.description if "description" in changes.sent else current.description,
                tags=changes.tags if changes.tags is not None else current.tags,
                favorite=changes.favorite if changes.favorite is not None else current.favorite,
                updated_at=iso_utc(self._clock()),
                version=current.version + 1,
                revision=current.revision + 1,
            )
            if self._repository.replace(edited, current):
                self._publish(owner_id, Change(changed=(edited,)))
                return edited
        raise errors.Unavailable("the photo is changing too fast to edit; retry")

    def delete(self, owner_id: str, photo_id: str, *, permanent: bool = False, read: Photo | None = None) -> None:
        """Move a READY photo to the trash; delete anything else (an upload not yet settled, a rejected one, or
        with `permanent` any photo) for good at once. Trashing a photo already in the trash changes nothing.
        `read` is the photo as the caller just read it (tried first; read again only if it changed)."""
        self._publish(owner_id, self._delete(owner_id, photo_id, permanent=permanent, read=read))

    def _delete(self, owner_id: str, photo_id: str, *, permanent: bool, read: Photo | None) -> Change:
        for attempt in range(WRITE_ATTEMPTS):
            photo = read if attempt == 0 and read is not None else self._get_if_id(owner_id, photo_id)
            if photo is None:
                if is_ulid(photo_id):
                    # An earlier DELETE may have removed the item and then failed on S3 (its client got a 503 and
                    # retried): finish it, or the original and previews would outlive the photo for good. Only the
                    # caller's own keys are touched, so another user's photo id changes nothing of theirs.
                    self._storage.delete(*keys.photo_objects(owner_id, photo_id))
                raise errors.NotFound("no such photo")
            if permanent or photo.status is not PhotoStatus.READY:
                purged = self._purge(photo)
                if purged is not None:
                    return purged
            elif photo.trashed:
                return NO_CHANGE
            else:
                trashed = self._trash(photo)
                if trashed is not None:
                    return Change(changed=(trashed,), albums=albums_left(photo, trashed))
        raise errors.Unavailable("the photo is changing too fast to delete; retry")

    def restore(self, owner_id: str, photo_id: str, *, read: Photo | None = None) -> Photo:
        """Take a photo out of the trash, back into its albums; a photo not in the trash is returned as it is."""
        restored, change = self._restore(owner_id, photo_id, read=read)
        self._publish(owner_id, change)
        return restored

    def _restore(self, owner_id: str, photo_id: str, *, read: Photo | None) -> tuple[Photo, Change]:
        for attempt in range(WRITE_ATTEMPTS):
            photo = read if attempt == 0 and read is not None else self.get(owner_id, photo_id)
            if photo.purging:
                raise errors.Conflict("the photo is being deleted for good")
            if not photo.trashed and not photo.album_return:
                return photo, NO_CHANGE
            restored = self._repository.restore(photo, now=iso_utc(self._clock()))
            if restored is not None:
                return restored, Change(changed=(restored,), albums=albums_returning(photo))
        raise errors.Unavailable("the photo is changing too fast to restore; retry")

    def empty_trash(self, owner_id: str, *, out_of_time: Callable[[], bool]) -> int:
        """Purge everything in the caller's trash until `out_of_time`; how many are left (0: it is empty)."""
        trashed = self._repository.trashed(owner_id)
        purged = NO_CHANGE
        try:
            for done, photo in enumerate(trashed):
                if out_of_time():
                    return len(trashed) - done
                # The index's copy serves the first attempt; a photo changed since fails its write and is read again.
                purged += self._purge_if_trashed(owner_id, photo.photo_id, before=None, read=photo) or NO_CHANGE
            return 0
        finally:
            self._publish(owner_id, purged)  # what was purged, even if a later photo failed

    def purge_expired(self, *, out_of_time: Callable[[], bool]) -> dict[str, int]:
        """The scheduled job: purge every photo whose time in the trash is up, until `out_of_time`, on
        `sweep_threads` threads (chalicelib.sweep); one push per owner at the end, of everything purged."""
        now = iso_utc(self._clock())
        counts = {"purged": 0, "failed": 0, "left": 0}
        expired = self._repository.expired_trash(now)
        purged: dict[str, Change] = {}
        lock = threading.Lock()

        def purge(item: tuple[str, str]) -> None:
            owner_id, photo_id = item
            try:
                change = self._purge_if_trashed(owner_id, photo_id, before=now)
            except errors.DomainError:
                with lock:
                    counts["failed"] += 1
                return
            if change is not None:
                with lock:
                    counts["purged"] += 1
                    purged[owner_id] = purged.get(owner_id, NO_CHANGE) + change

        try:
            counts["left"] = sweep.each_until(expired, purge, threads=self._sweep_threads, out_of_time=out_of_time)
        finally:
            for owner_id, change in purged.items():
                self._publish(owner_id, change)
        return counts

    def _purge_if_trashed(
        self, owner_id: str, photo_id: str, *, before: str | None, read: Photo | None = None
    ) -> Change | None:
        """Purge the photo if it is (still) in the trash, and its purge time is before `before` if given; what that
        did, or None if there was nothing to purge."""
        for attempt in range(WRITE_ATTEMPTS):
            photo = read if attempt == 0 and read is not None else self._repository.get(owner_id, photo_id)
            if photo is None or not photo.trashed:
                return None  # purged or restored meanwhile
            if before is not None and (photo.purge_at or "") >= before:
                return None
            purged = self._purge(photo)
            if purged is not None:
                return purged
        raise errors.Unavailable("the photo is changing too fast to purge; retry")

    def batch(
        self, owner_id: str, action: BatchAction, photo_ids: Sequence[str], tags: tuple[str, ...] = ()
    ) -> builtins.list[BatchResult]:
        """Apply one action to each photo, each on its own: a result per photo, in the order sent. Every action
        leaves a photo as one call would however often it is repeated, so retrying a batch is safe."""
        wanted = [photo_id for photo_id in photo_ids if is_ulid(photo_id)]
        found = self._repository.get_many(owner_id, wanted) if wanted else {}
        results: builtins.list[BatchResult] = []
        done = NO_CHANGE
        try:
            for photo_id in photo_ids:
                photo = found.get(photo_id)
                if photo is None:
                    results.append(BatchResult(photo_id, "not_found", "you have no such photo"))
                    continue
                done += self._apply_one(photo, action, tags, results)
        finally:
            self._publish(owner_id, done)  # one push for the whole batch, of what it did
        return results

    def _apply_one(
        self, photo: Photo, action: BatchAction, tags: tuple[str, ...], results: builtins.list[BatchResult]
    ) -> Change:
        """Apply the action to one photo of a batch, appending its result; what it did."""
        photo_id = photo.photo_id
        change = NO_CHANGE
        try:
            change = self._apply(photo, action, tags)
        except errors.NotFound:
            results.append(BatchResult(photo_id, "not_found", "you have no such photo"))
        except errors.Invalid as e:
            results.append(BatchResult(photo_id, "invalid", str(e)))
        except (errors.Conflict, errors.Unavailable) as e:
            results.append(BatchResult(photo_id, "conflict", str(e)))
        else:
            results.append(BatchResult(photo_id, "done"))
        return change

    def _apply(self, photo: Photo, action: BatchAction, tags: tuple[str, ...]) -> Change:
        owner_id, photo_id = photo.owner_id, photo.photo_id
        # The batch's one read of every photo serves each first attempt.
        if action is BatchAction.TRASH:
            return self._delete(owner_id, photo_id, permanent=False, read=photo)
        if action is BatchAction.DELETE:
            return self._delete(owner_id, photo_id, permanent=True, read=photo)
        if action is BatchAction.RESTORE:
            return self._restore(owner_id, photo_id, read=photo)[1]
        return self._edit(photo, action, tags)

    def _edit(self, photo: Photo, action: BatchAction, tags: tuple[str, ...]) -> Change:
        """Favourite, unfavourite, add or remove tags: an owner's edit (a new version) if it changes anything."""
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                photo = self.get(photo.owner_id, photo.photo_id)
            if photo.trashed:
                raise errors.Conflict("the photo is in the trash: restore it to edit it")
            favorite, new_tags = photo.favorite, photo.tags
            if action is BatchAction.FAVORITE or action is BatchAction.UNFAVORITE:
                favorite = action is BatchAction.FAVORITE
            elif action is BatchAction.ADD_TAGS:
                new_tags = photo.tags + tuple(tag for tag in tags if tag not in photo.tags)
                if len(new_tags) > TAGS_MAX:
                    raise errors.Invalid("tags", f"the photo would have {len(new_tags)} tags; at most {TAGS_MAX}")
            else:
                new_tags = tuple(tag for tag in photo.tags if tag not in tags)
            if (favorite, new_tags) == (photo.favorite, photo.tags):
                return NO_CHANGE
            edited = dataclasses.replace(
                photo,
                favorite=favorite,
                tags=new_tags,
                updated_at=iso_utc(self._clock()),
                version=photo.version + 1,
                revision=photo.revision + 1,
            )
            if self._repository.replace(edited, photo):
                return Change(changed=(edited,))
        raise errors.Unavailable("the photo is changing too fast to edit; retry")

    def _trash(self, photo: Photo) -> Photo | None:
        now = self._clock()
        return self._repository.trash(
            photo, trashed_at=iso_utc(now), purge_at=iso_utc(now + timedelta(days=self._trash_days))
        )

    def _purge(self, photo: Photo) -> Change | None:
        """Delete the photo for good; what that did, or None if it changed meanwhile (read again).

        A verified photo is first marked in the trash as being purged (so a restore cannot race the purge), then its
        objects go, then its item: a crash anywhere leaves a photo in the trash whose purge is due, which the retry
        or the scheduled job finishes, and never objects without their photo. An upload that never became a photo
        (pending or rejected) has no verified objects to keep: its item goes first, then whatever is in the bucket
        (a retried DELETE, or the worker finding no photo, removes anything a failure left there).
        """
        gone = Change(deleted=(photo.photo_id,))
        if photo.status is not PhotoStatus.READY:
            if not self._repository.delete(photo):
                return None
            self._storage.delete(*keys.photo_objects(photo.owner_id, photo.photo_id))
            return gone
        if not photo.purging:
            now = iso_utc(self._clock())
            marked = self._repository.trash(photo, trashed_at=photo.trashed_at or now, purge_at=now, purging=True)
            if marked is None:
                return None
            # A photo deleted for good straight from the library leaves its albums here.
            gone = Change(deleted=gone.deleted, albums=albums_left(photo, marked))
            photo = marked
        self._storage.delete(*keys.photo_objects(photo.owner_id, photo.photo_id))
        return gone if self._repository.delete(photo) else None

    def download_urls(self, photo: Photo) -> DownloadUrls:
        if photo.status is not PhotoStatus.READY:
            return DownloadUrls(original=None, large=None, small=None)
        owner = photo.owner_id
        return self._media.urls(
            owner,
            photo.photo_id,
            preview_format=photo.preview_format,
            viewer=owner,
            original=True,
            filename=photo.filename,
        )
