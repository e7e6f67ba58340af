"""Helpers shared by the reliability suites: real uploads through the API and the worker, snapshots of what a user
owns, the invariant checker as an assertion, and faults injected into the app's own botocore clients."""

from __future__ import annotations

import io
import itertools
import json
import os
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote_plus

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from chalice.test import Client
from moto.core.models import botocore_stubber
from PIL import Image

from chalicelib import deps, errors, keys, web
from chalicelib.photos.models import PreviewFormat
from ops import invariants
from tests.integration.conftest import BUCKET, TABLE, User
from tests.reliability import moto_state

UNKNOWN_PHOTO_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
WORKER_TIMEOUT_SECONDS = 60


# --- the API and the worker ----------------------------------------------------------------------------------------


def body(response: Any) -> Any:
    return json.loads(response.body) if response.body else None


_JPEGS_MADE = itertools.count()


def jpeg(
    width: int = 320, height: int = 240, colour: tuple[int, int, int] = (200, 40, 40), *, unique: bool = True
) -> bytes:
    """A small JPEG. Each call's bytes differ (a numbered comment), so uploads of them are never duplicates of each
    other; `unique=False` gives the same bytes for the same arguments."""
    buffer = io.BytesIO()
    comment = f"photosky test image {next(_JPEGS_MADE)}".encode() if unique else b""
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG", quality=85, comment=comment)
    return buffer.getvalue()


def create_profile(user: User, name: str) -> dict[str, Any]:
    response = user.call("POST", "/users", {"display_name": name, "bio": f"{name}'s photos"})
    assert response.status_code == 201, response.body
    return body(response)


def start_upload(
    user: User, data: bytes, *, content_type: str = "image/jpeg", size_bytes: int | None = None, **fields: Any
) -> dict[str, Any]:
    """POST /photos declaring `data`; the 201 body `{photo, upload}`."""
    declared = {
        "filename": "photo.jpg",
        "content_type": content_type,
        "size_bytes": len(data) if size_bytes is None else size_bytes,
        **fields,
    }
    response = user.call("POST", "/photos", declared)
    assert response.status_code == 201, response.body
    return body(response)


def put_upload(s3: Any, owner_id: str, photo_id: str, data: bytes, content_type: str = "image/jpeg") -> str:
    """What the browser's presigned POST does: the object lands at the photo's upload key."""
    key = keys.upload_object(owner_id, photo_id)
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=content_type)
    return key


def s3_event(key: str, *, size: int = 0, bucket: str = BUCKET) -> str:
    """The SQS message body S3 sends for a created object (keys arrive URL-encoded)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Post",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/"), "size": size}},
    }
    return json.dumps({"Records": [record]})


def deliver(api: Client, key: str) -> None:
    """One SQS delivery of the S3 event for `key` to the real handler (`app.process_uploads`). Raises what it raises."""
    event = api.events.generate_sqs_event(message_bodies=[s3_event(key)], queue_name="photosky-local-uploads")
    api.lambda_.invoke("process_uploads", event)


def deliver_within_timeout(api: Client, key: str, timeout: float = WORKER_TIMEOUT_SECONDS) -> BaseException | None:
    """Deliver in a thread; fail if the worker is still busy after `timeout` (a hang, not a slow case).
    Returns the exception the handler raised, if any."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            deliver(api, key)
        except BaseException as e:
            raised.append(e)

    thread = threading.Thread(target=run, name=f"worker:{key}", daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the worker was still processing {key} after {timeout} s"
    return raised[0] if raised else None


def upload_ready(api: Client, s3: Any, user: User, data: bytes | None = None, **fields: Any) -> dict[str, Any]:
    """A photo taken all the way to READY: POST /photos, the object, the worker. Returns the photo as GET shows it."""
    data = data if data is not None else jpeg()
    photo = start_upload(user, data, **fields)["photo"]
    deliver(api, put_upload(s3, user.sub, photo["photo_id"], data))
    ready = get_photo(user, photo["photo_id"])
    assert ready["status"] == "READY", ready
    return ready


def upload_rejected(api: Client, s3: Any, user: User, **fields: Any) -> dict[str, Any]:
    data = b"<html><body>not a photo</body></html>"
    photo = start_upload(user, data, **fields)["photo"]
    deliver(api, put_upload(s3, user.sub, photo["photo_id"], data))
    rejected = get_photo(user, photo["photo_id"])
    assert rejected["status"] == "REJECTED", rejected
    return rejected


def get_photo(user: User, photo_id: str) -> dict[str, Any]:
    response = user.call("GET", f"/photos/{photo_id}")
    assert response.status_code == 200, response.body
    return body(response)


def usage_of(user: User) -> dict[str, int]:
    response = user.call("GET", "/users/me")
    assert response.status_code == 200, response.body
    return body(response)["usage"]


def photo_objects(s3: Any, owner_id: str, photo_id: str) -> set[str]:
    return {key for key in bucket_keys(s3) if key.split("/")[1:3] == [owner_id, photo_id]}


def bucket_keys(s3: Any) -> set[str]:
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        found.update(obj["Key"] for obj in page.get("Contents", []))
    return found


def ready_objects(owner_id: str, photo_id: str, preview_format: PreviewFormat = PreviewFormat.WEBP) -> set[str]:
    """A READY photo's objects: its original and its previews (WebP, as the worker makes every photo here)."""
    return {
        keys.original_object(owner_id, photo_id),
        keys.preview_object(owner_id, photo_id, "large", preview_format),
        keys.preview_object(owner_id, photo_id, "small", preview_format),
    }


# --- state: snapshots and invariants --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    items: dict[tuple[str, str], dict[str, Any]]
    objects: dict[str, Any]  # key -> its bytes, or its ETag (S3's MD5 of the bytes) in a quick snapshot


_clients: weakref.WeakKeyDictionary[boto3.session.Session, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def aws_clients(aws: boto3.session.Session) -> tuple[Any, Any]:
    """The test's own DynamoDB and S3 clients (made once per session: a boto3 client costs ~0.1 s to build)."""
    if aws not in _clients:
        _clients[aws] = (aws.client("dynamodb"), aws.client("s3"))
    return _clients[aws]


def snapshot(
    aws: boto3.session.Session, user_id: str | None = None, *, quick: bool = False, counters: bool = False
) -> Snapshot:
    """Every table item and object of one user, or of everyone, for comparisons: objects by their bytes, or with
    `quick` by their ETag (the MD5 of their bytes, without reading each one). Write-rate counters are left out
    unless `counters`: every write request spends one, a refused one too, and they hold nothing of the library.

    From in-process moto, what a Scan and ListObjectsV2 (and GetObject) would return is read from moto's own
    objects (moto_state): the suites take hundreds of snapshots, and serialising whole-table responses was a fifth
    of their time. Anywhere else (a dev stack's moto server), through the API."""
    dynamodb, s3 = aws_clients(aws)

    def wanted(key: str) -> bool:
        return user_id is None or key.split("/")[1] == user_id

    if moto_state.in_process(dynamodb):
        stored, objects = moto_state.stored_items(), moto_state.stored_objects(wanted, read=not quick)
    else:
        stored, objects = _scanned(dynamodb), _listed(s3, wanted, read=not quick)
    items = {}
    for item in stored:
        pk, sk = item["PK"]["S"], item["SK"]["S"]
        if (user_id is None or pk == keys.user_pk(user_id)) and (counters or not sk.startswith(keys.RATE_PREFIX)):
            items[(pk, sk)] = item
    return Snapshot(items, objects)


def _scanned(dynamodb: Any) -> list[dict[str, Any]]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True)
    return [item for page in pages for item in page["Items"]]


def _listed(s3: Any, wanted: Callable[[str], bool], *, read: bool) -> dict[str, Any]:
    """The wanted objects' bytes (`read`) or ETags."""
    listed: dict[str, Any] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if wanted(key):
                listed[key] = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() if read else obj["ETag"]
    return listed


def assert_invariants(aws: boto3.session.Session, *, quota: invariants.Quota | None = None, **options: Any) -> None:
    dynamodb, s3 = aws_clients(aws)
    report = invariants.check(dynamodb, s3, table=TABLE, bucket=BUCKET, quota=quota, **options)
    assert report.ok, "invariants violated:\n" + "\n".join(str(v) for v in report.violations)


def settings_quota() -> invariants.Quota:
    settings = deps.settings()
    return invariants.Quota(
        photos=settings.quota_photos, bytes=settings.quota_bytes, pending=settings.max_pending_uploads
    )


# --- faults ---------------------------------------------------------------------------------------------------------


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def dynamodb_error(code: str, status: int = 400) -> Callable[[Any], AWSResponse]:
    """An error response as DynamoDB (JSON protocol) sends it."""
    payload = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": f"injected {code}"})

    def respond(request: Any) -> AWSResponse:
        headers = {"x-amzn-RequestId": "injected", "Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, status, headers, _Raw(payload.encode()))  # type: ignore[arg-type]

    return respond


def transaction_cancelled(*reasons: str) -> Callable[[Any], AWSResponse]:
    """DynamoDB cancelling a transaction, with one reason per item (the first item's reason first)."""

    def respond(request: Any) -> AWSResponse:
        items = len(json.loads(request.body)["TransactItems"])
        # As many reasons as items; a one-item transaction keeps the last (telling) reason.
        codes = [*reasons, *["None"] * (items - len(reasons))] if len(reasons) <= items else list(reasons[-items:])
        payload = {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": f"Transaction cancelled, please refer cancellation reasons for specific reasons {codes}",
            "CancellationReasons": [{"Code": code} for code in codes],
        }
        headers = {"x-amzn-RequestId": "injected", "Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 400, headers, _Raw(json.dumps(payload).encode()))  # type: ignore[arg-type]

    return respond


def unprocessed_keys(request: Any) -> AWSResponse:
    """BatchGetItem answering 200 but reading nothing: every key comes back unprocessed (throttled)."""
    payload = {"Responses": {}, "UnprocessedKeys": json.loads(request.body)["RequestItems"]}
    headers = {"x-amzn-RequestId": "injected", "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, 200, headers, _Raw(json.dumps(payload).encode()))  # type: ignore[arg-type]


def s3_error(code: str, status: int) -> Callable[[Any], AWSResponse]:
    """An error response as S3 (REST-XML) sends it."""
    payload = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>injected {code}</Message>'
        "<RequestId>injected</RequestId></Error>"
    )

    def respond(request: Any) -> AWSResponse:
        headers = {"x-amz-request-id": "injected", "Content-Type": "application/xml"}
        return AWSResponse(request.url, status, headers, _Raw(payload.encode()))  # type: ignore[arg-type]

    return respond


def read_timeout(request: Any) -> AWSResponse:
    raise ReadTimeoutError(endpoint_url=request.url)


def connect_timeout(request: Any) -> AWSResponse:
    raise ConnectTimeoutError(endpoint_url=request.url)


class Crash(BaseException):
    """A worker dying mid-way (killed, out of time): nothing after this point of the code runs, and no handler of
    the code's own (an `except Exception`) sees it, as none would see the process die."""


@dataclass
class Fault:
    service: str
    operation: str
    respond: Callable[[Any], AWSResponse | None]
    # Which attempts (1-based, counting retries) fail; None: every attempt.
    failing: set[int] | None = None
    attempts: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        if self.failing is None or self.attempts in self.failing:
            return self.respond(request)
        return None  # let moto answer


@dataclass
class Faults:
    """Faults on the app's cached clients (deps.dynamodb(), deps.s3()), at the HTTP layer, so botocore's retries see
    every failing attempt exactly as they would see AWS's.

    botocore hands each request to every `before-send` handler and keeps the first response, so a fault registered
    beside moto would still let moto apply the write. Instead, on a client with faults, moto's handler is replaced
    by one that answers with the fault when one applies and asks moto otherwise: a failed request never happened.
    """

    active: list[Fault] = field(default_factory=list)
    proxied: list[Any] = field(default_factory=list)
    hooks: list[tuple[Any, str, Callable[..., Any]]] = field(default_factory=list)

    def _client(self, service: str) -> Any:
        return deps.dynamodb() if service == "dynamodb" else deps.s3()

    def inject(
        self,
        service: str,
        operation: str,
        respond: Callable[[Any], AWSResponse | None],
        *,
        failing: set[int] | None = None,
    ) -> Fault:
        self._proxy(self._client(service))
        fault = Fault(service, operation, respond, failing)
        self.active.append(fault)
        return fault

    def crash_before(self, service: str, operation: str, nth: int = 1) -> Fault:
        """Raise Crash instead of the nth call of `operation`: it never reaches AWS."""

        def crash(request: Any) -> AWSResponse:
            raise Crash(f"crashed before {service} {operation} #{nth}")

        return self.inject(service, operation, crash, failing={nth})

    def crash_after(self, service: str, operation: str, nth: int = 1) -> Fault:
        """Raise Crash right after the nth call of `operation` succeeded: its effect is real, its caller never knows."""

        def crash() -> None:
            raise Crash(f"crashed after {service} {operation} #{nth}")

        return self.after(service, operation, nth, crash)

    def after(self, service: str, operation: str, nth: int, action: Callable[[], None]) -> Fault:
        """Run `action` right after the nth call of `operation` returned, before its caller sees the reply."""
        calls = Fault(service, operation, lambda request: None)

        def after(**_: Any) -> None:
            calls.attempts += 1
            if calls.attempts == nth:
                action()

        client, event = self._client(service), f"after-call.{service}.{operation}"
        client.meta.events.register_first(event, after)
        self.hooks.append((client, event, after))
        return calls

    def _proxy(self, client: Any) -> None:
        if any(proxied is client for proxied in self.proxied):
            return
        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register("before-send", self._send)
        self.proxied.append(client)

    def _send(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".")
        for fault in self.active:
            if (fault.service, fault.operation) == (service, operation):
                response = fault(request)
                if response is not None:
                    return response
        return botocore_stubber(event_name, request, **kwargs)  # type: ignore[no-any-return]

    def clear(self) -> None:
        self.active.clear()
        for client in self.proxied:
            client.meta.events.unregister("before-send", self._send)
            client.meta.events.register("before-send", botocore_stubber)
        self.proxied.clear()
        for client, event, handler in self.hooks:
            client.meta.events.unregister(event, handler)
        self.hooks.clear()


@contextmanager
def recorded_calls() -> Iterator[list[tuple[str, str]]]:
    """(service, operation) of every call the app's DynamoDB and S3 clients make inside the block, in order."""
    calls: list[tuple[str, str]] = []
    registered = []
    for service, client in (("dynamodb", deps.dynamodb()), ("s3", deps.s3())):

        def record(model: Any, _service: str = service, **_: Any) -> None:
            calls.append((_service, model.name))

        client.meta.events.register_first(f"before-call.{service}", record)
        registered.append((client, record, service))
    try:
        yield calls
    finally:
        for client, record, service in registered:
            client.meta.events.unregister(f"before-call.{service}", record)


# --- races ------------------------------------------------------------------------------------------------------------


def status_of(action: Callable[[], Any]) -> int:
    """The HTTP status the API would answer for this service call (the views are thin: parse, call, shape)."""
    try:
        action()
    except errors.DomainError as e:
        return int(web.error_response(e).status_code)
    return 200


def race(actions: list[Callable[[], Any]]) -> list[Any]:
    """Run the actions in threads released together; their results (or exceptions) in order."""
    start = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = actions[index]()
        except BaseException as e:
            results[index] = e

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a racing call never finished"
    return results


# --- the faults every fault suite injects ----------------------------------------------------------------------------

# chalicelib.deps: retries={"mode": "standard", "total_max_attempts": 3}: the first attempt plus two retries.
ATTEMPTS = 3
# DynamoDB's throttling and 5xx, as botocore sees them: retried ATTEMPTS times, then a 503 with Retry-After.
THROTTLES = {
    "ProvisionedThroughputExceededException": dynamodb_error("ProvisionedThroughputExceededException"),
    "ThrottlingException": dynamodb_error("ThrottlingException"),
    "InternalServerError": dynamodb_error("InternalServerError", 500),
}
# A transaction cancelled for a reason other than its conditions: transient, so a 503 the client retries.
CANCELLATIONS = {
    "TransactionConflict": transaction_cancelled("None", "TransactionConflict"),
    "ThrottlingError": transaction_cancelled("None", "ThrottlingError"),
}


# --- how much of a fault matrix a run tries ---------------------------------------------------------------------------

Row = TypeVar("Row")
Cell = TypeVar("Cell")


def full_matrix(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the fault suites try every cell of their matrices: with PHOTOSKY_FAULTS=all, or PHOTOSKY_FUZZ_EXAMPLES
    set (`make fuzz`, `make reliability`) unless PHOTOSKY_FAULTS=sample; else (`make test`) a sample."""
    chosen = env.get("PHOTOSKY_FAULTS", "").strip().lower()
    if chosen not in {"", "all", "sample"}:
        raise ValueError(f"PHOTOSKY_FAULTS={chosen!r}: expected 'all' or 'sample'")
    return chosen == "all" or (not chosen and bool(env.get("PHOTOSKY_FUZZ_EXAMPLES")))


FULL_MATRIX = full_matrix()


def sample(
    matrix: Sequence[tuple[Row, Sequence[Cell]]],
    kind: Callable[[Cell], Hashable] = lambda cell: cell,
    *,
    every: int = 1,
    full: bool = FULL_MATRIX,
) -> list[tuple[Row, Cell]]:
    """The (row, cell) pairs of a fault matrix to try, in the matrix's order. A row is a position (a call an
    operation makes), its cells the faults that fit there; `kind` names a cell's kind of fault.

    With the full matrix, every cell. Otherwise one cell per row, the kind tried least so far (the row's first on a
    tie), then each kind no row got, at the first row it fits: every position and every kind at least once. With
    `every` (for an operation that repeats one item's steps for each item) only every `every`-th row and the last
    get a cell of their own. The choice depends on the matrix alone, so a failure reproduces, and a sampled cell is
    the same case (and subtest) as in the full run."""
    if full:
        return [(row, cell) for row, cells in matrix for cell in cells]
    tried: Counter[Hashable] = Counter()
    picked: list[set[int]] = []
    for position, (_, cells) in enumerate(matrix):
        if position % every and position != len(matrix) - 1:
            picked.append(set())
            continue
        chosen = min(range(len(cells)), key=lambda index: tried[kind(cells[index])], default=None)
        if chosen is not None:
            tried[kind(cells[chosen])] += 1
        picked.append(set() if chosen is None else {chosen})
    for (_, cells), indexes in zip(matrix, picked, strict=True):
        for index, cell in enumerate(cells):
            if not tried[kind(cell)]:
                tried[kind(cell)] += 1
                indexes.add(index)
    return [
        (row, cell)
        for (row, cells), indexes in zip(matrix, picked, strict=True)
        for index, cell in enumerate(cells)
        if index in indexes
    ]
