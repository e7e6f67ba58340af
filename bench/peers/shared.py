"""What both peers share with each other (not with the frameworks): validated input models and error mapping."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from chalicelib import errors
from chalicelib.photos import schemas as photo_schemas
from chalicelib.photos.models import (
    ALLOWED_CONTENT_TYPES,
    CONTENT_TYPE_ALIASES,
    DESCRIPTION_MAX,
    FILENAME_MAX,
    TAGS_MAX,
    TITLE_MAX,
    NewPhoto,
)
from chalicelib.web import ERROR_STATUS


def error_status(error: errors.DomainError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) for a domain error, as chalicelib.web.error_response answers it."""
    if isinstance(error, errors.Unauthenticated):
        return 401, {"message": "Unauthorized"}, {}
    # The same table PhotoSky's views use, so every framework answers each error alike (Retry-After included:
    # a rate-limited write and too many pending uploads say when to try again).
    status, code = next(mapped for kind, mapped in ERROR_STATUS.items() if isinstance(error, kind))
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
    return status, {"Code": code, "Message": str(error)}, headers


class NewPhotoIn(BaseModel):
    """POST /photos, with the limits chalicelib.photos.schemas enforces."""

    model_config = ConfigDict(extra="forbid")

    filename: Annotated[str, StringConstraints(min_length=1, max_length=FILENAME_MAX, pattern=r"^[^/\\]+$")]
    content_type: Annotated[str, StringConstraints(min_length=1)]
    size_bytes: Annotated[int, Field(strict=True, gt=0)]
    title: Annotated[str | None, StringConstraints(max_length=TITLE_MAX)] = None
    description: Annotated[str | None, StringConstraints(max_length=DESCRIPTION_MAX)] = None
    tags: Annotated[list[str], Field(max_length=TAGS_MAX * 4)] = []

    @field_validator("tags")
    @classmethod
    def _normalised_tags(cls, raw: list[str]) -> list[str]:
        tags = list(dict.fromkeys(photo_schemas.normalize_tag(tag) for tag in raw))
        if len(tags) > TAGS_MAX:
            raise ValueError(f"at most {TAGS_MAX} tags")
        return tags

    def to_domain(self, max_upload_bytes: int) -> NewPhoto:
        content_type = self.content_type.split(";")[0].strip().lower()
        content_type = CONTENT_TYPE_ALIASES.get(content_type, content_type)
        if content_type not in ALLOWED_CONTENT_TYPES:
            raise errors.UnsupportedType(f"content_type {self.content_type!r} is not allowed")
        if self.size_bytes > max_upload_bytes:
            raise errors.TooLarge(f"size_bytes: {self.size_bytes} bytes is over the {max_upload_bytes} byte limit")
        return NewPhoto(
            filename=self.filename,
            content_type=content_type,
            size_bytes=self.size_bytes,
            title=self.title,
            description=self.description,
            tags=tuple(self.tags),
        )
