"""Authorization: two users with photos in every state attack each other's ids, cursors and keys.

Another user's photo must look exactly like a photo that does not exist (404, the same body), and nothing of the
victim's may change: table items and objects are compared byte for byte before and after.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from chalice.test import Client

from chalicelib import keys
from tests.integration.conftest import User
from tests.reliability.moto_state import MadeOnce
from tests.reliability.support import (
    UNKNOWN_PHOTO_ID,
    assert_invariants,
    body,
    create_profile,
    deliver,
    jpeg,
    put_upload,
    snapshot,
    start_upload,
    upload_ready,
    upload_rejected,
)

pytestmark = pytest.mark.suite("idor")

PUBLIC_PROFILE_FIELDS = {"user_id", "display_name", "bio", "created_at"}


class Library:
    """One user's profile and photos: READY (two of them favourites), in the trash, PENDING and REJECTED, some
    tagged, and cursors to the second page of every listing (plain, by tag, favourites, by taken time, between two
    days, and the trash)."""

    def __init__(self, api: Client, s3: Any, user: User, name: str) -> None:
        self.user = user
        create_profile(user, name)
        self.photos = {
            "READY": upload_ready(api, s3, user, tags=["shared", name.lower()])["photo_id"],
            "FAVORITE": upload_ready(api, s3, user)["photo_id"],
            "TRASHED": upload_ready(api, s3, user, tags=["shared"])["photo_id"],
            "TRASHED EARLIER": upload_ready(api, s3, user)["photo_id"],
            "PENDING": start_upload(user, jpeg(), tags=["shared"])["photo"]["photo_id"],
            "REJECTED": upload_rejected(api, s3, user)["photo_id"],
        }
        for state in ("READY", "FAVORITE"):
            favourite = user.call("PATCH", f"/photos/{self.photos[state]}", {"favorite": True, "version": 1})
            assert favourite.status_code == 200, favourite.body
        for state in ("TRASHED EARLIER", "TRASHED"):
            assert user.call("DELETE", f"/photos/{self.photos[state]}").status_code == 204
        today = datetime.now(UTC).date()
        self.days = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
        self.cursor = listing(user, limit=1)["next_cursor"]
        self.tag_cursor = listing(user, limit=1, tag="shared")["next_cursor"]
        self.favorite_cursor = listing(user, limit=1, favorite="true")["next_cursor"]
        self.taken_cursor = listing(user, limit=1, sort="taken")["next_cursor"]
        self.between_cursor = listing(user, limit=1, **self.days)["next_cursor"]
        self.trash_cursor = trash(user, limit=1)["next_cursor"]
        assert all((self.cursor, self.tag_cursor, self.favorite_cursor, self.taken_cursor, self.between_cursor)), (
            "every listing has a second page"
        )
        assert self.trash_cursor

    @property
    def listed(self) -> set[str]:
        """The photos GET /photos lists: all but the trashed."""
        return {photo_id for state, photo_id in self.photos.items() if not state.startswith("TRASHED")}


def listing(user: User, **params: Any) -> dict[str, Any]:
    response = list_photos(user, **params)
    assert response.status_code == 200, response.body
    return body(response)


def list_photos(user: User, **params: Any) -> Any:
    return get(user, "/photos", **params)


def get(user: User, path: str, **params: Any) -> Any:
    query = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in params.items())
    return user.call("GET", path + (f"?{query}" if query else ""))


def trash(user: User, **params: Any) -> dict[str, Any]:
    response = get(user, "/trash", **params)
    assert response.status_code == 200, response.body
    return body(response)


@pytest.fixture
def libraries(api: Client, s3: Any, alice: User, bob: User, made_once: MadeOnce) -> dict[str, Library]:
    """Both libraries, built by the module's first test that needs them and restored for every later one, each
    bound to this test's user."""
    users = {"alice": alice, "bob": bob}

    def make() -> dict[str, Library]:
        return {name: Library(api, s3, user, name.title()) for name, user in users.items()}

    libraries = made_once("libraries", make, keep=users.values())
    for name, library in libraries.items():
        library.user = users[name]
    return libraries


ATTEMPTS = ("GET", "PATCH", "PATCH favorite", "DELETE", "DELETE permanent", "RESTORE")


def attempts(attempt: str, photo_id: str) -> tuple[str, str, Any]:
    """The request for one of ATTEMPTS on a photo."""
    path = f"/photos/{photo_id}"
    return {
        "GET": ("GET", path, None),
        "PATCH": ("PATCH", path, {"title": "mine now", "tags": ["stolen"], "version": 1}),
        "PATCH favorite": ("PATCH", path, {"favorite": False, "version": 2}),
        "DELETE": ("DELETE", path, None),
        "DELETE permanent": ("DELETE", f"{path}?permanent=true", None),
        "RESTORE": ("POST", f"{path}/restore", None),
    }[attempt]


def test_another_users_photo_in_any_state_is_a_404_identical_to_a_missing_one(
    aws: boto3.session.Session, libraries: dict[str, Library], subtests: Any
) -> None:
    before = snapshot(aws)
    for attacker, victim in (("bob", "alice"), ("alice", "bob")):
        caller = libraries[attacker].user
        for status, photo_id in libraries[victim].photos.items():
            for attempt in ATTEMPTS:
                with subtests.test(attacker=attacker, status=status, attempt=attempt):
                    foreign = caller.call(*attempts(attempt, photo_id))
                    missing = caller.call(*attempts(attempt, UNKNOWN_PHOTO_ID))
                    assert foreign.status_code == 404, foreign.body
                    assert body(foreign) == body(missing) == {"Code": "NotFoundError", "Message": "no such photo"}
                    assert dict(foreign.headers) == dict(missing.headers)
    assert snapshot(aws) == before  # nothing of anyone's changed: items and object bytes
    assert_invariants(aws)
    # The control: the same calls by the owner work, so the 404s are about ownership, not about the calls.
    alice = libraries["alice"]
    ready, favourite = alice.photos["READY"], alice.photos["FAVORITE"]
    assert alice.user.call("GET", f"/photos/{ready}").status_code == 200
    edited = alice.user.call("PATCH", f"/photos/{ready}", {"title": "mine now", "version": 2})
    assert edited.status_code == 200, edited.body
    unfavourite = alice.user.call(*attempts("PATCH favorite", favourite))
    assert unfavourite.status_code == 200, unfavourite.body
    restored = alice.user.call(*attempts("RESTORE", alice.photos["TRASHED"]))
    assert (restored.status_code, body(restored)["trashed_at"]) == (200, None), restored.body
    assert alice.user.call("DELETE", f"/photos/{alice.photos['PENDING']}").status_code == 204
    assert alice.user.call(*attempts("DELETE permanent", alice.photos["TRASHED EARLIER"])).status_code == 204
    assert_invariants(aws)


def test_listings_show_only_the_callers_photos_and_another_users_cursor_is_a_400(
    aws: boto3.session.Session, libraries: dict[str, Library], subtests: Any
) -> None:
    before = snapshot(aws)
    for name, library in libraries.items():
        own, days = library.listed, library.days
        ready = own - {library.photos["PENDING"], library.photos["REJECTED"]}
        favourites = {library.photos["READY"], library.photos["FAVORITE"]}
        expected: list[tuple[dict[str, Any], set[str] | None]] = [
            ({}, own),
            ({"tag": "shared"}, None),
            ({"tag": "alice"}, None),
            ({"tag": "bob"}, None),
            ({"limit": 100}, own),
            ({"favorite": "true"}, favourites),
            ({"sort": "taken"}, ready),
            (days, own),
            ({"sort": "taken", "favorite": "true", **days}, favourites),
            ({"tag": "shared", "favorite": "true", **days}, None),
        ]
        for params, exactly in expected:
            with subtests.test(lister=name, params=params):
                items = listing(library.user, **{"limit": 100, **params})["items"]
                assert {photo["photo_id"] for photo in items} <= own
                assert all(photo["owner_id"] == library.user.sub for photo in items)
                if exactly is not None:
                    assert {photo["photo_id"] for photo in items} == exactly
        with subtests.test(lister=name, listing="trash and timeline"):
            trashed = trash(library.user, limit=100)["items"]
            assert {photo["photo_id"] for photo in trashed} == set(library.photos.values()) - own
            assert all(photo["owner_id"] == library.user.sub for photo in trashed)
            timeline = get(library.user, "/photos/timeline")
            assert timeline.status_code == 200, timeline.body
            assert sum(bucket["count"] for bucket in body(timeline)["buckets"]) == len(ready)
        foreign_tag = "bob" if name == "alice" else "alice"
        assert listing(library.user, tag=foreign_tag)["items"] == []
    alice, bob = libraries["alice"], libraries["bob"]
    days = alice.days
    borrowed = {
        "alices-cursor-in-bobs-listing": (bob.user, "/photos", {"cursor": alice.cursor}),
        "alices-tag-cursor-in-bobs-tag-listing": (bob.user, "/photos", {"cursor": alice.tag_cursor, "tag": "shared"}),
        "alices-tag-cursor-in-bobs-listing": (bob.user, "/photos", {"cursor": alice.tag_cursor}),
        "alices-cursor-in-bobs-tag-listing": (bob.user, "/photos", {"cursor": alice.cursor, "tag": "shared"}),
        "alices-favorite-cursor-in-bobs-favorites": (
            bob.user,
            "/photos",
            {"cursor": alice.favorite_cursor, "favorite": "true"},
        ),
        "alices-taken-cursor-in-bobs-taken-listing": (
            bob.user,
            "/photos",
            {"cursor": alice.taken_cursor, "sort": "taken"},
        ),
        "alices-between-cursor-in-bobs-same-days": (bob.user, "/photos", {"cursor": alice.between_cursor, **days}),
        "alices-trash-cursor-in-bobs-trash": (bob.user, "/trash", {"cursor": alice.trash_cursor}),
        # The caller's own cursors, reused with another filter or in another listing, are not valid either.
        "own-cursor-with-a-tag": (alice.user, "/photos", {"cursor": alice.cursor, "tag": "shared"}),
        "own-tag-cursor-without-the-tag": (alice.user, "/photos", {"cursor": alice.tag_cursor}),
        "own-tag-cursor-with-another-tag": (alice.user, "/photos", {"cursor": alice.tag_cursor, "tag": "alice"}),
        "own-favorite-cursor-without-the-filter": (alice.user, "/photos", {"cursor": alice.favorite_cursor}),
        "own-taken-cursor-sorted-by-upload": (alice.user, "/photos", {"cursor": alice.taken_cursor}),
        "own-between-cursor-on-other-days": (
            alice.user,
            "/photos",
            {"cursor": alice.between_cursor, "from": days["from"], "to": days["from"]},
        ),
        "own-trash-cursor-in-the-library": (alice.user, "/photos", {"cursor": alice.trash_cursor}),
        "own-library-cursor-in-the-trash": (alice.user, "/trash", {"cursor": alice.cursor}),
    }
    for name, (caller, path, params) in borrowed.items():
        with subtests.test(case=name):
            response = get(caller, path, **params)
            assert response.status_code == 400, response.body
            assert body(response) == {
                "Code": "BadRequestError",
                "Message": "cursor: is not a cursor this listing returned",
            }
    assert snapshot(aws) == before


def test_a_public_profile_shows_only_the_public_fields(libraries: dict[str, Library], carol: User) -> None:
    alice, bob = libraries["alice"].user, libraries["bob"].user
    for reader in (bob, carol):  # another user with a profile, and one without
        response = reader.call("GET", f"/users/{alice.sub}")
        assert response.status_code == 200, response.body
        shown = body(response)
        assert set(shown) == PUBLIC_PROFILE_FIELDS
        assert (shown["user_id"], shown["display_name"], shown["bio"]) == (alice.sub, "Alice", "Alice's photos")
    missing = bob.call("GET", "/users/00000000-0000-4000-8000-00000000dead")
    assert missing.status_code == 404
    assert body(missing)["Code"] == "NotFoundError"
    # The owner's own view has usage and quota; the public one never does.
    assert {"usage", "quota", "updated_at"} <= set(body(alice.call("GET", "/users/me")))


ACTING_FOR_ANOTHER_USER = ("owner_id", "user_id", "photo_id")


def test_body_fields_that_name_another_user_or_photo_are_400_and_change_nothing(
    aws: boto3.session.Session, libraries: dict[str, Library], subtests: Any
) -> None:
    alice, bob = libraries["alice"], libraries["bob"]
    bobs_ready = bob.photos["READY"]
    values = {"owner_id": alice.user.sub, "user_id": alice.user.sub, "photo_id": alice.photos["PENDING"]}
    new_photo = {"filename": "x.jpg", "content_type": "image/jpeg", "size_bytes": 100}
    requests = {
        "POST /photos": ("POST", "/photos", new_photo),
        "PATCH /photos/{own}": ("PATCH", f"/photos/{bobs_ready}", {"title": "t", "version": 1}),
        "POST /users": ("POST", "/users", {"display_name": "Mallory"}),
        "PATCH /users/me": ("PATCH", "/users/me", {"display_name": "Mallory"}),
        "POST /photos/batch": ("POST", "/photos/batch", {"action": "favorite", "photo_ids": [bobs_ready]}),
    }
    before = snapshot(aws)
    for route, (method, path, valid) in requests.items():
        for field in ACTING_FOR_ANOTHER_USER:
            with subtests.test(route=route, field=field):
                response = bob.user.call(method, path, {**valid, field: values[field]})
                assert response.status_code == 400, response.body
                assert body(response)["Code"] == "BadRequestError"
                assert body(response)["Message"].startswith(f"{field}: unknown field")
    assert snapshot(aws) == before
    assert_invariants(aws)


def decoded_policy(fields: dict[str, str]) -> dict[str, Any]:
    return json.loads(base64.b64decode(fields["policy"]))


def test_a_presigned_post_allows_exactly_the_callers_key_type_and_size(alice: User, bob: User) -> None:
    for user in (alice, bob):
        issued = datetime.now(UTC)
        created = start_upload(user, b"x" * 4321, content_type="image/png")
        photo, upload = created["photo"], created["upload"]
        key = keys.upload_object(user.sub, photo["photo_id"])
        policy = decoded_policy(upload["fields"])
        conditions = policy["conditions"]

        assert upload["fields"]["key"] == key
        assert {"key": key} in conditions
        assert {"Content-Type": "image/png"} in conditions
        assert ["content-length-range", 4321, 4321] in conditions
        # Nothing looser: no prefix match on any field, one key condition, one size range.
        assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]
        assert sum(1 for c in conditions if isinstance(c, dict) and "key" in c) == 1
        assert sum(1 for c in conditions if isinstance(c, list) and c[0] == "content-length-range") == 1
        expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        assert timedelta(minutes=14) <= expires - issued <= timedelta(minutes=16)
        assert upload["expires_at"].startswith(expires.strftime("%Y-%m-%dT%H:%M"))


def test_an_upload_under_another_owners_path_never_touches_that_owners_photo(
    aws: boto3.session.Session, api: Client, s3: Any, libraries: dict[str, Library], subtests: Any
) -> None:
    alice, bob = libraries["alice"], libraries["bob"]
    alices_before = snapshot(aws, alice.user.sub)
    for status, photo_id in alice.photos.items():
        with subtests.test(alices_photo=status):
            # What bob could do if S3 did not hold him to his policy: write at his prefix with alice's photo id.
            stray = put_upload(s3, bob.user.sub, photo_id, jpeg())
            deliver(api, stray)
            assert snapshot(aws, alice.user.sub) == alices_before
            assert stray not in {
                o["Key"] for o in s3.list_objects_v2(Bucket="photosky-local-photos").get("Contents", [])
            }
            assert_invariants(aws)
