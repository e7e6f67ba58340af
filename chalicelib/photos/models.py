"""Photos: what a user uploaded, what state it is in, and what they said about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# What clients may declare. The worker sniffs the real type and holds the file to the declaration.
ALLOWED_CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "image/heic"})
# Common spellings clients send for the same types.
CONTENT_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/heif": "image/heic"}

FILENAME_MAX = 255
TITLE_MAX = 200
DESCRIPTION_MAX = 2000
TAG_MAX = 40
TAGS_MAX = 20
# Optimistic writes that lose a race re-read and try again this many times before telling the client to retry.
WRITE_ATTEMPTS = 4


class PhotoStatus(StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class Photo:
    photo_id: str
    owner_id: str
    status: PhotoStatus
    filename: str
    content_type: str
    size_bytes: int
    created_at: str
    updated_at: str
    # When the presigned POST stops working; after it (plus a grace period) a PENDING photo is abandoned.
    upload_expires_at: str
    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    width: int | None = None
    height: int | None = None
    taken_at: str | None = None
    rejection_reason: str | None = None
    # `version` changes only when the owner edits; clients send it back to PATCH. `revision` changes on every
    # write (the worker's too) and guards read-modify-write, so the worker never makes a client's version stale.
    version: int = 1
    revision: int = 1

    @property
    def counts_against_quota(self) -> bool:
        # A rejected upload's usage is released when it is rejected.
        return self.status is not PhotoStatus.REJECTED


@dataclass(frozen=True)
class NewPhoto:
    filename: str
    content_type: str
    size_bytes: int
    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PhotoChanges:
    version: int
    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None
    # Which of the optional fields were sent (None in a field also means "clear it").
    sent: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class StoredObject:
    """What the bucket says of an object, before reading it."""

    size: int
    content_type: str | None


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    fields: dict[str, str]
    expires_at: str


@dataclass(frozen=True)
class DownloadUrls:
    original: str | None
    large: str | None
    small: str | None


@dataclass(frozen=True)
class Page:
    items: list[Photo]
    next_cursor: str | None
