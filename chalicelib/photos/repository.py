"""DynamoDB adapter for photos: every write of a photo is one transaction over the photo item, the tag copies it
adds or drops and, when usage changes, the owner's usage counters, so the three can never disagree."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chalicelib import clock, errors, keys
from chalicelib.aws import batch_get, dependency_errors, query_all, query_page, transact
from chalicelib.lazy import lazy_import
from chalicelib.photos.models import Photo, PhotoStatus

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
    }
    # No TTL attribute: a PENDING photo leaves only through the worker or the reconciler, which release its usage.
    # (TTL deletes an item and nothing else, so a photo removed by it would keep its quota reserved for ever.)
    if photo.status is PhotoStatus.PENDING:
        attributes["GSI1PK"] = {"S": keys.pending_index_pk(keys.pending_shard(photo.photo_id))}
        attributes["GSI1SK"] = {"S": keys.pending_index_sk(photo.upload_expires_at, photo.owner_id, photo.photo_id)}
    return {name: value for name, value in attributes.items() if value is not None}


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
    )


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
        response = query_page(self._client, query, start_key)
        raw = response.get("Items", [])
        page = raw[:limit]
        if tag is None:
            photos = [photo_from_item(item) for item in page]
        else:
            photos = self._photos_tagged(owner_id, tag, [_photo_id_of_tag_copy(item) for item in page])
        if len(raw) <= limit:
            # Fewer than asked is the end, unless DynamoDB stopped at its 1 MB per query (photos with long text
            # in 4-byte characters are ~13 KB each): then it says where to go on.
            return photos, response.get("LastEvaluatedKey")
        key_names = ("PK", "SK") if tag is None else ("PK", "SK", "GSI1PK", "GSI1SK")
        return photos, {name: page[-1][name] for name in key_names}

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

    def stale_pending(self, cutoff: str) -> list[tuple[str, str]]:
        """(owner_id, photo_id) of every PENDING photo whose upload deadline is before `cutoff`, however old,
        earliest deadline first."""
        found: list[tuple[str, str, str]] = []
        for shard in range(keys.PENDING_SHARDS):
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": keys.GSI1,
                "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK < :cutoff",
                "ExpressionAttributeValues": {
                    ":pk": {"S": keys.pending_index_pk(shard)},
                    ":cutoff": {"S": cutoff},
                },
            }
            while True:
                with dependency_errors("DynamoDB"):
                    response = self._client.query(**query)
                for item in response.get("Items", []):
                    found.append((item["GSI1SK"]["S"], item["owner_id"]["S"], item["photo_id"]["S"]))
                if "LastEvaluatedKey" not in response:
                    break
                query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return [(owner_id, photo_id) for _, owner_id, photo_id in sorted(found)]

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
                "ConditionExpression": (
                    "attribute_not_exists(photos) OR (photos < :max_photos AND #bytes <= :room"
                    " AND (attribute_not_exists(pending) OR pending < :max_pending))"
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

    def _why_refused(self, owner_id: str, max_pending: int) -> errors.QuotaExceeded:
        # One condition guards both limits; a failed reservation is rare, so it pays for the read that says which.
        with dependency_errors("DynamoDB"):
            item = self._client.get_item(TableName=self._table, Key=keys.usage_key(owner_id), ConsistentRead=True)
        pending = int(item.get("Item", {}).get("pending", {}).get("N", "0"))
        if pending >= max_pending:
            return errors.TooManyPending(
                f"{pending} uploads are still in progress (at most {max_pending}): finish or wait for them first"
            )
        return errors.QuotaExceeded("storage quota reached: delete photos to upload more")

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
        settles = previous.status is PhotoStatus.PENDING and photo.status is not PhotoStatus.PENDING
        usage = self._usage_change(previous, release=release_usage, settle=settles)
        if usage is not None:
            writes.append(usage)
        return self._transact_unless_changed(writes)

    def delete(self, photo: Photo) -> bool:
        """Remove the photo, its tag copies and its place in every album (counts and covers kept right), releasing
        its usage if it still counts. False if it changed or is already gone, or an album it is in changed.

        Adding a photo to an album gives it a new revision, so an add that lands after the albums were read here
        makes this delete fail and read again: no album is left holding a photo that is gone.
        """
        in_albums = self._albums_holding(photo)
        albums = self._albums(album_id for album_id in in_albums)
        # A transaction holds 100 items: the photo, its tags and usage, then up to 4 per album (entry, copy, album,
        # and the next cover's entry where the photo was the cover). A photo in more albums than fit leaves the
        # rest first, a transaction at a time, each giving the photo a new revision.
        room = (100 - 2 - len(photo.tags)) // 4
        while len(in_albums) > room:
            chunk, in_albums = in_albums[:room], in_albums[room:]
            writes = [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": keys.photo_key(photo.owner_id, photo.photo_id),
                        "UpdateExpression": "ADD revision :one",
                        "ConditionExpression": "revision = :revision",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":revision": {"N": str(photo.revision)}},
                    }
                },
                *self._leave_albums(photo, chunk, albums),
            ]
            if self._transact(writes):
                return False  # the photo or one of these albums changed: read again
            photo = dataclasses.replace(photo, revision=photo.revision + 1)
        writes = [
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
        usage = self._usage_change(
            photo, release=photo.counts_against_quota, settle=photo.status is PhotoStatus.PENDING
        )
        if usage is not None:
            writes.append(usage)
        writes.extend(self._leave_albums(photo, in_albums, albums))
        return not self._transact(writes)

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

    def _albums(self, album_ids: Iterable[str]) -> dict[str, Album]:
        wanted: list[Any] = [keys.album_key(album_id) for album_id in album_ids]
        found = batch_get(self._client, self._table, wanted, consistent=True) if wanted else []
        return {album.album_id: album for album in map(album_items.album_from_item, found)}

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

    def _usage_change(self, photo: Photo, *, release: bool, settle: bool) -> dict[str, Any] | None:
        """The usage counters' update when `photo` stops counting (`release`) and/or stops being an outstanding
        upload (`settle`); one update, since a transaction may touch the usage item only once."""
        additions, values = [], {}
        if release:
            additions += ["photos :minus_one", "#bytes :minus_size"]
            values[":minus_size"] = {"N": str(-photo.size_bytes)}
        if settle:
            additions.append("pending :minus_one")
        if not additions:
            return None
        values[":minus_one"] = {"N": "-1"}
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": keys.usage_key(photo.owner_id),
            "UpdateExpression": "ADD " + ", ".join(additions),
            "ExpressionAttributeValues": values,
        }
        if release:
            update["ExpressionAttributeNames"] = {"#bytes": "bytes"}
        return {"Update": update}

    def _transact_unless_changed(self, writes: list[Any]) -> bool:
        """True if written; False if the first write's condition (the photo's revision) no longer held."""
        return self._transact(writes)[:1] != ["ConditionalCheckFailed"]

    def _transact(self, writes: list[Any]) -> list[str]:
        """Run the transaction; [] if it committed, else the per-item cancellation codes (conditions that failed)."""
        return transact(self._client, writes)
