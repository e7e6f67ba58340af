"""The library in a real browser (issue 13): the timeline under month headers and its scrubber, favourites, the
trash (move, restore, delete forever, empty), multi-select with bulk actions, duplicates caught on upload, and
deleting the account. Photos are set up through the API as the SPA uploads them (declared, then POSTed to S3), each
with its own random pixels, so no two are copies of each other unless a test means them to be.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.browser.conftest import Account, call_api, id_token, ready_photo, ready_photos
from tests.support.imaging_samples import encode, exif, noise

pytestmark = pytest.mark.browser


def jpeg(taken: str | None = None, size: tuple[int, int] = (320, 240)) -> bytes:
    """A JPEG no other call returns (random pixels), taken at `taken` ("YYYY:MM:DD HH:MM:SS") if given."""
    options: dict[str, Any] = {"exif": exif(taken=taken)} if taken else {}
    return encode(noise(size), "JPEG", quality=80, **options)


def person(stack: dict[str, Any], cognito: Any, account: Account, display_name: str) -> str:
    """A user with a profile (so signing in lands in the library); returns their ID token for API-side setup."""
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


def tile(page: Any, grid: str, name: str) -> Any:
    return page.locator(f"{grid} li").filter(has=page.locator(".caption", has_text=re.compile(f"^{re.escape(name)}$")))


def captions(page: Any, grid: str) -> list[str]:
    return [text.strip() for text in page.locator(f"{grid} .caption").all_inner_texts()]


_CAPTIONS_ARE = """([grid, expected]) => JSON.stringify(
    [...document.querySelectorAll(`${grid} .caption`)].map((caption) => caption.textContent.trim())
) === JSON.stringify(expected)"""


def shows(page: Any, grid: str, expected: list[str]) -> None:
    """Wait until the tiles in `grid` are exactly `expected`, in this order (pages load after their heading)."""
    try:
        page.wait_for_function(_CAPTIONS_ARE, arg=[grid, expected])
    except Exception:
        assert captions(page, grid) == expected
        raise


def confirm(page: Any, title: str, button: str) -> None:
    dialog = page.get_by_role("dialog", name=title)
    dialog.wait_for()
    dialog.get_by_role("button", name=button, exact=True).click()
    dialog.wait_for(state="hidden")


def status_says(page: Any, text: str) -> None:
    page.get_by_role("status").filter(has_text=text).wait_for()


def summary_says(page: Any, text: str) -> None:
    page.locator("#batch-summary").filter(has_text=text).wait_for()


def star(page: Any, grid: str, name: str) -> Any:
    return tile(page, grid, name).get_by_role("button", name=f"Favourite {name}")


def photo_of(stack: dict[str, Any], token: str, photo_id: str) -> dict[str, Any]:
    status, photo = call_api(stack, token, "GET", f"/photos/{photo_id}")
    assert status == 200, photo
    return dict(photo)


def test_the_timeline_groups_photos_by_month_and_its_scrubber_jumps_to_one(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    token = person(devstack, cognito, account, "Tina Timeline")
    # Uploaded in an order that is not the order they were taken in.
    ready_photos(
        devstack,
        token,
        [
            (jpeg("2024:12:24 18:00:00"), "image/jpeg", {"title": "Winter"}),
            (jpeg("2025:03:14 10:00:00"), "image/jpeg", {"title": "Spring one"}),
            (jpeg("2023:07:02 12:00:00"), "image/jpeg", {"title": "Summer"}),
            (jpeg("2025:03:20 09:00:00"), "image/jpeg", {"title": "Spring two"}),
        ],
    )
    listings: list[dict[str, list[str]]] = []
    page.on(
        "request",
        lambda r: (
            listings.append(parse_qs(urlsplit(r.url).query))
            if r.method == "GET" and urlsplit(r.url).path.endswith("/photos")
            else None
        ),
    )

    sign_in(page, devstack, account)
    shows(page, "#photo-grid", ["Spring two", "Summer", "Spring one", "Winter"])  # newest upload first
    page.get_by_role("navigation", name="Photo views").get_by_role("link", name="Timeline").click()
    page.get_by_role("heading", name="Timeline", exact=True).wait_for()
    months = page.locator("#timeline section.month")
    months.nth(2).wait_for()
    assert months.locator("h2").all_inner_texts() == ["March 2025", "December 2024", "July 2023"]
    shows(page, "#timeline", ["Spring two", "Spring one", "Winter", "Summer"])  # newest taken first
    assert page.locator('#timeline section[data-month="2025-03"] li').count() == 2

    # The scrubber: every month with its count, newest first.
    rail = page.get_by_role("navigation", name="Months")
    rail.get_by_role("link").nth(2).wait_for()
    labels = rail.get_by_role("link").evaluate_all("links => links.map((a) => a.getAttribute('aria-label'))")
    assert labels == ["March 2025: 2 photos", "December 2024: 1 photo", "July 2023: 1 photo"]
    assert [text.split() for text in rail.get_by_role("link").all_inner_texts()] == [
        ["March", "2025", "2"],
        ["December", "2024", "1"],
        ["July", "2023", "1"],
    ]

    # A month from the scrubber: that month alone first, then on to the older ones.
    listings.clear()
    rail.get_by_role("link", name="December 2024").click()
    page.wait_for_url(re.compile(r"#/timeline\?month=2024-12$"))
    page.locator('#timeline section[data-month="2023-07"]').wait_for()
    assert months.locator("h2").all_inner_texts() == ["December 2024", "July 2023"]
    shows(page, "#timeline", ["Winter", "Summer"])
    assert rail.get_by_role("link", name="December 2024").get_attribute("aria-current") == "true"
    taken = [query for query in listings if query.get("sort") == ["taken"]]
    assert (taken[0]["from"], taken[0]["to"]) == (["2024-12-01"], ["2024-12-31"]), taken
    assert any(query.get("to") == ["2024-11-30"] and "from" not in query for query in taken), taken

    page.get_by_role("link", name="Show the newest").click()
    page.locator('#timeline section[data-month="2025-03"]').wait_for()
    assert months.count() == 3


def test_a_favourite_is_starred_on_its_tile_and_listed_in_favourites(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    token = person(devstack, cognito, account, "Fay Favourite")
    lake, hills = ready_photos(
        devstack,
        token,
        [(jpeg(), "image/jpeg", {"title": "Lake"}), (jpeg(), "image/jpeg", {"title": "Hills"})],
    )

    sign_in(page, devstack, account)
    tab = page.get_by_role("navigation", name="Photo views")
    tab.get_by_role("link", name="Favourites").click()
    page.get_by_role("heading", name="Favourites", exact=True).wait_for()
    page.get_by_text("No favourites yet.").wait_for()
    tab.get_by_role("link", name="Library").click()
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()

    # Edited elsewhere meanwhile (its version moved on): the star reads it again and still sets the flag.
    changes = {"description": "Edited on a phone", "version": lake["version"]}
    status, edited = call_api(devstack, token, "PATCH", f"/photos/{lake['photo_id']}", changes)
    assert (status, edited["version"]) == (200, lake["version"] + 1), edited
    assert star(page, "#photo-grid", "Lake").get_attribute("aria-pressed") == "false"
    star(page, "#photo-grid", "Lake").click()
    page.wait_for_function(
        "() => document.querySelector('#photo-grid li[data-favorite=\"true\"]') !== null",
    )
    assert star(page, "#photo-grid", "Lake").get_attribute("aria-pressed") == "true"
    assert photo_of(devstack, token, lake["photo_id"])["favorite"] is True
    assert page.get_by_role("alert").is_hidden()

    tab.get_by_role("link", name="Favourites").click()
    page.get_by_role("heading", name="Favourites", exact=True).wait_for()
    tile(page, "#photo-grid", "Lake").wait_for()
    shows(page, "#photo-grid", ["Lake"])

    # The photo page has the same star: off again, and Favourites is empty once more.
    tile(page, "#photo-grid", "Lake").get_by_role("link").click()
    page.get_by_role("heading", name="Lake", exact=True).wait_for()
    toggle = page.locator("#favorite-photo")
    assert toggle.get_attribute("aria-pressed") == "true"
    toggle.click()
    status_says(page, "Lake is no longer a favourite.")
    assert toggle.get_attribute("aria-pressed") == "false"
    assert photo_of(devstack, token, lake["photo_id"])["favorite"] is False
    assert photo_of(devstack, token, hills["photo_id"])["favorite"] is False
    page.goto(devstack["web_url"] + "/#/favourites")
    page.get_by_text("No favourites yet.").wait_for()


def test_the_trash_restores_deletes_forever_and_empties(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    token = person(devstack, cognito, account, "Tom Trash")
    copied = jpeg()
    boat, dune, reef, twin = ready_photos(
        devstack,
        token,
        [
            (jpeg(), "image/jpeg", {"title": "Boat"}),
            (jpeg(), "image/jpeg", {"title": "Dune"}),
            (jpeg(), "image/jpeg", {"title": "Reef"}),
            (copied, "image/jpeg", {"title": "Twin"}),
        ],
    )

    # From the photo page: "Move to trash", after a confirmation.
    sign_in(page, devstack, account)
    tile(page, "#photo-grid", "Boat").get_by_role("link").click()
    page.get_by_role("heading", name="Boat", exact=True).wait_for()
    page.get_by_role("button", name="Move to trash").click()
    confirm(page, "Move to trash?", "Move to trash")
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()
    status_says(page, "Moved Boat to the trash.")
    tile(page, "#photo-grid", "Dune").wait_for()
    assert tile(page, "#photo-grid", "Boat").count() == 0

    # The trash says when it was deleted and when it goes for good; restore puts it back in the library.
    page.get_by_role("link", name="Trash", exact=True).click()
    page.get_by_role("heading", name="Trash", exact=True).wait_for()
    boat_tile = tile(page, "#trash-grid", "Boat")
    boat_tile.wait_for()
    trashed = photo_of(devstack, token, boat["photo_id"])
    assert trashed["trashed_at"] is not None
    assert trashed["purge_at"] is not None
    assert re.search(r"Deleted .+, removed for good on .+", boat_tile.locator(".trash-dates").inner_text())
    assert "30 days" in page.locator("#trash-intro").inner_text()
    boat_tile.get_by_role("button", name="Restore Boat").click()
    status_says(page, "Restored Boat.")
    page.locator("#trash-empty").wait_for()
    assert photo_of(devstack, token, boat["photo_id"])["trashed_at"] is None

    # A copy of the same bytes that came back into the library meanwhile blocks a restore: the message links to it.
    assert call_api(devstack, token, "DELETE", f"/photos/{twin['photo_id']}")[0] == 204
    again = ready_photo(devstack, token, copied, "image/jpeg", title="Twin again")
    page.reload()
    tile(page, "#trash-grid", "Twin").get_by_role("button", name="Restore Twin").click()
    alert = page.get_by_role("alert")
    alert.filter(has_text="“Twin” cannot be restored: a copy of it is already in your library.").wait_for()
    link = alert.get_by_role("link", name="See the copy in your library")
    assert link.get_attribute("href") == f"#/photo/{again['photo_id']}"
    assert tile(page, "#trash-grid", "Twin").count() == 1

    # Delete forever, one photo, after a confirmation.
    tile(page, "#trash-grid", "Twin").get_by_role("button", name="Delete Twin forever").click()
    confirm(page, "Delete forever?", "Delete forever")
    status_says(page, "Deleted Twin for good.")
    assert tile(page, "#trash-grid", "Twin").count() == 0
    assert call_api(devstack, token, "GET", f"/photos/{twin['photo_id']}")[0] == 404

    # Two more in the trash: the profile counts them against the quota; "Empty trash" purges them.
    for photo in (dune, reef):
        assert call_api(devstack, token, "DELETE", f"/photos/{photo['photo_id']}")[0] == 204
    page.get_by_role("link", name="Profile").click()
    page.get_by_role("heading", name="Your profile", exact=True).wait_for()
    trash_usage = page.locator("#usage-trash").inner_text()
    assert re.match(r"2 photos \(.+\) in the trash, counting against your quota until emptied", trash_usage), (
        trash_usage
    )
    page.get_by_role("link", name="Open the trash").click()
    page.get_by_role("heading", name="Trash", exact=True).wait_for()
    tile(page, "#trash-grid", "Reef").wait_for()
    page.get_by_role("button", name="Empty trash").click()
    dialog = page.get_by_role("dialog", name="Empty the trash?")
    dialog.wait_for()
    page.keyboard.press("Escape")  # cancelled: nothing happens
    dialog.wait_for(state="hidden")
    assert page.locator("#trash-grid li").count() == 2
    page.get_by_role("button", name="Empty trash").click()
    confirm(page, "Empty the trash?", "Empty trash")
    status_says(page, "The trash is empty.")
    page.locator("#trash-empty").wait_for()
    status, listed = call_api(devstack, token, "GET", "/trash")
    assert (status, listed["items"]) == (200, [])
    for photo in (dune, reef):
        assert call_api(devstack, token, "GET", f"/photos/{photo['photo_id']}")[0] == 404


def test_bulk_actions_favourite_and_trash_a_selection_in_batches(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    token = person(devstack, cognito, account, "Bea Bulk")
    names = ["P1", "P2", "P3", "P4"]
    photos = ready_photos(devstack, token, [(jpeg(), "image/jpeg", {"title": name}) for name in names])
    ids = {photo["title"]: photo["photo_id"] for photo in photos}
    # A smaller batch than the API's, so three photos take two calls: the client follows config.json's limit.
    config_url = devstack["web_url"] + "/config.json"

    def small_batches(route: Any) -> None:
        config = json.loads(route.fetch().text())
        # No live socket: a `photo_deleted` message would remove the tile this test expects a batch to report as
        # not found, and which comes first is a race.
        config.pop("ws_url", None)
        route.fulfill(json={**config, "limits": {**config["limits"], "batch_photos": 2}})

    page.route(config_url, small_batches)
    batches: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            batches.append(json.loads(r.post_data))
            if r.method == "POST" and r.url == devstack["api_url"] + "/photos/batch"
            else None
        ),
    )

    sign_in(page, devstack, account)
    shows(page, "#photo-grid", ["P4", "P3", "P2", "P1"])
    page.locator("#selection-count").filter(has_text="No photos selected.").wait_for()
    # A tick, then shift-click: the range between them (P3, P2, P1).
    page.get_by_label("Select P3").check()
    page.get_by_label("Select P1").click(modifiers=["Shift"])
    page.locator("#selection-count").filter(has_text="3 photos selected.").wait_for()
    # In select mode a click on a tile selects it instead of opening it.
    tile(page, "#photo-grid", "P4").get_by_role("link").click()
    page.locator("#selection-count").filter(has_text="4 photos selected.").wait_for()
    assert page.get_by_role("heading", name="Your photos", exact=True).is_visible()
    page.get_by_label("Select P4").uncheck()
    page.locator("#selection-count").filter(has_text="3 photos selected.").wait_for()

    bar = page.get_by_role("region", name="Selected photos")
    bar.get_by_role("button", name="Favourite", exact=True).click()
    summary_says(page, "3 added to favourites.")
    assert [len(batch["photo_ids"]) for batch in batches] == [2, 1]
    assert {batch["action"] for batch in batches} == {"favorite"}
    for name in ("P1", "P2", "P3"):
        assert star(page, "#photo-grid", name).get_attribute("aria-pressed") == "true"
        assert photo_of(devstack, token, ids[name])["favorite"] is True
    assert star(page, "#photo-grid", "P4").get_attribute("aria-pressed") == "false"
    page.locator("#selection-count").filter(has_text="No photos selected.").wait_for()

    # Tags on a selection.
    page.get_by_label("Select P1").check()
    page.get_by_label("Select P2").check()
    bar.get_by_label("Tags for the selected photos").fill("Trip, sea")
    bar.get_by_role("button", name="Add tags").click()
    summary_says(page, "2 tagged.")
    assert sorted(photo_of(devstack, token, ids["P1"])["tags"]) == ["sea", "trip"]

    # A photo deleted elsewhere meanwhile: the others are done, the report names the one that was not.
    page.get_by_label("Select P3").check()
    page.get_by_label("Select P4").check()
    assert call_api(devstack, token, "DELETE", f"/photos/{ids['P4']}?permanent=true")[0] == 204
    bar.get_by_role("button", name="Move to trash").click()
    summary_says(page, "1 moved to the trash, 1 not found.")
    failures = page.get_by_role("list", name="Photos not done").get_by_role("listitem")
    assert len(failures.all_inner_texts()) == 1
    assert failures.first.inner_text().startswith("P4: not found (")
    assert tile(page, "#photo-grid", "P3").count() == 0
    shows(page, "#photo-grid", ["P4", "P2", "P1"])  # the failed one stays, still selected
    assert page.get_by_label("Select P4").is_checked()

    # Favourites: select all shown, to the trash.
    page.goto(devstack["web_url"] + "/#/favourites")
    page.get_by_role("heading", name="Favourites", exact=True).wait_for()
    tile(page, "#photo-grid", "P1").wait_for()
    shows(page, "#photo-grid", ["P2", "P1"])
    page.get_by_role("button", name="Select all shown").click()
    bar.get_by_role("button", name="Move to trash").click()
    summary_says(page, "2 moved to the trash.")
    page.get_by_text("No favourites yet.").wait_for()

    # The trash: the three back with one bulk restore.
    page.get_by_role("link", name="Trash", exact=True).click()
    page.get_by_role("heading", name="Trash", exact=True).wait_for()
    tile(page, "#trash-grid", "P3").wait_for()
    assert sorted(captions(page, "#trash-grid")) == ["P1", "P2", "P3"]
    page.get_by_role("button", name="Select all shown").click()
    batches.clear()
    bar.get_by_role("button", name="Restore", exact=True).click()
    summary_says(page, "3 restored.")
    assert [(batch["action"], len(batch["photo_ids"])) for batch in batches] == [("restore", 2), ("restore", 1)]
    page.locator("#trash-empty").wait_for()
    status, listed = call_api(devstack, token, "GET", "/photos")
    assert status == 200
    assert sorted(photo["title"] for photo in listed["items"]) == ["P1", "P2", "P3"]


def test_a_photo_already_in_the_library_is_not_uploaded_again(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    person(devstack, cognito, account, "Dee Duplicate")
    data = jpeg()
    declarations: list[tuple[int, dict[str, Any]]] = []
    page.on(
        "response",
        lambda r: (
            declarations.append((r.status, json.loads(r.request.post_data)))
            if r.request.method == "POST" and r.url == devstack["api_url"] + "/photos"
            else None
        ),
    )

    sign_in(page, devstack, account)
    page.locator("#file-input").set_input_files([{"name": "first.jpg", "mimeType": "image/jpeg", "buffer": data}])
    page.locator('#upload-list li[data-filename="first.jpg"][data-status="READY"]').wait_for()
    first_id = page.locator("#photo-grid li").first.get_attribute("data-photo-id")

    # The same bytes again: the declaration carries the file's SHA-256, the API knows it, nothing is uploaded.
    page.locator("#file-input").set_input_files([{"name": "again.jpg", "mimeType": "image/jpeg", "buffer": data}])
    row = page.locator('#upload-list li[data-filename="again.jpg"][data-status="DUPLICATE"]')
    row.wait_for()
    assert row.locator(".state").inner_text().startswith("Already in your library.")
    assert row.get_by_role("link").get_attribute("href") == f"#/photo/{first_id}"
    assert [status for status, _ in declarations] == [201, 409]
    assert declarations[0][1]["sha256"] == declarations[1][1]["sha256"] == hashlib.sha256(data).hexdigest()
    assert page.locator("#photo-grid li").count() == 1

    # A browser that sends no hash: the worker finds the copy, the upload ends REJECTED as a duplicate of the first.
    def without_hash(route: Any) -> None:
        if route.request.method != "POST":
            route.fallback()
            return
        body = json.loads(route.request.post_data)
        body.pop("sha256", None)
        route.continue_(post_data=json.dumps(body))

    page.route(devstack["api_url"] + "/photos", without_hash)
    page.locator("#file-input").set_input_files([{"name": "third.jpg", "mimeType": "image/jpeg", "buffer": data}])
    row = page.locator('#upload-list li[data-filename="third.jpg"][data-status="DUPLICATE"]')
    row.wait_for()
    assert row.locator(".state").inner_text().startswith("Already in your library.")
    link = row.get_by_role("link")
    assert link.get_attribute("href") == f"#/photo/{first_id}"
    link.click()
    page.get_by_role("heading", name="first.jpg", exact=True).wait_for()


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def emulated_cognito_deletes_users(cognito: Any) -> bool:
    """Whether the emulated Cognito implements DeleteUser (moto 5.2 does not: it answers with a 500)."""
    try:
        cognito.delete_user(AccessToken="not-a-token")
    except cognito.exceptions.NotAuthorizedException:
        return True
    except Exception:
        return False
    return True


def test_deleting_the_account_removes_everything_and_signs_out_for_good(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    token = person(devstack, cognito, account, "Del Leaving")
    photo = ready_photo(devstack, token, jpeg(), "image/jpeg", title="Last light")
    deleted_with: list[str] = []
    if not emulated_cognito_deletes_users(cognito):
        # Stand in for the missing call exactly as Cognito answers it: the access token names the user to delete.
        def delete_user(route: Any) -> None:
            if route.request.headers.get("x-amz-target") != "AWSCognitoIdentityProviderService.DeleteUser":
                route.fallback()
                return
            access_token = json.loads(route.request.post_data)["AccessToken"]
            deleted_with.append(access_token)
            username = cognito.get_user(AccessToken=access_token)["Username"]
            cognito.admin_delete_user(UserPoolId=devstack["user_pool_id"], Username=username)
            route.fulfill(
                status=200,
                content_type="application/x-amz-json-1.1",
                headers={"Access-Control-Allow-Origin": "*"},
                body="{}",
            )

        endpoint = devstack["aws_endpoint_url"].rstrip("/")
        page.route(lambda url: url == endpoint or url.startswith(endpoint + "/"), delete_user)

    sign_in(page, devstack, account)
    page.get_by_role("link", name="Profile").click()
    page.get_by_role("heading", name="Your profile", exact=True).wait_for()
    zone = page.get_by_role("form", name="Delete your account")
    zone.get_by_label("Type your username to confirm").fill("not my name")
    zone.get_by_role("button", name="Delete my account").click()
    page.get_by_role("alert").filter(has_text=f"type your username ({account.username}) or DELETE").wait_for()
    assert call_api(devstack, token, "GET", "/users/me")[0] == 200

    zone.get_by_label("Type your username to confirm").fill(account.username)
    zone.get_by_role("button", name="Delete my account").click()
    page.get_by_role("heading", name="Your account is deleted", exact=True).wait_for()
    assert page.locator("#nav").is_hidden()
    assert page.evaluate("sessionStorage.getItem('photosky.session')") is None
    if deleted_with:  # once, with the user's access token (not the ID token the API takes)
        assert [claims(token)["token_use"] for token in deleted_with] == ["access"]
    assert call_api(devstack, token, "GET", "/users/me")[0] in (401, 404)
    assert call_api(devstack, token, "GET", f"/photos/{photo['photo_id']}")[0] in (401, 404)

    # The user is gone from Cognito: signing in again fails.
    page.get_by_role("link", name="sign in with another one").click()
    page.get_by_role("heading", name="Sign in", exact=True).wait_for()
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="Incorrect username or password.").wait_for()
    with pytest.raises(ClientError):
        id_token(cognito, devstack, account)


SLOW_DOWN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.'
    "</Message></Error>"
)


def _storage_posts(page: Any, answers: list[int]) -> list[int]:
    """Answer the browser's POSTs of files to storage with `answers` (statuses, in turn), then let them through;
    every status the browser met, in order."""
    met: list[int] = []

    def storage(route: Any) -> None:
        request = route.request
        if request.method != "POST" or "multipart/form-data" not in (request.headers.get("content-type") or ""):
            route.fallback()
            return
        if answers:
            status = answers.pop(0)
            met.append(status)
            route.fulfill(status=status, content_type="application/xml", body=SLOW_DOWN)
            return
        met.append(204)
        route.continue_()

    page.route(lambda url: True, storage)
    return met


def test_an_upload_s3_asks_to_slow_down_is_sent_again_after_a_wait_and_settles(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    person(devstack, cognito, account, "Sam Slowdown")
    met = _storage_posts(page, [503, 500])
    sign_in(page, devstack, account)
    page.locator("#file-input").set_input_files([{"name": "busy.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}])
    row = page.locator('#upload-list li[data-filename="busy.jpg"]')
    row.locator(".state", has_text="Storage is busy").wait_for()
    page.locator('#upload-list li[data-filename="busy.jpg"][data-status="READY"]').wait_for(timeout=30_000)
    assert met == [503, 500, 204]  # the same presigned form, three times
    assert page.locator("#photo-grid li").count() == 1


def test_an_upload_s3_refuses_for_good_fails_at_once(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    person(devstack, cognito, account, "Rita Refused")
    met = _storage_posts(page, [403])
    sign_in(page, devstack, account)
    page.locator("#file-input").set_input_files([{"name": "no.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}])
    row = page.locator('#upload-list li[data-filename="no.jpg"].failed')
    row.wait_for()
    assert "HTTP 403" in row.inner_text()
    assert met == [403]
