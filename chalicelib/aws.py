"""Shared rules for talking to AWS: which failures are the dependency's fault and worth a retry.

Adapters wrap their calls in `dependency_errors` so throttling and outages surface as `errors.Unavailable`
(503 with Retry-After) instead of a 500; other ClientErrors are bugs and propagate unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from chalicelib import errors

# Error codes AWS documents as transient: the request may succeed if retried later.
RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "TransactionInProgressException",
    }
)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def dependency_errors(service: str) -> Iterator[None]:
    try:
        yield
    except ClientError as e:
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if error_code(e) in RETRYABLE_ERROR_CODES or status >= 500:
            raise errors.Unavailable(f"{service} is busy; retry shortly") from e
        raise
    except (ConnectionError, HTTPClientError) as e:
        # Covers connect/read timeouts and dropped connections once botocore's own retries are spent.
        raise errors.Unavailable(f"{service} is unreachable; retry shortly") from e


# --- DynamoDB calls every repository makes the same way --------------------------------------------------------------

# Cancellation reasons DynamoDB gives for an item it throttled, as opposed to a condition that did not hold.
_THROTTLED_ITEM_CODES = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})
# BatchGetItem may leave keys unprocessed under load; ask again this many times before a 503.
_BATCH_GET_ATTEMPTS = 4
BATCH_GET_MAX = 100


def cancellation_codes(error: ClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons", [])
    return [str(reason.get("Code", "None")) for reason in reasons]


def transact(client: Any, writes: list[Any]) -> list[str]:
    """Run a write transaction; [] if it committed, else the per-item cancellation codes (conditions that failed).

    A clash with another transaction in flight, or a throttled item, is transient: 503, the client retries.
    """
    try:
        with dependency_errors("DynamoDB"):
            client.transact_write_items(TransactItems=writes)
    except ClientError as e:
        if error_code(e) != "TransactionCanceledException":
            raise
        codes = cancellation_codes(e)
        if "TransactionConflict" in codes:
            raise errors.Unavailable("another change to the same items is in progress; retry") from e
        if _THROTTLED_ITEM_CODES.intersection(codes):
            # An item (or one of its indexes) was throttled: the transaction was cancelled before it was applied,
            # and botocore does not retry a cancellation.
            raise errors.Unavailable("DynamoDB is busy; retry shortly") from e
        if "ConditionalCheckFailed" not in codes:
            raise
        return codes
    return []


def batch_get(client: Any, table: str, wanted: list[Any], *, consistent: bool) -> list[dict[str, Any]]:
    """Every item of `wanted` (keys) that exists, in no particular order: BatchGetItem in chunks of 100, asking
    again for what DynamoDB leaves unprocessed."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(wanted), BATCH_GET_MAX):
        request: Any = {table: {"Keys": wanted[start : start + BATCH_GET_MAX], "ConsistentRead": consistent}}
        for attempt in range(_BATCH_GET_ATTEMPTS):
            with dependency_errors("DynamoDB"):
                response = client.batch_get_item(RequestItems=request)
            found.extend(response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.05 * 2**attempt)
        else:
            raise errors.Unavailable("DynamoDB is busy; retry shortly")
    return found


def query_all(client: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item a Query matches, following DynamoDB's pages (1 MB each)."""
    query = dict(query)
    items: list[dict[str, Any]] = []
    while True:
        with dependency_errors("DynamoDB"):
            response = client.query(**query)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def query_index_partitions(
    client: Any, table: str, index: str, partition_keys: list[str], *, before: str | None = None
) -> list[dict[str, Any]]:
    """Every item of `index` under any of `partition_keys` (the shards of one sharded access pattern), with a sort
    key before `before` if given; the index is GSI1-shaped (`<index>PK`, `<index>SK`)."""
    found: list[dict[str, Any]] = []
    for partition_key in partition_keys:
        query: dict[str, Any] = {
            "TableName": table,
            "IndexName": index,
            "KeyConditionExpression": f"{index}PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": partition_key}},
        }
        if before is not None:
            query["KeyConditionExpression"] += f" AND {index}SK < :before"
            query["ExpressionAttributeValues"][":before"] = {"S": before}
        found.extend(query_all(client, query))
    return found


def query_page(client: Any, query: dict[str, Any], start_key: dict[str, Any] | None) -> dict[str, Any]:
    """One page of a listing's Query, continuing from a cursor's key. A start key that does not fit this query
    passed the cursor's signature, so it is ours but from another listing: a 400 naming the cursor, not a 500."""
    if start_key is not None:
        query = {**query, "ExclusiveStartKey": start_key}
    try:
        with dependency_errors("DynamoDB"):
            response: dict[str, Any] = client.query(**query)
    except ClientError as e:
        if error_code(e) == "ValidationException" and start_key is not None:
            raise errors.Invalid("cursor", "does not belong to this listing") from e
        raise
    return response
