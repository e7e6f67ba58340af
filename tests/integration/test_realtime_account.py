"""Deleting an account closes its open WebSocket connections and forgets both items of every one of them, as a
step of the resumable deletion (chalicelib/users/deletion.py): nothing of the user's connections is left, nobody
else's is touched, and a closed socket already gone, a failing endpoint, a crash or running out of time in the middle
of the step never leaves half a connection.

The deletion is built as deps builds it, with the notifier as its socket closer: in-process moto for the table, a
recording fake for the management API (moto's never answers 410).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from chalice.test import Client

from chalicelib import clock, deps, keys
from chalicelib.users.deletion import AccountDeletion, DynamoAccountRepository
from ops import invariants
from tests.integration.conftest import BUCKET, TABLE, User
from tests.integration.test_realtime import (  # noqa: F401 - fixtures re-exported
    FakeManagementApi,
    _client_error,
    connect,
    connected,
    management,
    realtime_env,
)
from tests.reliability.support import Crash, assert_invariants, aws_clients, create_profile, upload_ready


class ClosingEndpoint(FakeManagementApi):
    """The management API whose DELETE @connections/<id> answers, for the ids in `failures`, what API Gateway (or
    the network) would: an exception raised in place of the answer."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: dict[str, Callable[[], BaseException]] = {}

    def delete_connection(self, *, ConnectionId: str) -> dict[str, Any]:
        self.deleted.append(ConnectionId)
        failure = self.failures.get(ConnectionId)
        if failure is not None:
            raise failure()
        return {}


@pytest.fixture
def endpoint(management: FakeManagementApi, monkeypatch: pytest.MonkeyPatch) -> ClosingEndpoint:  # noqa: F811
    fake = ClosingEndpoint()
    monkeypatch.setattr(deps, "management_api", lambda: fake)
    deps.reset()
    return fake


def account_deletion() -> AccountDeletion:
    """deps.account_deletion(), with the notifier closing the sockets (`sockets=notifier()`)."""
    return AccountDeletion(
        DynamoAccountRepository(deps.dynamodb(), deps.settings().table_name),
        deps.photo_repository(),
        deps.album_service(),
        deps.storage(),
        clock=clock.now,
        sockets=deps.notifier(),
    )


def connected_as(api: Client, user: User, *connection_ids: str) -> list[str]:
    """Connections with these ids (the deletion goes through a user's connections in the order of their ids)."""
    for connection_id in connection_ids:
        assert connect(api, user.token, connection_id) == (connection_id, 200)
    return list(connection_ids)


def expire(dynamodb: Any, user_id: str, connection_id: str) -> None:
    """The connection as API Gateway closed it (past its 2 hours) and DynamoDB's TTL has not yet removed it."""
    for key in (keys.connection_key(user_id, connection_id), keys.connection_owner_key(connection_id)):
        dynamodb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET expires_at_epoch = :past",
            ExpressionAttributeValues={":past": {"N": "1000"}},
        )


def stored(dynamodb: Any, connection_id: str) -> list[str]:
    """Which of a connection's two items are in the table."""
    found = []
    for item in dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]:
        pk, sk = item["PK"]["S"], item["SK"]["S"]
        if sk == f"{keys.WS_PREFIX}{connection_id}":
            found.append("connection")
        elif pk == f"{keys.WS_PREFIX}{connection_id}":
            found.append("owner")
    return sorted(found)


def remains(aws: boto3.session.Session, user: User) -> list[str]:
    dynamodb, s3 = aws_clients(aws)
    return invariants.remains_of(dynamodb, s3, table=TABLE, bucket=BUCKET, user_id=user.sub)


@pytest.fixture
def doomed(api: Client, aws: boto3.session.Session, alice: User, dynamodb: Any, endpoint: ClosingEndpoint) -> User:
    """alice with a profile and a photo, about to delete her account."""
    create_profile(alice, "Alice")
    upload_ready(api, aws.client("s3"), alice)
    return alice


def test_deleting_an_account_forgets_both_items_of_every_connection_and_nobody_elses(
    api: Client, aws: boto3.session.Session, doomed: User, bob: User, dynamodb: Any, endpoint: ClosingEndpoint
) -> None:
    """Through DELETE /users/me: even an expired connection (TTL removes it late) goes, owner item and all."""
    mine = connected(api, doomed, 3)
    expire(dynamodb, doomed.sub, mine[2])
    (bobs,) = connected(api, bob)
    response = doomed.call("DELETE", "/users/me")
    assert response.status_code == 204, response.body
    for connection_id in mine:
        assert stored(dynamodb, connection_id) == []
    assert remains(aws, doomed) == []
    assert stored(dynamodb, bobs) == ["connection", "owner"]
    assert [c.connection_id for c in deps.connections().of_user(bob.sub)] == [bobs]
    assert_invariants(aws)


def test_deleting_an_account_closes_its_open_sockets_but_not_expired_ones_and_nobody_elses(
    api: Client, doomed: User, bob: User, dynamodb: Any, endpoint: ClosingEndpoint
) -> None:
    first, second, old = connected(api, doomed, 3)
    expire(dynamodb, doomed.sub, old)
    connected(api, bob)
    assert account_deletion().delete(doomed.sub, out_of_time=lambda: False)
    # API Gateway closed the expired one hours ago: no call for it.
    assert sorted(endpoint.deleted) == sorted([first, second])


def test_a_socket_already_gone_or_an_endpoint_failing_or_timing_out_does_not_stop_the_deletion(
    api: Client,
    aws: boto3.session.Session,
    doomed: User,
    dynamodb: Any,
    endpoint: ClosingEndpoint,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gone, failing, slow, fine = connected(api, doomed, 4)
    endpoint.failures = {
        gone: lambda: _client_error("GoneException", 410, "DeleteConnection"),
        failing: lambda: _client_error("InternalServerErrorException", 500, "DeleteConnection"),
        slow: lambda: ReadTimeoutError(endpoint_url="http://127.0.0.1:9/@connections"),
    }
    capsys.readouterr()
    assert account_deletion().delete(doomed.sub, out_of_time=lambda: False)
    assert sorted(endpoint.deleted) == sorted([gone, failing, slow, fine])
    assert remains(aws, doomed) == []
    # The socket that could not be closed gets nothing more (no item names it); API Gateway ends it within 2 hours.
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    failed = sorted(line["error"] for line in logged if line.get("outcome") == "push_failed")
    assert failed == ["ClientError:InternalServerErrorException", "ReadTimeoutError"]
    assert_invariants(aws)


def test_a_deletion_that_dies_after_closing_a_socket_keeps_both_items_and_its_retry_finishes(
    api: Client, aws: boto3.session.Session, doomed: User, dynamodb: Any, endpoint: ClosingEndpoint
) -> None:
    first, second = connected_as(api, doomed, "conn-1=", "conn-2=")
    endpoint.failures = {second: lambda: Crash("the function died after the socket was closed")}
    with pytest.raises(Crash):
        account_deletion().delete(doomed.sub, out_of_time=lambda: False)
    assert stored(dynamodb, first) == []
    assert stored(dynamodb, second) == ["connection", "owner"]  # never one without the other
    assert_invariants(aws)  # the account is being deleted: its connections may stay until the last step
    endpoint.failures.clear()
    assert account_deletion().delete(doomed.sub, out_of_time=lambda: False)
    assert endpoint.deleted == [first, second, second]  # closed again: already closed is fine
    assert remains(aws, doomed) == []
    assert_invariants(aws)


def test_a_deletion_out_of_time_among_its_connections_and_a_client_reconnecting_meanwhile_are_finished_by_the_retry(
    api: Client, aws: boto3.session.Session, doomed: User, dynamodb: Any, endpoint: ClosingEndpoint
) -> None:
    first, second = connected_as(api, doomed, "conn-1=", "conn-2=")
    deletion = account_deletion()
    # Time runs out once the first socket is closed.
    assert not deletion.delete(doomed.sub, out_of_time=lambda: bool(endpoint.deleted))
    assert endpoint.deleted == [first]
    assert stored(dynamodb, first) == []
    assert stored(dynamodb, second) == ["connection", "owner"]
    assert_invariants(aws)
    # The client, its socket closed, reconnects with its (still valid) token while the deletion is unfinished.
    (again,) = connected_as(api, doomed, "conn-0=")
    assert deletion.delete(doomed.sub, out_of_time=lambda: False)
    assert sorted(endpoint.deleted) == sorted([first, second, again])
    assert remains(aws, doomed) == []
    assert_invariants(aws)


def test_the_scheduled_job_closes_and_forgets_the_connections_of_a_deletion_a_request_left(
    api: Client, aws: boto3.session.Session, doomed: User, endpoint: ClosingEndpoint
) -> None:
    (connection_id,) = connected(api, doomed)
    deletion = account_deletion()
    assert not deletion.delete(doomed.sub, out_of_time=lambda: True)
    assert endpoint.deleted == []
    assert deletion.finish_left_behind(out_of_time=lambda: False) == {"accounts_deleted": 1, "left_for_next_run": 0}
    assert endpoint.deleted == [connection_id]
    assert remains(aws, doomed) == []
