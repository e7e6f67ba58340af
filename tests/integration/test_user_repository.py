"""One contract, two implementations: the in-memory fake the unit tests trust and DynamoDB on moto."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import errors, keys
from chalicelib.users.models import Profile, ProfileChanges, Usage
from chalicelib.users.repository import DynamoUserRepository
from tests.integration.conftest import TABLE
from tests.support.fakes import InMemoryUserRepository

ADA = Profile("u-ada", "Ada", "analyst", "2026-11-23T10:00:00.000Z", "2026-11-23T10:00:00.000Z")


@pytest.fixture(params=["fake", "dynamodb"])
def repository(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return InMemoryUserRepository()
    return DynamoUserRepository(request.getfixturevalue("dynamodb"), TABLE)


def test_added_profile_reads_back_equal(repository: Any) -> None:
    repository.add(ADA)
    assert repository.get("u-ada") == ADA


def test_absent_profile_is_none(repository: Any) -> None:
    assert repository.get("nobody") is None
    assert repository.get_with_usage("nobody") == (None, Usage())


def test_adding_twice_is_a_conflict_and_keeps_the_first(repository: Any) -> None:
    repository.add(ADA)
    with pytest.raises(errors.Conflict):
        repository.add(Profile("u-ada", "Mallory", None, "t", "t"))
    assert repository.get("u-ada") == ADA


def test_usage_defaults_to_zero(repository: Any) -> None:
    repository.add(ADA)
    assert repository.get_usage("u-ada") == Usage()
    assert repository.get_with_usage("u-ada") == (ADA, Usage())


def test_update_sets_fields_and_can_remove_the_bio(repository: Any) -> None:
    repository.add(ADA)
    renamed = repository.update("u-ada", ProfileChanges(display_name="Ada L."), "2026-11-23T11:00:00.000Z")
    assert renamed == Profile("u-ada", "Ada L.", "analyst", ADA.created_at, "2026-11-23T11:00:00.000Z")
    cleared = repository.update("u-ada", ProfileChanges(bio=None, bio_set=True), "2026-11-23T12:00:00.000Z")
    assert cleared is not None
    assert cleared.bio is None
    assert repository.get("u-ada") == cleared


def test_update_of_absent_profile_is_none_and_creates_nothing(repository: Any) -> None:
    assert repository.update("nobody", ProfileChanges(display_name="x"), "t") is None
    assert repository.get("nobody") is None


def test_dynamodb_reads_usage_counters_from_their_own_item(dynamodb: Any) -> None:
    repository = DynamoUserRepository(dynamodb, TABLE)
    repository.add(ADA)
    dynamodb.put_item(TableName=TABLE, Item={**keys.usage_key("u-ada"), "photos": {"N": "3"}, "bytes": {"N": "4096"}})
    assert repository.get_with_usage("u-ada") == (ADA, Usage(photos=3, bytes=4096))
    assert repository.get_usage("u-ada") == Usage(photos=3, bytes=4096)


def test_dynamodb_items_carry_the_single_table_keys(dynamodb: Any) -> None:
    DynamoUserRepository(dynamodb, TABLE).add(ADA)
    item = dynamodb.get_item(TableName=TABLE, Key=keys.profile_key("u-ada"))["Item"]
    assert item["PK"] == {"S": "USER#u-ada"}
    assert item["SK"] == {"S": "PROFILE"}
    assert item["entity"] == {"S": "profile"}


def test_dynamodb_retries_unprocessed_keys_then_gives_up_with_unavailable(dynamodb: Any) -> None:
    class StarvedClient:
        """BatchGetItem that never has capacity: every key comes back unprocessed."""

        calls = 0

        def batch_get_item(self, RequestItems: Any) -> Any:
            StarvedClient.calls += 1
            return {"Responses": {}, "UnprocessedKeys": RequestItems}

    with pytest.raises(errors.Unavailable):
        DynamoUserRepository(StarvedClient(), TABLE).get_with_usage("u-ada")  # type: ignore[arg-type]
    assert StarvedClient.calls == 4


def test_dynamodb_returns_keys_processed_on_a_retry(dynamodb: Any) -> None:
    real = DynamoUserRepository(dynamodb, TABLE)
    real.add(ADA)

    class OnceStarvedClient:
        calls = 0

        def batch_get_item(self, RequestItems: Any) -> Any:
            OnceStarvedClient.calls += 1
            if OnceStarvedClient.calls == 1:
                return {"Responses": {}, "UnprocessedKeys": RequestItems}
            return dynamodb.batch_get_item(RequestItems=RequestItems)

    flaky = DynamoUserRepository(OnceStarvedClient(), TABLE)  # type: ignore[arg-type]
    assert flaky.get_with_usage("u-ada") == (ADA, Usage())
