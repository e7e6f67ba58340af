"""Faults in every album operation that takes more than one step: adding and removing photos (several
transactions), deleting an album (marked, then emptied over several transactions), a member removed or leaving
(access ends, their photos leave, the membership goes), a photo deleted for good from every album it is in, share
links created and revoked, and a wrong password counted.

Each DynamoDB and S3 call an operation makes, in turn, is made to fail the way AWS fails: throttled on every attempt,
its reply lost after the write applied (a read time-out), or its transaction cancelled for a conflict or throttling.
The client must get a 503 (never a 500); the state, cut short, must be consistent; the client's retry of the same
call must finish the operation; and a deletion or departure cut short must be finished by the sweeper on its own.
The invariant checker (ops/invariants.py, which knows every album rule) runs after each step. Every case of an
operation starts from the state made for it once (moto_state restores the table and the bucket), not from what the
case before it left. `make test` tries a sample of each operation's calls × faults (every call and every kind of
fault at least once, support.sample); PHOTOSKY_FAULTS=all, or `make fuzz` and `make reliability`, try them all.

Transactions hold two photos here (clean-ups four items), so a handful of photos make several transactions; one
test keeps the real sizes. Races run the service layer in threads or, for exact interleavings, a second call hooked
right after one of the first call's reads (see test_faults.py for why not the HTTP views).
"""

from __future__ import annotations

import dataclasses
import functools
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
from chalicelib.albums import repository as album_repository
from chalicelib.albums.links import token_hash
from chalicelib.albums.models import AlbumChanges, Role
from chalicelib.albums.service import CLEANUP_GRACE
from chalicelib.photos.models import PhotoStatus, PreviewFormat
from ops import invariants
from tests.integration.conftest import BUCKET, TABLE, User
from tests.reliability import moto_state
from tests.reliability.moto_state import MadeOnce
from tests.reliability.support import (
    ATTEMPTS,
    CANCELLATIONS,
    THROTTLES,
    Faults,
    assert_invariants,
    aws_clients,
    body,
    get_photo,
    jpeg,
    photo_objects,
    race,
    ready_objects,
    recorded_calls,
    s3_error,
    sample,
    start_upload,
    status_of,
    upload_ready,
)
from tests.support.albums import add_photos, album_photo_ids, create_album, create_link, public, share

pytestmark = pytest.mark.suite("faults")

WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})
REAL_ADD_CHUNK, REAL_REMOVE_CHUNK = album_repository.ADD_CHUNK, album_repository.REMOVE_CHUNK
PASSWORD = "open sesame"


def fresh_clients() -> None:
    """New app clients, as a new Lambda container has (botocore's retry quota drains with injected failures)."""
    deps.reset()


def assert_retry_later(response: Any) -> None:
    assert response.status_code == 503, response.body
    assert response.headers.get("Retry-After", "").isdigit(), response.headers
    assert body(response)["Code"] == "ServiceUnavailableError"


def later_than_grace() -> datetime:
    return datetime.now(UTC) + CLEANUP_GRACE + timedelta(seconds=1)


def check_at(aws: boto3.session.Session, now: datetime) -> invariants.Report:
    dynamodb, s3 = aws_clients(aws)
    return invariants.check(dynamodb, s3, table=TABLE, bucket=BUCKET, now=now)


def sweep_at(
    monkeypatch: pytest.MonkeyPatch, moment: datetime, *, faults: Callable[[], Any] | None = None
) -> dict[str, int]:
    """The album sweeper (the scheduled job's second half) as it runs at `moment`, on the app's own clients (new
    ones, as a new run's; `faults` are injected into them)."""
    with monkeypatch.context() as patched:
        patched.setattr(clock, "now", lambda: moment)
        fresh_clients()
        if faults is not None:
            faults()
        try:
            return deps.album_service().finish_left_behind(deadline=lambda: False)
        finally:
            fresh_clients()


def scan(aws: boto3.session.Session) -> list[dict[str, Any]]:
    dynamodb, _ = aws_clients(aws)
    found: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True):
        found.extend(page["Items"])
    return found


@pytest.fixture(autouse=True)
def small_transactions(monkeypatch: pytest.MonkeyPatch, aws: boto3.session.Session) -> None:
    """Two photos per transaction (four items per clean-up transaction), and no write-rate limit in the way of
    the many set-up writes."""
    monkeypatch.setattr(album_repository, "ADD_CHUNK", 2)
    monkeypatch.setattr(album_repository, "REMOVE_CHUNK", 2)
    monkeypatch.setattr(album_repository, "CLEANUP_CHUNK", 4)
    monkeypatch.setenv("PHOTOSKY_WRITE_RATE_LIMIT", "100000")
    deps.reset()


# --- calls, by what they ask ------------------------------------------------------------------------------------------

Request = tuple[str, str, dict[str, Any]]  # (service, operation, its parameters)


@contextmanager
def recorded_requests() -> Iterator[list[Request]]:
    """Every call the app's DynamoDB and S3 clients make inside the block, with its parameters, in order.

    The parameters are seen before they are built into a request, the call itself just before it is sent: a
    presigned URL has the first and not the second, and is no call."""
    requests: list[Request] = []
    registered = []
    for service, client in (("dynamodb", deps.dynamodb()), ("s3", deps.s3())):
        building: dict[str, Any] = {}

        def build(params: dict[str, Any], _building: dict[str, Any] = building, **_: Any) -> None:
            _building["params"] = params

        def call(model: Any, _service: str = service, _building: dict[str, Any] = building, **_: Any) -> None:
            requests.append((_service, model.name, _building.pop("params", {})))

        for event, handler in ((f"before-parameter-build.{service}", build), (f"before-call.{service}", call)):
            client.meta.events.register_first(event, handler)
            registered.append((client, event, handler))
    try:
        yield requests
    finally:
        for client, event, handler in registered:
            client.meta.events.unregister(event, handler)


@contextmanager
def right_after(operation: str, matches: Callable[[dict[str, Any]], bool], action: Callable[[], Any]) -> Iterator[None]:
    """Run `action` once, right after the first DynamoDB `operation` whose parameters `matches` returned, before
    its caller sees the reply (another request landing in between). Fails if no such call came."""
    client = deps.dynamodb()
    state = {"armed": False, "fired": False}

    def before(params: dict[str, Any], **_: Any) -> None:
        if not state["fired"] and matches(params):
            state["armed"] = True

    def after(**_: Any) -> None:
        if state["armed"] and not state["fired"]:
            state["fired"] = True
            action()

    client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", before)
    client.meta.events.register_first(f"after-call.dynamodb.{operation}", after)
    try:
        yield
    finally:
        client.meta.events.unregister(f"before-parameter-build.dynamodb.{operation}", before)
        client.meta.events.unregister(f"after-call.dynamodb.{operation}", after)
    assert state["fired"], f"no {operation} matched: the interleaving this test is about never happened"


def _batch_keys(params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k["PK"]["S"], k["SK"]["S"]) for wanted in params["RequestItems"].values() for k in wanted["Keys"]]


def reads_own_photos(params: dict[str, Any]) -> bool:
    """BatchGetItem of photo items (an add reading the adder's photos)."""
    found = _batch_keys(params)
    return bool(found) and all(pk.startswith("USER#") and sk.startswith(keys.PHOTO_PREFIX) for pk, sk in found)


def reads_album_entries(params: dict[str, Any]) -> bool:
    """BatchGetItem of an album's photo entries (an edit reading its new cover's entry)."""
    found = _batch_keys(params)
    return bool(found) and all(
        pk.startswith(keys.ALBUM_PREFIX) and sk.startswith(keys.PHOTO_PREFIX) for pk, sk in found
    )


def reads_albums(params: dict[str, Any]) -> bool:
    """BatchGetItem of albums, with the photo's entry in each (a photo's trash, or the mark before its permanent
    delete, reading the albums it is in and its place in each)."""
    found = _batch_keys(params)
    return (
        bool(found)
        and all(pk.startswith(keys.ALBUM_PREFIX) for pk, _ in found)
        and any(sk == keys.ALBUM_SK for _, sk in found)
    )


def reads_photos_albums(params: dict[str, Any]) -> bool:
    """Query of the copies beside a photo (a photo's delete finding its albums)."""
    values = params.get("ExpressionAttributeValues", {})
    return any(str(v.get("S", "")).startswith(keys.PHOTO_ALBUM_PREFIX) for v in values.values())


def reads_newest_photo(params: dict[str, Any]) -> bool:
    """Query of an album's photo index for the newest photos that stay (the successor of a cover that leaves,
    chosen before the transaction that removes it; only this Query projects)."""
    pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
    return params.get("IndexName") == keys.GSI1 and pk.endswith("#PHOTOS") and "ProjectionExpression" in params


def _updates(params: dict[str, Any]) -> list[str]:
    writes = params.get("TransactItems", [params])
    return [str(w.get("Update", w).get("UpdateExpression", "")) for w in writes]


def begins_deletion(operation: str, params: dict[str, Any]) -> bool:
    return operation == "UpdateItem" and "deleting_since" in _updates(params)[0]


def begins_departure(operation: str, params: dict[str, Any]) -> bool:
    return operation == "TransactWriteItems" and any("leaving_since =" in update for update in _updates(params))


def nth_call(requests: list[Request], index: int) -> tuple[str, str, int]:
    """(service, operation, which call of that operation) of the request at `index`."""
    service, operation, _ = requests[index]
    return service, operation, [(s, o) for s, o, _ in requests[:index]].count((service, operation)) + 1


# --- the scene -------------------------------------------------------------------------------------------------------


class Scene:
    """alice owns the albums; bob is their contributor and carol their viewer. Both photo owners have READY photos
    (through the real worker) that each operation puts in a fresh album.

    The photos are made once, by the module's first test; every other test starts from the table and bucket as they
    were right after (moto_state)."""

    def __init__(
        self, aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User, carol: User, made: MadeOnce
    ) -> None:
        self.aws, self.api, self.s3 = aws, api, s3
        self.alice, self.bob, self.carol = alice, bob, carol
        self.alices, self.bobs = made("photos", self.photos)

    def photos(self) -> tuple[list[str], list[str]]:
        return [self.photo(self.alice) for _ in range(4)], [self.photo(self.bob) for _ in range(2)]

    def photo(self, owner: User) -> str:
        return str(upload_ready(self.api, self.s3, owner, jpeg(16, 16))["photo_id"])

    def quick_photo(self, owner: User) -> str:
        """A READY photo made the worker's way (objects written, then the photo marked READY) without decoding."""
        photo_id = str(start_upload(owner, b"x" * 100)["photo"]["photo_id"])
        self.s3.put_object(
            Bucket=BUCKET, Key=keys.original_object(owner.sub, photo_id), Body=b"x" * 100, ContentType="image/jpeg"
        )
        for size in ("large", "small"):
            key = keys.preview_object(owner.sub, photo_id, size, PreviewFormat.WEBP)
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * 100, ContentType="image/webp")
        repository = deps.photo_repository()
        pending = repository.get(owner.sub, photo_id)
        assert pending is not None
        ready = dataclasses.replace(
            pending,
            status=PhotoStatus.READY,
            width=1,
            height=1,
            preview_format=PreviewFormat.WEBP,
            updated_at=clock.utc_now(),
            revision=pending.revision + 1,
        )
        assert repository.replace(ready, pending)
        return photo_id

    def album(self, *, bobs: int = 0, alices: int = 0, members: bool = True, links: int = 0) -> str:
        """A fresh album of alice's: bob's first `bobs` photos (the first is the cover), then her first `alices`."""
        album_id = str(create_album(self.alice)["album_id"])
        if members:
            share(self.alice, album_id, self.bob, "contributor")
            share(self.alice, album_id, self.carol, "viewer")
        if bobs:
            add_photos(self.bob, album_id, *self.bobs[:bobs])
        if alices:
            add_photos(self.alice, album_id, *self.alices[:alices])
        for _ in range(links):
            create_link(self.alice, album_id)
        return album_id

    def get_album(self, album_id: str, user: User | None = None) -> dict[str, Any]:
        response = (user or self.alice).call("GET", f"/albums/{album_id}")
        assert response.status_code == 200, response.body
        return dict(body(response))

    def assert_shows(self, album_id: str, photo_ids: list[str], *, covered: bool = False) -> None:
        """The album holds exactly these photos and counts them; its cover is one of them, or none (with `covered`:
        none only if it is empty, as the spec says the newest remaining photo replaces a cover that leaves)."""
        assert sorted(album_photo_ids(self.alice, album_id)) == sorted(photo_ids)
        album = self.get_album(album_id)
        assert album["photo_count"] == len(photo_ids)
        allowed = [*photo_ids] if photo_ids and covered else [*photo_ids, None]
        assert album["cover_photo_id"] in allowed, album

    def members(self, album_id: str) -> list[str]:
        response = self.alice.call("GET", f"/albums/{album_id}/members")
        assert response.status_code == 200, response.body
        return [member["user_id"] for member in body(response)["items"]]


@pytest.fixture
def scene(
    aws: boto3.session.Session, api: Client, s3: Any, alice: User, bob: User, carol: User, made_once: MadeOnce
) -> Scene:
    return Scene(aws, api, s3, alice, bob, carol, made_once)


# --- the operations --------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One run of an operation on state made for it."""

    send: Callable[[], Any]
    # Asserts the operation is complete, given the retry's response (None when the sweeper finished it).
    finished: Callable[[Any], None]
    retried: set[int]
    albums: tuple[str, ...] = ()


def adding_photos(scene: Scene) -> Case:
    album_id, photos = scene.album(), scene.alices  # four photos: two transactions

    def finished(response: Any) -> None:
        if response is not None:
            assert {result["status"] for result in body(response)["results"]} <= {"added", "already"}
        scene.assert_shows(album_id, photos)
        assert scene.get_album(album_id)["cover_photo_id"] == photos[0]

    return Case(lambda: scene.alice.call("POST", f"/albums/{album_id}/photos", {"photo_ids": photos}), finished, {200})


def contributing_photos(scene: Scene) -> Case:
    album_id = scene.album(alices=1)

    def finished(response: Any) -> None:
        scene.assert_shows(album_id, [scene.alices[0], *scene.bobs])

    return Case(
        lambda: scene.bob.call("POST", f"/albums/{album_id}/photos", {"photo_ids": scene.bobs}), finished, {200}
    )


def removing_photos(scene: Scene) -> Case:
    album_id = scene.album(alices=4, bobs=1)  # bob's photo is the cover
    leaving = [scene.bobs[0], *scene.alices[:2]]  # two transactions, the cover among them

    def finished(response: Any) -> None:
        if response is not None:
            assert {result["status"] for result in body(response)["results"]} <= {"removed", "not_found"}
        scene.assert_shows(album_id, scene.alices[2:])

    return Case(
        lambda: scene.alice.call("POST", f"/albums/{album_id}/photos/remove", {"photo_ids": leaving}),
        finished,
        {200},
        (album_id,),
    )


def deleting_the_album(scene: Scene) -> Case:
    # Seven pairs of items (a link, two members, three photos, the album): four clean-up transactions.
    album_id = scene.album(alices=2, bobs=1, links=1)

    def finished(response: Any) -> None:
        for user in (scene.alice, scene.bob, scene.carol):
            assert user.call("GET", f"/albums/{album_id}").status_code == 404
        left = [item for item in scan(scene.aws) if album_id in str(item)]
        assert left == [], left

    return Case(lambda: scene.alice.call("DELETE", f"/albums/{album_id}"), finished, {204, 404})


def departure(leaver: Callable[[Scene], User]) -> Callable[[Scene], Case]:
    def prepare(scene: Scene) -> Case:
        album_id = scene.album(bobs=2, alices=2)  # bob's photos leave with him, his first one the cover

        def finished(response: Any) -> None:
            assert scene.bob.sub not in scene.members(album_id)
            assert scene.bob.call("GET", f"/albums/{album_id}").status_code == 404
            scene.assert_shows(album_id, scene.alices[:2])

        user = leaver(scene)
        path = f"/albums/{album_id}/members/{scene.bob.sub}"
        return Case(lambda: user.call("DELETE", path), finished, {204, 404}, (album_id,))

    return prepare


def deleting_a_photo_in_albums(scene: Scene) -> Case:
    """Deleted for good (a plain DELETE only moves it to the trash, test_library_faults.py): marked as being purged
    in the trash and out of both albums in one transaction, then its objects go, then its item."""
    photo_id = scene.photo(scene.alice)
    first = scene.album(members=False)
    add_photos(scene.alice, first, photo_id, scene.alices[0])  # its cover
    second = scene.album(members=False, alices=1)
    add_photos(scene.alice, second, photo_id)

    def finished(response: Any) -> None:
        assert scene.alice.call("GET", f"/photos/{photo_id}").status_code == 404
        assert photo_objects(scene.s3, scene.alice.sub, photo_id) == set()
        scene.assert_shows(first, scene.alices[:1])
        scene.assert_shows(second, scene.alices[:1])

    return Case(
        lambda: scene.alice.call("DELETE", f"/photos/{photo_id}?permanent=true"), finished, {204, 404}, (first, second)
    )


def creating_a_link(scene: Scene) -> Case:
    album_id = scene.album(alices=1)

    def finished(response: Any) -> None:
        opened = public(scene.api, "GET", f"/public/albums/{body(response)['token']}")
        assert opened.status_code == 200, opened.body
        listed = body(scene.alice.call("GET", f"/albums/{album_id}/links"))["items"]
        assert 1 <= len(listed) <= 2  # two if the first one's reply was lost: a POST is not idempotent
        assert body(response)["link_id"] in [link["link_id"] for link in listed]

    return Case(
        lambda: scene.alice.call("POST", f"/albums/{album_id}/links", {"allow_download": True}), finished, {201}
    )


def revoking_a_link(scene: Scene) -> Case:
    album_id = scene.album(alices=1)
    link = create_link(scene.alice, album_id)

    def finished(response: Any) -> None:
        assert public(scene.api, "GET", f"/public/albums/{link['token']}").status_code == 404
        assert body(scene.alice.call("GET", f"/albums/{album_id}/links"))["items"] == []

    return Case(lambda: scene.alice.call("DELETE", f"/albums/{album_id}/links/{link['link_id']}"), finished, {204, 404})


def counting_a_wrong_password(scene: Scene) -> Case:
    album_id = scene.album(alices=1)
    token = create_link(scene.alice, album_id, password=PASSWORD)["token"]

    def finished(response: Any) -> None:
        assert body(response)["Code"] == "WrongPassword"
        counted = [
            int(item["count"]["N"])
            for item in scan(scene.aws)
            if item["PK"]["S"] == keys.link_token_pk(token_hash(token)) and item["SK"]["S"].startswith(keys.FAIL_PREFIX)
        ]
        assert sum(counted) >= 1, counted  # two if the first one's reply was lost: it counted, too

    return Case(
        lambda: public(scene.api, "POST", f"/public/albums/{token}/unlock", {"password": "not it"}), finished, {401}
    )


def adding_a_member(scene: Scene) -> Case:
    album_id = scene.album(members=False, alices=1)

    def finished(response: Any) -> None:
        assert scene.get_album(album_id, scene.carol)["role"] == "viewer"
        assert scene.members(album_id) == [scene.alice.sub, scene.carol.sub]

    payload = {"username": scene.carol.username, "role": "viewer"}
    return Case(lambda: scene.alice.call("POST", f"/albums/{album_id}/members", payload), finished, {201, 409})


def choosing_the_cover(scene: Scene) -> Case:
    album_id = scene.album(bobs=1, alices=2)
    version = scene.get_album(album_id)["version"]

    def finished(response: Any) -> None:
        assert scene.get_album(album_id)["cover_photo_id"] == scene.alices[1]

    payload = {"version": version, "cover_photo_id": scene.alices[1]}
    # 409 when the first one's reply was lost: it applied, and the version moved on.
    return Case(lambda: scene.alice.call("PATCH", f"/albums/{album_id}", payload), finished, {200, 409})


@dataclass(frozen=True)
class Operation:
    prepare: Callable[[Scene], Case]
    succeeds_with: int
    # The call whose write begins a clean-up that the sweeper finishes if the request dies: (operation, params).
    begins_cleanup: Callable[[str, dict[str, Any]], bool] | None = None
    # Rules a request cut short may leave broken until the client retries it.
    until_retried: frozenset[str] = frozenset()


OPERATIONS: dict[str, Operation] = {
    "add photos (two transactions)": Operation(adding_photos, 200),
    "a contributor adds photos": Operation(contributing_photos, 200),
    "remove photos, the cover among them": Operation(removing_photos, 200),
    "delete an album": Operation(deleting_the_album, 204, begins_deletion),
    "the owner removes a contributor": Operation(departure(lambda s: s.alice), 204, begins_departure),
    "a contributor leaves": Operation(departure(lambda s: s.bob), 204, begins_departure),
    # Deleted for good: the photo is marked as being purged (out of its albums, in the trash) before its objects go,
    # and its item goes last, so no step leaves an object without its photo (nothing to wait for the retry).
    "delete a photo that is in two albums": Operation(deleting_a_photo_in_albums, 204),
    "create a share link": Operation(creating_a_link, 201),
    "revoke a share link": Operation(revoking_a_link, 204),
    "a wrong password is counted": Operation(counting_a_wrong_password, 401),
    "add a member": Operation(adding_a_member, 201),
    "choose the cover": Operation(choosing_the_cover, 200),
}


# --- the faults ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    family: str  # what happens: the kinds `make test` samples (see support.sample)
    inject: Callable[[Faults, str, str, int], Any]  # (faults, service, operation, which call of it)
    applied: bool  # whether the failing call's write took effect
    attempts: int | None  # how many attempts of the failing call reach the fault (None: it answers, then fails)
    error: str = ""  # the error it answers with, where the family has several

    @property
    def name(self) -> str:
        return f"{self.family} ({self.error})" if self.error else self.family


def throttled(name: str, respond: Callable[[Any], Any]) -> Kind:
    def inject(faults: Faults, service: str, operation: str, nth: int) -> Any:
        return faults.inject(service, operation, respond, failing=set(range(nth, nth + ATTEMPTS)))

    return Kind("throttled", inject, applied=False, attempts=ATTEMPTS, error=name)


def _lose_reply(request_name: str) -> None:
    raise ReadTimeoutError(endpoint_url=f"https://injected/{request_name}")


REPLY_LOST = Kind(
    "reply lost after the write",
    lambda faults, service, operation, nth: faults.after(
        service, operation, nth, functools.partial(_lose_reply, operation)
    ),
    applied=True,
    attempts=None,
)


def cancelled(name: str, respond: Callable[[Any], Any]) -> Kind:
    def inject(faults: Faults, service: str, operation: str, nth: int) -> Any:
        return faults.inject(service, operation, respond, failing={nth})

    # botocore does not retry a cancelled transaction.
    return Kind("transaction cancelled", inject, applied=False, attempts=1, error=name)


def kinds_for(service: str, operation: str, position: int) -> list[Kind]:
    """Every kind of fault that fits the call: throttled (the throttling error rotating with the position); for a
    write, its reply lost once it applied; for a transaction, cancelled (a conflict or throttling, rotating)."""
    if service == "s3":
        return [throttled("S3 InternalError", s3_error("InternalError", 500))]
    code = list(THROTTLES)[position % len(THROTTLES)]
    kinds = [throttled(code, THROTTLES[code])]
    if operation in WRITES:
        kinds.append(REPLY_LOST)
    if operation == "TransactWriteItems":
        reason = list(CANCELLATIONS)[position % len(CANCELLATIONS)]
        kinds.append(cancelled(reason, CANCELLATIONS[reason]))
    return kinds


def requests_of(scene: Scene, operation: Operation, case: Case) -> list[Request]:
    """The calls one clean run of the prepared case makes, in order, with their parameters."""
    fresh_clients()
    with recorded_requests() as requests:
        response = case.send()
    assert response.status_code == operation.succeeds_with, response.body
    case.finished(response)
    assert_invariants(scene.aws)
    return requests


def fault_or_finisher(cell: tuple[Kind, str]) -> str:
    """What a case stands for in the sample: its kind of fault if the client's retry finishes it, else the sweeper.
    So every kind of fault, and the sweeper where it has something to finish, is tried at least once per operation."""
    kind, finisher = cell
    return kind.family if finisher == "retry" else finisher


def run_cut_short(
    scene: Scene,
    faults: Faults,
    operation: Operation,
    case: Case,
    call: tuple[str, str, int],
    kind: Kind,
    *,
    sweeper: pytest.MonkeyPatch | None = None,
) -> None:
    """The prepared case with `kind` of fault on one call: a 503, consistent state; then the sweeper (if given) and
    the client's retry finish it."""
    service, name, nth = call
    fresh_clients()
    fault = kind.inject(faults, service, name, nth)
    try:
        response = case.send()
    finally:
        faults.clear()
    assert_retry_later(response)
    if kind.attempts is not None:
        assert fault.attempts == nth - 1 + kind.attempts  # the earlier calls, then every attempt of this one
    # Cut short, nothing is inconsistent (a clean-up in progress is in the index), bar what the retry is for.
    interim = check_at(scene.aws, datetime.now(UTC))
    assert {v.rule for v in interim.violations} <= operation.until_retried, [str(v) for v in interim.violations]
    if sweeper is not None:
        later = later_than_grace()
        left = check_at(scene.aws, later)
        assert {v.rule for v in left.violations} == {"overdue-cleanup"}, [str(v) for v in left.violations]
        sweep_at(sweeper, later)
        assert_invariants(scene.aws, now=later)
        case.finished(None)
    retried = case.send()
    assert retried.status_code in case.retried, (retried.status_code, retried.body)
    case.finished(retried)
    assert_invariants(scene.aws)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_fault_on_any_call_of_an_album_operation_is_503_and_its_retry_or_the_sweeper_finishes_it(
    scene: Scene, faults: Faults, monkeypatch: pytest.MonkeyPatch, subtests: Any, name: str
) -> None:
    operation = OPERATIONS[name]
    # The state the operation needs, made once; the clean run and every case start from it (the same album, photos,
    # members and links), never from what an earlier case left.
    case = operation.prepare(scene)
    prepared = moto_state.save()
    requests = requests_of(scene, operation, case)
    begins = None
    if operation.begins_cleanup is not None:
        begins = next(i for i, (_, op, params) in enumerate(requests) if operation.begins_cleanup(op, params))

    def finishers(position: int, kind: Kind) -> list[str]:
        # The sweeper too where the request leaves a clean-up behind: a throttled call after the clean-up began,
        # or the beginning itself applied and its reply lost.
        left_behind = begins is not None and (
            (position > begins and kind.family == "throttled") or (position == begins and kind.applied)
        )
        return ["retry", "sweeper"] if left_behind else ["retry"]

    calls = [nth_call(requests, position) for position in range(len(requests))]
    matrix = [
        (position, [(kind, end) for kind in kinds_for(service, op, position) for end in finishers(position, kind)])
        for position, (service, op, _) in enumerate(calls)
    ]
    for position, (kind, finisher) in sample(matrix, fault_or_finisher):
        _, op, nth = call = calls[position]
        with subtests.test(call=f"{position}:{op}#{nth}", fault=kind.name, finished_by=finisher):
            moto_state.restore(prepared)
            sweeper = monkeypatch if finisher == "sweeper" else None
            run_cut_short(scene, faults, operation, case, call, kind, sweeper=sweeper)


def test_at_the_real_transaction_sizes_fifty_photos_added_and_removed_survive_a_failed_second_transaction(
    scene: Scene, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """32 photos per add transaction and 48 per removal: 50 photos make two of each; the second one fails."""
    monkeypatch.setattr(album_repository, "ADD_CHUNK", REAL_ADD_CHUNK)
    monkeypatch.setattr(album_repository, "REMOVE_CHUNK", REAL_REMOVE_CHUNK)
    photos = [*scene.alices, *(scene.quick_photo(scene.alice) for _ in range(46))]
    album_id = scene.album(members=False)
    steps: list[tuple[str, set[str], list[str]]] = [
        (f"/albums/{album_id}/photos", {"added", "already"}, photos),
        (f"/albums/{album_id}/photos/remove", {"removed", "not_found"}, []),
    ]
    for path, outcomes, shown in steps:
        fresh_clients()
        faults.inject("dynamodb", "TransactWriteItems", THROTTLES["ThrottlingException"], failing={2, 3, 4})
        try:
            with recorded_calls() as calls:
                response = scene.alice.call("POST", path, {"photo_ids": photos})
        finally:
            faults.clear()
        assert_retry_later(response)
        assert [op for _, op in calls].count("TransactWriteItems") == 2  # the first committed
        assert_invariants(scene.aws)
        retried = scene.alice.call("POST", path, {"photo_ids": photos})
        assert retried.status_code == 200, retried.body
        assert {result["status"] for result in body(retried)["results"]} <= outcomes
        assert_invariants(scene.aws)
        scene.assert_shows(album_id, shown)


# --- what a fault must not lose: the cover ----------------------------------------------------------------------------

# Operations that take a cover out of its album, then read the newest photo left to replace it.
COVER_LEAVES = [
    "remove photos, the cover among them",
    "the owner removes a contributor",
    "delete a photo that is in two albums",
]


@pytest.mark.parametrize(
    ("name", "finished_by"),
    [*((name, "retry") for name in COVER_LEAVES), ("the owner removes a contributor", "sweeper")],
)
def test_a_cover_that_left_is_replaced_even_when_the_request_was_cut_short_before_the_replacement(
    scene: Scene, faults: Faults, monkeypatch: pytest.MonkeyPatch, name: str, finished_by: str
) -> None:
    operation = OPERATIONS[name]
    case = operation.prepare(scene)
    prepared = moto_state.save()
    requests = requests_of(scene, operation, case)
    refill = next(i for i, (_, op, params) in enumerate(requests) if op == "Query" and reads_newest_photo(params))
    service, op, nth = nth_call(requests, refill)
    moto_state.restore(prepared)  # the case as the clean run found it
    fresh_clients()
    # The read of the cover's successor is throttled. (It comes before the transaction that takes the cover out
    # and puts the successor in, so no fault can leave an album with photos and no cover; before, the successor
    # was written after the removal had committed, and a fault here left the album coverless for good.)
    faults.inject(service, op, THROTTLES["ThrottlingException"], failing=set(range(nth, nth + ATTEMPTS)))
    try:
        response = case.send()
    finally:
        faults.clear()
    assert_retry_later(response)
    if finished_by == "sweeper":
        later = later_than_grace()
        assert sweep_at(monkeypatch, later)["departures_finished"] == 1
        assert_invariants(scene.aws, now=later)
        case.finished(None)
    else:
        retried = case.send()
        assert retried.status_code in case.retried, retried.body
        case.finished(retried)
    assert_invariants(scene.aws)
    assert case.albums
    for album_id in case.albums:
        album = scene.get_album(album_id)
        assert album["photo_count"] > 0
        assert album["cover_photo_id"] is not None, f"{album_id} holds {album['photo_count']} photo(s), no cover"


# --- the sweeper ------------------------------------------------------------------------------------------------------


def cut_short(scene: Scene, faults: Faults, call: Callable[[], Any]) -> None:
    """`call` with every Query throttled: a deletion or departure begun (its first write) and left there."""
    fresh_clients()
    faults.inject("dynamodb", "Query", THROTTLES["ProvisionedThroughputExceededException"])
    try:
        assert_retry_later(call())
    finally:
        faults.clear()


def test_the_scheduled_job_finishes_a_deletion_and_a_departure_cut_short(
    scene: Scene, api: Client, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted = scene.album(alices=2, bobs=1, links=1)
    left = scene.album(bobs=2, alices=1)
    cut_short(scene, faults, lambda: scene.alice.call("DELETE", f"/albums/{deleted}"))
    cut_short(scene, faults, lambda: scene.bob.call("DELETE", f"/albums/{left}/members/{scene.bob.sub}"))
    assert scene.alice.call("GET", f"/albums/{deleted}").status_code == 404  # gone at once for everyone
    assert scene.bob.call("GET", f"/albums/{left}").status_code == 404
    assert_invariants(scene.aws)
    later = later_than_grace()
    overdue = check_at(scene.aws, later)
    assert sorted(v.subject for v in overdue.violations) == sorted([deleted, f"{left}/{scene.bob.sub}"])

    event = api.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=["arn:aws:events:rule/sweep"]
    )
    with monkeypatch.context() as patched:
        patched.setattr(clock, "now", lambda: later)
        fresh_clients()
        api.lambda_.invoke("release_abandoned_uploads", event)
    fresh_clients()

    assert [item for item in scan(scene.aws) if deleted in str(item)] == []
    assert scene.bob.sub not in scene.members(left)
    scene.assert_shows(left, scene.alices[:1])
    assert_invariants(scene.aws, now=later)


def test_a_sweeper_run_cut_short_by_a_fault_is_finished_by_the_next_run(
    scene: Scene, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted = scene.album(alices=2, bobs=1, links=1)
    left = scene.album(bobs=2, alices=1)
    cut_short(scene, faults, lambda: scene.alice.call("DELETE", f"/albums/{deleted}"))
    cut_short(scene, faults, lambda: scene.alice.call("DELETE", f"/albums/{left}/members/{scene.bob.sub}"))
    later = later_than_grace()
    for name, inject in {
        "every transaction throttled": lambda: faults.inject(
            "dynamodb", "TransactWriteItems", THROTTLES["ThrottlingException"]
        ),
        "the second transaction's reply lost": lambda: faults.after(
            "dynamodb", "TransactWriteItems", 2, functools.partial(_lose_reply, "TransactWriteItems")
        ),
    }.items():
        try:
            with pytest.raises(errors.Unavailable):
                sweep_at(monkeypatch, later, faults=inject)
        finally:
            faults.clear()
        report = check_at(scene.aws, later)
        assert {v.rule for v in report.violations} <= {"overdue-cleanup"}, (name, [str(v) for v in report.violations])
    assert sweep_at(monkeypatch, later)["left_for_next_run"] == 0
    assert [item for item in scan(scene.aws) if deleted in str(item)] == []
    assert scene.bob.sub not in scene.members(left)
    assert_invariants(scene.aws, now=later)


def test_a_member_whose_departure_was_cut_short_can_be_added_again_and_their_old_photos_are_gone(
    scene: Scene, faults: Faults
) -> None:
    album_id = scene.album(bobs=2, alices=1)
    cut_short(scene, faults, lambda: scene.alice.call("DELETE", f"/albums/{album_id}/members/{scene.bob.sub}"))
    assert scene.bob.call("GET", f"/albums/{album_id}").status_code == 404
    share(scene.alice, album_id, scene.bob, "viewer")
    assert scene.get_album(album_id, scene.bob)["role"] == "viewer"
    scene.assert_shows(album_id, scene.alices[:1])
    assert_invariants(scene.aws)


# --- races ------------------------------------------------------------------------------------------------------------


def void(_: Any) -> None:
    """For a hook that must return nothing."""


def results_of(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.body
    return {result["photo_id"]: result["status"] for result in body(response)["results"]}


# A plain DELETE moves a READY photo to the trash (its item stays, with its objects); `?permanent=true` deletes it
# for good. Both take it out of every album in the same first transaction; the races below try each.
DELETES = {"to the trash": False, "for good": True}


def assert_deleted(scene: Scene, owner: User, photo_id: str, *, permanent: bool) -> None:
    """The photo is gone with its objects (permanent), or in the trash with all of them."""
    if permanent:
        assert owner.call("GET", f"/photos/{photo_id}").status_code == 404
        assert photo_objects(scene.s3, owner.sub, photo_id) == set()
    else:
        response = owner.call("GET", f"/photos/{photo_id}")
        assert response.status_code == 200, response.body
        assert body(response)["trashed_at"] is not None, body(response)
        assert photo_objects(scene.s3, owner.sub, photo_id) == ready_objects(owner.sub, photo_id)


@pytest.mark.parametrize("permanent", list(DELETES.values()), ids=list(DELETES))
def test_a_photo_deleted_after_an_add_read_it_is_not_found_and_never_enters_the_album(
    scene: Scene, permanent: bool
) -> None:
    album_id = scene.album(members=False)
    photo_id = scene.photo(scene.alice)
    fresh_clients()
    # The add has read the caller's photos; the delete lands right after.
    with right_after(
        "BatchGetItem",
        reads_own_photos,
        lambda: deps.photo_service().delete(scene.alice.sub, photo_id, permanent=permanent),
    ):
        response = scene.alice.call("POST", f"/albums/{album_id}/photos", {"photo_ids": [photo_id, scene.alices[0]]})
    assert results_of(response) == {photo_id: "not_found", scene.alices[0]: "added"}
    assert_deleted(scene, scene.alice, photo_id, permanent=permanent)
    scene.assert_shows(album_id, [scene.alices[0]], covered=True)
    assert_invariants(scene.aws)


@pytest.mark.parametrize("permanent", list(DELETES.values()), ids=list(DELETES))
def test_an_add_landing_after_a_delete_read_the_photos_albums_makes_the_delete_read_them_again(
    scene: Scene, permanent: bool
) -> None:
    album_id = scene.album(members=False, alices=1)
    photo_id = scene.photo(scene.alice)
    added: list[Any] = []
    fresh_clients()
    # The delete has read the albums the photo is in (none yet); the add lands right after.
    with right_after(
        "Query",
        reads_photos_albums,
        lambda: added.extend(deps.album_service().add_photos(scene.alice.sub, album_id, [photo_id])),
    ):
        response = scene.alice.call("DELETE", f"/photos/{photo_id}" + ("?permanent=true" if permanent else ""))
    assert response.status_code == 204, response.body
    assert [result.status for result in added] == ["added"]
    assert_deleted(scene, scene.alice, photo_id, permanent=permanent)
    scene.assert_shows(album_id, scene.alices[:1], covered=True)
    assert_invariants(scene.aws)


def test_a_contributor_removed_or_made_viewer_while_adding_photos_adds_none_of_them(
    scene: Scene, subtests: Any
) -> None:
    albums = deps.album_service
    changes: dict[str, Callable[[str], None]] = {
        "removed": lambda album_id: albums().remove_member(scene.alice.sub, album_id, scene.bob.sub),
        "made viewer": lambda album_id: void(
            albums().change_role(scene.alice.sub, album_id, scene.bob.sub, Role.VIEWER)
        ),
    }
    for name, change in changes.items():
        with subtests.test(bob=name):
            album_id = scene.album(alices=1)
            fresh_clients()
            # bob's add has read his membership and his photos; the owner acts right after.
            with right_after("BatchGetItem", reads_own_photos, functools.partial(change, album_id)):
                response = scene.bob.call("POST", f"/albums/{album_id}/photos", {"photo_ids": scene.bobs})
            assert results_of(response) == dict.fromkeys(scene.bobs, "forbidden")
            scene.assert_shows(album_id, scene.alices[:1], covered=True)
            assert_invariants(scene.aws)


@pytest.mark.usefixtures("atomic_moto")
def test_photos_deleted_while_being_added_never_leave_an_entry_behind(scene: Scene, cases: Any) -> None:
    album_id = scene.album(members=False)
    albums, photos = deps.album_service(), deps.photo_service()
    rounds = 8
    for round_number in range(rounds):
        permanent = round_number % 2 == 1  # to the trash and for good in turn
        photo_id = scene.quick_photo(scene.alice)
        adder, deleter = race(
            [
                functools.partial(albums.add_photos, scene.alice.sub, album_id, [photo_id]),
                functools.partial(
                    status_of, functools.partial(photos.delete, scene.alice.sub, photo_id, permanent=permanent)
                ),
            ]
        )
        assert not isinstance(adder, BaseException) or isinstance(adder, errors.Unavailable), adder
        if not isinstance(adder, BaseException):
            assert [result.status for result in adder] in (["added"], ["not_found"]), adder
        if deleter != 200:  # the delete read the photo before the add gave it a new revision too often: 503
            assert deleter == 503, deleter
            path = f"/photos/{photo_id}" + ("?permanent=true" if permanent else "")
            assert scene.alice.call("DELETE", path).status_code == 204
        if permanent:
            assert scene.alice.call("GET", f"/photos/{photo_id}").status_code == 404
            assert photo_objects(scene.s3, scene.alice.sub, photo_id) == set()
        else:
            assert get_photo(scene.alice, photo_id)["trashed_at"] is not None
        assert photo_id not in album_photo_ids(scene.alice, album_id)
        assert_invariants(scene.aws)
    cases.tried(rounds)


def test_a_cover_chosen_while_its_photo_is_deleted_is_refused_or_replaced(scene: Scene) -> None:
    # The owner's PATCH has read the new cover's entry; its owner's delete lands right after.
    album_id = scene.album(bobs=1, alices=1)
    chosen = scene.photo(scene.bob)
    add_photos(scene.bob, album_id, chosen)
    version = scene.get_album(album_id)["version"]
    fresh_clients()
    with right_after("BatchGetItem", reads_album_entries, lambda: deps.photo_service().delete(scene.bob.sub, chosen)):
        response = scene.alice.call("PATCH", f"/albums/{album_id}", {"version": version, "cover_photo_id": chosen})
    assert response.status_code == 400, response.body
    assert "cover_photo_id" in body(response)["Message"]
    scene.assert_shows(album_id, [scene.bobs[0], scene.alices[0]], covered=True)
    assert scene.get_album(album_id)["cover_photo_id"] == scene.bobs[0]
    assert_invariants(scene.aws)

    # The other way round: the delete has read the photo's albums; the PATCH lands right after.
    chosen = scene.photo(scene.bob)
    add_photos(scene.bob, album_id, chosen)
    version = scene.get_album(album_id)["version"]
    changes = AlbumChanges(version=version, cover_photo_id=chosen, sent=frozenset({"cover_photo_id"}))
    fresh_clients()
    with right_after(
        "BatchGetItem", reads_albums, lambda: deps.album_service().update(scene.alice.sub, album_id, changes)
    ):
        response = scene.bob.call("DELETE", f"/photos/{chosen}")
    assert response.status_code == 204, response.body
    scene.assert_shows(album_id, [scene.bobs[0], scene.alices[0]], covered=True)
    assert_invariants(scene.aws)


def test_two_owners_deleting_photos_at_once_leave_the_album_a_cover(scene: Scene) -> None:
    """alice trashes her photo, the cover; her request picks the newest photo left, bob's, as the new cover, and
    bob trashes that photo before her request writes it."""
    album_id = scene.album(members=True)
    cover = scene.photo(scene.alice)
    add_photos(scene.alice, album_id, cover)
    add_photos(scene.alice, album_id, scene.alices[0])
    newest = scene.photo(scene.bob)
    add_photos(scene.bob, album_id, newest)
    fresh_clients()
    # alice's delete has read the newest photo left, to make it the cover; bob deletes that photo right then.
    with right_after("Query", reads_newest_photo, lambda: deps.photo_service().delete(scene.bob.sub, newest)):
        response = scene.alice.call("DELETE", f"/photos/{cover}")
    assert response.status_code == 204, response.body
    # Both went to the trash (a plain DELETE of a READY photo), out of the album.
    assert get_photo(scene.bob, newest)["trashed_at"] is not None
    assert get_photo(scene.alice, cover)["trashed_at"] is not None
    assert_invariants(scene.aws)
    scene.assert_shows(album_id, [scene.alices[0]], covered=True)


@pytest.mark.usefixtures("atomic_moto")
def test_owners_racing_on_the_cover_never_leave_it_outside_the_album(scene: Scene, cases: Any) -> None:
    """The owner picks bob's new photo as the cover, bob deletes it, the owner removes the current cover, and bob
    adds another photo, all at once; whatever wins, the cover is a photo in the album (or none) and counts hold."""
    albums, photos = deps.album_service(), deps.photo_service()
    album_id = scene.album(bobs=1, alices=2)
    rounds = 6
    for _ in range(rounds):
        shown = album_photo_ids(scene.alice, album_id)
        current = scene.get_album(album_id)
        chosen = scene.quick_photo(scene.bob)
        add_photos(scene.bob, album_id, chosen)
        added = scene.quick_photo(scene.bob)
        version = scene.get_album(album_id)["version"]
        changes = AlbumChanges(version=version, cover_photo_id=chosen, sent=frozenset({"cover_photo_id"}))
        leaving = [current["cover_photo_id"]] if current["cover_photo_id"] else shown[:1]
        statuses = race(
            [
                functools.partial(status_of, functools.partial(albums.update, scene.alice.sub, album_id, changes)),
                functools.partial(status_of, functools.partial(photos.delete, scene.bob.sub, chosen)),
                functools.partial(
                    status_of, functools.partial(albums.remove_photos, scene.alice.sub, album_id, leaving)
                ),
                functools.partial(status_of, functools.partial(albums.add_photos, scene.bob.sub, album_id, [added])),
            ]
        )
        assert set(statuses) <= {200, 400, 409, 503}, statuses  # never an unexpected error
        assert_invariants(scene.aws)
        if leaving[0] in scene.alices and leaving[0] not in album_photo_ids(scene.alice, album_id):
            add_photos(scene.alice, album_id, leaving[0])  # keep the album stocked for the next round
    cases.tried(rounds)
