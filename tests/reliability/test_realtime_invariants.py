"""The invariant checker's WebSocket connection rules: connections made through the app's connect handler, then
corrupted one way at a time. Each rule must fire for its corruption and nothing else, expired items must not be
violations, and what an account deletion leaves (or used to leave) must be told apart.

The other rules' own tests are in test_invariants.py; this module only adds the connection rules'.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import keys
from chalicelib.realtime.connections import CONNECTION_TTL_SECONDS
from chalicelib.users.deletion import DynamoAccountRepository
from ops import invariants
from tests.integration.conftest import BUCKET, TABLE, User
from tests.integration.test_realtime import (  # noqa: F401 - fixtures re-exported
    FakeManagementApi,
    connected,
    management,
    realtime_env,
)
from tests.reliability.support import aws_clients, create_profile
from tests.support.realtime import ws_event

pytestmark = pytest.mark.suite("invariants")

RULES = {"ws-connection-pair-mismatch", "ws-connection-orphan", "ws-connection-ttl", "ws-connections-over-limit"}
MAX = 10  # PHOTOSKY_WS_MAX_CONNECTIONS' default, which check() assumes


class Connections:
    """alice (a profile) with two connections, bob (a profile) with one, carol (signed in, nothing written) with
    one: every connection made and stored by the connect handler."""

    def __init__(self, aws: boto3.session.Session, api: Client, alice: User, bob: User, carol: User) -> None:
        self.dynamodb, self.s3 = aws_clients(aws)
        self.api = api
        create_profile(alice, "Alice")
        create_profile(bob, "Bob")
        self.alice, self.bob, self.carol = alice.sub, bob.sub, carol.sub
        self.alices = connected(api, alice, 2)
        (self.bobs,) = connected(api, bob)
        (self.carols,) = connected(api, carol)
        self.clean = {(i["PK"]["S"], i["SK"]["S"]): i for i in self._scan()}

    def _scan(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]  # type: ignore[no-any-return]

    def check(self, **options: Any) -> invariants.Report:
        return invariants.check(self.dynamodb, self.s3, table=TABLE, bucket=BUCKET, **options)

    def forward(self, user_id: str, connection_id: str) -> dict[str, Any]:
        return self.clean[(keys.user_pk(user_id), f"{keys.WS_PREFIX}{connection_id}")]

    def owner(self, connection_id: str) -> dict[str, Any]:
        return self.clean[(f"{keys.WS_PREFIX}{connection_id}", keys.WS_SK)]

    def put(self, item: dict[str, Any]) -> None:
        self.dynamodb.put_item(TableName=TABLE, Item=item)

    def delete(self, key: dict[str, Any]) -> None:
        self.dynamodb.delete_item(TableName=TABLE, Key=key)

    def put_pair(self, user_id: str, connection_id: str, *, connected_at: int, expires: int) -> None:
        """Both items of a connection, as the connect handler writes them."""
        self.put(
            {
                **keys.connection_key(user_id, connection_id),
                "entity": {"S": "ws_connection"},
                "connection_id": {"S": connection_id},
                "connected_at": {"N": str(connected_at)},
                "expires_at_epoch": {"N": str(expires)},
            }
        )
        self.put(
            {
                **keys.connection_owner_key(connection_id),
                "entity": {"S": "ws_connection_owner"},
                "user_id": {"S": user_id},
                "expires_at_epoch": {"N": str(expires)},
            }
        )

    def expired(self, user_id: str, connection_id: str, *, expires: int) -> None:
        """A connection API Gateway closed and TTL has not yet removed: both items, expiring at `expires`."""
        self.put_pair(user_id, connection_id, connected_at=(expires - 600) * 1000, expires=expires)

    def restore(self) -> None:
        current = {(i["PK"]["S"], i["SK"]["S"]): i for i in self._scan()}
        for pk, sk in set(current) - set(self.clean):
            self.delete({"PK": {"S": pk}, "SK": {"S": sk}})
        for key, item in self.clean.items():
            if current.get(key) != item:
                self.put(item)


@pytest.fixture
def scene(
    aws: boto3.session.Session,
    api: Client,
    alice: User,
    bob: User,
    carol: User,
    management: FakeManagementApi,  # noqa: F811 - the imported fixture
) -> Connections:
    return Connections(aws, api, alice, bob, carol)


def rules(report: invariants.Report) -> list[str]:
    return sorted(v.rule for v in report.violations)


def without(item: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name not in names}


def test_connections_made_and_ended_by_the_app_pass_every_invariant(scene: Connections) -> None:
    report = scene.check()
    assert report.ok, [str(v) for v in report.violations]
    assert report.users == 3  # carol, with nothing but a connection, is a user too
    gone = scene.api.lambda_.invoke("websocket_disconnect", ws_event(scene.alices[0], "$disconnect")).payload
    assert gone == {"statusCode": 200}
    report = scene.check()
    assert report.ok, [str(v) for v in report.violations]


def _one_too_many(s: Connections) -> None:
    now = int(time.time())
    for n in range(MAX - len(s.alices) + 1):
        s.put_pair(s.alice, f"extra-{n:02d}=", connected_at=now * 1000, expires=now + CONNECTION_TTL_SECONDS)


def _without_ttl(s: Connections) -> None:
    s.put(without(s.forward(s.bob, s.bobs), "expires_at_epoch"))
    s.put(without(s.owner(s.bobs), "expires_at_epoch"))


# Each corruption: (the rule it must trip, how to do it to the scene).
CORRUPTIONS: dict[str, tuple[str, Callable[[Connections], None]]] = {
    "connection-without-its-owner-item": (
        "ws-connection-pair-mismatch",
        lambda s: s.delete(keys.connection_owner_key(s.alices[0])),
    ),
    "owner-item-without-its-connection-of-a-user-who-holds-things": (
        "ws-connection-pair-mismatch",
        lambda s: s.delete(keys.connection_key(s.alice, s.alices[1])),
    ),
    "owner-item-naming-another-user": (
        "ws-connection-pair-mismatch",
        lambda s: s.put({**s.owner(s.alices[0]), "user_id": {"S": s.bob}}),
    ),
    "owner-item-expiring-at-another-time": (
        "ws-connection-pair-mismatch",
        lambda s: s.put(
            {**s.owner(s.bobs), "expires_at_epoch": {"N": str(int(s.owner(s.bobs)["expires_at_epoch"]["N"]) - 1)}}
        ),
    ),
    # What the account deletion left before it forgot connections: the user's partition emptied, the owner item not.
    "owner-item-of-a-user-who-holds-nothing-else": (
        "ws-connection-orphan",
        lambda s: s.delete(keys.connection_key(s.carol, s.carols)),
    ),
    "a-pair-without-a-ttl": ("ws-connection-ttl", _without_ttl),
    "a-pair-living-past-api-gateways-limit": (
        "ws-connection-ttl",
        lambda s: s.put_pair(
            s.bob,
            s.bobs,
            connected_at=int(s.forward(s.bob, s.bobs)["connected_at"]["N"]),
            expires=int(s.forward(s.bob, s.bobs)["connected_at"]["N"]) // 1000 + CONNECTION_TTL_SECONDS + 1,
        ),
    ),
    "one-connection-more-than-the-bound": ("ws-connections-over-limit", _one_too_many),
    "connection-item-without-connected-at": (
        "unparseable-item",
        lambda s: s.put(without(s.forward(s.alice, s.alices[0]), "connected_at")),
    ),
    "connection-item-naming-another-connection": (
        "unparseable-item",
        lambda s: s.put({**s.forward(s.alice, s.alices[0]), "connection_id": {"S": s.bobs}}),
    ),
    "owner-item-of-another-entity": (
        "unparseable-item",
        lambda s: s.put({**s.owner(s.alices[0]), "entity": {"S": "album"}}),
    ),
    "owner-item-with-a-ttl-that-is-no-number": (
        "unparseable-item",
        lambda s: s.put({**s.owner(s.alices[0]), "expires_at_epoch": {"S": "soon"}}),
    ),
    "connection-partition-with-an-unknown-sort-key": (
        "unparseable-item",
        lambda s: s.put({"PK": {"S": f"{keys.WS_PREFIX}{s.bobs}"}, "SK": {"S": "SETTINGS"}}),
    ),
}


def test_each_connection_corruption_trips_exactly_its_rule_and_restoring_clears_it(
    scene: Connections, subtests: Any
) -> None:
    for name, (rule, corrupt) in CORRUPTIONS.items():
        with subtests.test(corruption=name, rule=rule):
            corrupt(scene)
            try:
                report = scene.check()
                # An owner item naming someone else is two halves without their pair: one rule, twice.
                assert set(rules(report)) == {rule}, [str(v) for v in report.violations]
                assert "\n" not in str(report.violations[0])
            finally:
                scene.restore()
            restored = scene.check()
            assert restored.ok, [str(v) for v in restored.violations]


def test_every_connection_rule_has_a_corruption_and_is_documented() -> None:
    assert {rule for rule, _ in CORRUPTIONS.values()} >= RULES
    for rule in sorted(RULES):
        assert f"``{rule}``" in (invariants.__doc__ or ""), rule


def test_expired_items_are_not_violations_even_alone_or_beyond_the_bound(scene: Connections) -> None:
    """TTL removes expired items within days, each on its own: any of them may still be there, with or without
    its pair, and they do not count against the bound (a push leaves them out too)."""
    expires = int(time.time()) - 60
    for n in range(MAX):
        scene.expired(scene.alice, f"closed-{n:02d}=", expires=expires)
    scene.expired(scene.bob, "half-gone=", expires=expires)
    scene.delete(keys.connection_owner_key("half-gone="))
    scene.expired(scene.carol, "other-half=", expires=expires)
    scene.delete(keys.connection_key(scene.carol, "other-half="))
    report = scene.check()
    assert report.ok, [str(v) for v in report.violations]
    # The same items a second before their time are live: too many of alice's, and two halves.
    live = scene.check(now=datetime.fromtimestamp(expires - 1, UTC))
    assert sorted((v.rule, v.subject) for v in live.violations) == [
        ("ws-connection-orphan", f"{keys.WS_PREFIX}other-half=/{keys.WS_SK}"),
        ("ws-connection-pair-mismatch", f"{keys.user_pk(scene.bob)}/{keys.WS_PREFIX}half-gone="),
        ("ws-connections-over-limit", scene.alice),
    ]


def test_the_bound_is_the_one_given(scene: Connections) -> None:
    assert rules(scene.check(max_connections=2)) == []
    report = scene.check(max_connections=1)
    assert [(v.rule, v.subject) for v in report.violations] == [("ws-connections-over-limit", scene.alice)]
    assert invariants.main(["--table", TABLE, "--bucket", BUCKET, "--ws-max-connections", "1"]) == 1
    assert invariants.main(["--table", TABLE, "--bucket", BUCKET, "--ws-max-connections", "2"]) == 0


def test_an_account_being_deleted_keeps_its_connections_and_a_finished_one_leaves_none_behind(
    scene: Connections,
) -> None:
    """While the deletion runs, alice's connections are no violation (its last step forgets them); the state the
    deletion left before it did (her partition emptied, the owner items not) is an orphan each; remains_of names
    them."""
    repository = DynamoAccountRepository(scene.dynamodb, TABLE)
    repository.begin(scene.alice, since=datetime.now(UTC).isoformat())
    report = scene.check()
    assert report.ok, [str(v) for v in report.violations]
    repository.remove(
        [keys.connection_key(scene.alice, connection_id) for connection_id in scene.alices]
        + repository.leftover_keys(scene.alice)
    )
    repository.finish(scene.alice)
    report = scene.check()
    assert sorted((v.rule, v.subject) for v in report.violations) == [
        ("ws-connection-orphan", f"{keys.WS_PREFIX}{connection_id}/{keys.WS_SK}")
        for connection_id in sorted(scene.alices)
    ]
    left = invariants.remains_of(scene.dynamodb, scene.s3, table=TABLE, bucket=BUCKET, user_id=scene.alice)
    assert sorted(left) == [
        f"item {keys.WS_PREFIX}{connection_id}/{keys.WS_SK} (its user_id)" for connection_id in sorted(scene.alices)
    ]
