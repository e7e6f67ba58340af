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


class PreviewFormat(StrEnum):
    """How a photo's previews are encoded, recorded when it becomes READY. Photos stored before WebP previews record
    none: theirs are JPEG, and stay so (no backfill), so every reader takes a missing format as JPEG."""

    JPEG = "jpeg"
    WEBP = "webp"

    @classmethod
    def recorded(cls, value: str | None) -> PreviewFormat:
        """The format an item records (a photo, an album's entry or cover): JPEG when it records none."""
        return cls.JPEG if value is None else cls(value)

    @property
    def extension(self) -> str:
        """The previews' object names end in this (`large.jpg`, `large.webp`)."""
        return "jpg" if self is PreviewFormat.JPEG else "webp"

    @property
    def content_type(self) -> str:
        return f"image/{self.value}"


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
    favorite: bool = False
    # Set while the photo is in the trash: when it went there and when the scheduled job purges it.
    trashed_at: str | None = None
    purge_at: str | None = None
    # SHA-256 of the verified original (hex), once READY; a REJECTED copy names the library photo it duplicates.
    sha256: str | None = None
    duplicate_of: str | None = None
    # The albums the photo left when it was trashed ("<album_id>#<added_at>"), so a restore puts it back in its
    # place; emptied by the restore (or, for a photo in more albums than one transaction holds, by its retry).
    album_return: tuple[str, ...] = ()
    # Set (with the photo in the trash, purge due now) while it is deleted for good: its objects go, then the item;
    # a restore is refused, and a crash in between leaves it to the scheduled purge.
    purging: bool = False
    # Written by this version or later, so counted in its month and placed in the indexes by its state. A photo
    # stored before the library existed is not, until `python -m ops.backfill` (or its next write) makes it so.
    indexed: bool = True
    # The format of its previews (READY photos; the worker records it with READY). JPEG for photos stored before
    # WebP previews, whose items have none.
    preview_format: PreviewFormat = PreviewFormat.JPEG

    @property
    def counts_against_quota(self) -> bool:
        # A rejected upload's usage is released when it is rejected; a trashed photo counts until it is purged.
        return self.status is not PhotoStatus.REJECTED

    @property
    def trashed(self) -> bool:
        return self.trashed_at is not None

    @property
    def in_library(self) -> bool:
        """What the timeline counts and duplicates are checked against: a verified photo not in the trash."""
        return self.status is PhotoStatus.READY and not self.trashed

    @property
    def sort_time(self) -> str:
        """When the photo was taken, or uploaded if its file does not say: the timeline's order."""
        return self.taken_at or self.created_at

    @property
    def month(self) -> str:
        return self.sort_time[:7]


@dataclass(frozen=True)
class NewPhoto:
    filename: str
    content_type: str
    size_bytes: int
    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    # What the client says the file's SHA-256 is: only used to warn of a duplicate before the upload.
    sha256: str | None = None


@dataclass(frozen=True)
class PhotoChanges:
    version: int
    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None
    favorite: bool | None = None
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


class BatchAction(StrEnum):
    TRASH = "trash"
    RESTORE = "restore"
    DELETE = "delete"
    FAVORITE = "favorite"
    UNFAVORITE = "unfavorite"
    ADD_TAGS = "add_tags"
    REMOVE_TAGS = "remove_tags"


BATCH_PHOTOS_MAX = 50


@dataclass(frozen=True)
class BatchResult:
    photo_id: str
    status: str  # "done", "not_found", "conflict" or "invalid"
    message: str | None = None


@dataclass(frozen=True)
class ListQuery:
    """What GET /photos asks for: the order, and the filters that narrow it."""

    sort: str = "uploaded"  # or "taken"
    tag: str | None = None
    favorite: bool = False
    from_day: str | None = None  # YYYY-MM-DD, inclusive, on the sort's time
    to_day: str | None = None

    @property
    def scope(self) -> str:
        """Everything a cursor is bound to: one from another listing is refused."""
        parts = (self.sort, self.tag or "", "fav" if self.favorite else "", self.from_day or "", self.to_day or "")
        return "\x00".join(parts)
