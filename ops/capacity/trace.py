"""Traces from the real code: every operation of the capacity workload run once through the real app on in-process
moto, with every DynamoDB and S3 request it makes recorded.

The app runs as the integration and reliability suites run it: `chalice.test.Client` behind the verifying gateway
(devstack.gateway), callers holding ID tokens of a test pool (tests.support.cognito), the album directory faked
(tests.support.fakes), the upload worker, the scheduled job and the WebSocket handlers invoked through
`Client.lambda_` with the events AWS sends. Hooks on the app's own botocore clients see each request:

- a write's item is read (strongly consistently, by a client without hooks) before and after it, so its base-table
  write units and the index writes it causes come from the item itself: an index entry is written when the item
  enters, leaves or changes within an index partition (a key change is a delete in the old partition and a put in
  the new one); a refused conditional write still costs its units, but writes no index;
- a read's units come from the items it returned (a Query with a filter is charged for what it scanned: the
  returned items' mean size times ScannedCount).

Capacity arithmetic (DynamoDB's documented rules): a write costs ceil(bytes / 1 KB) units of the larger of the item
before and after, a read ceil(bytes / 4 KB), half of it when eventually consistent, a transaction twice either; an
index entry is its item plus 100 bytes (both indexes project ALL). Sizes are DynamoDB's: attribute names plus values.
A transaction's ConditionCheck is counted as a write of its item (no index changes); presigning a URL is no request.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

PROJECT_DIR = Path(__file__).resolve().parents[2]
STAGE = "local"
REGION = "us-east-1"
INDEXES = ("GSI1", "GSI2")
TABLE_TARGET = "table"
S3_TARGET = "s3"
# What an index entry weighs beyond its item (DynamoDB's documented per-entry overhead).
INDEX_ENTRY_OVERHEAD = 100
# Transactions (reads and writes) cost twice the units of the same requests made alone.
TRANSACTION_FACTOR = 2
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
# A Query that scanned items it did not return (a filter): those are charged at the returned items' mean size, or
# this when it returned none.
UNSEEN_ITEM_BYTES = 400
# The management API as API Gateway serves it for a stage (a fake records nothing: pushes are not DynamoDB).
API_ID = "capacity0"
MANAGEMENT_URL = f"https://{API_ID}.execute-api.us-east-1.amazonaws.com/dev"
_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
_READS = ("GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan")
_S3_WRITES = ("PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CompleteMultipartUpload")
_S3_READS = ("GetObject", "HeadObject")
_KEY_EQUALS = re.compile(r"(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)")


@dataclass(frozen=True)
class Access:
    """One partition touched by one request: `units` read or write units (for S3, requests)."""

    kind: str  # "read" | "write"
    target: str  # "table", an index name, or "s3"
    pk: str  # the partition key value (for S3, the key's prefix: its first two path segments)
    units: float
    api: str  # the request: Query, PutItem, ... (an index write carries its base request's name)
    sk: str | None = None  # a write's new sort key (of the entry it puts), for the growing-sort-key flag
    query_items: int = 0  # a Query: items it read
    query_limit: int | None = None  # a Query: its Limit, if any
    item_bytes: float = 0.0  # a Query: mean bytes of an item it read
    consistent: bool = False


@dataclass
class Trace:
    """Every request one operation made, and the ids the trace's scenario knows (concrete id -> role)."""

    op: str
    actor: str
    started: datetime  # the app's clock when the operation began: a sort key at or after it is "now"
    accesses: list[Access] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # what the requests said, to find which known ids took part

    def involved(self, known: dict[str, str]) -> dict[str, str]:
        """The known ids this operation's requests or responses mention."""
        blob = "\n".join(self.text)
        return {value: role for value, role in known.items() if value in blob}


@dataclass
class Traces:
    traces: dict[str, Trace]
    known: dict[str, str]  # concrete id -> role (user, photo, album, link, connection, tag)


# --- item sizes and units ---------------------------------------------------------------------------------------


_SCALAR_BYTES: dict[str, Callable[[Any], int]] = {
    "S": lambda text: len(text.encode()),
    "N": lambda number: math.ceil((len(number.lstrip("-").replace(".", "").lstrip("0")) or 1) / 2) + 1,
    "B": lambda data: len(base64.b64decode(data)) if isinstance(data, str) else len(data),
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
}


def value_bytes(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value (the type's documented rule)."""
    (kind, inner), *_ = value.items()
    if kind in _SCALAR_BYTES:
        return _SCALAR_BYTES[kind](inner)
    if kind in ("SS", "NS", "BS"):
        return sum(_SCALAR_BYTES[kind[0]](member) for member in inner)
    if kind == "L":
        return 3 + sum(1 + value_bytes(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_bytes(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_bytes(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: float, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def _s(item: dict[str, Any] | None, name: str) -> str | None:
    if not item or name not in item:
        return None
    return str(item[name]["S"])


# --- the recorder ----------------------------------------------------------------------------------------------


class Recorder:
    """Hooks on the app's DynamoDB and S3 clients; `probe` is a DynamoDB client without hooks (item look-ups)."""

    def __init__(self, table: str, probe: Any, now: Callable[[], datetime]) -> None:
        self._table = table
        self._now = now
        self._probe = probe
        self.current: Trace | None = None

    def attach(self, dynamodb: Any, s3: Any) -> None:
        dynamodb.meta.events.register("before-parameter-build.dynamodb", self._before_dynamodb)
        dynamodb.meta.events.register("after-call.dynamodb", self._after_dynamodb)
        s3.meta.events.register("before-parameter-build.s3", self._before_s3)
        s3.meta.events.register("after-call.s3", self._after_s3)

    @contextlib.contextmanager
    def recording(self, op: str, actor: str) -> Iterator[Trace]:
        trace = Trace(op=op, actor=actor, started=self._now())
        self.current = trace
        try:
            yield trace
        finally:
            self.current = None

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._probe.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return found

    # Writes: the items before (here) and after (in _after_dynamodb).
    def _before_dynamodb(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if self.current is None:
            return
        context["capacity.params"] = json.loads(json.dumps(params, default=str))
        if model.name in _WRITES:
            context["capacity.writes"] = [
                (key, self._get(key), transactional) for key, transactional in _write_keys(model.name, params)
            ]

    def _after_dynamodb(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        trace = self.current
        if trace is None or "capacity.params" not in context:
            return
        params = context["capacity.params"]
        trace.text.append(json.dumps(params))
        trace.text.append(json.dumps(parsed, default=str))
        if model.name in _WRITES:
            for key, before, transactional in context["capacity.writes"]:
                trace.accesses.extend(self._write_accesses(model.name, key, before, self._get(key), transactional))
        elif model.name in _READS:
            trace.accesses.extend(_read_accesses(model.name, params, parsed))
        else:
            raise ValueError(f"capacity trace: unknown DynamoDB request {model.name} in {trace.op}")

    def _write_accesses(
        self,
        api: str,
        key: dict[str, Any],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        transactional: bool,
    ) -> list[Access]:
        factor = TRANSACTION_FACTOR if transactional else 1
        pk, sk = key["PK"]["S"], key["SK"]["S"]
        new_sk = sk if before is None and after is not None else None
        size = max(item_bytes(before), item_bytes(after))
        found = [Access("write", TABLE_TARGET, pk, write_units(size) * factor, api, sk=new_sk)]
        if before == after:
            return found  # refused (a failed condition) or a no-op: the base write is charged, no index changes
        for index in INDEXES:
            old = (_s(before, f"{index}PK"), _s(before, f"{index}SK"))
            new = (_s(after, f"{index}PK"), _s(after, f"{index}SK"))
            old_in, new_in = old[0] is not None and old[1] is not None, new[0] is not None and new[1] is not None
            if old_in and new_in and old == new:
                entry = item_bytes(after) + INDEX_ENTRY_OVERHEAD
                found.append(Access("write", index, str(new[0]), write_units(entry), api))
                continue
            if old_in:
                entry = item_bytes(before) + INDEX_ENTRY_OVERHEAD
                found.append(Access("write", index, str(old[0]), write_units(entry), api))
            if new_in:
                entry = item_bytes(after) + INDEX_ENTRY_OVERHEAD
                found.append(Access("write", index, str(new[0]), write_units(entry), api, sk=new[1]))
        return found

    # S3: keys from the parameters, kept until the request is made (presigning a URL builds the same parameters but
    # makes no request, and never reaches after-call).
    def _before_s3(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if self.current is not None and (model.name in _S3_WRITES or model.name in _S3_READS):
            names = [params["Key"]] if "Key" in params else [o["Key"] for o in params["Delete"]["Objects"]]
            context["capacity.objects"] = names

    def _after_s3(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        trace = self.current
        if trace is None or "capacity.objects" not in context:
            return
        kind = "write" if model.name in _S3_WRITES else "read"
        names = context["capacity.objects"]
        trace.text.append(json.dumps(names))
        trace.accesses.extend(Access(kind, S3_TARGET, s3_prefix(name), 1, model.name) for name in names)


def s3_prefix(key: str) -> str:
    """The prefix S3 partitions an object under, at the depth PhotoSky's keys spread: `<kind>/<sub>/`."""
    return "/".join(key.split("/")[:2]) + "/"


def _write_keys(api: str, params: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    def key_of(request: dict[str, Any]) -> dict[str, Any]:
        source = request.get("Key") or request["Item"]
        return {"PK": source["PK"], "SK": source["SK"]}

    if api in ("PutItem", "UpdateItem", "DeleteItem"):
        return [(key_of(params), False)]
    if api == "TransactWriteItems":
        return [(key_of(next(iter(entry.values()))), True) for entry in params["TransactItems"]]
    found = []
    for requests in params["RequestItems"].values():
        for request in requests:
            inner = request.get("PutRequest") or request["DeleteRequest"]
            found.append((key_of(inner), False))
    return found


def _read_accesses(api: str, params: dict[str, Any], parsed: dict[str, Any]) -> list[Access]:
    if api == "GetItem":
        consistent = bool(params.get("ConsistentRead"))
        size = item_bytes(parsed.get("Item"))
        return [
            Access(
                "read", TABLE_TARGET, params["Key"]["PK"]["S"], read_units(size, consistent), api, consistent=consistent
            )
        ]
    if api == "BatchGetItem":
        found = []
        for table, request in params["RequestItems"].items():
            consistent = bool(request.get("ConsistentRead"))
            sizes = {
                (item["PK"]["S"], item["SK"]["S"]): item_bytes(item)
                for item in parsed.get("Responses", {}).get(table, [])
            }
            for key in request["Keys"]:
                size = sizes.get((key["PK"]["S"], key["SK"]["S"]), 0)
                found.append(
                    Access(
                        "read", TABLE_TARGET, key["PK"]["S"], read_units(size, consistent), api, consistent=consistent
                    )
                )
        return found
    if api == "TransactGetItems":
        found = []
        for entry, response in zip(params["TransactItems"], parsed.get("Responses", []), strict=False):
            key = entry["Get"]["Key"]
            units = read_units(item_bytes(response.get("Item")), True) * TRANSACTION_FACTOR
            found.append(Access("read", TABLE_TARGET, key["PK"]["S"], units, api, consistent=True))
        return found
    if api == "Query":
        return [_query_access(params, parsed)]
    raise ValueError(f"capacity trace: {api} has no place in the app (a Scan reads every partition)")


def _query_access(params: dict[str, Any], parsed: dict[str, Any]) -> Access:
    target = params.get("IndexName") or TABLE_TARGET
    pk_name = "PK" if target == TABLE_TARGET else f"{target}PK"
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    pk = None
    for name, placeholder in _KEY_EQUALS.findall(params["KeyConditionExpression"]):
        if names.get(name, name) == pk_name:
            pk = values[placeholder]["S"]
    if pk is None:
        raise ValueError(f"capacity trace: no partition key in {params['KeyConditionExpression']!r}")
    items = parsed.get("Items", [])
    scanned = int(parsed.get("ScannedCount", len(items)))
    sizes = [item_bytes(item) + (INDEX_ENTRY_OVERHEAD if target != TABLE_TARGET else 0) for item in items]
    mean = sum(sizes) / len(sizes) if sizes else UNSEEN_ITEM_BYTES
    consistent = bool(params.get("ConsistentRead"))
    return Access(
        "read",
        target,
        pk,
        read_units(mean * scanned, consistent),
        "Query",
        query_items=scanned,
        query_limit=params.get("Limit"),
        item_bytes=mean,
        consistent=consistent,
    )


def subtract(full: Trace, baseline: Trace, op: str) -> Trace:
    """What `full` did beyond `baseline` (the same run with nothing to do): one item's share of a sweep."""

    def signature(access: Access) -> tuple[str, str, str, str]:
        return access.kind, access.target, access.pk, access.api

    left = Counter(signature(a) for a in baseline.accesses)
    kept = []
    for access in full.accesses:
        if left[signature(access)] > 0:
            left[signature(access)] -= 1
        else:
            kept.append(access)
    missing = +left
    if missing:
        raise ValueError(f"capacity trace: {op}: the baseline made requests the full run did not: {dict(missing)}")
    return Trace(op=op, actor=full.actor, started=full.started, accesses=kept, text=full.text)


# --- the scenario: every operation of the workload, once ---------------------------------------------------------


class _SilentManagementApi:
    """API Gateway's @connections endpoint: a push is no DynamoDB or S3 request, so nothing is kept."""

    def post_to_connection(self, **_: Any) -> dict[str, Any]:
        return {}

    def delete_connection(self, **_: Any) -> dict[str, Any]:
        return {}


class _Caller:
    def __init__(self, client: Any, pool: Any, sub: str, username: str) -> None:
        self.sub = sub
        self.username = username
        self.token = pool.id_token(sub)
        self._client = client

    def call(self, method: str, path: str, body: Any = None, expect: int = 200, **headers: str) -> Any:
        sent = {"Authorization": self.token, "Content-Type": "application/json", **headers}
        payload = b"" if body is None else json.dumps(body).encode()
        response = self._client.http.request(method, path, headers=sent, body=payload)
        if response.status_code != expect:
            raise RuntimeError(f"capacity trace: {method} {path} answered {response.status_code}: {response.body!r}")
        return json.loads(response.body) if response.body else None


def _jpeg(n: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (n * 37 % 256, 90, 160)).save(buffer, "JPEG", comment=f"capacity {n}".encode())
    return buffer.getvalue()


def _expect(held: bool, what: Any) -> None:
    """A step of the scenario that did not work: the traces would be of something else, so stop."""
    if not held:
        raise RuntimeError(f"capacity trace: the scenario went wrong: {what!r}")


@contextlib.contextmanager
def _patched(target: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, saved)


@contextlib.contextmanager
def _app_environment(pool: Any) -> Iterator[None]:
    """The stage's settings (as tests/conftest.py sets them), realtime on, no real credentials; all put back after."""
    saved = dict(os.environ)
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    from tests.support.offline_aws import REAL_AWS_VARIABLES, offline_aws_environment

    for name in REAL_AWS_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(
        {
            **config.get("environment_variables", {}),
            **config["stages"][STAGE].get("environment_variables", {}),
            **offline_aws_environment(pool.arn),
            "PHOTOSKY_WS_MANAGEMENT_URL": MANAGEMENT_URL,
            "PHOTOSKY_USER_POOL_CLIENT_ID": pool.client_id,
        }
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def build_traces() -> Traces:
    """Run the scenario once on a fresh in-process moto and return every operation's trace (about 10 s)."""
    from moto import mock_aws

    from chalicelib.albums.shown_photos import ShownPhotos
    from tests.support.cognito import FakeCognitoPool

    def read_every_time(_: ShownPhotos, wanted: Any, read: Any, *, fresh_for: str | None) -> Any:
        return read(wanted)

    pool = FakeCognitoPool()
    # The app logs a line per request and job to stdout, as Lambda wants; here it would bury the report. An album
    # page's photos are traced as read on every view: what the album pages' keep saves, the simulation models
    # (simulate.kept_page_reads), so the trace must not depend on which operation ran first.
    with (
        _app_environment(pool),
        mock_aws(),
        contextlib.redirect_stdout(io.StringIO()),
        _patched(ShownPhotos, "get", read_every_time),
    ):
        return _Scenario(pool).run()


class _Scenario:
    def __init__(self, pool: Any) -> None:
        import boto3
        from chalice.test import Client

        from app import app
        from chalicelib import clock, deps
        from chalicelib.realtime import tokens
        from devstack import resources
        from devstack.auth import CognitoIdTokenVerifier, StaticJwks
        from devstack.gateway import verifying_test_client
        from tests.support.fakes import FakeDirectory

        self._deps, self._clock, self._tokens = deps, clock, tokens
        self._pool = pool
        settings = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())["stages"][STAGE]
        self.table = settings["environment_variables"]["TABLE_NAME"]
        self.bucket = settings["environment_variables"]["BUCKET_NAME"]
        session = boto3.session.Session(region_name=REGION)
        resources.create_table(session.client("dynamodb"), self.table)
        resources.create_bucket(session.client("s3"), self.bucket, REGION)
        self._s3 = session.client("s3")
        # The app's clock, looked up at each call: _days_later replaces clock.now while the scheduled job runs.
        self.recorder = Recorder(self.table, session.client("dynamodb"), lambda: clock.now())  # noqa: PLW0108
        self.directory = FakeDirectory()
        verifier = CognitoIdTokenVerifier(issuer=pool.issuer, audiences=[pool.client_id], jwks=StaticJwks(pool.jwks()))
        self.api: Client = verifying_test_client(app, verifier, stage=STAGE, project_dir=str(PROJECT_DIR))
        self.traces: dict[str, Trace] = {}
        self.known: dict[str, str] = {}
        self._photos = 0

    # -- plumbing --
    def _reset(self) -> None:
        deps = self._deps
        deps.reset()
        self.recorder.attach(deps.dynamodb(), deps.s3())

    @contextlib.contextmanager
    def _record(self, op: str, actor: _Caller | str) -> Iterator[Trace]:
        sub = actor if isinstance(actor, str) else actor.sub
        with self.recorder.recording(op, sub) as trace:
            yield trace
        if op in self.traces:
            raise ValueError(f"capacity trace: {op} recorded twice")
        self.traces[op] = trace

    def _user(self, sub: str) -> _Caller:
        username = self.directory.add(sub).username
        self.known[sub] = "user"
        return _Caller(self.api, self._pool, sub, username)

    def _invoke(self, handler: str, event: dict[str, Any]) -> Any:
        return self.api.lambda_.invoke(handler, event).payload

    def _start(self, user: _Caller, data: bytes) -> str:
        declared = {"filename": "p.jpg", "content_type": "image/jpeg", "size_bytes": len(data)}
        photo_id: str = user.call("POST", "/photos", declared, expect=201)["photo"]["photo_id"]
        self.known[photo_id] = "photo"
        return photo_id

    def _deliver(self, user: _Caller, photo_id: str, data: bytes) -> None:
        from chalicelib import keys

        key = keys.upload_object(user.sub, photo_id)
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="image/jpeg")
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": REGION,
            "eventName": "ObjectCreated:Post",
            "s3": {"bucket": {"name": self.bucket}, "object": {"key": quote_plus(key, safe="/"), "size": len(data)}},
        }
        body = json.dumps({"Records": [record]})
        self.api.lambda_.invoke("process_uploads", self.api.events.generate_sqs_event([body], queue_name="uploads"))

    def _ready(self, user: _Caller) -> str:
        self._photos += 1
        data = _jpeg(self._photos)
        photo_id = self._start(user, data)
        self._deliver(user, photo_id, data)
        return photo_id

    def _version(self, user: _Caller, path: str) -> int:
        return int(user.call("GET", path)["version"])

    def _sweep(self, op: str, actor: str) -> Trace:
        event = self.api.events.generate_cw_event("Scheduled Event", "", {}, [])
        with self._record(op, actor):
            self._invoke("release_abandoned_uploads", event)
        return self.traces.pop(op)

    @contextlib.contextmanager
    def _days_later(self, days: int) -> Iterator[None]:
        later = self._clock.now() + timedelta(days=days)
        with _patched(self._clock, "now", lambda: later):
            self._reset()
            yield
        self._reset()

    # -- the scenario --
    def run(self) -> Traces:
        deps = self._deps
        jwks = json.dumps(self._pool.jwks()).encode()
        with (
            _patched(deps, "user_directory", lambda: self.directory),
            _patched(deps, "management_api", _SilentManagementApi),
            _patched(self._tokens, "http_get", lambda url: jwks),
        ):
            self._reset()
            try:
                self._photos_and_library()
                self._albums_and_links()
                self._live_and_accounts()
                self._scheduled_jobs()
            finally:
                deps.reset()
        return Traces(traces=self.traces, known=self.known)

    def _photos_and_library(self) -> None:
        from tests.support.realtime import ws_event

        alice, self.bob, self.carol = (
            self._user(f"{n}000-0000-4000-8000-00000000000{i}")
            for i, n in enumerate(("a11ce", "b0b00", "ca201"), start=1)
        )
        self.alice = alice
        with self._record("users.create", alice):
            alice.call("POST", "/users", {"display_name": "Alice"}, expect=201)
        self.bob.call("POST", "/users", {"display_name": "Bob"}, expect=201)
        self.carol.call("POST", "/users", {"display_name": "Carol"}, expect=201)
        # Alice is online: each change of hers is pushed to her connection.
        self.connection = f"cap{uuid.uuid4().hex[:12]}="
        self.known[self.connection] = "connection"
        with self._record("ws.connect", alice):
            reply = self._invoke(
                "websocket_connect", ws_event(self.connection, "$connect", token=alice.token, api_id=API_ID)
            )
        _expect(reply == {"statusCode": 200}, reply)
        self._photos += 1
        data = _jpeg(self._photos)
        with self._record("upload.start", alice):
            first = self._start(alice, data)
        with self._record("upload.worker", alice):
            self._deliver(alice, first, data)
        self.photos = [first] + [self._ready(alice) for _ in range(11)]
        self.tag = "beach"
        self.known[self.tag] = "tag"
        self._browsing_and_edits()

    def _browsing_and_edits(self) -> None:
        alice, first = self.alice, self.photos[0]
        with self._record("photos.get", alice):
            alice.call("GET", f"/photos/{first}")
        version = self._version(alice, f"/photos/{first}")
        with self._record("photos.edit", alice):
            alice.call("PATCH", f"/photos/{first}", {"version": version, "favorite": True, "tags": [self.tag]})
        with self._record("photos.list", alice):
            alice.call("GET", "/photos?limit=50")
        with self._record("photos.list_favourites", alice):
            alice.call("GET", "/photos?favorite=true&limit=50")
        with self._record("photos.list_tag", alice):
            alice.call("GET", f"/photos?tag={self.tag}&limit=50")
        with self._record("photos.timeline", alice):
            alice.call("GET", "/photos/timeline")
        batch = self.photos[1:11]
        with self._record("photos.batch", alice):
            alice.call("POST", "/photos/batch", {"action": "add_tags", "photo_ids": batch, "tags": [self.tag]})
        with self._record("photos.delete", alice):
            alice.call("DELETE", f"/photos/{self.photos[1]}", expect=204)
        with self._record("trash.list", alice):
            alice.call("GET", "/trash?limit=50")
        with self._record("photos.restore", alice):
            alice.call("POST", f"/photos/{self.photos[1]}/restore")
        with self._record("photos.delete_permanent", alice):
            alice.call("DELETE", f"/photos/{self.photos[2]}?permanent=true", expect=204)
        alice.call("DELETE", f"/photos/{self.photos[3]}", expect=204)
        with self._record("trash.empty", alice):
            alice.call("DELETE", "/trash", expect=204)
        with self._record("users.me", alice):
            alice.call("GET", "/users/me")
        with self._record("users.update", alice):
            alice.call("PATCH", "/users/me", {"bio": "hello"})
        with self._record("users.get", alice):
            alice.call("GET", f"/users/{self.bob.sub}")

    def _albums_and_links(self) -> None:
        alice, bob, carol = self.alice, self.bob, self.carol
        # The album holds 4 photos when its members list it and 3 when a visitor does: a page's per-item reads are
        # recognised by repeating as often as the page has items (model._per_item), which nothing else here does.
        with self._record("albums.create", alice):
            album = alice.call("POST", "/albums", {"title": "Summer"}, expect=201)["album_id"]
        self.known[album] = "album"
        with self._record("albums.photos.add", alice):
            alice.call("POST", f"/albums/{album}/photos", {"photo_ids": self.photos[4:8]})
        with self._record("albums.members.add", alice):
            alice.call("POST", f"/albums/{album}/members", {"username": bob.username, "role": "viewer"}, expect=201)
        alice.call("POST", f"/albums/{album}/members", {"username": carol.username, "role": "viewer"}, expect=201)
        with self._record("albums.list", bob):
            bob.call("GET", "/albums?limit=50")
        with self._record("albums.get", bob):
            bob.call("GET", f"/albums/{album}")
        with self._record("albums.photos.list", bob):
            bob.call("GET", f"/albums/{album}/photos?limit=50")
        with self._record("albums.members.list", alice):
            alice.call("GET", f"/albums/{album}/members")
        with self._record("albums.members.change", alice):
            alice.call("PATCH", f"/albums/{album}/members/{bob.sub}", {"role": "contributor"})
        version = self._version(alice, f"/albums/{album}")
        with self._record("albums.update", alice):
            alice.call("PATCH", f"/albums/{album}", {"version": version, "title": "Summer 2026"})
        with self._record("albums.photos.remove", alice):
            alice.call("POST", f"/albums/{album}/photos/remove", {"photo_ids": [self.photos[7]]})
        with self._record("albums.members.remove", alice):
            alice.call("DELETE", f"/albums/{album}/members/{carol.sub}", expect=204)
        with self._record("albums.links.create", alice):
            link = alice.call("POST", f"/albums/{album}/links", {}, expect=201)
        guarded = alice.call("POST", f"/albums/{album}/links", {"password": "correct horse battery"}, expect=201)
        for token in (link["token"], guarded["token"]):
            self.known[hashlib.sha256(token.encode()).hexdigest()] = "link"
        self.known[link["link_id"]] = "link_id"
        with self._record("albums.links.list", alice):
            alice.call("GET", f"/albums/{album}/links")
        with self._record("public.view", "visitor"):
            response = self.api.http.request("GET", f"/public/albums/{link['token']}?limit=50", headers={}, body=b"")
        _expect(response.status_code == 200, response.body)
        with self._record("public.unlock", "visitor"):
            response = self.api.http.request(
                "POST",
                f"/public/albums/{guarded['token']}/unlock",
                headers={"Content-Type": "application/json"},
                body=json.dumps({"password": "correct horse battery"}).encode(),
            )
        _expect(response.status_code == 200, response.body)
        with self._record("albums.links.revoke", alice):
            alice.call("DELETE", f"/albums/{album}/links/{link['link_id']}", expect=204)
        # A second album, shared and filled, for its deletion.
        doomed = alice.call("POST", "/albums", {"title": "Old"}, expect=201)["album_id"]
        self.known[doomed] = "album"
        alice.call("POST", f"/albums/{doomed}/photos", {"photo_ids": self.photos[8:10]})
        alice.call("POST", f"/albums/{doomed}/members", {"username": bob.username, "role": "viewer"}, expect=201)
        with self._record("albums.delete", alice):
            alice.call("DELETE", f"/albums/{doomed}", expect=204)

    def _live_and_accounts(self) -> None:
        from tests.support.realtime import ws_event

        alice, carol = self.alice, self.carol
        with self._record("ws.message", alice):
            reply = self._invoke(
                "websocket_message", ws_event(self.connection, "$default", body='{"type": "ping"}', api_id=API_ID)
            )
        _expect(reply == {"statusCode": 200}, reply)
        with self._record("ws.disconnect", alice):
            self._invoke("websocket_disconnect", ws_event(self.connection, "$disconnect", api_id=API_ID))
        for _ in range(2):
            self.known[self._ready(carol)] = "photo"
        with self._record("users.delete", carol):
            carol.call("DELETE", "/users/me", expect=204)

    def _scheduled_jobs(self) -> None:
        """The scheduled job's fixed cost (every shard queried, nothing due), and what one due item adds to it: the
        same run with one item due, minus the idle run (the simulation runs items at the rate they fall due)."""
        alice = self.alice
        idle = self._sweep("jobs.sweep", "scheduler")
        self.traces["jobs.sweep"] = idle
        self._photos += 1
        self._start(alice, _jpeg(self._photos))  # its object never arrives: a day later it is abandoned
        with self._days_later(1):
            released = self._sweep("jobs.release_one", "scheduler")
        alice.call("DELETE", f"/photos/{self.photos[10]}", expect=204)
        with self._days_later(40):
            purged = self._sweep("jobs.purge_one", "scheduler")
        # Each item is its owner's: the simulation draws that user as it draws any actor.
        for op, full in (("jobs.release_one", released), ("jobs.purge_one", purged)):
            self.traces[op] = dataclasses.replace(subtract(full, idle, op), actor=alice.sub)
