"""`python -m ops.invariants`: check that PhotoSky's table and bucket agree with each other.

What must always hold, whatever crashed, was retried or raced (each violation names one of these):

- ``ready-missing-object``: a READY photo has its original and both previews, in the format it records
  (``preview_format``: ``<size>.webp``; an item recording none, stored before WebP previews, has ``<size>.jpg``).
- ``orphan-object``: every object under ``originals/`` and ``previews/`` belongs to a photo item that is not
  REJECTED (a PENDING photo may have objects: the worker writes them before it marks the photo READY), and a READY
  photo has no previews in a format other than its own.
- ``stale-upload``: an object under ``uploads/`` older than the grace window belongs to a PENDING photo. Younger
  ones may be in flight (the photo was deleted while the client was still uploading, the event is queued).
- ``usage-mismatch``: each user's usage counters equal the count and the byte sum of their photos that count
  against the quota (all but REJECTED, so trashed ones too), the number of their PENDING photos, and the count and
  byte sum of their trashed photos (``trash_photos``, ``trash_bytes``); a user with no such photo has zero usage.
- ``quota-exceeded``: usage never passes the quota (when quotas are given).
- ``tag-copy-mismatch``: each photo has exactly one tag copy per tag, holding the keys of the tag index and
  nothing else (a listing reads the photo itself), and no tag copy outlives its photo.
- ``unreachable-pending``: every PENDING photo is in the pending index under its shard and upload deadline (the
  reconciler finds it however old it is), no other photo is, and no photo carries the TTL attribute (TTL would
  remove it without releasing its usage).
- ``photo-index-mismatch``: each photo is in the indexes its state puts it in, and in no other: a READY photo out of
  the trash in its owner's timeline (GSI2 ``USER#<sub>#TAKEN``, by taken time, else upload time) and, if a favourite,
  in their favourites (GSI1 ``USER#<sub>#FAV``); a trashed photo in the purge index (GSI1 ``PURGE#<shard>``, by purge
  time) and its owner's trash (GSI2 ``USER#<sub>#TRASH``, by time trashed); a REJECTED photo in none (a PENDING
  photo's GSI1 is ``unreachable-pending``'s).
- ``unindexed-photo``: every photo carries the ``indexed`` mark. A photo stored before the library features is in
  none of their indexes and counted in no month until ``python -m ops.backfill`` (or its next write) rewrites it; it
  is judged by neither ``photo-index-mismatch`` nor ``month-count-mismatch`` meanwhile.
- ``photo-state-mismatch``: a trashed photo is READY, with ``trashed_at`` and a ``purge_at`` not before it; nothing
  outside the trash has ``purge_at`` or the ``purging`` mark; only a READY photo has a ``sha256`` (64 lower-case hex
  digits); only a REJECTED photo has ``duplicate_of``, and one rejected as a copy names the photo it copies.
- ``month-count-mismatch``: each ``MONTH#<YYYY-MM>`` counter equals the number of its owner's READY photos out of
  the trash taken that month (``taken_at``, else ``created_at``); none is negative (a zero counter may remain).
- ``hash-claim-mismatch``: each ``SHA256#<hex>`` claim names a READY photo out of the trash, of the same owner,
  whose ``sha256`` is that hex; every such photo with a ``sha256`` holds its claim.
- ``duplicate-in-library``: no two of one owner's READY photos out of the trash have the same ``sha256``.
- ``trashed-photo-in-album``: a photo in the trash is in no album (no entry in it, no copy beside the photo): it
  left them, and every share link showing them, when it was trashed.
- ``unfinished-album-return``: a photo out of the trash has no albums left to return to (``album_return``) for
  longer than the clean-up grace (counted from its ``updated_at``). Within it, a restore (or a trash of a photo in
  more albums than one transaction holds) may be between its transactions; past it, the photo is missing from
  albums it was in, and only the owner's retry (a restore) puts it back: nothing scheduled finishes it.
- ``overdue-purge``: no trashed photo (being purged or not) is still there longer than the clean-up grace after its
  ``purge_at``: the scheduled purge should have removed it. A photo being purged (``purging``) may have lost some
  of its objects meanwhile: it is not ``ready-missing-object``.
- ``account-deletion-mismatch``: while an account is being deleted (``ACCOUNT_DELETION``), its usage carries the
  same ``deleting_since`` (no upload can start) and it has no profile; usage carries ``deleting_since`` only then.
- ``album-count-mismatch``: an album's ``photo_count`` equals its photo entries and ``member_count`` its members
  that are not leaving (not judged while the album is being deleted: its clean-up removes them without counting).
- ``album-photo-copy-mismatch``: every photo entry of an album has its copy beside the photo (keys only) and every
  copy its entry, the entry is in the album's photo index under its time added (the listing reads it there), and
  it records its photo's preview format (the cover's URLs are built from it).
- ``album-photo-not-ready``: every photo in an album exists, is its entry owner's and is READY.
- ``album-photo-stranger``: every photo in an album (not being deleted) is its owner's or a member's who is marked
  as having contributed, so a departure takes that member's photos with them.
- ``album-cover-mismatch``: a cover is null or a photo in the album, with the owner and preview format its entry
  names; an album without a cover records no cover preview format (``cover_preview``) either (not judged while the
  album is being deleted).
- ``orphan-album-item``: every member, photo entry, access entry, link and link token belongs to an existing album.
- ``album-access-mismatch``: the owner has an access entry (role owner), each member not leaving has one with their
  role, nobody else has one; the owner is no member; a member's role is contributor or viewer.
- ``link-pair-mismatch``: a share link is two items, the album's ``LINK#<id>`` and the token's ``LINK#<hash>``,
  holding the same fields.
- ``unreachable-cleanup``: an album being deleted, a member leaving and an account being deleted are in the clean-up
  index under their shard and start time (the scheduled job finds them however old), and nothing else is.
- ``overdue-cleanup``: no deletion or departure (an album's, a member's, an account's) began longer ago than the
  clean-up grace: the scheduled job (which takes album clean-ups older than ``CLEANUP_GRACE``, and every account
  deletion) should have finished it. While an account is being deleted, its objects may outlive its photos (they
  go in a later step): they are not ``orphan-object`` or ``stale-upload``.
- ``ws-connection-pair-mismatch``: a live WebSocket connection is two items written and deleted in one transaction,
  ``USER#<sub>``/``WS#<id>`` (``ws_connection``: ``connection_id``, ``connected_at``) and ``WS#<id>``/``WS``
  (``ws_connection_owner``: ``user_id``): both there, naming each other, with the same ``expires_at_epoch``. One
  alone is never pushed to (a push reads the first) or never found by ``$disconnect`` (which reads the second).
- ``ws-connection-orphan``: the user an owner item names holds something in the table besides connections and
  write-rate counters; one who holds nothing is a deleted account (or none), whose connection outlived it.
- ``ws-connection-ttl``: both items carry ``expires_at_epoch``, at most ``CONNECTION_TTL_SECONDS`` (API Gateway's 2 h
  limit and 10 minutes) after ``connected_at``: an item without it is never removed, and one expiring later is
  pushed to after API Gateway closed it.
- ``ws-connections-over-limit``: no user holds more live connections than ``PHOTOSKY_WS_MAX_CONNECTIONS`` (a
  connect writes before it evicts, so for an instant one more may exist: the check is for a settled table).

  Of the connection rules, an item past its ``expires_at_epoch`` is judged by ``ws-connection-ttl`` only: API
  Gateway closed it, and DynamoDB's TTL removes items within days, not at once, and each of the two on its own. An
  account being deleted keeps its connections until the deletion's last step (``overdue-cleanup`` reports one that
  never gets there); a whole pair whose user holds nothing else is not judged (someone who signed in and has not
  written anything yet looks the same as a deleted account whose client reconnected with its unexpired token).
- ``unparseable-item`` / ``unknown-object``: anything in the table or bucket that PhotoSky would not have written
  (a write-rate counter and a share link's wrong-password counter must carry their expiry).

``remains_of`` lists whatever of one user is left anywhere (items in their partition but write-rate counters, album
items and WebSocket connection owner items naming them, objects under their prefixes): after their account's
deletion finished, nothing.

It reads everything (a Scan and a full listing): a tool for the dev stack, tests and an operator's audit, never for
a request path. Against the dev stack: ``python -m ops.invariants`` (reads ``.devstack/outputs.json``); against any
account: ``python -m ops.invariants --table T --bucket B`` with the usual AWS environment.
Exits 0 when every invariant holds, 1 when any is violated, 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import keys
from chalicelib.albums import items as album_items
from chalicelib.albums.models import MEMBER_ROLES, Album, AlbumPhotoEntry, Membership, Role
from chalicelib.albums.service import CLEANUP_GRACE
from chalicelib.config import Settings
from chalicelib.photos.models import Photo, PhotoStatus, PreviewFormat
from chalicelib.photos.repository import photo_from_item
from chalicelib.realtime.connections import CONNECTION_TTL_SECONDS

# How long after it is due the scheduled job (app.release_abandoned_uploads) has surely run the sweeper: it starts
# every 5 minutes and a run lasts up to 270 s, so 15 minutes leaves a missed run of room.
SWEEP_INTERVAL = timedelta(minutes=15)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The presigned POST lives 15 minutes and the worker gets 15 more before an upload counts as abandoned.
DEFAULT_UPLOAD_GRACE = timedelta(minutes=30)
PREVIEW_SIZES = keys.PREVIEW_SIZES
# Every name a preview may have: its size, then its format's extension.
_PREVIEW_NAMES = frozenset(f"{size}.{fmt.extension}" for size in PREVIEW_SIZES for fmt in PreviewFormat)


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}: {self.detail}"


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    users: int = 0
    photos: int = 0
    objects: int = 0
    albums: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, rule: str, subject: str, detail: str) -> None:
        self.violations.append(Violation(rule, subject, detail))

    def summary(self) -> str:
        verdict = "all invariants hold" if self.ok else f"{len(self.violations)} violation(s)"
        return (
            f"checked {self.users} user(s), {self.photos} photo(s), {self.albums} album(s), "
            f"{self.objects} object(s): {verdict}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "users": self.users,
            "photos": self.photos,
            "objects": self.objects,
            "albums": self.albums,
            "violations": [{"rule": v.rule, "subject": v.subject, "detail": v.detail} for v in self.violations],
        }


@dataclass(frozen=True)
class Quota:
    photos: int
    bytes: int
    pending: int | None = None


@dataclass(frozen=True)
class _Usage:
    photos: int = 0
    bytes: int = 0
    pending: int = 0
    trash_photos: int = 0
    trash_bytes: int = 0

    def __str__(self) -> str:
        return (
            f"{self.photos} photo(s), {self.bytes} byte(s), {self.pending} pending, "
            f"{self.trash_photos} trashed photo(s), {self.trash_bytes} trashed byte(s)"
        )


# The attributes of a tag copy: the keys of the item and of the tag index, and the entity.
_TAG_COPY_ATTRIBUTES = frozenset({"PK", "SK", "entity", "GSI1PK", "GSI1SK"})
_TTL_ATTRIBUTE = "expires_at_epoch"
_USAGE_COUNTERS = ("photos", "bytes", "pending", "trash_photos", "trash_bytes")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# How the worker words a rejection for a copy of a photo already in the library (the spec's wording).
_DUPLICATE_REASON = "a copy of this photo is already in your library"
# A photo's copy of its place in an album holds its keys and entity only.
_PHOTO_ALBUM_ATTRIBUTES = frozenset({"PK", "SK", "entity"})


@dataclass
class _TableState:
    photos: dict[tuple[str, str], Photo] = field(default_factory=dict)
    tag_copies: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    usage: dict[str, _Usage] = field(default_factory=dict)
    # Users whose usage says their account is being deleted (since when), and those with a deletion mark (its item).
    usage_deleting: dict[str, str] = field(default_factory=dict)
    deletions: dict[str, dict[str, Any]] = field(default_factory=dict)
    profiles: set[str] = field(default_factory=set)
    # (owner_id, "YYYY-MM") -> the month's counter; (owner_id, hex digest) -> the photo id its claim names.
    months: dict[tuple[str, str], int] = field(default_factory=dict)
    claims: dict[tuple[str, str], str] = field(default_factory=dict)
    raw_photos: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)
    # Photo items that could not be read: already reported as unparseable-item. Their objects, tag copies and their
    # owner's usage cannot be judged without them, so they are not reported again under rules they did not break.
    unreadable: set[tuple[str, str]] = field(default_factory=set)
    # Albums and what hangs off them, each as read (parsed) and as stored (for the keys and indexes it carries).
    albums: dict[str, Album] = field(default_factory=dict)
    raw_albums: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, dict[str, Membership]] = field(default_factory=lambda: defaultdict(dict))
    raw_members: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    entries: dict[str, dict[str, AlbumPhotoEntry]] = field(default_factory=lambda: defaultdict(dict))
    raw_entries: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # (owner_id, photo_id, album_id) of each copy beside a photo, and the copy.
    photo_albums: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    # (user_id, album_id) -> the role the user's access entry gives.
    access: dict[tuple[str, str], Role] = field(default_factory=dict)
    # (album_id, link_id) -> the album's link item; token hash -> the token's item.
    links: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    link_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Albums whose own item, or anything of whose partition, could not be read: already reported as
    # unparseable-item; what depends on them (counts, access, orphans) is not judged again.
    unreadable_albums: set[str] = field(default_factory=set)
    unreadable_link_tokens: set[str] = field(default_factory=set)
    # Users one of whose counters, claims or deletion mark could not be read (reported as unparseable-item).
    unreadable_users: set[str] = field(default_factory=set)
    # WebSocket connections: (user_id, connection_id) -> the item in the user's partition; connection_id -> its
    # owner item; ids of either that could not be read (reported as unparseable-item, their pair not judged).
    connections: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    connection_owners: dict[str, dict[str, Any]] = field(default_factory=dict)
    unreadable_connections: set[str] = field(default_factory=set)
    # Users with any item but connections and write-rate counters (what a finished account deletion leaves).
    holders: set[str] = field(default_factory=set)


def _scan(client: DynamoDBClient, table: str) -> Iterator[dict[str, Any]]:
    # Strongly consistent, so a check right after a write sees it.
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        yield from page.get("Items", [])


def _read_table(client: DynamoDBClient, table: str, report: Report) -> _TableState:
    state = _TableState()
    for item in _scan(client, table):
        pk, sk = item.get("PK", {}).get("S", ""), item.get("SK", {}).get("S", "")
        if pk.startswith("USER#") and sk.startswith(keys.WS_PREFIX):
            _read_connection(state, report, item, pk, sk)
        elif pk.startswith("USER#"):
            if not sk.startswith(keys.RATE_PREFIX):
                state.holders.add(pk.removeprefix("USER#"))
            _read_user_item(state, report, item, pk, sk)
        elif pk.startswith(keys.ALBUM_PREFIX):
            _read_album_item(state, report, item, pk, sk)
        elif pk.startswith(keys.LINK_PREFIX):
            _read_link_token_item(state, report, item, pk, sk)
        elif pk.startswith(keys.WS_PREFIX):
            _read_connection_owner(state, report, item, pk, sk)
        else:
            report.add(
                "unparseable-item",
                f"{pk}/{sk}",
                "partition key is not USER#<sub>, ALBUM#<id>, LINK#<hash> or WS#<connection id>",
            )
    return state


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise ValueError(problem)


def _entity(item: dict[str, Any], expected: str) -> None:
    _require(item.get("entity", {}).get("S") == expected, f"entity is not {expected!r}")


def _read_user_item(state: _TableState, report: Report, item: dict[str, Any], pk: str, sk: str) -> None:
    user_id = pk.removeprefix("USER#")
    state.users.add(user_id)
    try:
        if sk == keys.USAGE_SK:
            _read_usage(state, user_id, item)
        elif sk == keys.PROFILE_SK:
            state.profiles.add(user_id)
        elif sk.startswith(keys.PHOTO_PREFIX):
            photo = photo_from_item(item)
            _require(photo.photo_id == sk.removeprefix(keys.PHOTO_PREFIX), "photo_id is not the sort key's")
            _since(photo.updated_at, "updated_at")
            _since(photo.trashed_at, "trashed_at")
            _since(photo.purge_at, "purge_at")
            state.photos[(user_id, photo.photo_id)] = photo
            state.raw_photos[(user_id, photo.photo_id)] = item
        elif sk.startswith(keys.PHOTO_TAG_PREFIX):
            photo_id, _, tag = sk.removeprefix(keys.PHOTO_TAG_PREFIX).partition("#")
            state.tag_copies[(user_id, photo_id)][tag] = item
        elif sk.startswith(keys.RATE_PREFIX):
            int(sk.removeprefix(keys.RATE_PREFIX))
            int(item["count"]["N"])
            int(item[_TTL_ATTRIBUTE]["N"])  # a rate window must expire, or the table keeps it for ever
        elif sk.startswith(keys.ALBUM_PREFIX):
            album_id = sk.removeprefix(keys.ALBUM_PREFIX)
            _entity(item, "album_access")
            _require(item["album_id"]["S"] == album_id, "album_id is not the sort key's")
            state.access[(user_id, album_id)] = Role(item["role"]["S"])
        elif sk.startswith(keys.PHOTO_ALBUM_PREFIX):
            photo_id, album_id = _photo_album_ids(sk)
            state.photo_albums[(user_id, photo_id, album_id)] = item
        elif not _read_library_item(state, user_id, item, sk):
            report.add("unparseable-item", f"{pk}/{sk}", "unknown sort key")
    except (KeyError, ValueError) as e:
        report.add("unparseable-item", f"{pk}/{sk}", f"missing or malformed attribute: {e}")
        if sk.startswith(keys.PHOTO_PREFIX):
            state.unreadable.add((user_id, sk.removeprefix(keys.PHOTO_PREFIX)))
        elif sk.startswith(keys.ALBUM_PREFIX):
            state.unreadable_albums.add(sk.removeprefix(keys.ALBUM_PREFIX))
        elif sk in (keys.USAGE_SK, keys.ACCOUNT_DELETION_SK) or sk.startswith((keys.MONTH_PREFIX, keys.SHA256_PREFIX)):
            # Counters, claims and the deletion mark are judged per user: not without the one that cannot be read.
            state.unreadable_users.add(user_id)


def _read_usage(state: _TableState, user_id: str, item: dict[str, Any]) -> None:
    counters = {name: int(item.get(name, {}).get("N", "0")) for name in _USAGE_COUNTERS}
    deleting_since = item.get("deleting_since", {}).get("S")
    _since(deleting_since, "deleting_since")
    state.usage[user_id] = _Usage(**counters)
    if deleting_since is not None:
        state.usage_deleting[user_id] = deleting_since


def _read_library_item(state: _TableState, user_id: str, item: dict[str, Any], sk: str) -> bool:
    """A month's counter, a claim on a photo's bytes or an account's deletion mark; False for any other item."""
    if sk.startswith(keys.MONTH_PREFIX):
        month = sk.removeprefix(keys.MONTH_PREFIX)
        _require(_MONTH.fullmatch(month) is not None, "sort key is not MONTH#<YYYY-MM>")
        _entity(item, "month")
        state.months[(user_id, month)] = int(item["count"]["N"])
    elif sk.startswith(keys.SHA256_PREFIX):
        digest = sk.removeprefix(keys.SHA256_PREFIX)
        _require(_SHA256.fullmatch(digest) is not None, "sort key is not SHA256#<64 lower-case hex digits>")
        _entity(item, "photo_hash")
        state.claims[(user_id, digest)] = item["photo_id"]["S"]
    elif sk == keys.ACCOUNT_DELETION_SK:
        _entity(item, "account_deletion")
        _require(item["user_id"]["S"] == user_id, "user_id is not the partition key's")
        _require("since" in item, "no since")
        _since(item["since"]["S"], "since")
        state.deletions[user_id] = item
    else:
        return False
    return True


def _read_connection(state: _TableState, report: Report, item: dict[str, Any], pk: str, sk: str) -> None:
    """`USER#<sub>`/`WS#<connection_id>`: one of the user's WebSocket connections."""
    user_id, connection_id = pk.removeprefix("USER#"), sk.removeprefix(keys.WS_PREFIX)
    state.users.add(user_id)
    try:
        _entity(item, "ws_connection")
        _require(bool(connection_id), "no connection id in the sort key")
        _require(item["connection_id"]["S"] == connection_id, "connection_id is not the sort key's")
        int(item["connected_at"]["N"])
        _expiry(item)
        state.connections[(user_id, connection_id)] = item
    except (KeyError, ValueError) as e:
        report.add("unparseable-item", f"{pk}/{sk}", f"missing or malformed attribute: {e}")
        state.unreadable_connections.add(connection_id)


def _read_connection_owner(state: _TableState, report: Report, item: dict[str, Any], pk: str, sk: str) -> None:
    """`WS#<connection_id>`/`WS`: whose connection it is (what `$disconnect`, which knows only the id, reads)."""
    connection_id = pk.removeprefix(keys.WS_PREFIX)
    try:
        if sk != keys.WS_SK:
            report.add("unparseable-item", f"{pk}/{sk}", "unknown sort key")
            return
        _entity(item, "ws_connection_owner")
        _require(bool(connection_id), "no connection id in the partition key")
        _require(bool(item["user_id"]["S"]), "user_id is empty")
        _expiry(item)
        state.connection_owners[connection_id] = item
    except (KeyError, ValueError) as e:
        report.add("unparseable-item", f"{pk}/{sk}", f"missing or malformed attribute: {e}")
        state.unreadable_connections.add(connection_id)


def _expiry(item: dict[str, Any]) -> int | None:
    """The item's TTL (epoch seconds), None if it has none; a TTL that is not a number is malformed."""
    value = item.get(_TTL_ATTRIBUTE)
    return None if value is None else int(value["N"])


def _photo_album_ids(sort_key: str) -> tuple[str, str]:
    """(photo_id, album_id) of a PHOTOALBUM#<photo_id>#<album_id> sort key."""
    parts = sort_key.removeprefix(keys.PHOTO_ALBUM_PREFIX).split("#")
    _require(len(parts) == 2 and all(parts), "sort key is not PHOTOALBUM#<photo_id>#<album_id>")
    return parts[0], parts[1]


def _since(value: str | None, name: str) -> None:
    """A clean-up's start must be a time, or the sweeper's `GSI1SK < cutoff` would misjudge its age."""
    if value is not None:
        try:
            _parse_time(value)
        except ValueError:
            raise ValueError(f"{name} is not an ISO-8601 time") from None


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


def _read_album_item(state: _TableState, report: Report, item: dict[str, Any], pk: str, sk: str) -> None:
    album_id = pk.removeprefix(keys.ALBUM_PREFIX)
    try:
        if sk == keys.ALBUM_SK:
            _entity(item, "album")
            album = album_items.album_from_item(item)
            _require(album.album_id == album_id, "album_id is not the partition key's")
            _since(album.deleting_since, "deleting_since")
            state.albums[album_id] = album
            state.raw_albums[album_id] = item
        elif sk.startswith(keys.MEMBER_PREFIX):
            _entity(item, "album_member")
            membership = album_items.membership_from_item(item)
            _require(membership.album_id == album_id, "album_id is not the partition key's")
            _require(membership.user_id == sk.removeprefix(keys.MEMBER_PREFIX), "user_id is not the sort key's")
            _since(membership.leaving_since, "leaving_since")
            state.members[album_id][membership.user_id] = membership
            state.raw_members[(album_id, membership.user_id)] = item
        elif sk.startswith(keys.PHOTO_PREFIX):
            _entity(item, "album_photo")
            entry = album_items.album_photo_from_item(item)
            _require(entry.album_id == album_id, "album_id is not the partition key's")
            _require(entry.photo_id == sk.removeprefix(keys.PHOTO_PREFIX), "photo_id is not the sort key's")
            state.entries[album_id][entry.photo_id] = entry
            state.raw_entries[(album_id, entry.photo_id)] = item
        elif sk.startswith(keys.LINK_PREFIX):
            _entity(item, "album_link")
            link = album_items.link_from_item(item)
            _require(link.album_id == album_id, "album_id is not the partition key's")
            _require(link.link_id == sk.removeprefix(keys.LINK_PREFIX), "link_id is not the sort key's")
            state.links[(album_id, link.link_id)] = item
        else:
            report.add("unparseable-item", f"{pk}/{sk}", "unknown sort key")
            state.unreadable_albums.add(album_id)
    except (KeyError, ValueError) as e:
        report.add("unparseable-item", f"{pk}/{sk}", f"missing or malformed attribute: {e}")
        state.unreadable_albums.add(album_id)


def _read_link_token_item(state: _TableState, report: Report, item: dict[str, Any], pk: str, sk: str) -> None:
    token_hash = pk.removeprefix(keys.LINK_PREFIX)
    try:
        _require(len(token_hash) == 64 and all(ch in "0123456789abcdef" for ch in token_hash), "not a SHA-256 key")
        if sk == keys.LINK_SK:
            _entity(item, "link_token")
            link = album_items.link_from_item(item)
            _require(link.token_hash == token_hash, "token_hash is not the partition key's")
            state.link_tokens[token_hash] = item
        elif sk.startswith(keys.FAIL_PREFIX):
            _entity(item, "link_failures")
            int(sk.removeprefix(keys.FAIL_PREFIX))
            int(item["count"]["N"])
            int(item[_TTL_ATTRIBUTE]["N"])  # a wrong-password window must expire too
        else:
            report.add("unparseable-item", f"{pk}/{sk}", "unknown sort key")
    except (KeyError, ValueError) as e:
        report.add("unparseable-item", f"{pk}/{sk}", f"missing or malformed attribute: {e}")
        if sk == keys.LINK_SK:
            state.unreadable_link_tokens.add(token_hash)


def _list_objects(client: S3Client, bucket: str) -> Iterator[tuple[str, datetime]]:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            yield obj["Key"], obj["LastModified"]


def _photo_of_object(key: str) -> tuple[str, tuple[str, str]] | None:
    """(kind, (owner_id, photo_id)) for a key PhotoSky writes, None for anything else."""
    parts = key.split("/")
    if parts[0] == "uploads" and len(parts) == 3 and all(parts):
        return "upload", (parts[1], parts[2])
    if parts[0] == "originals" and len(parts) == 3 and all(parts):
        return "original", (parts[1], parts[2])
    if parts[0] == "previews" and len(parts) == 4 and parts[3] in _PREVIEW_NAMES:
        return "preview", (parts[1], parts[2])
    return None


def _check_tag_copies(state: _TableState, report: Report) -> None:
    for (owner_id, photo_id), copies in state.tag_copies.items():
        photo = state.photos.get((owner_id, photo_id))
        subject = f"{owner_id}/{photo_id}"
        if photo is None:
            if (owner_id, photo_id) not in state.unreadable:
                report.add("tag-copy-mismatch", subject, f"tag copies {sorted(copies)} outlive their photo")
            continue
        if set(copies) != set(photo.tags):
            report.add("tag-copy-mismatch", subject, f"copies for {sorted(copies)}, photo has {sorted(photo.tags)}")
        for tag, item in copies.items():
            extra = sorted(set(item) - _TAG_COPY_ATTRIBUTES)
            if extra:
                report.add("tag-copy-mismatch", subject, f"copy {tag!r} holds more than keys: {extra}")
            index = (item.get("GSI1PK", {}).get("S"), item.get("GSI1SK", {}).get("S"))
            expected = (keys.tag_index_pk(owner_id, tag), keys.photo_sk(photo_id))
            if index != expected:
                report.add("tag-copy-mismatch", subject, f"copy {tag!r} is indexed as {index}, not {expected}")
    for (owner_id, photo_id), photo in state.photos.items():
        if photo.tags and (owner_id, photo_id) not in state.tag_copies:
            report.add("tag-copy-mismatch", f"{owner_id}/{photo_id}", f"no tag copies for {list(photo.tags)}")


def _index_of(item: dict[str, Any]) -> tuple[str | None, str | None]:
    return item.get("GSI1PK", {}).get("S"), item.get("GSI1SK", {}).get("S")


def _check_album_entries(state: _TableState, report: Report) -> None:
    """Each photo entry: its copy beside the photo, its place in the album's photo index, its photo, its owner."""
    for album_id, entries in state.entries.items():
        album = state.albums.get(album_id)
        for photo_id, entry in entries.items():
            subject = f"{album_id}/{photo_id}"
            if (entry.owner_id, photo_id, album_id) not in state.photo_albums:
                report.add("album-photo-copy-mismatch", subject, f"no copy beside the photo under {entry.owner_id}")
            index = _index_of(state.raw_entries[(album_id, photo_id)])
            expected = (keys.album_photos_index_pk(album_id), keys.album_photos_index_sk(entry.added_at, photo_id))
            if index != expected:
                report.add("album-photo-copy-mismatch", subject, f"entry is indexed as {index}, not {expected}")
            _check_entry_photo(state, report, subject, entry)
            if album is not None and album.deleting_since is None and album_id not in state.unreadable_albums:
                _check_entry_owner(state, report, subject, album, entry)


def _check_entry_photo(state: _TableState, report: Report, subject: str, entry: AlbumPhotoEntry) -> None:
    photo_key = (entry.owner_id, entry.photo_id)
    if photo_key in state.unreadable:
        return
    photo = state.photos.get(photo_key)
    if photo is None:
        report.add("album-photo-not-ready", subject, f"no photo {entry.photo_id} of {entry.owner_id}")
    elif photo.status is not PhotoStatus.READY:
        report.add("album-photo-not-ready", subject, f"the photo is {photo.status.value}")
    elif photo.preview_format is not entry.preview_format:
        report.add(
            "album-photo-copy-mismatch",
            subject,
            f"entry says its previews are {entry.preview_format.value}, the photo's are {photo.preview_format.value}",
        )


def _check_entry_owner(state: _TableState, report: Report, subject: str, album: Album, entry: AlbumPhotoEntry) -> None:
    """A member's photos leave the album with them only if their membership says they contributed (a deletion in
    progress removes members before photos, so it is not judged)."""
    if entry.owner_id == album.owner_id:
        return
    membership = state.members.get(album.album_id, {}).get(entry.owner_id)
    if membership is None:
        report.add("album-photo-stranger", subject, f"its owner {entry.owner_id} is no member")
    elif not membership.contributed:
        report.add("album-photo-stranger", subject, f"its owner {entry.owner_id} is not marked as a contributor")


def _check_photo_album_copies(state: _TableState, report: Report) -> None:
    for (owner_id, photo_id, album_id), item in state.photo_albums.items():
        subject = f"{album_id}/{photo_id}"
        entry = state.entries.get(album_id, {}).get(photo_id)
        if entry is None and album_id not in state.unreadable_albums:
            report.add("album-photo-copy-mismatch", subject, f"copy under {owner_id} has no entry in the album")
        elif entry is not None and entry.owner_id != owner_id:
            report.add("album-photo-copy-mismatch", subject, f"copy under {owner_id}, entry says {entry.owner_id}")
        extra = sorted(set(item) - _PHOTO_ALBUM_ATTRIBUTES)
        if extra:
            report.add("album-photo-copy-mismatch", subject, f"copy under {owner_id} holds more than keys: {extra}")


def _check_album_counts_and_covers(state: _TableState, report: Report) -> None:
    for album_id, album in state.albums.items():
        if album.deleting_since is not None or album_id in state.unreadable_albums:
            continue  # its clean-up removes entries and members without counting them, and leaves the cover
        entries = state.entries.get(album_id, {})
        staying = [m for m in state.members.get(album_id, {}).values() if m.leaving_since is None]
        if album.photo_count != len(entries):
            report.add("album-count-mismatch", album_id, f"photo_count {album.photo_count}, {len(entries)} entries")
        if album.member_count != len(staying):
            report.add(
                "album-count-mismatch", album_id, f"member_count {album.member_count}, {len(staying)} members staying"
            )
        cover = entries.get(album.cover_photo_id) if album.cover_photo_id is not None else None
        # A photo joining an album without a cover writes its own cover_preview where none is: one left behind
        # would stand beside the next cover.
        cover_preview = state.raw_albums[album_id].get("cover_preview", {}).get("S")
        if album.cover_photo_id is None and album.cover_owner_id is not None:
            report.add("album-cover-mismatch", album_id, f"no cover photo, but cover_owner_id {album.cover_owner_id}")
        elif album.cover_photo_id is None and cover_preview is not None:
            report.add("album-cover-mismatch", album_id, f"no cover photo, but cover_preview {cover_preview}")
        elif album.cover_photo_id is not None and cover is None:
            report.add("album-cover-mismatch", album_id, f"cover {album.cover_photo_id} is not in the album")
        elif cover is not None and cover.owner_id != album.cover_owner_id:
            report.add(
                "album-cover-mismatch",
                album_id,
                f"cover {album.cover_photo_id} is {cover.owner_id}'s, cover_owner_id says {album.cover_owner_id}",
            )
        elif cover is not None and cover.preview_format is not album.cover_preview_format:
            report.add(
                "album-cover-mismatch",
                album_id,
                f"cover {album.cover_photo_id}'s previews are {cover.preview_format.value}, "
                f"the album says {album.cover_preview_format.value}",
            )


def _check_orphans(state: _TableState, report: Report) -> None:
    """Whatever names an album (its members, photo entries, links, access entries, link tokens) needs the album."""
    named: list[tuple[str, str, str]] = []  # (album_id, subject, what)
    named += [(a, f"{a}/{u}", "a member") for a, members in state.members.items() for u in members]
    named += [(a, f"{a}/{p}", "a photo entry") for a, entries in state.entries.items() for p in entries]
    named += [(a, f"{a}/{link_id}", "a link") for a, link_id in state.links]
    named += [(a, f"{u}/{a}", "an access entry") for u, a in state.access]
    named += [(item["album_id"]["S"], _token_subject(h), "a link token") for h, item in state.link_tokens.items()]
    for album_id, subject, what in sorted(named):
        if album_id not in state.albums and album_id not in state.unreadable_albums:
            report.add("orphan-album-item", subject, f"{what} of album {album_id}, which does not exist")


def _token_subject(token_hash: str) -> str:
    # Only the hash is stored; a prefix of it names the item without printing a full key anyone could look up.
    return f"{keys.LINK_PREFIX}{token_hash[:16]}"


def _check_album_access(state: _TableState, report: Report) -> None:
    """Exactly one access entry per owner (role owner) and per member not leaving (their role); no one else's."""
    expected = {(album.owner_id, album_id): Role.OWNER for album_id, album in state.albums.items()}
    for album_id, members in state.members.items():
        owner = state.albums[album_id].owner_id if album_id in state.albums else None
        for user_id, membership in members.items():
            if owner is None:
                continue  # an orphan: reported already
            if user_id == owner:
                report.add("album-access-mismatch", f"{album_id}/{user_id}", "the owner is also a member")
            elif membership.role not in MEMBER_ROLES:
                report.add("album-access-mismatch", f"{album_id}/{user_id}", f"a member as {membership.role.value}")
            elif membership.leaving_since is None:
                expected[(user_id, album_id)] = membership.role
    for (user_id, album_id), role in sorted(state.access.items()):
        if album_id not in state.albums or album_id in state.unreadable_albums:
            continue  # an orphan, or an album that cannot be read: reported already
        want = expected.get((user_id, album_id))
        leaving = state.members.get(album_id, {}).get(user_id)
        if want is None:
            why = "is leaving" if leaving is not None and leaving.leaving_since else "is neither owner nor member"
            report.add("album-access-mismatch", f"{user_id}/{album_id}", f"has access as {role.value} but {why}")
        elif want is not role:
            report.add(
                "album-access-mismatch", f"{user_id}/{album_id}", f"has access as {role.value}, not {want.value}"
            )
    for (user_id, album_id), role in sorted(expected.items()):
        if (user_id, album_id) not in state.access and album_id not in state.unreadable_albums:
            report.add("album-access-mismatch", f"{user_id}/{album_id}", f"no access entry for the {role.value}")


_LINK_KEY_ATTRIBUTES = frozenset({"PK", "SK", "entity"})


def _check_links(state: _TableState, report: Report) -> None:
    """A link is two items with the same fields: the album's (to list and revoke it) and the token's (to open it)."""
    for (album_id, link_id), listed in sorted(state.links.items()):
        if album_id not in state.albums:
            continue  # an orphan, or an album that cannot be read: reported already
        token_hash = listed["token_hash"]["S"]
        by_token = state.link_tokens.get(token_hash)
        if by_token is None:
            if token_hash not in state.unreadable_link_tokens:
                report.add("link-pair-mismatch", f"{album_id}/{link_id}", "no token item: the link opens nothing")
            continue
        fields = {name: value for name, value in listed.items() if name not in _LINK_KEY_ATTRIBUTES}
        other = {name: value for name, value in by_token.items() if name not in _LINK_KEY_ATTRIBUTES}
        differ = sorted(name for name in set(fields) | set(other) if fields.get(name) != other.get(name))
        if differ:
            report.add("link-pair-mismatch", f"{album_id}/{link_id}", f"the token item differs in {differ}")
    for token_hash, by_token in sorted(state.link_tokens.items()):
        album_id, link_id = by_token["album_id"]["S"], by_token["link_id"]["S"]
        if album_id in state.albums and (album_id, link_id) not in state.links:
            report.add(
                "link-pair-mismatch",
                _token_subject(token_hash),
                f"no link {link_id} in album {album_id}: it opens the album, and nobody can list or revoke it",
            )


def _check_cleanup(
    report: Report,
    subject: str,
    item: dict[str, Any],
    *,
    cleanup: tuple[str, str, str | None],
    now: datetime,
    grace: timedelta,
) -> None:
    """`cleanup`: (album_id, what the index names: ALBUM or the user, since when or None)."""
    album_id, what, since = cleanup
    index = _index_of(item)
    if since is None:
        if index != (None, None):
            report.add("unreachable-cleanup", subject, f"indexed as {index}, but nothing is being cleaned up")
        return
    expected = (keys.cleanup_index_pk(keys.cleanup_shard(album_id)), keys.cleanup_index_sk(since, album_id, what))
    if index != expected:
        report.add("unreachable-cleanup", subject, f"clean-up since {since} is indexed as {index}, not {expected}")
    age = now - _parse_time(since)
    if age > grace:
        report.add("overdue-cleanup", subject, f"clean-up since {since} ({age} ago) is unfinished")


def _check_cleanups(state: _TableState, report: Report, *, now: datetime, grace: timedelta) -> None:
    """Deletions and departures: each in the clean-up index while it lasts, none older than the grace."""
    for album_id, album in sorted(state.albums.items()):
        cleanup = (album_id, keys.ALBUM_SK, album.deleting_since)
        _check_cleanup(report, album_id, state.raw_albums[album_id], cleanup=cleanup, now=now, grace=grace)
    for (album_id, user_id), item in sorted(state.raw_members.items()):
        cleanup = (album_id, user_id, state.members[album_id][user_id].leaving_since)
        _check_cleanup(report, f"{album_id}/{user_id}", item, cleanup=cleanup, now=now, grace=grace)


def _index2_of(item: dict[str, Any]) -> tuple[str | None, str | None]:
    return item.get("GSI2PK", {}).get("S"), item.get("GSI2SK", {}).get("S")


_NOT_INDEXED: tuple[str | None, str | None] = (None, None)


def _expected_indexes(
    photo: Photo,
) -> tuple[tuple[str | None, str | None] | None, tuple[str | None, str | None]]:
    """Where the photo's state puts it in GSI1 and GSI2 (GSI1 None: cannot say, its state is broken already)."""
    owner, photo_id = photo.owner_id, photo.photo_id
    if photo.status is PhotoStatus.PENDING:
        pending = (keys.pending_index_pk(keys.pending_shard(photo_id)), photo.upload_expires_at)
        return (pending[0], keys.pending_index_sk(pending[1], owner, photo_id)), _NOT_INDEXED
    if photo.trashed_at is not None:
        trash = (keys.trash_index_pk(owner), keys.time_index_sk(photo.trashed_at, photo_id))
        if photo.purge_at is None:
            return None, trash  # reported as photo-state-mismatch: where it waits for its purge is undefined
        purge = (keys.purge_index_pk(keys.purge_shard(photo_id)), keys.purge_index_sk(photo.purge_at, owner, photo_id))
        return purge, trash
    if photo.status is PhotoStatus.READY:
        favourite = (keys.favorites_index_pk(owner), keys.photo_sk(photo_id)) if photo.favorite else _NOT_INDEXED
        return favourite, (keys.taken_index_pk(owner), keys.time_index_sk(photo.sort_time, photo_id))
    return _NOT_INDEXED, _NOT_INDEXED


def _reconciler_finds(gsi1: tuple[str | None, str | None], want: tuple[str | None, str | None] | None) -> bool:
    """Whether the reconciler's queries reach a PENDING photo indexed as `gsi1`: its own sort key in any shard the
    reconciler queries. Its shard under the current count is `want`'s, but a photo declared before the count was
    raised keeps the shard the smaller count gave it, which the reconciler still queries (keys.PENDING_SHARDS)."""
    if want is None or gsi1[1] != want[1]:
        return False
    return gsi1[0] in {keys.pending_index_pk(shard) for shard in range(keys.PENDING_SHARDS)}


def _check_photo_indexes(state: _TableState, report: Report) -> None:
    """The pending index (``unreachable-pending``) and every other index a photo's state puts it in
    (``photo-index-mismatch``)."""
    for (owner_id, photo_id), item in sorted(state.raw_photos.items()):
        photo = state.photos[(owner_id, photo_id)]
        subject = f"{owner_id}/{photo_id}"
        if _TTL_ATTRIBUTE in item:
            report.add("unreachable-pending", subject, f"a photo carries {_TTL_ATTRIBUTE}: TTL would leak its usage")
        gsi1, gsi2 = _index_of(item), _index2_of(item)
        want1, want2 = _expected_indexes(photo)
        in_pending = (gsi1[0] or "").startswith("PENDING#")
        wrong: list[str] = []
        if photo.status is PhotoStatus.PENDING:
            if not _reconciler_finds(gsi1, want1):
                report.add("unreachable-pending", subject, f"PENDING photo indexed as {gsi1}, not {want1}")
        elif in_pending:
            report.add("unreachable-pending", subject, f"{photo.status.value} photo still indexed as {gsi1}")
        if not photo.indexed:
            report.add("unindexed-photo", subject, "stored before the library: run python -m ops.backfill")
            continue  # placed and counted by the backfill (or its next write), not before
        if photo.status is not PhotoStatus.PENDING and not in_pending and want1 is not None and gsi1 != want1:
            wrong.append(f"GSI1 is {_shown(gsi1)}, not {_shown(want1)}")
        if gsi2 != want2:
            wrong.append(f"GSI2 is {_shown(gsi2)}, not {_shown(want2)}")
        if wrong:
            report.add("photo-index-mismatch", subject, f"{_state_name(photo)} photo: " + "; ".join(wrong))


def _shown(index: tuple[str | None, str | None]) -> str:
    return "none" if index == _NOT_INDEXED else f"{index[0]} / {index[1]}"


def _state_name(photo: Photo) -> str:
    if photo.trashed:
        return f"trashed {photo.status.value}"
    return f"favourite {photo.status.value}" if photo.favorite else photo.status.value


def _check_photo_states(state: _TableState, report: Report, *, now: datetime, grace: timedelta) -> None:
    """What a photo's fields say of its state agrees with itself; what a cut-short step left is not left too long."""
    for (owner_id, photo_id), photo in sorted(state.photos.items()):
        subject = f"{owner_id}/{photo_id}"
        problems = _state_problems(photo)
        if problems:
            report.add("photo-state-mismatch", subject, "; ".join(problems))
        if photo.album_return and not photo.trashed:
            # A restore cut short between its transactions (the photo is back in the library, not yet in every
            # album it left), or a trash of a photo in more albums than one transaction holds, cut short before its
            # last one (out of some albums, not yet in the trash). Only the owner's retry finishes either; nothing
            # scheduled does. (A trash's first steps leave updated_at as it was: it may be reported at once.)
            since = _parse_time(photo.updated_at)
            if now - since > grace:
                albums = ", ".join(entry.partition("#")[0] for entry in photo.album_return)
                report.add(
                    "unfinished-album-return",
                    subject,
                    f"not in the trash, still to return to {albums} (a restore or trash cut short); "
                    f"last updated {photo.updated_at} ({now - since} ago)",
                )
        if photo.trashed and photo.purge_at is not None:
            due = _parse_time(photo.purge_at)
            if now - due > grace:
                being = "being purged" if photo.purging else "in the trash"
                report.add(
                    "overdue-purge", subject, f"{being}, purge due at {photo.purge_at} ({now - due} ago), not done"
                )


def _state_problems(photo: Photo) -> list[str]:
    return [*_trash_problems(photo), *_bytes_problems(photo), *_album_return_problems(photo)]


def _trash_problems(photo: Photo) -> list[str]:
    if not photo.trashed:
        outside = [f"purge_at {photo.purge_at} outside the trash"] if photo.purge_at is not None else []
        return outside + (["marked as being purged outside the trash"] if photo.purging else [])
    problems = [f"a {photo.status.value} photo in the trash"] if photo.status is not PhotoStatus.READY else []
    if photo.purge_at is None:
        problems.append("in the trash without purge_at")
    elif photo.trashed_at is not None and _parse_time(photo.purge_at) < _parse_time(photo.trashed_at):
        problems.append(f"purge_at {photo.purge_at} is before trashed_at {photo.trashed_at}")
    return problems


def _bytes_problems(photo: Photo) -> list[str]:
    """The hash of the bytes is a READY photo's; the copy it was rejected for, a REJECTED duplicate's."""
    problems: list[str] = []
    status = photo.status.value
    if photo.sha256 is not None and photo.status is not PhotoStatus.READY:
        problems.append(f"a {status} photo has a sha256")
    elif photo.sha256 is not None and _SHA256.fullmatch(photo.sha256) is None:
        problems.append("sha256 is not 64 lower-case hex digits")
    if photo.duplicate_of is not None and photo.status is not PhotoStatus.REJECTED:
        problems.append(f"a {status} photo names a duplicate_of")
    elif photo.duplicate_of is not None and photo.duplicate_of not in (photo.rejection_reason or ""):
        problems.append(f"duplicate_of {photo.duplicate_of} is not the photo its rejection names")
    elif photo.duplicate_of is None and (photo.rejection_reason or "").startswith(_DUPLICATE_REASON):
        problems.append("rejected as a copy, without duplicate_of")
    return problems


def _album_return_problems(photo: Photo) -> list[str]:
    problems = []
    for entry in photo.album_return:
        album_id, _, added_at = entry.partition("#")
        try:
            _parse_time(added_at)
        except ValueError:
            added_at = ""
        if not album_id or not added_at:
            problems.append(f"album_return entry {entry!r} is not <album_id>#<time added>")
    return problems


def _check_usage(state: _TableState, report: Report, quota: Quota | None) -> None:
    expected: dict[str, _Usage] = defaultdict(_Usage)
    for (owner_id, _), photo in state.photos.items():
        if photo.counts_against_quota:
            was = expected[owner_id]
            trashed = photo.trashed
            expected[owner_id] = _Usage(
                photos=was.photos + 1,
                bytes=was.bytes + photo.size_bytes,
                pending=was.pending + (photo.status is PhotoStatus.PENDING),
                trash_photos=was.trash_photos + trashed,
                trash_bytes=was.trash_bytes + (photo.size_bytes if trashed else 0),
            )
    unverifiable = {owner_id for owner_id, _ in state.unreadable} | state.unreadable_users
    for user_id in sorted(set(expected) | set(state.usage)):
        want, have = expected[user_id], state.usage.get(user_id, _Usage())
        if want != have and user_id not in unverifiable:
            report.add("usage-mismatch", user_id, f"counters say {have}; items say {want}")
        if quota is None:
            continue
        over = have.photos > quota.photos or have.bytes > quota.bytes
        if over or (quota.pending is not None and have.pending > quota.pending):
            shown = (have.photos, have.bytes, have.pending)
            report.add("quota-exceeded", user_id, f"usage {shown} is over the quota {quota}")


def _check_months(state: _TableState, report: Report) -> None:
    """Each month's counter, written in the same transaction as the photos it counts, equals them."""
    expected = Counter(
        (owner_id, photo.month)
        for (owner_id, _), photo in state.photos.items()
        if photo.in_library and photo.indexed  # a photo stored before the library is counted by the backfill
    )
    unverifiable = {owner_id for owner_id, _ in state.unreadable} | state.unreadable_users
    for owner_id, month in sorted(set(expected) | set(state.months)):
        subject = f"{owner_id}/{keys.MONTH_PREFIX}{month}"
        have, want = state.months.get((owner_id, month)), expected[(owner_id, month)]
        if have is not None and have < 0:
            report.add("month-count-mismatch", subject, f"the counter is negative ({have}); {want} photo(s) that month")
        elif (have or 0) != want and owner_id not in unverifiable:
            shown = "no counter" if have is None else f"the counter says {have}"
            report.add("month-count-mismatch", subject, f"{shown}; {want} READY photo(s) out of the trash that month")


def _check_claims(state: _TableState, report: Report) -> None:
    """Each claim on a photo's bytes names a library photo with those bytes; each such photo holds its claim; no two
    library photos of one owner have the same bytes."""
    for (owner_id, digest), photo_id in sorted(state.claims.items()):
        if (owner_id, photo_id) in state.unreadable:
            continue
        photo = state.photos.get((owner_id, photo_id))
        subject = f"{owner_id}/{keys.SHA256_PREFIX}{digest}"
        if photo is None:
            report.add("hash-claim-mismatch", subject, f"names photo {photo_id}, which {owner_id} does not have")
        elif not photo.in_library:
            report.add("hash-claim-mismatch", subject, f"names photo {photo_id}, which is {_state_name(photo)}")
        elif photo.sha256 != digest:
            report.add("hash-claim-mismatch", subject, f"names photo {photo_id}, whose sha256 is {photo.sha256}")
    holders: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (owner_id, photo_id), photo in sorted(state.photos.items()):
        if photo.in_library and photo.sha256 is not None:
            holders[(owner_id, photo.sha256)].append(photo_id)
    for (owner_id, digest), photo_ids in sorted(holders.items()):
        claimed = state.claims.get((owner_id, digest))
        subject = f"{owner_id}/{keys.SHA256_PREFIX}{digest}"
        if len(photo_ids) > 1:
            report.add("duplicate-in-library", subject, f"photos {', '.join(photo_ids)} all hold these bytes")
        if claimed is None and owner_id not in state.unreadable_users:
            report.add("hash-claim-mismatch", subject, f"photo {photo_ids[0]} holds no claim on its bytes")


def _check_trashed_out_of_albums(state: _TableState, report: Report) -> None:
    """A trashed photo left its albums (entry and copy) in the transaction that trashed it."""
    held: dict[tuple[str, str], tuple[str, str]] = {}  # (album_id, photo_id) -> (owner_id, what holds it)
    for owner_id, photo_id, album_id in state.photo_albums:
        held[(album_id, photo_id)] = (owner_id, "a copy beside the photo")
    for album_id, entries in state.entries.items():
        for photo_id, entry in entries.items():
            held[(album_id, photo_id)] = (entry.owner_id, "an entry in the album")
    for (album_id, photo_id), (owner_id, what) in sorted(held.items()):
        photo = state.photos.get((owner_id, photo_id))
        if photo is not None and photo.trashed:
            report.add("trashed-photo-in-album", f"{album_id}/{photo_id}", f"in the trash, but still {what}")


def _check_account_deletions(state: _TableState, report: Report, *, now: datetime, grace: timedelta) -> None:
    """An account being deleted: in the clean-up index, not overdue, its uploads blocked and its profile gone."""
    for user_id, item in sorted(state.deletions.items()):
        since = item["since"]["S"]
        cleanup = (user_id, keys.ACCOUNT_WHAT, since)
        _check_cleanup(
            report, f"{keys.user_pk(user_id)}/{keys.ACCOUNT_DELETION_SK}", item, cleanup=cleanup, now=now, grace=grace
        )
        problems = []
        blocked = state.usage_deleting.get(user_id)
        if blocked != since:
            problems.append(
                "its usage is not marked, so uploads can still start"
                if blocked is None
                else f"its usage is marked since {blocked}, the deletion since {since}"
            )
        if user_id in state.profiles:
            problems.append("its profile is still there")
        if problems:
            report.add("account-deletion-mismatch", user_id, "; ".join(problems))
    for user_id, since in sorted(state.usage_deleting.items()):
        if user_id not in state.deletions and user_id not in state.unreadable_users:
            report.add(
                "account-deletion-mismatch",
                user_id,
                f"usage marked as being deleted since {since}, but no deletion is under way: uploads blocked for good",
            )


def _check_connections(state: _TableState, report: Report, *, now: datetime, max_per_user: int) -> None:
    """A live connection is both of its items, naming each other, expiring together within a connection's life; no
    user holds more than the bound. Expired items are API Gateway's closed connections that TTL has yet to remove."""
    epoch = now.timestamp()
    live: Counter[str] = Counter()
    for (user_id, connection_id), item in sorted(state.connections.items()):
        subject = f"{keys.user_pk(user_id)}/{keys.WS_PREFIX}{connection_id}"
        expires = _expiry(item)
        _check_connection_ttl(report, subject, expires, int(item["connected_at"]["N"]))
        if expires is not None and expires <= epoch:
            continue
        live[user_id] += 1
        if connection_id not in state.unreadable_connections:
            _check_connection_pair(state, report, (user_id, connection_id), expires)
    _check_connection_owners(state, report, epoch)
    for user_id, count in sorted(live.items()):
        if count > max_per_user:
            report.add("ws-connections-over-limit", user_id, f"{count} live connections, more than {max_per_user}")


def _check_connection_pair(
    state: _TableState, report: Report, connection: tuple[str, str], expires: int | None
) -> None:
    """A live connection item's owner item: there, naming the same user, expiring at the same time."""
    user_id, connection_id = connection
    subject = f"{keys.user_pk(user_id)}/{keys.WS_PREFIX}{connection_id}"
    owner = state.connection_owners.get(connection_id)
    if owner is None:
        why = f"no owner item {keys.WS_PREFIX}{connection_id}/{keys.WS_SK}: $disconnect cannot find it"
        report.add("ws-connection-pair-mismatch", subject, why)
    elif owner["user_id"]["S"] != user_id:
        report.add("ws-connection-pair-mismatch", subject, f"its owner item names {owner['user_id']['S']}")
    elif _expiry(owner) != expires:
        why = f"it expires at {expires}, its owner item at {_expiry(owner)}"
        report.add("ws-connection-pair-mismatch", subject, why)


def _check_connection_owners(state: _TableState, report: Report, epoch: float) -> None:
    """Each owner item expires, and a live one without its connection item is half a connection (a pair is judged
    from the user's side): an orphan if its user holds nothing else."""
    for connection_id, owner in sorted(state.connection_owners.items()):
        subject = f"{keys.WS_PREFIX}{connection_id}/{keys.WS_SK}"
        user_id, expires = owner["user_id"]["S"], _expiry(owner)
        if expires is None:
            report.add("ws-connection-ttl", subject, f"no {_TTL_ATTRIBUTE}: TTL never removes it")
        expired = expires is not None and expires <= epoch
        if expired or connection_id in state.unreadable_connections or (user_id, connection_id) in state.connections:
            continue
        if user_id not in state.holders:
            why = f"names {user_id}, who holds nothing else: a deleted account's connection, left behind"
            report.add("ws-connection-orphan", subject, why)
        else:
            why = f"no connection item under {keys.user_pk(user_id)}: no push reaches it"
            report.add("ws-connection-pair-mismatch", subject, why)


def _check_connection_ttl(report: Report, subject: str, expires: int | None, connected_at: int) -> None:
    if expires is None:
        report.add("ws-connection-ttl", subject, f"no {_TTL_ATTRIBUTE}: TTL never removes it")
    elif expires * 1000 > connected_at + CONNECTION_TTL_SECONDS * 1000:
        report.add(
            "ws-connection-ttl",
            subject,
            f"expires {expires - connected_at // 1000} s after it connected, past the {CONNECTION_TTL_SECONDS} s "
            "a connection may live",
        )


def _check_objects(
    state: _TableState, objects: dict[str, datetime], report: Report, *, now: datetime, grace: timedelta
) -> None:
    for key, modified in sorted(objects.items()):
        parsed = _photo_of_object(key)
        if parsed is None:
            report.add("unknown-object", key, "not a key PhotoSky writes")
            continue
        kind, photo_key = parsed
        if photo_key in state.unreadable or photo_key[0] in state.deletions:
            # An account being deleted loses its photos before their objects (a later step of the deletion takes
            # everything under the user's prefixes): overdue-cleanup reports a deletion that stopped in between.
            continue
        photo = state.photos.get(photo_key)
        if kind == "upload":
            if (photo is None or photo.status is not PhotoStatus.PENDING) and now - modified > grace:
                state_name = "no photo" if photo is None else f"photo is {photo.status.value}"
                report.add("stale-upload", key, f"{state_name}, object is {now - modified} old")
        elif photo is None:
            report.add("orphan-object", key, "no photo item")
        elif photo.status is PhotoStatus.REJECTED:
            report.add("orphan-object", key, "photo is REJECTED")
        elif kind == "preview" and photo.status is PhotoStatus.READY and key not in _previews(photo):
            report.add("orphan-object", key, f"the photo's previews are {photo.preview_format.value}")
    for (owner_id, photo_id), photo in state.photos.items():
        if photo.status is not PhotoStatus.READY or photo.purging:
            continue  # a photo being purged loses its objects before its item (overdue-purge if it stops there)
        wanted = [keys.original_object(owner_id, photo_id), *_previews(photo)]
        missing = [key for key in wanted if key not in objects]
        if missing:
            report.add("ready-missing-object", f"{owner_id}/{photo_id}", f"missing {missing}")


def _previews(photo: Photo) -> list[str]:
    """A READY photo's previews: in the format it records."""
    return [keys.preview_object(photo.owner_id, photo.photo_id, size, photo.preview_format) for size in PREVIEW_SIZES]


def check(
    dynamodb: DynamoDBClient,
    s3: S3Client,
    *,
    table: str,
    bucket: str,
    now: datetime | None = None,
    upload_grace: timedelta = DEFAULT_UPLOAD_GRACE,
    cleanup_grace: timedelta = CLEANUP_GRACE,
    quota: Quota | None = None,
    max_connections: int = Settings.ws_max_connections,
) -> Report:
    """Read the whole table and bucket and report every invariant that does not hold."""
    report = Report()
    now = now or datetime.now(UTC)
    state = _read_table(dynamodb, table, report)
    objects = dict(_list_objects(s3, bucket))
    report.users, report.photos, report.objects = len(state.users), len(state.photos), len(objects)
    report.albums = len(state.albums)
    _check_tag_copies(state, report)
    _check_photo_indexes(state, report)
    _check_photo_states(state, report, now=now, grace=cleanup_grace)
    _check_usage(state, report, quota)
    _check_months(state, report)
    _check_claims(state, report)
    _check_objects(state, objects, report, now=now, grace=upload_grace)
    _check_album_entries(state, report)
    _check_photo_album_copies(state, report)
    _check_album_counts_and_covers(state, report)
    _check_orphans(state, report)
    _check_album_access(state, report)
    _check_links(state, report)
    _check_cleanups(state, report, now=now, grace=cleanup_grace)
    _check_trashed_out_of_albums(state, report)
    _check_account_deletions(state, report, now=now, grace=cleanup_grace)
    _check_connections(state, report, now=now, max_per_user=max_connections)
    return report


def remains_of(dynamodb: DynamoDBClient, s3: S3Client, *, table: str, bucket: str, user_id: str) -> list[str]:
    """Everything of the user's still stored, one line each: what a finished account deletion must leave none of.

    Items in their partition (but write-rate counters, which carry a TTL and are spent by the deleting request
    itself), items of any album that name them (an album they own, their membership, a photo of theirs in it, a
    cover of theirs), the owner items of their WebSocket connections, and objects under their prefixes."""
    left: list[str] = []
    for item in _scan(dynamodb, table):
        pk, sk = item.get("PK", {}).get("S", ""), item.get("SK", {}).get("S", "")
        if pk == keys.user_pk(user_id):
            if not sk.startswith(keys.RATE_PREFIX):
                left.append(f"item {pk}/{sk}")
        elif pk.startswith(keys.ALBUM_PREFIX):
            named = [
                name for name in ("owner_id", "user_id", "cover_owner_id") if item.get(name, {}).get("S") == user_id
            ]
            if sk == f"{keys.MEMBER_PREFIX}{user_id}" and "user_id" not in named:
                named.append("sort key")
            if named:
                left.append(f"item {pk}/{sk} (its {', '.join(named)})")
        elif pk.startswith(keys.WS_PREFIX) and item.get("user_id", {}).get("S") == user_id:
            left.append(f"item {pk}/{sk} (its user_id)")
    for prefix in keys.user_object_prefixes(user_id):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            left += [f"object {obj['Key']}" for obj in page.get("Contents", [])]
    return left


def _clients(args: argparse.Namespace) -> tuple[Any, Any, str, str]:
    import boto3

    if args.table and args.bucket:
        session = boto3.session.Session()
        return session.client("dynamodb"), session.client("s3"), args.table, args.bucket
    outputs: Mapping[str, Any] = json.loads(args.outputs.read_text())
    from devstack.clients import emulated_client

    return (
        emulated_client("dynamodb", outputs),
        emulated_client("s3", outputs),
        outputs["table_name"],
        outputs["bucket_name"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.invariants", description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=PROJECT_DIR / ".devstack" / "outputs.json")
    parser.add_argument("--table", help="table name (with --bucket: check that table and bucket, not the dev stack)")
    parser.add_argument("--bucket", help="bucket name")
    parser.add_argument("--grace-minutes", type=float, default=DEFAULT_UPLOAD_GRACE.total_seconds() / 60)
    parser.add_argument(
        "--cleanup-grace-minutes",
        type=float,
        # The sweeper takes what is older than CLEANUP_GRACE (SWEEP_INTERVAL: how soon a run surely has): a
        # clean-up is overdue only once a run should have finished it.
        default=(CLEANUP_GRACE + SWEEP_INTERVAL).total_seconds() / 60,
        help=(
            "age past which an unfinished album deletion, departure or account deletion, a purge past its time and "
            "a restore cut short are overdue (default: 5 + 15 minutes)"
        ),
    )
    parser.add_argument("--quota-photos", type=int)
    parser.add_argument("--quota-bytes", type=int)
    parser.add_argument("--quota-pending", type=int, help="outstanding uploads allowed per user (optional)")
    parser.add_argument(
        "--ws-max-connections",
        type=int,
        default=Settings.ws_max_connections,
        help="live WebSocket connections allowed per user (PHOTOSKY_WS_MAX_CONNECTIONS; default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if bool(args.table) != bool(args.bucket):
        parser.error("--table and --bucket go together")
    quota = None
    if args.quota_photos is not None or args.quota_bytes is not None:
        if args.quota_photos is None or args.quota_bytes is None:
            parser.error("--quota-photos and --quota-bytes go together")
        quota = Quota(args.quota_photos, args.quota_bytes, args.quota_pending)
    try:
        dynamodb, s3, table, bucket = _clients(args)
    except FileNotFoundError:
        print(
            f"invariants: no {args.outputs}: start the dev stack (make dev), or pass --table and --bucket",
            file=sys.stderr,
        )
        return 2
    try:
        report = check(
            dynamodb,
            s3,
            table=table,
            bucket=bucket,
            upload_grace=timedelta(minutes=args.grace_minutes),
            cleanup_grace=timedelta(minutes=args.cleanup_grace_minutes),
            quota=quota,
            max_connections=args.ws_max_connections,
        )
    except (ClientError, BotoCoreError) as e:
        print(f"invariants: cannot read the table or bucket: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for violation in report.violations:
            print(violation)
        print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
