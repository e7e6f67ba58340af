"""User profiles and their storage accounting."""

from __future__ import annotations

from dataclasses import dataclass

DISPLAY_NAME_MAX = 64
BIO_MAX = 500


@dataclass(frozen=True)
class Profile:
    user_id: str
    display_name: str
    bio: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Usage:
    photos: int = 0
    bytes: int = 0
    # Uploads started and not yet settled (READY, REJECTED or released): capped so nobody can hold the whole
    # quota as reservations without sending a byte.
    pending: int = 0
    # What the trash holds; included in photos and bytes above, since trashed photos count until purged.
    trash_photos: int = 0
    trash_bytes: int = 0


@dataclass(frozen=True)
class Quota:
    photos: int
    bytes: int
    # Uploads that may be outstanding (started, not yet settled) at once.
    pending: int


@dataclass(frozen=True)
class Account:
    """What the owner sees of themselves: the profile, what they use and what they may use."""

    profile: Profile
    usage: Usage
    quota: Quota


@dataclass(frozen=True)
class NewProfile:
    display_name: str
    bio: str | None = None


@dataclass(frozen=True)
class ProfileChanges:
    """A partial update; `bio_set` distinguishes "clear the bio" from "leave it alone"."""

    display_name: str | None = None
    bio: str | None = None
    bio_set: bool = False
