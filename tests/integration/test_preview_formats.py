"""WebP previews for new photos, JPEG ones kept for photos stored before: through the API, the worker and moto.

A photo stored before WebP previews is made here as such a photo is stored: the worker run with a Pillow that cannot
write WebP gives exactly that item (no `preview_format`) and those objects (`<size>.jpg`, image/jpeg). Each URL test
runs with S3 presigned URLs (no CDN) and with CloudFront signed ones.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from chalice.test import Client
from PIL import Image

from chalicelib import deps, imaging, keys
from chalicelib.photos.models import PreviewFormat
from tests.integration.conftest import BUCKET, TABLE, User
from tests.reliability.support import assert_invariants, body, create_profile, get_photo, jpeg, upload_ready
from tests.support.albums import add_photos, create_album, create_link, public
from tests.support.media import media_key_json, new_private_key

MEDIA = "https://media.example"


@pytest.fixture
def s3(aws: boto3.session.Session) -> Any:
    return aws.client("s3")


@pytest.fixture(params=["presigned", "cdn"])
def media(request: pytest.FixtureRequest, aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "cdn":
        key_json = media_key_json(new_private_key(), "KFORMATS000001")
        arn = aws.client("secretsmanager").create_secret(Name="photosky-test-media-key", SecretString=key_json)["ARN"]
        monkeypatch.setenv("PHOTOSKY_MEDIA_URL", MEDIA)
        monkeypatch.setenv("PHOTOSKY_MEDIA_KEY_SECRET_ARN", arn)
        deps.reset()
    return str(request.param)


@pytest.fixture
def invariants_hold(aws: boto3.session.Session) -> Callable[[], None]:
    return lambda: assert_invariants(aws)


@pytest.fixture
def people(alice: User, bob: User) -> tuple[User, User]:
    create_profile(alice, "Alice")
    create_profile(bob, "Bob")
    return alice, bob


def new_photo(api: Client, s3: Any, user: User) -> dict[str, Any]:
    return upload_ready(api, s3, user, jpeg(640, 480))


def old_photo(api: Client, s3: Any, user: User, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A photo as stored before WebP previews: JPEG previews, and an item that records no format."""
    with monkeypatch.context() as patched:
        patched.setattr(imaging, "PREVIEW_FORMAT", PreviewFormat.JPEG)
        photo = upload_ready(api, s3, user, jpeg(640, 480))
    assert "preview_format" not in photo_item(s3, user.sub, photo["photo_id"])
    return photo


def photo_item(s3: Any, owner_id: str, photo_id: str) -> dict[str, Any]:
    dynamodb = deps.dynamodb()
    return dict(dynamodb.get_item(TableName=TABLE, Key=keys.photo_key(owner_id, photo_id))["Item"])


def objects_of(s3: Any, owner_id: str, photo_id: str) -> set[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {obj["Key"] for obj in listed if obj["Key"].split("/")[1:3] == [owner_id, photo_id]}


def preview_name(url: str | None) -> str:
    """The object a URL opens, from `previews/` on (S3 presigned and CloudFront URLs alike)."""
    assert url is not None
    path = urlsplit(url).path
    return path[path.index("previews/") :]


def named(owner_id: str, photo_id: str, extension: str) -> dict[str, str]:
    return {size: f"previews/{owner_id}/{photo_id}/{size}.{extension}" for size in ("large", "small")}


def shown(urls: dict[str, Any]) -> dict[str, str]:
    return {size: preview_name(urls[size]) for size in ("large", "small")}


def album(user: User, album_id: str) -> dict[str, Any]:
    response = user.call("GET", f"/albums/{album_id}")
    assert response.status_code == 200, response.body
    return dict(body(response))


# --- the worker ------------------------------------------------------------------------------------------------


def test_the_worker_writes_webp_previews_for_a_new_upload_and_records_their_format(
    api: Client, s3: Any, alice: User, invariants_hold: Callable[[], None]
) -> None:
    photo = new_photo(api, s3, alice)
    photo_id = photo["photo_id"]

    assert photo_item(s3, alice.sub, photo_id)["preview_format"] == {"S": "webp"}
    assert objects_of(s3, alice.sub, photo_id) == {
        keys.original_object(alice.sub, photo_id),
        f"previews/{alice.sub}/{photo_id}/large.webp",
        f"previews/{alice.sub}/{photo_id}/small.webp",
    }
    for size, expected in (("large", (640, 480)), ("small", (256, 192))):
        stored = s3.get_object(Bucket=BUCKET, Key=f"previews/{alice.sub}/{photo_id}/{size}.webp")
        assert stored["ContentType"] == "image/webp"  # what S3 and CloudFront serve it as
        image = Image.open(io.BytesIO(stored["Body"].read()))
        assert (image.format, image.size) == ("WEBP", expected)
    assert "preview_format" not in photo  # a storage detail: clients follow the URLs
    invariants_hold()


# --- the photo's own URLs --------------------------------------------------------------------------------------


def test_a_new_photo_is_served_as_webp_and_an_old_one_still_as_jpeg(
    api: Client, s3: Any, alice: User, media: str, monkeypatch: pytest.MonkeyPatch, invariants_hold: Callable[[], None]
) -> None:
    old = old_photo(api, s3, alice, monkeypatch)
    new = new_photo(api, s3, alice)

    for photo, extension in ((old, "jpg"), (new, "webp")):
        expected = named(alice.sub, photo["photo_id"], extension)
        assert shown(get_photo(alice, photo["photo_id"])["urls"]) == expected
        listed = {item["photo_id"]: item for item in body(alice.call("GET", "/photos"))["items"]}
        assert shown(listed[photo["photo_id"]]["urls"]) == expected
        # Every URL opens an object that is there.
        assert set(expected.values()) <= objects_of(s3, alice.sub, photo["photo_id"])

    # An edit rewrites the old photo's item: it stays a JPEG photo (its previews are not touched).
    edited = alice.call("PATCH", f"/photos/{old['photo_id']}", {"title": "Renamed", "version": old["version"]})
    assert edited.status_code == 200, edited.body
    assert shown(body(edited)["urls"]) == named(alice.sub, old["photo_id"], "jpg")
    assert "preview_format" not in photo_item(s3, alice.sub, old["photo_id"])
    invariants_hold()


# --- albums: each photo's URLs, and the cover's from the album alone -----------------------------------------------


def test_an_albums_photos_and_cover_are_served_in_each_photos_format(
    api: Client,
    s3: Any,
    people: tuple[User, User],
    media: str,
    monkeypatch: pytest.MonkeyPatch,
    invariants_hold: Callable[[], None],
) -> None:
    alice, _ = people
    old = old_photo(api, s3, alice, monkeypatch)
    new = new_photo(api, s3, alice)
    webp_album = create_album(alice, "New")["album_id"]
    jpeg_album = create_album(alice, "Old")["album_id"]
    add_photos(alice, webp_album, new["photo_id"], old["photo_id"])
    add_photos(alice, jpeg_album, old["photo_id"], new["photo_id"])

    assert shown(album(alice, webp_album)["cover"]) == named(alice.sub, new["photo_id"], "webp")
    assert shown(album(alice, jpeg_album)["cover"]) == named(alice.sub, old["photo_id"], "jpg")
    listed = {a["album_id"]: a for a in body(alice.call("GET", "/albums"))["items"]}
    assert shown(listed[webp_album]["cover"]) == named(alice.sub, new["photo_id"], "webp")
    assert shown(listed[jpeg_album]["cover"]) == named(alice.sub, old["photo_id"], "jpg")
    items = body(alice.call("GET", f"/albums/{webp_album}/photos"))["items"]
    assert {item["photo_id"]: shown(item["urls"]) for item in items} == {
        new["photo_id"]: named(alice.sub, new["photo_id"], "webp"),
        old["photo_id"]: named(alice.sub, old["photo_id"], "jpg"),
    }

    # A share link's visitor: the same names, under the per-photo signatures.
    token = create_link(alice, webp_album)["token"]
    shared = body(public(api, "GET", f"/public/albums/{token}"))
    assert shown(shared["album"]["cover"]) == named(alice.sub, new["photo_id"], "webp")
    assert {item["photo_id"]: shown(item["urls"]) for item in shared["items"]} == {
        new["photo_id"]: named(alice.sub, new["photo_id"], "webp"),
        old["photo_id"]: named(alice.sub, old["photo_id"], "jpg"),
    }

    # The owner picks the other photo as cover, and back.
    for cover, extension in ((old, "jpg"), (new, "webp")):
        version = album(alice, webp_album)["version"]
        changed = alice.call(
            "PATCH", f"/albums/{webp_album}", {"cover_photo_id": cover["photo_id"], "version": version}
        )
        assert changed.status_code == 200, changed.body
        assert shown(body(changed)["cover"]) == named(alice.sub, cover["photo_id"], extension)

    # The cover leaves: the next cover is the JPEG photo, served as JPEG.
    removed = alice.call("POST", f"/albums/{webp_album}/photos/remove", {"photo_ids": [new["photo_id"]]})
    assert removed.status_code == 200, removed.body
    assert shown(album(alice, webp_album)["cover"]) == named(alice.sub, old["photo_id"], "jpg")
    invariants_hold()


def test_an_album_whose_cover_predates_webp_keeps_a_jpeg_cover_until_the_cover_changes(
    api: Client,
    s3: Any,
    people: tuple[User, User],
    media: str,
    monkeypatch: pytest.MonkeyPatch,
    invariants_hold: Callable[[], None],
) -> None:
    """An album's cover set before this version records no cover format; a WebP photo joining it sets the one it
    would have had (the cover is set only where there is none, and so is its format): that must not change how
    the old cover is served."""
    alice, _ = people
    old = old_photo(api, s3, alice, monkeypatch)
    album_id = create_album(alice, "Before")["album_id"]
    add_photos(alice, album_id, old["photo_id"])
    deps.dynamodb().update_item(
        TableName=TABLE, Key=keys.album_key(album_id), UpdateExpression="REMOVE cover_preview"
    )  # as the album item was before WebP previews

    new = new_photo(api, s3, alice)
    add_photos(alice, album_id, new["photo_id"])

    assert album(alice, album_id)["cover_photo_id"] == old["photo_id"]
    assert shown(album(alice, album_id)["cover"]) == named(alice.sub, old["photo_id"], "jpg")
    invariants_hold()
    alice.call("POST", f"/albums/{album_id}/photos/remove", {"photo_ids": [old["photo_id"]]})
    assert shown(album(alice, album_id)["cover"]) == named(alice.sub, new["photo_id"], "webp")
    invariants_hold()


def test_a_webp_photo_restored_from_the_trash_is_a_webp_cover_again(
    api: Client, s3: Any, people: tuple[User, User], media: str, invariants_hold: Callable[[], None]
) -> None:
    alice, _ = people
    new = new_photo(api, s3, alice)
    album_id = create_album(alice, "Back")["album_id"]
    add_photos(alice, album_id, new["photo_id"])

    assert alice.call("DELETE", f"/photos/{new['photo_id']}").status_code == 204  # to the trash: out of the album
    assert album(alice, album_id)["cover"] is None
    assert alice.call("POST", f"/photos/{new['photo_id']}/restore").status_code == 200

    assert shown(album(alice, album_id)["cover"]) == named(alice.sub, new["photo_id"], "webp")
    invariants_hold()


def test_a_members_photo_as_cover_is_served_in_its_own_format(
    api: Client,
    s3: Any,
    people: tuple[User, User],
    media: str,
    monkeypatch: pytest.MonkeyPatch,
    invariants_hold: Callable[[], None],
) -> None:
    alice, bob = people
    album_id = create_album(alice, "Together")["album_id"]
    response = alice.call("POST", f"/albums/{album_id}/members", {"username": bob.username, "role": "contributor"})
    assert response.status_code == 201, response.body
    bobs = new_photo(api, s3, bob)
    add_photos(bob, album_id, bobs["photo_id"])

    for viewer in (alice, bob):
        assert shown(album(viewer, album_id)["cover"]) == named(bob.sub, bobs["photo_id"], "webp")
    invariants_hold()


# --- deleting --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["permanent", "trash-then-purge"])
def test_deleting_a_webp_photo_leaves_no_object(
    api: Client, s3: Any, alice: User, how: str, monkeypatch: pytest.MonkeyPatch, invariants_hold: Callable[[], None]
) -> None:
    new = new_photo(api, s3, alice)
    old = old_photo(api, s3, alice, monkeypatch)
    for photo in (new, old):
        assert objects_of(s3, alice.sub, photo["photo_id"])
        if how == "permanent":
            assert alice.call("DELETE", f"/photos/{photo['photo_id']}?permanent=true").status_code == 204
        else:
            assert alice.call("DELETE", f"/photos/{photo['photo_id']}").status_code == 204
    if how != "permanent":
        assert alice.call("DELETE", "/trash").status_code == 204

    for photo in (new, old):
        assert objects_of(s3, alice.sub, photo["photo_id"]) == set()
        assert alice.call("GET", f"/photos/{photo['photo_id']}").status_code == 404
    invariants_hold()
