"""The invariant checker itself: real state built through the API and the worker, then corrupted one way at a time.
Each rule must fire for its corruption and nothing else, and fall silent once the state is restored."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import keys
from ops import invariants
from tests.integration.conftest import BUCKET, TABLE, User
from tests.reliability.support import (
    UNKNOWN_PHOTO_ID,
    aws_clients,
    create_profile,
    snapshot,
    start_upload,
    upload_ready,
    upload_rejected,
)

pytestmark = pytest.mark.suite("invariants")

PROJECT_DIR = Path(__file__).resolve().parents[2]


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
        """Back to the state the app built: extra items and objects removed, changed or missing ones put back."""
        current = snapshot(self.aws, counters=True)
        for pk, sk in set(current.items) - set(self.clean.items):
            self.dynamodb.delete_item(TableName=TABLE, Key={"PK": {"S": pk}, "SK": {"S": sk}})
        for key, item in self.clean.items.items():
            if current.items.get(key) != item:
                self.put_item(item)
        for key in set(current.objects) - set(self.clean.objects):
            self.delete_object(key)
        for key, data in self.clean.objects.items():
            if current.objects.get(key) != data:
                self.put_object(key, data)


@pytest.fixture
def library(aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User) -> Library:
    return Library(aws, api, s3, alice, bob)


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
        lambda lib: lib.delete_object(keys.preview_object(lib.alice, lib.ready, "small")),
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
        lambda lib: lib.put_object(keys.preview_object(lib.alice, lib.rejected, "large")),
    ),
    "preview-filed-under-another-owner": (
        "orphan-object",
        lambda lib: lib.put_object(keys.preview_object(lib.bob, lib.ready, "large")),
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
    "pending-photo-in-the-wrong-shard": (
        "unreachable-pending",
        lambda lib: lib.put_item(
            with_attribute(
                lib.item(lib.alice, keys.photo_sk(lib.pending)),
                GSI1PK={"S": keys.pending_index_pk((keys.pending_shard(lib.pending) + 1) % keys.PENDING_SHARDS)},
            )
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


# --- the command line -------------------------------------------------------------------------------------------------


def test_the_cli_exits_0_when_clean_1_with_each_violation_listed_and_checks_a_given_quota(
    library: Library, capsys: pytest.CaptureFixture[str]
) -> None:
    status = invariants.main(["--table", TABLE, "--bucket", BUCKET, "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert status == 0
    assert printed == {"ok": True, "users": 2, "photos": 4, "objects": 6, "violations": []}

    quota = ["--quota-photos", "1", "--quota-bytes", str(10**9)]
    assert invariants.main(["--table", TABLE, "--bucket", BUCKET, "--json", *quota]) == 1
    assert [v["rule"] for v in json.loads(capsys.readouterr().out)["violations"]] == ["quota-exceeded"]

    library.delete_object(keys.preview_object(library.alice, library.ready, "large"))
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
