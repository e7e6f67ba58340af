"""Request parsing and response shapes for the photo routes."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from chalicelib import errors, validation
from chalicelib.photos.models import (
    ALLOWED_CONTENT_TYPES,
    BATCH_PHOTOS_MAX,
    CONTENT_TYPE_ALIASES,
    DESCRIPTION_MAX,
    FILENAME_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
    BatchAction,
    BatchResult,
    DownloadUrls,
    ListQuery,
    NewPhoto,
    Photo,
    PhotoChanges,
    PresignedUpload,
)

_NEW_PHOTO_FIELDS = ("filename", "content_type", "size_bytes", "title", "description", "tags", "sha256")
_EDITABLE_FIELDS = ("title", "description", "tags", "favorite")
_LIMIT = re.compile(r"^[0-9]{1,3}\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_BATCH_FIELDS = ("action", "photo_ids", "tags")
_TAGGING_ACTIONS = (BatchAction.ADD_TAGS, BatchAction.REMOVE_TAGS)
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
        sha256=_sha256(body),
    )


def _sha256(body: Mapping[str, Any]) -> str | None:
    raw = body.get("sha256")
    if raw is None:
        return None
    if not isinstance(raw, str) or not _SHA256.match(raw):
        raise errors.Invalid("sha256", "must be the file's SHA-256 as 64 lower-case hex digits")
    return raw


def _favorite(body: Mapping[str, Any]) -> bool | None:
    if "favorite" not in body:
        return None
    if not isinstance(body["favorite"], bool):
        raise errors.Invalid("favorite", "must be true or false")
    return body["favorite"]


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
        favorite=_favorite(body),
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


def parse_list_query(params: Mapping[str, str] | None) -> tuple[int, str | None, ListQuery]:
    """(limit, cursor, query) from `?limit=1..100&cursor=&tag=&favorite=true&sort=uploaded|taken&from=&to=`."""
    limit, cursor = parse_page(params, also=("tag", "favorite", "sort", "from", "to"))
    params = params or {}
    # An empty `?tag=` is a 400 like any other invalid tag (the spec's minLength 1), not "no filter".
    tag = normalize_tag(params["tag"], "tag") if "tag" in params else None
    if params.get("favorite", "true") != "true":
        raise errors.Invalid("favorite", "the only filter is favorite=true")
    sort = params.get("sort", "uploaded")
    if sort not in ("uploaded", "taken"):
        raise errors.Invalid("sort", "must be uploaded or taken")
    if tag is not None and sort == "taken":
        raise errors.Invalid("sort", "a tag's photos are listed by upload time only; leave out sort=taken")
    from_day, to_day = _day(params, "from"), _day(params, "to")
    if from_day and to_day and from_day > to_day:
        raise errors.Invalid("from", "must not be after to")
    return limit, cursor, ListQuery(sort=sort, tag=tag, favorite="favorite" in params, from_day=from_day, to_day=to_day)


def parse_no_query(params: Mapping[str, str] | None) -> None:
    """A route that takes no query parameters refuses any, as every listing refuses unknown ones."""
    if params:
        raise errors.Invalid(sorted(params)[0], "unknown query parameter (this route takes none)")


def _day(params: Mapping[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        if not _DAY.match(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise errors.Invalid(name, "must be a date as YYYY-MM-DD") from None


def parse_batch(body: Any) -> tuple[BatchAction, tuple[str, ...], tuple[str, ...]]:
    """(action, photo_ids, tags) of a POST /photos/batch."""
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, _BATCH_FIELDS)
    try:
        action = BatchAction(body.get("action"))
    except ValueError:
        raise errors.Invalid("action", f"must be one of {', '.join(a.value for a in BatchAction)}") from None
    raw_ids = body.get("photo_ids")
    if not isinstance(raw_ids, list) or not 1 <= len(raw_ids) <= BATCH_PHOTOS_MAX:
        raise errors.Invalid("photo_ids", f"must be a list of 1 to {BATCH_PHOTOS_MAX} photo ids")
    if not all(isinstance(photo_id, str) and 1 <= len(photo_id) <= 64 for photo_id in raw_ids):
        raise errors.Invalid("photo_ids", "each must be a photo id")
    if len(set(raw_ids)) != len(raw_ids):
        raise errors.Invalid("photo_ids", "must not repeat an id")
    if action in _TAGGING_ACTIONS:
        tags = _tags(body)
        if not tags:
            raise errors.Invalid("tags", f"{action.value} needs 1 to {TAGS_MAX} tags")
    elif "tags" in body:
        raise errors.Invalid("tags", f"only add_tags and remove_tags take tags, not {action.value}")
    else:
        tags = ()
    return action, tuple(raw_ids), tags


def parse_permanent(params: Mapping[str, str] | None) -> bool:
    """`?permanent=true|false` of DELETE /photos/{id}; nothing else is accepted."""
    params = params or {}
    unknown = sorted(set(params) - {"permanent"})
    if unknown:
        raise errors.Invalid(unknown[0], "unknown query parameter (allowed: permanent)")
    raw = params.get("permanent", "false")
    if raw not in ("true", "false"):
        raise errors.Invalid("permanent", "must be true or false")
    return raw == "true"


def batch_out(results: list[BatchResult]) -> dict[str, Any]:
    return {
        "results": [
            {"photo_id": result.photo_id, "status": result.status}
            | ({"message": result.message} if result.message else {})
            for result in results
        ]
    }


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
        "favorite": photo.favorite,
        "trashed_at": photo.trashed_at,
        "purge_at": photo.purge_at,
        "sha256": photo.sha256,
        "duplicate_of": photo.duplicate_of,
        "urls": {"original": urls.original, "large": urls.large, "small": urls.small},
    }


def upload_out(upload: PresignedUpload) -> dict[str, Any]:
    return {"url": upload.url, "fields": upload.fields, "expires_at": upload.expires_at}
