"""Where everything lives: every DynamoDB key and S3 object key is built here and nowhere else.

DynamoDB (one table, generic `PK`/`SK`, overloaded `GSI1`):

    PK = USER#<sub>   SK = PROFILE                      the user's profile
    PK = USER#<sub>   SK = USAGE                        the user's usage counters (created on first upload)
    PK = USER#<sub>   SK = PHOTO#<photo_id>             a photo; ids sort by time, so a descending query is newest first
         GSI1PK = PENDING#<shard 00..15>  GSI1SK = <upload deadline>#<sub>#<photo_id>
                                                        only while PENDING: the reconciler finds every stale upload,
                                                        however old, with one query per shard (no TTL, no look-back)
    PK = USER#<sub>   SK = PHOTOTAG#<photo_id>#<tag>    one per tag, keys only: a tag listing reads the photos
         GSI1PK = USER#<sub>#TAG#<tag>  GSI1SK = PHOTO#<photo_id>          themselves, so an edit rewrites no copies
    PK = USER#<sub>   SK = RATE#<window start>          the user's write counter for one rate-limit window; TTL
                                                        removes it (the only items that carry expires_at_epoch)

S3 (one bucket):

    uploads/<sub>/<photo_id>                  what the client POSTs; the worker verifies it
    originals/<sub>/<photo_id>                the verified original
    previews/<sub>/<photo_id>/large.jpg       fits 1024×1024
    previews/<sub>/<photo_id>/small.jpg       fits 256×256

Keys never leave the adapters: clients see `user_id` and `photo_id`, never `PK`/`SK` or object keys.
"""

from __future__ import annotations

import zlib

PROFILE_SK = "PROFILE"
USAGE_SK = "USAGE"
PHOTO_PREFIX = "PHOTO#"
PHOTO_TAG_PREFIX = "PHOTOTAG#"
RATE_PREFIX = "RATE#"
GSI1 = "GSI1"
# PENDING photos spread over this many index partitions (by photo id), so a burst of uploads never heats one.
PENDING_SHARDS = 16
UPLOADS_PREFIX = "uploads/"

Key = dict[str, dict[str, str]]


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def profile_key(user_id: str) -> Key:
    return {"PK": {"S": user_pk(user_id)}, "SK": {"S": PROFILE_SK}}


def usage_key(user_id: str) -> Key:
    return {"PK": {"S": user_pk(user_id)}, "SK": {"S": USAGE_SK}}


def photo_sk(photo_id: str) -> str:
    return f"{PHOTO_PREFIX}{photo_id}"


def photo_key(owner_id: str, photo_id: str) -> Key:
    return {"PK": {"S": user_pk(owner_id)}, "SK": {"S": photo_sk(photo_id)}}


def photo_tag_key(owner_id: str, photo_id: str, tag: str) -> Key:
    return {"PK": {"S": user_pk(owner_id)}, "SK": {"S": f"{PHOTO_TAG_PREFIX}{photo_id}#{tag}"}}


def tag_index_pk(owner_id: str, tag: str) -> str:
    return f"USER#{owner_id}#TAG#{tag}"


def rate_key(user_id: str, window_start: int) -> Key:
    return {"PK": {"S": user_pk(user_id)}, "SK": {"S": f"{RATE_PREFIX}{window_start}"}}


def pending_shard(photo_id: str) -> int:
    return zlib.crc32(photo_id.encode()) % PENDING_SHARDS


def pending_index_pk(shard: int) -> str:
    return f"PENDING#{shard:02d}"


def pending_index_sk(deadline: str, owner_id: str, photo_id: str) -> str:
    """Sorted by upload deadline, so `GSI1SK < <cutoff>` finds exactly the uploads past it."""
    return f"{deadline}#{owner_id}#{photo_id}"


def upload_object(owner_id: str, photo_id: str) -> str:
    return f"{UPLOADS_PREFIX}{owner_id}/{photo_id}"


def original_object(owner_id: str, photo_id: str) -> str:
    return f"originals/{owner_id}/{photo_id}"


def preview_object(owner_id: str, photo_id: str, size: str) -> str:
    return f"previews/{owner_id}/{photo_id}/{size}.jpg"


def photo_objects(owner_id: str, photo_id: str) -> tuple[str, ...]:
    """Every object a photo may have in the bucket, whatever its state."""
    return (
        upload_object(owner_id, photo_id),
        original_object(owner_id, photo_id),
        preview_object(owner_id, photo_id, "large"),
        preview_object(owner_id, photo_id, "small"),
    )


def parse_upload_object(key: str) -> tuple[str, str] | None:
    """(owner_id, photo_id) of an uploads/ object key, or None for any other key."""
    if not key.startswith(UPLOADS_PREFIX):
        return None
    parts = key[len(UPLOADS_PREFIX) :].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]
