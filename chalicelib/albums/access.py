"""The one authorization check for albums: who may do what to an album, signed in or holding a share link.

Every album route, and both public routes, ask `AlbumAccess` first; nothing else reads a membership or a link to
decide. A caller gets a role (owner, contributor, viewer, or link for a share-link visitor) or none, and the role is
looked up in one table of permissions:

- no role (a stranger, a former member, a deleted album, an unknown, expired or revoked link): 404, the same as an
  album that never existed;
- a role that may read the album but not do this: 403;
- otherwise the Grant (the album as read, the role, and the link for a visitor).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from chalicelib import errors
from chalicelib.albums import links
from chalicelib.albums.models import Album, Grant, Link, Membership, Role
from chalicelib.clock import iso_utc
from chalicelib.ids import is_ulid


class Action(StrEnum):
    READ = "see this album"
    LIST_MEMBERS = "see this album's members"
    ADD_PHOTOS = "add photos to this album"
    REMOVE_PHOTOS = "remove photos from this album"
    LEAVE = "leave this album"
    EDIT = "edit this album"
    DELETE = "delete this album"
    MANAGE_MEMBERS = "change this album's members"
    MANAGE_LINKS = "manage this album's share links"


_EVERY_MEMBER = frozenset({Role.OWNER, Role.CONTRIBUTOR, Role.VIEWER})
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.READ: _EVERY_MEMBER | {Role.LINK},
    Action.LIST_MEMBERS: _EVERY_MEMBER,
    # Contributors add and remove only their own photos (the service holds them to that, photo by photo).
    Action.ADD_PHOTOS: frozenset({Role.OWNER, Role.CONTRIBUTOR}),
    Action.REMOVE_PHOTOS: frozenset({Role.OWNER, Role.CONTRIBUTOR}),
    Action.LEAVE: frozenset({Role.CONTRIBUTOR, Role.VIEWER}),
    Action.EDIT: frozenset({Role.OWNER}),
    Action.DELETE: frozenset({Role.OWNER}),
    Action.MANAGE_MEMBERS: frozenset({Role.OWNER}),
    Action.MANAGE_LINKS: frozenset({Role.OWNER}),
}

NO_SUCH_ALBUM = "no such album"
NO_SUCH_LINK = "no such link"


class AccessRepository(Protocol):
    def get_with_membership(self, album_id: str, user_id: str) -> tuple[Album | None, Membership | None]: ...
    def get(self, album_id: str) -> Album | None: ...
    def link_by_token_hash(self, token_hash: str) -> Link | None: ...


def decide(
    album: Album | None,
    role: Role | None,
    action: Action,
    *,
    link: Link | None = None,
    membership: Membership | None = None,
) -> Grant:
    """The permission table applied: a Grant, or NotFound/Forbidden."""
    if album is None or album.deleting_since is not None or role is None:
        raise errors.NotFound(NO_SUCH_LINK if role is Role.LINK or link is not None else NO_SUCH_ALBUM)
    if role not in PERMISSIONS[action]:
        if role not in PERMISSIONS[Action.READ]:
            raise errors.NotFound(NO_SUCH_ALBUM)
        article = "an" if role.value[0] in "aeiou" else "a"
        raise errors.Forbidden(f"{article} {role.value} may not {action.value}")
    return Grant(album=album, role=role, link=link, membership=membership)


def role_of(album: Album | None, membership: Membership | None, user_id: str) -> Role | None:
    if album is None:
        return None
    if album.owner_id == user_id:
        return Role.OWNER
    if membership is None or membership.leaving_since is not None:
        return None
    return membership.role


class AlbumAccess:
    def __init__(
        self, repository: AccessRepository, access_tokens: links.AccessTokens, clock: Callable[[], datetime]
    ) -> None:
        self._repository = repository
        self._access_tokens = access_tokens
        self._clock = clock

    def for_user(self, user_id: str, album_id: str, action: Action) -> Grant:
        """What a signed-in caller may do to the album: one strongly consistent read of the album and their
        membership, so access ends the moment a membership does."""
        if not is_ulid(album_id):
            raise errors.NotFound(NO_SUCH_ALBUM)
        album, membership = self._repository.get_with_membership(album_id, user_id)
        role = role_of(album, membership, user_id)
        return decide(album, role, action, membership=membership if role is not Role.OWNER else None)

    def link(self, token: str) -> Link:
        """The live link a token opens (not expired, not revoked, its album not deleted): else the one 404."""
        link = self._repository.link_by_token_hash(links.token_hash(token)) if links.looks_like_token(token) else None
        if link is None or (link.expires_at is not None and link.expires_at <= self._now_iso()):
            raise errors.NotFound(NO_SUCH_LINK)
        return link

    def for_link(self, token: str, access_token: str | None, action: Action = Action.READ) -> Grant:
        """What a share-link visitor may do: read the album the link shows, after its password if it has one."""
        link = self.link(token)
        album = self._repository.get(link.album_id)
        if album is None or album.deleting_since is not None:
            raise errors.NotFound(NO_SUCH_LINK)
        if link.has_password and not self._access_tokens.valid(access_token, link.link_id, self._now_epoch()):
            raise errors.PasswordRequired("this link needs its password: unlock it, then send X-Link-Access")
        return decide(album, Role.LINK, action, link=link)

    def _now_iso(self) -> str:
        return iso_utc(self._clock())

    def _now_epoch(self) -> int:
        return int(self._clock().timestamp())
