"""Faults in the library's operations that take more than one step (issue 13): trashing a photo out of its albums,
restoring it into them, deleting it for good (marked, objects, item), emptying the trash, the scheduled purge, a
batch, deleting an account (marked, albums, photos, objects, leftovers, finish) and the worker's duplicate path.

Each DynamoDB and S3 call an operation makes is made to fail, in turn, the way AWS fails (throttled on every
attempt, its reply lost after the write applied, its transaction cancelled) or the process dies right after it.
The client gets a 503 (never a 500) or, for a batch, a result per photo; the state cut short is consistent; the
client's retry of the same call, or the scheduled job, finishes the operation; the invariant checker
(ops/invariants.py) runs after each step, and after an account's deletion `invariants.remains_of` finds nothing of
the user's anywhere.

`make test` tries a sample of each matrix (support.sample): every kind of fault and finisher, and every call (every
other one where an operation repeats its steps for each photo or album), at least once; PHOTOSKY_FAULTS=all, or
`make fuzz` and `make reliability`, try every cell. The cases that matter most are explicit tests besides (objects
deleted but not the item; one photo of a batch failing). Each case starts from the same small scene
(`Scene.case`): moto's calls take time in proportion to the whole table.

Photos are made the worker's way without decoding an image (`quick_photo`) except where the worker itself is under
test (duplicates). Races run the service layer in threads (see test_faults.py for why not the HTTP views).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from chalice.test import Client

from chalicelib import clock, deps, errors, keys
from chalicelib.albums.service import CLEANUP_GRACE
from chalicelib.photos import repository as photo_repository
from chalicelib.photos.models import NewPhoto, PhotoStatus, PreviewFormat
from ops import invariants
from tests.integration.conftest import BUCKET, TABLE, User
from tests.reliability import moto_state
from tests.reliability.moto_state import MadeOnce, MotoState
from tests.reliability.support import (
    ATTEMPTS,
    CANCELLATIONS,
    THROTTLES,
    Crash,
    Faults,
    assert_invariants,
    aws_clients,
    body,
    create_profile,
    deliver,
    get_photo,
    jpeg,
    photo_objects,
    put_upload,
    race,
    ready_objects,
    recorded_calls,
    s3_error,
    sample,
    snapshot,
    start_upload,
    status_of,
    upload_ready,
    usage_of,
)
from tests.support.albums import add_photos, album_photo_ids, create_album, create_link, share

pytestmark = pytest.mark.suite("faults")

S3_FAULTS = {"InternalError": s3_error("InternalError", 500), "SlowDown": s3_error("SlowDown", 503)}
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem", "DeleteObjects"})
TRASH_DAYS = 30


@pytest.fixture(autouse=True)
def many_writes_allowed(monkeypatch: pytest.MonkeyPatch, aws: boto3.session.Session) -> None:
    """No write-rate limit in the way of the many set-up writes; the trash's default time."""
    monkeypatch.setenv("PHOTOSKY_WRITE_RATE_LIMIT", "100000")
    monkeypatch.setenv("PHOTOSKY_TRASH_DAYS", str(TRASH_DAYS))
    deps.reset()


def fresh_clients() -> None:
    """New app clients, as a new Lambda container has (botocore's retry quota drains with injected failures)."""
    deps.reset()


def assert_retry_later(response: Any) -> None:
    assert response.status_code == 503, (response.status_code, response.body)
    assert response.headers.get("Retry-After", "").isdigit(), response.headers
    assert body(response)["Code"] == "ServiceUnavailableError"


def check_at(aws: boto3.session.Session, now: datetime) -> invariants.Report:
    dynamodb, s3 = aws_clients(aws)
    return invariants.check(dynamodb, s3, table=TABLE, bucket=BUCKET, now=now)


def remains_of(aws: boto3.session.Session, user_id: str) -> list[str]:
    dynamodb, s3 = aws_clients(aws)
    return invariants.remains_of(dynamodb, s3, table=TABLE, bucket=BUCKET, user_id=user_id)


def assert_nothing_left_of(aws: boto3.session.Session, user_id: str) -> None:
    """After an account's deletion: no item of theirs (but write-rate counters), no album item naming them, no
    object under their prefixes."""
    left = remains_of(aws, user_id)
    assert left == [], left


@contextmanager
def clock_at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> Iterator[None]:
    """The app's clock at `moment` (new clients and services, as a scheduled run's), then back."""
    with monkeypatch.context() as patched:
        patched.setattr(clock, "now", lambda: moment)
        fresh_clients()
        try:
            yield
        finally:
            fresh_clients()


def purge_run(monkeypatch: pytest.MonkeyPatch, moment: datetime, *, faults: Callable[[], Any] | None = None) -> Any:
    """The scheduled purge (the job's third part) as it runs at `moment`, on the app's own clients."""
    with clock_at(monkeypatch, moment):
        if faults is not None:
            faults()
        return deps.photo_service().purge_expired(out_of_time=lambda: False)


def account_run(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> dict[str, int]:
    """The scheduled job's account part: carry on with every deletion a request did not finish."""
    with clock_at(monkeypatch, moment):
        return deps.account_deletion().finish_left_behind(out_of_time=lambda: False)


def trash_usage(user: User) -> dict[str, int]:
    """`usage.trash` of GET /users/me: how many photos and bytes are in the user's trash."""
    response = user.call("GET", "/users/me")
    assert response.status_code == 200, response.body
    trash: dict[str, int] = body(response)["usage"]["trash"]
    return trash


def soon() -> datetime:
    """A moment after anything marked "purge now" by the operations just run, within every grace."""
    return datetime.now(UTC) + timedelta(minutes=1)


# --- photos made quickly --------------------------------------------------------------------------------------------


def quick_photo(owner: User, *, digest: str | None = None, **fields: Any) -> str:
    """A READY photo made the worker's way (objects written, then the photo marked READY with the hash of its bytes,
    its claim taken) without decoding an image: the operations here never look inside the bytes, and a decode
    forks a child. `digest` gives it another photo's bytes' hash."""
    new = NewPhoto(filename="a.jpg", content_type="image/jpeg", size_bytes=100, **fields)
    photo_id = deps.photo_service().start_upload(owner.sub, new)[0].photo_id
    storage = deps.s3()
    for key in ready_objects(owner.sub, photo_id):
        storage.put_object(Bucket=BUCKET, Key=key, Body=b"x" * 100, ContentType="image/jpeg")
    repository = deps.photo_repository()
    pending = repository.get(owner.sub, photo_id)
    assert pending is not None
    ready = dataclasses.replace(
        pending,
        status=PhotoStatus.READY,
        width=1,
        height=1,
        sha256=digest or hashlib.sha256(photo_id.encode()).hexdigest(),
        preview_format=PreviewFormat.WEBP,  # the previews ready_objects names, as the worker makes them
        updated_at=clock.utc_now(),
        revision=pending.revision + 1,
    )
    assert repository.replace(ready, pending)
    return photo_id


def quick_duplicate(owner: User, holder: str) -> str:
    """An upload of `holder`'s bytes, settled as the worker settles a copy: REJECTED, naming it, quota released."""
    new = NewPhoto(filename="a.jpg", content_type="image/jpeg", size_bytes=100)
    pending = deps.photo_service().start_upload(owner.sub, new)[0]
    photo_id = pending.photo_id
    repository = deps.photo_repository()
    rejected = dataclasses.replace(
        pending,
        status=PhotoStatus.REJECTED,
        rejection_reason=f"a copy of this photo is already in your library (photo {holder})",
        duplicate_of=holder,
        updated_at=clock.utc_now(),
        revision=pending.revision + 1,
    )
    assert repository.replace(rejected, pending, release_usage=True)
    return photo_id


# --- the scene --------------------------------------------------------------------------------------------------------


class Scene:
    """alice owns the albums and the photos the operations act on; bob has a photo of his own (an account deletion's
    scene puts it in albums) and must never lose it."""

    def __init__(
        self, aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User, made: MadeOnce
    ) -> None:
        self.aws, self.api, self.s3, self.alice, self.bob = aws, api, s3, alice, bob
        # Made by the module's first test that needs it; every other test starts from it as it was made.
        self.bobs = made("scene", self.make)
        self.clean = self.state()

    def make(self) -> str:
        create_profile(self.alice, "Alice")
        create_profile(self.bob, "Bob")
        return self.photo(self.bob)

    def state(self) -> MotoState:
        """Everything stored now, to come back to with `reset`."""
        return moto_state.save()

    def reset(self, to: MotoState | None = None) -> None:
        """Back to the scene as it was made (or to the state `to`), between cases: each case starts from the same
        small table (moto's Scan, Query and transactions take time in proportion to the whole table, and the
        checker scans it all), and the state an operation needs is made once, not once per case."""
        moto_state.restore(to or self.clean)

    @contextmanager
    def case(self, to: MotoState | None = None) -> Iterator[None]:
        """One case; afterwards, whatever happened, back to the scene as made (or to the state `to`)."""
        try:
            yield
        finally:
            fresh_clients()
            self.reset(to)

    def photo(self, owner: User | None = None, *, digest: str | None = None) -> str:
        return quick_photo(owner or self.alice, digest=digest)

    def real_photo(self) -> str:
        """A READY photo through the real worker (small, so the worker is quick)."""
        return str(upload_ready(self.api, self.s3, self.alice, jpeg(16, 16))["photo_id"])

    def digest(self, photo_id: str) -> str:
        return str(get_photo(self.alice, photo_id)["sha256"])

    def album(self, *photo_ids: str) -> str:
        """A fresh album of alice's holding the photos in order (the first is its cover)."""
        album_id = str(create_album(self.alice)["album_id"])
        if photo_ids:
            add_photos(self.alice, album_id, *photo_ids)
        return album_id

    def trash(self, photo_id: str) -> None:
        assert self.alice.call("DELETE", f"/photos/{photo_id}").status_code == 204

    def original_bytes(self, photo_id: str) -> bytes:
        obj = self.s3.get_object(Bucket=BUCKET, Key=keys.original_object(self.alice.sub, photo_id))
        return bytes(obj["Body"].read())

    def get_album(self, album_id: str) -> dict[str, Any]:
        response = self.alice.call("GET", f"/albums/{album_id}")
        assert response.status_code == 200, response.body
        return dict(body(response))

    def assert_shows(self, album_id: str, photo_ids: list[str], *, cover: str | None) -> None:
        assert sorted(album_photo_ids(self.alice, album_id)) == sorted(photo_ids)
        album = self.get_album(album_id)
        assert album["photo_count"] == len(photo_ids)
        assert album["cover_photo_id"] == cover, album

    def trash_ids(self) -> list[str]:
        response = self.alice.call("GET", "/trash?limit=100")
        assert response.status_code == 200, response.body
        return [photo["photo_id"] for photo in body(response)["items"]]

    def assert_in_trash(self, photo_id: str) -> None:
        photo = get_photo(self.alice, photo_id)
        assert photo["trashed_at"] is not None, photo
        assert photo_id in self.trash_ids()
        assert photo_objects(self.s3, self.alice.sub, photo_id) == ready_objects(self.alice.sub, photo_id)

    def assert_in_library(self, photo_id: str) -> None:
        photo = get_photo(self.alice, photo_id)
        assert (photo["status"], photo["trashed_at"], photo["purge_at"]) == ("READY", None, None), photo
        assert photo_id not in self.trash_ids()
        assert photo_objects(self.s3, self.alice.sub, photo_id) == ready_objects(self.alice.sub, photo_id)

    def assert_gone(self, photo_id: str) -> None:
        assert self.alice.call("GET", f"/photos/{photo_id}").status_code == 404
        assert photo_objects(self.s3, self.alice.sub, photo_id) == set()


@pytest.fixture
def scene(aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User, made_once: MadeOnce) -> Scene:
    return Scene(aws, api, s3, alice, bob, made_once)


# --- the operations ---------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One run of an operation on state made for it."""

    send: Callable[[], Any]
    # Asserts the operation is complete, given the retry's response.
    finished: Callable[[Any], None]
    retried: set[int]
    # What the scheduled purge alone must have finished when it ran after the request was cut short.
    purged: Callable[[], None] | None = None


def trashing_a_cover(scene: Scene) -> Case:
    """A photo in two albums, the first one's cover: it leaves both, the first gets a new cover."""
    photo_id, other = scene.photo(), scene.photo()
    first, second = scene.album(photo_id, other), scene.album(other, photo_id)

    def finished(response: Any) -> None:
        scene.assert_in_trash(photo_id)
        scene.assert_shows(first, [other], cover=other)
        scene.assert_shows(second, [other], cover=other)
        assert trash_usage(scene.alice) == {"photos": 1, "bytes": 100}

    return Case(lambda: scene.alice.call("DELETE", f"/photos/{photo_id}"), finished, {204})


def restoring_into_albums(scene: Scene) -> Case:
    """A trashed photo that was in two albums (the first one's cover) goes back into both, in its old place."""
    photo_id, other = scene.photo(), scene.photo()
    first, second = scene.album(photo_id, other), scene.album(other, photo_id)
    placed = {album_id: album_photo_ids(scene.alice, album_id) for album_id in (first, second)}
    scene.trash(photo_id)

    def finished(response: Any) -> None:
        scene.assert_in_library(photo_id)
        for album_id, order in placed.items():
            assert album_photo_ids(scene.alice, album_id) == order  # back in its place, not on top
        scene.assert_shows(first, [photo_id, other], cover=other)  # the cover it lost stays with its successor

    return Case(lambda: scene.alice.call("POST", f"/photos/{photo_id}/restore"), finished, {200})


def restoring_over_a_copy(scene: Scene) -> Case:
    """A copy of the trashed photo's bytes entered the library meanwhile: the restore is refused, nothing moves."""
    photo_id = scene.photo()
    album_id = scene.album(photo_id)
    scene.trash(photo_id)
    copy = scene.photo(digest=scene.digest(photo_id))

    def finished(response: Any) -> None:
        assert body(response)["Code"] == "DuplicatePhoto"
        assert body(response)["photo_id"] == copy
        scene.assert_in_trash(photo_id)
        scene.assert_in_library(copy)
        scene.assert_shows(album_id, [], cover=None)

    return Case(lambda: scene.alice.call("POST", f"/photos/{photo_id}/restore"), finished, {409})


def deleting_for_good(scene: Scene) -> Case:
    """A READY photo in two albums (the first one's cover) deleted at once: marked, objects gone, item gone."""
    photo_id, other = scene.photo(), scene.photo()
    first, second = scene.album(photo_id, other), scene.album(other, photo_id)

    def finished(response: Any) -> None:
        scene.assert_gone(photo_id)
        scene.assert_shows(first, [other], cover=other)
        scene.assert_shows(second, [other], cover=other)

    def purged() -> None:
        scene.assert_gone(photo_id)

    return Case(lambda: scene.alice.call("DELETE", f"/photos/{photo_id}?permanent=true"), finished, {204, 404}, purged)


def emptying_the_trash(scene: Scene) -> Case:
    photo_ids = [scene.photo() for _ in range(2)]
    kept = scene.photo()
    for photo_id in photo_ids:
        scene.trash(photo_id)

    def finished(response: Any) -> None:
        assert scene.trash_ids() == []
        for photo_id in photo_ids:
            scene.assert_gone(photo_id)
        scene.assert_in_library(kept)
        assert trash_usage(scene.alice) == {"photos": 0, "bytes": 0}

    def purged() -> None:
        # The photo marked when the request stopped (its purge due at once) is gone; the others, due in 30 days,
        # wait for the client's retry.
        due = [p for p in scene.trash_ids() if get_photo(scene.alice, p)["purge_at"] <= clock.utc_now()]
        assert due == [], due

    return Case(lambda: scene.alice.call("DELETE", "/trash"), finished, {204}, purged)


def batch(action: str, *, trashed: bool = False, outcomes: frozenset[str] = frozenset({"done"})) -> Callable[..., Case]:
    def prepare(scene: Scene) -> Case:
        photo_ids = [scene.photo() for _ in range(2)]
        album_id = scene.album(*photo_ids)
        if trashed:
            for photo_id in photo_ids:
                scene.trash(photo_id)

        def finished(response: Any) -> None:
            results = body(response)["results"]
            assert [r["photo_id"] for r in results] == photo_ids
            assert {r["status"] for r in results} <= outcomes, results
            for photo_id in photo_ids:
                {"trash": scene.assert_in_trash, "restore": scene.assert_in_library, "delete": scene.assert_gone}[
                    action
                ](photo_id)
            shown = photo_ids if action == "restore" else []
            assert sorted(album_photo_ids(scene.alice, album_id)) == sorted(shown)

        payload = {"action": action, "photo_ids": photo_ids}
        return Case(lambda: scene.alice.call("POST", "/photos/batch", payload), finished, {200})

    return prepare


@dataclass(frozen=True)
class Operation:
    prepare: Callable[[Scene], Case]
    succeeds_with: int
    # Whether a request cut short may leave a photo marked for the scheduled purge to finish.
    purge_finishes: bool = False
    # A batch answers for each photo: a fault in one photo's steps is that photo's "conflict", not a 503.
    batch: bool = False
    # Sampled, every how many calls one is faulted (see support.sample): an operation that repeats one photo's
    # steps for each photo (a batch, emptying the trash) needs no fault at every repetition of the same step.
    every: int = 1


OPERATIONS: dict[str, Operation] = {
    "trash a photo that is an album's cover": Operation(trashing_a_cover, 204),
    "restore into two albums (a transaction each)": Operation(restoring_into_albums, 200),
    "restore refused: a copy entered the library": Operation(restoring_over_a_copy, 409),
    "delete for good a photo in two albums": Operation(deleting_for_good, 204, purge_finishes=True),
    "empty the trash of two photos": Operation(emptying_the_trash, 204, purge_finishes=True, every=2),
    "batch: trash two photos in an album": Operation(batch("trash"), 200, batch=True, every=2),
    "batch: restore two into their album": Operation(batch("restore", trashed=True), 200, batch=True, every=2),
    "batch: delete two for good": Operation(
        batch("delete", outcomes=frozenset({"done", "not_found"})), 200, batch=True, every=2
    ),
}


# --- the faults -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    family: str  # what happens: the kinds `make test` samples (see support.sample)
    inject: Callable[[Faults, str, str, int], Any]  # (faults, service, operation, which call of it)
    applied: bool  # whether the failing call's write took effect
    crash: bool = False  # the process dies: no response at all
    error: str = ""  # the error it answers with, where the family has several

    @property
    def name(self) -> str:
        return f"{self.family} ({self.error})" if self.error else self.family


def throttled(name: str, respond: Callable[[Any], Any]) -> Kind:
    def inject(faults: Faults, service: str, operation: str, nth: int) -> Any:
        return faults.inject(service, operation, respond, failing=set(range(nth, nth + ATTEMPTS)))

    return Kind("throttled", inject, applied=False, error=name)


def _lose_reply(request_name: str) -> None:
    raise ReadTimeoutError(endpoint_url=f"https://injected/{request_name}")


REPLY_LOST = Kind(
    "reply lost after the write",
    lambda faults, service, operation, nth: faults.after(
        service, operation, nth, functools.partial(_lose_reply, operation)
    ),
    applied=True,
)
CRASH_AFTER = Kind(
    "crash right after the call",
    lambda faults, service, operation, nth: faults.crash_after(service, operation, nth),
    applied=True,
    crash=True,
)


def cancelled(name: str, respond: Callable[[Any], Any]) -> Kind:
    def inject(faults: Faults, service: str, operation: str, nth: int) -> Any:
        return faults.inject(service, operation, respond, failing={nth})

    return Kind("transaction cancelled", inject, applied=False, error=name)


def kinds_for(service: str, operation: str, position: int) -> list[Kind]:
    """Every kind of fault that fits the call: throttled (its error rotating with the position); for a write, its
    reply lost or a crash once it applied; for a transaction, cancelled (its reason rotating)."""
    if service == "s3":
        code = list(S3_FAULTS)[position % len(S3_FAULTS)]
        fitting = [throttled(f"S3 {code}", S3_FAULTS[code])]
    else:
        code = list(THROTTLES)[position % len(THROTTLES)]
        fitting = [throttled(code, THROTTLES[code])]
    if operation in WRITES:
        fitting += [REPLY_LOST, CRASH_AFTER]
    if operation == "TransactWriteItems":
        reason = list(CANCELLATIONS)[position % len(CANCELLATIONS)]
        fitting.append(cancelled(reason, CANCELLATIONS[reason]))
    return fitting


Call = tuple[str, str, int]  # (service, operation, which call of that operation)


def calls_of(scene: Scene, operation: Operation, case: Case, prepared: MotoState) -> list[Call]:
    """The calls one clean run makes, in order (then back to the state prepared for it)."""
    with scene.case(prepared):
        fresh_clients()
        with recorded_calls() as calls:
            response = case.send()
        assert response.status_code == operation.succeeds_with, response.body
        case.finished(response)
        assert_invariants(scene.aws)
    return [(service, name, calls[: i + 1].count((service, name))) for i, (service, name) in enumerate(calls)]


def fault_or_finisher(cell: tuple[Kind, str]) -> str:
    """What a case stands for in the sample: its kind of fault if the client's retry finishes it, else the purge.
    So every kind of fault, and the purge where it has something to finish, is tried at least once per operation."""
    kind, finisher = cell
    return kind.family if finisher == "retry" else finisher


def send_with_fault(case: Case, faults: Faults, call: Call, kind: Kind) -> Any:
    """The request with the fault on one call: its response, or None if the process died."""
    service, name, nth = call
    fresh_clients()
    kind.inject(faults, service, name, nth)
    try:
        if kind.crash:
            with pytest.raises(Crash):
                case.send()
            return None
        return case.send()
    finally:
        faults.clear()


def assert_cut_short(operation: Operation, response: Any) -> None:
    """A 503, or for a batch a 503 or each photo's result (the one whose step failed a conflict)."""
    if response is None:
        return
    if operation.batch and response.status_code == 200:
        assert {r["status"] for r in body(response)["results"]} <= {"done", "conflict", "not_found"}, response.body
        return
    if operation.succeeds_with == 409 and response.status_code == 409:
        return  # the refusal read the claim before the fault: refused all the same
    assert_retry_later(response)


def run_cut_short(
    scene: Scene,
    faults: Faults,
    operation: Operation,
    case: Case,
    call: Call,
    kind: Kind,
    *,
    purge: pytest.MonkeyPatch | None,
) -> None:
    response = send_with_fault(case, faults, call, kind)
    assert_cut_short(operation, response)
    # Cut short, nothing is inconsistent: a purge stopped between its objects and its item is a photo still in
    # the trash, marked, its purge due; a restore stopped between its transactions is within its grace.
    assert_invariants(scene.aws)
    if purge is not None:
        purge_run(purge, soon())
        assert_invariants(scene.aws)
        assert case.purged is not None
        case.purged()
    retried = case.send()
    assert retried.status_code in case.retried, (retried.status_code, retried.body)
    case.finished(retried)
    assert_invariants(scene.aws)


@pytest.fixture
def small_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    """One album per restore transaction, so a restore into two albums takes two and can stop between them."""
    monkeypatch.setattr(photo_repository, "_RESTORE_ROOM", 1)


@pytest.mark.usefixtures("small_restores")
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_fault_on_any_call_of_a_library_operation_is_503_and_its_retry_or_the_purge_finishes_it(
    scene: Scene, faults: Faults, monkeypatch: pytest.MonkeyPatch, subtests: Any, name: str
) -> None:
    operation = OPERATIONS[name]
    # The state the operation needs, made once; every case starts from it (the same photos, albums and ids).
    case = operation.prepare(scene)
    prepared = scene.state()
    calls = calls_of(scene, operation, case, prepared)
    matrix: list[tuple[int, list[tuple[Kind, str]]]] = []
    marked = False  # whether a photo has been marked for its purge by the calls before this one
    for position, (service, op, _) in enumerate(calls):
        cells = []
        for kind in kinds_for(service, op, position):
            cells.append((kind, "retry"))
            # The scheduled purge as the finisher too, where a photo is left marked (the explicit cases are the
            # tests below).
            if operation.purge_finishes and (marked or (kind.applied and op == "TransactWriteItems")):
                cells.append((kind, "purge"))
        matrix.append((position, cells))
        # A purge's first transaction marks the photo; from then on the scheduled purge can finish it.
        marked = marked or op == "TransactWriteItems"
    for position, (kind, finisher) in sample(matrix, fault_or_finisher, every=operation.every):
        service, op, nth = call = calls[position]
        named = {"call": f"{position}:{service}.{op}#{nth}", "fault": kind.name, "finished_by": finisher}
        with subtests.test(**named), scene.case(prepared):
            purge = monkeypatch if finisher == "purge" else None
            run_cut_short(scene, faults, operation, case, call, kind, purge=purge)


@pytest.mark.parametrize("finisher", ["retry", "scheduled purge"])
@pytest.mark.parametrize("request_kind", ["DELETE ?permanent=true", "DELETE /trash"])
def test_a_purge_that_dies_after_deleting_the_objects_is_finished_and_leaves_nothing(
    scene: Scene, faults: Faults, monkeypatch: pytest.MonkeyPatch, request_kind: str, finisher: str
) -> None:
    """The request marked the photo (in the trash, purge due now), deleted its objects, and died before deleting
    its item: the photo is still in the trash, marked, without objects, and no restore may bring it back; the
    client's retry, or the scheduled purge, deletes it."""
    photo_id, other = scene.photo(), scene.photo()
    album_id = scene.album(photo_id, other)
    if request_kind == "DELETE /trash":
        scene.trash(photo_id)
        send = functools.partial(scene.alice.call, "DELETE", "/trash")
    else:
        send = functools.partial(scene.alice.call, "DELETE", f"/photos/{photo_id}?permanent=true")
    fresh_clients()
    faults.crash_after("s3", "DeleteObjects", 1)
    try:
        with pytest.raises(Crash):
            send()
    finally:
        faults.clear()
    left = get_photo(scene.alice, photo_id)
    assert left["trashed_at"] is not None, left
    assert photo_objects(scene.s3, scene.alice.sub, photo_id) == set()
    assert scene.alice.call("POST", f"/photos/{photo_id}/restore").status_code == 409  # being deleted for good
    assert_invariants(scene.aws)  # a photo being purged may have lost its objects; it is due, not yet overdue
    if finisher == "retry":
        assert send().status_code == 204
    else:
        assert purge_run(monkeypatch, soon())["purged"] == 1
    scene.assert_gone(photo_id)
    scene.assert_shows(album_id, [other], cover=other)
    assert trash_usage(scene.alice) == {"photos": 0, "bytes": 0}
    assert_invariants(scene.aws)


def test_a_batch_with_one_photos_step_failing_answers_for_each_photo_and_its_retry_finishes(
    scene: Scene, faults: Faults
) -> None:
    """The second photo's transaction throttled on every attempt: the batch answers 200, `done` for the others and
    `conflict` for that one (its state untouched); sending the same batch again finishes it."""
    photo_ids = [scene.photo() for _ in range(3)]
    album_id = scene.album(*photo_ids)
    payload = {"action": "trash", "photo_ids": photo_ids}
    fresh_clients()
    faults.inject("dynamodb", "TransactWriteItems", THROTTLES["ThrottlingException"], failing={2, 3, 4})
    try:
        response = scene.alice.call("POST", "/photos/batch", payload)
    finally:
        faults.clear()
    assert response.status_code == 200, response.body
    assert [r["status"] for r in body(response)["results"]] == ["done", "conflict", "done"]
    scene.assert_in_library(photo_ids[1])
    assert album_photo_ids(scene.alice, album_id) == [photo_ids[1]]
    assert_invariants(scene.aws)
    retried = scene.alice.call("POST", "/photos/batch", payload)
    assert [r["status"] for r in body(retried)["results"]] == ["done"] * 3
    for photo_id in photo_ids:
        scene.assert_in_trash(photo_id)
    assert album_photo_ids(scene.alice, album_id) == []
    assert_invariants(scene.aws)


def test_a_restore_cut_short_between_its_transactions_is_finished_by_the_next_restore(
    scene: Scene, faults: Faults, small_restores: None
) -> None:
    """Until the owner restores again, the photo is in the library but not yet back in its second album: within
    the grace the checker says nothing, past it `unfinished-album-return` (nothing scheduled finishes a restore)."""
    case = restoring_into_albums(scene)
    assert send_with_fault(case, faults, ("dynamodb", "TransactWriteItems", 1), CRASH_AFTER) is None
    assert_invariants(scene.aws)
    late = check_at(scene.aws, datetime.now(UTC) + CLEANUP_GRACE + timedelta(seconds=1))
    assert {v.rule for v in late.violations} == {"unfinished-album-return"}, [str(v) for v in late.violations]
    retried = case.send()
    assert retried.status_code == 200, retried.body
    case.finished(retried)
    assert_invariants(scene.aws)


# --- the scheduled purge ----------------------------------------------------------------------------------------------


def expired_trash(scene: Scene, count: int) -> tuple[list[str], datetime]:
    """`count` photos trashed now, in an album; the moment their time in the trash is up."""
    photo_ids = [scene.photo() for _ in range(count)]
    scene.album(*photo_ids)
    for photo_id in photo_ids:
        scene.trash(photo_id)
    return photo_ids, datetime.now(UTC) + timedelta(days=TRASH_DAYS, minutes=1)


PURGE_FAULTS: dict[str, Callable[[Faults], Any]] = {
    "every transaction throttled": lambda f: f.inject(
        "dynamodb", "TransactWriteItems", THROTTLES["ThrottlingException"]
    ),
    "S3 failing on every delete": lambda f: f.inject("s3", "DeleteObjects", S3_FAULTS["InternalError"]),
    "the second photo's objects deleted, then a crash": lambda f: f.crash_after("s3", "DeleteObjects", 2),
    "a crash before the second photo's mark": lambda f: f.crash_before("dynamodb", "TransactWriteItems", 3),
    "the first item's delete reply lost": lambda f: f.after(
        "dynamodb", "TransactWriteItems", 2, functools.partial(_lose_reply, "TransactWriteItems")
    ),
    "the index read throttled": lambda f: f.inject(
        "dynamodb", "Query", THROTTLES["ProvisionedThroughputExceededException"]
    ),
}


def test_a_purge_run_cut_short_by_a_fault_or_a_crash_is_finished_by_the_next_run(
    scene: Scene, faults: Faults, monkeypatch: pytest.MonkeyPatch, subtests: Any
) -> None:
    photo_ids, expiry = expired_trash(scene, 3)
    kept = scene.photo()
    with clock_at(monkeypatch, datetime.now(UTC) + timedelta(days=1)):
        scene.trash(kept)  # trashed a day later: its time is not up
    prepared = scene.state()  # every case starts from here
    for name, inject in PURGE_FAULTS.items():
        with subtests.test(fault=name), scene.case(prepared):
            try:
                # A fault fails the photos it hits, each on its own (the run goes on); a crash or an unreadable
                # index ends the run.
                counts = purge_run(monkeypatch, expiry, faults=functools.partial(inject, faults))
                assert counts["failed"] or counts["purged"] < len(photo_ids), counts
            except (Crash, errors.Unavailable):
                pass
            finally:
                faults.clear()
            # Cut short, every photo is in the trash (marked or not, with its objects or, marked, without some)
            # or gone with all its objects.
            report = check_at(scene.aws, expiry)
            assert report.ok, [str(v) for v in report.violations]
            next_run = expiry + invariants.SWEEP_INTERVAL
            counts = purge_run(monkeypatch, next_run)
            assert counts["failed"] == counts["left"] == 0, counts
            for photo_id in photo_ids:
                scene.assert_gone(photo_id)
            assert kept in scene.trash_ids()
            report = check_at(scene.aws, next_run)
            assert report.ok, [str(v) for v in report.violations]


def test_a_photo_restored_after_the_purge_read_the_index_is_not_purged(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job listed the photo as due; its owner restores it before the job gets to it: it stays."""
    (photo_id,), expiry = expired_trash(scene, 1)
    with clock_at(monkeypatch, expiry):
        service, repository = deps.photo_service(), deps.photo_repository()
        listed = repository.expired_trash

        def listed_then_restored(now: str) -> list[tuple[str, str]]:
            due = listed(now)
            assert due == [(scene.alice.sub, photo_id)]
            service.restore(scene.alice.sub, photo_id)
            return due

        monkeypatch.setattr(repository, "expired_trash", listed_then_restored)
        counts = service.purge_expired(out_of_time=lambda: False)
    assert counts == {"purged": 0, "failed": 0, "left": 0}, counts
    scene.assert_in_library(photo_id)
    assert_invariants(scene.aws)


# --- races: trash, restore and purge ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("atomic_moto")
def test_trash_restore_and_permanent_delete_racing_leave_one_consistent_state(scene: Scene, cases: Any) -> None:
    service = deps.photo_service()
    owner = scene.alice.sub
    rounds = 4
    for _ in range(rounds):
        photo_id = scene.photo()
        album_id = scene.album(photo_id)
        scene.trash(photo_id)
        statuses = race(
            [
                functools.partial(status_of, functools.partial(service.restore, owner, photo_id)),
                functools.partial(status_of, functools.partial(service.delete, owner, photo_id)),
                functools.partial(status_of, functools.partial(service.delete, owner, photo_id, permanent=True)),
            ]
        )
        restored, trashed_again, purged = statuses
        assert restored in (200, 404, 409, 503), statuses
        assert trashed_again in (200, 404, 503), statuses
        assert purged in (200, 503), statuses
        assert_invariants(scene.aws)
        response = scene.alice.call("GET", f"/photos/{photo_id}")
        if purged == 200:
            assert response.status_code == 404, response.body  # a purge that answered 204 left nothing
            assert photo_objects(scene.s3, owner, photo_id) == set()
        elif response.status_code == 200:
            # Still there (the purge gave up): wholly in the library (and its album) or wholly in the trash.
            photo = body(response)
            assert photo_objects(scene.s3, owner, photo_id) == ready_objects(owner, photo_id)
            assert (photo_id in album_photo_ids(scene.alice, album_id)) == (photo["trashed_at"] is None)
    cases.tried(rounds * 3)


@pytest.mark.usefixtures("atomic_moto")
def test_a_restore_racing_the_upload_of_a_copy_lets_exactly_one_into_the_library(scene: Scene, cases: Any) -> None:
    service = deps.photo_service()
    owner = scene.alice.sub
    rounds = 4
    for _ in range(rounds):
        photo_id = scene.real_photo()
        scene.trash(photo_id)
        data = scene.original_bytes(photo_id)
        copy = start_upload(scene.alice, data)["photo"]["photo_id"]
        key = put_upload(scene.s3, owner, copy, data)
        restored, worker = race(
            [
                functools.partial(status_of, functools.partial(service.restore, owner, photo_id)),
                functools.partial(deliver, scene.api, key),
            ]
        )
        assert worker is None, worker
        original, duplicate = get_photo(scene.alice, photo_id), get_photo(scene.alice, copy)
        in_library = [p for p in (original, duplicate) if p["status"] == "READY" and p["trashed_at"] is None]
        assert len(in_library) == 1, (restored, original, duplicate)
        if restored == 200:
            assert (duplicate["status"], duplicate["duplicate_of"]) == ("REJECTED", photo_id)
            assert photo_objects(scene.s3, owner, copy) == set()
        else:
            assert restored == 409, restored
            assert duplicate["status"] == "READY"
            assert original["trashed_at"] is not None
        assert_invariants(scene.aws)
        for photo in (photo_id, copy):
            assert scene.alice.call("DELETE", f"/photos/{photo}?permanent=true").status_code == 204
    cases.tried(rounds)


# --- the worker's duplicate path --------------------------------------------------------------------------------------


def settle(api: Client, key: str) -> None:
    """Redeliver until the worker settles the upload (SQS's retries), at most a few times."""
    for _ in range(5):
        try:
            deliver(api, key)
            return
        except errors.Unavailable:
            continue
    raise AssertionError(f"{key} never settled")


@pytest.mark.usefixtures("atomic_moto")
def test_two_uploads_of_the_same_bytes_delivered_at_once_and_again_settle_one_ready_and_one_duplicate(
    scene: Scene, cases: Any
) -> None:
    owner = scene.alice.sub
    rounds = 4
    for _ in range(rounds):
        counted_before = usage_of(scene.alice)
        data = jpeg(16, 16)
        first, second = (start_upload(scene.alice, data)["photo"]["photo_id"] for _ in range(2))
        upload_keys = [put_upload(scene.s3, owner, photo_id, data) for photo_id in (first, second)]
        outcomes = race([functools.partial(deliver, scene.api, key) for key in upload_keys])
        assert all(o is None or isinstance(o, errors.Unavailable) for o in outcomes), outcomes
        for key in upload_keys * 2:  # SQS redelivers each event (at least once, maybe more)
            settle(scene.api, key)
        photos = {photo_id: get_photo(scene.alice, photo_id) for photo_id in (first, second)}
        ready = [p for p in photos.values() if p["status"] == "READY"]
        rejected = [p for p in photos.values() if p["status"] == "REJECTED"]
        assert len(ready) == len(rejected) == 1, photos
        assert rejected[0]["duplicate_of"] == ready[0]["photo_id"]
        assert photo_objects(scene.s3, owner, rejected[0]["photo_id"]) == set()
        assert photo_objects(scene.s3, owner, ready[0]["photo_id"]) == ready_objects(owner, ready[0]["photo_id"])
        usage = usage_of(scene.alice)
        assert (usage["photos"], usage["bytes"], usage["pending"]) == (
            counted_before["photos"] + 1,
            counted_before["bytes"] + len(data),
            counted_before["pending"],
        )
        assert_invariants(scene.aws)
    cases.tried(rounds)


@dataclass
class Copies:
    """Two photos of the same bytes: `deliver` is the upload whose worker the test runs (and crashes)."""

    photo_ids: list[str]
    upload_keys: list[str]  # every upload SQS has an event for
    deliver: str
    size: int


def copy_of_a_library_photo(scene: Scene) -> Copies:
    """A photo already in the library, and an upload of its bytes: the worker finds the claim before writing."""
    holder = scene.real_photo()
    data = scene.original_bytes(holder)
    copy = start_upload(scene.alice, data)["photo"]["photo_id"]
    key = put_upload(scene.s3, scene.alice.sub, copy, data)
    return Copies([holder, copy], [key], key, len(data))


def copies_settling_at_once(scene: Scene, faults: Faults, span: list[int], calls: list[Any]) -> Copies:
    """Two uploads of the same bytes: the second settles READY while the first is being processed, right after the
    first read the claim (none yet), so the first loses only at the claim's condition, its objects written. The
    interleaving is armed on the app's clients; `span` gets where, in `calls`, the second's delivery began and
    ended."""
    data = jpeg(16, 16)
    first, second = (start_upload(scene.alice, data)["photo"]["photo_id"] for _ in range(2))
    first_key = put_upload(scene.s3, scene.alice.sub, first, data)
    second_key = put_upload(scene.s3, scene.alice.sub, second, data)

    def second_settles() -> None:
        span.append(len(calls))
        deliver(scene.api, second_key)
        span.append(len(calls))

    # The worker's calls: GetItem (the photo), HeadObject, GetObject, GetItem (the claim), ...
    faults.after("dynamodb", "GetItem", 2, second_settles)
    return Copies([first, second], [first_key, second_key], first_key, len(data))


def arrange_copies(scene: Scene, faults: Faults, path: str, calls: list[Any] | None = None) -> tuple[Copies, list[int]]:
    span: list[int] = []
    if path == "copy found before writing":
        return copy_of_a_library_photo(scene), span
    return copies_settling_at_once(scene, faults, span, calls if calls is not None else []), span


def assert_one_ready_one_duplicate(scene: Scene, copies: Copies, counted_before: dict[str, Any]) -> None:
    owner = scene.alice.sub
    photos = [get_photo(scene.alice, photo_id) for photo_id in copies.photo_ids]
    ready = [p for p in photos if p["status"] == "READY"]
    rejected = [p for p in photos if p["status"] == "REJECTED"]
    assert len(ready) == len(rejected) == 1, photos
    assert rejected[0]["duplicate_of"] == ready[0]["photo_id"], rejected[0]
    assert photo_objects(scene.s3, owner, rejected[0]["photo_id"]) == set()
    assert photo_objects(scene.s3, owner, ready[0]["photo_id"]) == ready_objects(owner, ready[0]["photo_id"])
    usage = usage_of(scene.alice)
    assert (usage["photos"], usage["bytes"], usage["pending"]) == (
        counted_before["photos"] + 1,
        counted_before["bytes"] + copies.size,
        counted_before["pending"],
    )


def test_a_copy_that_loses_the_claim_at_its_last_step_is_rejected_and_its_objects_removed(
    scene: Scene, faults: Faults
) -> None:
    counted_before = usage_of(scene.alice)
    fresh_clients()
    copies, _ = arrange_copies(scene, faults, "claim lost at the last step")
    try:
        deliver(scene.api, copies.deliver)  # raises if the worker failed
    finally:
        faults.clear()
    first, second = copies.photo_ids
    assert get_photo(scene.alice, first)["duplicate_of"] == second
    assert_one_ready_one_duplicate(scene, copies, counted_before)
    assert_invariants(scene.aws)


@pytest.mark.parametrize("path", ["copy found before writing", "claim lost at the last step"])
def test_a_worker_dying_after_any_step_of_the_duplicate_path_is_finished_by_the_redeliveries(
    scene: Scene, faults: Faults, subtests: Any, path: str
) -> None:
    """Whatever call the worker dies after, SQS's redeliveries (of both uploads, twice) leave exactly one copy in
    the library and the other REJECTED with duplicate_of, its quota released and none of its objects left."""
    with scene.case(), recorded_calls() as recorded:
        copies, span = arrange_copies(scene, faults, path, recorded)
        recorded.clear()  # the arrangement's own API calls
        try:
            deliver(scene.api, copies.deliver)
        finally:
            faults.clear()
    steps = [(s, o, recorded[: i + 1].count((s, o))) for i, (s, o) in enumerate(recorded)]
    # Not inside the second upload's own delivery (the interleaving): only the first worker dies.
    nested = range(*span) if span else range(0)
    assert steps, steps
    assert not span or len(nested) >= 5, (steps, span)
    for position, (service, op, nth) in enumerate(steps):
        if position in nested:
            continue
        with subtests.test(call=f"{position}:{service}.{op}#{nth}"), scene.case():
            counted_before = usage_of(scene.alice)
            fresh_clients()
            copies, _ = arrange_copies(scene, faults, path)
            faults.crash_after(service, op, nth)
            try:
                with pytest.raises(Crash):
                    deliver(scene.api, copies.deliver)
            finally:
                faults.clear()
            assert_invariants(scene.aws)  # even half-way, nothing is inconsistent
            for key in copies.upload_keys * 2:
                settle(scene.api, key)
            assert_one_ready_one_duplicate(scene, copies, counted_before)
            assert_invariants(scene.aws)


@pytest.mark.parametrize(
    ("dies_after", "nth"), [("s3.PutObject", 6), ("dynamodb.TransactWriteItems", 3)], ids=["objects", "rejection"]
)
def test_a_copy_whose_worker_died_after_writing_its_objects_leaves_none_once_redelivered(
    scene: Scene, faults: Faults, dies_after: str, nth: int
) -> None:
    """The second upload settled while the first was processed (the interleaving); the first worker wrote its
    objects (its PutObject calls are the 4th to 6th: the second's were the 1st to 3rd), lost at the claim, and
    died after its last object or after the transaction that rejects it."""
    fresh_clients()
    copies, _ = arrange_copies(scene, faults, "claim lost at the last step")
    service, operation = dies_after.split(".")
    faults.crash_after(service, operation, nth)
    try:
        with pytest.raises(Crash):
            deliver(scene.api, copies.deliver)
    finally:
        faults.clear()
    settle(scene.api, copies.deliver)  # SQS redelivers
    first, second = copies.photo_ids
    assert get_photo(scene.alice, first)["duplicate_of"] == second
    assert photo_objects(scene.s3, scene.alice.sub, first) == set()
    assert_invariants(scene.aws)


# --- account deletion -------------------------------------------------------------------------------------------------


class Doomed:
    """A user about to delete their account, with a library touching everyone's: a favourite tagged photo in
    their album (shared with bob, who added a photo of his, and opened by a link), a photo in bob's album (as a
    contributor), one in the trash, an upload in flight, a rejected copy of a photo of theirs."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        api, s3 = scene.api, scene.s3
        self.user = User(api, str(uuid.uuid4()))
        create_profile(self.user, "Doomed")
        first = quick_photo(self.user, tags=("sea",))
        assert self.user.call("PATCH", f"/photos/{first}", {"favorite": True, "version": 1}).status_code == 200
        second, thrown = quick_photo(self.user), quick_photo(self.user)
        self.album = create_album(self.user, "Mine")["album_id"]
        add_photos(self.user, self.album, first, thrown)
        share(self.user, self.album, scene.bob, "contributor")
        add_photos(scene.bob, self.album, scene.bobs)
        create_link(self.user, self.album)
        self.bobs_album = create_album(scene.bob, "Bob's")["album_id"]
        add_photos(scene.bob, self.bobs_album, scene.bobs)
        share(scene.bob, self.bobs_album, self.user, "contributor")
        add_photos(self.user, self.bobs_album, second)
        assert self.user.call("DELETE", f"/photos/{thrown}").status_code == 204
        quick_duplicate(self.user, first)
        # An upload in flight: its object is there, its event not yet handled.
        pending = start_upload(self.user, b"y" * 100)["photo"]["photo_id"]
        put_upload(s3, self.user.sub, pending, b"y" * 100)
        self.bob_before = self.bobs_library()

    def bobs_library(self) -> tuple[Any, ...]:
        """What of bob's must survive: his photos (status, bytes), their objects, his usage, his photos in his own
        album."""
        scene = self.scene
        mine = snapshot(scene.aws, scene.bob.sub, quick=True)
        photos = {
            sk.removeprefix(keys.PHOTO_PREFIX): (item["status"]["S"], item.get("sha256", {}).get("S"))
            for (_, sk), item in mine.items.items()
            if sk.startswith(keys.PHOTO_PREFIX)
        }
        in_album = [p for p in album_photo_ids(scene.bob, self.bobs_album) if p in photos]
        return photos, mine.objects, usage_of(scene.bob), in_album

    def delete(self) -> Any:
        return self.user.call("DELETE", "/users/me")

    def assert_gone(self, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
        """Nothing of the user's is left, nothing of bob's is lost. With `monkeypatch`: an album deletion or a
        departure that an earlier, cut-short attempt began may be left to the album sweeper (the user's access
        entry, which the account deletion finds its albums by, goes when such a clean-up begins): it must be all
        that is left, invisible, and the sweeper must finish it."""
        scene = self.scene
        if monkeypatch is not None and remains_of(scene.aws, self.user.sub):
            left = [line for line in remains_of(scene.aws, self.user.sub) if not self._cleaning_up(line)]
            assert left == [], left
            later = datetime.now(UTC) + CLEANUP_GRACE + timedelta(seconds=1)
            with clock_at(monkeypatch, later):
                deps.album_service().finish_left_behind(deadline=lambda: False)
        assert_nothing_left_of(scene.aws, self.user.sub)
        assert self.user.call("GET", "/users/me").status_code == 404
        assert scene.bob.call("GET", f"/albums/{self.album}").status_code == 404
        assert self.bobs_library() == self.bob_before  # nothing of bob's lost
        members = body(scene.bob.call("GET", f"/albums/{self.bobs_album}/members"))["items"]
        assert [m["user_id"] for m in members] == [scene.bob.sub]

    def _cleaning_up(self, line: str) -> bool:
        """Whether a line of remains_of is an album being deleted or a membership ending (in the clean-up index)."""
        dynamodb, _ = aws_clients(self.scene.aws)
        pk, _, sk = line.removeprefix("item ").partition(" ")[0].partition("/")
        item = dynamodb.get_item(TableName=TABLE, Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True)
        found = item.get("Item", {})
        return pk.startswith(keys.ALBUM_PREFIX) and ("deleting_since" in found or "leaving_since" in found)


def doomed_and_its_deletions_calls(scene: Scene) -> tuple[Doomed, MotoState, list[Call]]:
    """The doomed user (made once: every case starts from the state saved here), and the calls one clean deletion
    of their account makes."""
    doomed = Doomed(scene)
    prepared = scene.state()
    with scene.case(prepared):
        fresh_clients()
        with recorded_calls() as calls:
            response = doomed.delete()
        assert response.status_code == 204, response.body
        doomed.assert_gone()
        assert_invariants(scene.aws)
    return doomed, prepared, [(s, o, calls[: i + 1].count((s, o))) for i, (s, o) in enumerate(calls)]


def test_an_account_deletion_that_dies_after_any_step_is_finished_by_its_retry_or_the_scheduled_job(
    scene: Scene, faults: Faults, monkeypatch: pytest.MonkeyPatch, subtests: Any
) -> None:
    """The request dies right after each of its writes in turn (the mark, each album's, each photo's, the objects',
    the leftovers', the finish), then DELETE /users/me again or the scheduled job finishes it (sampled: every
    other write, as it repeats its steps for each album and photo, and the finish; the two finishers alternate).
    (Dying right after a read leaves what dying after the write before it leaves.)"""
    doomed, prepared, steps = doomed_and_its_deletions_calls(scene)
    assert len(steps) > 20, steps
    writes = [(position, step) for position, step in enumerate(steps) if step[1] in WRITES]
    matrix = [(write, ["scheduled job", "retry"]) for write in writes]
    for (position, (service, op, nth)), finisher in sample(matrix, every=2):
        with subtests.test(call=f"{position}:{service}.{op}#{nth}", finished_by=finisher), scene.case(prepared):
            fresh_clients()
            faults.crash_after(service, op, nth)
            try:
                with pytest.raises(Crash):
                    doomed.delete()
            finally:
                faults.clear()
            # Cut short, nothing is inconsistent: the account is marked (its objects may outlive its photos until
            # the objects step), or already gone.
            assert_invariants(scene.aws)
            if position:  # the first call spends a write-rate token: nothing is marked yet
                assert doomed.user.call("GET", "/users/me").status_code == 404
            if finisher == "retry":
                retried = doomed.delete()
                assert retried.status_code == 204, retried.body
            else:
                account_run(monkeypatch, datetime.now(UTC))
                if position == 0:  # nothing marked: nothing for the job to do; the client retries
                    assert doomed.delete().status_code == 204
            doomed.assert_gone(monkeypatch)
            assert_invariants(scene.aws)


def test_an_account_deletion_throttled_at_each_step_is_503_and_its_retry_finishes_it(
    scene: Scene, faults: Faults, monkeypatch: pytest.MonkeyPatch, subtests: Any
) -> None:
    """A persistent throttle (each of DynamoDB's or S3's errors; sampled, one each in turn) on the first call of
    each kind the deletion makes: 503 (the work so far kept), then the client's retry finishes it."""
    doomed, prepared, steps = doomed_and_its_deletions_calls(scene)
    firsts = [step for step in steps if step[2] == 1]
    matrix = [(first, list(S3_FAULTS if first[0] == "s3" else THROTTLES)) for first in firsts]
    for (service, op, nth), code in sample(matrix):
        kinds = S3_FAULTS if service == "s3" else THROTTLES
        with subtests.test(call=f"{service}.{op}", error=code), scene.case(prepared):
            fresh_clients()
            faults.inject(service, op, kinds[code], failing=set(range(nth, nth + ATTEMPTS)))
            try:
                response = doomed.delete()
            finally:
                faults.clear()
            assert_retry_later(response)
            assert_invariants(scene.aws)
            retried = doomed.delete()
            assert retried.status_code == 204, retried.body
            doomed.assert_gone(monkeypatch)
            assert_invariants(scene.aws)


def test_an_account_deletion_out_of_time_answers_202_and_the_scheduled_job_finishes_it(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    doomed = Doomed(scene)
    monkeypatch.setattr("app.WORK_BUDGET_SECONDS", -1)  # out of time at the first photo
    response = doomed.delete()
    assert response.status_code == 202, response.body
    assert body(response) == {"status": "deleting"}
    assert doomed.user.call("GET", "/users/me").status_code == 404
    assert_invariants(scene.aws)
    late = check_at(scene.aws, datetime.now(UTC) + CLEANUP_GRACE + timedelta(seconds=1))
    assert {(v.rule, v.subject) for v in late.violations} == {
        ("overdue-cleanup", f"{keys.user_pk(doomed.user.sub)}/{keys.ACCOUNT_DELETION_SK}")
    }
    assert account_run(monkeypatch, datetime.now(UTC)) == {"accounts_deleted": 1, "left_for_next_run": 0}
    doomed.assert_gone()
    assert_invariants(scene.aws)


def writes_during_a_deletion(scene: Scene, meanwhile: Callable[[Doomed], None]) -> Doomed:
    """An account deletion with `meanwhile` run right after its albums step (when its photos step begins with a
    Query of the user's photos); it must answer 204."""
    doomed = Doomed(scene)
    fresh_clients()
    client = deps.dynamodb()
    state = {"armed": False, "fired": False}

    def before(params: dict[str, Any], **_: Any) -> None:
        # The photos step's Query: the user's photo items, a page at a time (no listing asks with these).
        values = params.get("ExpressionAttributeValues", {})
        if values.get(":photos", {}).get("S") == keys.PHOTO_PREFIX and "Limit" in params and "IndexName" not in params:
            state["armed"] = True

    def after(**_: Any) -> None:
        if state["armed"] and not state["fired"]:
            state["fired"] = True
            meanwhile(doomed)

    client.meta.events.register("before-parameter-build.dynamodb.Query", before)
    client.meta.events.register_first("after-call.dynamodb.Query", after)
    try:
        response = doomed.delete()
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.Query", before)
        client.meta.events.unregister("after-call.dynamodb.Query", after)
    assert state["fired"], "the deletion's photos step never began"
    assert response.status_code == 204, response.body
    return doomed


def test_an_upload_or_a_new_profile_during_an_account_deletion_leaves_nothing_of_the_user(scene: Scene) -> None:
    statuses: dict[str, int] = {}

    def meanwhile(doomed: Doomed) -> None:
        new = {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 100}
        statuses["upload"] = doomed.user.call("POST", "/photos", new).status_code
        statuses["profile"] = doomed.user.call("POST", "/users", {"display_name": "Again"}).status_code

    doomed = writes_during_a_deletion(scene, meanwhile)
    assert statuses["upload"] == 409, statuses  # an account being deleted takes no upload (AccountDeleting)
    # A profile made meanwhile is a leftover of the user's partition: the deletion's later step removes it.
    doomed.assert_gone()
    assert_invariants(scene.aws)


# The album transactions that give a user access (create an album, add a member) check the user's usage item for
# the deletion's mark: without that, an album made after the deletion's albums step was left ownerless for good.
def test_an_album_created_or_shared_during_an_account_deletion_leaves_nothing_of_the_user(scene: Scene) -> None:
    bobs = create_album(scene.bob, "Late")["album_id"]
    statuses: dict[str, int] = {}

    def meanwhile(doomed: Doomed) -> None:
        statuses["album"] = doomed.user.call("POST", "/albums", {"title": "Late"}).status_code
        member = {"username": doomed.user.username, "role": "viewer"}
        statuses["shared"] = scene.bob.call("POST", f"/albums/{bobs}/members", member).status_code

    doomed = writes_during_a_deletion(scene, meanwhile)
    left = remains_of(scene.aws, doomed.user.sub)
    report = check_at(scene.aws, datetime.now(UTC))
    assert left == [], (statuses, left)
    assert report.ok, [str(v) for v in report.violations]
