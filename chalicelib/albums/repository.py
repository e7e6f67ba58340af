"""DynamoDB adapter for albums, members and share links.

Every change that touches a count or a membership is one transaction, so counts equal what they count and nobody
keeps access after their membership is gone. Key layout: chalicelib/keys.py; access patterns: README.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib import errors, keys
from chalicelib.albums import items
from chalicelib.albums.models import (
    MEMBERS_MAX,
    Album,
    AlbumPhotoEntry,
    Link,
    Membership,
    Role,
)
from chalicelib.albums.shown_photos import ShownPhotos
from chalicelib.aws import (
    batch_get,
    dependency_errors,
    error_code,
    query_all,
    query_index_partitions,
    query_page,
    transact,
)
from chalicelib.photos.models import Photo, PhotoStatus, PreviewFormat
from chalicelib.photos.repository import photo_from_item, photos_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
# DynamoDB takes at most 100 items per transaction: 3 per photo added (the entry, its copy beside the photo, the
# photo's revision) and 2 per photo removed, plus the album (and a contributor's membership).
ADD_CHUNK = 32
REMOVE_CHUNK = 48
# Album clean-up (deletion, a member's photos leaving) writes at most this many items per transaction.
CLEANUP_CHUNK = 96


def _update_values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _not_being_deleted(table: str, user_id: str) -> dict[str, Any]:
    """A check, in a transaction that gives `user_id` access to an album, that their account is not being deleted:
    the deletion marks their usage item first, so nothing it has passed can gain a new album behind it."""
    return {
        "ConditionCheck": {
            "TableName": table,
            "Key": keys.usage_key(user_id),
            "ConditionExpression": "attribute_not_exists(deleting_since)",
        }
    }


class DynamoAlbumRepository:
    def __init__(self, client: DynamoDBClient, table_name: str, *, shown_photos: ShownPhotos | None = None) -> None:
        self._client = client
        self._table = table_name
        # Album pages' photos, kept briefly (chalicelib/albums/shown_photos.py); None: read on every page.
        self._shown_photos = shown_photos

    # --- albums ----------------------------------------------------------------------------------------------------

    def create(self, album: Album) -> None:
        writes: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": items.album_item(album),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {"Put": {"TableName": self._table, "Item": items.access_item(album.owner_id, album.album_id, Role.OWNER)}},
            _not_being_deleted(self._table, album.owner_id),
        ]
        codes = transact(self._client, writes)
        if codes[2:3] == ["ConditionalCheckFailed"]:
            raise errors.AccountDeleting("your account is being deleted")
        if codes:
            # botocore retries a write whose reply was lost; if the lost one had committed, the retry finds the
            # album it made itself (DynamoDB's idempotency token covers this in AWS, but only for 10 minutes and
            # not in emulators): that is success, not a clash.
            existing = self.get(album.album_id)
            if existing is None or (existing.owner_id, existing.created_at) != (album.owner_id, album.created_at):
                raise errors.Conflict("an album with this id exists; retry")

    def get(self, album_id: str) -> Album | None:
        with dependency_errors("DynamoDB"):
            item = self._client.get_item(TableName=self._table, Key=keys.album_key(album_id), ConsistentRead=True)
        found = item.get("Item")
        return items.album_from_item(found) if found else None

    def get_with_membership(self, album_id: str, user_id: str) -> tuple[Album | None, Membership | None]:
        """The album and the user's membership of it, in one strongly consistent round trip: what every check of
        a signed-in caller's access reads."""
        wanted: list[Any] = [keys.album_key(album_id), keys.member_key(album_id, user_id)]
        album, membership = None, None
        for item in batch_get(self._client, self._table, wanted, consistent=True):
            if item["SK"]["S"] == keys.ALBUM_SK:
                album = items.album_from_item(item)
            else:
                membership = items.membership_from_item(item)
        return album, membership

    def accessible(self, user_id: str) -> list[tuple[Album, Role]]:
        """Every album the user owns or belongs to, with their role (one Query, then BatchGetItem per 100)."""
        entries = query_all(
            self._client,
            {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :albums)",
                "ExpressionAttributeValues": {":pk": {"S": keys.user_pk(user_id)}, ":albums": {"S": keys.ALBUM_PREFIX}},
                "ConsistentRead": True,
            },
        )
        roles = {item["album_id"]["S"]: Role(item["role"]["S"]) for item in entries}
        wanted: list[Any] = [keys.album_key(album_id) for album_id in roles]
        albums = [items.album_from_item(item) for item in batch_get(self._client, self._table, wanted, consistent=True)]
        return [(album, roles[album.album_id]) for album in albums if album.deleting_since is None]

    def update(
        self, album: Album, previous: Album, *, cover_changed: bool, cover_entry: AlbumPhotoEntry | None
    ) -> Album | None:
        """Write the owner's edit if the album is still at `previous.version`, and return the album as stored (its
        counts may have moved meanwhile); None if the version moved (or the album is going). With `cover_entry`,
        the new cover must still be in the album: a transaction, then a read; without, one UpdateItem.

        The cover is written only when the owner changed it: removing photos moves it without a new version, so
        writing back the one read earlier could bring back a cover that has left the album.
        """
        sets = ["title = :title", "updated_at = :now", "version = :version"]
        removes = []
        fields = [("description", album.description)]
        cover_preview = (
            items.cover_preview(album.cover_photo_id, album.cover_preview_format) if album.cover_photo_id else None
        )
        if cover_changed:
            fields += [
                ("cover_photo_id", album.cover_photo_id),
                ("cover_owner_id", album.cover_owner_id),
                ("cover_preview", cover_preview),
            ]
        for name, value in fields:
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        writes: list[Any] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.album_key(album.album_id),
                    "UpdateExpression": expression,
                    "ConditionExpression": "version = :previous AND attribute_not_exists(deleting_since)",
                    "ExpressionAttributeValues": _update_values(
                        {
                            ":title": {"S": album.title},
                            ":now": {"S": album.updated_at},
                            ":version": {"N": str(album.version)},
                            ":previous": {"N": str(previous.version)},
                            ":description": {"S": album.description} if album.description else None,
                            ":cover_photo_id": {"S": album.cover_photo_id}
                            if cover_changed and album.cover_photo_id
                            else None,
                            ":cover_owner_id": {"S": album.cover_owner_id}
                            if cover_changed and album.cover_owner_id
                            else None,
                            ":cover_preview": {"S": cover_preview} if cover_changed and cover_preview else None,
                        }
                    ),
                }
            }
        ]
        if cover_entry is None:
            try:
                with dependency_errors("DynamoDB"):
                    updated = self._client.update_item(**writes[0]["Update"], ReturnValues="ALL_NEW")
            except ClientError as e:
                if error_code(e) == "ConditionalCheckFailedException":
                    return None
                raise
            return items.album_from_item(updated["Attributes"])
        writes.append(
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": keys.album_photo_key(album.album_id, cover_entry.photo_id),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            }
        )
        return None if transact(self._client, writes) else self.get(album.album_id)

    # --- photos in an album ----------------------------------------------------------------------------------------

    def entries(self, album_id: str, photo_ids: Sequence[str]) -> dict[str, AlbumPhotoEntry]:
        wanted: list[Any] = [keys.album_photo_key(album_id, photo_id) for photo_id in photo_ids]
        found = batch_get(self._client, self._table, wanted, consistent=True)
        return {entry.photo_id: entry for entry in map(items.album_photo_from_item, found)}

    def photos(self, owner_id: str, photo_ids: Sequence[str]) -> dict[str, Photo]:
        """The caller's own photos among `photo_ids` (strongly consistent: they may have just become READY)."""
        return photos_of(self._client, self._table, owner_id, photo_ids)

    def add_photos(
        self, album: Album, photos: Sequence[Photo], *, added_at: str, contributor: Membership | None
    ) -> dict[str, str]:
        """Add READY photos (the adder's own) to the album, at most ADD_CHUNK at a time; what became of each:
        "added", "already" (it was in the album), "not_found" (the photo went meanwhile) or "denied" (the adder
        lost the right to add meanwhile: a contributor made viewer, the album deleted)."""
        outcome: dict[str, str] = {}
        remaining = list(photos)
        while remaining:
            chunk, remaining = remaining[:ADD_CHUNK], remaining[ADD_CHUNK:]
            outcome.update(self._add_chunk(album, chunk, added_at=added_at, contributor=contributor))
        return outcome

    def _add_chunk(
        self, album: Album, photos: list[Photo], *, added_at: str, contributor: Membership | None
    ) -> dict[str, str]:
        outcome: dict[str, str] = {}
        while photos:
            entries = [
                AlbumPhotoEntry(album.album_id, photo.photo_id, photo.owner_id, added_at, photo.preview_format)
                for photo in photos
            ]
            writes: list[Any] = items.join_album_writes(
                self._table,
                album.album_id,
                entries,
                now=added_at,
                contributor_id=contributor.user_id if contributor is not None else None,
            )
            # (photo_id, what a failed condition means) per write: the entries first, each followed by its copy.
            owner_of_write: list[tuple[str, str] | None] = []
            for photo in photos:
                owner_of_write += [(photo.photo_id, "already"), None]
            owner_of_write += [None] * (len(writes) - len(owner_of_write))
            for photo in photos:
                # A new revision: a delete or trash of this photo that read its albums before this add must read
                # again. Only a READY photo outside the trash joins an album.
                writes.append(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": keys.photo_key(photo.owner_id, photo.photo_id),
                            "UpdateExpression": "ADD revision :one",
                            "ConditionExpression": (
                                "attribute_exists(PK) AND #status = :ready AND attribute_not_exists(trashed_at)"
                            ),
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": {":one": {"N": "1"}, ":ready": {"S": PhotoStatus.READY.value}},
                        }
                    }
                )
                owner_of_write.append((photo.photo_id, "not_found"))
            codes = transact(self._client, writes)
            if not codes:
                outcome.update({photo.photo_id: "added" for photo in photos})
                return outcome
            failed = [
                meaning
                for meaning, code in zip(owner_of_write, codes, strict=False)
                if code == "ConditionalCheckFailed" and meaning is not None
            ]
            if not failed:
                # The album's or the adder's condition failed: nothing of this chunk can be added.
                outcome.update({photo.photo_id: "denied" for photo in photos})
                return outcome
            for photo_id, meaning in failed:
                outcome.setdefault(photo_id, meaning)
            photos = [photo for photo in photos if photo.photo_id not in outcome]
        return outcome

    def remove_entries(
        self, album_id: str, leaving: Sequence[AlbumPhotoEntry], *, now: str, album: Album | None = None
    ) -> set[str]:
        """Take the entries out of the album, REMOVE_CHUNK per transaction; the ids removed here.

        `album` and `leaving` as the caller just read them are tried first; the transaction's conditions (every
        entry still there, the cover unchanged, its successor still in) catch anything that changed since, and only
        then are the album and the entries read again.
        """
        removed: set[str] = set()
        remaining = list(leaving)
        failures = 0
        fresh = album is not None
        while remaining:
            chunk = remaining[:REMOVE_CHUNK]
            if not fresh:
                album = self.get(album_id)
                still_there = self.entries(album_id, [entry.photo_id for entry in chunk])
                chunk = [entry for entry in chunk if entry.photo_id in still_there]
            if album is None:
                break
            if chunk:
                successor = items.cover_successor(self._client, self._table, album, chunk)
                writes = items.leave_album_writes(self._table, album, chunk, now=now, successor=successor)
                if transact(self._client, writes):
                    failures += 1
                    if failures > 8:
                        raise errors.Unavailable("the album is changing too fast; retry")
                    fresh = False
                    continue
                removed.update(entry.photo_id for entry in chunk)
                if items.covers_cleared(album, chunk):
                    album = dataclasses.replace(
                        album,
                        cover_photo_id=successor.photo_id if successor else None,
                        cover_owner_id=successor.owner_id if successor else None,
                        cover_preview_format=successor.preview_format if successor else PreviewFormat.JPEG,
                    )
            remaining = remaining[REMOVE_CHUNK:]
        return removed

    def photos_page(
        self, album_id: str, *, limit: int, start_key: dict[str, Any] | None, viewer: str | None = None
    ) -> tuple[list[tuple[AlbumPhotoEntry, Photo]], dict[str, Any] | None]:
        """One page of the album's photos, most recently added first: one Query and at most one BatchGetItem (the
        photos not kept from a recent page, and always those of `viewer`: their own edits show at once)."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.GSI1,
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": keys.album_photos_index_pk(album_id)}},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        response = query_page(self._client, query, start_key)
        raw = response.get("Items", [])
        page = [items.album_photo_from_item(item) for item in raw[:limit]]
        wanted = list(dict.fromkeys((entry.owner_id, entry.photo_id) for entry in page))
        if self._shown_photos is None:
            photos = self._read_photos(wanted)
        else:
            photos = self._shown_photos.get(wanted, self._read_photos, fresh_for=viewer)
        shown = [
            (entry, photos[(entry.owner_id, entry.photo_id)])
            for entry in page
            if (entry.owner_id, entry.photo_id) in photos
        ]
        if len(raw) <= limit:
            return shown, response.get("LastEvaluatedKey")
        last = raw[limit - 1]
        return shown, {name: last[name] for name in ("PK", "SK", "GSI1PK", "GSI1SK")}

    def _read_photos(self, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Photo]:
        # Eventually consistent, like the index that chose them.
        keys_wanted: list[Any] = [keys.photo_key(owner_id, photo_id) for owner_id, photo_id in wanted]
        return {
            (photo.owner_id, photo.photo_id): photo
            for photo in map(photo_from_item, batch_get(self._client, self._table, keys_wanted, consistent=False))
        }

    def entries_owned_by(self, album_id: str, owner_id: str) -> list[AlbumPhotoEntry]:
        """The album's photos that one user added (a Query of the album's entries, filtered)."""
        found = query_all(
            self._client,
            {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :photos)",
                "FilterExpression": "owner_id = :owner",
                "ExpressionAttributeValues": {
                    ":pk": {"S": keys.album_pk(album_id)},
                    ":photos": {"S": keys.PHOTO_PREFIX},
                    ":owner": {"S": owner_id},
                },
                "ConsistentRead": True,
            },
        )
        return [items.album_photo_from_item(item) for item in found]

    # --- members ---------------------------------------------------------------------------------------------------

    def memberships(self, album_id: str) -> list[Membership]:
        found = query_all(
            self._client,
            {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :members)",
                "ExpressionAttributeValues": {
                    ":pk": {"S": keys.album_pk(album_id)},
                    ":members": {"S": keys.MEMBER_PREFIX},
                },
                "ConsistentRead": True,
            },
        )
        return [items.membership_from_item(item) for item in found]

    def add_member(self, album: Album, membership: Membership) -> str | None:
        """Add the member; None if added, else why not: "member" (already one, or still leaving), "full", "gone",
        "deleting" (their account is being deleted)."""
        writes: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": items.membership_item(membership),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": items.access_item(membership.user_id, album.album_id, membership.role),
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.album_key(album.album_id),
                    "UpdateExpression": "ADD member_count :one",
                    "ConditionExpression": (
                        "attribute_exists(PK) AND attribute_not_exists(deleting_since)"
                        " AND (attribute_not_exists(member_count) OR member_count < :max)"
                    ),
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": str(MEMBERS_MAX)}},
                }
            },
            _not_being_deleted(self._table, membership.user_id),
        ]
        codes = transact(self._client, writes)
        if not codes:
            return None
        if codes[3] == "ConditionalCheckFailed":
            return "deleting"
        if codes[0] == "ConditionalCheckFailed":
            return "member"
        current = self.get(album.album_id)
        return "gone" if current is None or current.deleting_since else "full"

    def change_role(self, album_id: str, user_id: str, role: Role) -> Membership | None:
        """The membership with its new role; None if they are not (or no longer) a member."""
        writes: list[Any] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.member_key(album_id, user_id),
                    "UpdateExpression": "SET #role = :role",
                    "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(leaving_since)",
                    "ExpressionAttributeNames": {"#role": "role"},
                    "ExpressionAttributeValues": {":role": {"S": role.value}},
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.album_access_key(user_id, album_id),
                    "UpdateExpression": "SET #role = :role",
                    "ConditionExpression": "attribute_exists(PK)",
                    "ExpressionAttributeNames": {"#role": "role"},
                    "ExpressionAttributeValues": {":role": {"S": role.value}},
                }
            },
        ]
        if transact(self._client, writes):
            return None
        _, membership = self.get_with_membership(album_id, user_id)
        return membership

    def begin_leaving(self, membership: Membership, *, since: str) -> bool:
        """End the membership's access at once (one transaction): it is marked leaving, the member's entry goes and
        the album's member count drops. Their photos leave next (`finish_leaving`). False if it was not a member."""
        shard = keys.cleanup_shard(membership.album_id)
        writes: list[Any] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.member_key(membership.album_id, membership.user_id),
                    "UpdateExpression": "SET leaving_since = :since, GSI1PK = :cleanup, GSI1SK = :when",
                    "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(leaving_since)",
                    "ExpressionAttributeValues": {
                        ":since": {"S": since},
                        ":cleanup": {"S": keys.cleanup_index_pk(shard)},
                        ":when": {"S": keys.cleanup_index_sk(since, membership.album_id, membership.user_id)},
                    },
                }
            },
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": keys.album_access_key(membership.user_id, membership.album_id),
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.album_key(membership.album_id),
                    "UpdateExpression": "ADD member_count :minus_one",
                    "ConditionExpression": "attribute_exists(PK)",
                    "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
                }
            },
        ]
        return not transact(self._client, writes)

    def finish_leaving(self, album_id: str, user_id: str) -> None:
        with dependency_errors("DynamoDB"):
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key=keys.member_key(album_id, user_id),
                    ConditionExpression="attribute_exists(leaving_since)",
                )
            except ClientError as e:
                if error_code(e) != "ConditionalCheckFailedException":
                    raise

    # --- deletion --------------------------------------------------------------------------------------------------

    def begin_delete(self, album: Album, *, since: str) -> bool:
        """Make the album gone for everyone at once; the clean-up (`delete_contents`) follows."""
        shard = keys.cleanup_shard(album.album_id)
        try:
            with dependency_errors("DynamoDB"):
                self._client.update_item(
                    TableName=self._table,
                    Key=keys.album_key(album.album_id),
                    UpdateExpression="SET deleting_since = :since, GSI1PK = :cleanup, GSI1SK = :when",
                    ConditionExpression="attribute_exists(PK) AND attribute_not_exists(deleting_since)",
                    ExpressionAttributeValues={
                        ":since": {"S": since},
                        ":cleanup": {"S": keys.cleanup_index_pk(shard)},
                        ":when": {"S": keys.cleanup_index_sk(since, album.album_id, keys.ALBUM_SK)},
                    },
                )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def delete_contents(self, album: Album) -> None:
        """Remove everything of a deleting album: links, members, photo entries, then the album. Each step is
        idempotent, so a run cut short is finished by the next one (a retried DELETE or the sweeper)."""
        contents = query_all(
            self._client,
            {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": keys.album_pk(album.album_id)}},
                "ConsistentRead": True,
            },
        )
        deletes: list[list[Any]] = []  # groups of keys that must go together
        for item in contents:
            sort_key = item["SK"]["S"]
            own_key = {"PK": item["PK"], "SK": item["SK"]}
            if sort_key.startswith(keys.LINK_PREFIX):
                deletes.append([keys.link_token_key(item["token_hash"]["S"]), own_key])
            elif sort_key.startswith(keys.MEMBER_PREFIX):
                deletes.append([keys.album_access_key(item["user_id"]["S"], album.album_id), own_key])
            elif sort_key.startswith(keys.PHOTO_PREFIX):
                entry = items.album_photo_from_item(item)
                deletes.append([keys.photo_album_key(entry.owner_id, entry.photo_id, album.album_id), own_key])
        # The album goes last, in the last transaction: until then the sweeper can find it and finish.
        deletes.append([keys.album_access_key(album.owner_id, album.album_id), keys.album_key(album.album_id)])
        batch: list[Any] = []
        for group in deletes:
            if len(batch) + len(group) > CLEANUP_CHUNK:
                transact(self._client, batch)
                batch = []
            batch.extend({"Delete": {"TableName": self._table, "Key": key}} for key in group)
        transact(self._client, batch)

    def left_behind(self, cutoff: str) -> list[tuple[str, str]]:
        """(album_id, "ALBUM" or a user id) of every deletion or departure begun before `cutoff` and not finished."""
        found: list[tuple[str, str]] = []
        shards = [keys.cleanup_index_pk(shard) for shard in range(keys.CLEANUP_SHARDS)]
        for item in query_index_partitions(self._client, self._table, keys.GSI1, shards, before=cutoff):
            _, album_id, what = item["GSI1SK"]["S"].rsplit("#", 2)
            if what != keys.ACCOUNT_WHAT:  # account deletions share the index; theirs is another job
                found.append((album_id, what))
        return found

    # --- share links -----------------------------------------------------------------------------------------------

    def add_link(self, link: Link) -> bool:
        """Store the link (both items) if the album still exists and is not being deleted."""
        listed, by_token = items.link_items(link)
        writes: list[Any] = [
            {"Put": {"TableName": self._table, "Item": listed, "ConditionExpression": "attribute_not_exists(PK)"}},
            {"Put": {"TableName": self._table, "Item": by_token, "ConditionExpression": "attribute_not_exists(PK)"}},
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": keys.album_key(link.album_id),
                    "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(deleting_since)",
                }
            },
        ]
        if not transact(self._client, writes):
            return True
        # As for `create`: a retried write whose first attempt had committed finds its own link.
        found = self.link_by_token_hash(link.token_hash)
        return found is not None and found.link_id == link.link_id

    def links(self, album_id: str) -> list[Link]:
        found = query_all(
            self._client,
            {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :links)",
                "ExpressionAttributeValues": {":pk": {"S": keys.album_pk(album_id)}, ":links": {"S": keys.LINK_PREFIX}},
                "ConsistentRead": True,
            },
        )
        return [items.link_from_item(item) for item in found]

    def revoke_link(self, album_id: str, link_id: str) -> bool:
        """Delete both items of the link; False if there is no such link in this album."""
        with dependency_errors("DynamoDB"):
            found = self._client.get_item(
                TableName=self._table, Key=keys.link_key(album_id, link_id), ConsistentRead=True
            ).get("Item")
        if not found:
            return False
        link = items.link_from_item(found)
        writes: list[Any] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": keys.link_key(album_id, link_id),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {"Delete": {"TableName": self._table, "Key": keys.link_token_key(link.token_hash)}},
        ]
        return not transact(self._client, writes)

    def link_by_token_hash(self, token_hash: str) -> Link | None:
        # Strongly consistent: a revoked link must stop working at once, not when a replica catches up.
        with dependency_errors("DynamoDB"):
            found = self._client.get_item(
                TableName=self._table, Key=keys.link_token_key(token_hash), ConsistentRead=True
            ).get("Item")
        return items.link_from_item(found) if found else None

    def failed_unlocks(self, token_hash: str, window_start: int) -> int:
        with dependency_errors("DynamoDB"):
            found = self._client.get_item(
                TableName=self._table, Key=keys.link_failures_key(token_hash, window_start), ConsistentRead=True
            ).get("Item")
        return int(found["count"]["N"]) if found else 0

    def record_failed_unlock(self, token_hash: str, window_start: int, *, expires_at: int) -> None:
        with dependency_errors("DynamoDB"):
            self._client.update_item(
                TableName=self._table,
                Key=keys.link_failures_key(token_hash, window_start),
                UpdateExpression="SET entity = :entity, expires_at_epoch = :expires ADD #count :one",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues={
                    ":entity": {"S": "link_failures"},
                    ":expires": {"N": str(expires_at)},
                    ":one": {"N": "1"},
                },
            )
