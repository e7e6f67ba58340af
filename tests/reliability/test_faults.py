"""Faults: throttled DynamoDB, failing and slow S3, a worker that dies at every step, redelivered and out-of-order
events, and races. Retryable failures must reach the client as 503 with Retry-After (never 500), nothing may be
half-written, lost or leaked, and the invariants must hold after every scenario.

Errors are injected into the app's own botocore clients in place of moto's answer (see support.Faults), so
botocore's retries (standard mode: the first attempt and 3 retries) see them exactly as they would see AWS's.

Races run the service layer in threads, not the HTTP views: Chalice keeps `app.current_request` on the app object
(one request per Lambda container), so the in-process test gateway cannot serve two requests at once. The views are
thin (parse, call one service method, shape), and `web.error_response` gives the status each outcome would get.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import deps, errors, keys
from chalicelib.photos.ingest import Outcome, UploadProcessor
from chalicelib.photos.models import NewPhoto, PhotoChanges
from ops.invariants import Quota
from tests.integration.conftest import User
from tests.reliability.moto_state import MadeOnce
from tests.reliability.support import (
    ATTEMPTS,
    THROTTLES,
    Crash,
    Faults,
    assert_invariants,
    body,
    bucket_keys,
    connect_timeout,
    create_profile,
    deliver,
    get_photo,
    jpeg,
    photo_objects,
    put_upload,
    race,
    read_timeout,
    ready_objects,
    recorded_calls,
    s3_error,
    sample,
    snapshot,
    start_upload,
    status_of,
    transaction_cancelled,
    unprocessed_keys,
    upload_ready,
    usage_of,
)

pytestmark = pytest.mark.suite("faults")

# `make test` tries a sample of each calls × errors matrix (every call and every error at least once: support.sample);
# PHOTOSKY_FAULTS=all, or `make fuzz` and `make reliability`, try every error on every call. moto answers a call in
# ~25 ms, so the cross product would triple this module's time for little: the errors all take the same path
# (errors.Unavailable).
S3_FAULTS = {
    "InternalError": s3_error("InternalError", 500),
    "SlowDown": s3_error("SlowDown", 503),
    "ReadTimeout": read_timeout,
    "ConnectTimeout": connect_timeout,
}


def fresh_clients() -> None:
    """New app clients, as a new Lambda container has: botocore's retry quota (a token bucket per client that
    failing calls drain) would otherwise stop retrying after a few dozen injected failures, and each case must see
    the same number of attempts."""
    deps.reset()


def assert_retry_later(response: Any) -> None:
    assert response.status_code == 503, response.body
    assert response.headers.get("Retry-After", "").isdigit(), response.headers
    assert int(response.headers["Retry-After"]) >= 1
    assert set(body(response)) == {"Code", "Message"}
    assert body(response)["Code"] == "ServiceUnavailableError"


# --- every route under DynamoDB throttling ---------------------------------------------------------------------------


class Scene:
    """alice with a profile, a READY photo (tagged) and a PENDING one; new users on demand. Made by the module's
    first test; every other test starts from the table and bucket as they were right after (moto_state)."""

    def __init__(self, aws: boto3.session.Session, api: Client, s3: Any, alice: User, made: MadeOnce) -> None:
        self.aws, self.api, self.s3, self.alice = aws, api, s3, alice
        self.ready, self.pending = made("scene", self.make)

    def make(self) -> tuple[dict[str, Any], dict[str, Any]]:
        create_profile(self.alice, "Alice")
        ready = upload_ready(self.api, self.s3, self.alice, tags=["sea"])
        return ready, start_upload(self.alice, jpeg(), tags=["sea"])["photo"]

    def new_user(self) -> User:
        return User(self.api, str(uuid.uuid4()))

    def new_photo(self) -> dict[str, Any]:
        return start_upload(self.alice, jpeg(), tags=["sea"])["photo"]


@dataclass(frozen=True)
class Route:
    # Makes what the request needs (before any fault is injected), then returns the request to send.
    prepare: Callable[[Scene], Callable[[], Any]]
    operations: tuple[str, ...]  # the DynamoDB operations it makes, in order
    succeeds_with: int
    # The index of the operation that writes: a fault after it finds the write already whole (the retry is safe).
    writes_at: int | None = None


def _call(user: User, method: str, path: str, payload: Any = None) -> Callable[[], Any]:
    return lambda: user.call(method, path, payload)


# Every write route first spends one of the caller's write-rate tokens (an UpdateItem on their counter).
ROUTES: dict[str, Route] = {
    "POST /users": Route(
        lambda s: _call(s.new_user(), "POST", "/users", {"display_name": "New"}),
        ("UpdateItem", "PutItem", "GetItem"),
        201,
        1,
    ),
    "GET /users/me": Route(lambda s: _call(s.alice, "GET", "/users/me"), ("BatchGetItem",), 200),
    "PATCH /users/me": Route(
        lambda s: _call(s.alice, "PATCH", "/users/me", {"bio": "edited"}),
        ("UpdateItem", "UpdateItem", "GetItem"),
        200,
        1,
    ),
    "GET /users/{id}": Route(lambda s: _call(s.new_user(), "GET", f"/users/{s.alice.sub}"), ("GetItem",), 200),
    "POST /photos": Route(
        lambda s: _call(
            s.alice, "POST", "/photos", {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 9}
        ),
        ("UpdateItem", "TransactWriteItems"),
        201,
        1,
    ),
    "GET /photos": Route(lambda s: _call(s.alice, "GET", "/photos?limit=1"), ("Query",), 200),
    # A tag listing reads the photos behind the index's key-only tag copies.
    "GET /photos?tag=": Route(
        lambda s: _call(s.alice, "GET", "/photos?tag=sea&limit=1"), ("Query", "BatchGetItem"), 200
    ),
    "GET /photos/{id}": Route(lambda s: _call(s.alice, "GET", f"/photos/{s.ready['photo_id']}"), ("GetItem",), 200),
    "PATCH /photos/{id}": Route(
        lambda s: _call(
            s.alice, "PATCH", f"/photos/{s.ready['photo_id']}", {"title": "t", "version": current_version(s)}
        ),
        ("UpdateItem", "GetItem", "TransactWriteItems"),
        200,
        2,
    ),
    "DELETE /photos/{id}": Route(
        lambda s: _call(s.alice, "DELETE", f"/photos/{s.new_photo()['photo_id']}"),
        ("UpdateItem", "GetItem", "Query", "TransactWriteItems"),  # the Query: which albums it is in
        204,
        3,
    ),
}


def current_version(scene: Scene) -> int:
    return int(get_photo(scene.alice, scene.ready["photo_id"])["version"])


@pytest.fixture
def scene(aws: boto3.session.Session, api: Client, s3: Any, alice: User, made_once: MadeOnce) -> Scene:
    return Scene(aws, api, s3, alice, made_once)


def test_persistent_dynamodb_throttling_on_any_routes_call_is_503_and_writes_nothing_or_everything(
    scene: Scene, faults: Faults, subtests: Any
) -> None:
    calls = [(name, position) for name, route in ROUTES.items() for position in range(len(route.operations))]
    for (name, position), code in sample([(call, list(THROTTLES)) for call in calls]):
        route = ROUTES[name]
        operation = route.operations[position]
        with subtests.test(route=name, operation=operation, error=code):
            send = route.prepare(scene)
            before = snapshot(scene.aws, quick=True)
            fresh_clients()
            # The earlier calls of the same operation (the rate counter's UpdateItem before the profile's) go
            # through; every attempt of this one fails.
            earlier = route.operations[:position].count(operation)
            failing = set(range(earlier + 1, earlier + 1 + ATTEMPTS))
            fault = faults.inject("dynamodb", operation, THROTTLES[code], failing=failing)
            try:
                response = send()
            finally:
                faults.clear()
            assert_retry_later(response)
            assert fault.attempts == earlier + ATTEMPTS  # botocore retried before giving up
            if route.writes_at is None or position <= route.writes_at:
                assert snapshot(scene.aws, quick=True) == before, "a failed request changed the table or bucket"
            assert_invariants(scene.aws)


def test_a_transient_dynamodb_throttle_is_retried_and_the_request_succeeds_once(
    scene: Scene, faults: Faults, subtests: Any
) -> None:
    for name, route in ROUTES.items():
        for operation in dict.fromkeys(route.operations):
            with subtests.test(route=name, operation=operation):
                send = route.prepare(scene)
                fresh_clients()
                fault = faults.inject("dynamodb", operation, THROTTLES["ThrottlingException"], failing={1})
                try:
                    with recorded_calls() as calls:
                        response = send()
                finally:
                    faults.clear()
                assert response.status_code == route.succeeds_with, response.body
                assert fault.attempts == route.operations.count(operation) + 1  # the failed one was retried
                assert tuple(op for service, op in calls if service == "dynamodb") == route.operations
                assert_invariants(scene.aws)


# A transaction DynamoDB cancels because an item (or an index) was throttled, or because another transaction held
# an item: retryable, not the client's fault and not a bug.
CANCELLATIONS = {
    "TransactionConflict": ("None", "TransactionConflict"),
    "ThrottlingError": ("None", "ThrottlingError"),
    "ProvisionedThroughputExceeded": ("ProvisionedThroughputExceeded",),
}


def test_a_transaction_cancelled_for_throttling_or_a_conflict_is_503_on_every_writing_route(
    scene: Scene, faults: Faults, subtests: Any
) -> None:
    for name in ("POST /photos", "PATCH /photos/{id}", "DELETE /photos/{id}"):
        for reason, codes in CANCELLATIONS.items():
            with subtests.test(route=name, reason=reason):
                send = ROUTES[name].prepare(scene)
                before = snapshot(scene.aws, quick=True)
                faults.inject("dynamodb", "TransactWriteItems", transaction_cancelled(*codes))
                try:
                    response = send()
                finally:
                    faults.clear()
                assert_retry_later(response)
                assert snapshot(scene.aws, quick=True) == before
                assert_invariants(scene.aws)


def test_a_worker_whose_transaction_is_cancelled_for_throttling_retries_through_sqs(
    scene: Scene, faults: Faults, subtests: Any
) -> None:
    for reason, codes in CANCELLATIONS.items():
        with subtests.test(reason=reason):
            counted_before = usage_of(scene.alice)
            data = jpeg()
            photo = start_upload(scene.alice, data)["photo"]
            key = put_upload(scene.s3, scene.alice.sub, photo["photo_id"], data)
            faults.inject("dynamodb", "TransactWriteItems", transaction_cancelled(*codes))
            try:
                with pytest.raises(errors.Unavailable):
                    deliver(scene.api, key)
            finally:
                faults.clear()
            run_until_settled(scene, key)
            assert_settled_exactly_once(scene, photo["photo_id"], "READY", len(data), counted_before)
            tidy(scene, photo["photo_id"])


def test_a_profile_read_dynamodb_keeps_leaving_unprocessed_is_503_and_a_passing_one_is_retried(
    scene: Scene, faults: Faults
) -> None:
    fault = faults.inject("dynamodb", "BatchGetItem", unprocessed_keys)
    try:
        assert_retry_later(scene.alice.call("GET", "/users/me"))
    finally:
        faults.clear()
    assert fault.attempts == 4  # the first read and three retries of what was left
    fault = faults.inject("dynamodb", "BatchGetItem", unprocessed_keys, failing={1})
    try:
        response = scene.alice.call("GET", "/users/me")
    finally:
        faults.clear()
    assert response.status_code == 200, response.body
    assert body(response)["display_name"] == "Alice"
    assert fault.attempts == 2


# --- S3 failing under DELETE ---------------------------------------------------------------------------------------
# A plain DELETE of a READY photo only moves it to the trash (no S3 call): the permanent delete is the one that
# removes objects.


def test_s3_failing_while_a_photo_is_deleted_is_503_and_the_retry_leaves_no_object_behind(
    scene: Scene, faults: Faults, subtests: Any
) -> None:
    for code, respond in S3_FAULTS.items():
        with subtests.test(error=code):
            photo = upload_ready(scene.api, scene.s3, scene.alice)
            photo_id = photo["photo_id"]
            fresh_clients()
            fault = faults.inject("s3", "DeleteObjects", respond)
            try:
                response = scene.alice.call("DELETE", f"/photos/{photo_id}?permanent=true")
            finally:
                faults.clear()
            assert_retry_later(response)
            assert fault.attempts == ATTEMPTS
            # Meanwhile the photo waits in the trash, marked for its purge, with every object it had.
            assert get_photo(scene.alice, photo_id)["trashed_at"] is not None
            assert photo_objects(scene.s3, scene.alice.sub, photo_id) == ready_objects(scene.alice.sub, photo_id)
            assert_invariants(scene.aws)
            # The client retries as told once S3 is back: the photo is gone, and so are its objects.
            retried = scene.alice.call("DELETE", f"/photos/{photo_id}?permanent=true")
            assert retried.status_code in (204, 404), retried.body
            assert scene.alice.call("GET", f"/photos/{photo_id}").status_code == 404
            assert photo_objects(scene.s3, scene.alice.sub, photo_id) == set()
            assert_invariants(scene.aws)


def test_a_transient_s3_failure_while_deleting_is_retried_and_the_delete_succeeds(
    scene: Scene, faults: Faults, subtests: Any
) -> None:
    for code, respond in S3_FAULTS.items():
        with subtests.test(error=code):
            photo_id = upload_ready(scene.api, scene.s3, scene.alice)["photo_id"]
            fresh_clients()
            fault = faults.inject("s3", "DeleteObjects", respond, failing={1})
            try:
                response = scene.alice.call("DELETE", f"/photos/{photo_id}?permanent=true")
            finally:
                faults.clear()
            assert response.status_code == 204, response.body
            assert fault.attempts == 2
            assert scene.alice.call("GET", f"/photos/{photo_id}").status_code == 404
            assert photo_objects(scene.s3, scene.alice.sub, photo_id) == set()
            assert_invariants(scene.aws)


# --- the worker: failures and crashes at every step, then SQS redelivers ---------------------------------------------


def worker_calls(api: Client, s3: Any, user: User, data: bytes) -> list[tuple[str, str]]:
    """The calls one clean ingest makes, in order, observed on a photo of its own."""
    photo = start_upload(user, data)["photo"]
    key = put_upload(s3, user.sub, photo["photo_id"], data)
    with recorded_calls() as calls:
        deliver(api, key)
    return calls


def nth_occurrence(calls: list[tuple[str, str]], position: int) -> int:
    return calls[: position + 1].count(calls[position])


def assert_settled_exactly_once(scene: Scene, photo_id: str, status: str, size: int, counted_before: dict[str, int]):
    settled = get_photo(scene.alice, photo_id)
    assert settled["status"] == status, settled
    expected_objects = ready_objects(scene.alice.sub, photo_id) if status == "READY" else set()
    assert photo_objects(scene.s3, scene.alice.sub, photo_id) == expected_objects
    counted = 1 if status == "READY" else 0
    assert usage_of(scene.alice) == {
        "photos": counted_before["photos"] + counted,
        "bytes": counted_before["bytes"] + counted * size,
        "pending": counted_before["pending"],
        "trash": counted_before["trash"],
    }
    assert_invariants(scene.aws)


def run_until_settled(scene: Scene, key: str) -> None:
    """SQS redelivers a failed message: the second delivery must finish the job, a third must change nothing."""
    deliver(scene.api, key)
    after = snapshot(scene.aws, scene.alice.sub, quick=True)
    deliver(scene.api, key)
    assert snapshot(scene.aws, scene.alice.sub, quick=True) == after


def tidy(scene: Scene, photo_id: str) -> None:
    """Delete a photo for good once its case is checked (not to the trash, where its item would stay), so later
    cases do not scan an ever larger library."""
    assert scene.alice.call("DELETE", f"/photos/{photo_id}?permanent=true").status_code == 204


@pytest.mark.parametrize("outcome", ["READY", "REJECTED"])
def test_a_worker_that_crashes_before_or_after_any_call_is_finished_by_the_redelivery(
    scene: Scene, faults: Faults, subtests: Any, outcome: str
) -> None:
    # Each READY case uploads bytes of its own: the same bytes again would be rejected as a copy of the photo
    # worker_calls settled (it stays in the library). A rejected file is never hashed: one serves every case.
    def upload_data() -> bytes:
        return jpeg() if outcome == "READY" else b"<html>not an image</html>"

    calls = worker_calls(scene.api, scene.s3, scene.alice, upload_data())
    assert len(calls) >= 5, calls
    # Whole, not sampled: a crash before a call leaves what a crash after the one before leaves, so one crash per
    # call (support.sample) would skip every other state the worker can die in.
    for position, (service, operation) in enumerate(calls):
        nth = nth_occurrence(calls, position)
        for when in ("before", "after"):
            with subtests.test(call=f"{position}:{service}.{operation}#{nth}", crash=when):
                counted_before = usage_of(scene.alice)
                data = upload_data()
                photo = start_upload(scene.alice, data)["photo"]
                key = put_upload(scene.s3, scene.alice.sub, photo["photo_id"], data)
                (faults.crash_before if when == "before" else faults.crash_after)(service, operation, nth)
                try:
                    with pytest.raises(Crash):
                        deliver(scene.api, key)
                finally:
                    faults.clear()
                assert_invariants(scene.aws)  # even half-way, nothing is inconsistent
                run_until_settled(scene, key)
                assert_settled_exactly_once(scene, photo["photo_id"], outcome, len(data), counted_before)
                tidy(scene, photo["photo_id"])


def test_a_worker_whose_dependencies_keep_failing_gives_up_retryably_and_the_redelivery_finishes(
    scene: Scene, faults: Faults, subtests: Any
) -> None:
    # A persistent fault always hits the first call of an operation.
    firsts = list(dict.fromkeys(worker_calls(scene.api, scene.s3, scene.alice, jpeg())))
    matrix = [(call, list(THROTTLES if call[0] == "dynamodb" else S3_FAULTS)) for call in firsts]
    for (service, operation), code in sample(matrix):
        respond = (THROTTLES if service == "dynamodb" else S3_FAULTS)[code]
        with subtests.test(call=f"{service}.{operation}", error=code):
            counted_before = usage_of(scene.alice)
            data = jpeg()  # bytes of its own: the same again would be a copy of the photo worker_calls settled
            photo = start_upload(scene.alice, data)["photo"]
            key = put_upload(scene.s3, scene.alice.sub, photo["photo_id"], data)
            fresh_clients()
            fault = faults.inject(service, operation, respond)
            try:
                with pytest.raises(errors.Unavailable):
                    deliver(scene.api, key)
            finally:
                faults.clear()
            assert fault.attempts == ATTEMPTS
            assert_invariants(scene.aws)
            run_until_settled(scene, key)
            assert_settled_exactly_once(scene, photo["photo_id"], "READY", len(data), counted_before)
            tidy(scene, photo["photo_id"])


def test_a_delete_landing_while_the_worker_writes_previews_leaves_nothing_and_raises_nothing(
    scene: Scene, faults: Faults
) -> None:
    """The owner deletes the photo after the worker wrote its previews, before it copies the original: the upload is
    gone when the worker copies it. The worker must see the photo is gone and remove what it wrote, not fail."""
    counted_before = usage_of(scene.alice)
    data = jpeg()
    photo_id = start_upload(scene.alice, data)["photo"]["photo_id"]
    key = put_upload(scene.s3, scene.alice.sub, photo_id, data)
    faults.after("s3", "PutObject", 2, lambda: deps.photo_service().delete(scene.alice.sub, photo_id))

    deliver(scene.api, key)  # raises if the worker failed

    assert scene.alice.call("GET", f"/photos/{photo_id}").status_code == 404
    assert photo_objects(scene.s3, scene.alice.sub, photo_id) == set()
    assert usage_of(scene.alice) == counted_before
    assert_invariants(scene.aws)


# --- the reconciler: interrupted runs are finished by the next one ----------------------------------------------------


def reconciler_at(moment: datetime) -> UploadProcessor:
    """The scheduled reconciler as it runs at `moment`, on the app's own (faultable) clients."""
    return UploadProcessor(
        deps.photo_repository(),
        deps.storage(),
        process_image=deps.upload_processor()._process_image,
        clock=lambda: moment,
        upload_grace=timedelta(seconds=deps.settings().upload_grace_seconds),
    )


RECONCILER_FAULTS: dict[str, Callable[[Faults], Any]] = {
    "dynamodb-throttled-on-every-write": lambda f: f.inject(
        "dynamodb", "TransactWriteItems", THROTTLES["ThrottlingException"]
    ),
    "s3-failing-on-every-head": lambda f: f.inject("s3", "HeadObject", S3_FAULTS["InternalError"]),
    "crash-after-the-first-write": lambda f: f.crash_after("dynamodb", "TransactWriteItems", 1),
    "crash-before-the-second-write": lambda f: f.crash_before("dynamodb", "TransactWriteItems", 2),
}


def test_a_reconciler_run_cut_short_by_faults_or_a_crash_is_finished_by_the_next_run(
    scene: Scene, faults: Faults, subtests: Any
) -> None:
    # Only this test's uploads are abandoned: the scene's own PENDING photo goes first.
    assert scene.alice.call("DELETE", f"/photos/{scene.pending['photo_id']}").status_code == 204
    settings = deps.settings()
    for name, inject in RECONCILER_FAULTS.items():
        with subtests.test(fault=name):
            counted_before = usage_of(scene.alice)
            never = start_upload(scene.alice, jpeg())["photo"]  # the browser never uploaded it
            data = jpeg(300, 200)
            lost = start_upload(scene.alice, data)["photo"]  # uploaded, but its S3 event was lost
            put_upload(scene.s3, scene.alice.sub, lost["photo_id"], data)
            # Past both upload deadlines and the grace period after them.
            later = datetime.now(UTC) + timedelta(
                seconds=settings.upload_url_seconds + settings.upload_grace_seconds + 60
            )

            fresh_clients()
            inject(faults)
            try:
                # A fault fails the items it hits, each on its own (the run goes on); a crash ends the run.
                try:
                    counts = reconciler_at(later).release_abandoned()
                    assert counts.get(Outcome.FAILED), counts
                except Crash:
                    pass
            finally:
                faults.clear()
            assert_invariants(scene.aws)

            reconciler_at(later).release_abandoned()  # the next scheduled run
            assert scene.alice.call("GET", f"/photos/{never['photo_id']}").status_code == 404
            assert get_photo(scene.alice, lost["photo_id"])["status"] == "READY"
            assert photo_objects(scene.s3, scene.alice.sub, lost["photo_id"]) == ready_objects(
                scene.alice.sub, lost["photo_id"]
            )
            assert usage_of(scene.alice) == {
                "photos": counted_before["photos"] + 1,
                "bytes": counted_before["bytes"] + len(data),
                "pending": counted_before["pending"],
                "trash": counted_before["trash"],
            }
            assert_invariants(scene.aws)
            tidy(scene, lost["photo_id"])


# --- duplicate and out-of-order events ---------------------------------------------------------------------------


def duplicate_event(scene: Scene) -> None:
    data = jpeg()
    counted_before = usage_of(scene.alice)
    photo = start_upload(scene.alice, data)["photo"]
    run_until_settled(scene, put_upload(scene.s3, scene.alice.sub, photo["photo_id"], data))
    assert_settled_exactly_once(scene, photo["photo_id"], "READY", len(data), counted_before)


def event_for_a_photo_deleted_meanwhile(scene: Scene) -> None:
    data = jpeg()
    counted_before = usage_of(scene.alice)
    photo_id = start_upload(scene.alice, data)["photo"]["photo_id"]
    assert scene.alice.call("DELETE", f"/photos/{photo_id}").status_code == 204
    key = put_upload(scene.s3, scene.alice.sub, photo_id, data)  # the browser's upload lands after the delete
    run_until_settled(scene, key)
    assert photo_objects(scene.s3, scene.alice.sub, photo_id) == set()
    assert usage_of(scene.alice) == counted_before


def event_before_its_object(scene: Scene) -> None:
    data = jpeg()
    counted_before = usage_of(scene.alice)
    photo = start_upload(scene.alice, data)["photo"]
    key = keys.upload_object(scene.alice.sub, photo["photo_id"])
    before = snapshot(scene.aws, quick=True)
    deliver(scene.api, key)  # e.g. a replayed or forged message: the object is not there
    assert snapshot(scene.aws, quick=True) == before
    put_upload(scene.s3, scene.alice.sub, photo["photo_id"], data)
    run_until_settled(scene, key)
    assert_settled_exactly_once(scene, photo["photo_id"], "READY", len(data), counted_before)


def old_event_after_the_photo_settled_and_a_new_upload(scene: Scene) -> None:
    photo = scene.ready
    before = get_photo(scene.alice, photo["photo_id"])
    put_upload(scene.s3, scene.alice.sub, photo["photo_id"], b"a second, different file")
    deliver(scene.api, keys.upload_object(scene.alice.sub, photo["photo_id"]))
    after = get_photo(scene.alice, photo["photo_id"])
    assert {k: v for k, v in after.items() if k != "urls"} == {k: v for k, v in before.items() if k != "urls"}
    assert photo_objects(scene.s3, scene.alice.sub, photo["photo_id"]) == ready_objects(
        scene.alice.sub, photo["photo_id"]
    )


EVENT_ORDERS = {
    "the-same-event-twice": duplicate_event,
    "an-event-for-a-photo-deleted-meanwhile": event_for_a_photo_deleted_meanwhile,
    "an-event-before-its-object-then-the-real-one": event_before_its_object,
    "an-old-event-after-the-photo-settled": old_event_after_the_photo_settled_and_a_new_upload,
}


def test_duplicate_early_late_and_stale_events_settle_each_photo_exactly_once(scene: Scene, subtests: Any) -> None:
    for name, scenario in EVENT_ORDERS.items():
        with subtests.test(events=name):
            scenario(scene)
            assert_invariants(scene.aws)


# --- races ------------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("atomic_moto")
def test_concurrent_edits_of_the_same_version_let_exactly_one_win(scene: Scene, cases: Any) -> None:
    service = deps.photo_service()
    rounds, racers = 5, 6

    def edit_title(photo_id: str, version: int, title: str) -> int:
        changes = PhotoChanges(version=version, title=title, sent=frozenset({"title"}))
        return status_of(lambda: service.update(scene.alice.sub, photo_id, changes))

    for round_number in range(rounds):
        photo_id = scene.ready["photo_id"]
        version = current_version(scene)
        titles = [f"round {round_number} by {n}" for n in range(racers)]
        statuses = race([functools.partial(edit_title, photo_id, version, title) for title in titles])
        assert sorted(statuses) == [200] + [409] * (racers - 1), statuses
        final = get_photo(scene.alice, photo_id)
        assert final["title"] == titles[statuses.index(200)]  # the winner's edit is the one kept
        assert final["version"] == version + 1
        assert_invariants(scene.aws)
        cases.tried(racers)


@pytest.mark.usefixtures("atomic_moto")
def test_concurrent_read_modify_write_edits_lose_no_update(scene: Scene, cases: Any) -> None:
    service = deps.photo_service()
    photo_id = scene.pending["photo_id"]

    def add_tag(tag: str) -> None:
        while True:  # what a well-behaved client does on 409: read again, reapply
            current = service.get(scene.alice.sub, photo_id)
            changes = PhotoChanges(version=current.version, tags=(*current.tags, tag), sent=frozenset({"tags"}))
            try:
                service.update(scene.alice.sub, photo_id, changes)
                return
            except (errors.Conflict, errors.Unavailable):
                continue

    tags = [f"t{n}" for n in range(8)]
    cases.tried(len(tags))
    results = race([lambda tag=tag: add_tag(tag) for tag in tags])
    assert results == [None] * len(tags)
    final = get_photo(scene.alice, photo_id)
    assert sorted(final["tags"]) == sorted(["sea", *tags])
    assert final["version"] == 1 + len(tags)
    assert_invariants(scene.aws)


def use_quota(monkeypatch: pytest.MonkeyPatch, photos: int, size: int) -> Quota:
    monkeypatch.setenv("PHOTOSKY_QUOTA_PHOTOS", str(photos))
    monkeypatch.setenv("PHOTOSKY_QUOTA_BYTES", str(size))
    deps.reset()
    deps.settings()
    return Quota(photos=photos, bytes=size)


@pytest.mark.usefixtures("atomic_moto")
@pytest.mark.parametrize(("limit", "photos", "size_bytes"), [("photos", 3, 10**6), ("bytes", 100, 10_000)])
def test_uploads_racing_for_the_last_quota_never_exceed_it(
    aws: boto3.session.Session,
    monkeypatch: pytest.MonkeyPatch,
    cases: Any,
    limit: str,
    photos: int,
    size_bytes: int,
) -> None:
    quota = use_quota(monkeypatch, photos, size_bytes)
    owner = str(uuid.uuid4())
    service = deps.photo_service()
    each = 3_000
    racers = 12
    new = NewPhoto(filename="a.jpg", content_type="image/jpeg", size_bytes=each)
    statuses = race([lambda: status_of(lambda: service.start_upload(owner, new)) for _ in range(racers)])
    allowed = min(quota.photos, quota.bytes // each)
    assert statuses.count(200) == allowed, statuses
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses.count(429) >= 1
    assert_invariants(aws, quota=quota)
    cases.tried(racers)


@pytest.mark.usefixtures("atomic_moto")
def test_a_delete_racing_the_worker_leaves_no_photo_no_object_and_no_usage(scene: Scene, cases: Any) -> None:
    service = deps.photo_service()
    counted_before = usage_of(scene.alice)
    rounds = 8
    for _ in range(rounds):
        data = jpeg()
        photo_id = start_upload(scene.alice, data)["photo"]["photo_id"]
        key = put_upload(scene.s3, scene.alice.sub, photo_id, data)
        worker, deleter = race(
            [
                lambda key=key: deliver(scene.api, key),
                # Permanent: had the worker won, a plain delete would only move the READY photo to the trash.
                lambda photo_id=photo_id: service.delete(scene.alice.sub, photo_id, permanent=True),
            ]
        )
        assert deleter is None, deleter
        assert worker is None, worker  # whoever wins, the worker finishes cleanly: no error, no redelivery needed
        assert scene.alice.call("GET", f"/photos/{photo_id}").status_code == 404
        assert photo_objects(scene.s3, scene.alice.sub, photo_id) == set()
        assert usage_of(scene.alice) == counted_before
        assert_invariants(scene.aws)
    assert not {k for k in bucket_keys(scene.s3) if k.startswith("uploads/")} - {
        keys.upload_object(scene.alice.sub, scene.pending["photo_id"])
    }
    cases.tried(rounds)
