"""The socket against hostile and careless clients: unauthenticated and forged connects, one user opening connection
after connection (alone and at once), clients that drop and reconnect without a `$disconnect`, a photo deleted while
the worker processes it, and frames that are not a ping.

What must hold: no connection without a valid ID token, and the token never in a log line; never more stored
connections per user than the bound, and no socket left open without its items (it would hear nothing, and its
client would not know to poll); a gone connection is forgotten on the first push that finds it gone (410) or left
to TTL; no client frame crashes the handler or is echoed back. The management API is a recording fake (moto's never
answers 410), DynamoDB in-process moto.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import deps, keys
from chalicelib.realtime import handlers
from devstack.auth import CognitoIdTokenVerifier, StaticJwks
from devstack.auth import TokenRejected as ReferenceRejected
from tests.conftest import POOL
from tests.integration.conftest import TABLE, User
from tests.integration.test_realtime import (  # noqa: F401 - fixtures re-exported
    FakeManagementApi,
    connect,
    management,
    realtime_env,
)
from tests.reliability.support import (
    Faults,
    assert_invariants,
    aws_clients,
    deliver,
    jpeg,
    put_upload,
    race,
    start_upload,
)
from tests.support.cognito import FakeCognitoPool, bad_tokens, unsigned_token
from tests.support.realtime import ws_event

BOUND = 3  # PHOTOSKY_WS_MAX_CONNECTIONS for the many-connections cases


@pytest.fixture
def endpoint(
    management: FakeManagementApi,  # noqa: F811 - the imported fixture
    monkeypatch: pytest.MonkeyPatch,
) -> FakeManagementApi:
    monkeypatch.setenv("PHOTOSKY_WS_MAX_CONNECTIONS", str(BOUND))
    deps.reset()
    return management


def connection_items(aws: boto3.session.Session) -> list[tuple[str, str]]:
    dynamodb, _ = aws_clients(aws)
    items = dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    keys_of = [(item["PK"]["S"], item["SK"]["S"]) for item in items]
    return sorted((pk, sk) for pk, sk in keys_of if sk.startswith(keys.WS_PREFIX) or pk.startswith(keys.WS_PREFIX))


def stored_ids(user: User) -> list[str]:
    return [c.connection_id for c in deps.connections().of_user(user.sub)]


def push_to(user: User) -> None:
    deps.notifier().photos(user.sub, deleted=("01HZZZZZZZZZZZZZZZZZZZZZZZ",))


# --- unauthenticated and forged connects -----------------------------------------------------------------------------

SUB = "f0e9ed00-0000-4000-8000-000000000009"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _with_claims(token: str, **changes: Any) -> str:
    """The token's payload changed (a claim set to None is removed), its header and signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims = {k: v for k, v in {**claims, **changes}.items() if v is not None}
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _flip(token: str, segment: int, position: int) -> str:
    """One character of one segment changed: the signature no longer matches (or the segment no longer parses)."""
    parts = token.split(".")
    chars = list(parts[segment])
    chars[position] = "A" if chars[position] != "A" else "B"
    parts[segment] = "".join(chars)
    return ".".join(parts)


@functools.cache
def forged_tokens() -> dict[str, str | None]:
    """Every mutation of a valid ID token, and every kind of token the REST authorizer refuses: none may connect."""
    good = POOL.id_token(SUB)
    claims = POOL.id_claims(SUB)
    header, payload, signature = good.split(".")
    now = int(time.time())
    other_pool = FakeCognitoPool(pool_id="us-east-1_Hostile", client_id=POOL.client_id)
    forged: dict[str, str | None] = {f"rest:{name}": token for name, token in bad_tokens(POOL, SUB).items()}
    for required in ("sub", "aud", "iss", "exp", "iat", "token_use"):
        forged[f"signed without {required}"] = POOL.sign({k: v for k, v in claims.items() if k != required})
    forged |= {
        "signed for another app client": POOL.id_token(SUB, aud="another-client"),
        "signed by another issuer": POOL.id_token(SUB, iss=other_pool.issuer),
        "signed as an access token": POOL.id_token(SUB, token_use="access"),
        "signed, expired a second ago": POOL.id_token(SUB, exp=now - 1),
        "signed, issued in the future": POOL.id_token(SUB, iat=now + 600),
        "signed, not valid before the future": POOL.id_token(SUB, nbf=now + 600),
        "signed with an empty subject": POOL.sign({**claims, "sub": ""}),
        "another pool's valid token": other_pool.id_token(SUB),
        "another pool's key under our key id": other_pool.sign(claims, kid=POOL.kid),
        "sub changed, signature kept": _with_claims(good, sub="someone-else"),
        "exp extended, signature kept": _with_claims(good, exp=now + 86400 * 365),
        "aud removed, signature kept": _with_claims(good, aud=None),
        "alg none, signature dropped": unsigned_token(claims),
        "alg none, header swapped": f"{_b64(json.dumps({'alg': 'none', 'kid': POOL.kid}).encode())}.{payload}.",
        "header's kid unknown": f"{_b64(json.dumps({'alg': 'RS256', 'kid': 'nope'}).encode())}.{payload}.{signature}",
        "signature's first character changed": _flip(good, 2, 0),
        "signature's middle character changed": _flip(good, 2, len(signature) // 2),
        "signature truncated": f"{header}.{payload}.{signature[:-4]}",
        "signature doubled": f"{header}.{payload}.{signature}{signature}",
        "signature empty": f"{header}.{payload}.",
        "payload's first character changed": _flip(good, 1, 0),
        "header's first character changed": _flip(good, 0, 0),
        "two segments": f"{header}.{payload}",
        "four segments": f"{good}.{signature}",
        "only dots": "..",
        "a very long token": good + "A" * 100_000,
        "non-ascii": good[:-2] + "é€",
        "a NUL inside": good[:10] + "\x00" + good[11:],
        "the signature alone": signature,
    }
    return forged


def reference_verifier() -> CognitoIdTokenVerifier:
    """The dev stack's REST authorizer check (PyJWT): the standard the connect check is held to."""
    return CognitoIdTokenVerifier(issuer=POOL.issuer, audiences=[POOL.client_id], jwks=StaticJwks(POOL.jwks()))


@pytest.mark.suite("auth")
def test_no_forged_or_missing_token_connects_nothing_is_stored_and_no_token_is_logged(
    api: Client,
    aws: boto3.session.Session,
    endpoint: FakeManagementApi,
    capsys: pytest.CaptureFixture[str],
    subtests: Any,
) -> None:
    reference = reference_verifier()
    capsys.readouterr()
    for name, token in forged_tokens().items():
        with subtests.test(token=name):
            # The corpus is right: the REST authorizer refuses each of them too.
            with pytest.raises(ReferenceRejected):
                reference.verify(token)
            assert connect(api, token, "forged=") == ("forged=", 401)
            assert connection_items(aws) == []
            logged = capsys.readouterr()
            assert '"outcome":"rejected"' in logged.out
            for part in (token or "").split("."):
                if len(part) >= 8:  # the header and payload, the signature: none of it in any log line
                    assert part not in logged.out + logged.err, name
    # The same token, valid, connects: the refusals above were the token's doing.
    assert connect(api, POOL.id_token(SUB), "genuine=") == ("genuine=", 200)


@pytest.mark.suite("auth")
def test_a_valid_token_anywhere_but_the_token_query_parameter_does_not_connect(
    api: Client, aws: boto3.session.Session, endpoint: FakeManagementApi, subtests: Any
) -> None:
    good = POOL.id_token(SUB)
    placements: dict[str, Callable[[dict[str, Any]], None]] = {
        "an Authorization header": lambda e: e.update(headers={"Authorization": good}),
        "another query parameter": lambda e: e.update(queryStringParameters={"access_token": good}),
        "the body": lambda e: e.update(body=json.dumps({"token": good})),
        "a Sec-WebSocket-Protocol header": lambda e: e.update(headers={"Sec-WebSocket-Protocol": good}),
    }
    for name, place in placements.items():
        with subtests.test(placed_in=name):
            event = ws_event("misplaced=", "$connect")
            place(event)
            assert api.lambda_.invoke("websocket_connect", event).payload == {"statusCode": 401}
            assert connection_items(aws) == []


# --- many connections for one user ------------------------------------------------------------------------------------


@pytest.mark.suite("abuse")
def test_connecting_again_and_again_keeps_the_newest_within_the_bound_and_closes_each_evicted_once(
    api: Client, aws: boto3.session.Session, alice: User, endpoint: FakeManagementApi
) -> None:
    made = []
    for n in range(4 * BOUND):
        connection_id = f"conn-{n:02d}="  # ids that sort in connection order (ties within a millisecond)
        assert connect(api, alice.token, connection_id) == (connection_id, 200)
        made.append(connection_id)
        assert stored_ids(alice) == made[-BOUND:]
        assert len(connection_items(aws)) == 2 * min(len(made), BOUND)  # both items of each, nothing more
    assert endpoint.deleted == made[:-BOUND]  # every evicted socket closed, once, oldest first
    assert_invariants(aws, max_connections=BOUND)


@pytest.mark.suite("abuse")
def test_connects_racing_never_leave_more_than_the_bound_nor_an_open_socket_without_its_items(
    api: Client, aws: boto3.session.Session, alice: User, endpoint: FakeManagementApi, atomic_moto: None
) -> None:
    """Each connect writes, then reads the user's connections and evicts past the bound; racing ones may each
    evict the others' (fewer than the bound may remain), but every connection they accepted is either stored
    (pushes reach it) or closed (its client knows to reconnect or poll)."""
    existing = [f"conn-0{n}=" for n in range(BOUND)]
    for connection_id in existing:
        assert connect(api, alice.token, connection_id)[1] == 200
    racing = [f"conn-r{n}=" for n in range(2 * BOUND)]
    deps.id_token_verifier()  # built before the race, as a warm container has it
    results = race([functools.partial(handlers.connect, c, alice.token) for c in racing])
    assert results == [handlers.OK] * len(racing), results
    stored = stored_ids(alice)
    assert 1 <= len(stored) <= BOUND, stored
    for connection_id in existing + racing:
        assert connection_id in stored or connection_id in endpoint.deleted, connection_id
    assert_invariants(aws, max_connections=BOUND)


# --- dropped connections and reconnects ---------------------------------------------------------------------------


@pytest.mark.suite("faults")
def test_a_dropped_connection_is_forgotten_on_the_first_push_and_its_reconnect_receives(
    api: Client, aws: boto3.session.Session, alice: User, endpoint: FakeManagementApi
) -> None:
    """The client's network went: no $disconnect reached us. It reconnects (a new id); the first push finds the old
    one gone and forgets it, the new one hears it, and the next push does not try the old one again."""
    (dropped,) = [connect(api, alice.token, "conn-1=")[0]]
    endpoint.gone.add(dropped)
    assert connect(api, alice.token, "conn-2=") == ("conn-2=", 200)
    push_to(alice)
    assert stored_ids(alice) == ["conn-2="]
    assert connection_items(aws) == sorted(
        [(keys.user_pk(alice.sub), f"{keys.WS_PREFIX}conn-2="), (f"{keys.WS_PREFIX}conn-2=", keys.WS_SK)]
    )
    push_to(alice)
    assert [to for to, _ in endpoint.posts] == ["conn-2=", "conn-2="]
    assert_invariants(aws, max_connections=BOUND)


@pytest.mark.suite("faults")
def test_a_dropped_connection_past_its_ttl_is_never_posted_to_and_is_no_violation(
    api: Client, aws: boto3.session.Session, alice: User, endpoint: FakeManagementApi, dynamodb: Any
) -> None:
    """Past API Gateway's 2 hours the connection is closed whatever happened: a push does not try it (no 410 to
    wait for), and its items wait for DynamoDB's TTL without breaking any invariant."""
    assert connect(api, alice.token, "conn-1=")[1] == 200
    assert connect(api, alice.token, "conn-2=")[1] == 200
    for key in (keys.connection_key(alice.sub, "conn-1="), keys.connection_owner_key("conn-1=")):
        dynamodb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET expires_at_epoch = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
        )
    push_to(alice)
    assert [to for to, _ in endpoint.posts] == ["conn-2="]
    assert_invariants(aws, max_connections=BOUND)


@pytest.mark.suite("abuse")
def test_a_client_reconnecting_in_a_loop_without_disconnects_stays_within_the_bound(
    api: Client, aws: boto3.session.Session, alice: User, endpoint: FakeManagementApi
) -> None:
    """Each reconnect leaves the one before gone without a $disconnect (a flaky network): the bound evicts them
    (closing one already gone is fine), and a push forgets the rest."""
    for n in range(5 * BOUND):
        connection_id = f"conn-{n:02d}="
        assert connect(api, alice.token, connection_id)[1] == 200
        endpoint.gone.add(connection_id)
    endpoint.gone.discard(connection_id)  # the last one is the live one
    assert len(stored_ids(alice)) == BOUND
    push_to(alice)
    assert stored_ids(alice) == [connection_id]
    assert [to for to, _ in endpoint.posts] == [connection_id]
    assert_invariants(aws, max_connections=BOUND)


# --- a photo deleted while the worker processes it --------------------------------------------------------------------


def _deleted_during_processing(
    api: Client, s3: Any, alice: User, faults: Faults, data: bytes, *, after: tuple[str, str, int]
) -> str:
    """Upload `data`, then deliver its event with alice deleting the photo for good right after the worker's call
    `after` (its n-th of that operation). Returns the photo id."""
    photo_id = str(start_upload(alice, data)["photo"]["photo_id"])
    key = put_upload(s3, alice.sub, photo_id, data)

    def delete() -> None:
        deps.photo_service().delete(alice.sub, photo_id, permanent=True)

    faults.after(*after, delete)
    try:
        deliver(api, key)
    finally:
        faults.clear()
    return photo_id


@pytest.mark.suite("faults")
@pytest.mark.parametrize(
    ("upload", "after"),
    [
        # After the previews and the original are written, before the photo is marked READY.
        ("a photo", ("s3", "PutObject", 3)),
        # After the upload is read (it is no image), before the photo is marked REJECTED.
        ("a file that is no photo", ("s3", "GetObject", 1)),
    ],
)
def test_a_photo_deleted_before_the_worker_settles_it_gets_photo_deleted_and_no_photo_message(
    api: Client,
    aws: boto3.session.Session,
    s3: Any,
    alice: User,
    endpoint: FakeManagementApi,
    faults: Faults,
    upload: str,
    after: tuple[str, str, int],
) -> None:
    """The worker's write is conditional on the photo it read: it fails, the worker reads again, finds no photo and
    removes what it wrote. The owner hears `photo_deleted` (from the delete) and never a `photo` message for it."""
    (connection_id,) = [connect(api, alice.token, "conn-1=")[0]]
    data = jpeg() if upload == "a photo" else b"<html>no photo at all</html>" * 10
    photo_id = _deleted_during_processing(api, s3, alice, faults, data, after=after)
    assert endpoint.received(connection_id) == [{"type": "photo_deleted", "photo_id": photo_id}]
    assert alice.call("GET", f"/photos/{photo_id}").status_code == 404
    assert_invariants(aws, max_connections=BOUND)


@pytest.mark.suite("faults")
def test_a_photo_deleted_between_the_workers_write_and_its_push_is_announced_deleted_whatever_comes_after(
    api: Client, aws: boto3.session.Session, s3: Any, alice: User, endpoint: FakeManagementApi, faults: Faults
) -> None:
    """The two functions' pushes are not ordered: here the delete's `photo_deleted` overtakes the worker's `photo`
    (READY), which arrives last. The client is told the photo is gone whatever the order, and the web client only
    ever places a new READY photo from a listing (web/views/updates.js), which no longer has it."""
    (connection_id,) = [connect(api, alice.token, "conn-1=")[0]]
    # The worker's one DynamoDB write (a transaction) marks the photo READY; its push comes after it.
    photo_id = _deleted_during_processing(api, s3, alice, faults, jpeg(), after=("dynamodb", "TransactWriteItems", 1))
    received = endpoint.received(connection_id)
    assert received.count({"type": "photo_deleted", "photo_id": photo_id}) == 1
    assert sorted(m["type"] for m in received) in (["photo_deleted"], ["photo", "photo_deleted"])
    assert all(m["photo"]["photo_id"] == photo_id for m in received if m["type"] == "photo")
    assert alice.call("GET", f"/photos/{photo_id}").status_code == 404
    assert_invariants(aws, max_connections=BOUND)


# --- frames that are not a ping ---------------------------------------------------------------------------------------

GARBAGE: dict[str, str | None] = {
    "no body": None,
    "empty": "",
    "whitespace": " \n\t",
    "the word ping": "ping",
    "ping in capitals": '{"type": "PING"}',
    "truncated JSON": '{"type": "ping"',
    "a JSON string": '"ping"',
    "a JSON list": '[{"type": "ping"}]',
    "a number too large for a float": "1e999999",
    "NaN": "NaN",
    "type null": '{"type": null}',
    "type a list": '{"type": ["ping"]}',
    "type an operator": '{"type": {"$ne": null}}',
    "a duplicate key, the last not a ping": '{"type": "ping", "type": "subscribe"}',
    "a subscription to someone else": '{"type": "subscribe", "user_id": "b0b00000-0000-4000-8000-000000000002"}',
    "nested as deep as the size allows": "[" * 500 + "]" * 500,
    "nested past the size allowed": "[" * 5000 + "]" * 5000,
    "control characters": "\x00\x01\x02\x7f",
    "a lone surrogate escaped": '{"type": "\\ud800"}',
    "a script": '<script>alert("x")</script>',
    "one frame's worth (32 KB)": "x" * 32 * 1024,
    "a whole message's worth (128 KB)": '{"type": "ping", "pad": "' + "x" * 128 * 1024 + '"}',
    "a megabyte": "A" * 1024 * 1024,
    "base64 of a binary frame": base64.b64encode(bytes(range(256))).decode(),
}


@pytest.mark.suite("edges")
def test_every_frame_that_is_not_a_ping_gets_an_error_never_a_crash_nor_an_echo(
    api: Client, aws: boto3.session.Session, alice: User, endpoint: FakeManagementApi, subtests: Any
) -> None:
    assert connect(api, alice.token, "conn-1=")[1] == 200
    before = connection_items(aws)
    for name, frame in GARBAGE.items():
        with subtests.test(frame=name):
            endpoint.posts.clear()
            event = ws_event("conn-1=", "$default", body=frame)
            assert api.lambda_.invoke("websocket_message", event).payload == {"statusCode": 200}
            (reply,) = endpoint.received("conn-1=")
            assert reply["type"] == "error", reply
            assert isinstance(reply["message"], str)
            assert 0 < len(reply["message"]) < 200
            if frame and len(frame.strip()) > 6:
                assert frame not in reply["message"]  # nothing the client sent is reflected
    # A ping still gets its pong, and nothing about the connection changed.
    endpoint.posts.clear()
    event = ws_event("conn-1=", "$default", body='{"type": "ping"}')
    assert api.lambda_.invoke("websocket_message", event).payload == {"statusCode": 200}
    assert endpoint.received("conn-1=") == [{"type": "pong"}]
    assert connection_items(aws) == before


@pytest.mark.suite("edges")
def test_a_frame_on_a_connection_that_is_gone_or_unknown_or_an_endpoint_failing_is_no_crash(
    api: Client, aws: boto3.session.Session, alice: User, endpoint: FakeManagementApi, subtests: Any
) -> None:
    assert connect(api, alice.token, "conn-1=")[1] == 200
    assert connect(api, alice.token, "conn-2=")[1] == 200
    cases: dict[str, tuple[str, Callable[[], None]]] = {
        "unknown to us": ("never-stored=", lambda: None),
        "gone (410 on the reply)": ("conn-1=", lambda: endpoint.gone.add("conn-1=")),
        "the endpoint failing (500)": ("conn-2=", lambda: endpoint.failing.add("conn-2=")),
    }
    for name, (connection_id, arrange) in cases.items():
        with subtests.test(case=name):
            arrange()
            event = ws_event(connection_id, "$default", body='{"type": "ping"}')
            assert api.lambda_.invoke("websocket_message", event).payload == {"statusCode": 200}
    # The gone one's items went with the 410; the failing one is kept (it may answer next time).
    assert stored_ids(alice) == ["conn-2="]
    assert_invariants(aws, max_connections=BOUND)
