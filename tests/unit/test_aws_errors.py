from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from chalicelib import errors
from chalicelib.aws import dependency_errors


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    "failure",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("RequestLimitExceeded"),
        client_error("SlowDown", 503),
        client_error("InternalError", 500),
        client_error("SomethingNew", 502),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    ],
    ids=["throughput", "throttling", "request-limit", "s3-slowdown", "internal", "any-5xx", "unreachable", "timeout"],
)
def test_transient_failures_become_unavailable(failure: Exception) -> None:
    with pytest.raises(errors.Unavailable) as caught, dependency_errors("DynamoDB"):
        raise failure
    assert caught.value.__cause__ is failure
    assert "DynamoDB" in str(caught.value)


@pytest.mark.parametrize("code", ["ConditionalCheckFailedException", "ValidationException", "AccessDenied"])
def test_client_mistakes_and_bugs_pass_through_unchanged(code: str) -> None:
    failure = client_error(code)
    with pytest.raises(ClientError) as caught, dependency_errors("DynamoDB"):
        raise failure
    assert caught.value is failure
