"""Deleting an account: everything of the user's goes (profile, usage, photos and their objects, albums they own,
their memberships, share links, trash, open WebSocket connections), and nothing of anyone else's (their photos simply
leave other people's albums).

A library can be far larger than one request can delete, so the work is marked first and then done in steps that
are each safe to repeat: the request does what its time budget allows and says whether it finished; a retried
request, or the scheduled job, carries on from wherever it stopped. The mark blocks new uploads at once (the quota
reservation, which every upload writes, is conditioned on it), and the mark and the usage counters go last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib import errors, keys
from chalicelib.aws import dependency_errors, query_all, query_index_partitions, transact
from chalicelib.clock import iso_utc
from chalicelib.photos.models import Photo
from chalicelib.photos.repository import photo_from_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

Item = dict[str, Any]
# BatchWriteItem takes at most this many requests; what DynamoDB leaves unprocessed is sent again this many times.
_BATCH_WRITE_MAX = 25
_BATCH_WRITE_ATTEMPTS = 5
# Photos read (and deleted) per round.
_PHOTOS_PER_ROUND = 100
# The TTL attribute the connection items carry (chalicelib/realtime/connections.py): epoch seconds.
_TTL_ATTRIBUTE = "expires_at_epoch"


@dataclass(frozen=True)
class StoredConnection:
    """One of the user's WebSocket connections as stored: its id and when its items expire (epoch seconds)."""

    connection_id: str
    expires_at: int | None  # None: no TTL (it would never expire), so taken as open


class DynamoAccountRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def begin(self, user_id: str, *, since: str) -> None:
        """Mark the account as being deleted (idempotent: a later call keeps the first mark), block its uploads and
        remove its profile, so it is gone to everyone at once."""
        shard = keys.cleanup_shard(user_id)
        writes: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        **keys.account_deletion_key(user_id),
                        "entity": {"S": "account_deletion"},
                        "user_id": {"S": user_id},
                        "since": {"S": since},
                        "GSI1PK": {"S": keys.cleanup_index_pk(shard)},
                        "GSI1SK": {"S": keys.cleanup_index_sk(since, user_id, keys.ACCOUNT_WHAT)},
                    },
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.usage_key(user_id),
                    "UpdateExpression": "SET entity = :usage, deleting_since = if_not_exists(deleting_since, :since)",
                    "ExpressionAttributeValues": {":usage": {"S": "usage"}, ":since": {"S": since}},
                }
            },
            {"Delete": {"TableName": self._table, "Key": keys.profile_key(user_id)}},
        ]
        # Already marked (a retry, or the scheduled job): the first mark stands, and the work goes on.
        transact(self._client, writes)

    def photos(self, user_id: str, *, limit: int) -> list[Photo]:
        """Up to `limit` of the user's photos, whatever their state (trashed ones too)."""
        with dependency_errors("DynamoDB"):
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :photos)",
                ExpressionAttributeValues={":pk": {"S": keys.user_pk(user_id)}, ":photos": {"S": keys.PHOTO_PREFIX}},
                ConsistentRead=True,
                Limit=limit,
            )
        return [photo_from_item(item) for item in response.get("Items", [])]

    def connections(self, user_id: str) -> list[StoredConnection]:
        """Every WebSocket connection stored in the user's partition, expired ones too (TTL removes those late)."""
        found = query_all(
            self._client,
            {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :ws)",
                "ExpressionAttributeValues": {":pk": {"S": keys.user_pk(user_id)}, ":ws": {"S": keys.WS_PREFIX}},
                "ProjectionExpression": "SK, #ttl",
                "ExpressionAttributeNames": {"#ttl": _TTL_ATTRIBUTE},
                "ConsistentRead": True,
            },
        )
        return [_stored_connection(item) for item in found]

    def forget_connection(self, user_id: str, connection_id: str) -> None:
        """Delete both of a connection's items in one transaction (the pair is never split; gone ones are no error)."""
        transact(
            self._client,
            [
                {"Delete": {"TableName": self._table, "Key": keys.connection_key(user_id, connection_id)}},
                {"Delete": {"TableName": self._table, "Key": keys.connection_owner_key(connection_id)}},
            ],
        )

    def leftover_keys(self, user_id: str) -> list[Item]:
        """The keys of every item still in the user's partition but the mark, the usage counters and connections
        (a connection's two items only ever go together: `forget_connection`)."""
        found = query_all(
            self._client,
            {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": keys.user_pk(user_id)}},
                "ProjectionExpression": "PK, SK",
                "ConsistentRead": True,
            },
        )
        last = {keys.ACCOUNT_DELETION_SK, keys.USAGE_SK}
        return [item for item in found if item["SK"]["S"] not in last and not _is_connection(item)]

    def remove(self, item_keys: Sequence[Item]) -> None:
        """Delete the items, 25 per BatchWriteItem, sending again what DynamoDB leaves unprocessed."""
        for start in range(0, len(item_keys), _BATCH_WRITE_MAX):
            requests: Any = {
                self._table: [{"DeleteRequest": {"Key": key}} for key in item_keys[start : start + _BATCH_WRITE_MAX]]
            }
            for _ in range(_BATCH_WRITE_ATTEMPTS):
                with dependency_errors("DynamoDB"):
                    response = self._client.batch_write_item(RequestItems=requests)
                requests = response.get("UnprocessedItems") or {}
                if not requests:
                    break
            else:
                raise errors.Unavailable("DynamoDB is busy; retry shortly")

    def finish(self, user_id: str) -> None:
        """The last step: the mark and the usage counters go together."""
        transact(
            self._client,
            [
                {"Delete": {"TableName": self._table, "Key": keys.account_deletion_key(user_id)}},
                {"Delete": {"TableName": self._table, "Key": keys.usage_key(user_id)}},
            ],
        )

    def is_marked(self, user_id: str) -> bool:
        with dependency_errors("DynamoDB"):
            item = self._client.get_item(
                TableName=self._table, Key=keys.account_deletion_key(user_id), ConsistentRead=True
            ).get("Item")
        return item is not None

    def marked(self) -> list[str]:
        """Every account whose deletion has begun and not finished."""
        shards = [keys.cleanup_index_pk(shard) for shard in range(keys.CLEANUP_SHARDS)]
        found = query_index_partitions(self._client, self._table, keys.GSI1, shards)
        # The index also holds album clean-ups: an account's entry ends in its own mark.
        return [
            item["GSI1SK"]["S"].rsplit("#", 2)[1]
            for item in found
            if item["GSI1SK"]["S"].endswith(f"#{keys.ACCOUNT_WHAT}")
        ]


def _is_connection(item: Item) -> bool:
    return bool(item["SK"]["S"].startswith(keys.WS_PREFIX))


def _stored_connection(item: Item) -> StoredConnection:
    expires = item.get(_TTL_ATTRIBUTE)
    return StoredConnection(item["SK"]["S"].removeprefix(keys.WS_PREFIX), int(expires["N"]) if expires else None)


class AccountRepository(Protocol):
    def begin(self, user_id: str, *, since: str) -> None: ...
    def photos(self, user_id: str, *, limit: int) -> list[Photo]: ...
    def connections(self, user_id: str) -> list[StoredConnection]: ...
    def forget_connection(self, user_id: str, connection_id: str) -> None: ...
    def leftover_keys(self, user_id: str) -> list[Item]: ...
    def remove(self, item_keys: Sequence[Item]) -> None: ...
    def finish(self, user_id: str) -> None: ...
    def marked(self) -> list[str]: ...


class PhotoDeleter(Protocol):
    def delete(self, photo: Photo) -> bool: ...


class AlbumLeaver(Protocol):
    def forget_user(self, user_id: str) -> None: ...


class ObjectStore(Protocol):
    def keys_under(self, prefix: str, *, limit: int = 1000) -> list[str]: ...
    def delete(self, *object_keys: str) -> None: ...


class SocketCloser(Protocol):
    """Closes a WebSocket connection through API Gateway's management API (chalicelib/realtime/notifier.py); one
    already gone is closed already, and a failure is logged, never raised."""

    def close(self, connection_id: str) -> None: ...


class AccountDeletion:
    def __init__(
        self,
        repository: AccountRepository,
        photos: PhotoDeleter,
        albums: AlbumLeaver,
        storage: ObjectStore,
        *,
        clock: Callable[[], datetime],
        sockets: SocketCloser | None = None,
    ) -> None:
        self._repository = repository
        self._photos = photos
        self._albums = albums
        self._storage = storage
        self._clock = clock
        # None: the sockets are not closed, only forgotten (nothing is pushed to them again; API Gateway closes
        # them within 2 hours).
        self._sockets = sockets

    def delete(self, user_id: str, *, out_of_time: Callable[[], bool]) -> bool:
        """Delete everything of the user's; True when nothing is left, False when time ran out first (the work is
        marked, and a retry or the scheduled job goes on from here)."""
        self._repository.begin(user_id, since=iso_utc(self._clock()))
        return self._carry_on(user_id, out_of_time)

    def finish_left_behind(self, *, out_of_time: Callable[[], bool]) -> dict[str, int]:
        """The scheduled job: carry on with every deletion a request did not finish."""
        counts = {"accounts_deleted": 0, "left_for_next_run": 0}
        for user_id in self._repository.marked():
            if out_of_time() or not self._carry_on(user_id, out_of_time):
                counts["left_for_next_run"] += 1
            else:
                counts["accounts_deleted"] += 1
        return counts

    def _carry_on(self, user_id: str, out_of_time: Callable[[], bool]) -> bool:
        # Albums first: the ones the user owns go (members' and visitors' access with them), and the user leaves
        # the others, taking their photos out of them.
        self._albums.forget_user(user_id)
        # Photos, each leaving whatever album still holds it and releasing what it counted, as a permanent delete.
        while photos := self._repository.photos(user_id, limit=_PHOTOS_PER_ROUND):
            deleted = 0
            for photo in photos:
                if out_of_time():
                    return False
                deleted += self._photos.delete(photo)
            if not deleted:
                return False  # every one changed under us (the worker settling them): the next attempt reads again
        # Objects: everything under the user's prefixes, including what a failed step left behind.
        for prefix in keys.user_object_prefixes(user_id):
            while object_keys := self._storage.keys_under(prefix):
                if out_of_time():
                    return False
                self._storage.delete(*object_keys)
        if not self._close_connections(user_id, out_of_time):
            return False
        # Every other item of the partition (tag and album copies left by a crash, hash claims, month counters,
        # album access entries, rate-limit counters), then the mark and the usage counters.
        self._repository.remove(self._repository.leftover_keys(user_id))
        self._repository.finish(user_id)
        log.info("account %s deleted", user_id)
        return True

    def _close_connections(self, user_id: str, out_of_time: Callable[[], bool]) -> bool:
        """Close each open socket and forget both items of every connection; False if time ran out first.

        Last of the steps, so a client that reconnected during a long deletion is closed too. The socket is closed
        before its items go: a crash in between leaves the items, and the retry closes it again (gone is fine). A
        connection past its TTL was closed by API Gateway already: its items go without a call to the endpoint."""
        now = self._clock().timestamp()
        for connection in self._repository.connections(user_id):
            if out_of_time():
                return False
            expired = connection.expires_at is not None and connection.expires_at <= now
            if self._sockets is not None and not expired:
                self._sockets.close(connection.connection_id)
            self._repository.forget_connection(user_id, connection.connection_id)
        return True
