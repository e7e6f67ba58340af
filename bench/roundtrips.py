"""Section 3: AWS calls and DynamoDB capacity per operation, through the real handlers on in-process moto.

Calls are counted with botocore's `before-call` event on the clients chalicelib.deps builds (one per API
operation; `before-send` counts HTTP attempts, i.e. retries). PhotoSky does not ask DynamoDB for
ReturnConsumedCapacity, so capacity is computed from the items' sizes with DynamoDB's published rules (reads in
4 KB units, ½ for eventually consistent; writes in 1 KB units of the larger of the item before and after, ×2 in a
transaction), reading each written key before and after the call through a separate, uncounted client. A key a
BatchGetItem asks for and does not find is charged like a GetItem that finds nothing (one unit, ½ if eventually
consistent: DynamoDB reads each key of a batch as its own GetItem), and a Query with a FilterExpression is charged for
every item it evaluated, not only those the filter kept (the same Query without the filter, through the uncounted
client, finds them); one with a ProjectionExpression is charged for the whole items, as DynamoDB charges.

Writes to the global secondary indexes are counted apart (`index_wru`), from the item before and after each write by
DynamoDB's published rules for an index with every attribute projected: an item entering or leaving an index is one
index write, one whose index keys change is two (the old entry deleted, the new one put), one that stays with changed
attributes is one; each in 1 KB units of the item, at the standard rate (a transaction doubles its table writes; the
indexes are updated after it commits).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench import common
from bench.events import LambdaContext, api_gateway_event

OWNER = "0b7d3f0e-2c5a-4e61-9d1f-7a8b9c0d1e2f"


def attribute_size(value: dict[str, Any]) -> int:  # noqa: PLR0911 - one return per DynamoDB type
    """Bytes of one DynamoDB-JSON attribute value, by DynamoDB's sizing rules."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = Decimal(inner).normalize().as_tuple().digits
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(inner) if isinstance(inner, bytes) else len(inner.encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_size(element) for name, element in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: element}) for element in inner)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def read_units(total_bytes: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(total_bytes / 4096))
    return float(units) if consistent else units / 2


def write_units(item_bytes: int, *, transactional: bool) -> float:
    units = max(1, math.ceil(item_bytes / 1024))
    return float(units * (2 if transactional else 1))


@dataclass
class Tally:
    calls: list[str] = field(default_factory=list)
    attempts: int = 0
    rru: float = 0.0
    wru: float = 0.0
    wru_by_call: dict[str, float] = field(default_factory=dict)  # e.g. the rate counter's UpdateItem on its own
    wru_by_item: dict[str, float] = field(default_factory=dict)  # table WRU by the kind of item (its SK's prefix)
    index_wru: float = 0.0  # writes to the global secondary indexes (not in `wru`)
    index_wru_by_index: dict[str, float] = field(default_factory=dict)
    # The writes in flight: key, the item before, transactional?
    pending_writes: list[tuple[dict[str, Any], dict[str, Any] | None, bool]] = field(default_factory=list)
    pending_batch_keys: int = 0  # keys the BatchGetItem in flight asked for
    pending_unfiltered: dict[str, Any] | None = None  # the Query in flight without its FilterExpression (or projection)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for call in self.calls:
            counts[call] = counts.get(call, 0) + 1
        return {
            "calls": counts,
            "attempts": self.attempts,
            "rru": self.rru,
            "wru": self.wru,
            "wru_by_call": dict(self.wru_by_call),
            "wru_by_item": dict(self.wru_by_item),
            "index_wru": self.index_wru,
            "index_wru_by_index": dict(self.index_wru_by_index),
        }


# How a call is named in the tables: "<service> <operation>".
SERVICE_LABELS = {"dynamodb": "DynamoDB", "s3": "S3", "cognito-idp": "Cognito"}


def without_filter(query: dict[str, Any]) -> dict[str, Any]:
    """A Query's parameters (DynamoDB JSON) without its FilterExpression and ProjectionExpression, and without the
    placeholders only those used (DynamoDB refuses unused ones): the same items evaluated, none dropped, whole."""
    dropped = ("FilterExpression", "ProjectionExpression", "Select")
    kept = {name: value for name, value in query.items() if name not in dropped}
    expressions = str(kept.get("KeyConditionExpression", ""))
    used = set(re.findall(r"[:#][A-Za-z0-9_]+", expressions))
    for placeholders in ("ExpressionAttributeValues", "ExpressionAttributeNames"):
        if placeholders in kept:
            kept[placeholders] = {name: value for name, value in kept[placeholders].items() if name in used}
            if not kept[placeholders]:
                del kept[placeholders]
    return kept


class Meter:
    """Counts every call the app's clients make and the capacity DynamoDB would charge for it."""

    def __init__(self, dynamodb: Any, s3: Any, raw_dynamodb: Any, table: str, *others: Any) -> None:
        self.tally = Tally()
        self._raw = raw_dynamodb
        self._table = table
        for client in (dynamodb, s3, *others):
            client.meta.events.register("before-call", self._before_call)
            client.meta.events.register("before-send", self._before_send)
            client.meta.events.register("after-call", self._after_call)

    def reset(self) -> Tally:
        done, self.tally = self.tally, Tally()
        return done

    # False while a bench sets things up: calls are still listed, but no item is read to size a write.
    sizing = True

    def _current(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._raw.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item

    @staticmethod
    def _key(item: dict[str, Any]) -> dict[str, Any]:
        return {"PK": item["PK"], "SK": item["SK"]}

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        self.tally.calls.append(f"{SERVICE_LABELS.get(service, service)} {model.name}")
        if service != "dynamodb" or not self.sizing:
            return
        body = json.loads(params["body"] or b"{}")
        if model.name == "BatchGetItem":
            self.tally.pending_batch_keys = sum(len(spec["Keys"]) for spec in body["RequestItems"].values())
        elif model.name == "Query" and ("FilterExpression" in body or "ProjectionExpression" in body):
            self.tally.pending_unfiltered = without_filter(body)
        writes: list[tuple[dict[str, Any], bool]] = []
        if model.name == "TransactWriteItems":
            for action in body["TransactItems"]:
                ((_kind, spec),) = action.items()
                writes.append((self._key(spec["Item"]) if "Item" in spec else spec["Key"], True))
        elif model.name == "PutItem":
            writes.append((self._key(body["Item"]), False))
        elif model.name in ("UpdateItem", "DeleteItem"):
            writes.append((body["Key"], False))
        elif model.name == "BatchWriteItem":
            for requests in body["RequestItems"].values():
                for request in requests:
                    if "PutRequest" in request:
                        writes.append((self._key(request["PutRequest"]["Item"]), False))
                    else:
                        writes.append((request["DeleteRequest"]["Key"], False))
        self.tally.pending_writes = [(key, self._current(key), tx) for key, tx in writes]

    def _before_send(self, **_: Any) -> None:
        self.tally.attempts += 1

    def _after_call(self, model: Any, parsed: dict[str, Any], http_response: Any, **_: Any) -> None:
        if model.service_model.service_name != "dynamodb" or not self.sizing:
            return
        name = model.name
        if name == "GetItem":
            self.tally.rru += read_units(item_size(parsed.get("Item")), consistent=self._consistent)
        elif name == "BatchGetItem" and http_response.status_code == 200:
            found = [item for items in parsed.get("Responses", {}).values() for item in items]
            unprocessed = sum(len(spec["Keys"]) for spec in (parsed.get("UnprocessedKeys") or {}).values())
            missing = max(0, self.tally.pending_batch_keys - len(found) - unprocessed)
            for item in [*found, *([None] * missing)]:
                self.tally.rru += read_units(item_size(item), consistent=self._consistent)
        elif name == "Query" and http_response.status_code == 200:
            evaluated = parsed.get("Items", [])
            if self.tally.pending_unfiltered is not None:
                evaluated = self._raw.query(**self.tally.pending_unfiltered).get("Items", [])
            total = sum(item_size(item) for item in evaluated)
            self.tally.rru += read_units(total, consistent=self._consistent and not self._index)
        tally = self.tally
        for key, before, transactional in tally.pending_writes:
            if http_response.status_code == 200:
                after = self._current(key)
                units = write_units(max(item_size(before), item_size(after)), transactional=transactional)
                tally.wru += units
                tally.wru_by_call[f"DynamoDB {name}"] = tally.wru_by_call.get(f"DynamoDB {name}", 0.0) + units
                kind = item_kind(key)
                tally.wru_by_item[kind] = tally.wru_by_item.get(kind, 0.0) + units
                for index, index_units in index_writes(before, after).items():
                    tally.index_wru += index_units
                    tally.index_wru_by_index[index] = tally.index_wru_by_index.get(index, 0.0) + index_units
        self.tally.pending_writes = []
        self.tally.pending_batch_keys = 0
        self.tally.pending_unfiltered = None

    # Whether the current read is strongly consistent, taken from the request (set by remember_read).
    _consistent = True
    _index = False

    def remember_read(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self._consistent = bool(params.get("ConsistentRead", False))
        self._index = "IndexName" in params
        if model.name == "BatchGetItem":
            self._consistent = all(spec.get("ConsistentRead", False) for spec in params["RequestItems"].values())


def photo_bytes(variant: int = 0) -> bytes:
    """The bench's 2 MP JPEG (the test suite's own generator); each `variant` has bytes of its own (a duplicate of a
    library photo is rejected since issue 13)."""
    from tests.support.imaging_samples import marked

    return common.jpeg_bytes(marked((1600, 1200)), variant)


DELETE_TO_TRASH = "DELETE /photos/{id} (READY: to the trash)"
DELETE_FOR_GOOD = "DELETE /photos/{id}?permanent=true (from the trash)"

# (operation, minimum calls any implementation of the route needs, why)
MINIMUM = {
    "POST /users": ("2 DynamoDB", "create (conditional put) + read usage (uploads may precede the profile)"),
    "GET /users/me": ("1 DynamoDB", "profile + usage in one read"),
    "POST /photos": ("1 DynamoDB", "one transaction: photo + tag copies + quota (the rate counter could join it)"),
    "S3 upload (client → S3)": ("1 S3", "the presigned POST itself"),
    "upload worker": (
        "2 DynamoDB + 5 S3",
        "read photo, settle; GET the upload, PUT 2 previews + the verified original, DELETE the upload",
    ),
    "GET /photos": ("1 DynamoDB", "one query"),
    "GET /photos?tag=": ("1 DynamoDB", "one index query, if the tag copies held whole photos"),
    "GET /photos/{id}": ("1 DynamoDB", "one read"),
    "PATCH /photos/{id}": ("2 DynamoDB", "read (old tags) + conditional transaction"),
    # Issue 13: a READY photo's DELETE moves it to the trash (its objects stay for a restore); `?permanent=true`
    # deletes it for good, here from the trash (as the trash view's "delete forever" does).
    DELETE_TO_TRASH: (
        "2 DynamoDB",
        "read the photo, if it said whether it was ever put in an album; one transaction (photo, usage, month, claim)",
    ),
    DELETE_FOR_GOOD: (
        "2 DynamoDB + 1 S3",
        "read (tags) + one transaction (photo, tag copies, usage); one batch delete",
    ),
}

# Calls PhotoSky makes above MINIMUM on purpose: (extra calls, why). A route's budget is its minimum plus these;
# anything else above the minimum is a finding. Every write route first spends one of the caller's write-rate tokens
# (app.py: `deps.write_limiter().spend`, one conditional UpdateItem on the user's RATE#<window> counter, see
# chalicelib/ratelimit.py) before its own calls. The counter could ride in a route's transaction instead (the
# minimum), at twice its write units and with the limiter inside every repository's writes instead of once in front.
WRITE_RATE_TOKEN = (1, "the write-rate token (UpdateItem)")
# A verified photo deleted for good is first marked in the trash as being purged, then its objects go, then its item
# (chalicelib/photos/service.py `_purge`): a crash anywhere leaves a photo whose purge the retry or the scheduled job
# finishes, never objects without their photo.
PURGING_MARK = (
    "the purging mark first (a transaction of its own): the objects go only after it, so they never outlive their "
    "photo, and a restore cannot race the purge"
)
BY_DESIGN = {
    "POST /users": WRITE_RATE_TOKEN,
    "POST /photos": WRITE_RATE_TOKEN,
    "PATCH /photos/{id}": WRITE_RATE_TOKEN,
    DELETE_TO_TRASH: WRITE_RATE_TOKEN,
    DELETE_FOR_GOOD: (WRITE_RATE_TOKEN[0] + 1, f"{WRITE_RATE_TOKEN[1]}; {PURGING_MARK}"),
    # Key-only tag copies: an edit (or the worker's settle) rewrites no copies; a listing reads its page's photos.
    "GET /photos?tag=": (1, "the photos behind key-only tag copies (BatchGetItem)"),
    # Issue 13: a copy of a library photo is turned away before its objects are written (section 8).
    "upload worker": (1, "the claim on the bytes read before the objects are written (GetItem)"),
}

# Why a route makes more calls than its budget, and what would save them: shown under the table for those above it.
ALBUMS_HOLDING = (
    "a photo leaving the library (to the trash, or for good when not yet in it) is taken out of its albums, so the "
    "photo's album copies are Queried (`PHOTOALBUM#<id>#`, `_albums_holding`) also when it was never put in one, as "
    "here: sections 7 and 8 find the same. Adding a photo to an album already rewrites the photo item (its "
    "revision); a flag set there (`SET in_albums = :yes`) would let a delete skip the Query when it is absent"
)
OVER_BUDGET = {
    DELETE_TO_TRASH: ALBUMS_HOLDING,
    "upload worker": (
        "the HEAD before the GET: the worker checks the upload's size before reading it (never reading more than "
        "declared); a ranged GET (`Range: bytes=0-<declared>`) returns the object's whole size in Content-Range and "
        "reads at most one byte more than declared, one S3 request and one round trip less per upload"
    ),
}


# The table's global secondary indexes, each with every attribute projected (devstack/resources.py).
INDEXES = ("GSI1", "GSI2")


def item_kind(key: dict[str, Any]) -> str:
    """What kind of item a key names, from its sort key's prefix: PHOTO, PHOTOTAG, USAGE, MONTH, SHA256..."""
    return str(key["SK"]["S"]).split("#", 1)[0]


def index_writes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, float]:
    """Write units each index is charged for a table write that turned `before` into `after` (None: no item)."""
    charged: dict[str, float] = {}
    for index in INDEXES:

        def entry(item: dict[str, Any] | None, index: str = index) -> tuple[Any, Any] | None:
            if not item or f"{index}PK" not in item or f"{index}SK" not in item:
                return None
            return item[f"{index}PK"], item[f"{index}SK"]

        old, new = entry(before), entry(after)
        units = 0.0
        if old is not None and new is not None and old == new:
            if before != after:
                units = write_units(item_size(after), transactional=False)
        else:
            if old is not None:
                units += write_units(item_size(before), transactional=False)
            if new is not None:
                units += write_units(item_size(after), transactional=False)
        if units:
            charged[index] = units
    return charged


def minimum_calls(minimum: str) -> int:
    """The number of calls in a MINIMUM entry such as '2 DynamoDB + 1 S3'."""
    return sum(int(part.split()[0]) for part in minimum.split("+"))


def budget(
    operation: str,
    minimum: dict[str, tuple[str, str]] = MINIMUM,
    by_design: dict[str, tuple[int, str]] = BY_DESIGN,
) -> int:
    """Calls a route is held to: the minimum possible plus what PhotoSky spends above it by design."""
    return minimum_calls(minimum[operation][0]) + by_design.get(operation, (0, ""))[0]


def measure(*, log: Callable[[str], None]) -> dict[str, Any]:  # noqa: PLR0915 - one scripted scenario
    common.apply_lambda_environment()
    import boto3
    from moto import mock_aws

    from chalicelib import deps
    from devstack import resources

    results: dict[str, Any] = {}
    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):  # the app's request log lines
        deps.reset()
        settings = deps.settings()
        session = boto3.session.Session(region_name=common.REGION)
        raw = session.client("dynamodb")
        resources.create_table(raw, settings.table_name)
        resources.create_bucket(session.client("s3"), settings.bucket_name, common.REGION)
        import app as app_module

        app = app_module.app
        meter = Meter(deps.dynamodb(), deps.s3(), raw, settings.table_name)
        deps.dynamodb().meta.events.register("provide-client-params.dynamodb", meter.remember_read)
        context = LambdaContext()
        meter.reset()

        def call(name: str, method: str, resource: str, status: int, **kwargs: Any) -> dict[str, Any]:
            response = app(api_gateway_event(method, resource, sub=OWNER, **kwargs), context)
            if response["statusCode"] != status:
                raise AssertionError(f"{name}: {response['statusCode']} {response.get('body')}")
            body = json.loads(response["body"]) if response.get("body") else {}
            presigned = json.dumps(body).count("X-Amz-Signature")
            results[name] = {**meter.reset().summary(), "presigned_urls": presigned}
            return body

        def call_status(method: str, resource: str, **kwargs: Any) -> int:
            """A request that is not measured: its status only."""
            status = int(app(api_gateway_event(method, resource, sub=OWNER, **kwargs), context)["statusCode"])
            meter.reset()
            return status

        call("POST /users", "POST", "/users", 201, body={"display_name": "Bench", "bio": "counting calls"})
        call("GET /users/me", "GET", "/users/me", 200)
        data = photo_bytes()
        created = call(
            "POST /photos",
            "POST",
            "/photos",
            201,
            body={
                "filename": "harbour.jpg",
                "content_type": "image/jpeg",
                "size_bytes": len(data),
                "tags": ["holiday", "sea", "boats"],
            },
        )
        photo_id = created["photo"]["photo_id"]
        upload_key = created["upload"]["fields"]["key"]
        # The browser's presigned POST: one S3 PUT-class request, not made by the app.
        session.client("s3").put_object(
            Bucket=settings.bucket_name, Key=upload_key, Body=data, ContentType="image/jpeg"
        )
        results["S3 upload (client → S3)"] = {
            "calls": {"S3 PostObject": 1},
            "attempts": 1,
            "rru": 0.0,
            "wru": 0.0,
            "wru_by_call": {},
            "presigned_urls": 0,
        }
        notification = {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Post",
                    "s3": {"bucket": {"name": settings.bucket_name}, "object": {"key": upload_key}},
                }
            ]
        }
        from devstack.events import sqs_lambda_event

        app_module.process_uploads(
            sqs_lambda_event(
                {"Body": json.dumps(notification), "MessageId": str(uuid.uuid4())}, "arn:aws:sqs:q", "us-east-1"
            ),
            context,
        )
        results["upload worker"] = {**meter.reset().summary(), "presigned_urls": 0}
        for _ in range(9):  # a library of ten: a list returns ten items, as a real page would
            call(
                "POST /photos (more)",
                "POST",
                "/photos",
                201,
                body={"filename": "x.jpg", "content_type": "image/jpeg", "size_bytes": 1000, "tags": ["sea"]},
            )
        results.pop("POST /photos (more)")
        listed = call("GET /photos", "GET", "/photos", 200)
        results["GET /photos"]["items"] = len(listed["items"])
        tagged = call("GET /photos?tag=", "GET", "/photos", 200, query={"tag": "sea"})
        results["GET /photos?tag="]["items"] = len(tagged["items"])
        photo = call("GET /photos/{id}", "GET", "/photos/{photo_id}", 200, path_parameters={"photo_id": photo_id})
        if photo["status"] != "READY":
            raise AssertionError(f"the worker left the photo {photo['status']}")
        call(
            "PATCH /photos/{id}",
            "PATCH",
            "/photos/{photo_id}",
            200,
            path_parameters={"photo_id": photo_id},
            body={"title": "Harbour", "tags": ["holiday", "sea"], "version": photo["version"]},
        )
        gone = {"path_parameters": {"photo_id": photo_id}}
        call(DELETE_TO_TRASH, "DELETE", "/photos/{photo_id}", 204, **gone)
        call(DELETE_FOR_GOOD, "DELETE", "/photos/{photo_id}", 204, query={"permanent": "true"}, **gone)
        if call_status("GET", "/photos/{photo_id}", **gone) != 404:
            raise AssertionError("the photo outlived its permanent delete")
        left = session.client("s3").list_objects_v2(Bucket=settings.bucket_name).get("Contents", [])
        if any(photo_id in item["Key"] for item in left):
            raise AssertionError("the photo's objects outlived its permanent delete")
        # What moto says when asked for capacity (the app never asks).
        probe = raw.get_item(
            TableName=settings.table_name, Key={"PK": {"S": "x"}, "SK": {"S": "y"}}, ReturnConsumedCapacity="TOTAL"
        )
        moto_capacity = probe.get("ConsumedCapacity")
        deps.reset()
    log("  round trips: done")
    return {
        "operations": results,
        "minimum": MINIMUM,
        "by_design": BY_DESIGN,
        "write_rate_limit": {"writes": settings.write_rate_limit, "window_seconds": settings.write_rate_window_seconds},
        "moto_consumed_capacity_probe": moto_capacity,
        "upload_bytes": len(data),
    }
