"""Request parsing and response shapes for the profile routes."""

from __future__ import annotations

from typing import Any

from chalicelib import errors, validation
from chalicelib.users.models import BIO_MAX, DISPLAY_NAME_MAX, Account, NewProfile, Profile, ProfileChanges

_PROFILE_FIELDS = ("display_name", "bio")


def parse_new_profile(body: Any) -> NewProfile:
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, _PROFILE_FIELDS)
    return NewProfile(
        display_name=validation.text(body, "display_name", min_length=1, max_length=DISPLAY_NAME_MAX),
        bio=validation.optional_text(body, "bio", max_length=BIO_MAX, multiline=True),
    )


def parse_profile_changes(body: Any) -> ProfileChanges:
    body = validation.require_object(body)
    validation.reject_unknown_fields(body, _PROFILE_FIELDS)
    if not body:
        raise errors.Invalid("", f"nothing to update: send at least one of {', '.join(_PROFILE_FIELDS)}")
    display_name = None
    if "display_name" in body:
        display_name = validation.text(body, "display_name", min_length=1, max_length=DISPLAY_NAME_MAX)
    return ProfileChanges(
        display_name=display_name,
        bio=validation.optional_text(body, "bio", max_length=BIO_MAX, multiline=True),
        bio_set="bio" in body,
    )


def public_profile_out(profile: Profile) -> dict[str, Any]:
    return {
        "user_id": profile.user_id,
        "display_name": profile.display_name,
        "bio": profile.bio,
        "created_at": profile.created_at,
    }


def account_out(account: Account) -> dict[str, Any]:
    return {
        **public_profile_out(account.profile),
        "updated_at": account.profile.updated_at,
        "usage": {
            "photos": account.usage.photos,
            "bytes": account.usage.bytes,
            "pending": account.usage.pending,
            "trash": {"photos": account.usage.trash_photos, "bytes": account.usage.trash_bytes},
        },
        "quota": {"photos": account.quota.photos, "bytes": account.quota.bytes, "pending": account.quota.pending},
    }
