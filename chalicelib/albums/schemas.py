"""Request parsing and response shapes for albums, members and share links."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import errors, validation
from chalicelib.albums.directory import USERNAME_MAX
from chalicelib.albums.models import (
    DESCRIPTION_MAX,
    LINK_EXPIRY_MAX_DAYS,
    MEMBER_ROLES,
    PASSWORD_MAX,
    PASSWORD_MIN,
    PHOTOS_PER_CALL,
    TITLE_MAX,
    Album,
    AlbumChanges,
    AlbumPhotoEntry,
    Link,
    Member,
    NewAlbum,
    NewLink,
    PhotoResult,
    Role,
)
from chalicelib.clock import iso_utc
from chalicelib.ids import is_ulid
from chalicelib.photos.models import DownloadUrls, Photo
from chalicelib.photos.schemas import parse_page

# A Cognito user name: no white space or control characters (Cognito's own pattern is [\p{L}\p{M}\p{S}\p{N}\p{P}]+).
_USERNAME = re.compile(r"^[^\s\x00-\x1f\x7f]+\Z")


def parse_new_album(body: Any) -> NewAlbum:
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, ("title", "description"))
    return NewAlbum(
        title=validation.text(body, "title", min_length=1, max_length=TITLE_MAX),
        description=validation.optional_text(body, "description", max_length=DESCRIPTION_MAX, multiline=True),
    )


_EDITABLE = ("title", "description", "cover_photo_id")


def parse_album_changes(body: Any) -> AlbumChanges:
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, (*_EDITABLE, "version"))
    version = validation.whole_number(body.get("version"))
    if version is None or version < 1:
        raise errors.Invalid("version", "is required: the album's current version, as last read")
    sent = frozenset(field for field in _EDITABLE if field in body)
    if not sent:
        raise errors.Invalid("", f"nothing to update: send at least one of {', '.join(_EDITABLE)}")
    cover = body.get("cover_photo_id")
    if cover is not None and (not isinstance(cover, str) or not is_ulid(cover)):
        raise errors.Invalid("cover_photo_id", "must be the id of a photo in this album, or null")
    return AlbumChanges(
        version=version,
        title=validation.text(body, "title", min_length=1, max_length=TITLE_MAX) if "title" in sent else None,
        description=validation.optional_text(body, "description", max_length=DESCRIPTION_MAX, multiline=True),
        cover_photo_id=cover,
        sent=sent,
    )


def parse_photo_ids(body: Any) -> list[str]:
    """1..50 photo ids, duplicates collapsed (first occurrence's order kept)."""
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, ("photo_ids",))
    raw = body.get("photo_ids")
    if not isinstance(raw, list) or not 1 <= len(raw) <= PHOTOS_PER_CALL:
        raise errors.Invalid("photo_ids", f"must be a list of 1 to {PHOTOS_PER_CALL} photo ids")
    if not all(isinstance(photo_id, str) and is_ulid(photo_id) for photo_id in raw):
        raise errors.Invalid("photo_ids", "each must be a photo id (26 characters)")
    return list(dict.fromkeys(raw))


def _role(body: Mapping[str, Any]) -> Role:
    raw = body.get("role")
    allowed = [role.value for role in MEMBER_ROLES]
    if raw not in allowed:
        raise errors.Invalid("role", f"must be one of {', '.join(allowed)}")
    return Role(raw)


def parse_new_member(body: Any) -> tuple[str, Role]:
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, ("username", "role"))
    username = body.get("username")
    if not isinstance(username, str) or not 1 <= len(username) <= USERNAME_MAX or not _USERNAME.match(username):
        raise errors.Invalid("username", f"must be a PhotoSky user name (1 to {USERNAME_MAX} characters, no spaces)")
    return username, _role(body)


def parse_role_change(body: Any) -> Role:
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, ("role",))
    return _role(body)


def parse_new_link(body: Any, *, now: datetime) -> NewLink:
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, ("expires_at", "password", "allow_download"))
    expires_at = None
    raw_expiry = body.get("expires_at")
    if raw_expiry is not None:
        expires_at = _future_time(raw_expiry, now)
    password = body.get("password")
    if password is not None:
        password = _password(password)
    allow_download = body.get("allow_download", False)
    if not isinstance(allow_download, bool):
        raise errors.Invalid("allow_download", "must be true or false")
    return NewLink(expires_at=expires_at, password=password, allow_download=allow_download)


def _future_time(raw: Any, now: datetime) -> str:
    problem = "must be an ISO-8601 time with a time zone, e.g. 2030-01-31T18:00:00Z"
    if not isinstance(raw, str) or len(raw) > 40:
        raise errors.Invalid("expires_at", problem)
    try:
        moment = datetime.fromisoformat(raw.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise errors.Invalid("expires_at", problem) from None
    if moment.tzinfo is None:
        raise errors.Invalid("expires_at", problem)
    if moment <= now:
        raise errors.Invalid("expires_at", "must be in the future")
    if moment > now + timedelta(days=LINK_EXPIRY_MAX_DAYS):
        raise errors.Invalid("expires_at", f"must be at most {LINK_EXPIRY_MAX_DAYS} days ahead")
    return iso_utc(moment.astimezone(UTC))


def _password(raw: Any) -> str:
    if not isinstance(raw, str) or not PASSWORD_MIN <= len(raw) <= PASSWORD_MAX:
        raise errors.Invalid("password", f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF for ch in raw):
        raise errors.Invalid("password", "must not contain control characters")
    return raw


def parse_unlock(body: Any) -> str:
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, ("password",))
    password = body.get("password")
    if not isinstance(password, str) or not 1 <= len(password) <= PASSWORD_MAX:
        raise errors.Invalid("password", f"must be 1 to {PASSWORD_MAX} characters")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in password):
        # A lone surrogate (JSON lets "\ud800" through) has no UTF-8 form to hash; no link's password has one.
        raise errors.Invalid("password", "is not valid Unicode text")
    return password


def parse_page_query(params: Mapping[str, str] | None) -> tuple[int, str | None]:
    """(limit, cursor) from `?limit=1..100&cursor=`: the same rules as every listing (photos.schemas.parse_page)."""
    return parse_page(params)


# --- responses ---------------------------------------------------------------------------------------------------


def _preview_pair(urls: DownloadUrls | None) -> dict[str, str | None] | None:
    return {"small": urls.small, "large": urls.large} if urls is not None else None


def album_out(album: Album, role: Role, cover: DownloadUrls | None) -> dict[str, Any]:
    return {
        "album_id": album.album_id,
        "owner_id": album.owner_id,
        "title": album.title,
        "description": album.description,
        "cover_photo_id": album.cover_photo_id,
        "cover": _preview_pair(cover),
        "photo_count": album.photo_count,
        "role": role.value,
        "created_at": album.created_at,
        "updated_at": album.updated_at,
        "version": album.version,
    }


def album_photo_out(entry: AlbumPhotoEntry, photo: Photo, urls: DownloadUrls, *, caller: str) -> dict[str, Any]:
    return {
        "photo_id": photo.photo_id,
        "owner_id": photo.owner_id,
        "title": photo.title,
        "description": photo.description,
        "width": photo.width,
        "height": photo.height,
        "taken_at": photo.taken_at,
        "created_at": photo.created_at,
        "added_at": entry.added_at,
        "mine": photo.owner_id == caller,
        "urls": {"original": urls.original, "large": urls.large, "small": urls.small},
    }


def public_photo_out(photo: Photo, urls: DownloadUrls) -> dict[str, Any]:
    """What a share link shows of a photo: never its owner, file name or tags."""
    return {
        "photo_id": photo.photo_id,
        "title": photo.title,
        "description": photo.description,
        "width": photo.width,
        "height": photo.height,
        "taken_at": photo.taken_at,
        "urls": {"original": urls.original, "large": urls.large, "small": urls.small},
    }


def public_album_out(album: Album, cover: DownloadUrls | None) -> dict[str, Any]:
    return {
        "title": album.title,
        "description": album.description,
        "photo_count": album.photo_count,
        "cover": _preview_pair(cover),
    }


def results_out(results: list[PhotoResult]) -> dict[str, Any]:
    return {
        "results": [
            {"photo_id": result.photo_id, "status": result.status}
            | ({"message": result.message} if result.message else {})
            for result in results
        ]
    }


def member_out(member: Member) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "username": member.username,
        "display_name": member.display_name,
        "role": member.role.value,
        "added_at": member.added_at,
    }


def link_out(link: Link, token: str | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "link_id": link.link_id,
        "album_id": link.album_id,
        "expires_at": link.expires_at,
        "has_password": link.has_password,
        "allow_download": link.allow_download,
        "created_at": link.created_at,
    }
    if token is not None:
        shown["token"] = token
    return shown
