"""Live status over the WebSocket API, in-process: the app's three handlers invoked with API Gateway-shaped events,
the connections in the real table (moto), and the management API either moto's or a recording fake.

The pool's JWKS reaches the connect handler's verifier through its fetch, so the token check is the real one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib import deps, errors, keys
from chalicelib.realtime import tokens
from chalicelib.realtime.connections import CONNECTION_TTL_SECONDS
from tests.conftest import POOL
from tests.integration.conftest import TABLE, User
from tests.integration.test_cold_path import RECORDING_CLIENTS
from tests.reliability.support import (
    body,
    deliver,
    jpeg,
    put_upload,
    start_upload,
    upload_ready,
    upload_rejected,
)
from tests.support import albums
from tests.support.cognito import FakeCognitoPool
from tests.support.realtime import API_ID, ws_event

# The management API as API Gateway serves it for a stage; moto answers this host in-process.
MANAGEMENT_URL = f"https://{API_ID}.execute-api.us-east-1.amazonaws.com/dev"


class FakeManagementApi:
    """`apigatewaymanagementapi` as the notifier uses it: records every post and delete; connections in `gone`
    answer 410 as API Gateway does for a closed one, those in `failing` a 500."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.deleted: list[str] = []
        self.gone: set[str] = set()
        self.failing: set[str] = set()

    def post_to_connection(self, *, Data: bytes, ConnectionId: str) -> dict[str, Any]:
        if ConnectionId in self.gone:
            raise _client_error("GoneException", 410, "PostToConnection")
        if ConnectionId in self.failing:
            raise _client_error("InternalServerErrorException", 500, "PostToConnection")
        self.posts.append((ConnectionId, json.loads(Data)))
        return {}

    def delete_connection(self, *, ConnectionId: str) -> dict[str, Any]:
        if ConnectionId in self.failing:
            raise _client_error("InternalServerErrorException", 500, "DeleteConnection")
        self.deleted.append(ConnectionId)
        return {}

    def received(self, connection_id: str) -> list[dict[str, Any]]:
        return [message for to, message in self.posts if to == connection_id]


def _client_error(code: str, status: int, operation: str) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


def jwks_fetch(url: str) -> bytes:
    assert url == f"{POOL.issuer}/.well-known/jwks.json"  # derived from the pool's ARN, as in AWS
    return json.dumps(POOL.jwks()).encode()


@pytest.fixture
def realtime_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Realtime on, the verifier fetching the test pool's JWKS. Set before `aws` builds anything."""
    monkeypatch.setenv("PHOTOSKY_WS_MANAGEMENT_URL", MANAGEMENT_URL)
    monkeypatch.setenv("PHOTOSKY_USER_POOL_CLIENT_ID", POOL.client_id)
    monkeypatch.setattr(tokens, "http_get", jwks_fetch)
    deps.reset()
    yield
    deps.reset()


@pytest.fixture
def management(realtime_env: None, aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch) -> FakeManagementApi:
    fake = FakeManagementApi()
    monkeypatch.setattr(deps, "management_api", lambda: fake)
    deps.reset()
    return fake


@pytest.fixture
def s3(aws: boto3.session.Session) -> Any:
    return aws.client("s3")


def connect(api: Client, token: str | None, connection_id: str | None = None) -> tuple[str, int]:
    connection_id = connection_id or f"conn-{uuid.uuid4().hex[:12]}="
    reply = api.lambda_.invoke("websocket_connect", ws_event(connection_id, "$connect", token=token)).payload
    return connection_id, reply["statusCode"]


def connected(api: Client, user: User, count: int = 1) -> list[str]:
    ids = []
    for _ in range(count):
        connection_id, status = connect(api, user.token)
        assert status == 200
        ids.append(connection_id)
    return ids


def connection_items(dynamodb: Any) -> list[dict[str, Any]]:
    items = dynamodb.scan(TableName=TABLE)["Items"]
    return [item for item in items if item["SK"]["S"].startswith("WS") or item["PK"]["S"].startswith("WS#")]


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [message["type"] for message in messages]


# --- connect, disconnect, the bound ------------------------------------------------------------------------------


def test_a_good_token_connects_and_stores_both_items_with_a_ttl(
    api: Client, alice: User, management: FakeManagementApi, dynamodb: Any
) -> None:
    before = int(time.time())
    connection_id, status = connect(api, alice.token)
    assert status == 200
    forward = dynamodb.get_item(TableName=TABLE, Key=keys.connection_key(alice.sub, connection_id))["Item"]
    reverse = dynamodb.get_item(TableName=TABLE, Key=keys.connection_owner_key(connection_id))["Item"]
    assert reverse["user_id"]["S"] == alice.sub
    for item in (forward, reverse):
        expires = int(item["expires_at_epoch"]["N"])  # the table's TTL attribute
        assert before + CONNECTION_TTL_SECONDS <= expires <= int(time.time()) + CONNECTION_TTL_SECONDS
    assert deps.connections().of_user(alice.sub)[0].connection_id == connection_id


OTHER_POOL = FakeCognitoPool(pool_id="us-east-1_Other")
SUB = "c0ffee00-0000-4000-8000-000000000003"


BAD_TOKENS = {
    "missing": None,
    "empty": "",
    "garbage": "not-a-jwt",
    "expired": POOL.id_token(SUB, exp=int(time.time()) - 60),
    "forged": OTHER_POOL.sign(POOL.id_claims(SUB), kid=POOL.kid),  # another key under our key's id
    "unknown key": OTHER_POOL.id_token(SUB),
    "other audience": POOL.id_token(SUB, aud="someoneelse"),
    "other issuer": POOL.id_token(SUB, iss=OTHER_POOL.issuer),
    "access token": POOL.access_token(SUB),
    "no subject": POOL.sign({k: v for k, v in POOL.id_claims(SUB).items() if k != "sub"}),
}


def test_a_bad_token_gets_401_and_nothing_is_stored(
    api: Client, management: FakeManagementApi, dynamodb: Any, capsys: pytest.CaptureFixture[str], subtests: Any
) -> None:
    for case, token in BAD_TOKENS.items():
        with subtests.test(case=case):
            _, status = connect(api, token)
            assert status == 401
            assert connection_items(dynamodb) == []
            logged = capsys.readouterr().out
            assert '"outcome":"rejected"' in logged
            if token:
                assert token not in logged
                assert token.split(".")[-1] not in logged


def test_the_token_is_never_logged_on_a_good_connect(
    api: Client, alice: User, management: FakeManagementApi, capsys: pytest.CaptureFixture[str]
) -> None:
    connect(api, alice.token)
    logged = capsys.readouterr()
    assert '"outcome":"connected"' in logged.out
    for part in alice.token.split("."):
        assert part not in logged.out
        assert part not in logged.err


def test_with_realtime_off_no_connection_is_accepted_and_nothing_is_pushed(
    api: Client, alice: User, dynamodb: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deps, "management_api", lambda: pytest.fail("realtime is off: no client may be built"))
    monkeypatch.setattr(deps, "connections", lambda: pytest.fail("realtime is off: connections are never read"))
    _, status = connect(api, alice.token)
    assert status == 503
    assert connection_items(dynamodb) == []
    upload_ready(api, s3, alice)  # the worker's settle pushes nothing, and reads nothing to find out whom to


def test_realtime_on_without_the_app_client_id_refuses_connects_and_says_why(
    api: Client,
    alice: User,
    management: FakeManagementApi,
    monkeypatch: pytest.MonkeyPatch,
    dynamodb: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("PHOTOSKY_USER_POOL_CLIENT_ID")
    deps.reset()
    _, status = connect(api, alice.token)
    assert status == 503
    assert connection_items(dynamodb) == []
    assert "PHOTOSKY_USER_POOL_CLIENT_ID" in capsys.readouterr().out


def test_the_connection_past_the_bound_evicts_the_oldest(
    api: Client, alice: User, bob: User, management: FakeManagementApi, dynamodb: Any
) -> None:
    # Ids that sort in connection order: connections made within one millisecond are ordered by id.
    ids = [connect(api, alice.token, f"conn-{n:02d}=")[0] for n in range(10)]
    bobs = connected(api, bob)
    assert management.deleted == []
    newest, status = connect(api, alice.token, "conn-10=")
    assert status == 200
    assert management.deleted == [ids[0]]  # closed through the management API
    stored = [c.connection_id for c in deps.connections().of_user(alice.sub)]
    assert stored == [*ids[1:], newest]
    forward = dynamodb.get_item(TableName=TABLE, Key=keys.connection_key(alice.sub, ids[0]))
    reverse = dynamodb.get_item(TableName=TABLE, Key=keys.connection_owner_key(ids[0]))
    assert "Item" not in forward
    assert "Item" not in reverse
    assert [c.connection_id for c in deps.connections().of_user(bob.sub)] == bobs  # bounded per user


def test_disconnect_removes_both_items_and_an_unknown_one_is_no_error(
    api: Client, alice: User, management: FakeManagementApi, dynamodb: Any
) -> None:
    first, second = connected(api, alice, 2)
    reply = api.lambda_.invoke("websocket_disconnect", ws_event(first, "$disconnect")).payload
    assert reply == {"statusCode": 200}
    assert [c.connection_id for c in deps.connections().of_user(alice.sub)] == [second]
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key=keys.connection_owner_key(first))
    again = api.lambda_.invoke("websocket_disconnect", ws_event(first, "$disconnect")).payload
    assert again == {"statusCode": 200}


def test_an_expired_connection_left_behind_is_not_pushed_to(
    api: Client, alice: User, management: FakeManagementApi, dynamodb: Any
) -> None:
    (connection_id,) = connected(api, alice)
    dynamodb.update_item(
        TableName=TABLE,
        Key=keys.connection_key(alice.sub, connection_id),
        UpdateExpression="SET expires_at_epoch = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert deps.connections().of_user(alice.sub) == []  # TTL has not run yet; the read leaves it out


# --- messages from the client ------------------------------------------------------------------------------------


def test_a_ping_gets_a_pong_and_anything_else_an_error_message(
    api: Client, alice: User, management: FakeManagementApi, subtests: Any
) -> None:
    (connection_id,) = connected(api, alice)
    sent: list[tuple[str | None, str]] = [
        ('{"type": "ping"}', "pong"),
        ("not json at all", "error"),
        ('["ping"]', "error"),
        ('{"type": "subscribe", "to": "everything"}', "error"),
        (None, "error"),
        ('{"type": "ping", "pad": "' + "x" * 5000 + '"}', "error"),
    ]
    for body_sent, expected in sent:
        with subtests.test(sent=(body_sent or "")[:40]):
            management.posts.clear()
            event = ws_event(connection_id, "$default", body=body_sent)
            assert api.lambda_.invoke("websocket_message", event).payload == {"statusCode": 200}
            (answer,) = management.received(connection_id)
            assert answer["type"] == expected
            if expected == "error":
                assert answer["message"]


def test_a_ping_from_a_connection_no_longer_stored_closes_it_instead_of_answering(
    api: Client, alice: User, management: FakeManagementApi, dynamodb: Any
) -> None:
    """A socket whose items are gone (its eviction's close failed, its account was deleted) hears no push: a pong
    would keep its client believing it is live, so its ping closes it and the client reconnects or polls."""
    (connection_id,) = connected(api, alice)
    deps.connections().forget(alice.sub, connection_id)
    event = ws_event(connection_id, "$default", body='{"type": "ping"}')
    assert api.lambda_.invoke("websocket_message", event).payload == {"statusCode": 200}
    assert management.received(connection_id) == []
    assert management.deleted == [connection_id]


def test_a_ping_is_answered_when_the_lookup_of_its_connection_fails(
    api: Client, alice: User, management: FakeManagementApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB busy is no reason to drop a client: it gets its pong, and the next ping checks again."""
    (connection_id,) = connected(api, alice)

    def busy(connection_id: str) -> str | None:
        raise errors.Unavailable("DynamoDB is busy; retry shortly")

    monkeypatch.setattr(deps.connections(), "owner", busy)
    event = ws_event(connection_id, "$default", body='{"type": "ping"}')
    api.lambda_.invoke("websocket_message", event)
    assert [m["type"] for m in management.received(connection_id)] == ["pong"]
    assert management.deleted == []


def test_an_evicted_socket_that_cannot_be_closed_does_not_fail_the_new_connect(
    api: Client, alice: User, management: FakeManagementApi, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [connect(api, alice.token, f"conn-{n:02d}=")[0] for n in range(10)]
    management.failing.add(ids[0])
    newest, status = connect(api, alice.token, "conn-10=")
    assert status == 200
    assert [c.connection_id for c in deps.connections().of_user(alice.sub)] == [*ids[1:], newest]
    assert '"outcome":"push_failed","step":"close"' in capsys.readouterr().out
    # Its items are gone, so its next ping closes it (the endpoint answers this time).
    management.failing.clear()
    api.lambda_.invoke("websocket_message", ws_event(ids[0], "$default", body='{"type": "ping"}'))
    assert management.deleted == [ids[0]]


def test_a_connect_refused_after_its_write_leaves_nothing_behind(
    api: Client, alice: User, management: FakeManagementApi, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound is read after the pair is written; if that read fails the connect is refused (503), and the pair
    must not stay behind to count against the bound and be pushed to."""
    connections = deps.connections()

    def busy(user_id: str, *, consistent: bool) -> list[Any]:
        raise errors.Unavailable("DynamoDB is busy; retry shortly")

    monkeypatch.setattr(connections, "_of_user", busy)
    _, status = connect(api, alice.token, "conn-refused=")
    assert status == 503
    assert connection_items(dynamodb) == []


# --- pushes: the worker --------------------------------------------------------------------------------------------


def test_a_photo_settled_by_the_worker_is_pushed_to_every_connection_of_its_owner_and_nobody_else(
    api: Client, alice: User, bob: User, s3: Any, management: FakeManagementApi
) -> None:
    mine = connected(api, alice, 2)
    (bobs,) = connected(api, bob)
    ready = upload_ready(api, s3, alice)
    rejected = upload_rejected(api, s3, alice)
    expected = [
        {
            "type": "photo",
            "photo": {
                "photo_id": ready["photo_id"],
                "status": "READY",
                "version": ready["version"],
                "updated_at": ready["updated_at"],
                "rejection_reason": None,
                "duplicate_of": None,
            },
        },
        {
            "type": "photo",
            "photo": {
                "photo_id": rejected["photo_id"],
                "status": "REJECTED",
                "version": rejected["version"],
                "updated_at": rejected["updated_at"],
                "rejection_reason": rejected["rejection_reason"],
                "duplicate_of": None,
            },
        },
    ]
    for connection_id in mine:
        assert management.received(connection_id) == expected
    assert management.received(bobs) == []


def test_a_duplicate_upload_is_pushed_as_rejected_naming_the_photo_it_copies(
    api: Client, alice: User, s3: Any, management: FakeManagementApi
) -> None:
    data = jpeg()
    original = upload_ready(api, s3, alice, data)
    (connection_id,) = connected(api, alice)
    copy = start_upload(alice, data)["photo"]
    deliver(api, put_upload(s3, alice.sub, copy["photo_id"], data))
    (message,) = management.received(connection_id)
    assert message["photo"]["status"] == "REJECTED"
    assert message["photo"]["duplicate_of"] == original["photo_id"]


# --- pushes: the API -----------------------------------------------------------------------------------------------


def test_edits_trash_restore_delete_and_batches_are_pushed_to_the_owner(
    api: Client, alice: User, bob: User, s3: Any, management: FakeManagementApi
) -> None:
    first, second, third = (upload_ready(api, s3, alice)["photo_id"] for _ in range(3))
    (connection_id,) = connected(api, alice)
    (bobs,) = connected(api, bob)

    edited = body(alice.call("PATCH", f"/photos/{first}", {"version": 1, "title": "Sunset"}))
    assert alice.call("DELETE", f"/photos/{first}").status_code == 204  # to the trash
    restored = body(alice.call("POST", f"/photos/{first}/restore"))
    assert alice.call("DELETE", f"/photos/{first}?permanent=true").status_code == 204
    batch = alice.call("POST", "/photos/batch", {"action": "favorite", "photo_ids": [second, third]})
    assert batch.status_code == 200
    assert alice.call("POST", "/photos/batch", {"action": "trash", "photo_ids": [second, third]}).status_code == 200
    assert alice.call("DELETE", "/trash").status_code == 204

    received = management.received(connection_id)
    assert types(received) == [
        "photo",  # edited
        "photo",  # trashed
        "photo",  # restored
        "photo_deleted",
        "photo",  # favourite, second
        "photo",  # favourite, third
        "photo",  # trashed, second
        "photo",  # trashed, third
        "photo_deleted",  # the trash emptied
        "photo_deleted",
    ]
    assert received[0]["photo"]["version"] == edited["version"] == 2
    assert received[2]["photo"]["updated_at"] == restored["updated_at"]
    assert received[3] == {"type": "photo_deleted", "photo_id": first}
    assert [m["photo"]["photo_id"] for m in received[4:8]] == [second, third, second, third]
    assert {m["photo_id"] for m in received[8:]} == {second, third}
    assert management.received(bobs) == []


def test_a_change_that_changes_nothing_pushes_nothing(
    api: Client, alice: User, s3: Any, management: FakeManagementApi
) -> None:
    photo = upload_ready(api, s3, alice)["photo_id"]
    (connection_id,) = connected(api, alice)
    assert alice.call("POST", f"/photos/{photo}/restore").status_code == 200  # not in the trash
    assert alice.call("POST", "/photos/batch", {"action": "unfavorite", "photo_ids": [photo]}).status_code == 200
    assert management.received(connection_id) == []


def test_the_scheduled_job_pushes_purged_photos_and_released_uploads(
    api: Client, alice: User, bob: User, s3: Any, management: FakeManagementApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    trashed = upload_ready(api, s3, alice)["photo_id"]
    assert alice.call("DELETE", f"/photos/{trashed}").status_code == 204
    abandoned = start_upload(alice, jpeg())["photo"]["photo_id"]  # never uploaded
    (connection_id,) = connected(api, alice)
    (bobs,) = connected(api, bob)
    later = datetime.now(UTC) + timedelta(days=31)  # past the trash's 30 days and every upload's deadline
    monkeypatch.setattr("chalicelib.clock.now", lambda: later)
    deps.reset()
    api.lambda_.invoke("release_abandoned_uploads", api.events.generate_cw_event("Scheduled Event", "", {}, []))
    assert sorted(management.received(connection_id), key=lambda m: m["photo_id"]) == sorted(
        [{"type": "photo_deleted", "photo_id": trashed}, {"type": "photo_deleted", "photo_id": abandoned}],
        key=lambda m: m["photo_id"],
    )
    assert management.received(bobs) == []


# --- pushes: albums ------------------------------------------------------------------------------------------------


def test_album_changes_are_pushed_to_every_member_and_a_removed_member_is_told(
    api: Client, alice: User, bob: User, s3: Any, management: FakeManagementApi
) -> None:
    carol = User(api, "ca201000-0000-4000-8000-000000000004")
    photo = upload_ready(api, s3, alice)["photo_id"]
    album_id = albums.create_album(alice)["album_id"]
    (alices,) = connected(api, alice)
    (bobs,) = connected(api, bob)
    (carols,) = connected(api, carol)

    albums.share(alice, album_id, bob, role="contributor")
    albums.add_photos(alice, album_id, photo)
    renamed = body(alice.call("PATCH", f"/albums/{album_id}", {"version": 1, "title": "Summer"}))
    assert alice.call("DELETE", f"/photos/{photo}").status_code == 204  # trashing it takes it out of the album
    assert alice.call("DELETE", f"/albums/{album_id}/members/{bob.sub}").status_code == 204

    assert types(management.received(alices)) == ["album", "album", "album", "photo", "album", "album"]
    assert types(management.received(bobs)) == ["album", "album", "album", "album", "album_removed"]
    assert management.received(bobs)[2]["album"] == {
        "album_id": album_id,
        "version": renamed["version"],
        "updated_at": renamed["updated_at"],
    }
    assert management.received(bobs)[-1] == {"type": "album_removed", "album_id": album_id}
    assert management.received(carols) == []  # not a member: hears nothing of it


def test_deleting_an_album_tells_every_member_they_lost_it(
    api: Client, alice: User, bob: User, management: FakeManagementApi
) -> None:
    album_id = albums.create_album(alice)["album_id"]
    albums.share(alice, album_id, bob)
    (alices,) = connected(api, alice)
    (bobs,) = connected(api, bob)
    assert alice.call("DELETE", f"/albums/{album_id}").status_code == 204
    assert management.received(alices) == [{"type": "album_removed", "album_id": album_id}]
    assert management.received(bobs) == [{"type": "album_removed", "album_id": album_id}]


def test_a_member_who_leaves_is_told_and_the_owner_hears_the_album_changed(
    api: Client, alice: User, bob: User, management: FakeManagementApi
) -> None:
    album_id = albums.create_album(alice)["album_id"]
    albums.share(alice, album_id, bob)
    (alices,) = connected(api, alice)
    (bobs,) = connected(api, bob)
    assert bob.call("DELETE", f"/albums/{album_id}/members/{bob.sub}").status_code == 204
    assert types(management.received(alices)) == ["album"]
    assert management.received(bobs) == [{"type": "album_removed", "album_id": album_id}]


# --- failures of the push ------------------------------------------------------------------------------------------


def test_a_gone_connection_is_forgotten_and_the_others_still_hear(
    api: Client, alice: User, s3: Any, management: FakeManagementApi, dynamodb: Any
) -> None:
    photo = upload_ready(api, s3, alice)["photo_id"]
    stale, live = connected(api, alice, 2)
    management.gone.add(stale)
    edited = alice.call("PATCH", f"/photos/{photo}", {"version": 1, "title": "x"})
    assert edited.status_code == 200
    assert [c.connection_id for c in deps.connections().of_user(alice.sub)] == [live]
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key=keys.connection_owner_key(stale))
    assert types(management.received(live)) == ["photo"]


def test_a_failing_post_never_fails_the_api_call_and_is_logged(
    api: Client, alice: User, s3: Any, management: FakeManagementApi, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = upload_ready(api, s3, alice)["photo_id"]
    (connection_id,) = connected(api, alice)
    management.failing.add(connection_id)
    capsys.readouterr()
    response = alice.call("PATCH", f"/photos/{photo}", {"version": 1, "title": "x"})
    assert response.status_code == 200
    assert body(response)["title"] == "x"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    failures = [line for line in logged if line.get("outcome") == "post_failed"]
    assert failures
    assert failures[0]["error"] == "ClientError:InternalServerErrorException"
    assert failures[0]["connection_id"] == connection_id
    assert [c.connection_id for c in deps.connections().of_user(alice.sub)] == [connection_id]  # kept: not gone


def test_an_unreachable_management_endpoint_costs_the_write_little_and_never_fails_it(
    api: Client,
    alice: User,
    s3: Any,
    realtime_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A real botocore client against a closed local port: connections are refused at once.
    monkeypatch.setenv("PHOTOSKY_WS_MANAGEMENT_URL", "http://127.0.0.1:9")
    deps.reset()
    photo = upload_ready(api, s3, alice)["photo_id"]
    connected(api, alice, 3)
    started = time.monotonic()
    response = alice.call("PATCH", f"/photos/{photo}", {"version": 1, "title": "x"})
    assert response.status_code == 200
    assert time.monotonic() - started < 5
    logged = capsys.readouterr().out
    assert '"outcome":"post_failed"' in logged
    assert "EndpointConnectionError" in logged


def test_the_real_client_posts_to_the_stage_s_management_endpoint(
    api: Client, alice: User, s3: Any, realtime_env: None, aws: boto3.session.Session
) -> None:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    photo = upload_ready(api, s3, alice)["photo_id"]
    (connection_id,) = connected(api, alice)
    assert alice.call("PATCH", f"/photos/{photo}", {"version": 1, "title": "x"}).status_code == 200
    backend = apigatewaymanagementapi_backends["123456789012"]["us-east-1"]
    # API Gateway's connection ids end in "="; botocore escapes it in the path, and moto keeps the escaped form.
    posted = backend.connections[quote(connection_id, safe="")].data
    assert json.loads(posted)["photo"]["photo_id"] == photo


# --- the REST API's cold path --------------------------------------------------------------------------------------

# With realtime on, a REST cold start builds no management client and loads no token code; the connect function
# loads the token check on its first connect.
REALTIME_PROBE = (
    RECORDING_CLIENTS
    + """
import app
from chalicelib import deps
deps.photo_service()
notifier = type(deps.notifier()).__name__
realtime = sorted(m for m in sys.modules if m.startswith(("chalicelib.realtime", "chalicelib.rs256")))
realtime = [m for m in realtime if type(sys.modules[m]).__name__ != "_LazyModule"]
api = {"clients": created, "notifier": notifier, "realtime": realtime}
event = {
    "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "c1=", "domainName": "d",
                       "stage": "dev", "apiId": "abc"},
    "queryStringParameters": {"token": "forged.token.here"},
}
reply = app.websocket_connect(event, None)
connect = sorted(m for m in sys.modules if m in ("chalicelib.realtime.tokens", "chalicelib.rs256"))
print(json.dumps({"api": api, "reply": reply, "connect": connect}))
"""
)


def test_with_realtime_on_the_api_cold_path_builds_no_management_client_and_loads_no_token_code() -> None:
    from tests.integration.test_cold_path import CURSOR_SECRET_ARN, lambda_like_environment, run_python

    env = {
        **lambda_like_environment("dev"),
        "PHOTOSKY_CURSOR_SECRET_ARN": CURSOR_SECRET_ARN,
        "PHOTOSKY_WS_MANAGEMENT_URL": MANAGEMENT_URL,
        "PHOTOSKY_USER_POOL_CLIENT_ID": POOL.client_id,
    }
    result = run_python(REALTIME_PROBE, env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["api"] == {
        "clients": ["dynamodb"],
        "notifier": "WebSocketNotifier",
        "realtime": [
            "chalicelib.realtime",
            "chalicelib.realtime.connections",
            "chalicelib.realtime.messages",
            "chalicelib.realtime.notifier",
        ],
    }
    assert report["reply"] == {"statusCode": 401}  # refused before any network call: not a JWS it can read
    assert report["connect"] == ["chalicelib.realtime.tokens", "chalicelib.rs256"]
