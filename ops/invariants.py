"""`python -m ops.invariants`: check that PhotoSky's table and bucket agree with each other.

What must always hold, whatever crashed, was retried or raced (each violation names one of these):

- ``ready-missing-object``: a READY photo has its original and both previews.
- ``orphan-object``: every object under ``originals/`` and ``previews/`` belongs to a photo item that is not
  REJECTED (a PENDING photo may have objects: the worker writes them before it marks the photo READY).
- ``stale-upload``: an object under ``uploads/`` older than the grace window belongs to a PENDING photo. Younger
  ones may be in flight (the photo was deleted while the client was still uploading, the event is queued).
- ``usage-mismatch``: each user's usage counters equal the count and the byte sum of their photos that count
  against the quota (all but REJECTED), and the number of their PENDING photos; a user with no such photo has zero
  usage.
- ``quota-exceeded``: usage never passes the quota (when quotas are given).
- ``tag-copy-mismatch``: each photo has exactly one tag copy per tag, holding the keys of the tag index and
  nothing else (a listing reads the photo itself), and no tag copy outlives its photo.
- ``unreachable-pending``: every PENDING photo is in the pending index under its shard and upload deadline (the
  reconciler finds it however old it is), no other photo is, and no photo carries the TTL attribute (TTL would
  remove it without releasing its usage).
- ``album-count-mismatch``: an album's ``photo_count`` equals its photo entries and ``member_count`` its members
  that are not leaving (not judged while the album is being deleted: its clean-up removes them without counting).
- ``album-photo-copy-mismatch``: every photo entry of an album has its copy beside the photo (keys only) and every
  copy its entry, and the entry is in the album's photo index under its time added (the listing reads it there).
- ``album-photo-not-ready``: every photo in an album exists, is its entry owner's and is READY.
- ``album-photo-stranger``: every photo in an album (not being deleted) is its owner's or a member's who is marked
  as having contributed, so a departure takes that member's photos with them.
- ``album-cover-mismatch``: a cover is null or a photo in the album, with the owner its entry names (not judged
  while the album is being deleted).
- ``orphan-album-item``: every member, photo entry, access entry, link and link token belongs to an existing album.
- ``album-access-mismatch``: the owner has an access entry (role owner), each member not leaving has one with their
  role, nobody else has one; the owner is no member; a member's role is contributor or viewer.
- ``link-pair-mismatch``: a share link is two items, the album's ``LINK#<id>`` and the token's ``LINK#<hash>``,
  holding the same fields.
- ``unreachable-cleanup``: an album being deleted and a member leaving are in the clean-up index under their shard
  and start time (the sweeper finds them however old), and nothing else is.
- ``overdue-cleanup``: no deletion or departure began longer ago than the clean-up grace: the sweeper (which takes
  those older than ``CLEANUP_GRACE``) should have finished it.
- ``unparseable-item`` / ``unknown-object``: anything in the table or bucket that PhotoSky would not have written
  (a write-rate counter and a share link's wrong-password counter must carry their expiry).

It reads everything (a Scan and a full listing): a tool for the dev stack, tests and an operator's audit, never for
a request path. Against the dev stack: ``python -m ops.invariants`` (reads ``.devstack/outputs.json``); against any
account: ``python -m ops.invariants --table T --bucket B`` with the usual AWS environment.
Exits 0 when every invariant holds, 1 when any is violated, 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
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
from chalicelib.photos.models import Photo, PhotoStatus
from chalicelib.photos.repository import photo_from_item

# How often the scheduled job (app.release_abandoned_uploads) runs the album sweeper.
SWEEP_INTERVAL = timedelta(minutes=15)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The presigned POST lives 15 minutes and the worker gets 15 more before an upload counts as abandoned.
DEFAULT_UPLOAD_GRACE = timedelta(minutes=30)
PREVIEW_SIZES = ("large", "small")


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


# The attributes of a tag copy: the keys of the item and of the tag index, and the entity.
_TAG_COPY_ATTRIBUTES = frozenset({"PK", "SK", "entity", "GSI1PK", "GSI1SK"})
_TTL_ATTRIBUTE = "expires_at_epoch"
# A photo's copy of its place in an album holds its keys and entity only.
_PHOTO_ALBUM_ATTRIBUTES = frozenset({"PK", "SK", "entity"})


@dataclass
class _TableState:
    photos: dict[tuple[str, str], Photo] = field(default_factory=dict)
    tag_copies: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    usage: dict[str, tuple[int, int, int]] = field(default_factory=dict)
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


def _scan(client: DynamoDBClient, table: str) -> Iterator[dict[str, Any]]:
    # Strongly consistent, so a check right after a write sees it.
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        yield from page.get("Items", [])


def _read_table(client: DynamoDBClient, table: str, report: Report) -> _TableState:
    state = _TableState()
    for item in _scan(client, table):
        pk, sk = item.get("PK", {}).get("S", ""), item.get("SK", {}).get("S", "")
        if pk.startswith("USER#"):
            _read_user_item(state, report, item, pk, sk)
        elif pk.startswith(keys.ALBUM_PREFIX):
            _read_album_item(state, report, item, pk, sk)
        elif pk.startswith(keys.LINK_PREFIX):
            _read_link_token_item(state, report, item, pk, sk)
        else:
            report.add("unparseable-item", f"{pk}/{sk}", "partition key is not USER#<sub>, ALBUM#<id> or LINK#<hash>")
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
            state.usage[user_id] = (
                int(item.get("photos", {}).get("N", "0")),
                int(item.get("bytes", {}).get("N", "0")),
                int(item.get("pending", {}).get("N", "0")),
            )
        elif sk.startswith(keys.PHOTO_PREFIX):
            photo = photo_from_item(item)
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
        elif sk != keys.PROFILE_SK:
            report.add("unparseable-item", f"{pk}/{sk}", "unknown sort key")
    except (KeyError, ValueError) as e:
        report.add("unparseable-item", f"{pk}/{sk}", f"missing or malformed attribute: {e}")
        if sk.startswith(keys.PHOTO_PREFIX):
            state.unreadable.add((user_id, sk.removeprefix(keys.PHOTO_PREFIX)))
        elif sk.startswith(keys.ALBUM_PREFIX):
            state.unreadable_albums.add(sk.removeprefix(keys.ALBUM_PREFIX))


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
    if parts[0] == "previews" and len(parts) == 4 and parts[3] in {f"{size}.jpg" for size in PREVIEW_SIZES}:
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
        if album.cover_photo_id is None and album.cover_owner_id is not None:
            report.add("album-cover-mismatch", album_id, f"no cover photo, but cover_owner_id {album.cover_owner_id}")
        elif album.cover_photo_id is not None and cover is None:
            report.add("album-cover-mismatch", album_id, f"cover {album.cover_photo_id} is not in the album")
        elif cover is not None and cover.owner_id != album.cover_owner_id:
            report.add(
                "album-cover-mismatch",
                album_id,
                f"cover {album.cover_photo_id} is {cover.owner_id}'s, cover_owner_id says {album.cover_owner_id}",
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


def _check_pending_index(state: _TableState, report: Report) -> None:
    for (owner_id, photo_id), item in state.raw_photos.items():
        photo = state.photos[(owner_id, photo_id)]
        subject = f"{owner_id}/{photo_id}"
        if _TTL_ATTRIBUTE in item:
            report.add("unreachable-pending", subject, f"a photo carries {_TTL_ATTRIBUTE}: TTL would leak its usage")
        index = (item.get("GSI1PK", {}).get("S"), item.get("GSI1SK", {}).get("S"))
        if photo.status is PhotoStatus.PENDING:
            expected = (
                keys.pending_index_pk(keys.pending_shard(photo_id)),
                keys.pending_index_sk(photo.upload_expires_at, owner_id, photo_id),
            )
            if index != expected:
                report.add("unreachable-pending", subject, f"PENDING photo indexed as {index}, not {expected}")
        elif index != (None, None):
            report.add("unreachable-pending", subject, f"{photo.status.value} photo still indexed as {index}")


def _check_usage(state: _TableState, report: Report, quota: Quota | None) -> None:
    expected: dict[str, tuple[int, int, int]] = defaultdict(lambda: (0, 0, 0))
    for (owner_id, _), photo in state.photos.items():
        if photo.counts_against_quota:
            count, total, pending = expected[owner_id]
            expected[owner_id] = (count + 1, total + photo.size_bytes, pending + (photo.status is PhotoStatus.PENDING))
    unverifiable = {owner_id for owner_id, _ in state.unreadable}
    for user_id in sorted(set(expected) | set(state.usage)):
        want, have = expected[user_id], state.usage.get(user_id, (0, 0, 0))
        if want != have and user_id not in unverifiable:
            report.add(
                "usage-mismatch",
                user_id,
                f"counters say {have[0]} photo(s), {have[1]} byte(s), {have[2]} pending; "
                f"items say {want[0]} photo(s), {want[1]} byte(s), {want[2]} pending",
            )
        if quota is None:
            continue
        if have[0] > quota.photos or have[1] > quota.bytes or (quota.pending is not None and have[2] > quota.pending):
            report.add("quota-exceeded", user_id, f"usage {have} is over the quota {quota}")


def _check_objects(
    state: _TableState, objects: dict[str, datetime], report: Report, *, now: datetime, grace: timedelta
) -> None:
    for key, modified in sorted(objects.items()):
        parsed = _photo_of_object(key)
        if parsed is None:
            report.add("unknown-object", key, "not a key PhotoSky writes")
            continue
        kind, photo_key = parsed
        if photo_key in state.unreadable:
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
    for (owner_id, photo_id), photo in state.photos.items():
        if photo.status is not PhotoStatus.READY:
            continue
        wanted = [keys.original_object(owner_id, photo_id)]
        wanted += [keys.preview_object(owner_id, photo_id, size) for size in PREVIEW_SIZES]
        missing = [key for key in wanted if key not in objects]
        if missing:
            report.add("ready-missing-object", f"{owner_id}/{photo_id}", f"missing {missing}")


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
) -> Report:
    """Read the whole table and bucket and report every invariant that does not hold."""
    report = Report()
    now = now or datetime.now(UTC)
    state = _read_table(dynamodb, table, report)
    objects = dict(_list_objects(s3, bucket))
    report.users, report.photos, report.objects = len(state.users), len(state.photos), len(objects)
    report.albums = len(state.albums)
    _check_tag_copies(state, report)
    _check_pending_index(state, report)
    _check_usage(state, report, quota)
    _check_objects(state, objects, report, now=now, grace=upload_grace)
    _check_album_entries(state, report)
    _check_photo_album_copies(state, report)
    _check_album_counts_and_covers(state, report)
    _check_orphans(state, report)
    _check_album_access(state, report)
    _check_links(state, report)
    _check_cleanups(state, report, now=now, grace=cleanup_grace)
    return report


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
        # The sweeper takes what is older than CLEANUP_GRACE, every 15 minutes (app.py): a clean-up is overdue
        # only once a run should have finished it.
        default=(CLEANUP_GRACE + SWEEP_INTERVAL).total_seconds() / 60,
        help="age past which an unfinished album deletion or departure is overdue (default: 5 + 15 minutes)",
    )
    parser.add_argument("--quota-photos", type=int)
    parser.add_argument("--quota-bytes", type=int)
    parser.add_argument("--quota-pending", type=int, help="outstanding uploads allowed per user (optional)")
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
