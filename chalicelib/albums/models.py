"""Albums, their members and share links: who may see a group of photos, and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib.photos.models import PreviewFormat

TITLE_MAX = 200
DESCRIPTION_MAX = 2000
# Photos one call may add or remove: one result each, in two or three transactions.
PHOTOS_PER_CALL = 50
# Members besides the owner. Bounded so listing them (and their names) is one Query and one BatchGetItem.
MEMBERS_MAX = 50
PASSWORD_MIN = 4
PASSWORD_MAX = 128
# A share link expires at most this far ahead (an absolute time the owner picks; none means never).
LINK_EXPIRY_MAX_DAYS = 3650


class Role(StrEnum):
    OWNER = "owner"
    CONTRIBUTOR = "contributor"
    VIEWER = "viewer"
    # Someone holding a share link: no account, read only, and only what the link shows.
    LINK = "link"


MEMBER_ROLES = (Role.VIEWER, Role.CONTRIBUTOR)


@dataclass(frozen=True)
class Album:
    album_id: str
    owner_id: str
    title: str
    created_at: str
    updated_at: str
    owner_username: str | None = None
    description: str | None = None
    cover_photo_id: str | None = None
    cover_owner_id: str | None = None
    # The cover photo's preview format, so the album's cover URLs need no read of the photo (JPEG when no cover).
    cover_preview_format: PreviewFormat = PreviewFormat.JPEG
    photo_count: int = 0
    member_count: int = 0
    version: int = 1
    # Set when deletion began: the album is gone for everyone from that moment, and the clean-up finishes it.
    deleting_since: str | None = None


@dataclass(frozen=True)
class Membership:
    album_id: str
    user_id: str
    username: str
    role: Role
    added_at: str
    # Set when the member left or was removed: no access from then on; their photos are leaving the album.
    leaving_since: str | None = None
    # Whether they ever added a photo (only then can leaving have photos to take out).
    contributed: bool = False


@dataclass(frozen=True)
class Member:
    """A member as the album's people see them."""

    user_id: str
    username: str | None
    display_name: str | None
    role: Role
    added_at: str


@dataclass(frozen=True)
class AlbumPhotoEntry:
    album_id: str
    photo_id: str
    owner_id: str
    added_at: str
    # The photo's, copied when it joins (a READY photo's never changes): what the album's cover needs for its URLs.
    preview_format: PreviewFormat = PreviewFormat.JPEG


@dataclass(frozen=True)
class Link:
    link_id: str
    album_id: str
    token_hash: str
    created_at: str
    expires_at: str | None = None
    # "scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>", or None for a link without a password.
    password_hash: str | None = None
    allow_download: bool = False

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None


@dataclass(frozen=True)
class NewAlbum:
    title: str
    description: str | None = None


@dataclass(frozen=True)
class AlbumChanges:
    version: int
    title: str | None = None
    description: str | None = None
    cover_photo_id: str | None = None
    sent: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class NewLink:
    expires_at: str | None = None
    password: str | None = None
    allow_download: bool = False


@dataclass(frozen=True)
class PhotoResult:
    photo_id: str
    status: str
    message: str | None = None


@dataclass(frozen=True)
class Grant:
    """What the one authorization check found: the album and the caller's role in it (and the link, for a visitor)."""

    album: Album
    role: Role
    link: Link | None = None
    # The caller's membership as read by the check (None for the owner and for link visitors).
    membership: Membership | None = None
