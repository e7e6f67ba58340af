"""Where everything lives: every DynamoDB key and S3 object key is built here and nowhere else.

DynamoDB (one table, generic `PK`/`SK`, overloaded `GSI1`):

    PK = USER#<sub>   SK = PROFILE                      the user's profile
    PK = USER#<sub>   SK = USAGE                        the user's usage counters (created on first upload)
    PK = USER#<sub>   SK = PHOTO#<photo_id>             a photo; ids sort by time, so a descending query is newest first
         GSI1PK = PENDING#<shard 00..31>  GSI1SK = <upload deadline>#<sub>#<photo_id>
                                                        only while PENDING: the reconciler finds every stale upload,
                                                        however old, with one query per shard (no TTL, no look-back)
         GSI1PK = USER#<sub>#FAV  GSI1SK = PHOTO#<photo_id>       only while a favourite, READY and not trashed
         GSI1PK = PURGE#<shard 00..15>  GSI1SK = <purge at>#<sub>#<photo_id>   only while trashed: the scheduled
                                                        job purges what has been in the trash its full time
         GSI2PK = USER#<sub>#TAKEN  GSI2SK = <taken_at or created_at>#<photo_id>   while READY and not trashed:
                                                        the timeline, by when the photo was taken
         GSI2PK = USER#<sub>#TRASH  GSI2SK = <trashed_at>#<photo_id>   while trashed: the trash, latest first
    PK = USER#<sub>   SK = MONTH#<YYYY-MM>              how many READY, non-trashed photos were taken that month;
                                                        written in the same transaction as the photos it counts
    PK = USER#<sub>   SK = SHA256#<hex>                 which library photo holds these bytes (at most one: the
                                                        worker's claim is conditional, so two copies never settle)
    PK = USER#<sub>   SK = ACCOUNT_DELETION             while the account is being deleted
         GSI1PK = CLEANUP#<shard>  GSI1SK = <since>#<sub>#ACCOUNT   so the scheduled job finishes what a request began
    PK = USER#<sub>   SK = PHOTOTAG#<photo_id>#<tag>    one per tag, keys only: a tag listing reads the photos
         GSI1PK = USER#<sub>#TAG#<tag>  GSI1SK = PHOTO#<photo_id>          themselves, so an edit rewrites no copies
    PK = USER#<sub>   SK = RATE#<window start>          the user's write counter for one rate-limit window; TTL
                                                        removes it (it and LINK#/FAIL# carry expires_at_epoch)
    PK = USER#<sub>   SK = ALBUM#<album_id>             the user's access to an album: the owner's and each member's
                                                        (role); GET /albums starts from these
    PK = USER#<sub>   SK = PHOTOALBUM#<photo_id>#<album_id>   keys only: which albums a photo is in, read strongly
                                                        consistently when the photo is deleted

    PK = ALBUM#<id>   SK = ALBUM                        the album: title, cover, counts, version
         GSI1PK = CLEANUP#<shard 00..15>  GSI1SK = <since>#<album_id>#ALBUM   only while the album is being deleted
    PK = ALBUM#<id>   SK = MEMBER#<sub>                 a member and their role
         GSI1PK = CLEANUP#<shard>  GSI1SK = <since>#<album_id>#<sub>   only while the member's photos leave
    PK = ALBUM#<id>   SK = PHOTO#<photo_id>             a photo in the album (its owner and when it was added)
         GSI1PK = ALBUM#<id>#PHOTOS  GSI1SK = <added_at>#<photo_id>   the album's photos, most recently added first
    PK = ALBUM#<id>   SK = LINK#<link_id>               a share link as the owner lists it (no token)
    PK = LINK#<sha256(token) hex>  SK = LINK            the same link as a visitor finds it, by its token's hash
    PK = LINK#<sha256(token) hex>  SK = FAIL#<window>   wrong passwords tried in one window; TTL removes it

    PK = USER#<sub>   SK = WS#<connection_id>           one of the user's open WebSocket connections (connected_at):
                                                        a push Queries `begins_with(SK, "WS#")` for every connection
                                                        of one user; TTL (expires_at_epoch, past API Gateway's 2 h
                                                        limit) removes any whose $disconnect never came
    PK = WS#<connection_id>  SK = WS                    the same connection by its id (user_id): $disconnect and
                                                        messages arrive with the id only; written and deleted in one
                                                        transaction with the item above, with the same TTL

S3 (one bucket):

    uploads/<sub>/<photo_id>                  what the client POSTs; the worker verifies it
    originals/<sub>/<photo_id>                the verified original
    previews/<sub>/<photo_id>/large.webp      fits 1024×1024
    previews/<sub>/<photo_id>/small.webp      fits 256×256
                                              (`.jpg` for photos stored before WebP previews: the photo item's
                                              `preview_format` says which; absent means JPEG)

Keys never leave the adapters: clients see `user_id` and `photo_id`, never `PK`/`SK` or object keys.
"""

from __future__ import annotations

import zlib

from chalicelib.photos.models import PreviewFormat

PROFILE_SK = "PROFILE"
USAGE_SK = "USAGE"
PHOTO_PREFIX = "PHOTO#"
PHOTO_TAG_PREFIX = "PHOTOTAG#"
RATE_PREFIX = "RATE#"
ALBUM_PREFIX = "ALBUM#"
ALBUM_SK = "ALBUM"
MEMBER_PREFIX = "MEMBER#"
LINK_PREFIX = "LINK#"
LINK_SK = "LINK"
FAIL_PREFIX = "FAIL#"
WS_PREFIX = "WS#"
WS_SK = "WS"
PHOTO_ALBUM_PREFIX = "PHOTOALBUM#"
# Albums being deleted and members leaving spread over this many index partitions, like pending uploads.
CLEANUP_SHARDS = 16
MONTH_PREFIX = "MONTH#"
SHA256_PREFIX = "SHA256#"
ACCOUNT_DELETION_SK = "ACCOUNT_DELETION"
ACCOUNT_WHAT = "ACCOUNT"
GSI1 = "GSI1"
GSI2 = "GSI2"
# Trashed photos wait for their purge in this many index partitions, as pending uploads do.
PURGE_SHARDS = 16
# PENDING photos spread over this many index partitions (by photo id), so a burst of uploads never heats one. Every
# upload writes its shard twice (in when declared, out when settled) and the sort keys only grow (deadlines), so
# DynamoDB cannot split a shard for heat: at docs/SCALE.md's target of 5,000 uploads/s that is 10,000 index writes/s,
# 313 per shard here (31% of a partition's 1,000), where the earlier 16 shards would take 63%. Only ever raise it: the
# reconciler queries shards 0..N-1, so an item placed under a smaller count (a shard below it) is still found, and
# stays there until its photo settles; lowering it would strand the items in the shards no longer queried.
PENDING_SHARDS = 32
UPLOADS_PREFIX = "uploads/"
# A photo's previews: fits 1024×1024, fits 256×256.
PREVIEW_SIZES = ("large", "small")

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


def favorites_index_pk(owner_id: str) -> str:
    return f"USER#{owner_id}#FAV"


def purge_shard(photo_id: str) -> int:
    return zlib.crc32(photo_id.encode()) % PURGE_SHARDS


def purge_index_pk(shard: int) -> str:
    return f"PURGE#{shard:02d}"


def purge_index_sk(purge_at: str, owner_id: str, photo_id: str) -> str:
    """Sorted by purge time, so `GSI1SK < <now>` finds exactly the photos whose time in the trash is up."""
    return f"{purge_at}#{owner_id}#{photo_id}"


def taken_index_pk(owner_id: str) -> str:
    return f"USER#{owner_id}#TAKEN"


def trash_index_pk(owner_id: str) -> str:
    return f"USER#{owner_id}#TRASH"


def time_index_sk(when: str, photo_id: str) -> str:
    return f"{when}#{photo_id}"


def month_key(owner_id: str, month: str) -> Key:
    return {"PK": {"S": user_pk(owner_id)}, "SK": {"S": f"{MONTH_PREFIX}{month}"}}


def sha256_key(owner_id: str, digest: str) -> Key:
    return {"PK": {"S": user_pk(owner_id)}, "SK": {"S": f"{SHA256_PREFIX}{digest}"}}


def account_deletion_key(user_id: str) -> Key:
    return {"PK": {"S": user_pk(user_id)}, "SK": {"S": ACCOUNT_DELETION_SK}}


def user_object_prefixes(user_id: str) -> tuple[str, ...]:
    """Every prefix under which the bucket may hold a user's objects."""
    return (f"{UPLOADS_PREFIX}{user_id}/", originals_prefix(user_id), previews_prefix(user_id))


def originals_prefix(owner_id: str) -> str:
    return f"originals/{owner_id}/"


def previews_prefix(owner_id: str) -> str:
    return f"previews/{owner_id}/"


def photo_previews_prefix(owner_id: str, photo_id: str) -> str:
    """Every preview of one photo, whatever its size (a shared URL's signature covers exactly these)."""
    return f"{previews_prefix(owner_id)}{photo_id}/"


def album_pk(album_id: str) -> str:
    return f"{ALBUM_PREFIX}{album_id}"


def album_key(album_id: str) -> Key:
    return {"PK": {"S": album_pk(album_id)}, "SK": {"S": ALBUM_SK}}


def member_key(album_id: str, user_id: str) -> Key:
    return {"PK": {"S": album_pk(album_id)}, "SK": {"S": f"{MEMBER_PREFIX}{user_id}"}}


def album_access_key(user_id: str, album_id: str) -> Key:
    """The user's entry for an album they own or belong to, in their own partition."""
    return {"PK": {"S": user_pk(user_id)}, "SK": {"S": f"{ALBUM_PREFIX}{album_id}"}}


def album_photo_key(album_id: str, photo_id: str) -> Key:
    return {"PK": {"S": album_pk(album_id)}, "SK": {"S": photo_sk(photo_id)}}


def album_photos_index_pk(album_id: str) -> str:
    return f"{album_pk(album_id)}#PHOTOS"


def album_photos_index_sk(added_at: str, photo_id: str) -> str:
    return f"{added_at}#{photo_id}"


def photo_album_key(owner_id: str, photo_id: str, album_id: str) -> Key:
    """The photo's record of one album it is in, in its owner's partition next to the photo."""
    return {"PK": {"S": user_pk(owner_id)}, "SK": {"S": f"{PHOTO_ALBUM_PREFIX}{photo_id}#{album_id}"}}


def photo_albums_prefix(photo_id: str) -> str:
    return f"{PHOTO_ALBUM_PREFIX}{photo_id}#"


def link_key(album_id: str, link_id: str) -> Key:
    return {"PK": {"S": album_pk(album_id)}, "SK": {"S": f"{LINK_PREFIX}{link_id}"}}


def link_token_pk(token_hash: str) -> str:
    return f"{LINK_PREFIX}{token_hash}"


def link_token_key(token_hash: str) -> Key:
    return {"PK": {"S": link_token_pk(token_hash)}, "SK": {"S": LINK_SK}}


def link_failures_key(token_hash: str, window_start: int) -> Key:
    return {"PK": {"S": link_token_pk(token_hash)}, "SK": {"S": f"{FAIL_PREFIX}{window_start}"}}


def connection_key(user_id: str, connection_id: str) -> Key:
    """One of the user's WebSocket connections, in their partition (found with the user's other connections)."""
    return {"PK": {"S": user_pk(user_id)}, "SK": {"S": f"{WS_PREFIX}{connection_id}"}}


def connection_owner_key(connection_id: str) -> Key:
    """A connection by its id alone: whose it is."""
    return {"PK": {"S": f"{WS_PREFIX}{connection_id}"}, "SK": {"S": WS_SK}}


def cleanup_shard(album_id: str) -> int:
    return zlib.crc32(album_id.encode()) % CLEANUP_SHARDS


def cleanup_index_pk(shard: int) -> str:
    return f"CLEANUP#{shard:02d}"


def cleanup_index_sk(since: str, album_id: str, what: str) -> str:
    """Sorted by when the clean-up began, so the sweeper takes only those left behind (`GSI1SK < <cutoff>`)."""
    return f"{since}#{album_id}#{what}"


def upload_object(owner_id: str, photo_id: str) -> str:
    return f"{UPLOADS_PREFIX}{owner_id}/{photo_id}"


def original_object(owner_id: str, photo_id: str) -> str:
    return f"{originals_prefix(owner_id)}{photo_id}"


def preview_object(owner_id: str, photo_id: str, size: str, preview_format: PreviewFormat) -> str:
    """One preview of a photo, in the format the photo records (`Photo.preview_format`)."""
    return f"{photo_previews_prefix(owner_id, photo_id)}{size}.{preview_format.extension}"


def preview_objects(owner_id: str, photo_id: str) -> tuple[str, ...]:
    """Every name a photo's previews may have, in every format: what a delete removes, whichever it has (a photo
    whose upload an older worker began may even have both)."""
    return tuple(
        preview_object(owner_id, photo_id, size, preview_format)
        for preview_format in PreviewFormat
        for size in PREVIEW_SIZES
    )


def photo_objects(owner_id: str, photo_id: str) -> tuple[str, ...]:
    """Every object a photo may have in the bucket, whatever its state."""
    return (
        upload_object(owner_id, photo_id),
        original_object(owner_id, photo_id),
        *preview_objects(owner_id, photo_id),
    )


def parse_upload_object(key: str) -> tuple[str, str] | None:
    """(owner_id, photo_id) of an uploads/ object key, or None for any other key."""
    if not key.startswith(UPLOADS_PREFIX):
        return None
    parts = key[len(UPLOADS_PREFIX) :].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]
