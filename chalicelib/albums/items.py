"""The album items in the table, and the writes that take photos out of an album.

Both repositories use these: the album repository when photos are removed or an album goes, the photo repository
when a deleted photo leaves every album it was in. One spelling of those writes keeps counts and covers right
whichever way a photo leaves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from chalicelib import keys
from chalicelib.albums.models import Album, AlbumPhotoEntry, Link, Membership, Role
from chalicelib.aws import dependency_errors
from chalicelib.photos.models import PreviewFormat

Item = dict[str, Any]


def _s(value: str | None) -> dict[str, str] | None:
    return {"S": value} if value is not None else None


def _compact(attributes: dict[str, Any]) -> Item:
    return {name: value for name, value in attributes.items() if value is not None}


def _str(item: Item, name: str) -> str | None:
    return item[name]["S"] if name in item else None


# The album's `cover_preview` is "<photo_id>#<preview format>": the format of the photo it names, which is the cover
# only while that photo is. A photo joining an album sets it only where it is missing, as it does the cover; but an
# album whose cover was set before WebP previews has a cover and no `cover_preview`, and there the joining photo's
# would be written beside a cover it does not describe. Naming the photo makes that harmless: a `cover_preview`
# naming another photo than the cover says nothing, and the cover's previews are JPEG (the format of every photo
# whose album has no `cover_preview` for it). Every write that moves or removes the cover writes it too.
def cover_preview(photo_id: str, preview_format: PreviewFormat) -> str:
    return f"{photo_id}#{preview_format.value}"


def cover_preview_format(item: Item) -> PreviewFormat:
    cover, recorded = _str(item, "cover_photo_id"), _str(item, "cover_preview")
    if cover is None or recorded is None:
        return PreviewFormat.JPEG
    photo_id, _, preview_format = recorded.rpartition("#")
    return PreviewFormat(preview_format) if photo_id == cover else PreviewFormat.JPEG


def album_item(album: Album) -> Item:
    attributes: dict[str, Any] = {
        **keys.album_key(album.album_id),
        "entity": {"S": "album"},
        "album_id": {"S": album.album_id},
        "owner_id": {"S": album.owner_id},
        "owner_username": _s(album.owner_username),
        "title": {"S": album.title},
        "description": _s(album.description),
        "cover_photo_id": _s(album.cover_photo_id),
        "cover_owner_id": _s(album.cover_owner_id),
        "cover_preview": _s(
            cover_preview(album.cover_photo_id, album.cover_preview_format) if album.cover_photo_id else None
        ),
        "photo_count": {"N": str(album.photo_count)},
        "member_count": {"N": str(album.member_count)},
        "created_at": {"S": album.created_at},
        "updated_at": {"S": album.updated_at},
        "version": {"N": str(album.version)},
    }
    return _compact(attributes)


def album_from_item(item: Item) -> Album:
    return Album(
        album_id=item["album_id"]["S"],
        owner_id=item["owner_id"]["S"],
        owner_username=_str(item, "owner_username"),
        title=item["title"]["S"],
        description=_str(item, "description"),
        cover_photo_id=_str(item, "cover_photo_id"),
        cover_owner_id=_str(item, "cover_owner_id"),
        cover_preview_format=cover_preview_format(item),
        photo_count=int(item.get("photo_count", {"N": "0"})["N"]),
        member_count=int(item.get("member_count", {"N": "0"})["N"]),
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        version=int(item["version"]["N"]),
        deleting_since=_str(item, "deleting_since"),
    )


def membership_item(membership: Membership) -> Item:
    return _compact(
        {
            **keys.member_key(membership.album_id, membership.user_id),
            "entity": {"S": "album_member"},
            "album_id": {"S": membership.album_id},
            "user_id": {"S": membership.user_id},
            "username": {"S": membership.username},
            "role": {"S": membership.role.value},
            "added_at": {"S": membership.added_at},
        }
    )


def membership_from_item(item: Item) -> Membership:
    return Membership(
        album_id=item["album_id"]["S"],
        user_id=item["user_id"]["S"],
        username=item["username"]["S"],
        role=Role(item["role"]["S"]),
        added_at=item["added_at"]["S"],
        leaving_since=_str(item, "leaving_since"),
        contributed=item.get("contributed", {}).get("BOOL", False),
    )


def access_item(user_id: str, album_id: str, role: Role) -> Item:
    return {
        **keys.album_access_key(user_id, album_id),
        "entity": {"S": "album_access"},
        "album_id": {"S": album_id},
        "role": {"S": role.value},
    }


def album_photo_item(entry: AlbumPhotoEntry) -> Item:
    return _compact(
        {
            **keys.album_photo_key(entry.album_id, entry.photo_id),
            "entity": {"S": "album_photo"},
            "album_id": {"S": entry.album_id},
            "photo_id": {"S": entry.photo_id},
            "owner_id": {"S": entry.owner_id},
            "added_at": {"S": entry.added_at},
            # As in the photo's item: only when not JPEG.
            "preview_format": {"S": entry.preview_format.value}
            if entry.preview_format is not PreviewFormat.JPEG
            else None,
            "GSI1PK": {"S": keys.album_photos_index_pk(entry.album_id)},
            "GSI1SK": {"S": keys.album_photos_index_sk(entry.added_at, entry.photo_id)},
        }
    )


def album_photo_from_item(item: Item) -> AlbumPhotoEntry:
    return AlbumPhotoEntry(
        album_id=item["album_id"]["S"],
        photo_id=item["photo_id"]["S"],
        owner_id=item["owner_id"]["S"],
        added_at=item["added_at"]["S"],
        preview_format=PreviewFormat.recorded(_str(item, "preview_format")),
    )


def photo_album_item(entry: AlbumPhotoEntry) -> Item:
    """Keys only, beside the photo: which albums it is in."""
    return {
        **keys.photo_album_key(entry.owner_id, entry.photo_id, entry.album_id),
        "entity": {"S": "photo_album"},
    }


def album_id_of_photo_album(item: Item) -> str:
    return str(item["SK"]["S"]).rsplit("#", 1)[1]


def link_items(link: Link) -> tuple[Item, Item]:
    """The link as its album lists it (no token hash needed there, but kept to find the token item) and as a
    visitor finds it by its token's hash."""
    common = _compact(
        {
            "entity": {"S": "album_link"},
            "link_id": {"S": link.link_id},
            "album_id": {"S": link.album_id},
            "token_hash": {"S": link.token_hash},
            "created_at": {"S": link.created_at},
            "expires_at": _s(link.expires_at),
            "password_hash": _s(link.password_hash),
            "allow_download": {"BOOL": link.allow_download},
        }
    )
    listed = {**keys.link_key(link.album_id, link.link_id), **common}
    by_token = {**keys.link_token_key(link.token_hash), **common, "entity": {"S": "link_token"}}
    return listed, by_token


def link_from_item(item: Item) -> Link:
    return Link(
        link_id=item["link_id"]["S"],
        album_id=item["album_id"]["S"],
        token_hash=item["token_hash"]["S"],
        created_at=item["created_at"]["S"],
        expires_at=_str(item, "expires_at"),
        password_hash=_str(item, "password_hash"),
        allow_download=item.get("allow_download", {}).get("BOOL", False),
    )


def leave_album_writes(
    table: str, album: Album, leaving: Sequence[AlbumPhotoEntry], *, now: str, successor: AlbumPhotoEntry | None = None
) -> list[dict[str, Any]]:
    """The writes that take `leaving` (photos of one album) out of it: each entry and its copy beside the photo,
    and one update of the album's count, its time and, if the cover is leaving, its cover: `successor` (which must
    still be in the album) or none when no photo is left.

    Every entry must still exist and the album's cover must still be what `album` says, or the transaction fails
    and the caller reads again: so a count never drops twice for one photo, and a cover never points at a photo
    that has left. The new cover is chosen in the same transaction, so no retry or crash can leave an album with
    photos and no cover.
    """
    writes: list[dict[str, Any]] = []
    for entry in leaving:
        writes.append(
            {
                "Delete": {
                    "TableName": table,
                    "Key": keys.album_photo_key(entry.album_id, entry.photo_id),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            }
        )
        writes.append(
            {
                "Delete": {
                    "TableName": table,
                    "Key": keys.photo_album_key(entry.owner_id, entry.photo_id, entry.album_id),
                }
            }
        )
    values: dict[str, Any] = {":minus": {"N": str(-len(leaving))}, ":now": {"S": now}}
    sets = ["updated_at = :now"]
    removes: list[str] = []
    if album.cover_photo_id is None:
        condition = "attribute_exists(PK) AND attribute_not_exists(cover_photo_id)"
    else:
        condition = "attribute_exists(PK) AND cover_photo_id = :cover"
        values[":cover"] = {"S": album.cover_photo_id}
        if covers_cleared(album, leaving):
            if successor is None:
                removes = ["cover_photo_id", "cover_owner_id", "cover_preview"]
            else:
                sets += ["cover_photo_id = :next", "cover_owner_id = :next_owner", "cover_preview = :next_preview"]
                values[":next"] = {"S": successor.photo_id}
                values[":next_owner"] = {"S": successor.owner_id}
                values[":next_preview"] = {"S": cover_preview(successor.photo_id, successor.preview_format)}
                writes.append(
                    {
                        "ConditionCheck": {
                            "TableName": table,
                            "Key": keys.album_photo_key(album.album_id, successor.photo_id),
                            "ConditionExpression": "attribute_exists(PK)",
                        }
                    }
                )
    update = "ADD photo_count :minus SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    writes.append(
        {
            "Update": {
                "TableName": table,
                "Key": keys.album_key(album.album_id),
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }
    )
    return writes


def join_album_writes(
    table: str, album_id: str, joining: Sequence[AlbumPhotoEntry], *, now: str, contributor_id: str | None
) -> list[dict[str, Any]]:
    """The writes that put `joining` (photos of one album) into it: each entry (which must not be there yet) and its
    copy beside the photo, then one update of the album's count and time, giving it a cover if it has none (the
    album must exist and not be being deleted), and, for a contributor's photos, a check that they still are one
    (marking that they contributed, so their photos leave with them)."""
    writes: list[dict[str, Any]] = []
    for entry in joining:
        writes.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": album_photo_item(entry),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        )
        writes.append({"Put": {"TableName": table, "Item": photo_album_item(entry)}})
    first = joining[0]
    writes.append(
        {
            "Update": {
                "TableName": table,
                "Key": keys.album_key(album_id),
                "UpdateExpression": (
                    "ADD photo_count :n SET updated_at = :now,"
                    " cover_photo_id = if_not_exists(cover_photo_id, :cover),"
                    " cover_owner_id = if_not_exists(cover_owner_id, :cover_owner),"
                    " cover_preview = if_not_exists(cover_preview, :cover_preview)"
                ),
                "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(deleting_since)",
                "ExpressionAttributeValues": {
                    ":n": {"N": str(len(joining))},
                    ":now": {"S": now},
                    ":cover": {"S": first.photo_id},
                    ":cover_owner": {"S": first.owner_id},
                    ":cover_preview": {"S": cover_preview(first.photo_id, first.preview_format)},
                },
            }
        }
    )
    if contributor_id is not None:
        writes.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": keys.member_key(album_id, contributor_id),
                    "UpdateExpression": "SET contributed = :yes",
                    "ConditionExpression": "#role = :contributor AND attribute_not_exists(leaving_since)",
                    "ExpressionAttributeNames": {"#role": "role"},
                    "ExpressionAttributeValues": {
                        ":yes": {"BOOL": True},
                        ":contributor": {"S": Role.CONTRIBUTOR.value},
                    },
                }
            }
        )
    return writes


def covers_cleared(album: Album, leaving: Iterable[AlbumPhotoEntry]) -> bool:
    return album.cover_photo_id is not None and album.cover_photo_id in {entry.photo_id for entry in leaving}


def cover_successor(
    client: Any, table: str, album: Album, leaving: Sequence[AlbumPhotoEntry]
) -> AlbumPhotoEntry | None:
    """If the cover is among `leaving`, the most recently added photo that stays (None if none does, or if the
    cover stays). Read from the album's photo index, which may lag: a photo that left a moment ago fails the
    ConditionCheck `leave_album_writes` puts on it, and the caller reads again."""
    if not covers_cleared(album, leaving):
        return None
    excluded = {entry.photo_id for entry in leaving}
    query: dict[str, Any] = {
        "TableName": table,
        "IndexName": keys.GSI1,
        "KeyConditionExpression": "GSI1PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": keys.album_photos_index_pk(album.album_id)}},
        "ScanIndexForward": False,
        "Limit": min(len(excluded) + 1, 100),
        "ProjectionExpression": "album_id, photo_id, owner_id, added_at, preview_format",
    }
    while True:
        with dependency_errors("DynamoDB"):
            response = client.query(**query)
        for item in response.get("Items", []):
            if item["photo_id"]["S"] not in excluded:
                return album_photo_from_item(item)
        if "LastEvaluatedKey" not in response:
            return None
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
