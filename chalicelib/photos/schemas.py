"""Request parsing and response shapes for the photo routes."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from chalicelib import errors, validation
from chalicelib.photos.models import (
    ALLOWED_CONTENT_TYPES,
    CONTENT_TYPE_ALIASES,
    DESCRIPTION_MAX,
    FILENAME_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
    DownloadUrls,
    NewPhoto,
    Photo,
    PhotoChanges,
    PresignedUpload,
)

_NEW_PHOTO_FIELDS = ("filename", "content_type", "size_bytes", "title", "description", "tags")
_EDITABLE_FIELDS = ("title", "description", "tags")
_LIMIT = re.compile(r"^[0-9]{1,3}\Z")
LIST_LIMIT_DEFAULT = 30
LIST_LIMIT_MAX = 100


def normalize_tag(raw: Any, field: str = "tags") -> str:
    """A tag as stored and compared: caseless (NFKC + case folding), runs of white space collapsed.

    A tag is 1 to TAG_MAX characters both as sent and as stored: letters and digits of any script, with the marks
    that belong to them (a Devanagari vowel sign, a combining accent), inner spaces, '.', '-' and '_'; it starts with
    a letter or digit and ends with a letter, digit or mark. '#' and '/' never reach a key.
    """
    if not isinstance(raw, str):
        raise errors.Invalid(field, "each tag must be a string")
    tag = " ".join(validation.caseless(raw).split())
    if not 1 <= len(raw) <= TAG_MAX or not 1 <= len(tag) <= TAG_MAX:
        raise errors.Invalid(field, f"each tag must be 1 to {TAG_MAX} characters")
    if not _is_tag(tag):
        raise errors.Invalid(field, f"{tag!r} is not a valid tag (letters, digits, spaces, '.', '-', '_')")
    return tag


def _is_tag(tag: str) -> bool:
    def kind(ch: str) -> str:
        return unicodedata.category(ch)[0]  # L letter, M mark, N number, ...

    inner_ok = all(kind(ch) in "LMN" or ch in " .-_" for ch in tag)
    return inner_ok and kind(tag[0]) in "LN" and kind(tag[-1]) in "LMN"


def _tags(body: Mapping[str, Any]) -> tuple[str, ...]:
    raw = body.get("tags")
    if raw is None:  # null is "no tags", as for title and description: none on POST, all removed on PATCH
        return ()
    if not isinstance(raw, list):
        raise errors.Invalid("tags", "must be a list of strings")
    tags = tuple(dict.fromkeys(normalize_tag(tag) for tag in raw))  # de-duplicated, first spelling's order kept
    if len(tags) > TAGS_MAX:
        raise errors.Invalid("tags", f"at most {TAGS_MAX} tags")
    return tags


def _content_type(body: Mapping[str, Any]) -> str:
    raw = body.get("content_type")
    if not isinstance(raw, str) or not raw.strip():
        raise errors.Invalid("content_type", "is required (for example image/jpeg)")
    content_type = raw.split(";")[0].strip().lower()
    content_type = CONTENT_TYPE_ALIASES.get(content_type, content_type)
    if content_type not in ALLOWED_CONTENT_TYPES:
        allowed = ", ".join(sorted(ALLOWED_CONTENT_TYPES))
        raise errors.UnsupportedType(f"content_type {raw.strip()!r} is not allowed (allowed: {allowed})")
    return content_type


def _size(body: Mapping[str, Any], max_upload_bytes: int) -> int:
    size = validation.whole_number(body.get("size_bytes"))
    if size is None:
        raise errors.Invalid("size_bytes", "must be a whole number of bytes")
    if size <= 0:
        raise errors.Invalid("size_bytes", "must be positive")
    if size > max_upload_bytes:
        raise errors.TooLarge(f"size_bytes: {size} bytes is over the {max_upload_bytes} byte limit")
    return size


def parse_new_photo(body: Any, *, max_upload_bytes: int) -> NewPhoto:
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, _NEW_PHOTO_FIELDS)
    filename = validation.text(body, "filename", min_length=1, max_length=FILENAME_MAX)
    if "/" in filename or "\\" in filename:
        raise errors.Invalid("filename", "must be a file name, not a path")
    return NewPhoto(
        filename=filename,
        content_type=_content_type(body),
        size_bytes=_size(body, max_upload_bytes),
        title=validation.optional_text(body, "title", max_length=TITLE_MAX),
        description=validation.optional_text(body, "description", max_length=DESCRIPTION_MAX, multiline=True),
        tags=_tags(body),
    )


def parse_photo_changes(body: Any) -> PhotoChanges:
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, (*_EDITABLE_FIELDS, "version"))
    version = validation.whole_number(body.get("version"))
    if version is None or version < 1:
        raise errors.Invalid("version", "is required: the photo's current version, as last read")
    sent = frozenset(field for field in _EDITABLE_FIELDS if field in body)
    if not sent:
        raise errors.Invalid("", f"nothing to update: send at least one of {', '.join(_EDITABLE_FIELDS)}")
    return PhotoChanges(
        version=version,
        title=validation.optional_text(body, "title", max_length=TITLE_MAX),
        description=validation.optional_text(body, "description", max_length=DESCRIPTION_MAX, multiline=True),
        tags=_tags(body) if "tags" in sent else None,
        sent=sent,
    )


def parse_page(params: Mapping[str, str] | None, *, also: tuple[str, ...] = ()) -> tuple[int, str | None]:
    """(limit, cursor) from `?limit=1..100&cursor=`, for every listing; `also` names its other parameters."""
    params = params or {}
    allowed = sorted({"limit", "cursor", *also})
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise errors.Invalid(unknown[0], f"unknown query parameter (allowed: {', '.join(allowed)})")
    raw_limit = params.get("limit", str(LIST_LIMIT_DEFAULT))
    # ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses.
    if not _LIMIT.match(raw_limit) or not 1 <= int(raw_limit) <= LIST_LIMIT_MAX:
        raise errors.Invalid("limit", f"must be a whole number from 1 to {LIST_LIMIT_MAX}")
    return int(raw_limit), params.get("cursor") or None


def parse_list_query(params: Mapping[str, str] | None) -> tuple[int, str | None, str | None]:
    """(limit, cursor, tag) from `?limit=1..100&cursor=&tag=`."""
    limit, cursor = parse_page(params, also=("tag",))
    # An empty `?tag=` is a 400 like any other invalid tag (the spec's minLength 1), not "no filter".
    tag = normalize_tag(params["tag"], "tag") if params and "tag" in params else None
    return limit, cursor, tag


def photo_out(photo: Photo, urls: DownloadUrls) -> dict[str, Any]:
    return {
        "photo_id": photo.photo_id,
        "owner_id": photo.owner_id,
        "status": photo.status.value,
        "title": photo.title,
        "description": photo.description,
        "tags": list(photo.tags),
        "filename": photo.filename,
        "content_type": photo.content_type,
        "size_bytes": photo.size_bytes,
        "width": photo.width,
        "height": photo.height,
        "taken_at": photo.taken_at,
        "created_at": photo.created_at,
        "updated_at": photo.updated_at,
        "version": photo.version,
        "rejection_reason": photo.rejection_reason,
        "urls": {"original": urls.original, "large": urls.large, "small": urls.small},
    }


def upload_out(upload: PresignedUpload) -> dict[str, Any]:
    return {"url": upload.url, "fields": upload.fields, "expires_at": upload.expires_at}
