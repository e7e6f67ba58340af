"""The notifier and the client-message rules on fakes: what reaches whom, and that a push never raises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.albums.models import Album, Membership, Role
from chalicelib.photos.models import Photo, PhotoStatus
from chalicelib.realtime import messages
from chalicelib.realtime.connections import Connection
from chalicelib.realtime.notifier import MAX_MESSAGES_PER_CONNECTION, WebSocketNotifier

NOW = "2026-12-01T10:00:00.000Z"


class Store:
    """Connections by user; records what was forgotten."""

    def __init__(self, **by_user: list[str]) -> None:
        self.by_user = by_user
        self.forgotten: list[tuple[str, str]] = []
        self.reads = 0

    def of_user(self, user_id: str) -> list[Connection]:
        self.reads += 1
        return [Connection(c, n) for n, c in enumerate(self.by_user.get(user_id, []))]

    def forget(self, user_id: str, connection_id: str) -> None:
        self.forgotten.append((user_id, connection_id))

    def remove(self, connection_id: str) -> str | None:
        self.forgotten.append(("?", connection_id))
        return None


class Endpoint:
    def __init__(self, fail: Exception | None = None) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def post_to_connection(self, *, Data: bytes, ConnectionId: str) -> Any:
        if self.fail is not None:
            raise self.fail
        self.posts.append((ConnectionId, json.loads(Data)))

    def delete_connection(self, *, ConnectionId: str) -> Any:
        raise AssertionError("not closed here")


class Albums:
    def __init__(self, albums: list[Album], members: list[Membership]) -> None:
        self.albums = {album.album_id: album for album in albums}
        self.members = members

    def get(self, album_id: str) -> Album | None:
        return self.albums.get(album_id)

    def memberships(self, album_id: str) -> list[Membership]:
        return [m for m in self.members if m.album_id == album_id]


def client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PostToConnection")


def photo(photo_id: str = "p1", owner: str = "alice") -> Photo:
    return Photo(photo_id, owner, PhotoStatus.READY, "a.jpg", "image/jpeg", 10, NOW, NOW, NOW)


def notifier(store: Store, endpoint: Endpoint, albums: Albums | None = None) -> WebSocketNotifier:
    return WebSocketNotifier(store, lambda: endpoint, albums=lambda: albums or Albums([], []))


def test_nobody_connected_means_no_client_is_built() -> None:
    def no_client() -> Endpoint:
        raise AssertionError("built for nobody")

    store = Store()
    WebSocketNotifier(store, no_client, albums=lambda: Albums([], [])).photos("alice", changed=[photo()])
    assert store.reads == 1


def test_every_connection_of_the_owner_gets_each_message_in_order() -> None:
    endpoint = Endpoint()
    notifier(Store(alice=["a1", "a2"], bob=["b1"]), endpoint).photos("alice", changed=[photo("p1")], deleted=["p2"])
    for connection_id in ("a1", "a2"):
        sent = [m for to, m in endpoint.posts if to == connection_id]
        assert sent == [messages.photo(photo("p1")), {"type": "photo_deleted", "photo_id": "p2"}]
    assert all(to != "b1" for to, _ in endpoint.posts)


def test_one_push_sends_a_connection_at_most_the_cap_and_logs_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = Endpoint()
    deleted = [f"p{n}" for n in range(MAX_MESSAGES_PER_CONNECTION + 5)]
    notifier(Store(alice=["a1"]), endpoint).photos("alice", deleted=deleted)
    assert len(endpoint.posts) == MAX_MESSAGES_PER_CONNECTION
    assert '"outcome":"messages_dropped"' in capsys.readouterr().out


@pytest.mark.parametrize(
    "failure",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
        client_error("ForbiddenException", 403),
        RuntimeError("a bug"),
    ],
)
def test_a_push_never_raises_and_logs_what_failed(failure: Exception, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(alice=["a1", "a2"])
    notifier(store, Endpoint(fail=failure)).photos("alice", changed=[photo()])
    logged = capsys.readouterr().out
    assert type(failure).__name__ in logged
    assert store.forgotten == []  # only a 410 forgets a connection


def test_a_gone_connection_is_forgotten_once_and_gets_no_more_messages() -> None:
    class GoneFor(Endpoint):
        def post_to_connection(self, *, Data: bytes, ConnectionId: str) -> Any:
            if ConnectionId == "a1":
                raise client_error("GoneException", 410)
            return super().post_to_connection(Data=Data, ConnectionId=ConnectionId)

    store, endpoint = Store(alice=["a1", "a2"]), GoneFor()
    notifier(store, endpoint).photos("alice", changed=[photo("p1"), photo("p2")])
    assert store.forgotten == [("alice", "a1")]
    assert [to for to, _ in endpoint.posts] == ["a2", "a2"]


def test_album_messages_go_to_the_owner_and_current_members_only_and_not_for_a_deleting_album() -> None:
    shared = Album("al1", "alice", "Trip", NOW, NOW, member_count=2, version=3)
    going = Album("al2", "alice", "Gone", NOW, NOW, deleting_since=NOW)
    members = [
        Membership("al1", "bob", "bob", Role.VIEWER, NOW),
        Membership("al1", "carol", "carol", Role.CONTRIBUTOR, NOW, leaving_since=NOW),
    ]
    endpoint = Endpoint()
    store = Store(alice=["a1"], bob=["b1"], carol=["c1"])
    notifier(store, endpoint, Albums([shared, going], members)).albums_changed(["al1", "al2"])
    assert sorted(endpoint.posts, key=lambda post: post[0]) == [
        ("a1", {"type": "album", "album": {"album_id": "al1", "version": 3, "updated_at": NOW}}),
        ("b1", {"type": "album", "album": {"album_id": "al1", "version": 3, "updated_at": NOW}}),
    ]


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ('{"type":"ping"}', "pong"),
        ('{"type":"ping","extra":1}', "pong"),
        ("", "error"),
        ("null", "error"),
        ('"ping"', "error"),
        ('{"type":"PING"}', "error"),
        ("{" * 100_000, "error"),  # a deep or huge frame is refused before it is parsed
    ],
)
def test_only_a_ping_is_answered_with_a_pong(body: str, answer: str) -> None:
    assert messages.reply_to(body)["type"] == answer
