"""DynamoDB adapter for photos: every write of a photo is one transaction over the photo item, the tag copies it
adds or drops and, when usage changes, the owner's usage counters, so the three can never disagree."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import clock, errors, keys
from chalicelib.aws import batch_get, dependency_errors, query_all, query_index_partitions, query_page, transact
from chalicelib.ids import new_ulid
from chalicelib.lazy import lazy_import
from chalicelib.photos.models import ListQuery, Photo, PhotoStatus, PreviewFormat

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from chalicelib.albums import items as album_items
    from chalicelib.albums import models as album_models
    from chalicelib.albums.models import Album
else:
    # Only deleting a photo needs the album code: imported on first use, off the API's cold path.
    album_items = lazy_import("chalicelib.albums.items")
    album_models = lazy_import("chalicelib.albums.models")

Item = dict[str, Any]


def _optional_s(value: str | None) -> dict[str, str] | None:
    return {"S": value} if value is not None else None


def _photo_item(photo: Photo) -> Item:
    attributes: dict[str, Any] = {
        **keys.photo_key(photo.owner_id, photo.photo_id),
        "entity": {"S": "photo"},
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
        "favorite": {"BOOL": True} if photo.favorite else None,
        "trashed_at": _optional_s(photo.trashed_at),
        "purge_at": _optional_s(photo.purge_at),
        "sha256": _optional_s(photo.sha256),
        "duplicate_of": _optional_s(photo.duplicate_of),
        "album_return": {"L": [{"S": entry} for entry in photo.album_return]} if photo.album_return else None,
        "purging": {"BOOL": True} if photo.purging else None,
        # Only when not JPEG: an item without it (every photo stored before WebP previews) has JPEG previews.
        "preview_format": {"S": photo.preview_format.value} if photo.preview_format is not PreviewFormat.JPEG else None,
        # Every write places the photo by its state and counts it: see Photo.indexed.
        "indexed": {"BOOL": True},
    }
    attributes.update(_index_attributes(photo))
    return {name: value for name, value in attributes.items() if value is not None}


def _index_attributes(photo: Photo) -> dict[str, Any]:
    """Where the photo shows in the two indexes, which follows from its state: one place in each at most."""
    owner, photo_id = photo.owner_id, photo.photo_id
    gsi1: tuple[str, str] | None = None
    gsi2: tuple[str, str] | None = None
    # No TTL attribute: a PENDING photo leaves only through the worker or the reconciler, which release its usage.
    # (TTL deletes an item and nothing else, so a photo removed by it would keep its quota reserved for ever.)
    if photo.status is PhotoStatus.PENDING:
        gsi1 = (
            keys.pending_index_pk(keys.pending_shard(photo_id)),
            keys.pending_index_sk(photo.upload_expires_at, owner, photo_id),
        )
    elif photo.trashed_at is not None:
        purge_at = photo.purge_at or photo.trashed_at
        gsi1 = (keys.purge_index_pk(keys.purge_shard(photo_id)), keys.purge_index_sk(purge_at, owner, photo_id))
        gsi2 = (keys.trash_index_pk(owner), keys.time_index_sk(photo.trashed_at, photo_id))
    elif photo.status is PhotoStatus.READY:
        if photo.favorite:
            gsi1 = (keys.favorites_index_pk(owner), keys.photo_sk(photo_id))
        gsi2 = (keys.taken_index_pk(owner), keys.time_index_sk(photo.sort_time, photo_id))
    attributes: dict[str, Any] = {}
    if gsi1 is not None:
        attributes["GSI1PK"], attributes["GSI1SK"] = {"S": gsi1[0]}, {"S": gsi1[1]}
    if gsi2 is not None:
        attributes["GSI2PK"], attributes["GSI2SK"] = {"S": gsi2[0]}, {"S": gsi2[1]}
    return attributes


def _tag_item(photo: Photo, tag: str) -> Item:
    """Keys only: the listing reads the photo items themselves, so editing a photo never rewrites its copies."""
    return {
        **keys.photo_tag_key(photo.owner_id, photo.photo_id, tag),
        "entity": {"S": "photo_tag"},
        "GSI1PK": {"S": keys.tag_index_pk(photo.owner_id, tag)},
        "GSI1SK": {"S": keys.photo_sk(photo.photo_id)},
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
        favorite=item.get("favorite", {}).get("BOOL", False),
        trashed_at=_optional_str(item, "trashed_at"),
        purge_at=_optional_str(item, "purge_at"),
        sha256=_optional_str(item, "sha256"),
        duplicate_of=_optional_str(item, "duplicate_of"),
        album_return=tuple(entry["S"] for entry in item.get("album_return", {}).get("L", [])),
        purging=item.get("purging", {}).get("BOOL", False),
        indexed="indexed" in item,
        preview_format=PreviewFormat.recorded(_optional_str(item, "preview_format")),
    )


# Sorts after every character of an ISO time and of "#<id>": `<day><this>` bounds the last moment of that day.
_AFTER_ANY_TIME = "~"
# A filtered listing reads at most this many rounds (the later ones this many items each) before a short page.
_FILTER_ROUNDS = 4
_FILTER_STEP = 100
# Photo ids carry their creation time, but an id's clock and created_at's may differ by a moment (ids made before
# both came from one clock): the key range is this much wider, and created_at itself is the exact filter.
_ID_TIME_MARGIN_MS = 60_000


# A restore's transaction: the photo, usage, month and claim, then up to 4 writes per album it goes back to.
_RESTORE_ROOM = (100 - 4) // 4


def _returns(album_ids: list[str], added: dict[str, str]) -> tuple[str, ...]:
    """Where the photo is in each album ("<album_id>#<added_at>"), to put it back there on a restore."""
    return tuple(f"{album_id}#{added[album_id]}" for album_id in album_ids if album_id in added)


def _day_ms(day: str, *, end: bool) -> int:
    moment = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    if end:
        moment += timedelta(days=1)
    return int(moment.timestamp() * 1000)


def _uploaded_range(sort_key: str, query: ListQuery, values: dict[str, Any]) -> str:
    """The key condition on photo-id sort keys (`PHOTO#<ulid>`) for the query's upload dates, if any."""
    if not (query.from_day or query.to_day):
        values[":photos"] = {"S": keys.PHOTO_PREFIX}
        return f"begins_with({sort_key}, :photos)"
    low_ms = _day_ms(query.from_day, end=False) - _ID_TIME_MARGIN_MS if query.from_day else 0
    high_ms = _day_ms(query.to_day, end=True) + _ID_TIME_MARGIN_MS if query.to_day else 2**48 - 1
    values[":low_id"] = {"S": keys.photo_sk(new_ulid(max(low_ms, 0), bytes(10)))}
    values[":high_id"] = {"S": keys.photo_sk(new_ulid(min(high_ms, 2**48 - 1), b"\xff" * 10))}
    return f"{sort_key} BETWEEN :low_id AND :high_id"


def _uploaded_within(photo: Photo, query: ListQuery) -> bool:
    day = photo.created_at[:10]
    return (query.from_day is None or day >= query.from_day) and (query.to_day is None or day <= query.to_day)


def _gsi1_sort_key(item: Item) -> str:
    return str(item["GSI1SK"]["S"])


def photos_of(client: Any, table: str, owner_id: str, photo_ids: Sequence[str]) -> dict[str, Photo]:
    """The owner's photos among `photo_ids`, read strongly consistently (they may have just become READY): one
    BatchGetItem per 100. The photo and album repositories both read a request's photos this way."""
    wanted: list[Any] = [keys.photo_key(owner_id, photo_id) for photo_id in dict.fromkeys(photo_ids)]
    found = batch_get(client, table, wanted, consistent=True)
    return {photo.photo_id: photo for photo in map(photo_from_item, found)}


def _photo_id_of_tag_copy(item: Item) -> str:
    return str(item["GSI1SK"]["S"]).removeprefix(keys.PHOTO_PREFIX)


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

    def get_many(self, owner_id: str, photo_ids: Sequence[str]) -> dict[str, Photo]:
        return photos_of(self._client, self._table, owner_id, photo_ids)

    def list_page(
        self, owner_id: str, *, limit: int, query: ListQuery, start_key: dict[str, Any] | None
    ) -> tuple[list[Photo], dict[str, Any] | None]:
        """One page, newest first, and DynamoDB's key to continue from (None on the last page). Trashed photos are
        never listed."""
        if query.tag is not None:
            return self._tagged_page(owner_id, query, limit, start_key)
        request: dict[str, Any] = {"TableName": self._table, "ScanIndexForward": False}
        values: dict[str, Any] = {}
        filters: list[str] = []
        key_names: tuple[str, ...]
        if query.sort == "taken":
            # READY, non-trashed photos by when they were taken: the index holds nothing else.
            request["IndexName"], key_names = keys.GSI2, ("PK", "SK", "GSI2PK", "GSI2SK")
            values[":pk"] = {"S": keys.taken_index_pk(owner_id)}
            condition = "GSI2PK = :pk"
            if query.from_day or query.to_day:
                condition += " AND GSI2SK BETWEEN :low AND :high"
                values[":low"] = {"S": query.from_day or "0"}
                values[":high"] = {"S": (query.to_day or "9999-12-31") + _AFTER_ANY_TIME}
            if query.favorite:
                filters.append("favorite = :yes")
                values[":yes"] = {"BOOL": True}
        else:
            if query.favorite:
                # Favourites are READY and not trashed, or they would not be in this index partition.
                request["IndexName"], key_names = keys.GSI1, ("PK", "SK", "GSI1PK", "GSI1SK")
                pk_name, sk_name = "GSI1PK", "GSI1SK"
                values[":pk"] = {"S": keys.favorites_index_pk(owner_id)}
            else:
                # The owner's photos are a strongly consistent read: a photo just uploaded is listed at once.
                request["ConsistentRead"], key_names = True, ("PK", "SK")
                pk_name, sk_name = "PK", "SK"
                values[":pk"] = {"S": keys.user_pk(owner_id)}
                filters.append("attribute_not_exists(trashed_at)")
            condition = f"{pk_name} = :pk AND " + _uploaded_range(sk_name, query, values)
            if query.from_day or query.to_day:
                filters.append("created_at BETWEEN :from_time AND :to_time")
                values[":from_time"] = {"S": query.from_day or "0"}
                values[":to_time"] = {"S": (query.to_day or "9999-12-31") + _AFTER_ANY_TIME}
        request["KeyConditionExpression"] = condition
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        request["ExpressionAttributeValues"] = values
        raw, next_key = self._filtered_page(request, limit, start_key, key_names)
        return [photo_from_item(item) for item in raw], next_key

    def _filtered_page(
        self, request: dict[str, Any], limit: int, start_key: dict[str, Any] | None, key_names: tuple[str, ...]
    ) -> tuple[list[Item], dict[str, Any] | None]:
        """Up to `limit` items and the key to go on from. DynamoDB applies Limit before the filter, so one query
        may match fewer than asked although more follow: read on, in larger steps, for a few rounds at most, and
        answer a short page with a cursor rather than read an unbounded stretch of trashed photos in one call.

        One item more than asked is read: if it comes back there is a next page, and if not there is none.
        (DynamoDB alone returns a LastEvaluatedKey whenever it stops at Limit, leaving clients an empty last page.)
        """
        found: list[Item] = []
        last_key = start_key
        for round_number in range(_FILTER_ROUNDS):
            # The first round asks for exactly a page and one more: with nothing filtered out, one round it is.
            step = limit + 1 if round_number == 0 else max(limit + 1, _FILTER_STEP)
            response = query_page(self._client, {**request, "Limit": step}, last_key)
            found.extend(response.get("Items", []))
            last_key = response.get("LastEvaluatedKey")
            if len(found) > limit or last_key is None:
                break
        if len(found) <= limit:
            return found, last_key
        page = found[:limit]
        return page, {name: page[-1][name] for name in key_names}

    def _tagged_page(
        self, owner_id: str, query: ListQuery, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Photo], dict[str, Any] | None]:
        """A tag's photos, from the keys-only tag copies: one Query and one BatchGetItem. The filters (trash,
        favourite, dates) apply to the photos read, so a page may be short; its cursor goes on."""
        tag = query.tag or ""
        values: dict[str, Any] = {":pk": {"S": keys.tag_index_pk(owner_id, tag)}}
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.GSI1,
            "KeyConditionExpression": "GSI1PK = :pk AND " + _uploaded_range("GSI1SK", query, values),
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        response = query_page(self._client, request, start_key)
        raw = response.get("Items", [])
        page = raw[:limit]
        photos = [
            photo
            for photo in self._photos_tagged(owner_id, tag, [_photo_id_of_tag_copy(item) for item in page])
            if not photo.trashed and (photo.favorite or not query.favorite) and _uploaded_within(photo, query)
        ]
        if len(raw) <= limit:
            # Fewer than asked is the end, unless DynamoDB stopped at its 1 MB per query.
            return photos, response.get("LastEvaluatedKey")
        return photos, {name: page[-1][name] for name in ("PK", "SK", "GSI1PK", "GSI1SK")}

    def _photos_tagged(self, owner_id: str, tag: str, photo_ids: list[str]) -> list[Photo]:
        """The photos behind a page of tag copies, in the page's order (at most 100: one BatchGetItem).

        The index is eventually consistent: a copy may outlive its photo or its tag for a moment, so what the
        photo items say now wins.
        """
        if not photo_ids:
            return []
        wanted: list[Any] = [keys.photo_key(owner_id, photo_id) for photo_id in photo_ids]
        # Eventually consistent, as the index that chose these photos is: a strongly consistent read would cost
        # twice the read units (one per photo) and could not make the page any fresher than the index.
        photos = map(photo_from_item, batch_get(self._client, self._table, wanted, consistent=False))
        found = {photo.photo_id: photo for photo in photos}
        return [found[photo_id] for photo_id in photo_ids if photo_id in found and tag in found[photo_id].tags]

    def timeline(self, owner_id: str) -> list[tuple[str, int]]:
        """(month, count) of the owner's READY, non-trashed photos by when they were taken, newest month first:
        the counters written with the photos themselves, so exact whatever runs at the same time."""
        found = query_all(
            self._client,
            {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :months)",
                "FilterExpression": "#count > :zero",
                "ExpressionAttributeNames": {"#count": "count"},
                "ExpressionAttributeValues": {
                    ":pk": {"S": keys.user_pk(owner_id)},
                    ":months": {"S": keys.MONTH_PREFIX},
                    ":zero": {"N": "0"},
                },
                "ScanIndexForward": False,
                "ConsistentRead": True,
            },
        )
        return [(item["SK"]["S"].removeprefix(keys.MONTH_PREFIX), int(item["count"]["N"])) for item in found]

    def trash_page(
        self, owner_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Photo], dict[str, Any] | None]:
        """The owner's trashed photos, most recently trashed first."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.GSI2,
            "KeyConditionExpression": "GSI2PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": keys.trash_index_pk(owner_id)}},
            "ScanIndexForward": False,
        }
        raw, next_key = self._filtered_page(request, limit, start_key, ("PK", "SK", "GSI2PK", "GSI2SK"))
        return [photo_from_item(item) for item in raw], next_key

    def trashed(self, owner_id: str) -> list[Photo]:
        """Every photo in the owner's trash, as the index has them (it holds whole photos: DynamoDB charges the
        whole item whatever is projected), for emptying it."""
        found = query_all(
            self._client,
            {
                "TableName": self._table,
                "IndexName": keys.GSI2,
                "KeyConditionExpression": "GSI2PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": keys.trash_index_pk(owner_id)}},
            },
        )
        return [photo_from_item(item) for item in found]

    def claim_holder(self, owner_id: str, digest: str) -> str | None:
        """The id of the owner's library photo with these bytes, if there is one."""
        with dependency_errors("DynamoDB"):
            item = self._client.get_item(
                TableName=self._table, Key=keys.sha256_key(owner_id, digest), ConsistentRead=True
            ).get("Item")
        return item["photo_id"]["S"] if item else None

    def expired_trash(self, now: str) -> list[tuple[str, str]]:
        """(owner_id, photo_id) of every trashed photo whose purge time has come, earliest first."""
        shards = [keys.purge_index_pk(shard) for shard in range(keys.PURGE_SHARDS)]
        found = query_index_partitions(self._client, self._table, keys.GSI1, shards, before=now)
        return [(item["owner_id"]["S"], item["photo_id"]["S"]) for item in sorted(found, key=_gsi1_sort_key)]

    def stale_pending(self, cutoff: str) -> list[tuple[str, str]]:
        """(owner_id, photo_id) of every PENDING photo whose upload deadline is before `cutoff`, however old,
        earliest deadline first."""
        shards = [keys.pending_index_pk(shard) for shard in range(keys.PENDING_SHARDS)]
        found = query_index_partitions(self._client, self._table, keys.GSI1, shards, before=cutoff)
        return [(item["owner_id"]["S"], item["photo_id"]["S"]) for item in sorted(found, key=_gsi1_sort_key)]

    # --- writes --------------------------------------------------------------------------------------------------

    def add_reserving_quota(self, photo: Photo, *, max_photos: int, max_bytes: int, max_pending: int) -> None:
        """Store a new PENDING photo and count it against the owner's quota, atomically.

        Raises QuotaExceeded when the owner already has `max_photos` photos or the new size would pass
        `max_bytes`, and TooManyPending when `max_pending` of their uploads are still outstanding.
        """
        if photo.size_bytes > max_bytes:
            raise errors.QuotaExceeded("this upload alone is larger than your storage quota")
        usage = {
            "Update": {
                "TableName": self._table,
                "Key": keys.usage_key(photo.owner_id),
                "UpdateExpression": "SET entity = :entity ADD photos :one, #bytes :size, pending :one",
                # DynamoDB conditions cannot add, so the byte limit is checked against quota minus this upload.
                # An account being deleted takes no more uploads: the deletion marks its usage first.
                "ConditionExpression": (
                    "attribute_not_exists(deleting_since) AND (attribute_not_exists(photos)"
                    " OR (photos < :max_photos AND #bytes <= :room"
                    " AND (attribute_not_exists(pending) OR pending < :max_pending)))"
                ),
                "ExpressionAttributeNames": {"#bytes": "bytes"},
                "ExpressionAttributeValues": {
                    ":entity": {"S": "usage"},
                    ":one": {"N": "1"},
                    ":size": {"N": str(photo.size_bytes)},
                    ":max_photos": {"N": str(max_photos)},
                    ":room": {"N": str(max_bytes - photo.size_bytes)},
                    ":max_pending": {"N": str(max_pending)},
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
            raise self._why_refused(photo.owner_id, max_pending)
        if "ConditionalCheckFailed" in failed:
            raise errors.Conflict(f"photo {photo.photo_id} already exists")

    def _why_refused(self, owner_id: str, max_pending: int) -> errors.DomainError:
        # One condition guards both limits; a failed reservation is rare, so it pays for the read that says which.
        with dependency_errors("DynamoDB"):
            item = self._client.get_item(TableName=self._table, Key=keys.usage_key(owner_id), ConsistentRead=True)
        if "deleting_since" in item.get("Item", {}):
            return errors.AccountDeleting("your account is being deleted")
        pending = int(item.get("Item", {}).get("pending", {}).get("N", "0"))
        if pending >= max_pending:
            return errors.TooManyPending(
                f"{pending} uploads are still in progress (at most {max_pending}): finish or wait for them first"
            )
        return errors.QuotaExceeded("storage quota reached: delete photos to upload more")

    def replace(self, photo: Photo, previous: Photo, *, release_usage: bool = False) -> bool:
        """Write `photo` over `previous` if nobody wrote in between (same revision). False if someone did, or the
        photo is gone. Tag copies, usage, the month's count and the photo's claim on its bytes follow; with
        `release_usage`, the photo stops counting against the quota.

        Raises DuplicatePhoto when the photo would enter the library while another photo of the owner's holds the
        same bytes (the claim's condition: two copies can never both settle, however they race).
        """
        writes: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _photo_item(photo),
                    "ConditionExpression": "revision = :revision",
                    "ExpressionAttributeValues": {":revision": {"N": str(previous.revision)}},
                }
            },
            *(
                {"Put": {"TableName": self._table, "Item": _tag_item(photo, tag)}}
                for tag in photo.tags
                if tag not in previous.tags
            ),
            *(
                {"Delete": {"TableName": self._table, "Key": keys.photo_tag_key(photo.owner_id, photo.photo_id, tag)}}
                for tag in previous.tags
                if tag not in photo.tags
            ),
        ]
        return self._write_transition(writes, previous, photo, release=release_usage)

    def _write_transition(
        self, writes: list[Any], previous: Photo, photo: Photo | None, *, release: bool, tail: Iterable[Any] = ()
    ) -> bool:
        """Run `writes` (the photo's own first, conditioned on its revision) with what the change from `previous`
        to `photo` (None: deleted) does to usage, the month's count and the claim on the bytes, then `tail`.
        False if the photo changed meanwhile or a condition in `tail` failed."""
        state, claim_at = self._state_writes(previous, photo, release=release)
        claim_index = len(writes) + claim_at if claim_at is not None else None
        codes = self._transact([*writes, *state, *tail])
        if not codes:
            return True
        duplicate = (
            codes[0] != "ConditionalCheckFailed"
            and claim_index is not None
            and codes[claim_index] == "ConditionalCheckFailed"
        )
        if duplicate and photo is not None and photo.sha256 is not None:
            holder = self.claim_holder(photo.owner_id, photo.sha256)
            if holder is not None and holder != photo.photo_id:
                raise errors.DuplicatePhoto(holder)
        return False

    def _state_writes(self, previous: Photo, photo: Photo | None, *, release: bool) -> tuple[list[Any], int | None]:
        """The usage, month and claim writes for the change from `previous` to `photo` (None: deleted), and where
        among them the claim on the bytes is (its condition is what fails for a duplicate)."""
        writes: list[Any] = []
        settle = previous.status is PhotoStatus.PENDING and (photo is None or photo.status is not PhotoStatus.PENDING)
        trash_change = int(photo is not None and photo.trashed) - int(previous.trashed)
        usage = self._usage_change(previous, release=release, settle=settle, trash_change=trash_change)
        if usage is not None:
            writes.append(usage)
        was_in, now_in = previous.in_library, photo is not None and photo.in_library
        # A photo stored before the library existed was never counted: its first write here counts it.
        was_counted = was_in and previous.indexed
        moved = photo is not None and was_counted and now_in and photo.month != previous.month
        if was_counted and (not now_in or moved):
            writes.append(self._month_change(previous, -1))
        if photo is not None and now_in and (not was_counted or moved):
            writes.append(self._month_change(photo, +1))
        claim_at: int | None = None
        held = previous.sha256 if was_in else None
        holds = photo.sha256 if photo is not None and now_in else None
        if held is not None and held != holds:
            writes.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": keys.sha256_key(previous.owner_id, held),
                        # Never another photo's claim (a legacy photo may hold none of its own).
                        "ConditionExpression": "attribute_not_exists(PK) OR photo_id = :me",
                        "ExpressionAttributeValues": {":me": {"S": previous.photo_id}},
                    }
                }
            )
        if photo is not None and holds is not None and holds != held:
            claim_at = len(writes)
            writes.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **keys.sha256_key(photo.owner_id, holds),
                            "entity": {"S": "photo_hash"},
                            "photo_id": {"S": photo.photo_id},
                        },
                        "ConditionExpression": "attribute_not_exists(PK) OR photo_id = :me",
                        "ExpressionAttributeValues": {":me": {"S": photo.photo_id}},
                    }
                }
            )
        return writes, claim_at

    def _month_change(self, photo: Photo, delta: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": keys.month_key(photo.owner_id, photo.month),
                "UpdateExpression": "SET entity = :entity ADD #count :delta",
                "ExpressionAttributeNames": {"#count": "count"},
                "ExpressionAttributeValues": {":entity": {"S": "month"}, ":delta": {"N": str(delta)}},
            }
        }

    def delete(self, photo: Photo) -> bool:
        """Remove the photo for good: its tag copies, its place in every album (counts and covers kept right), its
        month's count and claim, releasing its usage if it still counts. False if it changed or is already gone,
        or an album it is in changed.

        Adding a photo to an album gives it a new revision, so an add that lands after the albums were read here
        makes this delete fail and read again: no album is left holding a photo that is gone. A trashed photo left
        its albums when it was trashed (and cannot be added to one), so they are not read again.
        """
        in_albums = [] if photo.trashed else self._albums_holding(photo)
        albums, _ = self._albums(photo, in_albums)
        # A transaction holds 100 items: the photo, its tags, usage, month and claim, then up to 4 per album.
        room = (100 - 4 - len(photo.tags)) // 4
        left = self._leave_in_chunks(photo, in_albums, albums, room=room, added=None)
        if left is None:
            return False
        photo, in_albums = left
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
        return self._write_transition(
            writes,
            photo,
            None,
            release=photo.counts_against_quota,
            tail=self._leave_albums(photo, in_albums, albums),
        )

    def trash(self, photo: Photo, *, trashed_at: str, purge_at: str, purging: bool = False) -> Photo | None:
        """Move a READY photo to the trash: out of the library, the timeline and every album (and so every share
        link) in one transaction, remembering the albums and its place in each for a restore. None if it changed
        meanwhile (read again). With `purging`, it is marked as being deleted for good (also when already in the
        trash)."""
        in_albums = [] if photo.trashed else self._albums_holding(photo)
        albums, added = self._albums(photo, in_albums)
        # The photo, usage, month and claim, then up to 4 per album.
        left = self._leave_in_chunks(photo, in_albums, albums, room=(100 - 4) // 4, added=added)
        if left is None:
            return None
        photo, in_albums = left
        trashed = dataclasses.replace(
            photo,
            trashed_at=trashed_at,
            purge_at=purge_at,
            purging=purging,
            updated_at=photo.updated_at if photo.trashed else trashed_at,
            revision=photo.revision + 1,
            album_return=photo.album_return + _returns(in_albums, added),
        )
        writes: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _photo_item(trashed),
                    "ConditionExpression": "revision = :revision",
                    "ExpressionAttributeValues": {":revision": {"N": str(photo.revision)}},
                }
            }
        ]
        written = self._write_transition(
            writes, photo, trashed, release=False, tail=self._leave_albums(photo, in_albums, albums)
        )
        return trashed if written else None

    def restore(self, photo: Photo, *, now: str) -> Photo | None:
        """Bring a trashed photo back: into the library, the timeline, and the albums it left that still exist and
        where its owner may still add (in its old place in each). None if something changed meanwhile (read again).
        Raises DuplicatePhoto if a copy of the same bytes entered the library while this one was in the trash.

        Also finishes a restore cut short: a photo already out of the trash that still has albums to return to."""
        # Once per album: a photo trashed again before a restore cut short was finished may list one twice.
        places: dict[str, str] = {}
        for entry in photo.album_return:
            album_id, added_at = entry.split("#", 1)
            places.setdefault(album_id, added_at)
        returning = list(places.items())
        joinable = self._joinable(photo, [album_id for album_id, _ in returning])
        back = [(album_id, added_at) for album_id, added_at in returning if album_id in joinable]
        # The photo, usage, month and claim, then up to 4 per album (entry, copy, album, membership).
        first, rest = back[:_RESTORE_ROOM], back[_RESTORE_ROOM:]
        restored = dataclasses.replace(
            photo,
            trashed_at=None,
            purge_at=None,
            updated_at=now if photo.trashed else photo.updated_at,
            revision=photo.revision + 1,
            album_return=tuple(f"{album_id}#{added_at}" for album_id, added_at in rest),
        )
        writes: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _photo_item(restored),
                    "ConditionExpression": "revision = :revision",
                    "ExpressionAttributeValues": {":revision": {"N": str(photo.revision)}},
                }
            }
        ]
        tail = self._join_albums(restored, first, joinable, now=now)
        if not self._write_transition(writes, photo, restored, release=False, tail=tail):
            return None
        # A photo in more albums than one transaction holds goes back to the rest a transaction at a time; a crash
        # here leaves `album_return` set, and the next restore of the photo (a retry) finishes the job.
        while rest:
            chunk, rest = rest[:_RESTORE_ROOM], rest[_RESTORE_ROOM:]
            remaining = tuple(f"{album_id}#{added_at}" for album_id, added_at in rest)
            update: dict[str, Any] = {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.photo_key(photo.owner_id, photo.photo_id),
                    "UpdateExpression": "SET album_return = :rest ADD revision :one",
                    "ConditionExpression": "revision = :revision",
                    "ExpressionAttributeValues": {
                        ":rest": {"L": [{"S": entry} for entry in remaining]},
                        ":one": {"N": "1"},
                        ":revision": {"N": str(restored.revision)},
                    },
                }
            }
            if not remaining:
                update["Update"]["UpdateExpression"] = "REMOVE album_return ADD revision :one"
                del update["Update"]["ExpressionAttributeValues"][":rest"]
            if self._transact([update, *self._join_albums(restored, chunk, joinable, now=now)]):
                return None
            restored = dataclasses.replace(restored, revision=restored.revision + 1, album_return=remaining)
        return restored

    def _joinable(self, photo: Photo, album_ids: list[str]) -> dict[str, bool]:
        """Of `album_ids`, the albums the photo's owner may put it back into, each with whether as a contributor."""
        if not album_ids:
            return {}
        wanted: list[Any] = []
        for album_id in album_ids:
            wanted += [
                keys.album_key(album_id),
                keys.member_key(album_id, photo.owner_id),
                keys.album_photo_key(album_id, photo.photo_id),
            ]
        found = batch_get(self._client, self._table, wanted, consistent=True)
        # Already back in (added again by hand after a restore cut short): nothing to do there.
        already = {item["PK"]["S"] for item in found if item["SK"]["S"] == keys.photo_sk(photo.photo_id)}
        albums = {
            album.album_id: album
            for album in map(album_items.album_from_item, (item for item in found if item["SK"]["S"] == keys.ALBUM_SK))
        }
        members = {
            membership.album_id: membership
            for membership in map(
                album_items.membership_from_item,
                (item for item in found if item["SK"]["S"].startswith(keys.MEMBER_PREFIX)),
            )
        }
        joinable: dict[str, bool] = {}
        for album_id, album in albums.items():
            if album.deleting_since is not None or keys.album_pk(album_id) in already:
                continue
            if album.owner_id == photo.owner_id:
                joinable[album_id] = False
                continue
            membership = members.get(album_id)
            if (
                membership is not None
                and membership.role is album_models.Role.CONTRIBUTOR
                and membership.leaving_since is None
            ):
                joinable[album_id] = True
        return joinable

    def _join_albums(
        self, photo: Photo, back: list[tuple[str, str]], joinable: dict[str, bool], *, now: str
    ) -> list[Any]:
        writes: list[Any] = []
        for album_id, added_at in back:
            as_contributor = joinable[album_id]
            entry = album_models.AlbumPhotoEntry(
                album_id, photo.photo_id, photo.owner_id, added_at, preview_format=photo.preview_format
            )
            writes += album_items.join_album_writes(
                self._table, album_id, [entry], now=now, contributor_id=photo.owner_id if as_contributor else None
            )
        return writes

    def _leave_in_chunks(
        self,
        photo: Photo,
        in_albums: list[str],
        albums: dict[str, Album],
        *,
        room: int,
        added: dict[str, str] | None,
    ) -> tuple[Photo, list[str]] | None:
        """Take the photo out of the albums that do not fit in the caller's last transaction (`room` of them do),
        a transaction at a time, each giving the photo a new revision (and, given when it was `added` to each,
        recording where it was for a restore). The photo as it now is and the albums left for the last
        transaction; None if it changed."""
        while len(in_albums) > room:
            chunk, in_albums = in_albums[:room], in_albums[room:]
            returns = _returns(chunk, added) if added is not None else ()
            update: dict[str, Any] = {
                "TableName": self._table,
                "Key": keys.photo_key(photo.owner_id, photo.photo_id),
                "UpdateExpression": "ADD revision :one",
                "ConditionExpression": "revision = :revision",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":revision": {"N": str(photo.revision)}},
            }
            if returns:
                update["UpdateExpression"] += (
                    " SET album_return = list_append(if_not_exists(album_return, :none), :more)"
                )
                update["ExpressionAttributeValues"][":none"] = {"L": []}
                update["ExpressionAttributeValues"][":more"] = {"L": [{"S": entry} for entry in returns]}
            if self._transact([{"Update": update}, *self._leave_albums(photo, chunk, albums)]):
                return None  # the photo or one of these albums changed: read again
            photo = dataclasses.replace(photo, revision=photo.revision + 1, album_return=photo.album_return + returns)
        return photo, in_albums

    def _albums_holding(self, photo: Photo) -> list[str]:
        """The albums the photo is in, from the copies beside it: read strongly consistently, in its partition."""
        found = query_all(
            self._client,
            {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
                "ExpressionAttributeValues": {
                    ":pk": {"S": keys.user_pk(photo.owner_id)},
                    ":prefix": {"S": keys.photo_albums_prefix(photo.photo_id)},
                },
                "ConsistentRead": True,
            },
        )
        return [album_items.album_id_of_photo_album(item) for item in found]

    def _albums(self, photo: Photo, album_ids: list[str]) -> tuple[dict[str, Album], dict[str, str]]:
        """The albums holding the photo, and when it was added to each (its place, for a restore): one read."""
        if not album_ids:
            return {}, {}
        wanted: list[Any] = []
        for album_id in album_ids:
            wanted += [keys.album_key(album_id), keys.album_photo_key(album_id, photo.photo_id)]
        found = batch_get(self._client, self._table, wanted, consistent=True)
        albums = {
            album.album_id: album
            for album in map(album_items.album_from_item, (item for item in found if item["SK"]["S"] == keys.ALBUM_SK))
        }
        added = {
            entry.album_id: entry.added_at
            for entry in map(
                album_items.album_photo_from_item, (item for item in found if item["SK"]["S"] != keys.ALBUM_SK)
            )
        }
        return albums, added

    def _leave_albums(self, photo: Photo, album_ids: list[str], albums: dict[str, Album]) -> list[Any]:
        writes: list[Any] = []
        for album_id in album_ids:
            entry = album_models.AlbumPhotoEntry(album_id, photo.photo_id, photo.owner_id, added_at="")
            album = albums.get(album_id)
            if album is None:
                # The album is gone and its clean-up has not reached this photo yet: only the two keys remain.
                writes += [
                    {"Delete": {"TableName": self._table, "Key": keys.album_photo_key(album_id, photo.photo_id)}},
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": keys.photo_album_key(photo.owner_id, photo.photo_id, album_id),
                        }
                    },
                ]
            else:
                successor = album_items.cover_successor(self._client, self._table, album, [entry])
                writes += album_items.leave_album_writes(
                    self._table, album, [entry], now=clock.utc_now(), successor=successor
                )
        return writes

    def _usage_change(
        self, photo: Photo, *, release: bool, settle: bool, trash_change: int = 0
    ) -> dict[str, Any] | None:
        """The usage counters' update when `photo` stops counting (`release`), stops being an outstanding upload
        (`settle`) and/or enters (+1) or leaves (-1) the trash; one update, since a transaction may touch the usage
        item only once."""
        additions, values, names = [], {}, {}
        if release:
            additions += ["photos :minus_one", "#bytes :minus_size"]
            values[":minus_size"] = {"N": str(-photo.size_bytes)}
            names["#bytes"] = "bytes"
        if settle:
            additions.append("pending :minus_one")
        if trash_change:
            additions += ["trash_photos :trash_photos", "trash_bytes :trash_bytes"]
            values[":trash_photos"] = {"N": str(trash_change)}
            values[":trash_bytes"] = {"N": str(trash_change * photo.size_bytes)}
        if not additions:
            return None
        if release or settle:
            values[":minus_one"] = {"N": "-1"}
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": keys.usage_key(photo.owner_id),
            "UpdateExpression": "ADD " + ", ".join(additions),
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        return {"Update": update}

    def _transact_unless_changed(self, writes: list[Any]) -> bool:
        """True if written; False if the first write's condition (the photo's revision) no longer held."""
        return self._transact(writes)[:1] != ["ConditionalCheckFailed"]

    def _transact(self, writes: list[Any]) -> list[str]:
        """Run the transaction; [] if it committed, else the per-item cancellation codes (conditions that failed)."""
        return transact(self._client, writes)
