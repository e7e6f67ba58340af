"""Media through the dev stack's media endpoint (issue 14), as a client sees it: the API hands out CloudFront-style
signed URLs for `media_url`, the endpoint checks them and serves the bucket's bytes with their stored headers, the
URLs stay byte-identical from one listing to the next (so browsers can cache them), and a tampered one is a 403."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from devstack.clients import emulated_client
from devstack.token import new_confirmed_user
from tests.e2e.test_devstack import Reply, User, call, sign_in
from tests.e2e.test_photos_devstack import settled, upload
from tests.support.imaging_samples import encode, noise

pytestmark = pytest.mark.e2e

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SIZES = ("small", "large", "original")


def new_person(devstack: dict[str, Any], display_name: str) -> Callable[..., Reply]:
    """A fresh user with a profile; returns their API caller."""
    user: User = sign_in(
        emulated_client("cognito-idp", devstack),
        devstack["user_pool_client_id"],
        *new_confirmed_user(devstack, "media"),
    )

    def request(method: str, path: str, **kwargs: Any) -> Reply:
        return call(devstack["api_url"], method, path, token=user.id_token, **kwargs)

    assert request("POST", "/users", body={"display_name": display_name}).status == 201
    return request


def ready_photo(api_as: Callable[..., Reply]) -> dict[str, Any]:
    photo = settled(api_as, upload(api_as, encode(noise((640, 480)), "JPEG"), "image/jpeg")["photo_id"])
    assert photo["status"] == "READY", photo
    return photo


def listed_urls(api_as: Callable[..., Reply], photo_id: str) -> dict[str, str]:
    listing = api_as("GET", "/photos")
    assert listing.status == 200, listing.body
    (photo,) = [item for item in listing.body["items"] if item["photo_id"] == photo_id]
    return dict(photo["urls"])


def two_listings(api_as: Callable[..., Reply], photo_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """The photo's URLs from two `GET /photos` in a row. Should a URL window end between the two (once an hour, by
    default), the pair is taken again: a boundary cannot fall between two calls made a moment apart twice."""
    first, second = listed_urls(api_as, photo_id), listed_urls(api_as, photo_id)
    if first != second:
        first, second = listed_urls(api_as, photo_id), listed_urls(api_as, photo_id)
    return first, second


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with _opener.open(request, timeout=10) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    return status, {k.lower(): v for k, v in headers.items()}, body


def object_key(url: str) -> str:
    return urlsplit(url).path.removeprefix("/")


def assert_refused(reply: tuple[int, dict[str, str], bytes]) -> None:
    status, headers, body = reply
    assert status == 403, (status, body)
    assert headers["cache-control"] == "no-store"
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'), body


def tampered(url: str) -> str:
    """The same URL with one character of its signature changed."""
    start = url.index("Signature=") + len("Signature=") + 5
    swapped = "A" if url[start] != "A" else "B"
    return url[:start] + swapped + url[start + 1 :]


@pytest.fixture
def owner(devstack: dict[str, Any]) -> Callable[..., Reply]:
    return new_person(devstack, "Media Owner")


def test_outputs_name_the_media_endpoint_and_the_spa_may_show_its_images(devstack: dict[str, Any]) -> None:
    media_url = devstack["media_url"]
    assert media_url.startswith("http://127.0.0.1:")
    assert not media_url.endswith("/")
    status, headers, _ = get(devstack["web_url"] + "/")
    assert status == 200
    img_src = next(d for d in headers["content-security-policy"].split(";") if d.strip().startswith("img-src"))
    assert media_url in img_src.split()
    # Nothing else is served there: the endpoint is the two media behaviours only.
    assert_refused(get(media_url + "/"))
    assert_refused(get(media_url + "/uploads/anything"))


def test_a_ready_photos_urls_are_signed_media_urls_served_with_the_stored_headers(
    devstack: dict[str, Any], owner: Callable[..., Reply]
) -> None:
    photo = ready_photo(owner)
    urls, again = two_listings(owner, photo["photo_id"])
    s3 = emulated_client("s3", devstack)

    for size in SIZES:
        url = urls[size]
        assert url.startswith(devstack["media_url"] + "/"), (size, url)
        status, headers, body = get(url)
        stored = s3.get_object(Bucket=devstack["bucket_name"], Key=object_key(url))
        assert status == 200, (size, body[:300])
        assert body == stored["Body"].read(), size
        assert headers["content-type"] == stored["ContentType"], size
        assert headers["etag"] == stored["ETag"], size
        if size != "original":
            assert headers["cache-control"] == stored["CacheControl"], size
            assert "max-age=" in headers["cache-control"], size
        # HEAD, as a browser or a link checker may send it.
        head_status, head_headers, head_body = get(url, method="HEAD")
        assert (head_status, head_body, head_headers["content-length"]) == (200, b"", str(len(body))), size

    assert again == urls  # byte-identical: the browser's cache (and CloudFront's) can keep the bytes
    assert owner("GET", f"/photos/{photo['photo_id']}").body["urls"] == urls
    # The original downloads under the uploaded name (the API asks the bucket for a Content-Disposition).
    assert "filename" in get(urls["original"])[1].get("content-disposition", "")


def test_a_tampered_or_unsigned_media_url_is_a_403(owner: Callable[..., Reply]) -> None:
    photo = ready_photo(owner)
    urls = listed_urls(owner, photo["photo_id"])
    for size in SIZES:
        assert_refused(get(tampered(urls[size])))
        assert_refused(get(urls[size].split("?", 1)[0]))


def test_one_users_signature_opens_none_of_another_users_media(
    devstack: dict[str, Any], owner: Callable[..., Reply]
) -> None:
    mine = listed_urls(owner, ready_photo(owner)["photo_id"])
    stranger = new_person(devstack, "Stranger")
    theirs = listed_urls(stranger, ready_photo(stranger)["photo_id"])
    for size in SIZES:
        # The stranger's valid signature on the owner's object's path.
        forged = mine[size].split("?", 1)[0] + "?" + theirs[size].split("?", 1)[1]
        assert get(theirs[size])[0] == 200, size
        assert_refused(get(forged))
