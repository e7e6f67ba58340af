"""What config.json's `limits` must say: the API's own constants, spelled out once for every test that checks a
config.json (the dev stack's, publish_web's), independently of the code that builds it."""

from __future__ import annotations

from typing import Any

from chalicelib.albums import models as albums
from chalicelib.config import Settings
from chalicelib.photos.models import (
    ALLOWED_CONTENT_TYPES,
    BATCH_PHOTOS_MAX,
    DESCRIPTION_MAX,
    FILENAME_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
)
from chalicelib.users.models import BIO_MAX, DISPLAY_NAME_MAX


def expected_limits(max_upload_bytes: int, trash_days: int = Settings.trash_days) -> dict[str, Any]:
    return {
        "max_upload_bytes": max_upload_bytes,
        "content_types": sorted(ALLOWED_CONTENT_TYPES),
        "filename_max": FILENAME_MAX,
        "title_max": TITLE_MAX,
        "description_max": DESCRIPTION_MAX,
        "tag_max": TAG_MAX,
        "tags_max": TAGS_MAX,
        "display_name_max": DISPLAY_NAME_MAX,
        "bio_max": BIO_MAX,
        "album_title_max": albums.TITLE_MAX,
        "album_description_max": albums.DESCRIPTION_MAX,
        "album_photos_per_call": albums.PHOTOS_PER_CALL,
        "album_members_max": albums.MEMBERS_MAX,
        "link_password_min": albums.PASSWORD_MIN,
        "link_password_max": albums.PASSWORD_MAX,
        "batch_photos": BATCH_PHOTOS_MAX,
        "trash_days": trash_days,
    }
