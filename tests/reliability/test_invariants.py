"""The invariant checker itself: real state built through the API and the worker, then corrupted one way at a time.
Each rule must fire for its corruption and nothing else, and fall silent once the state is restored."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from chalice.test import Client

from chalicelib import clock, deps, keys
from chalicelib.albums import items as album_items
from chalicelib.albums.links import token_hash
from chalicelib.albums.models import AlbumPhotoEntry, Membership, Role
from chalicelib.albums.service import CLEANUP_GRACE
from chalicelib.aws import query_index_partitions
from chalicelib.clock import iso_utc
from chalicelib.photos.models import PreviewFormat
from chalicelib.users.deletion import DynamoAccountRepository
from ops import invariants
from tests.integration.conftest import BUCKET, TABLE, User
from tests.reliability import moto_state
from tests.reliability.moto_state import MadeOnce, MotoState
from tests.reliability.support import (
    UNKNOWN_PHOTO_ID,
    aws_clients,
    create_profile,
    deliver,
    jpeg,
    put_upload,
    snapshot,
    start_upload,
    upload_ready,
    upload_rejected,
)
from tests.support.albums import add_photos, create_album, create_link, public, share, unlock

pytestmark = pytest.mark.suite("invariants")

PROJECT_DIR = Path(__file__).resolve().parents[2]
# The worker makes every photo here: their previews are WebP.
WEBP, JPEG = PreviewFormat.WEBP, PreviewFormat.JPEG


class Library:
    """alice: a READY photo (two tags), a PENDING one (one tag), a REJECTED one; bob: a READY photo."""

    def __init__(self, aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User) -> None:
        self.aws = aws
        self.dynamodb, self.s3 = aws_clients(aws)
        self.alice, self.bob = alice.sub, bob.sub
        create_profile(alice, "Alice")
        create_profile(bob, "Bob")
        self.ready = upload_ready(api, s3, alice, tags=["sea", "sun"])["photo_id"]
        self.pending = start_upload(alice, b"x" * 1000, tags=["later"])["photo"]["photo_id"]
        self.rejected = upload_rejected(api, s3, alice)["photo_id"]
        self.bobs = upload_ready(api, s3, bob)["photo_id"]
        self.clean = snapshot(aws, counters=True)

    def check(self, **options: Any) -> invariants.Report:
        return invariants.check(self.dynamodb, self.s3, table=TABLE, bucket=BUCKET, **options)

    def item(self, owner: str, sort_key: str) -> dict[str, Any]:
        return self.clean.items[(keys.user_pk(owner), sort_key)]

    def put_item(self, item: dict[str, Any]) -> None:
        self.dynamodb.put_item(TableName=TABLE, Item=item)

    def delete_item(self, owner: str, sort_key: str) -> None:
        self.dynamodb.delete_item(TableName=TABLE, Key={"PK": {"S": keys.user_pk(owner)}, "SK": {"S": sort_key}})

    def put_object(self, key: str, data: bytes = b"\xff\xd8\xffjunk") -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)

    def delete_object(self, key: str) -> None:
        self.s3.delete_object(Bucket=BUCKET, Key=key)

    def last_modified(self, key: str) -> Any:
        return self.s3.head_object(Bucket=BUCKET, Key=key)["LastModified"]

    def restore(self) -> None:
        """Back to the state the app built: the table and the bucket as they were saved once it was built."""
        moto_state.restore(self.built)

    def bind(self, aws: boto3.session.Session) -> None:
        """This test's moto session and clients; the state as built, saved for `restore`."""
        self.aws = aws
        self.dynamodb, self.s3 = aws_clients(aws)
        self.built: MotoState = moto_state.save()


LibraryT = TypeVar("LibraryT", bound=Library)


def made_library(made: MadeOnce, kind: type[LibraryT], aws: boto3.session.Session, *users: Any) -> LibraryT:
    """A library of this kind, built through the app by the module's first test that needs it and restored for every
    later one (moto_state), bound to this test's moto."""
    library = made(kind, lambda: kind(aws, *users), keep=(aws, *aws_clients(aws)))
    library.bind(aws)
    return library


@pytest.fixture
def library(aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User, made_once: MadeOnce) -> Library:
    return made_library(made_once, Library, aws, api, s3, alice, bob)


def rules(report: invariants.Report) -> list[str]:
    return sorted(v.rule for v in report.violations)


def test_a_library_built_by_the_app_passes_every_invariant(library: Library) -> None:
    report = library.check(quota=invariants.Quota(photos=3, bytes=10**9))
    assert report.ok, report.violations
    assert (report.users, report.photos, report.objects) == (2, 4, 6)


def with_attribute(item: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**item, **changes}


# Each corruption: (rule it must trip, how to do it to the library).
CORRUPTIONS: dict[str, tuple[str, Callable[[Library], None]]] = {
    "ready-photo-lost-its-small-preview": (
        "ready-missing-object",
        lambda lib: lib.delete_object(keys.preview_object(lib.alice, lib.ready, "small", WEBP)),
    ),
    "ready-photo-lost-its-original": (
        "ready-missing-object",
        lambda lib: lib.delete_object(keys.original_object(lib.alice, lib.ready)),
    ),
    "original-without-a-photo": (
        "orphan-object",
        lambda lib: lib.put_object(keys.original_object(lib.alice, UNKNOWN_PHOTO_ID)),
    ),
    "preview-of-a-rejected-photo": (
        "orphan-object",
        lambda lib: lib.put_object(keys.preview_object(lib.alice, lib.rejected, "large", WEBP)),
    ),
    "ready-photo-with-a-preview-of-another-format": (
        "orphan-object",
        lambda lib: lib.put_object(keys.preview_object(lib.alice, lib.ready, "large", JPEG)),
    ),
    "preview-filed-under-another-owner": (
        "orphan-object",
        lambda lib: lib.put_object(keys.preview_object(lib.bob, lib.ready, "large", WEBP)),
    ),
    "usage-counts-one-photo-too-many": (
        "usage-mismatch",
        lambda lib: lib.put_item(
            with_attribute(
                lib.item(lib.alice, keys.USAGE_SK),
                photos={"N": str(int(lib.item(lib.alice, keys.USAGE_SK)["photos"]["N"]) + 1)},
            )
        ),
    ),
    "usage-counts-one-byte-too-few": (
        "usage-mismatch",
        lambda lib: lib.put_item(
            with_attribute(
                lib.item(lib.bob, keys.USAGE_SK),
                bytes={"N": str(int(lib.item(lib.bob, keys.USAGE_SK)["bytes"]["N"]) - 1)},
            )
        ),
    ),
    "usage-counters-lost": ("usage-mismatch", lambda lib: lib.delete_item(lib.alice, keys.USAGE_SK)),
    "pending-counter-missed-a-settled-upload": (
        "usage-mismatch",
        lambda lib: lib.put_item(
            with_attribute(
                lib.item(lib.alice, keys.USAGE_SK),
                pending={"N": str(int(lib.item(lib.alice, keys.USAGE_SK)["pending"]["N"]) + 1)},
            )
        ),
    ),
    "pending-photo-with-a-ttl": (
        "unreachable-pending",
        lambda lib: lib.put_item(
            with_attribute(lib.item(lib.alice, keys.photo_sk(lib.pending)), expires_at_epoch={"N": "1"})
        ),
    ),
    "pending-photo-missing-from-the-pending-index": (
        "unreachable-pending",
        lambda lib: lib.put_item(
            {k: v for k, v in lib.item(lib.alice, keys.photo_sk(lib.pending)).items() if not k.startswith("GSI1")}
        ),
    ),
    "pending-photo-in-a-shard-the-reconciler-never-queries": (
        "unreachable-pending",
        lambda lib: lib.put_item(
            with_attribute(
                lib.item(lib.alice, keys.photo_sk(lib.pending)),
                GSI1PK={"S": keys.pending_index_pk(keys.PENDING_SHARDS)},
            )
        ),
    ),
    "pending-photo-in-the-wrong-partition-of-the-index": (
        "unreachable-pending",
        lambda lib: lib.put_item(
            with_attribute(lib.item(lib.alice, keys.photo_sk(lib.pending)), GSI1PK={"S": keys.purge_index_pk(0)})
        ),
    ),
    "ready-photo-left-in-the-pending-index": (
        "unreachable-pending",
        lambda lib: lib.put_item(
            with_attribute(
                lib.item(lib.alice, keys.photo_sk(lib.ready)),
                GSI1PK={"S": keys.pending_index_pk(0)},
                GSI1SK={"S": "2026-01-01T00:00:00.000Z"},
            )
        ),
    ),
    "usage-for-a-user-without-photos": (
        "usage-mismatch",
        lambda lib: lib.put_item(
            {**keys.usage_key("ca201000-0000-4000-8000-000000000003"), "photos": {"N": "1"}, "bytes": {"N": "9"}}
        ),
    ),
    "tag-copy-missing": ("tag-copy-mismatch", lambda lib: lib.delete_item(lib.alice, f"PHOTOTAG#{lib.ready}#sun")),
    "tag-copy-holding-the-photos-attributes": (
        "tag-copy-mismatch",
        lambda lib: lib.put_item(
            with_attribute(lib.item(lib.alice, f"PHOTOTAG#{lib.ready}#sea"), status={"S": "READY"})
        ),
    ),
    "tag-copy-indexed-under-another-tag": (
        "tag-copy-mismatch",
        lambda lib: lib.put_item(
            with_attribute(
                lib.item(lib.alice, f"PHOTOTAG#{lib.ready}#sea"), GSI1PK={"S": keys.tag_index_pk(lib.alice, "sky")}
            )
        ),
    ),
    "tag-copy-for-a-tag-the-photo-lost": (
        "tag-copy-mismatch",
        lambda lib: lib.put_item(
            with_attribute(
                lib.item(lib.alice, f"PHOTOTAG#{lib.ready}#sea"),
                SK={"S": f"PHOTOTAG#{lib.ready}#sky"},
                GSI1PK={"S": keys.tag_index_pk(lib.alice, "sky")},
            )
        ),
    ),
    "tag-copy-outliving-its-photo": (
        "tag-copy-mismatch",
        lambda lib: lib.put_item(
            with_attribute(
                lib.item(lib.alice, f"PHOTOTAG#{lib.pending}#later"),
                SK={"S": f"PHOTOTAG#{UNKNOWN_PHOTO_ID}#later"},
            )
        ),
    ),
    "item-outside-any-user": (
        "unparseable-item",
        lambda lib: lib.put_item({"PK": {"S": "JUNK#1"}, "SK": {"S": "PROFILE"}}),
    ),
    "rate-counter-that-never-expires": (
        "unparseable-item",
        lambda lib: lib.put_item({**keys.rate_key(lib.alice, 60), "entity": {"S": "rate"}, "count": {"N": "1"}}),
    ),
    "item-with-an-unknown-sort-key": (
        "unparseable-item",
        lambda lib: lib.put_item({"PK": {"S": keys.user_pk(lib.alice)}, "SK": {"S": "SETTINGS"}}),
    ),
    "photo-item-missing-its-version": (
        "unparseable-item",
        lambda lib: lib.put_item(
            {k: v for k, v in lib.item(lib.alice, keys.photo_sk(lib.ready)).items() if k != "version"}
        ),
    ),
    "photo-item-with-an-unknown-status": (
        "unparseable-item",
        lambda lib: lib.put_item(with_attribute(lib.item(lib.bob, keys.photo_sk(lib.bobs)), status={"S": "DONE"})),
    ),
    "object-outside-the-layout": ("unknown-object", lambda lib: lib.put_object("notes.txt", b"hello")),
    "preview-of-an-unknown-size": (
        "unknown-object",
        lambda lib: lib.put_object(f"previews/{lib.alice}/{lib.ready}/medium.jpg"),
    ),
    "upload-key-too-deep": ("unknown-object", lambda lib: lib.put_object(f"uploads/{lib.alice}/{lib.pending}/x")),
}


def test_each_corruption_trips_exactly_its_rule_and_restoring_clears_it(library: Library, subtests: Any) -> None:
    for name, (rule, corrupt) in CORRUPTIONS.items():
        with subtests.test(corruption=name, rule=rule):
            corrupt(library)
            try:
                report = library.check()
                assert rules(report) == [rule], [str(v) for v in report.violations]
                assert "\n" not in str(report.violations[0])
            finally:
                library.restore()
            restored = library.check()
            assert restored.ok, [str(v) for v in restored.violations]


def test_a_pending_photo_in_another_shard_the_reconciler_queries_is_reachable(library: Library) -> None:
    """keys.PENDING_SHARDS was raised from 16: an upload declared before keeps the shard 16 gave it (crc32 % 16),
    not the one 32 gives. Any shard the reconciler queries reaches it, so that is no violation; and its query does
    find it there."""
    current = keys.pending_shard(library.pending)
    elsewhere = current - 16 if current >= 16 else current + 16  # where the other count puts such an id
    item = library.item(library.alice, keys.photo_sk(library.pending))
    library.put_item(with_attribute(item, GSI1PK={"S": keys.pending_index_pk(elsewhere)}))
    try:
        assert library.check().ok
        shards = [keys.pending_index_pk(shard) for shard in range(keys.PENDING_SHARDS)]
        found = query_index_partitions(library.dynamodb, TABLE, keys.GSI1, shards)
        assert [entry["photo_id"]["S"] for entry in found] == [library.pending]
    finally:
        library.restore()


def test_a_photo_recording_another_preview_format_misses_those_previews_and_has_stray_ones(library: Library) -> None:
    """bob's photo (WebP previews) as if its item had lost its format, as a photo stored before WebP previews."""
    item = library.item(library.bob, keys.photo_sk(library.bobs))
    library.put_item({name: value for name, value in item.items() if name != "preview_format"})
    report = library.check()
    assert sorted((v.rule, v.subject) for v in report.violations) == [
        ("orphan-object", keys.preview_object(library.bob, library.bobs, "large", WEBP)),
        ("orphan-object", keys.preview_object(library.bob, library.bobs, "small", WEBP)),
        ("ready-missing-object", f"{library.bob}/{library.bobs}"),
    ]
    assert "small.jpg" in str(report.violations[-1])
    library.restore()
    assert library.check().ok


def test_usage_over_the_quota_trips_quota_exceeded_only(library: Library) -> None:
    # alice's READY and PENDING photos count; her REJECTED one does not.
    counted = library.item(library.alice, keys.USAGE_SK)
    photos, size = int(counted["photos"]["N"]), int(counted["bytes"]["N"])
    assert photos == 2
    assert library.check(quota=invariants.Quota(photos=2, bytes=size)).ok
    over_count = library.check(quota=invariants.Quota(photos=1, bytes=size))
    assert [(v.rule, v.subject) for v in over_count.violations] == [("quota-exceeded", library.alice)]
    over_bytes = library.check(quota=invariants.Quota(photos=2, bytes=size - 1))
    assert [(v.rule, v.subject) for v in over_bytes.violations] == [("quota-exceeded", library.alice)]


def test_a_stale_upload_is_reported_only_after_the_grace_window(library: Library, subtests: Any) -> None:
    grace = timedelta(minutes=30)
    second = timedelta(seconds=1)
    leftovers = {
        # The worker crashed after marking the photo READY, before removing the upload.
        "upload-of-a-ready-photo": keys.upload_object(library.alice, library.ready),
        "upload-of-a-rejected-photo": keys.upload_object(library.alice, library.rejected),
        # The photo was deleted while the browser was still uploading.
        "upload-without-a-photo": keys.upload_object(library.alice, UNKNOWN_PHOTO_ID),
        # An upload aimed at another owner's photo id is not that photo's upload.
        "upload-under-the-wrong-owner": keys.upload_object(library.bob, library.pending),
    }
    for name, key in leftovers.items():
        with subtests.test(leftover=name):
            library.put_object(key)
            try:
                modified = library.last_modified(key)
                inside = library.check(now=modified + grace - second, upload_grace=grace)
                assert inside.ok, [str(v) for v in inside.violations]
                at_edge = library.check(now=modified + grace, upload_grace=grace)
                assert at_edge.ok, [str(v) for v in at_edge.violations]
                past = library.check(now=modified + grace + second, upload_grace=grace)
                assert [(v.rule, v.subject) for v in past.violations] == [("stale-upload", key)]
            finally:
                library.restore()
    with subtests.test(leftover="upload-of-a-pending-photo"):
        # An upload whose photo is still PENDING is in flight (or waits for the reconciler), however old.
        key = keys.upload_object(library.alice, library.pending)
        library.put_object(key)
        report = library.check(now=library.last_modified(key) + timedelta(days=3), upload_grace=grace)
        assert report.ok, [str(v) for v in report.violations]


# --- albums ---------------------------------------------------------------------------------------------------------

UNKNOWN_ALBUM_ID = "01HYYYYYYYYYYYYYYYYYYYYYYY"
STRANGER = "d0d00000-0000-4000-8000-000000000004"
LINK_PASSWORD = "open sesame"
LONG_AGO = "2020-01-01T00:00:00.000Z"
SOME_TIME = "2026-01-01T00:00:00.000Z"


class SharedLibrary(Library):
    """The library, shared. alice's album `album` holds her READY photo (its cover) and bob's, which bob added as a
    contributor; carol is a viewer; it has a password link (tried once with a wrong password, then the right one),
    an open link, and had a third one, revoked. alice's album `other` went through a life (members added, photos
    added by both, one removed, one deleted from its owner's library, a member left, another was removed) and ends
    empty, with no members and no cover. A third album was filled, shared, linked, then deleted."""

    def __init__(self, aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User, carol: User) -> None:
        super().__init__(aws, api, s3, alice, bob)
        self.carol = carol.sub
        self.album = create_album(alice, "Summer")["album_id"]
        add_photos(alice, self.album, self.ready)
        share(alice, self.album, bob, "contributor")
        share(alice, self.album, carol, "viewer")
        assert [r["status"] for r in add_photos(bob, self.album, self.bobs)] == ["added"]
        locked = create_link(alice, self.album, password=LINK_PASSWORD, allow_download=True)
        self.locked_link, self.locked_hash = locked["link_id"], token_hash(locked["token"])
        wrong = public(api, "POST", f"/public/albums/{locked['token']}/unlock", {"password": "not it"})
        assert wrong.status_code == 401, wrong.body
        unlock(api, locked["token"], LINK_PASSWORD)
        opened = create_link(alice, self.album)
        self.open_link, self.open_hash = opened["link_id"], token_hash(opened["token"])
        revoked = create_link(alice, self.album)["link_id"]
        assert alice.call("DELETE", f"/albums/{self.album}/links/{revoked}").status_code == 204

        self.other = create_album(alice, "Autumn")["album_id"]
        share(alice, self.other, carol, "viewer")
        share(alice, self.other, bob, "contributor")
        bobs_second = upload_ready(api, s3, bob, jpeg(200, 100))["photo_id"]
        add_photos(bob, self.other, bobs_second)
        add_photos(alice, self.other, self.ready)
        removed = alice.call("POST", f"/albums/{self.other}/photos/remove", {"photo_ids": [self.ready]})
        assert removed.status_code == 200, removed.body
        assert bob.call("DELETE", f"/photos/{bobs_second}").status_code == 204
        assert carol.call("DELETE", f"/albums/{self.other}/members/{carol.sub}").status_code == 204
        assert alice.call("DELETE", f"/albums/{self.other}/members/{bob.sub}").status_code == 204

        gone = create_album(alice, "Winter")["album_id"]
        add_photos(alice, gone, self.ready)
        share(alice, gone, carol)
        create_link(alice, gone)
        assert alice.call("DELETE", f"/albums/{gone}").status_code == 204
        self.clean = snapshot(aws, counters=True)

    def raw(self, key: keys.Key) -> dict[str, Any]:
        return self.clean.items[(key["PK"]["S"], key["SK"]["S"])]

    def edit(self, key: keys.Key, **changes: Any) -> None:
        """Put back the item at `key` as the app left it, with `changes` (None removes an attribute)."""
        item = {**self.raw(key), **changes}
        self.put_item({name: value for name, value in item.items() if value is not None})

    def copy_to(self, key: keys.Key, new_key: keys.Key, **changes: Any) -> None:
        self.put_item({**self.raw(key), **new_key, **changes})

    def delete(self, key: keys.Key) -> None:
        self.dynamodb.delete_item(TableName=TABLE, Key=key)

    def put_entry(self, album_id: str, photo_id: str, owner_id: str, added_at: str = SOME_TIME) -> None:
        """A photo entry and its copy beside the photo, as the app writes them."""
        entry = AlbumPhotoEntry(album_id, photo_id, owner_id, added_at, WEBP)
        self.put_item(album_items.album_photo_item(entry))
        self.put_item(album_items.photo_album_item(entry))

    def move_entry(self, photo_id: str, owner_id: str, *, to_photo: str, to_owner: str) -> None:
        """Replace one photo entry of `album` (and its copy) with an entry for another photo: the count holds."""
        self.delete(keys.album_photo_key(self.album, photo_id))
        self.delete(keys.photo_album_key(owner_id, photo_id, self.album))
        self.put_entry(self.album, to_photo, to_owner)

    def count(self, album_id: str, name: str) -> int:
        return int(self.raw(keys.album_key(album_id))[name]["N"])

    def mark_leaving(self, user_id: str, since: str, *, shard: int | None = None, member_count: int = 1) -> None:
        """What begin_leaving writes for a member of `album` (a `shard` to file it under the wrong one)."""
        shard = keys.cleanup_shard(self.album) if shard is None else shard
        self.edit(
            keys.member_key(self.album, user_id),
            leaving_since={"S": since},
            GSI1PK={"S": keys.cleanup_index_pk(shard)},
            GSI1SK={"S": keys.cleanup_index_sk(since, self.album, user_id)},
        )
        self.delete(keys.album_access_key(user_id, self.album))
        self.edit(keys.album_key(self.album), member_count={"N": str(member_count)})

    def photo_of_a_stranger(self) -> None:
        """bob's photo in `other`, where he is no member (counted, so only the stranger is wrong)."""
        self.put_entry(self.other, self.bobs, self.bob)
        self.edit(keys.album_key(self.other), photo_count={"N": "1"})

    def departure_keeping_access(self) -> None:
        self.mark_leaving(self.carol, now_iso())
        self.put_item(self.raw(keys.album_access_key(self.carol, self.album)))

    def owner_as_member(self) -> None:
        """alice listed as a member of her own album (and counted, so only the membership is wrong)."""
        self.copy_to(
            keys.member_key(self.album, self.carol), keys.member_key(self.album, self.alice), user_id={"S": self.alice}
        )
        self.edit(keys.album_key(self.album), member_count={"N": "3"})

    def mark_deleting(self, since: str, *, indexed: bool = True) -> None:
        """What begin_delete writes (without the index, to break it)."""
        index = {
            "GSI1PK": {"S": keys.cleanup_index_pk(keys.cleanup_shard(self.album))},
            "GSI1SK": {"S": keys.cleanup_index_sk(since, self.album, keys.ALBUM_SK)},
        }
        self.edit(keys.album_key(self.album), deleting_since={"S": since}, **(index if indexed else {}))


@pytest.fixture
def shared(
    aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User, carol: User, made_once: MadeOnce
) -> SharedLibrary:
    return made_library(made_once, SharedLibrary, aws, api, s3, alice, bob, carol)


def now_iso() -> str:
    return iso_utc(datetime.now(UTC))


def test_albums_built_by_the_app_pass_every_invariant(shared: SharedLibrary) -> None:
    report = shared.check()
    assert report.ok, [str(v) for v in report.violations]
    # alice, bob and carol (album access and a write-rate counter); alice's 3 photos, bob's first and his second,
    # which went to the trash (deleting a READY photo trashes it) with its objects.
    assert (report.users, report.photos, report.albums, report.objects) == (3, 5, 2, 9)
    entities = {item["entity"]["S"] for item in shared.clean.items.values() if "entity" in item}
    assert {
        "album",
        "album_member",
        "album_access",
        "album_photo",
        "photo_album",
        "album_link",
        "link_token",
        "link_failures",
    } <= entities
    assert shared.count(shared.other, "photo_count") == shared.count(shared.other, "member_count") == 0


def _link_of_a_missing_album(lib: SharedLibrary) -> None:
    # Only the album's item: its token item would be a second orphan.
    lib.copy_to(
        keys.link_key(lib.album, lib.open_link),
        keys.link_key(UNKNOWN_ALBUM_ID, lib.open_link),
        album_id={"S": UNKNOWN_ALBUM_ID},
        token_hash={"S": "0" * 64},
    )


# Each corruption of the shared library: (the rule it must trip, how).
ALBUM_CORRUPTIONS: dict[str, tuple[str, Callable[[SharedLibrary], Any]]] = {
    "photo-count-one-too-many": (
        "album-count-mismatch",
        lambda lib: lib.edit(
            keys.album_key(lib.album), photo_count={"N": str(lib.count(lib.album, "photo_count") + 1)}
        ),
    ),
    "member-count-missing-a-member": (
        "album-count-mismatch",
        lambda lib: lib.edit(keys.album_key(lib.album), member_count={"N": "1"}),
    ),
    "member-count-still-counting-a-departure": (
        "album-count-mismatch",
        lambda lib: lib.mark_leaving(lib.carol, now_iso(), member_count=2),
    ),
    "copy-beside-the-photo-lost": (
        "album-photo-copy-mismatch",
        lambda lib: lib.delete(keys.photo_album_key(lib.bob, lib.bobs, lib.album)),
    ),
    "copy-without-its-entry": (
        "album-photo-copy-mismatch",
        lambda lib: lib.put_item(album_items.photo_album_item(AlbumPhotoEntry(lib.other, lib.ready, lib.alice, ""))),
    ),
    "copy-holding-more-than-keys": (
        "album-photo-copy-mismatch",
        lambda lib: lib.edit(keys.photo_album_key(lib.bob, lib.bobs, lib.album), title={"S": "a copy"}),
    ),
    "entry-recording-another-preview-format": (
        "album-photo-copy-mismatch",
        lambda lib: lib.edit(keys.album_photo_key(lib.album, lib.bobs), preview_format=None),
    ),
    "entry-missing-from-the-albums-photo-index": (
        "album-photo-copy-mismatch",
        lambda lib: lib.edit(keys.album_photo_key(lib.album, lib.bobs), GSI1PK=None, GSI1SK=None),
    ),
    "entry-of-a-pending-photo": (
        "album-photo-not-ready",
        lambda lib: lib.move_entry(lib.bobs, lib.bob, to_photo=lib.pending, to_owner=lib.alice),
    ),
    "entry-of-a-rejected-photo": (
        "album-photo-not-ready",
        lambda lib: lib.move_entry(lib.bobs, lib.bob, to_photo=lib.rejected, to_owner=lib.alice),
    ),
    "entry-of-a-photo-that-is-gone": (
        "album-photo-not-ready",
        lambda lib: lib.move_entry(lib.bobs, lib.bob, to_photo=UNKNOWN_PHOTO_ID, to_owner=lib.alice),
    ),
    "entry-naming-the-wrong-owner": (
        "album-photo-not-ready",
        lambda lib: lib.move_entry(lib.bobs, lib.bob, to_photo=lib.bobs, to_owner=lib.alice),
    ),
    "photo-of-a-member-not-marked-as-contributor": (
        "album-photo-stranger",
        lambda lib: lib.edit(keys.member_key(lib.album, lib.bob), contributed=None),
    ),
    "photo-of-someone-who-is-no-member": ("album-photo-stranger", lambda lib: lib.photo_of_a_stranger()),
    "cover-not-in-the-album": (
        "album-cover-mismatch",
        lambda lib: lib.edit(keys.album_key(lib.album), cover_photo_id={"S": UNKNOWN_PHOTO_ID}),
    ),
    "cover-owner-not-the-photos-owner": (
        "album-cover-mismatch",
        lambda lib: lib.edit(keys.album_key(lib.album), cover_owner_id={"S": lib.bob}),
    ),
    "cover-owner-without-a-cover": (
        "album-cover-mismatch",
        lambda lib: lib.edit(keys.album_key(lib.other), cover_owner_id={"S": lib.alice}),
    ),
    "cover-preview-format-without-a-cover": (
        "album-cover-mismatch",
        lambda lib: lib.edit(keys.album_key(lib.other), cover_preview={"S": f"{lib.ready}#webp"}),
    ),
    "cover-recording-another-preview-format": (
        "album-cover-mismatch",
        lambda lib: lib.edit(keys.album_key(lib.album), cover_preview={"S": f"{lib.ready}#jpeg"}),
    ),
    "cover-without-its-preview-format": (
        # A WebP cover with no format recorded for it would be served as JPEG (the format a cover set before WebP
        # previews has): the app writes the format with every cover it sets.
        "album-cover-mismatch",
        lambda lib: lib.edit(keys.album_key(lib.album), cover_preview=None),
    ),
    "member-of-an-album-that-is-gone": (
        "orphan-album-item",
        lambda lib: lib.copy_to(
            keys.member_key(lib.album, lib.carol),
            keys.member_key(UNKNOWN_ALBUM_ID, lib.carol),
            album_id={"S": UNKNOWN_ALBUM_ID},
        ),
    ),
    "entry-of-an-album-that-is-gone": (
        "orphan-album-item",
        lambda lib: lib.put_entry(UNKNOWN_ALBUM_ID, lib.ready, lib.alice),
    ),
    "access-to-an-album-that-is-gone": (
        "orphan-album-item",
        lambda lib: lib.put_item(album_items.access_item(lib.carol, UNKNOWN_ALBUM_ID, Role.VIEWER)),
    ),
    "link-of-an-album-that-is-gone": ("orphan-album-item", _link_of_a_missing_album),
    "link-token-of-an-album-that-is-gone": (
        "orphan-album-item",
        lambda lib: lib.copy_to(
            keys.link_token_key(lib.open_hash),
            keys.link_token_key("f" * 64),
            album_id={"S": UNKNOWN_ALBUM_ID},
            token_hash={"S": "f" * 64},
        ),
    ),
    "member-without-access": (
        "album-access-mismatch",
        lambda lib: lib.delete(keys.album_access_key(lib.carol, lib.album)),
    ),
    "access-with-another-role-than-the-members": (
        "album-access-mismatch",
        lambda lib: lib.edit(keys.album_access_key(lib.carol, lib.album), role={"S": "contributor"}),
    ),
    "access-for-someone-who-is-no-member": (
        "album-access-mismatch",
        lambda lib: lib.put_item(album_items.access_item(STRANGER, lib.album, Role.VIEWER)),
    ),
    "owner-without-access": (
        "album-access-mismatch",
        lambda lib: lib.delete(keys.album_access_key(lib.alice, lib.other)),
    ),
    "departing-member-keeping-access": ("album-access-mismatch", lambda lib: lib.departure_keeping_access()),
    "owner-also-a-member": ("album-access-mismatch", lambda lib: lib.owner_as_member()),
    "link-without-its-token-item": (
        "link-pair-mismatch",
        lambda lib: lib.delete(keys.link_token_key(lib.locked_hash)),
    ),
    "token-item-without-its-link": (
        "link-pair-mismatch",
        lambda lib: lib.delete(keys.link_key(lib.album, lib.open_link)),
    ),
    "token-item-allowing-downloads-the-link-does-not": (
        "link-pair-mismatch",
        lambda lib: lib.edit(keys.link_token_key(lib.open_hash), allow_download={"BOOL": True}),
    ),
    "token-item-that-lost-its-password": (
        "link-pair-mismatch",
        lambda lib: lib.edit(keys.link_token_key(lib.locked_hash), password_hash=None),
    ),
    "wrong-password-counter-that-never-expires": (
        "unparseable-item",
        lambda lib: lib.put_item(
            {**keys.link_failures_key(lib.locked_hash, 900), "entity": {"S": "link_failures"}, "count": {"N": "3"}}
        ),
    ),
    "album-without-a-title": ("unparseable-item", lambda lib: lib.edit(keys.album_key(lib.album), title=None)),
    "album-naming-another-album-than-its-key": (
        "unparseable-item",
        lambda lib: lib.edit(keys.album_key(lib.other), album_id={"S": UNKNOWN_ALBUM_ID}),
    ),
    "member-with-an-unknown-role": (
        "unparseable-item",
        lambda lib: lib.edit(keys.member_key(lib.album, lib.bob), role={"S": "admin"}),
    ),
    "departure-since-no-time": (
        "unparseable-item",
        lambda lib: lib.edit(keys.member_key(lib.album, lib.carol), leaving_since={"S": "yesterday"}),
    ),
    "entry-naming-another-photo-than-its-key": (
        "unparseable-item",
        lambda lib: lib.edit(keys.album_photo_key(lib.album, lib.bobs), photo_id={"S": UNKNOWN_PHOTO_ID}),
    ),
    "access-with-an-unknown-role": (
        "unparseable-item",
        lambda lib: lib.edit(keys.album_access_key(lib.carol, lib.album), role={"S": "admin"}),
    ),
    "link-token-under-a-key-that-is-no-hash": (
        "unparseable-item",
        lambda lib: lib.copy_to(
            keys.link_token_key(lib.open_hash), keys.link_token_key("not-a-hash"), token_hash={"S": "not-a-hash"}
        ),
    ),
    "copy-with-a-malformed-key": (
        "unparseable-item",
        lambda lib: lib.put_item(
            {
                "PK": {"S": keys.user_pk(lib.alice)},
                "SK": {"S": f"{keys.PHOTO_ALBUM_PREFIX}{lib.ready}"},
                "entity": {"S": "photo_album"},
            }
        ),
    ),
    "unknown-item-in-an-album": (
        "unparseable-item",
        lambda lib: lib.put_item({"PK": {"S": keys.album_pk(lib.album)}, "SK": {"S": "SETTINGS"}}),
    ),
    "deletion-missing-from-the-cleanup-index": (
        "unreachable-cleanup",
        lambda lib: lib.mark_deleting(now_iso(), indexed=False),
    ),
    "album-in-the-cleanup-index-though-not-being-deleted": (
        "unreachable-cleanup",
        lambda lib: lib.edit(
            keys.album_key(lib.album),
            GSI1PK={"S": keys.cleanup_index_pk(keys.cleanup_shard(lib.album))},
            GSI1SK={"S": keys.cleanup_index_sk(now_iso(), lib.album, keys.ALBUM_SK)},
        ),
    ),
    "departure-in-the-wrong-shard": (
        "unreachable-cleanup",
        lambda lib: lib.mark_leaving(
            lib.carol, now_iso(), shard=(keys.cleanup_shard(lib.album) + 1) % keys.CLEANUP_SHARDS
        ),
    ),
    "deletion-the-sweeper-never-finished": ("overdue-cleanup", lambda lib: lib.mark_deleting(LONG_AGO)),
    "departure-the-sweeper-never-finished": ("overdue-cleanup", lambda lib: lib.mark_leaving(lib.carol, LONG_AGO)),
}


def test_each_album_corruption_trips_exactly_its_rule_and_restoring_clears_it(
    shared: SharedLibrary, subtests: Any
) -> None:
    for name, (rule, corrupt) in ALBUM_CORRUPTIONS.items():
        with subtests.test(corruption=name, rule=rule):
            corrupt(shared)
            try:
                report = shared.check()
                assert rules(report) == [rule], [str(v) for v in report.violations]
                assert "\n" not in str(report.violations[0])
            finally:
                shared.restore()
            restored = shared.check()
            assert restored.ok, [str(v) for v in restored.violations]


def test_every_album_rule_has_a_corruption() -> None:
    album_rules = {
        "album-count-mismatch",
        "album-photo-copy-mismatch",
        "album-photo-not-ready",
        "album-photo-stranger",
        "album-cover-mismatch",
        "orphan-album-item",
        "album-access-mismatch",
        "link-pair-mismatch",
        "unreachable-cleanup",
        "overdue-cleanup",
    }
    assert album_rules <= {rule for rule, _ in ALBUM_CORRUPTIONS.values()}
    documented = (PROJECT_DIR / "docs" / "RELIABILITY.md").read_text()
    for rule in sorted(album_rules):
        assert f"``{rule}``" in (invariants.__doc__ or ""), rule
        assert f"`{rule}`" in documented, rule


def sweep_at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> dict[str, int]:
    """The album sweeper as it runs at `moment` (the scheduled job's second half), on the app's clients."""
    with monkeypatch.context() as patched:
        patched.setattr(clock, "now", lambda: moment)
        deps.reset()
        try:
            return deps.album_service().finish_left_behind(deadline=lambda: False)
        finally:
            deps.reset()


def test_a_deletion_and_a_departure_cut_short_are_overdue_only_past_the_grace_and_the_sweeper_ends_them(
    shared: SharedLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut short the way a request dies after its first write: `other` marked deleting, carol marked leaving."""
    grace, second = timedelta(minutes=5), timedelta(seconds=1)
    repository = deps.album_repository()
    began = datetime.fromisoformat(now_iso().replace("Z", "+00:00"))
    _, carol = repository.get_with_membership(shared.album, shared.carol)
    other = repository.get(shared.other)
    assert carol is not None
    assert other is not None
    assert repository.begin_leaving(carol, since=iso_utc(began))
    assert repository.begin_delete(other, since=iso_utc(began))

    for now in (began, began + grace - second, began + grace):
        report = shared.check(now=now, cleanup_grace=grace)
        assert report.ok, [str(v) for v in report.violations]
    late = shared.check(now=began + grace + second, cleanup_grace=grace)
    assert sorted((v.rule, v.subject) for v in late.violations) == sorted(
        [("overdue-cleanup", shared.other), ("overdue-cleanup", f"{shared.album}/{shared.carol}")]
    )
    # The defaults are the sweeper's own grace.
    assert rules(shared.check(now=began + CLEANUP_GRACE + second)) == ["overdue-cleanup"] * 2

    counts = sweep_at(monkeypatch, began + CLEANUP_GRACE + second)
    assert counts == {"albums_deleted": 1, "departures_finished": 1, "left_for_next_run": 0}
    report = shared.check(now=began + CLEANUP_GRACE + second)
    assert report.ok, [str(v) for v in report.violations]
    assert report.albums == 1


# --- the library: trash, favourites, the timeline, duplicates, account deletion ---------------------------------------


class TrashedLibrary(Library):
    """The library with issue 13's state besides. alice: `fav`, a favourite; `trashed`, trashed while in her album
    `album` (which keeps `ready`, its cover); `copy`, an upload of `ready`'s very bytes, REJECTED as its duplicate."""

    def __init__(self, aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User) -> None:
        super().__init__(aws, api, s3, alice, bob)
        self.fav = upload_ready(api, s3, alice)["photo_id"]
        favourite = alice.call("PATCH", f"/photos/{self.fav}", {"favorite": True, "version": 1})
        assert favourite.status_code == 200, favourite.body
        self.trashed = upload_ready(api, s3, alice)["photo_id"]
        self.album = create_album(alice, "Summer")["album_id"]
        add_photos(alice, self.album, self.ready, self.trashed)
        assert alice.call("DELETE", f"/photos/{self.trashed}").status_code == 204
        same_bytes = s3.get_object(Bucket=BUCKET, Key=keys.original_object(alice.sub, self.ready))["Body"].read()
        self.copy = start_upload(alice, same_bytes)["photo"]["photo_id"]
        deliver(api, put_upload(s3, alice.sub, self.copy, same_bytes))
        self.clean = snapshot(aws, counters=True)

    def photo(self, photo_id: str, owner: str | None = None) -> dict[str, Any]:
        return self.item(owner or self.alice, keys.photo_sk(photo_id))

    def edit_photo(self, photo_id: str, owner: str | None = None, **changes: Any) -> None:
        """Put back the photo item as the app left it, with `changes` (None removes an attribute)."""
        item = {**self.photo(photo_id, owner), **changes}
        self.put_item({name: value for name, value in item.items() if value is not None})

    def sha256(self, photo_id: str, owner: str | None = None) -> str:
        return str(self.photo(photo_id, owner)["sha256"]["S"])

    @property
    def month(self) -> str:
        return str(self.photo(self.ready)["created_at"]["S"][:7])

    def edit_usage(self, owner: str | None = None, **deltas: int) -> None:
        usage = self.item(owner or self.alice, keys.USAGE_SK)
        changed = {name: {"N": str(int(usage.get(name, {}).get("N", "0")) + delta)} for name, delta in deltas.items()}
        self.put_item({**usage, **changed})

    def put_claim(self, owner: str, digest: str, photo_id: str) -> None:
        self.put_item({**keys.sha256_key(owner, digest), "entity": {"S": "photo_hash"}, "photo_id": {"S": photo_id}})

    def put_month(self, owner: str, month: str, count: int) -> None:
        self.put_item({**keys.month_key(owner, month), "entity": {"S": "month"}, "count": {"N": str(count)}})

    def same_bytes_twice(self) -> None:
        """`fav` made to hold `ready`'s bytes (its own claim gone with its old bytes): two copies in the library."""
        self.delete_item(self.alice, f"{keys.SHA256_PREFIX}{self.sha256(self.fav)}")
        self.edit_photo(self.fav, sha256={"S": self.sha256(self.ready)})

    def trashed_back_in_the_album(self) -> None:
        """An entry and its copy for the trashed photo, counted: only its being in the trash is wrong."""
        entry = AlbumPhotoEntry(self.album, self.trashed, self.alice, SOME_TIME, WEBP)
        self.put_item(album_items.album_photo_item(entry))
        self.put_item(album_items.photo_album_item(entry))
        album = self.clean.items[(keys.album_pk(self.album), keys.ALBUM_SK)]
        self.put_item({**album, "photo_count": {"N": str(int(album["photo_count"]["N"]) + 1)}})

    def stored_before_the_library(self) -> None:
        """`ready` as an earlier PhotoSky left it: no `indexed` mark, no hash or claim, in no new index, uncounted."""
        self.delete_item(self.alice, f"{keys.SHA256_PREFIX}{self.sha256(self.ready)}")
        self.edit_photo(self.ready, indexed=None, sha256=None, GSI2PK=None, GSI2SK=None)
        self.put_month(self.alice, self.month, 1)

    def purge_before_trashed(self) -> None:
        """A minute before it was trashed (not so long ago that the purge is overdue)."""
        trashed_at = iso_utc(_at(self.photo(self.trashed)["trashed_at"]["S"]) - timedelta(minutes=1))
        self.edit_photo(
            self.trashed,
            purge_at={"S": trashed_at},
            GSI1SK={"S": keys.purge_index_sk(trashed_at, self.alice, self.trashed)},
        )

    def mark_deletion(self, user_id: str, since: str, *, indexed: bool = True, keep: str | None = None) -> None:
        """What DELETE /users/me writes first (the real repository's step): the mark, the usage blocked, the
        profile gone. To break it: the mark out of the clean-up index, or the usage or profile `keep` as it was."""
        DynamoAccountRepository(self.dynamodb, TABLE).begin(user_id, since=since)
        if not indexed:
            self.dynamodb.update_item(
                TableName=TABLE, Key=keys.account_deletion_key(user_id), UpdateExpression="REMOVE GSI1PK, GSI1SK"
            )
        if keep is not None:
            self.put_item(self.item(user_id, keep))


@pytest.fixture
def trashed(
    aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User, made_once: MadeOnce
) -> TrashedLibrary:
    return made_library(made_once, TrashedLibrary, aws, api, s3, alice, bob)


def test_a_library_with_trash_favourites_and_duplicates_built_by_the_app_passes_every_invariant(
    trashed: TrashedLibrary,
) -> None:
    report = trashed.check()
    assert report.ok, [str(v) for v in report.violations]
    # alice: ready, pending, rejected, fav, trashed (objects kept), copy (none); bob: one.
    assert (report.users, report.photos, report.objects) == (2, 7, 12)
    copy = trashed.photo(trashed.copy)
    assert (copy["status"]["S"], copy["duplicate_of"]["S"]) == ("REJECTED", trashed.ready)
    thrown = trashed.photo(trashed.trashed)
    assert "purge_at" in thrown
    assert thrown["album_return"]["L"][0]["S"].startswith(f"{trashed.album}#")
    usage = trashed.item(trashed.alice, keys.USAGE_SK)
    # ready, pending, fav and trashed count (the rejections do not); trashed in the trash too.
    assert (usage["photos"]["N"], usage["trash_photos"]["N"]) == ("4", "1")
    # ready and fav (the trashed photo left the month's count and gave up its claim).
    assert trashed.item(trashed.alice, f"{keys.MONTH_PREFIX}{trashed.month}")["count"]["N"] == "2"
    claims = sorted(sk for pk, sk in trashed.clean.items if pk == keys.user_pk(trashed.alice) and "SHA256#" in sk)
    assert claims == sorted(f"{keys.SHA256_PREFIX}{trashed.sha256(p)}" for p in (trashed.ready, trashed.fav))


ANOTHER_SHA256 = "ab" * 32


# Each corruption of the library's new state: (the rule it must trip, how).
LIBRARY_CORRUPTIONS: dict[str, tuple[str, Callable[[TrashedLibrary], Any]]] = {
    "trash-counter-missing-a-photo": ("usage-mismatch", lambda lib: lib.edit_usage(trash_photos=-1)),
    "trash-bytes-one-too-many": ("usage-mismatch", lambda lib: lib.edit_usage(trash_bytes=+1)),
    "usage-no-longer-counting-a-trashed-photo": (
        "usage-mismatch",
        lambda lib: lib.edit_usage(photos=-1, bytes=-int(lib.photo(lib.trashed)["size_bytes"]["N"])),
    ),
    "month-counter-one-too-many": (
        "month-count-mismatch",
        lambda lib: lib.put_month(lib.alice, lib.month, 3),
    ),
    "month-counter-lost": (
        "month-count-mismatch",
        lambda lib: lib.delete_item(lib.alice, f"{keys.MONTH_PREFIX}{lib.month}"),
    ),
    "month-counter-negative": ("month-count-mismatch", lambda lib: lib.put_month(lib.alice, "2020-01", -1)),
    "photo-taken-in-another-month-than-counted": (
        "month-count-mismatch",
        lambda lib: lib.edit_photo(
            lib.fav,
            taken_at={"S": "2019-05-04T10:00:00Z"},
            GSI2SK={"S": keys.time_index_sk("2019-05-04T10:00:00Z", lib.fav)},
        ),
    ),
    "claim-lost": (
        "hash-claim-mismatch",
        lambda lib: lib.delete_item(lib.alice, f"{keys.SHA256_PREFIX}{lib.sha256(lib.ready)}"),
    ),
    "claim-naming-a-trashed-photo": (
        "hash-claim-mismatch",
        lambda lib: lib.put_claim(lib.alice, lib.sha256(lib.trashed), lib.trashed),
    ),
    "claim-naming-a-rejected-copy": (
        "hash-claim-mismatch",
        lambda lib: lib.put_claim(lib.alice, lib.sha256(lib.ready), lib.copy),
    ),
    "claim-naming-a-photo-that-is-gone": (
        "hash-claim-mismatch",
        lambda lib: lib.put_claim(lib.alice, ANOTHER_SHA256, UNKNOWN_PHOTO_ID),
    ),
    "claim-naming-a-photo-with-other-bytes": (
        "hash-claim-mismatch",
        lambda lib: lib.put_claim(lib.alice, ANOTHER_SHA256, lib.ready),
    ),
    "claim-naming-another-owners-photo": (
        "hash-claim-mismatch",
        lambda lib: lib.put_claim(lib.alice, lib.sha256(lib.bobs, lib.bob), lib.bobs),
    ),
    "two-library-photos-with-the-same-bytes": ("duplicate-in-library", lambda lib: lib.same_bytes_twice()),
    "ready-photo-missing-from-the-timeline": (
        "photo-index-mismatch",
        lambda lib: lib.edit_photo(lib.ready, GSI2PK=None, GSI2SK=None),
    ),
    "timeline-entry-at-the-wrong-time": (
        "photo-index-mismatch",
        lambda lib: lib.edit_photo(lib.ready, GSI2SK={"S": keys.time_index_sk(LONG_AGO, lib.ready)}),
    ),
    "favourite-missing-from-favourites": (
        "photo-index-mismatch",
        lambda lib: lib.edit_photo(lib.fav, GSI1PK=None, GSI1SK=None),
    ),
    "photo-in-favourites-that-is-no-favourite": (
        "photo-index-mismatch",
        lambda lib: lib.edit_photo(
            lib.ready, GSI1PK={"S": keys.favorites_index_pk(lib.alice)}, GSI1SK={"S": keys.photo_sk(lib.ready)}
        ),
    ),
    "trashed-photo-missing-from-the-purge-index": (
        "photo-index-mismatch",
        lambda lib: lib.edit_photo(lib.trashed, GSI1PK=None, GSI1SK=None),
    ),
    "trashed-photo-in-the-wrong-purge-shard": (
        "photo-index-mismatch",
        lambda lib: lib.edit_photo(
            lib.trashed,
            GSI1PK={"S": keys.purge_index_pk((keys.purge_shard(lib.trashed) + 1) % keys.PURGE_SHARDS)},
        ),
    ),
    "trashed-photo-missing-from-the-trash-listing": (
        "photo-index-mismatch",
        lambda lib: lib.edit_photo(lib.trashed, GSI2PK=None, GSI2SK=None),
    ),
    "trashed-photo-still-on-the-timeline": (
        "photo-index-mismatch",
        lambda lib: lib.edit_photo(lib.trashed, GSI2PK={"S": keys.taken_index_pk(lib.alice)}),
    ),
    "rejected-photo-on-the-timeline": (
        "photo-index-mismatch",
        lambda lib: lib.edit_photo(
            lib.copy,
            GSI2PK={"S": keys.taken_index_pk(lib.alice)},
            GSI2SK={"S": keys.time_index_sk(SOME_TIME, lib.copy)},
        ),
    ),
    "pending-photo-on-the-timeline": (
        "photo-index-mismatch",
        lambda lib: lib.edit_photo(
            lib.pending,
            GSI2PK={"S": keys.taken_index_pk(lib.alice)},
            GSI2SK={"S": keys.time_index_sk(SOME_TIME, lib.pending)},
        ),
    ),
    "trashed-photo-without-purge-at": ("photo-state-mismatch", lambda lib: lib.edit_photo(lib.trashed, purge_at=None)),
    "purge-at-before-the-photo-was-trashed": ("photo-state-mismatch", lambda lib: lib.purge_before_trashed()),
    "purge-at-outside-the-trash": (
        "photo-state-mismatch",
        lambda lib: lib.edit_photo(lib.ready, purge_at={"S": SOME_TIME}),
    ),
    "purging-mark-outside-the-trash": (
        "photo-state-mismatch",
        lambda lib: lib.edit_photo(lib.ready, purging={"BOOL": True}),
    ),
    "sha256-on-a-pending-photo": (
        "photo-state-mismatch",
        lambda lib: lib.edit_photo(lib.pending, sha256={"S": ANOTHER_SHA256}),
    ),
    "duplicate-of-on-a-ready-photo": (
        "photo-state-mismatch",
        lambda lib: lib.edit_photo(lib.fav, duplicate_of={"S": lib.ready}),
    ),
    "rejected-copy-without-duplicate-of": (
        "photo-state-mismatch",
        lambda lib: lib.edit_photo(lib.copy, duplicate_of=None),
    ),
    "rejected-copy-naming-another-photo": (
        "photo-state-mismatch",
        lambda lib: lib.edit_photo(lib.copy, duplicate_of={"S": lib.fav}),
    ),
    "album-return-without-the-time-added": (
        "photo-state-mismatch",
        lambda lib: lib.edit_photo(lib.trashed, album_return={"L": [{"S": lib.album}]}),
    ),
    "trashed-photo-still-in-an-album": ("trashed-photo-in-album", lambda lib: lib.trashed_back_in_the_album()),
    "photo-stored-before-the-library": ("unindexed-photo", lambda lib: lib.stored_before_the_library()),
    "deletion-mark-missing-from-the-cleanup-index": (
        "unreachable-cleanup",
        lambda lib: lib.mark_deletion(lib.bob, now_iso(), indexed=False),
    ),
    "deletion-without-its-usage-blocked": (
        "account-deletion-mismatch",
        lambda lib: lib.mark_deletion(lib.bob, now_iso(), keep=keys.USAGE_SK),
    ),
    "profile-kept-during-a-deletion": (
        "account-deletion-mismatch",
        lambda lib: lib.mark_deletion(lib.bob, now_iso(), keep=keys.PROFILE_SK),
    ),
    "usage-blocked-with-no-deletion-under-way": (
        "account-deletion-mismatch",
        lambda lib: lib.put_item({**lib.item(lib.bob, keys.USAGE_SK), "deleting_since": {"S": SOME_TIME}}),
    ),
    "month-counter-under-a-malformed-key": (
        "unparseable-item",
        lambda lib: lib.put_item(
            {
                "PK": {"S": keys.user_pk(lib.alice)},
                "SK": {"S": "MONTH#2026-13"},
                "entity": {"S": "month"},
                "count": {"N": "0"},
            }
        ),
    ),
    "claim-under-a-key-that-is-no-hash": (
        "unparseable-item",
        lambda lib: lib.put_item(
            {
                "PK": {"S": keys.user_pk(lib.alice)},
                "SK": {"S": "SHA256#ABC"},
                "entity": {"S": "photo_hash"},
                "photo_id": {"S": lib.ready},
            }
        ),
    ),
    "claim-without-its-photo": (
        "unparseable-item",
        lambda lib: lib.put_item({**keys.sha256_key(lib.alice, ANOTHER_SHA256), "entity": {"S": "photo_hash"}}),
    ),
    "deletion-since-no-time": (
        "unparseable-item",
        lambda lib: lib.put_item(
            {
                **keys.account_deletion_key(lib.bob),
                "entity": {"S": "account_deletion"},
                "user_id": {"S": lib.bob},
                "since": {"S": "yesterday"},
            }
        ),
    ),
    "trashed-at-no-time": ("unparseable-item", lambda lib: lib.edit_photo(lib.trashed, trashed_at={"S": "today"})),
}


def test_each_library_corruption_trips_exactly_its_rule_and_restoring_clears_it(
    trashed: TrashedLibrary, subtests: Any
) -> None:
    for name, (rule, corrupt) in LIBRARY_CORRUPTIONS.items():
        with subtests.test(corruption=name, rule=rule):
            corrupt(trashed)
            try:
                report = trashed.check()
                # A photo moved to another month is two months miscounted: one rule, once per month.
                assert set(rules(report)) == {rule}, [str(v) for v in report.violations]
                assert "\n" not in str(report.violations[0])
            finally:
                trashed.restore()
            restored = trashed.check()
            assert restored.ok, [str(v) for v in restored.violations]


LIBRARY_RULES = {
    "unindexed-photo",
    "photo-index-mismatch",
    "photo-state-mismatch",
    "month-count-mismatch",
    "hash-claim-mismatch",
    "duplicate-in-library",
    "trashed-photo-in-album",
    "unfinished-album-return",
    "overdue-purge",
    "account-deletion-mismatch",
}


def test_every_library_rule_has_a_corruption_and_is_documented() -> None:
    tried = {rule for rule, _ in LIBRARY_CORRUPTIONS.values()}
    # The two left-behind rules depend on time: their own tests below.
    assert LIBRARY_RULES - {"unfinished-album-return", "overdue-purge"} <= tried
    for rule in sorted(LIBRARY_RULES):
        assert f"``{rule}``" in (invariants.__doc__ or ""), rule


def test_a_zero_month_counter_is_no_violation(trashed: TrashedLibrary) -> None:
    """A month whose photos all left keeps its counter at 0 (the timeline omits it): nothing to report."""
    trashed.put_month(trashed.alice, "2020-01", 0)
    report = trashed.check()
    assert report.ok, [str(v) for v in report.violations]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_restore_cut_short_is_reported_only_past_the_grace(trashed: TrashedLibrary) -> None:
    """`ready` out of the trash with an album still to return to: a restore between its transactions."""
    grace, second = timedelta(minutes=5), timedelta(seconds=1)
    restored_at = now_iso()
    trashed.edit_photo(
        trashed.ready, album_return={"L": [{"S": f"{trashed.album}#{SOME_TIME}"}]}, updated_at={"S": restored_at}
    )
    for now in (_at(restored_at), _at(restored_at) + grace):
        report = trashed.check(now=now, cleanup_grace=grace)
        assert report.ok, [str(v) for v in report.violations]
    late = trashed.check(now=_at(restored_at) + grace + second, cleanup_grace=grace)
    assert [(v.rule, v.subject) for v in late.violations] == [
        ("unfinished-album-return", f"{trashed.alice}/{trashed.ready}")
    ]


def test_a_purge_is_overdue_only_past_the_grace_and_a_photo_being_purged_may_have_lost_its_objects(
    trashed: TrashedLibrary,
) -> None:
    grace, second = timedelta(minutes=20), timedelta(seconds=1)
    subject = f"{trashed.alice}/{trashed.trashed}"
    due = trashed.photo(trashed.trashed)["purge_at"]["S"]
    assert trashed.check(now=_at(due) + grace, cleanup_grace=grace).ok
    late = trashed.check(now=_at(due) + grace + second, cleanup_grace=grace)
    assert [(v.rule, v.subject) for v in late.violations] == [("overdue-purge", subject)]

    # A purge cut short after its objects went: the mark (purge due now), the original and a preview gone.
    marked = now_iso()
    trashed.edit_photo(
        trashed.trashed,
        purging={"BOOL": True},
        purge_at={"S": marked},
        GSI1SK={"S": keys.purge_index_sk(marked, trashed.alice, trashed.trashed)},
    )
    trashed.delete_object(keys.original_object(trashed.alice, trashed.trashed))
    trashed.delete_object(keys.preview_object(trashed.alice, trashed.trashed, "large", WEBP))
    within = trashed.check(now=_at(marked) + grace, cleanup_grace=grace)
    assert within.ok, [str(v) for v in within.violations]
    late = trashed.check(now=_at(marked) + grace + second, cleanup_grace=grace)
    assert [(v.rule, v.subject) for v in late.violations] == [("overdue-purge", subject)]
    # Unmarked, the same photo is a trashed photo that lost its objects: it could be restored without them.
    trashed.edit_photo(
        trashed.trashed,
        purge_at={"S": marked},
        GSI1SK={"S": keys.purge_index_sk(marked, trashed.alice, trashed.trashed)},
    )
    assert rules(trashed.check(now=_at(marked), cleanup_grace=grace)) == ["ready-missing-object"]


def test_an_account_deletion_cut_short_is_overdue_only_past_the_grace_and_its_objects_are_not_orphans(
    trashed: TrashedLibrary,
) -> None:
    """bob's deletion stopped after its photos step: the mark, no photo item, the objects still there."""
    grace, second = timedelta(minutes=5), timedelta(seconds=1)
    began = now_iso()
    trashed.mark_deletion(trashed.bob, began)
    photo = deps.photo_repository().get(trashed.bob, trashed.bobs)
    assert photo is not None
    assert deps.photo_repository().delete(photo)
    assert keys.original_object(trashed.bob, trashed.bobs) in snapshot(trashed.aws, trashed.bob, quick=True).objects
    for now in (_at(began), _at(began) + grace):
        report = trashed.check(now=now, cleanup_grace=grace)
        assert report.ok, [str(v) for v in report.violations]
    late = trashed.check(now=_at(began) + grace + second, cleanup_grace=grace)
    assert [(v.rule, v.subject) for v in late.violations] == [
        ("overdue-cleanup", f"{keys.user_pk(trashed.bob)}/{keys.ACCOUNT_DELETION_SK}")
    ]
    # The same objects with no deletion under way are orphans (the finish step removes the mark and the usage).
    DynamoAccountRepository(trashed.dynamodb, TABLE).finish(trashed.bob)
    assert rules(trashed.check()) == ["orphan-object"] * 3


def test_remains_of_a_deleted_account_is_nothing_and_names_whatever_is_left(
    trashed: TrashedLibrary, alice: User, bob: User
) -> None:
    share(alice, trashed.album, bob, "contributor")
    add_photos(bob, trashed.album, trashed.bobs)
    bobs_album = create_album(bob, "Bob's")["album_id"]
    add_photos(bob, bobs_album, trashed.bobs)
    share(bob, bobs_album, alice, "viewer")
    assert invariants.remains_of(trashed.dynamodb, trashed.s3, table=TABLE, bucket=BUCKET, user_id=bob.sub)

    response = bob.call("DELETE", "/users/me")
    assert response.status_code == 204, response.body
    assert invariants.remains_of(trashed.dynamodb, trashed.s3, table=TABLE, bucket=BUCKET, user_id=bob.sub) == []
    report = trashed.check()
    assert report.ok, [str(v) for v in report.violations]

    leftovers: dict[str, Callable[[], Any]] = {
        f"item {keys.user_pk(bob.sub)}/{keys.MONTH_PREFIX}2020-01": lambda: trashed.put_month(bob.sub, "2020-01", 0),
        f"object {keys.preview_object(bob.sub, trashed.bobs, 'small', WEBP)}": lambda: trashed.put_object(
            keys.preview_object(bob.sub, trashed.bobs, "small", WEBP)
        ),
        f"item {keys.album_pk(trashed.album)}/{keys.MEMBER_PREFIX}{bob.sub} (its user_id)": functools.partial(
            trashed.put_item,
            album_items.membership_item(Membership(trashed.album, bob.sub, "bob", Role.CONTRIBUTOR, SOME_TIME)),
        ),
    }
    for line, leave in leftovers.items():
        leave()
        assert line in invariants.remains_of(trashed.dynamodb, trashed.s3, table=TABLE, bucket=BUCKET, user_id=bob.sub)


# --- the command line -------------------------------------------------------------------------------------------------


def test_the_cli_exits_0_when_clean_1_with_each_violation_listed_and_checks_a_given_quota(
    library: Library, capsys: pytest.CaptureFixture[str]
) -> None:
    status = invariants.main(["--table", TABLE, "--bucket", BUCKET, "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert status == 0
    assert printed == {"ok": True, "users": 2, "photos": 4, "objects": 6, "albums": 0, "violations": []}

    quota = ["--quota-photos", "1", "--quota-bytes", str(10**9)]
    assert invariants.main(["--table", TABLE, "--bucket", BUCKET, "--json", *quota]) == 1
    assert [v["rule"] for v in json.loads(capsys.readouterr().out)["violations"]] == ["quota-exceeded"]

    library.delete_object(keys.preview_object(library.alice, library.ready, "large", WEBP))
    library.put_object("stray.bin")
    status = invariants.main(["--table", TABLE, "--bucket", BUCKET, "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert status == 1
    assert printed["ok"] is False
    assert sorted((v["rule"], v["subject"]) for v in printed["violations"]) == [
        ("ready-missing-object", f"{library.alice}/{library.ready}"),
        ("unknown-object", "stray.bin"),
    ]

    status = invariants.main(["--table", TABLE, "--bucket", BUCKET])
    text = capsys.readouterr().out
    assert status == 1
    assert "ready-missing-object: " in text
    assert text.rstrip().endswith("2 violation(s)")


def test_the_cli_exits_2_when_the_table_does_not_exist(aws: boto3.session.Session, capsys: Any) -> None:
    status = invariants.main(["--table", "no-such-table", "--bucket", BUCKET, "--json"])
    assert status == 2
    assert "cannot read the table or bucket" in capsys.readouterr().err


def test_the_cli_exits_2_without_a_dev_stack_or_names(tmp_path: Path) -> None:
    missing = tmp_path / "outputs.json"
    # Nothing here reaches AWS: the process stops before it makes a client.
    finished = subprocess.run(
        [sys.executable, "-m", "ops.invariants", "--outputs", str(missing), "--json"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert finished.returncode == 2, finished.stderr
    assert str(missing) in finished.stderr
    assert finished.stdout == ""
