"""The WebSocket connections each user holds, in the single table (the keys and access patterns: chalicelib/keys.py).

A connection is two items written and deleted together: one in its user's partition, so a push finds every
connection of one user with a single Query, and one under its own id, so `$disconnect` (which arrives with the
connection id only) finds the user. Both carry the table's TTL attribute: API Gateway closes a connection after
2 hours, and TTL removes the items of any whose `$disconnect` never arrived.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import errors, keys
from chalicelib.aws import dependency_errors, query_all, transact

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# API Gateway's limit on a connection's life is 2 hours; ten minutes more, so TTL never removes a live one.
CONNECTION_TTL_SECONDS = 2 * 3600 + 600
# The table's TTL attribute (devstack/resources.py, infra/resources.yaml): epoch seconds.
TTL_ATTRIBUTE = "expires_at_epoch"


@dataclass(frozen=True)
class Connection:
    connection_id: str
    connected_at: int  # epoch milliseconds: orders a user's connections, oldest first


class DynamoConnections:
    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        max_per_user: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table
        self._max_per_user = max_per_user
        self._clock = clock

    def add(self, user_id: str, connection_id: str) -> list[str]:
        """Store a new connection of `user_id`. If that makes more than the bound, the oldest beyond it are
        forgotten here and their ids returned: the caller closes them. If any of this fails (Unavailable), the new
        connection's own pair is removed too (best effort) before the error goes on: a refused connect leaves nothing
        counted against the bound or pushed to.

        The bound is checked after the write, on a strongly consistent read, with a fixed order (oldest first, ties
        by id): two connects racing both see every connection and evict the same ones, never too few."""
        now = self._clock()
        connected_at = int(now * 1000)
        expires = {"N": str(int(now) + CONNECTION_TTL_SECONDS)}
        transact(
            self._client,
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **keys.connection_key(user_id, connection_id),
                            "entity": {"S": "ws_connection"},
                            "connection_id": {"S": connection_id},
                            "connected_at": {"N": str(connected_at)},
                            TTL_ATTRIBUTE: expires,
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **keys.connection_owner_key(connection_id),
                            "entity": {"S": "ws_connection_owner"},
                            "user_id": {"S": user_id},
                            TTL_ATTRIBUTE: expires,
                        },
                    }
                },
            ],
        )
        try:
            live = self._of_user(user_id, consistent=True)
            excess = len(live) - self._max_per_user
            if excess <= 0:
                return []
            oldest = [c.connection_id for c in live if c.connection_id != connection_id][:excess]
            for old in oldest:
                self.forget(user_id, old)
        except errors.Unavailable:
            with contextlib.suppress(errors.Unavailable):
                self.forget(user_id, connection_id)
            raise
        return oldest

    def of_user(self, user_id: str) -> list[Connection]:
        """The user's open connections, oldest first: one Query of their partition (eventually consistent: a push
        may miss a connection made in the last instant; its client refetches on connect anyway)."""
        return self._of_user(user_id, consistent=False)

    def _of_user(self, user_id: str, *, consistent: bool) -> list[Connection]:
        found = query_all(
            self._client,
            {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :ws)",
                "ExpressionAttributeValues": {":pk": {"S": keys.user_pk(user_id)}, ":ws": {"S": keys.WS_PREFIX}},
                "ConsistentRead": consistent,
            },
        )
        now = int(self._clock())
        # TTL deletes expired items within days, not at once: one past its time is a connection API Gateway closed.
        live = [_connection(item) for item in found if int(item[TTL_ATTRIBUTE]["N"]) > now]
        return sorted(live, key=lambda c: (c.connected_at, c.connection_id))

    def owner(self, connection_id: str) -> str | None:
        """Whose connection this is; None if it is not (or no longer) stored."""
        with dependency_errors("DynamoDB"):
            item = self._client.get_item(
                TableName=self._table, Key=keys.connection_owner_key(connection_id), ConsistentRead=True
            ).get("Item")
        return _user_of(item)

    def remove(self, connection_id: str) -> str | None:
        """Forget a connection known by its id only (`$disconnect`); whose it was, or None if it was not stored."""
        user_id = self.owner(connection_id)
        if user_id is not None:
            self.forget(user_id, connection_id)
        return user_id

    def forget(self, user_id: str, connection_id: str) -> None:
        """Delete both of a connection's items (deleting what is already gone is no error)."""
        transact(
            self._client,
            [
                {"Delete": {"TableName": self._table, "Key": keys.connection_key(user_id, connection_id)}},
                {"Delete": {"TableName": self._table, "Key": keys.connection_owner_key(connection_id)}},
            ],
        )


def _connection(item: dict[str, Any]) -> Connection:
    return Connection(connection_id=item["connection_id"]["S"], connected_at=int(item["connected_at"]["N"]))


def _user_of(item: dict[str, Any] | None) -> str | None:
    if item is None:
        return None
    return str(item["user_id"]["S"])
