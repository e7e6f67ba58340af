"""Media URLs through the API with a CDN configured: what each caller's URLs open, and that they hold still.

The key comes from (moto's) Secrets Manager, as in AWS. `cryptography` checks every signature
(tests/support/media.py); the dev stack's media endpoint checks them as CloudFront would (test_dev_media.py).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from chalice.test import Client

from chalicelib import deps
from tests.integration.conftest import User
from tests.reliability.support import body, create_profile, upload_ready
from tests.support.albums import add_photos, create_album, create_link, public, share
from tests.support.media import media_key_json, new_private_key, public_key_of, signed_policy

MEDIA = "https://media.example"


@pytest.fixture
def s3(aws: boto3.session.Session) -> Any:
    return aws.client("s3")


@pytest.fixture
def key_json(aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch) -> str:
    key_json = media_key_json(new_private_key(), "KMEDIATEST0001")
    arn = aws.client("secretsmanager").create_secret(Name="photosky-test-media-key", SecretString=key_json)["ARN"]
    monkeypatch.setenv("PHOTOSKY_MEDIA_URL", MEDIA)
    monkeypatch.setenv("PHOTOSKY_MEDIA_KEY_SECRET_ARN", arn)
    deps.reset()
    return key_json


@pytest.fixture
def carol(api: Client) -> User:
    return User(api, "ca201000-0000-4000-8000-000000000003")


def resource_of(url: str, key_json: str) -> str:
    [statement] = signed_policy(url, public_key_of(key_json))["Statement"]
    return str(statement["Resource"])


def test_the_owner_sees_cdn_urls_for_their_prefixes_identical_across_requests(
    api: Client, s3: Any, alice: User, key_json: str
) -> None:
    create_profile(alice, "Alice")
    photo = upload_ready(api, s3, alice, filename="Plage.jpg")
    listed = body(alice.call("GET", "/photos"))["items"][0]["urls"]
    assert listed == body(alice.call("GET", "/photos"))["items"][0]["urls"]
    assert listed == body(alice.call("GET", f"/photos/{photo['photo_id']}"))["urls"]  # one cache entry per object
    assert listed["small"].startswith(f"{MEDIA}/previews/{alice.sub}/{photo['photo_id']}/small.webp?Policy=")
    assert resource_of(listed["small"], key_json) == f"{MEDIA}/previews/{alice.sub}/*"
    assert resource_of(listed["original"], key_json) == f"{MEDIA}/originals/{alice.sub}/*"
    disposition = parse_qs(urlsplit(listed["original"]).query)["response-content-disposition"]
    assert disposition == ["inline; filename*=UTF-8''Plage.jpg"]


def test_album_members_get_urls_for_each_photo_and_their_own_photos_keep_their_library_urls(
    api: Client, s3: Any, alice: User, bob: User, key_json: str
) -> None:
    for user in (alice, bob):
        create_profile(user, "Someone")
    album_id = create_album(alice)["album_id"]
    share(alice, album_id, bob, role="contributor")
    alices = upload_ready(api, s3, alice)
    bobs = upload_ready(api, s3, bob)
    add_photos(alice, album_id, alices["photo_id"])
    add_photos(bob, album_id, bobs["photo_id"])
    seen = {item["photo_id"]: item["urls"] for item in body(bob.call("GET", f"/albums/{album_id}/photos"))["items"]}
    assert resource_of(seen[alices["photo_id"]]["small"], key_json) == (
        f"{MEDIA}/previews/{alice.sub}/{alices['photo_id']}/*"
    )
    assert resource_of(seen[alices["photo_id"]]["original"], key_json) == (
        f"{MEDIA}/originals/{alice.sub}/{alices['photo_id']}"
    )
    assert "response-content-disposition" not in seen[alices["photo_id"]]["original"]
    assert seen[bobs["photo_id"]] == body(bob.call("GET", f"/photos/{bobs['photo_id']}"))["urls"]
    # The album's cover (the first photo, Alice's): her own library URL for her, that photo's only for Bob.
    assert body(bob.call("GET", f"/albums/{album_id}"))["cover"]["small"] == seen[alices["photo_id"]]["small"]
    alices_view = body(alice.call("GET", f"/albums/{album_id}"))["cover"]
    assert alices_view["small"] == body(alice.call("GET", f"/photos/{alices['photo_id']}"))["urls"]["small"]


@pytest.mark.parametrize("allow_download", [False, True])
def test_a_link_visitor_gets_one_photos_previews_and_its_original_only_when_allowed(
    api: Client, s3: Any, alice: User, bob: User, key_json: str, allow_download: bool
) -> None:
    for user in (alice, bob):
        create_profile(user, "Someone")
    album_id = create_album(alice)["album_id"]
    share(alice, album_id, bob)
    photo = upload_ready(api, s3, alice, filename="secret-name.jpg")
    add_photos(alice, album_id, photo["photo_id"])
    token = create_link(alice, album_id, allow_download=allow_download)["token"]
    [item] = body(public(api, "GET", f"/public/albums/{token}"))["items"]
    assert resource_of(item["urls"]["small"], key_json) == f"{MEDIA}/previews/{alice.sub}/{photo['photo_id']}/*"
    if allow_download:
        assert resource_of(item["urls"]["original"], key_json) == f"{MEDIA}/originals/{alice.sub}/{photo['photo_id']}"
    else:
        assert item["urls"]["original"] is None
    assert "secret-name" not in json.dumps(item)
    # One signature per photo and window, whoever asks: the member's previews are the visitor's.
    [as_member] = body(bob.call("GET", f"/albums/{album_id}/photos"))["items"]
    assert as_member["urls"]["small"] == item["urls"]["small"]


def test_an_unreadable_signing_key_is_a_503_with_a_json_body_not_a_500(
    api: Client, s3: Any, alice: User, key_json: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_profile(alice, "Alice")
    upload_ready(api, s3, alice)
    monkeypatch.setenv(
        "PHOTOSKY_MEDIA_KEY_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"
    )
    deps.reset()
    response = alice.call("GET", "/photos")
    assert response.status_code == 503, response.body
    assert "media signing key" in body(response)["Message"]
