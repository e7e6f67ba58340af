"""The messages on the socket, each a JSON text frame (README "Live status (WebSocket)").

Server to client: `photo`, `photo_deleted`, `album`, `album_removed`, `pong` and `error`. Client to server: only
`{"type": "ping"}`. A message says what changed, never anything its recipient could not read through the API.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.albums.models import Album
    from chalicelib.photos.models import Photo

Message = dict[str, Any]

PONG: Message = {"type": "pong"}
# The largest client message read: a ping is a dozen bytes; anything far larger is not one of ours.
MAX_CLIENT_MESSAGE_CHARS = 1024


def photo(photo: Photo) -> Message:
    """A photo of the recipient's changed: the fields a client needs to update the tile in place (the rest, and
    the URLs, it gets by reading the photo again)."""
    return {
        "type": "photo",
        "photo": {
            "photo_id": photo.photo_id,
            "status": photo.status.value,
            "version": photo.version,
            "updated_at": photo.updated_at,
            "rejection_reason": photo.rejection_reason,
            "duplicate_of": photo.duplicate_of,
        },
    }


def photo_deleted(photo_id: str) -> Message:
    return {"type": "photo_deleted", "photo_id": photo_id}


def album(album: Album) -> Message:
    """An album the recipient can read changed (photos, title, cover, members): read it again to see how."""
    return {
        "type": "album",
        "album": {"album_id": album.album_id, "version": album.version, "updated_at": album.updated_at},
    }


def album_removed(album_id: str) -> Message:
    """The recipient lost access to an album (removed, left, or it was deleted)."""
    return {"type": "album_removed", "album_id": album_id}


def error(message: str) -> Message:
    return {"type": "error", "message": message}


def encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def reply_to(body: str | None) -> Message:
    """The answer to a client's frame: a pong to a ping, an error naming the problem to anything else."""
    if body is None or len(body) > MAX_CLIENT_MESSAGE_CHARS:
        return error(f'send {{"type": "ping"}} (at most {MAX_CLIENT_MESSAGE_CHARS} characters) to keep alive')
    try:
        parsed = json.loads(body)
    except ValueError:
        return error("a message must be a JSON object")
    if not isinstance(parsed, dict):
        return error("a message must be a JSON object")
    if parsed.get("type") != "ping":
        return error('the only message a client sends is {"type": "ping"}')
    return PONG
