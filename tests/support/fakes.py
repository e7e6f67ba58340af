"""In-memory stand-ins for the adapters, held to the same contract tests as the real ones."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib import errors, keys
from chalicelib.albums.directory import DirectoryUser
from chalicelib.photos.models import ListQuery, Photo, PhotoStatus
from chalicelib.users.models import Profile, ProfileChanges, Usage


class InMemoryUserRepository:
    def __init__(self) -> None:
        self.profiles: dict[str, Profile] = {}
        self.usage: dict[str, Usage] = {}

    def add(self, profile: Profile) -> None:
        if profile.user_id in self.profiles:
            raise errors.Conflict("a profile already exists for this user")
        self.profiles[profile.user_id] = profile

    def get(self, user_id: str) -> Profile | None:
        return self.profiles.get(user_id)

    def get_usage(self, user_id: str) -> Usage:
        return self.usage.get(user_id, Usage())

    def get_with_usage(self, user_id: str) -> tuple[Profile | None, Usage]:
        return self.get(user_id), self.get_usage(user_id)

    def update(self, user_id: str, changes: ProfileChanges, updated_at: str) -> Profile | None:
        profile = self.profiles.get(user_id)
        if profile is None:
            return None
        profile = dataclasses.replace(profile, updated_at=updated_at)
        if changes.display_name is not None:
            profile = dataclasses.replace(profile, display_name=changes.display_name)
        if changes.bio_set:
            profile = dataclasses.replace(profile, bio=changes.bio)
        self.profiles[user_id] = profile
        return profile


class InMemoryPhotoRepository:
    """Photos and their tag listings in a dict, with the DynamoDB adapter's promises: optimistic writes on
    `revision`, quota reserved and released in the same step as the photo is written, start keys that survive a
    JSON round trip (shaped like DynamoDB's, and refused with `Invalid` when they belong to another listing).

    Usage counters live in an InMemoryUserRepository, as they live in the user's usage item in DynamoDB: pass the
    one the user service sees, and it shows what photo writes reserved and released.

    For tests, not in the contract: `race` (another writer wins the next writes), `before_write` (a hook run
    before each write is checked), `fail` (an operation raises, `errors.Unavailable` by default), `bump` (another
    writer's write, now) and `writes` (how many writes were attempted, by operation).

    Not modelled: what only DynamoDB's machinery does (a Query cut short at 1 MB, an index that lags the table, a
    transaction clashing with another in flight); tests that need those fail an operation with `fail`.
    """

    def __init__(self, users: InMemoryUserRepository | None = None) -> None:
        self.users = users if users is not None else InMemoryUserRepository()
        self.photos: dict[tuple[str, str], Photo] = {}
        # Called with the operation ("add_reserving_quota", "replace", "delete") and the photo it writes, before
        # the write's conditions are checked: what it does happens "concurrently", just before the write lands.
        self.before_write: Callable[[str, Photo], None] | None = None
        self.writes: Counter[str] = Counter()
        self._failures: dict[str, tuple[Exception, int | None]] = {}
        # (owner, sha256) -> the library photo holding those bytes, as the SHA256# claim items are.
        self.claims: dict[tuple[str, str], str] = {}

    # --- test controls -----------------------------------------------------------------------------------------

    def usage(self, owner_id: str) -> Usage:
        return self.users.get_usage(owner_id)

    def fail(self, operation: str, error: Exception | None = None, *, times: int | None = 1) -> None:
        """Make the next `times` calls of `operation` (a method name; every call with None) raise `error`."""
        if not hasattr(self, operation):
            raise AttributeError(f"no operation {operation!r}")
        self._failures[operation] = (error or errors.Unavailable("DynamoDB is busy; retry shortly"), times)

    def bump(self, owner_id: str, photo_id: str, **changes: Any) -> Photo:
        """Another writer's write of a stored photo: a new revision (and `changes`). Usage is left as it is."""
        current = self.photos[(owner_id, photo_id)]
        written = dataclasses.replace(current, **{"revision": current.revision + 1, **changes})
        self.photos[(owner_id, photo_id)] = written
        return written

    def race(self, *, times: int | None = 1, **changes: Any) -> None:
        """Another writer gets in first on the next `times` writes (every write with None): just before each, it
        writes the photo (`bump`), so `replace` and `delete` find a newer revision and return False."""
        left = [times]

        def interfere(operation: str, photo: Photo) -> None:
            if left[0] == 0 or (photo.owner_id, photo.photo_id) not in self.photos:
                return
            if left[0] is not None:
                left[0] -= 1
            self.bump(photo.owner_id, photo.photo_id, **changes)

        self.before_write = interfere

    def _call(self, operation: str) -> None:
        failure = self._failures.get(operation)
        if failure is None:
            return
        error, times = failure
        if times is not None:
            if times <= 1:
                del self._failures[operation]
            else:
                self._failures[operation] = (error, times - 1)
        raise error

    def _write(self, operation: str, photo: Photo) -> None:
        self._call(operation)
        if len(set(photo.tags)) != len(photo.tags):
            # DynamoDB refuses a transaction that writes one item (here a tag copy) twice.
            raise ValueError(f"photo {photo.photo_id} repeats a tag: {photo.tags!r}")
        self.writes[operation] += 1
        if self.before_write is not None:
            self.before_write(operation, photo)

    def _add_usage(
        self, owner_id: str, *, photos: int = 0, size: int = 0, pending: int = 0, trash: int = 0, trash_size: int = 0
    ) -> None:
        usage = self.usage(owner_id)
        self.users.usage[owner_id] = Usage(
            photos=usage.photos + photos,
            bytes=usage.bytes + size,
            pending=usage.pending + pending,
            trash_photos=usage.trash_photos + trash,
            trash_bytes=usage.trash_bytes + trash_size,
        )

    def _move_claim(self, previous: Photo, photo: Photo | None) -> None:
        """The claim on the bytes follows the photo into and out of the library; DuplicatePhoto if another photo of
        the owner's holds them (checked before anything changes, as the transaction's condition is)."""
        held = previous.sha256 if previous.in_library else None
        holds = photo.sha256 if photo is not None and photo.in_library else None
        if holds is not None and holds != held:
            holder = self.claims.get((previous.owner_id, holds))
            if holder is not None and holder != previous.photo_id:
                raise errors.DuplicatePhoto(holder)
        if held is not None and held != holds and self.claims.get((previous.owner_id, held)) == previous.photo_id:
            del self.claims[(previous.owner_id, held)]
        if holds is not None:
            self.claims[(previous.owner_id, holds)] = previous.photo_id

    # --- reads -------------------------------------------------------------------------------------------------

    def get(self, owner_id: str, photo_id: str) -> Photo | None:
        self._call("get")
        return self.photos.get((owner_id, photo_id))

    def get_many(self, owner_id: str, photo_ids: Sequence[str]) -> dict[str, Photo]:
        self._call("get_many")
        return {pid: self.photos[(owner_id, pid)] for pid in photo_ids if (owner_id, pid) in self.photos}

    def list_page(
        self, owner_id: str, *, limit: int, query: ListQuery, start_key: dict[str, Any] | None
    ) -> tuple[list[Photo], dict[str, Any] | None]:
        """Upload order only (what the service tests need); trash never listed, the favourite filter kept."""
        self._call("list_page")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if query.sort != "uploaded" or query.from_day or query.to_day:
            raise NotImplementedError("the in-memory repository lists by upload time, without dates")
        tag = query.tag
        listed = sorted(
            (
                p
                for (owner, _), p in self.photos.items()
                if owner == owner_id
                and (tag is None or tag in p.tags)
                and not p.trashed
                and (p.favorite or not query.favorite)
            ),
            key=lambda p: p.photo_id,
            reverse=True,
        )
        if start_key is not None:
            after = self._photo_id_after(owner_id, tag, start_key)
            listed = [p for p in listed if p.photo_id < after]
        page = listed[:limit]
        if len(listed) <= limit:
            return page, None
        last = page[-1].photo_id
        if tag is None:
            return page, dict(keys.photo_key(owner_id, last))
        return page, {
            **keys.photo_tag_key(owner_id, last, tag),
            "GSI1PK": {"S": keys.tag_index_pk(owner_id, tag)},
            "GSI1SK": {"S": keys.photo_sk(last)},
        }

    def timeline(self, owner_id: str) -> list[tuple[str, int]]:
        counts = Counter(p.month for (owner, _), p in self.photos.items() if owner == owner_id and p.in_library)
        return sorted(counts.items(), reverse=True)

    def trash_page(
        self, owner_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Photo], dict[str, Any] | None]:
        trashed = sorted(
            (p for (owner, _), p in self.photos.items() if owner == owner_id and p.trashed),
            key=lambda p: (p.trashed_at, p.photo_id),
            reverse=True,
        )
        skip = int(start_key["n"]["N"]) if start_key else 0
        page = trashed[skip : skip + limit]
        return page, ({"n": {"N": str(skip + limit)}} if len(trashed) > skip + limit else None)

    def trashed(self, owner_id: str) -> list[Photo]:
        return [p for (owner, _), p in self.photos.items() if owner == owner_id and p.trashed]

    def expired_trash(self, now: str) -> list[tuple[str, str]]:
        return sorted((owner, pid) for (owner, pid), p in self.photos.items() if p.trashed and (p.purge_at or "") < now)

    def claim_holder(self, owner_id: str, digest: str) -> str | None:
        self._call("claim_holder")
        return self.claims.get((owner_id, digest))

    @staticmethod
    def _photo_id_after(owner_id: str, tag: str | None, start_key: dict[str, Any]) -> str:
        # What DynamoDB refuses (ValidationException, which the adapter turns into Invalid): a key of another
        # shape, or one outside the query's partition.
        invalid = errors.Invalid("cursor", "does not belong to this listing")
        try:
            if tag is None:
                if set(start_key) != {"PK", "SK"} or start_key["PK"] != {"S": keys.user_pk(owner_id)}:
                    raise invalid
                sort_key = start_key["SK"]["S"]
            else:
                if set(start_key) != {"PK", "SK", "GSI1PK", "GSI1SK"} or start_key["GSI1PK"] != {
                    "S": keys.tag_index_pk(owner_id, tag)
                }:
                    raise invalid
                sort_key = start_key["GSI1SK"]["S"]
        except (KeyError, TypeError):
            raise invalid from None
        if not isinstance(sort_key, str) or not sort_key.startswith(keys.PHOTO_PREFIX):
            raise invalid
        return sort_key.removeprefix(keys.PHOTO_PREFIX)

    def stale_pending(self, cutoff: str) -> list[tuple[str, str]]:
        self._call("stale_pending")
        # The same order and the same strict comparison as the adapter's query of the pending index.
        found = sorted(
            (keys.pending_index_sk(p.upload_expires_at, owner, photo_id), owner, photo_id)
            for (owner, photo_id), p in self.photos.items()
            if p.status is PhotoStatus.PENDING
        )
        return [(owner, photo_id) for index_key, owner, photo_id in found if index_key < cutoff]

    # --- writes ------------------------------------------------------------------------------------------------

    def add_reserving_quota(self, photo: Photo, *, max_photos: int, max_bytes: int, max_pending: int) -> None:
        if photo.size_bytes > max_bytes:
            raise errors.QuotaExceeded("this upload alone is larger than your storage quota")
        self._write("add_reserving_quota", photo)
        usage = self.usage(photo.owner_id)
        if usage.pending >= max_pending:
            raise errors.TooManyPending(
                f"{usage.pending} uploads are still in progress (at most {max_pending}): finish or wait for them first"
            )
        if usage.photos >= max_photos or usage.bytes + photo.size_bytes > max_bytes:
            raise errors.QuotaExceeded("storage quota reached: delete photos to upload more")
        if (photo.owner_id, photo.photo_id) in self.photos:
            raise errors.Conflict(f"photo {photo.photo_id} already exists")
        self.photos[(photo.owner_id, photo.photo_id)] = photo
        self._add_usage(photo.owner_id, photos=1, size=photo.size_bytes, pending=1)

    def replace(self, photo: Photo, previous: Photo, *, release_usage: bool = False) -> bool:
        self._write("replace", photo)
        current = self.photos.get((photo.owner_id, photo.photo_id))
        if current is None or current.revision != previous.revision:
            return False
        self._move_claim(previous, photo)
        self.photos[(photo.owner_id, photo.photo_id)] = photo
        settles = previous.status is PhotoStatus.PENDING and photo.status is not PhotoStatus.PENDING
        self._release(previous, release=release_usage, settle=settles)
        return True

    def trash(self, photo: Photo, *, trashed_at: str, purge_at: str, purging: bool = False) -> Photo | None:
        self._write("trash", photo)
        current = self.photos.get((photo.owner_id, photo.photo_id))
        if current is None or current.revision != photo.revision:
            return None
        trashed = dataclasses.replace(
            photo,
            trashed_at=trashed_at,
            purge_at=purge_at,
            purging=purging,
            updated_at=photo.updated_at if photo.trashed else trashed_at,
            revision=photo.revision + 1,
        )
        self._move_claim(photo, trashed)
        self.photos[(photo.owner_id, photo.photo_id)] = trashed
        if not photo.trashed:
            self._add_usage(photo.owner_id, trash=1, trash_size=photo.size_bytes)
        return trashed

    def restore(self, photo: Photo, *, now: str) -> Photo | None:
        self._write("restore", photo)
        current = self.photos.get((photo.owner_id, photo.photo_id))
        if current is None or current.revision != photo.revision:
            return None
        restored = dataclasses.replace(
            photo,
            trashed_at=None,
            purge_at=None,
            album_return=(),
            updated_at=now if photo.trashed else photo.updated_at,
            revision=photo.revision + 1,
        )
        self._move_claim(photo, restored)
        self.photos[(photo.owner_id, photo.photo_id)] = restored
        if photo.trashed:
            self._add_usage(photo.owner_id, trash=-1, trash_size=-photo.size_bytes)
        return restored

    def delete(self, photo: Photo) -> bool:
        self._write("delete", photo)
        current = self.photos.get((photo.owner_id, photo.photo_id))
        if current is None or current.revision != photo.revision:
            return False
        self._move_claim(photo, None)
        del self.photos[(photo.owner_id, photo.photo_id)]
        self._release(photo, release=photo.counts_against_quota, settle=photo.status is PhotoStatus.PENDING)
        if photo.trashed:
            self._add_usage(photo.owner_id, trash=-1, trash_size=-photo.size_bytes)
        return True

    def _release(self, photo: Photo, *, release: bool, settle: bool) -> None:
        self._add_usage(
            photo.owner_id,
            photos=-1 if release else 0,
            size=-photo.size_bytes if release else 0,
            pending=-1 if settle else 0,
        )


class FakeDirectory:
    """The user pool's AdminGetUser as the album service uses it: user name (case-insensitive, as Cognito pools
    are by default) to `sub`. The in-process tests' tokens carry `cognito:username` = `user-<sub[:8]>`."""

    def __init__(self) -> None:
        self._users: dict[str, DirectoryUser] = {}

    def add(self, user_id: str, username: str | None = None) -> DirectoryUser:
        user = DirectoryUser(user_id=user_id, username=username or f"user-{user_id[:8]}")
        self._users[user.username.lower()] = user
        return user

    def find(self, username: str) -> DirectoryUser | None:
        return self._users.get(username.lower())
