"""Albums and sharing in a real browser (issue 12): an owner builds an album and shares it with another user, a
contributor adds their own photos, and share links open for signed-out visitors: with downloads, behind a password,
and no longer once revoked. Each person has their own browser context; photos are uploaded as the SPA uploads them
(declared, then POSTed to S3) before the pages open, so every test starts from READY photos.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.conftest import Account, call_api, id_token, ready_photo, ready_photos
from tests.support.imaging_samples import encode, marked

pytestmark = pytest.mark.browser


def jpeg(size: tuple[int, int] = (800, 600)) -> bytes:
    """The same picture each time, in a file no other call returns (its comment): the same bytes twice would be a
    duplicate upload, which the library refuses."""
    return encode(marked(size), "JPEG", quality=85, comment=secrets.token_hex(8).encode())


def person(stack: dict[str, Any], cognito: Any, account: Account, display_name: str) -> str:
    """A user with a profile (so signing in lands in the gallery); returns their ID token for API-side setup."""
    token = id_token(cognito, stack, account)
    status, body = call_api(stack, token, "POST", "/users", {"display_name": display_name})
    assert status == 201, body
    return token


def sign_in(page: Any, stack: dict[str, Any], account: Account) -> None:
    page.goto(stack["web_url"] + "/")
    page.get_by_role("heading", name="Sign in", exact=True).wait_for()
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()


def album_with_photo(stack: dict[str, Any], token: str, title: str, photo_title: str, **album: Any) -> dict[str, Any]:
    """An album made through the API, holding one READY photo of its owner's."""
    photo = ready_photo(stack, token, jpeg(), "image/jpeg", title=photo_title)
    status, created = call_api(stack, token, "POST", "/albums", {"title": title, **album})
    assert status == 201, created
    status, added = call_api(
        stack, token, "POST", f"/albums/{created['album_id']}/photos", {"photo_ids": [photo["photo_id"]]}
    )
    assert (status, added["results"][0]["status"]) == (200, "added"), added
    return dict(created)


def tile(page: Any, grid: str, name: str) -> Any:
    return page.locator(f"{grid} li").filter(has=page.locator(".caption", has_text=re.compile(f"^{re.escape(name)}$")))


def assert_shows_image(page: Any, image: Any) -> None:
    """The browser really fetched and decoded the picture (a presigned S3 URL the page's CSP allows)."""
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())


def confirm(page: Any, title: str, button: str) -> None:
    dialog = page.get_by_role("dialog", name=title)
    dialog.wait_for()
    dialog.get_by_role("button", name=button, exact=True).click()
    dialog.wait_for(state="hidden")


def status_says(page: Any, text: str) -> None:
    page.get_by_role("status").filter(has_text=text).wait_for()


def create_link(page: Any, *, password: str | None = None, download: bool = False, expires: str | None = None) -> str:
    """Create a share link in the album page's Sharing section; returns the URL it shows (once)."""
    share = page.locator("#share")
    if expires:
        share.get_by_label("Link expires (optional)").fill(expires)
    if password:
        share.get_by_label("Link password (optional)").fill(password)
    if download:
        share.get_by_label("Allow downloading originals").check()
    share.get_by_role("button", name="Create link").click()
    status_says(page, "Link created.")
    url: str = share.get_by_label("New link").input_value()
    return url


def test_an_owner_builds_an_album_and_shares_it_with_a_viewer(
    page: Any,
    another_page: Callable[[], Any],
    devstack: dict[str, Any],
    cognito: Any,
    new_account: Callable[[], Account],
) -> None:
    owner, viewer = new_account(), new_account()
    owner_token = person(devstack, cognito, owner, "Olive Owner")
    person(devstack, cognito, viewer, "Victor Viewer")
    ready_photo(devstack, owner_token, jpeg((1200, 800)), "image/jpeg", title="Boats at dawn")
    ready_photo(devstack, owner_token, jpeg((600, 600)), "image/jpeg", title="Gulls")

    sign_in(page, devstack, owner)
    page.get_by_role("link", name="Albums", exact=True).click()
    page.get_by_role("heading", name="Albums", exact=True).wait_for()
    page.get_by_text("You have no albums yet.").wait_for()
    page.get_by_label("Album title").fill("Harbour trip")
    page.get_by_label("Album description").fill("Two days\nby the sea")
    page.get_by_role("button", name="Create album").click()
    page.get_by_role("heading", name="Harbour trip", exact=True).wait_for()
    page.get_by_text("No photos yet.").wait_for()

    # Add photos: a picker over the owner's READY photos; only the one picked goes in, and becomes the cover.
    page.get_by_role("button", name="Add photos").click()
    picker = page.locator("#photo-picker")
    picker.get_by_label("Gulls").wait_for()
    picker.get_by_label("Boats at dawn").check()
    picker.get_by_role("button", name="Add selected photos").click()
    page.locator("#batch-summary").filter(has_text="1 added.").wait_for()
    boats = tile(page, "#album-grid", "Boats at dawn")
    assert_shows_image(page, boats.get_by_role("img", name="Boats at dawn"))
    assert boats.get_by_text("Cover", exact=True).is_visible()
    assert page.locator("#album-grid li").count() == 1
    assert page.locator("#album-count").inner_text() == "1 photo"

    # Share with the second user as a viewer: the owner is listed first, then the new member.
    share = page.locator("#share")
    share.get_by_label("Username to share with").fill("nobody-by-this-name")
    share.get_by_role("button", name="Add member").click()
    page.get_by_role("alert").filter(has_text="There is no PhotoSky user named “nobody-by-this-name”.").wait_for()
    share.get_by_label("Username to share with").fill(viewer.username)
    share.get_by_label("Role", exact=True).select_option("viewer")
    share.get_by_role("button", name="Add member").click()
    status_says(page, f"Shared with {viewer.username} as a viewer.")
    members = page.locator("#members li")
    assert members.count() == 2
    assert "Olive Owner" in members.first.inner_text()
    assert members.nth(1).get_by_label(f"Role of {viewer.username}").input_value() == "viewer"
    assert "Victor Viewer" in members.nth(1).inner_text()

    # The albums page: owned, with its cover, count and role.
    page.get_by_role("link", name="← All albums").click()
    card = page.locator("#owned-albums li").filter(has_text="Harbour trip")
    assert_shows_image(page, card.locator("img"))
    assert "1 photo" in card.inner_text()
    assert card.locator(".role").inner_text() == "Owner"

    # The viewer, in their own browser: the album is shared with them, its photo shows, and nothing is editable.
    other = another_page()
    sign_in(other, devstack, viewer)
    other.get_by_role("link", name="Albums", exact=True).click()
    shared = other.locator("#shared-albums li").filter(has_text="Harbour trip")
    shared.wait_for()
    assert shared.locator(".role").inner_text() == "Viewer"
    assert other.locator("#owned-albums li").count() == 0
    shared.get_by_role("link").click()
    other.get_by_role("heading", name="Harbour trip", exact=True).wait_for()
    assert other.locator("#album-description").inner_text() == "Two days\nby the sea"
    assert_shows_image(other, tile(other, "#album-grid", "Boats at dawn").get_by_role("img", name="Boats at dawn"))
    for absent in ("Add photos", "Make cover", "Remove selected photos", "Delete album", "Save album"):
        assert other.get_by_role("button", name=absent).count() == 0, absent
    assert other.get_by_role("checkbox").count() == 0
    assert other.locator("#share").count() == 0
    assert "null" not in other.locator("main").inner_text()  # the parts a viewer's page leaves out

    # And may leave it.
    other.get_by_role("button", name="Leave album").click()
    confirm(other, "Leave album?", "Leave")
    other.get_by_role("heading", name="Albums", exact=True).wait_for()
    status_says(other, "You left “Harbour trip”.")
    other.get_by_text("Nobody has shared an album with you yet.").wait_for()


def test_a_contributor_adds_and_removes_their_own_photos(
    page: Any,
    another_page: Callable[[], Any],
    devstack: dict[str, Any],
    cognito: Any,
    new_account: Callable[[], Account],
) -> None:
    owner, contributor = new_account(), new_account()
    owner_token = person(devstack, cognito, owner, "Olive Owner")
    contributor_token = person(devstack, cognito, contributor, "Carla Contributor")
    album = album_with_photo(devstack, owner_token, "Beach week", "Lighthouse")
    ready_photo(devstack, contributor_token, jpeg((640, 480)), "image/jpeg", title="Sandcastle")
    status, member = call_api(
        devstack,
        owner_token,
        "POST",
        f"/albums/{album['album_id']}/members",
        {"username": contributor.username, "role": "viewer"},
    )
    assert status == 201, member

    # The owner makes the viewer a contributor from the Sharing section.
    sign_in(page, devstack, owner)
    page.goto(f"{devstack['web_url']}/#/album/{album['album_id']}")
    page.get_by_role("heading", name="Beach week", exact=True).wait_for()
    page.get_by_label(f"Role of {contributor.username}").select_option("contributor")
    status_says(page, f"{contributor.username} is now a contributor.")

    other = another_page()
    sign_in(other, devstack, contributor)
    other.get_by_role("link", name="Albums", exact=True).click()
    card = other.locator("#shared-albums li").filter(has_text="Beach week")
    assert card.locator(".role").inner_text() == "Contributor"
    card.get_by_role("link").click()
    other.get_by_role("heading", name="Beach week", exact=True).wait_for()
    lighthouse = tile(other, "#album-grid", "Lighthouse")
    assert_shows_image(other, lighthouse.get_by_role("img", name="Lighthouse"))
    assert lighthouse.get_by_role("checkbox").count() == 0  # the owner's photo is not theirs to remove

    # The picker offers the contributor's own photos only.
    other.get_by_role("button", name="Add photos").click()
    picker = other.locator("#photo-picker")
    picker.get_by_label("Sandcastle").check()
    assert picker.get_by_label("Lighthouse").count() == 0
    picker.get_by_role("button", name="Add selected photos").click()
    other.locator("#batch-summary").filter(has_text="1 added.").wait_for()
    sandcastle = tile(other, "#album-grid", "Sandcastle")
    assert_shows_image(other, sandcastle.get_by_role("img", name="Sandcastle"))
    assert other.locator("#album-count").inner_text() == "2 photos"
    assert other.get_by_role("button", name="Make cover").count() == 0

    # The owner sees it (with the owner's power to remove it).
    page.reload()
    page.get_by_role("heading", name="Beach week", exact=True).wait_for()
    assert_shows_image(page, tile(page, "#album-grid", "Sandcastle").get_by_role("img", name="Sandcastle"))
    assert page.get_by_label("Select Sandcastle").count() == 1

    # The contributor takes their photo out again: one result per photo.
    other.get_by_label("Select Sandcastle").check()
    other.get_by_role("button", name="Remove selected photos").click()
    confirm(other, "Remove photos?", "Remove")
    other.locator("#batch-summary").filter(has_text="1 removed.").wait_for()
    assert other.locator("#batch-report li").all_inner_texts() == ["Sandcastle: removed"]
    assert tile(other, "#album-grid", "Sandcastle").count() == 0
    assert other.locator("#album-count").inner_text() == "1 photo"


def test_a_link_opens_the_album_for_a_signed_out_visitor(
    page: Any,
    another_page: Callable[[], Any],
    devstack: dict[str, Any],
    cognito: Any,
    new_account: Callable[[], Account],
) -> None:
    owner = new_account()
    token = person(devstack, cognito, owner, "Olive Owner")
    album = album_with_photo(devstack, token, "Night harbour", "Harbour lights", description="Long exposures")

    sign_in(page, devstack, owner)
    page.goto(f"{devstack['web_url']}/#/album/{album['album_id']}")
    page.get_by_role("heading", name="Night harbour", exact=True).wait_for()
    page.get_by_text("No links yet.").wait_for()
    expires = (datetime.now() + timedelta(days=30)).replace(second=0, microsecond=0)
    url = create_link(page, download=True, expires=expires.strftime("%Y-%m-%dT%H:%M"))
    assert re.fullmatch(re.escape(devstack["web_url"]) + r"/#/s/[A-Za-z0-9_-]{43}", url), url

    # Copy puts the whole URL on the clipboard.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=devstack["web_url"])
    page.get_by_role("button", name="Copy link").click()
    status_says(page, "Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == url

    # The links list: no token, but what the link allows and until when (the browser's local time, sent as UTC).
    row = page.locator("#links li")
    assert row.count() == 1
    assert row.locator("dt").all_inner_texts() == ["Created", "Expires", "Password", "Download"]
    _created, expiry, has_password, allows_download = row.locator("dd").all_inner_texts()
    assert (expiry != "never", has_password, allows_download) == (True, "no", "yes")
    status, links = call_api(devstack, token, "GET", f"/albums/{album['album_id']}/links")
    assert status == 200, links
    (link,) = links["items"]
    assert (link["has_password"], link["allow_download"]) == (False, True)
    sent = datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
    assert sent == expires.astimezone(UTC)

    # A stranger's fresh browser, never signed in: no navigation, the album, its photo and the download.
    visitor = another_page()
    visitor.goto(url)
    visitor.get_by_role("heading", name="Night harbour", exact=True).wait_for()
    assert visitor.locator("#nav").is_hidden()
    assert visitor.locator("#album-description").inner_text() == "Long exposures"
    lights = tile(visitor, "#shared-grid", "Harbour lights")
    assert_shows_image(visitor, lights.get_by_role("img", name="Harbour lights"))
    download = lights.get_by_role("link", name="Download original")
    assert download.get_attribute("href").startswith("http")

    # The owner, signed in, opens the same link: it works, and never with their own token.
    sent_headers: list[dict[str, str]] = []

    def record(request: Any) -> None:
        if "/public/" in request.url:
            sent_headers.append(request.headers)

    page.on("request", record)
    page.goto(url)
    page.get_by_role("heading", name="Night harbour", exact=True).wait_for()
    assert page.get_by_role("link", name="Albums", exact=True).is_visible()
    assert_shows_image(page, tile(page, "#shared-grid", "Harbour lights").locator("img"))
    assert sent_headers
    assert all("authorization" not in headers for headers in sent_headers)


def test_a_password_link_asks_for_its_password(
    page: Any,
    another_page: Callable[[], Any],
    devstack: dict[str, Any],
    cognito: Any,
    new_account: Callable[[], Account],
) -> None:
    owner = new_account()
    token = person(devstack, cognito, owner, "Olive Owner")
    album = album_with_photo(devstack, token, "Family only", "Grandma's garden")

    sign_in(page, devstack, owner)
    page.goto(f"{devstack['web_url']}/#/album/{album['album_id']}")
    page.get_by_role("heading", name="Family only", exact=True).wait_for()
    url = create_link(page, password="open-sesame")
    page.locator("#links li").wait_for()
    assert page.locator("#links li dd").all_inner_texts()[1:] == ["never", "yes", "no"]

    visitor = another_page()
    visitor.goto(url)
    visitor.get_by_role("heading", name="Password required", exact=True).wait_for()
    assert visitor.locator("#shared-grid").count() == 0
    visitor.get_by_label("Album password").fill("not-the-one")
    visitor.get_by_role("button", name="Open album").click()
    visitor.get_by_role("alert").filter(has_text="That password is not right.").wait_for()
    assert visitor.get_by_role("heading", name="Password required", exact=True).is_visible()

    visitor.get_by_label("Album password").fill("open-sesame")
    visitor.get_by_role("button", name="Open album").click()
    visitor.get_by_role("heading", name="Family only", exact=True).wait_for()
    status_says(visitor, "Album unlocked.")
    garden = tile(visitor, "#shared-grid", "Grandma's garden")
    assert_shows_image(visitor, garden.get_by_role("img", name="Grandma's garden"))
    assert visitor.get_by_role("link", name="Download original").count() == 0  # downloads were not allowed
    assert "null" not in visitor.locator("main").inner_text()  # no description, and nothing in its place

    # The unlocked access is kept for this tab: a reload does not ask again.
    visitor.reload()
    visitor.get_by_role("heading", name="Family only", exact=True).wait_for()
    assert_shows_image(visitor, tile(visitor, "#shared-grid", "Grandma's garden").locator("img"))


def test_a_revoked_or_unknown_link_says_it_is_not_available(
    page: Any,
    another_page: Callable[[], Any],
    devstack: dict[str, Any],
    cognito: Any,
    new_account: Callable[[], Account],
) -> None:
    owner = new_account()
    token = person(devstack, cognito, owner, "Olive Owner")
    album = album_with_photo(devstack, token, "Short-lived", "Snowman")
    status, link = call_api(devstack, token, "POST", f"/albums/{album['album_id']}/links", {})
    assert status == 201, link
    url = f"{devstack['web_url']}/#/s/{link['token']}"

    visitor = another_page()
    visitor.goto(url)
    visitor.get_by_role("heading", name="Short-lived", exact=True).wait_for()

    sign_in(page, devstack, owner)
    page.goto(f"{devstack['web_url']}/#/album/{album['album_id']}")
    page.get_by_role("heading", name="Short-lived", exact=True).wait_for()
    page.locator("#links li").get_by_role("button", name="Revoke").click()
    confirm(page, "Revoke link?", "Revoke")
    status_says(page, "Link revoked.")
    page.get_by_text("No links yet.").wait_for()

    visitor.reload()
    visitor.get_by_role("heading", name="Link not available", exact=True).wait_for()
    assert "unknown, has expired or has been revoked" in visitor.locator("#link-gone").inner_text()
    assert visitor.locator("#shared-grid").count() == 0

    # A token nobody ever made reads the same (the API does not tell them apart either).
    stranger = another_page()
    stranger.goto(f"{devstack['web_url']}/#/s/{secrets.token_urlsafe(32)}")
    stranger.get_by_role("heading", name="Link not available", exact=True).wait_for()
    assert "unknown, has expired or has been revoked" in stranger.locator("#link-gone").inner_text()


def test_a_stale_album_edit_is_explained_and_deleting_asks_first(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    owner = new_account()
    token = person(devstack, cognito, owner, "Olive Owner")
    album = album_with_photo(devstack, token, "Draft", "Sketch")

    sign_in(page, devstack, owner)
    page.goto(f"{devstack['web_url']}/#/album/{album['album_id']}")
    page.get_by_role("heading", name="Draft", exact=True).wait_for()

    # Another device renames the album while this page shows the old version.
    status, shown = call_api(devstack, token, "GET", f"/albums/{album['album_id']}")
    assert status == 200, shown
    changes = {"title": "From my phone", "version": shown["version"]}
    status, renamed = call_api(devstack, token, "PATCH", f"/albums/{album['album_id']}", changes)
    assert status == 200, renamed
    page.get_by_label("Album title").fill("From my laptop")
    page.get_by_role("button", name="Save album").click()
    page.get_by_role("alert").filter(has_text="changed somewhere else").wait_for()
    page.get_by_role("heading", name="From my phone", exact=True).wait_for()
    assert page.get_by_label("Album title").input_value() == "From my phone"

    # Now a rename goes through.
    page.get_by_label("Album title").fill("Final")
    page.get_by_role("button", name="Save album").click()
    page.get_by_role("heading", name="Final", exact=True).wait_for()
    status_says(page, "Album saved.")

    # Delete: Escape keeps it; the dialog's Delete removes it.
    page.get_by_role("button", name="Delete album").click()
    page.get_by_role("dialog", name="Delete album?").wait_for()
    page.keyboard.press("Escape")
    page.get_by_role("dialog", name="Delete album?").wait_for(state="hidden")
    page.get_by_role("button", name="Delete album").click()
    confirm(page, "Delete album?", "Delete")
    page.get_by_role("heading", name="Albums", exact=True).wait_for()
    status_says(page, "Deleted album “Final”.")
    page.get_by_text("You have no albums yet.").wait_for()
    assert call_api(devstack, token, "GET", f"/albums/{album['album_id']}")[0] == 404


def test_an_album_and_its_link_page_through_every_photo(
    page: Any,
    another_page: Callable[[], Any],
    devstack: dict[str, Any],
    cognito: Any,
    new_account: Callable[[], Account],
) -> None:
    owner = new_account()
    token = person(devstack, cognito, owner, "Olive Owner")
    count = 26  # more than one page of 24
    names = {f"p{n:02d}" for n in range(count)}
    photos = ready_photos(
        devstack, token, [(jpeg((320, 240)), "image/jpeg", {"title": name}) for name in sorted(names)]
    )
    status, album = call_api(devstack, token, "POST", "/albums", {"title": "Many"})
    assert status == 201, album
    ids = [photo["photo_id"] for photo in photos]
    status, added = call_api(devstack, token, "POST", f"/albums/{album['album_id']}/photos", {"photo_ids": ids})
    assert status == 200, added
    status, link = call_api(devstack, token, "POST", f"/albums/{album['album_id']}/links", {})
    assert status == 201, link

    sign_in(page, devstack, owner)
    page.goto(f"{devstack['web_url']}/#/album/{album['album_id']}")
    page.locator("#album-grid li").nth(23).wait_for()
    assert page.locator("#album-grid li").count() == 24
    page.get_by_role("button", name="Load more photos").click()
    page.locator("#album-grid li").nth(count - 1).wait_for()
    assert set(page.locator("#album-grid .caption").all_inner_texts()) == names
    assert page.get_by_role("button", name="Load more photos").is_hidden()

    visitor = another_page()
    visitor.goto(f"{devstack['web_url']}/#/s/{link['token']}")
    visitor.locator("#shared-grid li").nth(23).wait_for()
    assert visitor.locator("#shared-grid li").count() == 24
    visitor.get_by_role("button", name="Load more photos").click()
    visitor.locator("#shared-grid li").nth(count - 1).wait_for()
    assert set(visitor.locator("#shared-grid .caption").all_inner_texts()) == names
    assert visitor.get_by_role("button", name="Load more photos").is_hidden()
    status_says(visitor, f"{count} photos shown.")
