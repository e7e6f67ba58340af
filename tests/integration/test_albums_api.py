"""Albums, members and share links through the API, in-process: what each route does and what it refuses.

The authorization matrix (every route × every role) is tests/reliability/test_album_idor.py; faults injected into
the multi-step operations are tests/reliability/test_album_faults.py.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import deps, keys
from chalicelib.albums import shown_photos
from tests.integration.conftest import TABLE, User
from tests.reliability.support import body, create_profile, start_upload, upload_ready, upload_rejected
from tests.support.albums import add_photos, album_photo_ids, create_album, create_link, public, share, unlock

UNKNOWN_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


@pytest.fixture
def s3(aws: boto3.session.Session) -> Any:
    return aws.client("s3")


@pytest.fixture
def carol(api: Client) -> User:
    return User(api, "ca401000-0000-4000-8000-000000000003")


def album(user: User, album_id: str) -> dict[str, Any]:
    response = user.call("GET", f"/albums/{album_id}")
    assert response.status_code == 200, response.body
    return body(response)


def every_item(dynamodb: Any) -> list[dict[str, Any]]:
    items, start = [], None
    while True:
        page = dynamodb.scan(TableName=TABLE, **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


# --- albums --------------------------------------------------------------------------------------------------------


def test_an_album_is_created_renamed_described_and_listed_most_recently_updated_first(alice: User) -> None:
    first = create_album(alice, "Summer", description="Beach days")
    second = create_album(alice, "Winter")
    assert first["role"] == "owner"
    assert (first["title"], first["description"], first["photo_count"], first["version"]) == (
        "Summer",
        "Beach days",
        0,
        1,
    )
    assert first["cover_photo_id"] is None
    assert first["cover"] is None

    listed = body(alice.call("GET", "/albums"))
    assert [a["album_id"] for a in listed["items"]] == [second["album_id"], first["album_id"]]

    edited = alice.call(
        "PATCH", f"/albums/{first['album_id']}", {"title": "Summer 2026", "description": None, "version": 1}
    )
    assert edited.status_code == 200, edited.body
    assert (body(edited)["title"], body(edited)["description"], body(edited)["version"]) == ("Summer 2026", None, 2)
    # Edited last, so listed first.
    assert next(a["album_id"] for a in body(alice.call("GET", "/albums"))["items"]) == first["album_id"]

    stale = alice.call("PATCH", f"/albums/{first['album_id']}", {"title": "Lost update", "version": 1})
    assert stale.status_code == 409
    assert album(alice, first["album_id"])["title"] == "Summer 2026"


def test_albums_page_with_signed_cursors(alice: User, bob: User) -> None:
    made = [create_album(alice, f"Album {n}")["album_id"] for n in range(5)]
    seen, cursor = [], None
    while True:
        response = alice.call("GET", "/albums?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.body
        page = body(response)
        assert len(page["items"]) <= 2
        seen += [a["album_id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # Another user cannot use it.
        assert bob.call("GET", f"/albums?cursor={cursor}").status_code == 400
    assert seen == list(reversed(made))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "a\u202eb"}, "title"),
        ({"title": "ok", "description": "d" * 2001}, "description"),
        ({"title": "ok", "owner_id": "someone"}, "owner_id"),
    ],
)
def test_an_invalid_album_is_a_400_naming_the_field(alice: User, payload: dict[str, Any], field: str) -> None:
    response = alice.call("POST", "/albums", payload)
    assert response.status_code == 400, response.body
    assert body(response)["Message"].startswith(f"{field}:")


# --- photos in albums ------------------------------------------------------------------------------------------------


def test_adding_photos_reports_each_one_and_counts_and_cover_follow(
    api: Client, s3: Any, alice: User, bob: User
) -> None:
    ready = [upload_ready(api, s3, alice)["photo_id"] for _ in range(3)]
    pending = start_upload(alice, b"\xff\xd8 not yet")["photo"]["photo_id"]
    rejected = upload_rejected(api, s3, alice)["photo_id"]
    bobs = upload_ready(api, s3, bob)["photo_id"]
    album_id = create_album(alice)["album_id"]

    results = add_photos(alice, album_id, ready[0], ready[1], ready[0], pending, rejected, bobs, UNKNOWN_ID)
    assert [(r["photo_id"], r["status"]) for r in results] == [
        (ready[0], "added"),
        (ready[1], "added"),
        (pending, "not_ready"),
        (rejected, "not_ready"),
        (bobs, "not_found"),  # only your own photos: someone else's looks like one that does not exist
        (UNKNOWN_ID, "not_found"),
    ]
    assert [r["status"] for r in add_photos(alice, album_id, ready[1], ready[2])] == ["already", "added"]
    shown = album(alice, album_id)
    assert shown["photo_count"] == 3
    assert shown["cover_photo_id"] == ready[0]  # the first photo ever added
    assert shown["cover"]["small"]
    assert shown["cover"]["large"]
    assert album_photo_ids(alice, album_id) == [ready[2], ready[1], ready[0]]  # most recently added first


def test_fifty_photos_go_in_and_out_in_one_call_each(api: Client, s3: Any, alice: User) -> None:
    photos = [upload_ready(api, s3, alice)["photo_id"] for _ in range(50)]
    album_id = create_album(alice)["album_id"]
    assert [r["status"] for r in add_photos(alice, album_id, *photos)] == ["added"] * 50
    assert album(alice, album_id)["photo_count"] == 50
    too_many = alice.call("POST", f"/albums/{album_id}/photos", {"photo_ids": [*photos, UNKNOWN_ID]})
    assert too_many.status_code == 400
    assert body(too_many)["Message"].startswith("photo_ids:")

    removed = alice.call("POST", f"/albums/{album_id}/photos/remove", {"photo_ids": photos})
    assert removed.status_code == 200, removed.body
    assert [r["status"] for r in body(removed)["results"]] == ["removed"] * 50
    after = album(alice, album_id)
    assert (after["photo_count"], after["cover_photo_id"]) == (0, None)
    # The photos stay in the library.
    assert body(alice.call("GET", f"/photos/{photos[0]}"))["status"] == "READY"


def test_album_photos_page_with_cursors(api: Client, s3: Any, alice: User) -> None:
    photos = [upload_ready(api, s3, alice)["photo_id"] for _ in range(5)]
    album_id = create_album(alice)["album_id"]
    for photo_id in photos:
        add_photos(alice, album_id, photo_id)
    seen, cursor = [], None
    while True:
        page = body(alice.call("GET", f"/albums/{album_id}/photos?limit=2" + (f"&cursor={cursor}" if cursor else "")))
        seen += [p["photo_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(photos))
    other = create_album(alice)["album_id"]
    first_cursor = body(alice.call("GET", f"/albums/{album_id}/photos?limit=2"))["next_cursor"]
    assert alice.call("GET", f"/albums/{other}/photos?cursor={first_cursor}").status_code == 400


def test_a_deleted_photo_leaves_every_album_and_the_cover_moves_to_the_newest(
    api: Client, s3: Any, alice: User
) -> None:
    first, second, third = (upload_ready(api, s3, alice)["photo_id"] for _ in range(3))
    albums = [create_album(alice, f"A{n}")["album_id"] for n in range(3)]
    for album_id in albums:
        add_photos(alice, album_id, first, second, third)
    assert album(alice, albums[0])["cover_photo_id"] == first

    assert alice.call("DELETE", f"/photos/{first}?permanent=true").status_code == 204
    for album_id in albums:
        shown = album(alice, album_id)
        assert shown["photo_count"] == 2
        assert shown["cover_photo_id"] == third  # all three were added at once; the newest by id sorts first
        assert album_photo_ids(alice, album_id) == [third, second] or album_photo_ids(alice, album_id) == [
            second,
            third,
        ]
    assert not [
        item
        for item in every_item(deps.dynamodb())
        if first in item["SK"]["S"] and item["SK"]["S"].startswith((keys.PHOTO_PREFIX, keys.PHOTO_ALBUM_PREFIX))
    ]


def test_a_photo_in_more_albums_than_one_transaction_holds_still_leaves_them_all(
    api: Client, s3: Any, alice: User
) -> None:
    photo_id = upload_ready(api, s3, alice, tags=[f"t{n}" for n in range(20)])["photo_id"]
    albums = [create_album(alice, f"A{n}")["album_id"] for n in range(30)]  # (100 - 2 - 20) // 3 = 26 fit
    for album_id in albums:
        add_photos(alice, album_id, photo_id)
    assert alice.call("DELETE", f"/photos/{photo_id}").status_code == 204
    assert {album(alice, album_id)["photo_count"] for album_id in albums} == {0}


def test_the_cover_is_picked_from_the_album_and_only_by_the_owner(api: Client, s3: Any, alice: User, bob: User) -> None:
    mine, outside = upload_ready(api, s3, alice)["photo_id"], upload_ready(api, s3, alice)["photo_id"]
    album_id = create_album(alice)["album_id"]
    add_photos(alice, album_id, mine)
    not_in_album = alice.call("PATCH", f"/albums/{album_id}", {"cover_photo_id": outside, "version": 1})
    assert not_in_album.status_code == 400
    assert body(not_in_album)["Message"].startswith("cover_photo_id:")
    add_photos(alice, album_id, outside)
    picked = alice.call("PATCH", f"/albums/{album_id}", {"cover_photo_id": outside, "version": 1})
    assert picked.status_code == 200
    assert body(picked)["cover_photo_id"] == outside
    share(alice, album_id, bob, "contributor")
    refused = bob.call("PATCH", f"/albums/{album_id}", {"cover_photo_id": mine, "version": 2})
    assert refused.status_code == 403
    assert body(refused)["Code"] == "ForbiddenError"


# --- members ---------------------------------------------------------------------------------------------------------


def test_sharing_by_user_name_with_roles(api: Client, s3: Any, alice: User, bob: User, carol: User) -> None:
    create_profile(bob, "Bob")
    album_id = create_album(alice, "Family")["album_id"]
    photo = upload_ready(api, s3, alice)["photo_id"]
    add_photos(alice, album_id, photo)

    unknown = alice.call("POST", f"/albums/{album_id}/members", {"username": "nobody-here", "role": "viewer"})
    assert unknown.status_code == 404
    member = share(alice, album_id, bob, "viewer")
    assert member == {**member, "user_id": bob.sub, "username": bob.username, "display_name": "Bob", "role": "viewer"}
    # Cognito user names are case-insensitive: the same user again is a conflict, whatever the case.
    again = alice.call("POST", f"/albums/{album_id}/members", {"username": bob.username.upper(), "role": "contributor"})
    assert again.status_code == 409
    myself = alice.call("POST", f"/albums/{album_id}/members", {"username": alice.username, "role": "viewer"})
    assert myself.status_code == 409
    share(alice, album_id, carol, "contributor")

    listed = body(bob.call("GET", f"/albums/{album_id}/members"))["items"]
    assert [(m["user_id"], m["role"]) for m in listed] == [
        (alice.sub, "owner"),
        (bob.sub, "viewer"),
        (carol.sub, "contributor"),
    ]
    assert [(a["album_id"], a["role"]) for a in body(bob.call("GET", "/albums"))["items"]] == [(album_id, "viewer")]
    viewed = body(bob.call("GET", f"/albums/{album_id}/photos"))["items"]
    assert [(p["photo_id"], p["mine"]) for p in viewed] == [(photo, False)]
    assert viewed[0]["urls"]["original"]
    assert viewed[0]["urls"]["small"]
    assert "filename" not in viewed[0]
    assert "tags" not in viewed[0]

    # A viewer may not add; made a contributor, they may.
    bobs = upload_ready(api, s3, bob)["photo_id"]
    assert bob.call("POST", f"/albums/{album_id}/photos", {"photo_ids": [bobs]}).status_code == 403
    changed = alice.call("PATCH", f"/albums/{album_id}/members/{bob.sub}", {"role": "contributor"})
    assert changed.status_code == 200
    assert body(changed)["role"] == "contributor"
    assert [r["status"] for r in add_photos(bob, album_id, bobs)] == ["added"]
    # Bob's photo stays his: it counts against his quota, not the owner's.
    assert body(bob.call("GET", "/users/me"))["usage"]["photos"] == 1
    # A contributor removes only their own photos.
    removed = body(bob.call("POST", f"/albums/{album_id}/photos/remove", {"photo_ids": [photo, bobs]}))["results"]
    assert [r["status"] for r in removed] == ["forbidden", "removed"]
    assert album_photo_ids(alice, album_id) == [photo]


def test_a_member_who_leaves_takes_their_photos_and_loses_access_at_once(
    api: Client, s3: Any, alice: User, bob: User
) -> None:
    album_id = create_album(alice)["album_id"]
    own = upload_ready(api, s3, alice)["photo_id"]
    add_photos(alice, album_id, own)
    share(alice, album_id, bob, "contributor")
    bobs = [upload_ready(api, s3, bob)["photo_id"] for _ in range(2)]
    add_photos(bob, album_id, *bobs)
    alice.call("PATCH", f"/albums/{album_id}", {"cover_photo_id": bobs[0], "version": 1})
    cursor = body(bob.call("GET", f"/albums/{album_id}/photos?limit=1"))["next_cursor"]

    assert bob.call("DELETE", f"/albums/{album_id}/members/{bob.sub}").status_code == 204
    for path in (f"/albums/{album_id}", f"/albums/{album_id}/photos?cursor={cursor}", f"/albums/{album_id}/members"):
        assert bob.call("GET", path).status_code == 404
    shown = album(alice, album_id)
    assert (shown["photo_count"], shown["cover_photo_id"]) == (1, own)  # his photos went, the cover moved
    assert album_photo_ids(alice, album_id) == [own]
    assert body(bob.call("GET", "/albums"))["items"] == []
    assert [m["user_id"] for m in body(alice.call("GET", f"/albums/{album_id}/members"))["items"]] == [alice.sub]
    # His photos are still in his library.
    assert all(body(bob.call("GET", f"/photos/{p}"))["status"] == "READY" for p in bobs)
    # And he can be invited again.
    share(alice, album_id, bob, "viewer")
    assert album(bob, album_id)["role"] == "viewer"


def test_the_owner_removes_a_member_and_cannot_leave(alice: User, bob: User, carol: User) -> None:
    album_id = create_album(alice)["album_id"]
    share(alice, album_id, bob)
    share(alice, album_id, carol)
    assert carol.call("DELETE", f"/albums/{album_id}/members/{bob.sub}").status_code == 403
    assert alice.call("DELETE", f"/albums/{album_id}/members/{bob.sub}").status_code == 204
    assert bob.call("GET", f"/albums/{album_id}").status_code == 404
    assert alice.call("DELETE", f"/albums/{album_id}/members/{bob.sub}").status_code == 404
    leaving = alice.call("DELETE", f"/albums/{album_id}/members/{alice.sub}")
    assert leaving.status_code == 403
    assert body(leaving)["Message"] == "the owner cannot leave their album: delete it instead"
    assert alice.call("PATCH", f"/albums/{album_id}/members/{alice.sub}", {"role": "viewer"}).status_code == 409


def test_an_album_has_at_most_fifty_members(api: Client, alice: User) -> None:
    album_id = create_album(alice)["album_id"]
    for n in range(50):
        share(alice, album_id, User(api, f"00000000-0000-4000-8000-{n:012d}"))
    one_more = User(api, "00000000-0000-4000-8000-999999999999")
    response = alice.call("POST", f"/albums/{album_id}/members", {"username": one_more.username, "role": "viewer"})
    assert response.status_code == 409
    assert "50" in body(response)["Message"]


# --- deleting an album -----------------------------------------------------------------------------------------------


def test_deleting_an_album_removes_members_links_and_entries_and_keeps_the_photos(
    api: Client, s3: Any, alice: User, bob: User
) -> None:
    album_id = create_album(alice)["album_id"]
    photo = upload_ready(api, s3, alice)["photo_id"]
    add_photos(alice, album_id, photo)
    share(alice, album_id, bob, "contributor")
    bobs = upload_ready(api, s3, bob)["photo_id"]
    add_photos(bob, album_id, bobs)
    token = create_link(alice, album_id)["token"]

    assert bob.call("DELETE", f"/albums/{album_id}").status_code == 403
    assert alice.call("DELETE", f"/albums/{album_id}").status_code == 204
    assert alice.call("GET", f"/albums/{album_id}").status_code == 404
    assert bob.call("GET", f"/albums/{album_id}").status_code == 404
    assert public(api, "GET", f"/public/albums/{token}").status_code == 404
    assert body(bob.call("GET", "/albums"))["items"] == []
    left = [item for item in every_item(deps.dynamodb()) if album_id in json.dumps(item)]
    assert left == []
    assert body(alice.call("GET", f"/photos/{photo}"))["status"] == "READY"
    assert body(bob.call("GET", f"/photos/{bobs}"))["status"] == "READY"
    # Deleting again: the album is gone.
    assert alice.call("DELETE", f"/albums/{album_id}").status_code == 404


# --- share links ---------------------------------------------------------------------------------------------------


def test_a_link_token_is_shown_once_and_only_its_hash_is_stored(api: Client, s3: Any, alice: User) -> None:
    album_id = create_album(alice, "Wedding", description="June")["album_id"]
    add_photos(alice, album_id, upload_ready(api, s3, alice, tags=["private"], title="Vows")["photo_id"])
    created = create_link(alice, album_id)
    token = created["token"]
    assert len(token) == 43
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert (created["has_password"], created["allow_download"], created["expires_at"]) == (False, False, None)
    listed = body(alice.call("GET", f"/albums/{album_id}/links"))["items"]
    assert [link["link_id"] for link in listed] == [created["link_id"]]
    assert "token" not in listed[0]
    stored = json.dumps(every_item(deps.dynamodb()))
    assert token not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored

    page = public(api, "GET", f"/public/albums/{token}")
    assert page.status_code == 200, page.body
    shown = body(page)
    assert shown["album"] == {**shown["album"], "title": "Wedding", "description": "June", "photo_count": 1}
    assert shown["allow_download"] is False
    (photo,) = shown["items"]
    assert set(photo) == {"photo_id", "title", "description", "width", "height", "taken_at", "urls"}
    assert photo["title"] == "Vows"
    assert photo["urls"]["original"] is None
    assert photo["urls"]["small"]
    # Nothing of the owner's beyond what they share: no ids, names or tags anywhere in the body.
    text = page.body.decode()
    assert alice.sub not in text.split("previews/")[0]  # (object keys in preview URLs are the owner's id: issue 14)
    assert "private" not in text
    assert "photo.jpg" not in text


def test_a_link_with_downloads_shows_originals(api: Client, s3: Any, alice: User) -> None:
    album_id = create_album(alice)["album_id"]
    add_photos(alice, album_id, upload_ready(api, s3, alice)["photo_id"])
    token = create_link(alice, album_id, allow_download=True)["token"]
    shown = body(public(api, "GET", f"/public/albums/{token}"))
    assert shown["allow_download"] is True
    assert shown["items"][0]["urls"]["original"]


def test_unknown_expired_and_revoked_links_are_the_same_404(
    api: Client, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    album_id = create_album(alice)["album_id"]
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    expiring = create_link(alice, album_id, expires_at=soon)
    revoked = create_link(alice, album_id)
    assert public(api, "GET", f"/public/albums/{expiring['token']}").status_code == 200
    assert alice.call("DELETE", f"/albums/{album_id}/links/{revoked['link_id']}").status_code == 204
    assert alice.call("DELETE", f"/albums/{album_id}/links/{revoked['link_id']}").status_code == 404

    later = datetime.now(UTC) + timedelta(minutes=6)
    monkeypatch.setattr("chalicelib.clock.now", lambda: later)
    deps.reset()
    unknown_token = "A" * 43
    answers = [
        public(api, "GET", f"/public/albums/{token}")
        for token in (unknown_token, expiring["token"], revoked["token"], "short")
    ]
    assert {(a.status_code, a.body) for a in answers} == {(404, b'{"Code":"NotFoundError","Message":"no such link"}')}
    unlocks = [
        public(api, "POST", f"/public/albums/{token}/unlock", {"password": "x"})
        for token in (unknown_token, expiring["token"], revoked["token"])
    ]
    assert {a.status_code for a in unlocks} == {404}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),  # no time zone
        ({"expires_at": "2999-01-01T00:00:00Z"}, "expires_at"),
        ({"password": "abc"}, "password"),
        ({"password": "p" * 129}, "password"),
        ({"allow_download": "yes"}, "allow_download"),
        ({"token": "mine"}, "token"),
    ],
)
def test_an_invalid_link_is_a_400(alice: User, payload: dict[str, Any], field: str) -> None:
    album_id = create_album(alice)["album_id"]
    response = alice.call("POST", f"/albums/{album_id}/links", payload)
    assert response.status_code == 400, response.body
    assert body(response)["Message"].startswith(f"{field}:")


def test_a_password_link_opens_only_with_its_access_token(api: Client, s3: Any, alice: User) -> None:
    album_id = create_album(alice)["album_id"]
    add_photos(alice, album_id, upload_ready(api, s3, alice)["photo_id"])
    created = create_link(alice, album_id, password="correct horse")
    token = created["token"]
    assert created["has_password"] is True
    assert "password" not in created
    assert "correct horse" not in json.dumps(every_item(deps.dynamodb()))

    locked = public(api, "GET", f"/public/albums/{token}")
    assert locked.status_code == 401
    assert body(locked)["Code"] == "PasswordRequired"
    forged = public(api, "GET", f"/public/albums/{token}", **{"X-Link-Access": "9999999999.forged"})
    assert forged.status_code == 401
    assert body(forged)["Code"] == "PasswordRequired"
    wrong = public(api, "POST", f"/public/albums/{token}/unlock", {"password": "Correct horse"})
    assert wrong.status_code == 401
    assert body(wrong)["Code"] == "WrongPassword"

    access = unlock(api, token, "correct horse")
    opened = public(api, "GET", f"/public/albums/{token}", **{"X-Link-Access": access})
    assert opened.status_code == 200
    assert len(body(opened)["items"]) == 1
    # The access token is the link's alone.
    other = create_link(alice, album_id, password="correct horse")["token"]
    assert public(api, "GET", f"/public/albums/{other}", **{"X-Link-Access": access}).status_code == 401


def test_a_password_that_is_not_unicode_text_is_a_400_not_a_guess(api: Client, alice: User) -> None:
    token = create_link(alice, create_album(alice)["album_id"], password="right one")["token"]
    sent = public(api, "POST", f"/public/albums/{token}/unlock", raw=b'{"password": "\\ud800"}')
    assert sent.status_code == 400, sent.body
    assert body(sent)["Message"].startswith("password:")


def test_wrong_passwords_are_limited_per_link_before_any_hashing(
    api: Client, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    album_id = create_album(alice)["album_id"]
    token = create_link(alice, album_id, password="right one")["token"]
    other = create_link(alice, album_id, password="right one")["token"]
    for _ in range(10):
        assert public(api, "POST", f"/public/albums/{token}/unlock", {"password": "guess"}).status_code == 401

    hashed: list[str] = []
    from chalicelib.albums import links

    real = links.password_matches
    monkeypatch.setattr(
        links, "password_matches", lambda password, stored: hashed.append(password) or real(password, stored)
    )
    limited = public(api, "POST", f"/public/albums/{token}/unlock", {"password": "right one"})
    assert limited.status_code == 429
    assert body(limited)["Code"] == "TooManyRequestsError"
    assert 1 <= int(limited.headers["Retry-After"]) <= 900
    assert hashed == []  # refused before the scrypt hash
    # Per link: another link of the same album still unlocks.
    assert unlock(api, other, "right one")


def test_public_routes_need_no_token_and_a_token_changes_nothing(api: Client, alice: User) -> None:
    album_id = create_album(alice)["album_id"]
    token = create_link(alice, album_id)["token"]
    assert public(api, "GET", f"/public/albums/{token}").status_code == 200
    assert public(api, "GET", f"/public/albums/{token}", Authorization="not a token").status_code == 200


def test_a_link_of_a_missing_album_cannot_be_made(alice: User, bob: User) -> None:
    album_id = create_album(alice)["album_id"]
    assert bob.call("POST", f"/albums/{album_id}/links", {}).status_code == 404
    assert alice.call("POST", f"/albums/{UNKNOWN_ID}/links", {}).status_code == 404
    assert dict.fromkeys(item["SK"]["S"][:5] for item in every_item(deps.dynamodb()) if "LINK" in item["SK"]["S"]) == {}


def test_an_edit_racing_a_removal_never_brings_back_a_cover_that_left(
    api: Client, s3: Any, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = upload_ready(api, s3, alice)["photo_id"], upload_ready(api, s3, alice)["photo_id"]
    album_id = create_album(alice)["album_id"]
    add_photos(alice, album_id, first)
    add_photos(alice, album_id, second)
    assert album(alice, album_id)["cover_photo_id"] == first
    repository = deps.album_repository()
    real_update = repository.update

    def removal_lands_first(*args: Any, **kwargs: Any) -> Any:
        # The owner's title edit has read the album (cover: first); the cover photo leaves before it writes.
        monkeypatch.setattr(repository, "update", real_update)
        assert alice.call("POST", f"/albums/{album_id}/photos/remove", {"photo_ids": [first]}).status_code == 200
        return real_update(*args, **kwargs)

    monkeypatch.setattr(repository, "update", removal_lands_first)
    edited = alice.call("PATCH", f"/albums/{album_id}", {"title": "Renamed", "version": 1})
    assert edited.status_code == 200, edited.body
    assert (body(edited)["title"], body(edited)["cover_photo_id"], body(edited)["photo_count"]) == (
        "Renamed",
        second,
        1,
    )


def test_someone_elses_edit_may_show_late_on_an_album_page_the_owners_own_view_and_removals_never_do(
    api: Client, s3: Any, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Album pages keep the photos they read for a short while (chalicelib/albums/shown_photos.py), so a shared
    album's views do not all land on its owner's partition: what that may delay, and what it never may."""
    kept, removed = upload_ready(api, s3, alice)["photo_id"], upload_ready(api, s3, alice)["photo_id"]
    album_id = create_album(alice, "Shared")["album_id"]
    add_photos(alice, album_id, kept, removed)
    share(alice, album_id, bob)
    token = create_link(alice, album_id)["token"]

    def titles(response: Any) -> dict[str, Any]:
        assert response.status_code == 200, response.body
        return {photo["photo_id"]: photo.get("title") for photo in body(response)["items"]}

    reads: list[int] = []
    real_batch_get = deps.dynamodb().batch_get_item

    def counted(**request: Any) -> Any:
        photo_keys = [
            key
            for table in request["RequestItems"].values()
            for key in table["Keys"]
            if key["SK"]["S"].startswith(keys.PHOTO_PREFIX) and key["PK"]["S"].startswith("USER#")
        ]
        if photo_keys:  # the access check reads the album and the membership the same way
            reads.append(len(photo_keys))
        return real_batch_get(**request)

    monkeypatch.setattr(deps.dynamodb(), "batch_get_item", counted)
    assert titles(bob.call("GET", f"/albums/{album_id}/photos")) == {kept: None, removed: None}
    assert reads == [2]
    for _ in range(3):  # more views, by the member and by a link visitor: nothing read again
        titles(bob.call("GET", f"/albums/{album_id}/photos"))
        titles(public(api, "GET", f"/public/albums/{token}"))
    assert reads == [2]

    version = body(alice.call("GET", f"/photos/{kept}"))["version"]
    renamed = alice.call("PATCH", f"/photos/{kept}", {"title": "Renamed", "version": version})
    assert renamed.status_code == 200, renamed.body
    assert titles(bob.call("GET", f"/albums/{album_id}/photos"))[kept] is None  # someone else: up to 30 s late
    assert titles(alice.call("GET", f"/albums/{album_id}/photos"))[kept] == "Renamed"  # the owner: at once
    # What the owner's view read is what this environment keeps from then on.
    assert titles(bob.call("GET", f"/albums/{album_id}/photos"))[kept] == "Renamed"

    response = alice.call("POST", f"/albums/{album_id}/photos/remove", {"photo_ids": [removed]})
    assert response.status_code == 200, response.body
    assert list(titles(bob.call("GET", f"/albums/{album_id}/photos"))) == [kept]  # gone at once
    assert list(titles(public(api, "GET", f"/public/albums/{token}"))) == [kept]

    # Past the window, everyone sees an edit the owner has not looked at.
    version = body(alice.call("GET", f"/photos/{kept}"))["version"]
    renamed = alice.call("PATCH", f"/photos/{kept}", {"title": "Again", "version": version})
    assert renamed.status_code == 200, renamed.body
    assert titles(public(api, "GET", f"/public/albums/{token}"))[kept] == "Renamed"
    start = time.monotonic()
    monkeypatch.setattr(shown_photos.time, "monotonic", lambda: start + shown_photos.TTL_SECONDS + 1)
    assert titles(public(api, "GET", f"/public/albums/{token}"))[kept] == "Again"
