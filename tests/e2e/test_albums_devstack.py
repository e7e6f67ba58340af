"""Albums on the real dev stack: two Cognito users (found by user name through the emulated user pool's
AdminGetUser), a shared album with a real upload, and a share link opened with no token at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devstack.clients import emulated_client
from devstack.token import new_confirmed_user
from tests.e2e.test_devstack import Reply, User, call, sign_in
from tests.e2e.test_photos_devstack import settled, upload
from tests.support.imaging_samples import encode, noise

pytestmark = pytest.mark.e2e


def _person(devstack: dict[str, Any], prefix: str) -> User:
    cognito = emulated_client("cognito-idp", devstack)
    return sign_in(cognito, devstack["user_pool_client_id"], *new_confirmed_user(devstack, prefix))


def _as(devstack: dict[str, Any], user: User) -> Callable[..., Reply]:
    def request(method: str, path: str, **kwargs: Any) -> Reply:
        return call(devstack["api_url"], method, path, token=user.id_token, **kwargs)

    return request


def test_an_album_shared_by_user_name_and_by_link(devstack: dict[str, Any]) -> None:
    owner, friend = _person(devstack, "owner"), _person(devstack, "friend")
    as_owner, as_friend = _as(devstack, owner), _as(devstack, friend)
    as_friend("POST", "/users", body={"display_name": "Friend"})

    photo = settled(as_owner, upload(as_owner, encode(noise((640, 480)), "JPEG"), "image/jpeg")["photo_id"])
    assert photo["status"] == "READY"
    album = as_owner("POST", "/albums", body={"title": "Picnic"})
    assert album.status == 201, album.body
    album_id = album.body["album_id"]
    added = as_owner("POST", f"/albums/{album_id}/photos", body={"photo_ids": [photo["photo_id"]]})
    assert [r["status"] for r in added.body["results"]] == ["added"]

    unknown = as_owner("POST", f"/albums/{album_id}/members", body={"username": "no-such-user", "role": "viewer"})
    assert unknown.status == 404, unknown.body
    shared = as_owner("POST", f"/albums/{album_id}/members", body={"username": friend.username, "role": "viewer"})
    assert shared.status == 201, shared.body
    assert (shared.body["user_id"], shared.body["display_name"]) == (friend.sub, "Friend")
    members = as_friend("GET", f"/albums/{album_id}/members").body["items"]
    assert [(m["username"], m["role"]) for m in members] == [(owner.username, "owner"), (friend.username, "viewer")]
    seen = as_friend("GET", f"/albums/{album_id}/photos")
    assert [p["photo_id"] for p in seen.body["items"]] == [photo["photo_id"]]

    link = as_owner("POST", f"/albums/{album_id}/links", body={"password": "open sesame"})
    token = link.body["token"]
    locked = call(devstack["api_url"], "GET", f"/public/albums/{token}")
    assert (locked.status, locked.body["Code"]) == (401, "PasswordRequired")
    unlocked = call(devstack["api_url"], "POST", f"/public/albums/{token}/unlock", body={"password": "open sesame"})
    assert unlocked.status == 200, unlocked.body

    assert as_owner("DELETE", f"/albums/{album_id}/members/{friend.sub}").status == 204
    assert as_friend("GET", f"/albums/{album_id}").status == 404
    assert as_owner("DELETE", f"/albums/{album_id}").status == 204
    assert call(devstack["api_url"], "POST", f"/public/albums/{token}/unlock", body={"password": "x"}).status == 404
