"""Who hears what on the socket: every kind of change × every role, against one table of expected messages.

One shared album of the owner's, with a contributor and a viewer in it, a former member (added, then removed) and a
stranger; each of them holds one open connection. A share-link visitor has no ID token, so it cannot connect at all.
For each change (`EXPECTED`'s rows) every connection must receive exactly the message types of its cell, in order,
and no photo message about anyone's photo but the recipient's own. The scene is built once and restored for each
change (moto_state), the management API is a recording fake.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import deps
from tests.integration.conftest import User
from tests.integration.test_realtime import (  # noqa: F401 - fixtures re-exported
    FakeManagementApi,
    connect,
    management,
    realtime_env,
)
from tests.reliability.moto_state import MadeOnce
from tests.reliability.support import body, upload_ready
from tests.support.albums import add_photos, create_album, create_link, share, unlock

pytestmark = pytest.mark.suite("idor")

OWNER, CONTRIBUTOR, VIEWER, FORMER, STRANGER = "owner", "contributor", "viewer", "former member", "stranger"
ROLES = (OWNER, CONTRIBUTOR, VIEWER, FORMER, STRANGER)
PASSWORD = "correct horse battery"

# One row per change, one column per role in ROLES' order: the types of the messages its connection receives. A
# photo's messages go to its owner alone, whoever else can see it in an album; an album's to everyone who can read
# it (its owner and its members), and whoever loses it hears `album_removed`. A photo that leaves or joins an album
# is a change of that album too.
_ROWS: dict[str, tuple[tuple[str, ...], ...]] = {
    "the owner's upload settles": (("photo",), (), (), (), ()),
    "the contributor's upload settles": ((), ("photo",), (), (), ()),
    "the owner edits a photo in the album": (("photo",), (), (), (), ()),
    "the contributor edits their photo in the album": ((), ("photo",), (), (), ()),
    "the owner trashes a photo in the album": (("photo", "album"), ("album",), ("album",), (), ()),
    "the owner deletes a photo in the album for good": (("photo_deleted", "album"), ("album",), ("album",), (), ()),
    "the contributor deletes their photo in the album for good": (
        ("album",),
        ("photo_deleted", "album"),
        ("album",),
        (),
        (),
    ),
    "the contributor adds a photo to the album": (("album",), ("album",), ("album",), (), ()),
    "the owner renames the album": (("album",), ("album",), ("album",), (), ()),
    "the owner removes the viewer": (("album",), ("album",), ("album_removed",), (), ()),
    "the contributor leaves": (("album",), ("album_removed",), ("album",), (), ()),
    "the owner deletes the album": (("album_removed",), ("album_removed",), ("album_removed",), (), ()),
}
EXPECTED: dict[tuple[str, str], tuple[str, ...]] = {
    (change, role): kinds for change, cells in _ROWS.items() for role, kinds in zip(ROLES, cells, strict=True)
}


@dataclass
class Scene:
    """The ids of the scene (users by role, photos by name, the album, a live link); bound to a test's API."""

    subs: dict[str, str]
    album_id: str
    photos: dict[str, str]  # name -> photo id
    owners: dict[str, str]  # photo id -> the role whose photo it is
    link_token: str
    api: Client | None = None
    s3: Any = None
    users: dict[str, User] = field(default_factory=dict)

    def connection(self, role: str) -> str:
        return f"{role.replace(' ', '-')}-1="


def _sub(prefix: str) -> str:
    return f"{prefix}-0000-4000-8000-00000000{prefix[:4]}"


def build(api: Client, s3: Any) -> Scene:
    subs = {
        OWNER: _sub("0a0e2000"),
        CONTRIBUTOR: _sub("c0a72000"),
        VIEWER: _sub("7e0e2000"),
        FORMER: _sub("f0e12000"),
        STRANGER: _sub("5a0a2000"),
    }
    users = {role: User(api, sub) for role, sub in subs.items()}
    owner, contributor = users[OWNER], users[CONTRIBUTOR]
    uploads = {
        "owner's in album": owner,
        "contributor's in album": contributor,
        "contributor's to add": contributor,
        "stranger's": users[STRANGER],
    }
    photos = {name: upload_ready(api, s3, user)["photo_id"] for name, user in uploads.items()}
    owners = {photos[name]: next(r for r, u in users.items() if u is user) for name, user in uploads.items()}
    album_id = create_album(owner, "Summer")["album_id"]
    add_photos(owner, album_id, photos["owner's in album"])
    share(owner, album_id, contributor, "contributor")
    add_photos(contributor, album_id, photos["contributor's in album"])
    share(owner, album_id, users[VIEWER], "viewer")
    share(owner, album_id, users[FORMER], "contributor")
    removed = owner.call("DELETE", f"/albums/{album_id}/members/{users[FORMER].sub}")
    assert removed.status_code == 204, removed.body
    link = create_link(owner, album_id, password=PASSWORD)
    scene = Scene(subs, album_id, photos, owners, link["token"])
    for role, user in users.items():
        assert connect(api, user.token, scene.connection(role)) == (scene.connection(role), 200)
    return scene


@pytest.fixture
def scene(
    api: Client,
    aws: boto3.session.Session,
    s3: Any,
    made_once: MadeOnce,
    management: FakeManagementApi,  # noqa: F811 - the imported fixture
) -> Scene:
    """The scene, built once per module and restored for each test (and each change) that asks for it."""
    made = made_once("realtime idor", lambda: build(api, s3))
    made.api, made.s3 = api, s3
    made.users = {role: User(api, sub) for role, sub in made.subs.items()}
    return made


def _built_already() -> Scene:
    raise AssertionError("the scene is built by the `scene` fixture first")


def again(scene: Scene, made_once: MadeOnce, management: FakeManagementApi) -> None:  # noqa: F811
    """Back to the scene as built (table and bucket), with nothing received yet."""
    made_once("realtime idor", _built_already)
    management.posts.clear()
    management.deleted.clear()
    deps.reset()  # fresh services: nothing cached from the change before


# --- the changes ----------------------------------------------------------------------------------------------------


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.body
    return body(response)


def _settle(role: str) -> Callable[[Scene], None]:
    def change(s: Scene) -> None:
        assert s.api is not None
        photo_id = upload_ready(s.api, s.s3, s.users[role])["photo_id"]
        s.owners[photo_id] = role

    return change


def _edit(role: str, name: str) -> Callable[[Scene], None]:
    return lambda s: _ok(s.users[role].call("PATCH", f"/photos/{s.photos[name]}", {"title": "x", "version": 1}))


def _trash(role: str, name: str) -> Callable[[Scene], None]:
    return lambda s: _ok(s.users[role].call("DELETE", f"/photos/{s.photos[name]}"), 204)


def _add(role: str, name: str) -> Callable[[Scene], None]:
    def change(s: Scene) -> None:
        assert [r["status"] for r in add_photos(s.users[role], s.album_id, s.photos[name])] == ["added"]

    return change


def _purge(role: str, name: str) -> Callable[[Scene], None]:
    return lambda s: _ok(s.users[role].call("DELETE", f"/photos/{s.photos[name]}?permanent=true"), 204)


CHANGES: dict[str, Callable[[Scene], None]] = {
    "the owner's upload settles": _settle(OWNER),
    "the contributor's upload settles": _settle(CONTRIBUTOR),
    "the owner edits a photo in the album": _edit(OWNER, "owner's in album"),
    "the contributor edits their photo in the album": _edit(CONTRIBUTOR, "contributor's in album"),
    "the owner trashes a photo in the album": _trash(OWNER, "owner's in album"),
    "the owner deletes a photo in the album for good": _purge(OWNER, "owner's in album"),
    "the contributor deletes their photo in the album for good": _purge(CONTRIBUTOR, "contributor's in album"),
    "the contributor adds a photo to the album": _add(CONTRIBUTOR, "contributor's to add"),
    "the owner renames the album": lambda s: _ok(
        s.users[OWNER].call("PATCH", f"/albums/{s.album_id}", {"title": "Winter", "version": 1})
    ),
    "the owner removes the viewer": lambda s: _ok(
        s.users[OWNER].call("DELETE", f"/albums/{s.album_id}/members/{s.subs[VIEWER]}"), 204
    ),
    "the contributor leaves": lambda s: _ok(
        s.users[CONTRIBUTOR].call("DELETE", f"/albums/{s.album_id}/members/{s.subs[CONTRIBUTOR]}"), 204
    ),
    "the owner deletes the album": lambda s: _ok(s.users[OWNER].call("DELETE", f"/albums/{s.album_id}"), 204),
}


def test_the_matrix_covers_every_change_and_role() -> None:
    assert set(CHANGES) == set(_ROWS)
    # Every role hears of something, and only the album's readers of the album.
    for role in (OWNER, CONTRIBUTOR, VIEWER):
        assert any(EXPECTED[(change, role)] for change in _ROWS), role


def test_each_change_reaches_exactly_the_connections_its_row_names(
    scene: Scene,
    made_once: MadeOnce,
    management: FakeManagementApi,  # noqa: F811
    subtests: Any,
) -> None:
    for change, make in CHANGES.items():
        with subtests.test(change=change):
            again(scene, made_once, management)
            owners = dict(scene.owners)
            make(scene)
            for role in ROLES:
                received = management.received(scene.connection(role))
                assert tuple(m["type"] for m in received) == EXPECTED[(change, role)], (role, received)
                for message in received:
                    if message["type"] == "photo":
                        photo_id = message["photo"]["photo_id"]
                    elif message["type"] == "photo_deleted":
                        photo_id = message["photo_id"]
                    else:
                        assert (message.get("album") or message)["album_id"] == scene.album_id, message
                        continue
                    # Nobody hears of a photo that is not theirs, even one they can see in the album.
                    assert scene.owners.get(photo_id) == role, (role, message)
            scene.owners = owners


def test_a_share_link_visitor_cannot_connect_with_anything_a_link_gives(
    scene: Scene,
    management: FakeManagementApi,  # noqa: F811
) -> None:
    """A visitor has the link's token and, after the password, an access token: neither is an ID token, and no
    token at all is refused the same way. Nothing is stored for any of them."""
    assert scene.api is not None
    access = unlock(scene.api, scene.link_token, PASSWORD)  # a working access token: the album opens with it
    for name, token in {"no token": None, "the link's token": scene.link_token, "its access token": access}.items():
        connection_id = f"visitor-{len(name)}="
        assert connect(scene.api, token, connection_id) == (connection_id, 401), name
        assert deps.connections().owner(connection_id) is None, name
    assert management.posts == []
