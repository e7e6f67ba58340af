"""DynamoDB adapter for photos: every write of a photo is one transaction over the photo item, its tag copies and,
when usage changes, the owner's usage counters, so the three can never disagree."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib import errors, keys
from chalicelib.aws import dependency_errors, error_code
from chalicelib.photos.models import Photo, PhotoStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]

# DynamoDB TTL removes a PENDING photo (and its tag copies) this long after its upload deadline: a backstop only;
# the reconciler releases abandoned uploads long before.
PENDING_TTL = timedelta(days=7)


def _optional_s(value: str | None) -> dict[str, str] | None:
    return {"S": value} if value is not None else None


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def _photo_attributes(photo: Photo) -> Item:
    attributes: dict[str, Any] = {
        "photo_id": {"S": photo.photo_id},
        "owner_id": {"S": photo.owner_id},
        "status": {"S": photo.status.value},
        "filename": {"S": photo.filename},
        "content_type": {"S": photo.content_type},
        "size_bytes": {"N": str(photo.size_bytes)},
        "created_at": {"S": photo.created_at},
        "updated_at": {"S": photo.updated_at},
        "upload_expires_at": {"S": photo.upload_expires_at},
        "tags": {"L": [{"S": tag} for tag in photo.tags]},
        "version": {"N": str(photo.version)},
        "revision": {"N": str(photo.revision)},
        "title": _optional_s(photo.title),
        "description": _optional_s(photo.description),
        "taken_at": _optional_s(photo.taken_at),
        "rejection_reason": _optional_s(photo.rejection_reason),
        "width": {"N": str(photo.width)} if photo.width is not None else None,
        "height": {"N": str(photo.height)} if photo.height is not None else None,
    }
    if photo.status is PhotoStatus.PENDING:
        attributes["expires_at_epoch"] = {"N": str(_epoch(photo.upload_expires_at) + int(PENDING_TTL.total_seconds()))}
    return {name: value for name, value in attributes.items() if value is not None}


def _photo_item(photo: Photo) -> Item:
    item = {**keys.photo_key(photo.owner_id, photo.photo_id), "entity": {"S": "photo"}, **_photo_attributes(photo)}
    if photo.status is PhotoStatus.PENDING:
        deadline = photo.upload_expires_at
        item["GSI1PK"] = {"S": keys.pending_index_pk(deadline[:13])}
        item["GSI1SK"] = {"S": f"{deadline}#{photo.owner_id}#{photo.photo_id}"}
    return item


def _tag_item(photo: Photo, tag: str) -> Item:
    return {
        **keys.photo_tag_key(photo.owner_id, photo.photo_id, tag),
        "entity": {"S": "photo_tag"},
        "GSI1PK": {"S": keys.tag_index_pk(photo.owner_id, tag)},
        "GSI1SK": {"S": keys.photo_sk(photo.photo_id)},
        **_photo_attributes(photo),
    }


def _optional_int(item: Item, name: str) -> int | None:
    return int(item[name]["N"]) if name in item else None


def _optional_str(item: Item, name: str) -> str | None:
    return item[name]["S"] if name in item else None


def photo_from_item(item: Item) -> Photo:
    return Photo(
        photo_id=item["photo_id"]["S"],
        owner_id=item["owner_id"]["S"],
        status=PhotoStatus(item["status"]["S"]),
        filename=item["filename"]["S"],
        content_type=item["content_type"]["S"],
        size_bytes=int(item["size_bytes"]["N"]),
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        upload_expires_at=item["upload_expires_at"]["S"],
        title=_optional_str(item, "title"),
        description=_optional_str(item, "description"),
        tags=tuple(tag["S"] for tag in item.get("tags", {}).get("L", [])),
        width=_optional_int(item, "width"),
        height=_optional_int(item, "height"),
        taken_at=_optional_str(item, "taken_at"),
        rejection_reason=_optional_str(item, "rejection_reason"),
        version=int(item["version"]["N"]),
        revision=int(item["revision"]["N"]),
    )


# Cancellation reasons DynamoDB gives for an item it throttled, as opposed to a condition that did not hold.
_THROTTLED_ITEM_CODES = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})


def _cancellation_codes(error: ClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons", [])
    return [str(reason.get("Code", "None")) for reason in reasons]


class DynamoPhotoRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # --- reads ---------------------------------------------------------------------------------------------------

    def get(self, owner_id: str, photo_id: str) -> Photo | None:
        with dependency_errors("DynamoDB"):
            response = self._client.get_item(
                TableName=self._table, Key=keys.photo_key(owner_id, photo_id), ConsistentRead=True
            )
        item = response.get("Item")
        return photo_from_item(item) if item else None

    def list_page(
        self, owner_id: str, *, limit: int, tag: str | None, start_key: dict[str, Any] | None
    ) -> tuple[list[Photo], dict[str, Any] | None]:
        """One page, newest first, and DynamoDB's key to continue from (None on the last page)."""
        # One item more than asked: if it comes back there is a next page, and if not there is none. DynamoDB
        # alone returns a LastEvaluatedKey whenever it stops at Limit, leaving clients an empty last page.
        query: dict[str, Any] = {"TableName": self._table, "Limit": limit + 1, "ScanIndexForward": False}
        if tag is None:
            # The owner's photos are a strongly consistent read: a photo just uploaded is listed at once.
            query["ConsistentRead"] = True
            query["KeyConditionExpression"] = "PK = :pk AND begins_with(SK, :photos)"
            query["ExpressionAttributeValues"] = {
                ":pk": {"S": keys.user_pk(owner_id)},
                ":photos": {"S": keys.PHOTO_PREFIX},
            }
        else:
            query["IndexName"] = keys.GSI1
            query["KeyConditionExpression"] = "GSI1PK = :pk"
            query["ExpressionAttributeValues"] = {":pk": {"S": keys.tag_index_pk(owner_id, tag)}}
        if start_key is not None:
            query["ExclusiveStartKey"] = start_key
        try:
            with dependency_errors("DynamoDB"):
                response = self._client.query(**query)
        except ClientError as e:
            # Only a start key can make this query invalid; it passed the cursor's signature, so it is ours but
            # from another shape of listing (e.g. an index key reused without the filter).
            if error_code(e) == "ValidationException" and start_key is not None:
                raise errors.Invalid("cursor", "does not belong to this listing") from e
            raise
        raw = response.get("Items", [])
        if len(raw) <= limit:
            return [photo_from_item(item) for item in raw], None
        page = raw[:limit]
        key_names = ("PK", "SK") if tag is None else ("PK", "SK", "GSI1PK", "GSI1SK")
        return [photo_from_item(item) for item in page], {name: page[-1][name] for name in key_names}

    def pending_deadlines_before(self, hour: str, cutoff: str) -> list[tuple[str, str]]:
        """(owner_id, photo_id) of PENDING photos whose upload deadline is in `hour` and before `cutoff`."""
        found: list[tuple[str, str]] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.GSI1,
            "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK < :cutoff",
            "ExpressionAttributeValues": {":pk": {"S": keys.pending_index_pk(hour)}, ":cutoff": {"S": cutoff}},
        }
        while True:
            with dependency_errors("DynamoDB"):
                response = self._client.query(**query)
            for item in response.get("Items", []):
                found.append((item["owner_id"]["S"], item["photo_id"]["S"]))
            if "LastEvaluatedKey" not in response:
                return found
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # --- writes --------------------------------------------------------------------------------------------------

    def add_reserving_quota(self, photo: Photo, *, max_photos: int, max_bytes: int) -> None:
        """Store a new PENDING photo and count it against the owner's quota, atomically.

        Raises QuotaExceeded when the owner already has `max_photos` photos or the new size would pass `max_bytes`.
        """
        if photo.size_bytes > max_bytes:
            raise errors.QuotaExceeded("this upload alone is larger than your storage quota")
        usage = {
            "Update": {
                "TableName": self._table,
                "Key": keys.usage_key(photo.owner_id),
                "UpdateExpression": "SET entity = :entity ADD photos :one, #bytes :size",
                # DynamoDB conditions cannot add, so the byte limit is checked against quota minus this upload.
                "ConditionExpression": "attribute_not_exists(photos) OR (photos < :max_photos AND #bytes <= :room)",
                "ExpressionAttributeNames": {"#bytes": "bytes"},
                "ExpressionAttributeValues": {
                    ":entity": {"S": "usage"},
                    ":one": {"N": "1"},
                    ":size": {"N": str(photo.size_bytes)},
                    ":max_photos": {"N": str(max_photos)},
                    ":room": {"N": str(max_bytes - photo.size_bytes)},
                },
            }
        }
        writes: list[Any] = [
            usage,
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _photo_item(photo),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            *({"Put": {"TableName": self._table, "Item": _tag_item(photo, tag)}} for tag in photo.tags),
        ]
        failed = self._transact(writes)
        if failed[:1] == ["ConditionalCheckFailed"]:
            raise errors.QuotaExceeded("storage quota reached: delete photos to upload more")
        if "ConditionalCheckFailed" in failed:
            raise errors.Conflict(f"photo {photo.photo_id} already exists")

    def replace(self, photo: Photo, previous: Photo, *, release_usage: bool = False) -> bool:
        """Write `photo` over `previous` if nobody wrote in between (same revision). False if someone did, or the
        photo is gone. Tag copies follow; with `release_usage`, the photo stops counting against the quota."""
        writes: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _photo_item(photo),
                    "ConditionExpression": "revision = :revision",
                    "ExpressionAttributeValues": {":revision": {"N": str(previous.revision)}},
                }
            },
            *({"Put": {"TableName": self._table, "Item": _tag_item(photo, tag)}} for tag in photo.tags),
            *(
                {"Delete": {"TableName": self._table, "Key": keys.photo_tag_key(photo.owner_id, photo.photo_id, tag)}}
                for tag in previous.tags
                if tag not in photo.tags
            ),
        ]
        if release_usage:
            writes.append(self._usage_release(previous))
        return self._transact_unless_changed(writes)

    def delete(self, photo: Photo) -> bool:
        """Remove the photo and its tag copies, releasing its usage if it still counts. False if it changed or is
        already gone."""
        writes: list[Any] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": keys.photo_key(photo.owner_id, photo.photo_id),
                    "ConditionExpression": "revision = :revision",
                    "ExpressionAttributeValues": {":revision": {"N": str(photo.revision)}},
                }
            },
            *(
                {"Delete": {"TableName": self._table, "Key": keys.photo_tag_key(photo.owner_id, photo.photo_id, tag)}}
                for tag in photo.tags
            ),
        ]
        if photo.counts_against_quota:
            writes.append(self._usage_release(photo))
        return self._transact_unless_changed(writes)

    def _usage_release(self, photo: Photo) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": keys.usage_key(photo.owner_id),
                "UpdateExpression": "ADD photos :minus_one, #bytes :minus_size",
                "ExpressionAttributeNames": {"#bytes": "bytes"},
                "ExpressionAttributeValues": {":minus_one": {"N": "-1"}, ":minus_size": {"N": str(-photo.size_bytes)}},
            }
        }

    def _transact_unless_changed(self, writes: list[Any]) -> bool:
        """True if written; False if the first write's condition (the photo's revision) no longer held."""
        return self._transact(writes)[:1] != ["ConditionalCheckFailed"]

    def _transact(self, writes: list[Any]) -> list[str]:
        """Run the transaction; [] if it committed, else the per-item cancellation codes (conditions that failed).

        A clash with another transaction in flight is transient: 503, the client retries.
        """
        try:
            with dependency_errors("DynamoDB"):
                self._client.transact_write_items(TransactItems=writes)
        except ClientError as e:
            if error_code(e) != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(e)
            if "TransactionConflict" in codes:
                raise errors.Unavailable("another change to this library is in progress; retry") from e
            if _THROTTLED_ITEM_CODES.intersection(codes):
                # An item (or one of its indexes) was throttled: the transaction was cancelled before it was
                # applied, and botocore does not retry a cancellation.
                raise errors.Unavailable("DynamoDB is busy; retry shortly") from e
            if "ConditionalCheckFailed" not in codes:
                raise
            return codes
        return []
