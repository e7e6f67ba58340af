"""Album use cases: albums, their photos, members and share links. No boto3, no chalice.

Every method starts with the one authorization check (`AlbumAccess`); see access.py for the permission table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib import errors, keys
from chalicelib.albums import links
from chalicelib.albums.access import Action, AlbumAccess
from chalicelib.albums.directory import DirectoryUser
from chalicelib.albums.models import (
    MEMBERS_MAX,
    Album,
    AlbumChanges,
    AlbumPhotoEntry,
    Grant,
    Link,
    Member,
    Membership,
    NewAlbum,
    NewLink,
    PhotoResult,
    Role,
)
from chalicelib.clock import iso_utc
from chalicelib.cursors import CursorCodec
from chalicelib.ids import is_ulid, new_ulid
from chalicelib.photos.models import DownloadUrls, Photo, PreviewFormat
from chalicelib.users.service import is_user_id

if TYPE_CHECKING:
    from chalicelib.media import MediaLinks

# Wrong passwords one link accepts per window before it answers 429 (before hashing, so guessing costs us nothing).
UNLOCK_ATTEMPTS = 10
UNLOCK_WINDOW_SECONDS = 900
# Departures and deletions older than this that have not finished are the sweeper's (newer ones may be running).
CLEANUP_GRACE = timedelta(minutes=5)


class AlbumRepository(Protocol):
    def create(self, album: Album) -> None: ...
    def get(self, album_id: str) -> Album | None: ...
    def get_with_membership(self, album_id: str, user_id: str) -> tuple[Album | None, Membership | None]: ...
    def accessible(self, user_id: str) -> list[tuple[Album, Role]]: ...
    def update(
        self, album: Album, previous: Album, *, cover_changed: bool, cover_entry: AlbumPhotoEntry | None
    ) -> Album | None: ...
    def entries(self, album_id: str, photo_ids: Sequence[str]) -> dict[str, AlbumPhotoEntry]: ...
    def photos(self, owner_id: str, photo_ids: Sequence[str]) -> dict[str, Photo]: ...
    def add_photos(
        self, album: Album, photos: Sequence[Photo], *, added_at: str, contributor: Membership | None
    ) -> dict[str, str]: ...
    def remove_entries(
        self, album_id: str, leaving: Sequence[AlbumPhotoEntry], *, now: str, album: Album | None = None
    ) -> set[str]: ...
    def photos_page(
        self, album_id: str, *, limit: int, start_key: dict[str, Any] | None, viewer: str | None = None
    ) -> tuple[list[tuple[AlbumPhotoEntry, Photo]], dict[str, Any] | None]: ...
    def entries_owned_by(self, album_id: str, owner_id: str) -> list[AlbumPhotoEntry]: ...
    def memberships(self, album_id: str) -> list[Membership]: ...
    def add_member(self, album: Album, membership: Membership) -> str | None: ...
    def change_role(self, album_id: str, user_id: str, role: Role) -> Membership | None: ...
    def begin_leaving(self, membership: Membership, *, since: str) -> bool: ...
    def finish_leaving(self, album_id: str, user_id: str) -> None: ...
    def begin_delete(self, album: Album, *, since: str) -> bool: ...
    def delete_contents(self, album: Album) -> None: ...
    def left_behind(self, cutoff: str) -> list[tuple[str, str]]: ...
    def add_link(self, link: Link) -> bool: ...
    def links(self, album_id: str) -> list[Link]: ...
    def revoke_link(self, album_id: str, link_id: str) -> bool: ...
    def link_by_token_hash(self, token_hash: str) -> Link | None: ...
    def failed_unlocks(self, token_hash: str, window_start: int) -> int: ...
    def record_failed_unlock(self, token_hash: str, window_start: int, *, expires_at: int) -> None: ...


class AlbumEvents(Protocol):
    """Who is told about a change once it is written (chalicelib/realtime): everyone who can read the album. Never
    raises."""

    def albums_changed(self, album_ids: Sequence[str]) -> None: ...
    def album_removed(self, album_id: str, user_ids: Sequence[str]) -> None: ...
    def album_deleted(self, album: Album) -> None: ...


class UserDirectory(Protocol):
    def find(self, username: str) -> DirectoryUser | None: ...


@dataclasses.dataclass(frozen=True)
class AlbumPhotoPage:
    items: list[tuple[AlbumPhotoEntry, Photo]]
    next_cursor: str | None


class AlbumService:
    def __init__(
        self,
        repository: AlbumRepository,
        access: AlbumAccess,
        *,
        directory: Callable[[], UserDirectory],
        display_names: Callable[[Sequence[str]], dict[str, str]],
        media: MediaLinks,
        access_tokens: links.AccessTokens,
        cursors: CursorCodec,
        clock: Callable[[], datetime],
        new_id: Callable[[], str] = new_ulid,
        events: AlbumEvents | None = None,
    ) -> None:
        self._repository = repository
        self._access = access
        self._directory = directory
        self._display_names = display_names
        self._media = media
        self._access_tokens = access_tokens
        self._cursors = cursors
        self._clock = clock
        self._new_id = new_id
        self._events = events

    def _changed(self, album_id: str) -> None:
        if self._events is not None:
            self._events.albums_changed([album_id])

    # --- albums ----------------------------------------------------------------------------------------------------

    def create(self, owner_id: str, owner_username: str | None, new: NewAlbum) -> Grant:
        now = iso_utc(self._clock())
        album = Album(
            album_id=self._new_id(),
            owner_id=owner_id,
            owner_username=owner_username,
            title=new.title,
            description=new.description,
            created_at=now,
            updated_at=now,
        )
        self._repository.create(album)
        return Grant(album=album, role=Role.OWNER)

    def list_for(self, user_id: str, *, limit: int, cursor: str | None) -> tuple[list[Grant], str | None]:
        """The caller's albums and those shared with them, most recently updated first.

        Sorted here, not by an index: an album's time changes with every photo added, and keeping a copy of it per
        member in order would cost a write per member per change. The caller's album entries are one Query (1 MB
        holds ~10,000), their albums one BatchGetItem per 100.
        """
        scope = f"albums\x00{user_id}"
        after = self._cursors.decode(cursor, scope=scope) if cursor else None
        mine = sorted(self._repository.accessible(user_id), key=lambda pair: _recency(pair[0]), reverse=True)
        if after is not None:
            position = (str(after.get("updated_at")), str(after.get("album_id")))
            mine = [pair for pair in mine if _recency(pair[0]) < position]
        page = mine[:limit]
        next_cursor = None
        if len(mine) > limit:
            last = page[-1][0]
            next_cursor = self._cursors.encode({"updated_at": last.updated_at, "album_id": last.album_id}, scope=scope)
        return [Grant(album=album, role=role) for album, role in page], next_cursor

    def get(self, user_id: str, album_id: str) -> Grant:
        return self._access.for_user(user_id, album_id, Action.READ)

    def update(self, user_id: str, album_id: str, changes: AlbumChanges) -> Grant:
        for _ in range(4):
            grant = self._access.for_user(user_id, album_id, Action.EDIT)
            current = grant.album
            if current.version != changes.version:
                raise errors.Conflict(
                    f"version {changes.version} is stale: the album is at version {current.version}; "
                    "read it again and reapply your change"
                )
            cover_entry = None
            cover_photo_id, cover_owner_id = current.cover_photo_id, current.cover_owner_id
            cover_preview_format = current.cover_preview_format
            if "cover_photo_id" in changes.sent:
                cover_photo_id = changes.cover_photo_id
                if cover_photo_id is None:
                    cover_owner_id, cover_preview_format = None, PreviewFormat.JPEG
                else:
                    found = self._repository.entries(album_id, [cover_photo_id]) if is_ulid(cover_photo_id) else {}
                    cover_entry = found.get(cover_photo_id)
                    if cover_entry is None:
                        raise errors.Invalid("cover_photo_id", "must be a photo in this album")
                    cover_owner_id, cover_preview_format = cover_entry.owner_id, cover_entry.preview_format
            edited = dataclasses.replace(
                current,
                title=changes.title if "title" in changes.sent and changes.title else current.title,
                description=changes.description if "description" in changes.sent else current.description,
                cover_photo_id=cover_photo_id,
                cover_owner_id=cover_owner_id,
                cover_preview_format=cover_preview_format,
                updated_at=iso_utc(self._clock()),
                version=current.version + 1,
            )
            stored = self._repository.update(
                edited, current, cover_changed="cover_photo_id" in changes.sent, cover_entry=cover_entry
            )
            if stored is not None:
                self._changed(album_id)
                return Grant(album=stored, role=grant.role)
        raise errors.Unavailable("the album is changing too fast to edit; retry")

    def delete(self, user_id: str, album_id: str) -> None:
        """Gone for everyone at once; its entries, members and links follow in this request, or the sweeper's run
        if this one is cut short. A retry by the owner finishes what is left and answers 204 again."""
        try:
            grant = self._access.for_user(user_id, album_id, Action.DELETE)
        except errors.NotFound:
            album = self._repository.get(album_id) if is_ulid(album_id) else None
            if album is None or album.owner_id != user_id or album.deleting_since is None:
                raise
            self._repository.delete_contents(album)  # a deletion of the caller's own, cut short: finish it
            return
        began = self._repository.begin_delete(grant.album, since=iso_utc(self._clock()))
        if began and self._events is not None:
            # Gone for everyone now; told while its members are still listed (the clean-up removes them next).
            self._events.album_deleted(grant.album)
        self._repository.delete_contents(grant.album)

    # --- photos in an album ----------------------------------------------------------------------------------------

    def add_photos(self, user_id: str, album_id: str, photo_ids: Sequence[str]) -> list[PhotoResult]:
        """Add the caller's own READY photos (not those in the trash); a result per photo, in the order sent."""
        grant = self._access.for_user(user_id, album_id, Action.ADD_PHOTOS)
        contributor = grant.membership if grant.role is Role.CONTRIBUTOR else None
        wanted = [photo_id for photo_id in photo_ids if is_ulid(photo_id)]
        own = self._repository.photos(user_id, wanted) if wanted else {}
        ready = [own[photo_id] for photo_id in wanted if photo_id in own and own[photo_id].in_library]
        outcome = (
            self._repository.add_photos(grant.album, ready, added_at=iso_utc(self._clock()), contributor=contributor)
            if ready
            else {}
        )
        if "added" in outcome.values():
            self._changed(album_id)
        results = []
        for photo_id in photo_ids:
            status = outcome.get(photo_id)
            if status is None and photo_id in own and own[photo_id].trashed:
                results.append(PhotoResult(photo_id, "not_found", "the photo is in the trash: restore it first"))
            elif status is None and photo_id in own:
                state = own[photo_id].status.value.lower()
                results.append(PhotoResult(photo_id, "not_ready", f"the photo is {state}: only READY photos"))
            elif status is None or status == "not_found":
                results.append(PhotoResult(photo_id, "not_found", "you have no such photo"))
            elif status == "denied":
                results.append(PhotoResult(photo_id, "forbidden", "you may no longer add photos to this album"))
            else:
                results.append(PhotoResult(photo_id, status))
        return results

    def remove_photos(self, user_id: str, album_id: str, photo_ids: Sequence[str]) -> list[PhotoResult]:
        """The owner removes any photo, a contributor their own; the photos stay in their owners' libraries."""
        grant = self._access.for_user(user_id, album_id, Action.REMOVE_PHOTOS)
        wanted = [photo_id for photo_id in photo_ids if is_ulid(photo_id)]
        entries = self._repository.entries(album_id, wanted) if wanted else {}
        allowed = [entry for entry in entries.values() if grant.role is Role.OWNER or entry.owner_id == user_id]
        removed = (
            self._repository.remove_entries(album_id, allowed, now=iso_utc(self._clock()), album=grant.album)
            if allowed
            else set()
        )
        if removed:
            self._changed(album_id)
        results = []
        for photo_id in photo_ids:
            if photo_id in removed:
                results.append(PhotoResult(photo_id, "removed"))
            elif photo_id in entries and entries[photo_id] not in allowed:
                results.append(PhotoResult(photo_id, "forbidden", "a contributor may remove only their own photos"))
            else:
                results.append(PhotoResult(photo_id, "not_found", "no such photo in this album"))
        return results

    def photos(self, grant: Grant, *, limit: int, cursor: str | None, viewer: str | None = None) -> AlbumPhotoPage:
        """A page of the album's photos as `viewer` (None: a link visitor) sees them: someone else's photo's own
        fields may be up to half a minute old (chalicelib/albums/shown_photos.py), the viewer's are not."""
        scope = f"album-photos\x00{grant.album.album_id}"
        start_key = self._cursors.decode(cursor, scope=scope) if cursor else None
        page, last_key = self._repository.photos_page(
            grant.album.album_id, limit=limit, start_key=start_key, viewer=viewer
        )
        return AlbumPhotoPage(page, self._cursors.encode(last_key, scope=scope) if last_key else None)

    def member_photos(self, user_id: str, album_id: str, *, limit: int, cursor: str | None) -> AlbumPhotoPage:
        grant = self._access.for_user(user_id, album_id, Action.READ)
        return self.photos(grant, limit=limit, cursor=cursor, viewer=user_id)

    def photo_urls(self, photo: Photo, *, viewer: str | None, original: bool) -> DownloadUrls:
        """A photo's URLs as `viewer` sees it through an album (None: a share-link visitor). A caller's own photo
        gets the same URLs as in their library (one cache entry in the browser); anyone else's, URLs that open
        that photo only (chalicelib/media.py)."""
        # The file name goes only into the owner's own URLs (the media adapter leaves it out of anyone else's).
        return self._media.urls(
            photo.owner_id,
            photo.photo_id,
            preview_format=photo.preview_format,
            viewer=viewer,
            original=original,
            filename=photo.filename,
        )

    def cover_urls(self, album: Album, *, viewer: str | None) -> DownloadUrls | None:
        """The cover's URLs from the album alone (its cover's owner and preview format are copied there)."""
        if album.cover_photo_id is None or album.cover_owner_id is None:
            return None
        return self._media.urls(
            album.cover_owner_id,
            album.cover_photo_id,
            preview_format=album.cover_preview_format,
            viewer=viewer,
            original=False,
        )

    # --- members ---------------------------------------------------------------------------------------------------

    def members(self, user_id: str, album_id: str) -> list[Member]:
        grant = self._access.for_user(user_id, album_id, Action.LIST_MEMBERS)
        album = grant.album
        current = [m for m in self._repository.memberships(album_id) if m.leaving_since is None]
        names = self._display_names([album.owner_id, *(m.user_id for m in current)])
        owner = Member(album.owner_id, album.owner_username, names.get(album.owner_id), Role.OWNER, album.created_at)
        others = sorted(current, key=lambda m: (m.added_at, m.user_id))
        return [owner, *(Member(m.user_id, m.username, names.get(m.user_id), m.role, m.added_at) for m in others)]

    def add_member(self, user_id: str, album_id: str, username: str, role: Role) -> Member:
        grant = self._access.for_user(user_id, album_id, Action.MANAGE_MEMBERS)
        found = self._directory().find(username)
        if found is None:
            raise errors.NotFound("no PhotoSky user has this user name")
        if found.user_id == grant.album.owner_id:
            raise errors.Conflict("you own this album: share it with someone else")
        membership = Membership(album_id, found.user_id, found.username, role, iso_utc(self._clock()))
        for _ in range(2):
            why_not = self._repository.add_member(grant.album, membership)
            if why_not is None:
                self._changed(album_id)  # the new member hears of it too: it is theirs to read now
                name = self._display_names([found.user_id]).get(found.user_id)
                return Member(found.user_id, found.username, name, role, membership.added_at)
            if why_not == "full":
                raise errors.Conflict(f"an album has at most {MEMBERS_MAX} members besides its owner")
            if why_not == "gone":
                raise errors.NotFound("no such album")
            if why_not == "deleting":
                raise errors.NotFound("no PhotoSky user has this user name")  # the account is being deleted
            _, existing = self._repository.get_with_membership(album_id, found.user_id)
            if existing is None or existing.leaving_since is None:
                raise errors.Conflict(f"{found.username} is already a member: change their role instead")
            self._finish_leaving(existing)  # a departure left unfinished: finish it, then add them afresh
        raise errors.Unavailable("the album's members are changing; retry")

    def change_role(self, user_id: str, album_id: str, member_id: str, role: Role) -> Member:
        grant = self._access.for_user(user_id, album_id, Action.MANAGE_MEMBERS)
        if member_id == grant.album.owner_id:
            raise errors.Conflict("the owner's role cannot change")
        changed = self._repository.change_role(album_id, member_id, role) if is_user_id(member_id) else None
        if changed is None:
            raise errors.NotFound("no such member")
        self._changed(album_id)
        name = self._display_names([member_id]).get(member_id)
        return Member(changed.user_id, changed.username, name, changed.role, changed.added_at)

    def remove_member(self, user_id: str, album_id: str, member_id: str) -> None:
        """The owner removes anyone; a member removes only themselves (leaves). Their photos leave the album with
        them. Access ends with the first write; a retry finishes what a cut-short call left."""
        action = Action.LEAVE if member_id == user_id else Action.MANAGE_MEMBERS
        grant = (
            self._leaving_grant(user_id, album_id)
            if action is Action.LEAVE
            else self._access.for_user(user_id, album_id, action)
        )
        membership: Membership | None = None
        if action is Action.LEAVE:
            membership = grant.membership  # the check just read it
        elif is_user_id(member_id):
            _, membership = self._repository.get_with_membership(album_id, member_id)
        if membership is None:
            raise errors.NotFound("no such member")
        if membership.leaving_since is None:
            since = iso_utc(self._clock())
            if self._repository.begin_leaving(membership, since=since):
                membership = dataclasses.replace(membership, leaving_since=since)
            else:
                _, membership = self._repository.get_with_membership(album_id, member_id)
                if membership is None:
                    raise errors.NotFound("no such member")
        self._finish_leaving(membership, album=grant.album)
        if self._events is not None:
            self._events.album_removed(album_id, [membership.user_id])
            self._events.albums_changed([album_id])  # the others: the members, and the photos that left with them

    def _leaving_grant(self, user_id: str, album_id: str) -> Grant:
        """A member leaving; one whose departure was cut short may call again to finish it (204, not 404)."""
        try:
            return self._access.for_user(user_id, album_id, Action.LEAVE)
        except errors.Forbidden:
            raise errors.Forbidden("the owner cannot leave their album: delete it instead") from None
        except errors.NotFound:
            album, membership = (
                self._repository.get_with_membership(album_id, user_id) if is_ulid(album_id) else (None, None)
            )
            if album is None or membership is None or membership.leaving_since is None or album.deleting_since:
                raise
            return Grant(album=album, role=membership.role, membership=membership)

    def _finish_leaving(self, membership: Membership, *, album: Album | None = None) -> None:
        if membership.contributed:
            theirs = self._repository.entries_owned_by(membership.album_id, membership.user_id)
            if theirs:
                self._repository.remove_entries(membership.album_id, theirs, now=iso_utc(self._clock()), album=album)
        self._repository.finish_leaving(membership.album_id, membership.user_id)

    # --- share links -----------------------------------------------------------------------------------------------

    def create_link(self, user_id: str, album_id: str, new: NewLink) -> tuple[Link, str]:
        """A new link and its token, which is shown this once: only its hash is kept."""
        grant = self._access.for_user(user_id, album_id, Action.MANAGE_LINKS)
        if new.expires_at is not None and new.expires_at <= iso_utc(self._clock()):
            raise errors.Invalid("expires_at", "must be in the future")
        token = links.new_token()
        link = Link(
            link_id=self._new_id(),
            album_id=grant.album.album_id,
            token_hash=links.token_hash(token),
            created_at=iso_utc(self._clock()),
            expires_at=new.expires_at,
            password_hash=links.hash_password(new.password) if new.password is not None else None,
            allow_download=new.allow_download,
        )
        if not self._repository.add_link(link):
            raise errors.NotFound("no such album")
        return link, token

    def links(self, user_id: str, album_id: str) -> list[Link]:
        self._access.for_user(user_id, album_id, Action.MANAGE_LINKS)
        return sorted(self._repository.links(album_id), key=lambda link: link.created_at, reverse=True)

    def revoke_link(self, user_id: str, album_id: str, link_id: str) -> None:
        self._access.for_user(user_id, album_id, Action.MANAGE_LINKS)
        if not is_ulid(link_id) or not self._repository.revoke_link(album_id, link_id):
            raise errors.NotFound("no such link")

    def public_album(
        self, token: str, access_token: str | None, *, limit: int, cursor: str | None
    ) -> tuple[Grant, AlbumPhotoPage]:
        grant = self._access.for_link(token, access_token)
        return grant, self.photos(grant, limit=limit, cursor=cursor)

    def unlock(self, token: str, password: str) -> tuple[str, str]:
        """An access token for a password link, if the password is right; wrong ones are limited per link."""
        link = self._access.link(token)
        album = self._repository.get(link.album_id)
        if album is None or album.deleting_since is not None:
            raise errors.NotFound("no such link")
        now = self._clock()
        epoch = int(now.timestamp())
        if link.password_hash is None:
            expires = self._access_expiry(link, epoch)
            return self._access_tokens.issue(link.link_id, expires), iso_utc(_from_epoch(now, expires))
        window = epoch // UNLOCK_WINDOW_SECONDS * UNLOCK_WINDOW_SECONDS
        if self._repository.failed_unlocks(link.token_hash, window) >= UNLOCK_ATTEMPTS:
            wait = max(1, math.ceil(window + UNLOCK_WINDOW_SECONDS - now.timestamp()))
            raise errors.RateLimited(f"too many wrong passwords for this link; retry in {wait} s", retry_after=wait)
        if not links.password_matches(password, link.password_hash):
            self._repository.record_failed_unlock(
                link.token_hash, window, expires_at=window + UNLOCK_WINDOW_SECONDS + 3600
            )
            raise errors.WrongPassword("wrong password")
        expires = self._access_expiry(link, epoch)
        return self._access_tokens.issue(link.link_id, expires), iso_utc(_from_epoch(now, expires))

    @staticmethod
    def _access_expiry(link: Link, now_epoch: int) -> int:
        expires = now_epoch + links.ACCESS_TOKEN_SECONDS
        if link.expires_at is not None:
            link_end = int(datetime.fromisoformat(link.expires_at.replace("Z", "+00:00")).timestamp())
            expires = min(expires, link_end)
        return expires

    # --- the sweeper -----------------------------------------------------------------------------------------------

    def forget_user(self, user_id: str) -> None:
        """For an account being deleted: delete every album the user owns and leave every other one (their photos
        leave with them). Each step is the one the owner's DELETE or the member's leaving takes, so it is as safe to
        repeat."""
        for album, role in self._repository.accessible(user_id):
            try:
                if role is Role.OWNER:
                    self.delete(user_id, album.album_id)
                else:
                    self.remove_member(user_id, album.album_id, user_id)
            except errors.NotFound:
                pass  # gone meanwhile

    def finish_left_behind(self, *, deadline: Callable[[], bool]) -> dict[str, int]:
        """Finish deletions and departures whose request was cut short (run by the scheduled job)."""
        counts = {"albums_deleted": 0, "departures_finished": 0, "left_for_next_run": 0}
        cutoff = iso_utc(self._clock() - CLEANUP_GRACE)
        for album_id, what in self._repository.left_behind(cutoff):
            if deadline():
                counts["left_for_next_run"] += 1
                continue
            if what == keys.ALBUM_SK:
                album = self._repository.get(album_id)
                if album is not None and album.deleting_since is not None:
                    self._repository.delete_contents(album)
                    counts["albums_deleted"] += 1
            else:
                _, membership = self._repository.get_with_membership(album_id, what)
                if membership is not None and membership.leaving_since is not None:
                    self._finish_leaving(membership)
                    counts["departures_finished"] += 1
        return counts


def _recency(album: Album) -> tuple[str, str]:
    return album.updated_at, album.album_id


def _from_epoch(now: datetime, epoch: int) -> datetime:
    return now + timedelta(seconds=epoch - now.timestamp())
