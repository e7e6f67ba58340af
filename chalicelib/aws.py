"""Shared rules for talking to AWS: which failures are the dependency's fault and worth a retry.

Adapters wrap their calls in `dependency_errors` so throttling and outages surface as `errors.Unavailable`
(503 with Retry-After) instead of a 500; other ClientErrors are bugs and propagate unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
