"""Faults on the socket's paths: DynamoDB throttled or the function dying at each call a connect, a disconnect and a
push make, and the management API answering 410, 500 or timing out.

What must hold whatever fails:
- a connection is both of its items or neither: never one alone (the invariant checker's pair rules);
- a connect answers 200 with both items stored, or is refused; a refused connect whose write landed before the
  failure leaves a whole pair that API Gateway never opened, which the next push to its user finds gone (410) and
  forgets, as it does for any connection dropped without a `$disconnect`;
- a push never fails the write it follows: the API answers as without it, gone connections are forgotten, failing
  ones are kept and logged, and every other connection still receives.

DynamoDB's errors are injected into the app's own client (support.Faults) so botocore's retries see them as AWS's;
the management API is a recording fake (moto's never answers 410). `make test` tries a sample of each calls × faults
matrix (support.sample: every call and every fault at least once); PHOTOSKY_FAULTS=all tries every cell.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from chalice.test import Client

from chalicelib import deps, keys
from tests.integration.conftest import TABLE, User
from tests.integration.test_realtime import (  # noqa: F401 - fixtures re-exported
    FakeManagementApi,
    _client_error,
    connect,
    management,
    realtime_env,
)
from tests.reliability.moto_state import MadeOnce
from tests.reliability.support import (
    ATTEMPTS,
    THROTTLES,
    UNKNOWN_PHOTO_ID,
    Crash,
    Faults,
    assert_invariants,
    aws_clients,
    body,
    recorded_calls,
    sample,
    upload_ready,
)
from tests.support.realtime import ws_event

pytestmark = pytest.mark.suite("faults")

ALICE = "a11ce000-0000-4000-8000-000000000001"  # the `alice` fixture's sub
BOUND = 3  # PHOTOSKY_WS_MAX_CONNECTIONS here: a connect past it evicts, with few connections to make
CRASH_AFTER, CRASH_BEFORE = "crash after", "crash before"
DYNAMODB_FAULTS = [*THROTTLES, CRASH_AFTER, CRASH_BEFORE]


class Endpoint(FakeManagementApi):
    """The management API: posts and deletes to the ids in `failures` raise what API Gateway (or the network)
    would; `gone` (410 on a post) as the recording fake has it."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: dict[str, Callable[[], BaseException]] = {}

    def post_to_connection(self, *, Data: bytes, ConnectionId: str) -> dict[str, Any]:
        if ConnectionId in self.failures:
            raise self.failures[ConnectionId]()
        return super().post_to_connection(Data=Data, ConnectionId=ConnectionId)

    def delete_connection(self, *, ConnectionId: str) -> dict[str, Any]:
        self.deleted.append(ConnectionId)
        if ConnectionId in self.failures:
            raise self.failures[ConnectionId]()
        return {}

    def reset(self) -> None:
        self.posts.clear()
        self.deleted.clear()
        self.gone.clear()
        self.failing.clear()
        self.failures.clear()


def _gone() -> BaseException:
    return _client_error("GoneException", 410, "PostToConnection")


def _server_error() -> BaseException:
    return _client_error("InternalServerErrorException", 500, "PostToConnection")


def _timeout() -> BaseException:
    return ReadTimeoutError(endpoint_url="https://abc123defg.execute-api.us-east-1.amazonaws.com/dev")


ENDPOINT_FAULTS: dict[str, Callable[[], BaseException]] = {"410": _gone, "500": _server_error, "timeout": _timeout}


@pytest.fixture
def endpoint(
    management: FakeManagementApi,  # noqa: F811 - the imported fixture
    monkeypatch: pytest.MonkeyPatch,
) -> Endpoint:
    monkeypatch.setenv("PHOTOSKY_WS_MAX_CONNECTIONS", str(BOUND))
    fake = Endpoint()
    monkeypatch.setattr(deps, "management_api", lambda: fake)
    deps.reset()
    return fake


def items_of(aws: boto3.session.Session, connection_id: str, user: str = "") -> list[str]:
    """Which of one of alice's connections' two items are stored: [], ["connection", "owner"], or (never) one."""
    dynamodb, _ = aws_clients(aws)
    wanted = {
        "connection": keys.connection_key(user or ALICE, connection_id),
        "owner": keys.connection_owner_key(connection_id),
    }
    return [
        name
        for name, key in wanted.items()
        if "Item" in dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True)
    ]


def assert_whole_or_none(aws: boto3.session.Session, *connection_ids: str) -> None:
    for connection_id in connection_ids:
        assert items_of(aws, connection_id) in ([], ["connection", "owner"]), connection_id


def stored_ids(user: User) -> list[str]:
    return [c.connection_id for c in deps.connections().of_user(user.sub)]


def push_to(user: User) -> None:
    """A push to every connection of the user (what any change of theirs sends)."""
    deps.notifier().photos(user.sub, deleted=(UNKNOWN_PHOTO_ID,))


def fault_for(faults: Faults, call: tuple[str, str, int], kind: str) -> None:
    service, operation, nth = call
    if kind == CRASH_AFTER:
        faults.crash_after(service, operation, nth)
    elif kind == CRASH_BEFORE:
        faults.crash_before(service, operation, nth)
    else:
        # Persistent: every attempt botocore makes of this call fails.
        faults.inject(service, operation, THROTTLES[kind], failing=set(range(nth, nth + ATTEMPTS)))


def numbered(calls: list[tuple[str, str]]) -> list[tuple[str, str, int]]:
    return [(s, o, calls[: i + 1].count((s, o))) for i, (s, o) in enumerate(calls)]


# --- connect: the transaction, the read of the bound, the eviction ----------------------------------------------------

OLD = [f"conn-{n}=" for n in range(BOUND)]  # alice's connections, oldest first (ids sort in connection order)
NEW = "conn-9="


def at_the_bound(api: Client, made_once: MadeOnce, alice: User) -> None:
    """alice holding BOUND connections, built once per module and restored for each case."""

    def make() -> None:
        for connection_id in OLD:
            assert connect(api, alice.token, connection_id) == (connection_id, 200)

    made_once("at the bound", make)


def connect_calls(api: Client, made_once: MadeOnce, alice: User) -> list[tuple[str, str, int]]:
    at_the_bound(api, made_once, alice)
    with recorded_calls() as calls:
        assert connect(api, alice.token, NEW) == (NEW, 200)
    return numbered(calls)


def test_a_connect_failing_at_any_call_is_connected_whole_or_refused_and_a_refused_pair_is_forgotten_on_the_next_push(
    api: Client,
    aws: boto3.session.Session,
    alice: User,
    made_once: MadeOnce,
    endpoint: Endpoint,
    faults: Faults,
    subtests: Any,
) -> None:
    calls = connect_calls(api, made_once, alice)
    # The write, the consistent read of the user's connections, the eviction of the oldest.
    assert [c[:2] for c in calls] == [
        ("dynamodb", "TransactWriteItems"),
        ("dynamodb", "Query"),
        ("dynamodb", "TransactWriteItems"),
    ]
    matrix: list[tuple[Any, list[str]]] = [(call, DYNAMODB_FAULTS) for call in calls]
    matrix.append((("management", "DeleteConnection", 1), list(ENDPOINT_FAULTS)))
    for call, kind in sample(matrix):
        with subtests.test(call=f"{call[1]}#{call[2]}", fault=kind):
            at_the_bound(api, made_once, alice)
            endpoint.reset()
            deps.reset()
            if call[0] == "management":
                endpoint.failures[OLD[0]] = ENDPOINT_FAULTS[kind]
            else:
                fault_for(faults, call, kind)
            try:
                status: int | str = connect(api, alice.token, NEW)[1]
            except Crash:
                status = "died"
            finally:
                faults.clear()
            assert_whole_or_none(aws, NEW, *OLD)
            if status == 200:
                assert items_of(aws, NEW) == ["connection", "owner"]
                assert stored_ids(alice) == [*OLD[1:], NEW]  # the oldest evicted
                assert endpoint.deleted == [OLD[0]]  # and its socket closed (or tried: a failure is logged)
            else:
                assert status in (503, "died"), status
                if call == calls[0] and kind != CRASH_AFTER:
                    assert items_of(aws, NEW) == []  # the write never happened
                if status == 503:
                    assert items_of(aws, NEW) == []  # refused after its write: its pair removed before the 503
                # API Gateway refused the handshake: it has no such connection, and says so on a push.
                endpoint.gone.add(NEW)
                push_to(alice)
                assert items_of(aws, NEW) == []
            assert_invariants(aws, max_connections=BOUND)
            # The client connects again (a new id): connected, within the bound.
            deps.reset()
            assert connect(api, alice.token, "conn-a=")[1] == 200
            assert len(stored_ids(alice)) <= BOUND
            assert_invariants(aws, max_connections=BOUND)


# --- disconnect -----------------------------------------------------------------------------------------------------


def test_a_disconnect_failing_at_any_call_leaves_the_pair_whole_and_the_next_push_forgets_it(
    api: Client,
    aws: boto3.session.Session,
    alice: User,
    made_once: MadeOnce,
    endpoint: Endpoint,
    faults: Faults,
    subtests: Any,
) -> None:
    at_the_bound(api, made_once, alice)
    with recorded_calls() as recorded:
        assert api.lambda_.invoke("websocket_disconnect", ws_event(OLD[1], "$disconnect")).payload["statusCode"] == 200
    calls = numbered(recorded)
    assert [c[:2] for c in calls] == [("dynamodb", "GetItem"), ("dynamodb", "TransactWriteItems")]
    for call, kind in sample([(call, DYNAMODB_FAULTS) for call in calls]):
        with subtests.test(call=f"{call[1]}#{call[2]}", fault=kind):
            at_the_bound(api, made_once, alice)
            endpoint.reset()
            deps.reset()
            fault_for(faults, call, kind)
            try:
                # API Gateway ignores what $disconnect answers; a throttled one still answers 200, having logged it.
                reply = api.lambda_.invoke("websocket_disconnect", ws_event(OLD[1], "$disconnect")).payload
                assert reply == {"statusCode": 200}
            except Crash:
                pass
            finally:
                faults.clear()
            assert_whole_or_none(aws, *OLD)
            assert_invariants(aws, max_connections=BOUND)
            endpoint.gone.add(OLD[1])  # the client is gone: API Gateway answers 410 for it
            push_to(alice)
            assert stored_ids(alice) == [OLD[0], OLD[2]]
            assert sorted(to for to, _ in endpoint.posts) == [OLD[0], OLD[2]]
            assert_invariants(aws, max_connections=BOUND)


# --- pushes ---------------------------------------------------------------------------------------------------------


def with_a_photo(api: Client, s3: Any, made_once: MadeOnce, alice: User) -> str:
    """alice at the bound with a READY photo (built once, restored for each case): its id."""

    def make() -> str:
        photo_id = str(upload_ready(api, s3, alice)["photo_id"])
        for connection_id in OLD:
            assert connect(api, alice.token, connection_id) == (connection_id, 200)
        return photo_id

    return made_once("with a photo", make)


def edit(alice: User, photo_id: str) -> Any:
    return alice.call("PATCH", f"/photos/{photo_id}", {"title": "Edited", "version": 1})


def test_a_post_failing_with_410_500_or_a_timeout_never_fails_the_write_and_the_others_still_receive(
    api: Client,
    aws: boto3.session.Session,
    s3: Any,
    alice: User,
    made_once: MadeOnce,
    endpoint: Endpoint,
    capsys: pytest.CaptureFixture[str],
    subtests: Any,
) -> None:
    for kind, failure in ENDPOINT_FAULTS.items():
        with subtests.test(fault=kind):
            photo_id = with_a_photo(api, s3, made_once, alice)
            endpoint.reset()
            deps.reset()
            endpoint.failures[OLD[1]] = failure
            capsys.readouterr()
            response = edit(alice, photo_id)
            assert response.status_code == 200, response.body
            assert body(response)["title"] == "Edited"
            for other in (OLD[0], OLD[2]):
                (message,) = endpoint.received(other)
                assert message["photo"]["photo_id"] == photo_id
            logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
            outcomes = [line["outcome"] for line in logged if line.get("connection_id") == OLD[1]]
            if kind == "410":
                assert outcomes == ["gone"]
                assert items_of(aws, OLD[1]) == []  # forgotten: the client went without a $disconnect we saw
                assert stored_ids(alice) == [OLD[0], OLD[2]]
            else:
                assert outcomes == ["post_failed"]
                assert stored_ids(alice) == OLD  # kept: it may work next time
            assert_invariants(aws, max_connections=BOUND)


def test_dynamodb_failing_during_a_push_never_fails_the_write(
    api: Client,
    aws: boto3.session.Session,
    s3: Any,
    alice: User,
    made_once: MadeOnce,
    endpoint: Endpoint,
    faults: Faults,
    subtests: Any,
) -> None:
    """The push reads the user's connections (Query) and forgets a gone one (a transaction): throttled or not, the
    edit answers 200, is stored, and the gone connection is whole until a later push forgets it."""
    photo_id = with_a_photo(api, s3, made_once, alice)
    endpoint.gone.add(OLD[1])
    with recorded_calls() as recorded:
        assert edit(alice, photo_id).status_code == 200
    calls = numbered(recorded)
    # The edit's own calls, then the push's: the Query of alice's connections and the forgetting of the gone one.
    push_calls = calls[-2:]
    assert [c[:2] for c in push_calls] == [("dynamodb", "Query"), ("dynamodb", "TransactWriteItems")]
    for call, kind in sample([(call, list(THROTTLES)) for call in push_calls]):
        with subtests.test(call=f"{call[1]}#{call[2]}", fault=kind):
            photo_id = with_a_photo(api, s3, made_once, alice)
            endpoint.reset()
            endpoint.gone.add(OLD[1])
            deps.reset()
            fault_for(faults, call, kind)
            try:
                response = edit(alice, photo_id)
            finally:
                faults.clear()
            assert response.status_code == 200, response.body
            assert body(alice.call("GET", f"/photos/{photo_id}"))["title"] == "Edited"
            assert_whole_or_none(aws, *OLD)
            assert_invariants(aws, max_connections=BOUND)
            push_to(alice)
            assert stored_ids(alice) == [OLD[0], OLD[2]]


def test_a_push_to_a_connection_gone_meanwhile_is_not_an_error_for_the_forget(
    api: Client, aws: boto3.session.Session, alice: User, made_once: MadeOnce, endpoint: Endpoint
) -> None:
    """A 410 for a connection whose $disconnect removed its items in the meantime: forgetting what is already gone
    is no error, and nothing is half left."""
    at_the_bound(api, made_once, alice)
    endpoint.reset()
    deps.reset()

    def disconnected_meanwhile() -> BaseException:
        api.lambda_.invoke("websocket_disconnect", ws_event(OLD[0], "$disconnect"))
        return _gone()

    endpoint.failures[OLD[0]] = disconnected_meanwhile
    push_to(alice)
    assert stored_ids(alice) == OLD[1:]
    assert sorted(to for to, _ in endpoint.posts) == OLD[1:]
    assert_whole_or_none(aws, *OLD)
    assert_invariants(aws, max_connections=BOUND)
