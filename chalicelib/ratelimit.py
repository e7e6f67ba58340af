"""Per-user write rate limit, counted in the table so it holds across every Lambda container.

Why here and not in API Gateway or WAF: stage throttling is one bucket shared by every caller, so one abuser
throttles everyone. WAF rate-based rules can aggregate on a header, but the only per-user header is the ID token,
which changes at every sign-in and refresh (a script that signs in again gets a fresh budget); they cannot read the
token's `sub`, cannot be tried offline, and cost a monthly fee per web ACL and rule. A counter keyed on the
verified `sub` is exact, testable on the dev stack, and costs one small conditional write per limited request
(about $0.63 per million in on-demand mode) on requests that write anyway.

The window is fixed (a counter per user per window, removed by TTL): one UpdateItem, exact under concurrency. Its
known weakness, up to twice the limit across a window boundary, is acceptable for abuse control.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from chalicelib import errors, keys
from chalicelib.aws import dependency_errors, error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A window's counter outlives the window by this much before TTL removes it (TTL is not punctual anyway).
_COUNTER_LINGER_SECONDS = 3600


class RateCounter(Protocol):
    def increment_below(self, user_id: str, window_start: int, *, limit: int, expires_at: int) -> bool:
        """Count one request in the user's window if fewer than `limit` are counted; False if the limit is hit."""
        ...


class WriteRateLimiter:
    def __init__(
        self, counter: RateCounter, *, limit: int, window_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._counter = counter
        self._limit = limit
        self._window = window_seconds
        self._clock = clock

    def spend(self, user_id: str) -> None:
        """Count one write of the user's, or raise RateLimited saying when the next one is allowed."""
        now = self._clock()
        window_start = int(now // self._window) * self._window
        window_end = window_start + self._window
        counted = self._counter.increment_below(
            user_id, window_start, limit=self._limit, expires_at=window_end + _COUNTER_LINGER_SECONDS
        )
        if not counted:
            wait = max(1, math.ceil(window_end - now))
            raise errors.RateLimited(
                f"too many changes: at most {self._limit} every {self._window} seconds; retry in {wait} s",
                retry_after=wait,
            )


class DynamoRateCounter:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def increment_below(self, user_id: str, window_start: int, *, limit: int, expires_at: int) -> bool:
        try:
            with dependency_errors("DynamoDB"):
                self._client.update_item(
                    TableName=self._table,
                    Key=keys.rate_key(user_id, window_start),
                    UpdateExpression="SET entity = :entity, expires_at_epoch = :expires ADD #count :one",
                    ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                    ExpressionAttributeNames={"#count": "count"},
                    ExpressionAttributeValues={
                        ":entity": {"S": "rate"},
                        ":expires": {"N": str(expires_at)},
                        ":one": {"N": "1"},
                        ":limit": {"N": str(limit)},
                    },
                )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False
            raise
        return True
