"""Pushes over the WebSocket API: messages to every connection of a user, through API Gateway's management API.

A push follows a write that already succeeded, so it never fails that write: every failure is logged and
swallowed here. A connection API Gateway no longer has (410 Gone) is forgotten; any other failure is logged, and a
management endpoint that does not answer ends the push at once (short timeouts, one retry), so a stuck endpoint
costs the write's caller a second or two, not the request's budget.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import logs
from chalicelib.aws import error_code
from chalicelib.realtime import messages
from chalicelib.realtime.connections import Connection

if TYPE_CHECKING:
    from chalicelib.albums.models import Album, Membership
    from chalicelib.photos.models import Photo

F = TypeVar("F", bound=Callable[..., Any])

# Messages one push sends one connection at most: a batch sends up to 50 and one request's purge of the trash a
# few hundred; past this, the rest are dropped (and logged) rather than holding up the reply.
MAX_MESSAGES_PER_CONNECTION = 100
# Connections pushed to at once (one user has at most PHOTOSKY_WS_MAX_CONNECTIONS; an album, its members').
FAN_OUT = 8


class ManagementClient(Protocol):
    """What we use of botocore's `apigatewaymanagementapi` client."""

    def post_to_connection(self, *, Data: bytes, ConnectionId: str) -> Any: ...
    def delete_connection(self, *, ConnectionId: str) -> Any: ...


class ConnectionStore(Protocol):
    def of_user(self, user_id: str) -> list[Connection]: ...
    def forget(self, user_id: str, connection_id: str) -> None: ...
    def remove(self, connection_id: str) -> str | None: ...


class AlbumReader(Protocol):
    def get(self, album_id: str) -> Album | None: ...
    def memberships(self, album_id: str) -> list[Membership]: ...


def _never_raises(method: F) -> F:
    """A push failing must never fail the write it follows: log it instead."""

    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as e:
            logs.emit("realtime", outcome="push_failed", step=method.__name__, error=_describe(e))
            return None

    return guarded  # type: ignore[return-value]


class _EndpointDown(Exception):
    """The management endpoint did not answer: stop pushing for this request."""


class WebSocketNotifier:
    """Realtime on: pushes through the management API (`client` is built on first use, so a request that finds
    nobody connected never builds it)."""

    enabled = True

    def __init__(
        self,
        connections: ConnectionStore,
        client: Callable[[], ManagementClient],
        *,
        albums: Callable[[], AlbumReader],
    ) -> None:
        self._connections = connections
        self._client = client
        self._albums = albums

    # --- what services call ----------------------------------------------------------------------------------------

    @_never_raises
    def photos(
        self,
        owner_id: str,
        *,
        changed: Sequence[Photo] = (),
        deleted: Sequence[str] = (),
        albums: Iterable[str] = (),
    ) -> None:
        """Photos of `owner_id` changed or were deleted for good; `albums` are the albums they left or rejoined."""
        sent = [messages.photo(photo) for photo in changed] + [messages.photo_deleted(i) for i in deleted]
        if sent:
            self._send({owner_id: sent})
        album_ids = sorted(set(albums))
        if album_ids:
            self.albums_changed(album_ids)

    @_never_raises
    def albums_changed(self, album_ids: Sequence[str]) -> None:
        """Tell everyone who can read each album (its owner and its members) that it changed."""
        reader = self._albums()
        outbox: dict[str, list[messages.Message]] = {}
        for album_id in album_ids:
            album = reader.get(album_id)
            if album is None or album.deleting_since is not None:
                continue  # its deletion told its people already
            for user_id in self._audience(reader, album):
                outbox.setdefault(user_id, []).append(messages.album(album))
        self._send(outbox)

    @_never_raises
    def album_removed(self, album_id: str, user_ids: Sequence[str]) -> None:
        """These users lost access to the album (removed, or they left)."""
        self._send({user_id: [messages.album_removed(album_id)] for user_id in user_ids})

    @_never_raises
    def album_deleted(self, album: Album) -> None:
        """The album is gone for everyone: call after marking it deleted, before its members are removed."""
        users = self._audience(self._albums(), album)
        self._send({user_id: [messages.album_removed(album.album_id)] for user_id in users})

    # --- what the WebSocket handlers call --------------------------------------------------------------------------

    @_never_raises
    def reply(self, connection_id: str, message: messages.Message) -> None:
        """Answer one connection (a pong); forget it if it is gone."""
        try:
            self._client().post_to_connection(Data=messages.encode(message), ConnectionId=connection_id)
        except ClientError as e:
            if error_code(e) != "GoneException":
                raise
            self._connections.remove(connection_id)

    @_never_raises
    def close(self, connection_id: str) -> None:
        """Close a connection (one evicted past the bound); one already gone is closed already."""
        try:
            self._client().delete_connection(ConnectionId=connection_id)
        except ClientError as e:
            if error_code(e) != "GoneException":
                raise
        logs.emit("realtime", outcome="closed", connection_id=connection_id)

    # --- the pushing -----------------------------------------------------------------------------------------------

    @staticmethod
    def _audience(reader: AlbumReader, album: Album) -> list[str]:
        members = reader.memberships(album.album_id) if album.member_count else []
        return [album.owner_id, *(m.user_id for m in members if m.leaving_since is None)]

    def _send(self, outbox: dict[str, list[messages.Message]]) -> None:
        """Every user's messages to each of their connections, connections in parallel, each one's in order."""
        work = [
            (user_id, connection, sent)
            for user_id, sent in outbox.items()
            if sent
            for connection in self._connections.of_user(user_id)
        ]
        if not work:
            return
        client = self._client()
        if len(work) == 1:
            self._deliver(client, *work[0])
            return
        # Imported here: most pushes reach one connection, and the API's cold start need not load the thread pool.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(FAN_OUT, len(work))) as pool:
            for done in [pool.submit(self._deliver, client, *item) for item in work]:
                done.result()

    def _deliver(
        self, client: ManagementClient, user_id: str, connection: Connection, sent: list[messages.Message]
    ) -> None:
        connection_id = connection.connection_id
        if len(sent) > MAX_MESSAGES_PER_CONNECTION:
            logs.emit(
                "realtime",
                outcome="messages_dropped",
                user_id=user_id,
                connection_id=connection_id,
                dropped=len(sent) - MAX_MESSAGES_PER_CONNECTION,
            )
            sent = sent[:MAX_MESSAGES_PER_CONNECTION]
        for message in sent:
            try:
                client.post_to_connection(Data=messages.encode(message), ConnectionId=connection_id)
            except ClientError as e:
                if error_code(e) == "GoneException":
                    # The client went without a $disconnect we saw (or it is still on its way): forget it now.
                    self._connections.forget(user_id, connection_id)
                    logs.emit("realtime", outcome="gone", user_id=user_id, connection_id=connection_id)
                    return
                logs.emit(
                    "realtime", outcome="post_failed", user_id=user_id, connection_id=connection_id, error=_describe(e)
                )
                return
            except BotoCoreError as e:
                # Timeouts and refused connections: the endpoint is down, so the other connections would wait too.
                logs.emit(
                    "realtime", outcome="post_failed", user_id=user_id, connection_id=connection_id, error=_describe(e)
                )
                raise _EndpointDown from e


class SilentNotifier:
    """Realtime off (no PHOTOSKY_WS_MANAGEMENT_URL): nothing is pushed, and nothing is read to find out whom to."""

    enabled = False

    def photos(
        self,
        owner_id: str,
        *,
        changed: Sequence[Photo] = (),
        deleted: Sequence[str] = (),
        albums: Iterable[str] = (),
    ) -> None:
        return None

    def albums_changed(self, album_ids: Sequence[str]) -> None:
        return None

    def album_removed(self, album_id: str, user_ids: Sequence[str]) -> None:
        return None

    def album_deleted(self, album: Album) -> None:
        return None

    def reply(self, connection_id: str, message: messages.Message) -> None:
        return None

    def close(self, connection_id: str) -> None:
        return None


def _describe(error: BaseException) -> str:
    """What went wrong, for the log: the error's class and AWS code (no message: it could echo a request)."""
    cause = error.__cause__ if isinstance(error, _EndpointDown) and error.__cause__ else error
    if isinstance(cause, ClientError):
        return f"{type(cause).__name__}:{error_code(cause)}"
    return type(cause).__name__
