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
- ``unparseable-item`` / ``unknown-object``: anything in the table or bucket that PhotoSky would not have written.

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
from chalicelib.photos.models import Photo, PhotoStatus
from chalicelib.photos.repository import photo_from_item

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

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, rule: str, subject: str, detail: str) -> None:
        self.violations.append(Violation(rule, subject, detail))

    def summary(self) -> str:
        verdict = "all invariants hold" if self.ok else f"{len(self.violations)} violation(s)"
        return f"checked {self.users} user(s), {self.photos} photo(s), {self.objects} object(s): {verdict}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "users": self.users,
            "photos": self.photos,
            "objects": self.objects,
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


def _scan(client: DynamoDBClient, table: str) -> Iterator[dict[str, Any]]:
    # Strongly consistent, so a check right after a write sees it.
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        yield from page.get("Items", [])


def _read_table(client: DynamoDBClient, table: str, report: Report) -> _TableState:
    state = _TableState()
    for item in _scan(client, table):
        pk, sk = item.get("PK", {}).get("S", ""), item.get("SK", {}).get("S", "")
        if not pk.startswith("USER#"):
            report.add("unparseable-item", f"{pk}/{sk}", "partition key is not USER#<sub>")
            continue
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
            elif sk != keys.PROFILE_SK:
                report.add("unparseable-item", f"{pk}/{sk}", "unknown sort key")
        except (KeyError, ValueError) as e:
            report.add("unparseable-item", f"{pk}/{sk}", f"missing or malformed attribute: {e}")
            if sk.startswith(keys.PHOTO_PREFIX):
                state.unreadable.add((user_id, sk.removeprefix(keys.PHOTO_PREFIX)))
    return state


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
    quota: Quota | None = None,
) -> Report:
    """Read the whole table and bucket and report every invariant that does not hold."""
    report = Report()
    state = _read_table(dynamodb, table, report)
    objects = dict(_list_objects(s3, bucket))
    report.users, report.photos, report.objects = len(state.users), len(state.photos), len(objects)
    _check_tag_copies(state, report)
    _check_pending_index(state, report)
    _check_usage(state, report, quota)
    _check_objects(state, objects, report, now=now or datetime.now(UTC), grace=upload_grace)
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
            dynamodb, s3, table=table, bucket=bucket, upload_grace=timedelta(minutes=args.grace_minutes), quota=quota
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
