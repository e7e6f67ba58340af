"""DynamoDB adapter for profiles and usage counters (low-level client: cheaper to create on a cold start)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib import errors, keys
from chalicelib.aws import batch_get, dependency_errors, error_code
from chalicelib.users.models import Profile, ProfileChanges, Usage

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]


def _profile_to_item(profile: Profile) -> Item:
    item: Item = {
        **keys.profile_key(profile.user_id),
        "entity": {"S": "profile"},
        "user_id": {"S": profile.user_id},
        "display_name": {"S": profile.display_name},
        "created_at": {"S": profile.created_at},
        "updated_at": {"S": profile.updated_at},
    }
    if profile.bio is not None:
        item["bio"] = {"S": profile.bio}
    return item


def _profile_from_item(item: Item) -> Profile:
    return Profile(
        user_id=item["user_id"]["S"],
        display_name=item["display_name"]["S"],
        bio=item["bio"]["S"] if "bio" in item else None,
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
    )


def _usage_from_item(item: Item | None) -> Usage:
    if not item:
        return Usage()
    return Usage(
        photos=int(item.get("photos", {}).get("N", "0")),
        bytes=int(item.get("bytes", {}).get("N", "0")),
        pending=int(item.get("pending", {}).get("N", "0")),
        trash_photos=int(item.get("trash_photos", {}).get("N", "0")),
        trash_bytes=int(item.get("trash_bytes", {}).get("N", "0")),
    )


class DynamoUserRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def add(self, profile: Profile) -> None:
        try:
            with dependency_errors("DynamoDB"):
                self._client.put_item(
                    TableName=self._table,
                    Item=_profile_to_item(profile),
                    ConditionExpression="attribute_not_exists(PK)",
                )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise errors.Conflict("a profile already exists for this user") from e
            raise

    def get(self, user_id: str) -> Profile | None:
        with dependency_errors("DynamoDB"):
            item = self._client.get_item(TableName=self._table, Key=keys.profile_key(user_id)).get("Item")
        return _profile_from_item(item) if item else None

    def get_usage(self, user_id: str) -> Usage:
        with dependency_errors("DynamoDB"):
            item = self._client.get_item(TableName=self._table, Key=keys.usage_key(user_id), ConsistentRead=True)
        return _usage_from_item(item.get("Item"))

    def get_with_usage(self, user_id: str) -> tuple[Profile | None, Usage]:
        """The profile and its usage counters in one round trip, read consistently (the owner just wrote them)."""
        wanted: list[Any] = [keys.profile_key(user_id), keys.usage_key(user_id)]
        by_sort_key = {item["SK"]["S"]: item for item in batch_get(self._client, self._table, wanted, consistent=True)}
        profile_item = by_sort_key.get(keys.PROFILE_SK)
        return (_profile_from_item(profile_item) if profile_item else None), _usage_from_item(
            by_sort_key.get(keys.USAGE_SK)
        )

    def display_names(self, user_ids: Sequence[str]) -> dict[str, str]:
        """The display name of each of the users who has a profile (one BatchGetItem per 100)."""
        wanted: list[Any] = [keys.profile_key(user_id) for user_id in dict.fromkeys(user_ids)]
        found = batch_get(self._client, self._table, wanted, consistent=False)
        return {item["user_id"]["S"]: item["display_name"]["S"] for item in found}

    def update(self, user_id: str, changes: ProfileChanges, updated_at: str) -> Profile | None:
        """Apply a partial update to an existing profile; None if there is no profile."""
        sets = ["updated_at = :updated_at"]
        values: Item = {":updated_at": {"S": updated_at}}
        removes = []
        if changes.display_name is not None:
            sets.append("display_name = :display_name")
            values[":display_name"] = {"S": changes.display_name}
        if changes.bio_set:
            if changes.bio is None:
                removes.append("bio")
            else:
                sets.append("bio = :bio")
                values[":bio"] = {"S": changes.bio}
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            with dependency_errors("DynamoDB"):
                response = self._client.update_item(
                    TableName=self._table,
                    Key=keys.profile_key(user_id),
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(PK)",
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return None
            raise
        return _profile_from_item(response["Attributes"])
