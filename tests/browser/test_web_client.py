"""The web client end to end in a real browser: sign-in, profile, uploads to S3 with previews, edits, tag filter,
delete, sign-up with confirmation, token refresh on 401, stale edits, infinite scroll, sign-out; no navigation
for signed-out visitors, retry hints from Retry-After, uploads queued a few at a time with short Retry-After
refusals waited out, and limits taken from the server's config.json.

Every request goes where a deployed SPA's would: Cognito and S3 on the emulated AWS, the API on its own origin,
all cross-origin from the web client (so CORS is exercised for real, not assumed).
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import Account, call_api, id_token
from tests.support.imaging_samples import encode, marked, noise

pytestmark = pytest.mark.browser

HOSTILE_HTML = b"<!doctype html><html><body><script>alert('owned')</script></body></html>"


def jpeg(size: tuple[int, int]) -> bytes:
    return encode(marked(size), "JPEG", quality=85)


def png(size: tuple[int, int]) -> bytes:
    return encode(marked(size).rotate(90, expand=True), "PNG")


def sign_in(page: Any, devstack: dict[str, Any], username: str, password: str) -> None:
    page.goto(devstack["web_url"] + "/")
    page.get_by_role("heading", name="Sign in", exact=True).wait_for()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def create_profile(page: Any, display_name: str) -> None:
    page.get_by_role("heading", name="Create your profile", exact=True).wait_for()
    page.get_by_label("Display name").fill(display_name)
    page.get_by_role("button", name="Create profile").click()
    page.get_by_role("heading", name="Your profile", exact=True).wait_for()


def focused_id(page: Any) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def tile(page: Any, name: str) -> Any:
    return page.locator("#photo-grid li").filter(
        has=page.locator(".caption", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def test_demo_user_uploads_edits_filters_and_deletes(page: Any, devstack: dict[str, Any]) -> None:
    demo = devstack["demo_user"]
    sign_in(page, devstack, demo["username"], demo["password"])

    # First visit: no profile yet, so the client offers to create one; then usage and quota are shown.
    create_profile(page, "Demo Photographer")
    assert page.locator("#usage-photos-text").text_content() == "0 of 10,000"
    assert page.locator("#usage-bytes-text").text_content() == "0 bytes of 10 GB"
    assert focused_id(page) == "page-title"
    page.get_by_label("Bio").fill("Clouds, mostly.")
    page.get_by_role("button", name="Save profile").click()
    page.get_by_role("status").filter(has_text="Profile saved.").wait_for()

    page.get_by_role("link", name="Photos", exact=True).click()
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()
    page.locator("#empty").wait_for()

    # Two real images (one by the file picker, one dropped) and an HTML page pretending to be a JPEG.
    page.locator("#file-input").set_input_files(
        [
            {"name": "harbour.jpg", "mimeType": "image/jpeg", "buffer": jpeg((1600, 1200))},
            {"name": "evil.jpg", "mimeType": "image/jpeg", "buffer": HOSTILE_HTML},
        ]
    )
    dropped = page.evaluate_handle(
        """([name, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, { type: "image/png" }));
            return transfer;
        }""",
        ["meadow.png", list(png((900, 600)))],
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dropped})

    uploads = page.locator("#upload-list")
    for name in ("harbour.jpg", "meadow.png"):
        uploads.locator(f'li[data-filename="{name}"][data-status="READY"]').wait_for()
        assert uploads.locator(f'li[data-filename="{name}"] progress').get_attribute("value") == "1"
    rejected = uploads.locator('li[data-filename="evil.jpg"][data-status="REJECTED"]')
    rejected.wait_for()
    assert "Rejected:" in rejected.inner_text()

    # Without a reload: two READY thumbnails the browser really loaded from S3, and the rejection.
    for name in ("harbour.jpg", "meadow.png"):
        thumbnail = tile(page, name).locator("img")
        thumbnail.wait_for()
        assert thumbnail.get_attribute("alt") == name
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
        assert thumbnail.evaluate("img => Math.max(img.naturalWidth, img.naturalHeight)") == 256
    assert tile(page, "evil.jpg").get_attribute("data-status") == "REJECTED"
    assert page.locator("#photo-grid li").count() == 3

    # The photo page: the large preview and metadata; then edit title and tags.
    tile(page, "harbour.jpg").get_by_role("link").click()
    page.get_by_role("heading", name="harbour.jpg", exact=True).wait_for()
    assert focused_id(page) == "page-title"
    large = page.locator("#large-preview")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=large.element_handle())
    assert large.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [1024, 768]
    facts = page.locator("dl.facts").inner_text()
    assert "1600 × 1200 px" in facts
    assert "image/jpeg" in facts
    page.get_by_label("Title", exact=True).fill("Harbour at dawn")
    page.get_by_label("Tags", exact=True).fill("Sea, boats ,sea")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_role("heading", name="Harbour at dawn", exact=True).wait_for()
    page.get_by_role("status").filter(has_text="Changes saved.").wait_for()
    assert page.get_by_label("Tags", exact=True).input_value() == "sea, boats"
    assert page.get_by_role("list", name="Photo tags").inner_text().split() == ["sea", "boats"]

    # Filter by tag: from the tag link, then from the gallery's filter form.
    page.get_by_role("list", name="Photo tags").get_by_role("link", name="boats").click()
    page.get_by_role("heading", name="Photos tagged “boats”", exact=True).wait_for()
    tile(page, "Harbour at dawn").wait_for()
    assert page.locator("#photo-grid li").count() == 1
    page.get_by_label("Filter by tag").fill("nothing-here")
    page.get_by_role("button", name="Filter").click()
    page.get_by_text("No photos tagged “nothing-here”.").wait_for()
    assert page.locator("#photo-grid li").count() == 0
    page.get_by_role("link", name="Show all photos").click()
    tile(page, "meadow.png").wait_for()
    assert page.locator("#photo-grid li").count() == 3

    # To the trash, with confirmation: Escape cancels (keyboard), then the dialog's button confirms.
    tile(page, "meadow.png").get_by_role("link").click()
    page.get_by_role("heading", name="meadow.png", exact=True).wait_for()
    page.get_by_role("button", name="Move to trash").click()
    dialog = page.get_by_role("dialog", name="Move to trash?")
    dialog.wait_for()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert focused_id(page) == "delete-photo"
    page.get_by_role("heading", name="meadow.png", exact=True).wait_for()
    page.get_by_role("button", name="Move to trash").click()
    dialog.get_by_role("button", name="Move to trash").click()
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()
    page.get_by_role("status").filter(has_text="Moved meadow.png to the trash.").wait_for()
    tile(page, "Harbour at dawn").wait_for()
    assert tile(page, "meadow.png").count() == 0
    assert page.locator("#photo-grid li").count() == 2

    # Usage counts the photo left and the one in the trash until it is emptied (the rejected file was released).
    page.get_by_role("link", name="Profile").click()
    page.get_by_role("heading", name="Your profile", exact=True).wait_for()
    assert page.locator("#usage-photos-text").text_content() == "2 of 10,000"
    assert page.locator("#usage-trash").text_content().startswith("1 photo (")
    assert page.get_by_label("Bio").input_value() == "Clouds, mostly."

    # Sign out: back to sign-in, and a reload does not bring the session back.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in", exact=True).wait_for()
    page.reload()
    page.get_by_role("heading", name="Sign in", exact=True).wait_for()
    assert page.evaluate("sessionStorage.getItem('photosky.session')") is None


def test_a_new_user_signs_up_confirms_and_signs_in(page: Any, devstack: dict[str, Any]) -> None:
    username = f"newbie{page.evaluate('Date.now()')}"
    password = "Fresh-Start-2026"
    page.goto(devstack["web_url"] + "/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_role("heading", name="Create an account", exact=True).wait_for()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@photosky.test")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    # The browser's own check (minlength) stops it; with a long but weak password, Cognito's policy does.
    assert page.get_by_label("Password").evaluate("input => input.validity.tooShort")
    page.get_by_label("Password").fill("alllowercase-no-digits")
    page.get_by_role("button", name="Create account").click()
    assert page.get_by_role("alert").inner_text().startswith("Password not accepted: ")

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Confirm your account", exact=True).wait_for()
    # The dev stack's emulated Cognito sends no email: the page says so instead of pretending.
    assert "sends no email" in page.locator("#local-confirm-note").inner_text()

    # Signing in before confirming is refused by Cognito, and the client brings the user back here.
    page.get_by_role("link", name="Back to sign in").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Confirm your account", exact=True).wait_for()
    assert page.get_by_label("Username").input_value() == username

    page.get_by_label("Confirmation code").fill("123456")
    page.get_by_role("button", name="Confirm account").click()
    page.get_by_role("heading", name="Sign in", exact=True).wait_for()
    page.get_by_role("status").filter(has_text="Account confirmed").wait_for()
    assert page.get_by_label("Username").input_value() == username
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    create_profile(page, "Newbie")
    assert page.get_by_role("navigation", name="Main").inner_text().count(username) == 1


def test_a_wrong_password_is_a_readable_error(page: Any, devstack: dict[str, Any]) -> None:
    sign_in(page, devstack, devstack["demo_user"]["username"], "Not-The-Password-1")
    assert page.get_by_role("alert").inner_text() == "Incorrect username or password."
    page.get_by_role("heading", name="Sign in", exact=True).wait_for()


def test_a_rejected_token_is_refreshed_and_a_dead_session_returns_to_sign_in(
    page: Any, devstack: dict[str, Any], new_account: Callable[[], Account]
) -> None:
    account = new_account()
    sign_in(page, devstack, account.username, account.password)
    create_profile(page, "Refresher")

    # An ID token about to expire is refreshed before it is used (REFRESH_TOKEN_AUTH), not after a failure.
    refreshes: list[str] = []
    page.on(
        "request",
        lambda r: refreshes.append(r.url) if "REFRESH_TOKEN_AUTH" in (r.post_data or "") else None,
    )
    page.evaluate(
        """() => {
            const session = JSON.parse(sessionStorage.getItem('photosky.session'));
            session.expiresAt = Date.now() + 60 * 1000;
            sessionStorage.setItem('photosky.session', JSON.stringify(session));
        }"""
    )
    page.reload()
    page.get_by_role("heading", name="Your profile", exact=True).wait_for()
    page.wait_for_function(
        "() => JSON.parse(sessionStorage.getItem('photosky.session')).expiresAt > Date.now() + 30 * 60 * 1000"
    )
    assert refreshes == [devstack["aws_endpoint_url"] + "/"]

    # The API answers 401 to a broken ID token: the client refreshes with its refresh token and carries on.
    page.evaluate(
        """() => {
            const session = JSON.parse(sessionStorage.getItem('photosky.session'));
            session.idToken = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.';
            sessionStorage.setItem('photosky.session', JSON.stringify(session));
        }"""
    )
    page.reload()
    page.get_by_role("heading", name="Your profile", exact=True).wait_for()
    stored = page.evaluate("JSON.parse(sessionStorage.getItem('photosky.session')).idToken")
    assert stored.count(".") == 2
    assert not stored.startswith("eyJhbGciOiJub25lIn0")

    # With the refresh token revoked too, the session is over: back to sign-in, no half-signed-in page.
    page.evaluate(
        """() => {
            const session = JSON.parse(sessionStorage.getItem('photosky.session'));
            session.idToken = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.';
            session.refreshToken = 'revoked';
            sessionStorage.setItem('photosky.session', JSON.stringify(session));
        }"""
    )
    page.reload()
    page.get_by_role("heading", name="Sign in", exact=True).wait_for()
    page.get_by_role("status").filter(has_text="You are signed out.").wait_for()
    assert page.evaluate("sessionStorage.getItem('photosky.session')") is None


def test_an_edit_made_elsewhere_meanwhile_is_a_clear_conflict(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    sign_in(page, devstack, account.username, account.password)
    create_profile(page, "Two Tabs")
    page.get_by_role("link", name="Photos", exact=True).click()
    page.locator("#file-input").set_input_files(
        [{"name": "blue.png", "mimeType": "image/png", "buffer": encode(marked((300, 200)).convert("RGB"), "PNG")}]
    )
    page.locator('#upload-list li[data-filename="blue.png"][data-status="READY"]').wait_for()
    tile(page, "blue.png").get_by_role("link").click()
    page.get_by_role("heading", name="blue.png", exact=True).wait_for()

    # Another client renames the photo while this page shows version 1.
    token = id_token(cognito, devstack, account)
    photo_id = page.url.rsplit("/", 1)[1]
    status, renamed = call_api(
        devstack, token, "PATCH", f"/photos/{photo_id}", {"title": "From my phone", "version": 1}
    )
    assert status == 200, renamed

    page.get_by_label("Title", exact=True).fill("From my laptop")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_role("alert").filter(has_text="changed somewhere else").wait_for()
    page.get_by_role("heading", name="From my phone", exact=True).wait_for()
    assert page.get_by_label("Title", exact=True).input_value() == "From my phone"
    status, current = call_api(devstack, token, "GET", f"/photos/{photo_id}")
    assert (status, current["title"], current["version"]) == (200, "From my phone", 2)


def test_the_gallery_scrolls_through_every_page(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    token = id_token(cognito, devstack, account)
    assert call_api(devstack, token, "POST", "/users", {"display_name": "Many"})[0] == 201
    count = 30  # more than one page of 24
    for n in range(count):
        declared = {"filename": f"p{n:02d}.jpg", "content_type": "image/jpeg", "size_bytes": 1000}
        assert call_api(devstack, token, "POST", "/photos", declared)[0] == 201

    sign_in(page, devstack, account.username, account.password)
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()
    tile(page, "p29.jpg").wait_for()  # newest first
    page.locator("#photo-grid li").nth(23).wait_for()
    page.locator("#photo-grid li").last.scroll_into_view_if_needed()
    tile(page, "p00.jpg").wait_for()
    assert page.locator("#photo-grid li").count() == count
    assert page.locator("#load-more").is_hidden()
    names = page.locator("#photo-grid .caption").all_inner_texts()
    assert names == [f"p{n:02d}.jpg" for n in reversed(range(count))]


def test_a_refused_upload_declaration_is_shown_per_file(
    page: Any, devstack: dict[str, Any], new_account: Callable[[], Account]
) -> None:
    account = new_account()
    sign_in(page, devstack, account.username, account.password)
    create_profile(page, "Picky")
    page.get_by_role("link", name="Photos", exact=True).click()
    page.locator("#file-input").set_input_files(
        [
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"},
            {"name": "ok.png", "mimeType": "image/png", "buffer": encode(marked((64, 64)).convert("RGB"), "PNG")},
        ]
    )
    failed = page.locator('#upload-list li[data-filename="notes.txt"][data-status="FAILED"]')
    failed.wait_for()
    assert "content_type" in failed.inner_text()  # the API's 415 message, naming the field
    page.locator('#upload-list li[data-filename="ok.png"][data-status="READY"]').wait_for()
    assert tile(page, "notes.txt").count() == 0


def test_a_signed_out_visitor_sees_no_navigation(
    page: Any, devstack: dict[str, Any], new_account: Callable[[], Account]
) -> None:
    """The nav's own `display: flex` once overrode its `hidden`: signed-out visitors saw "Photos · Sign out"."""
    page.goto(devstack["web_url"] + "/")
    page.get_by_role("heading", name="Sign in", exact=True).wait_for()
    assert page.locator("#nav").is_hidden()
    assert page.get_by_role("button", name="Sign out").count() == 0
    assert page.get_by_role("link", name="Photos", exact=True).count() == 0

    account = new_account()
    sign_in(page, devstack, account.username, account.password)
    page.get_by_role("heading", name="Create your profile", exact=True).wait_for()
    assert page.get_by_role("navigation", name="Main").is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in", exact=True).wait_for()
    assert page.locator("#nav").is_hidden()


def refuse(page: Any, devstack: dict[str, Any], method: str, path: str, status: int, body: Any, **headers: str) -> None:
    """The API answers `method path` with this refusal (as a throttled or rate-limited API would); CORS as the
    real API sends it, so the browser lets the client read it."""

    def handle(route: Any) -> None:
        if route.request.method != method:
            route.continue_()
            return
        route.fulfill(
            status=status,
            json=body,
            headers={
                "Access-Control-Allow-Origin": devstack["web_url"],
                "Access-Control-Expose-Headers": "Retry-After",
                **headers,
            },
        )

    page.route(devstack["api_url"] + path, handle)


def test_retry_after_is_shown_whatever_the_status(
    page: Any, devstack: dict[str, Any], new_account: Callable[[], Account]
) -> None:
    account = new_account()
    sign_in(page, devstack, account.username, account.password)
    create_profile(page, "Patient")

    # 503: AWS throttled the API (the retry hint was once tied to 429 only).
    refuse(
        page,
        devstack,
        "PATCH",
        "/users/me",
        503,
        {"Code": "ServiceUnavailableError", "Message": "Busy."},
        **{"Retry-After": "7"},
    )
    page.get_by_role("button", name="Save profile").click()
    page.get_by_role("alert").filter(has_text="Busy.").wait_for()
    assert page.get_by_role("alert").inner_text() == "Busy. (try again in 7 s)"

    # Retry-After may also be an HTTP date.
    page.unroute(devstack["api_url"] + "/users/me")
    in_ten_minutes = page.evaluate("new Date(Date.now() + 600 * 1000).toUTCString()")
    refuse(
        page,
        devstack,
        "PATCH",
        "/users/me",
        503,
        {"Code": "ServiceUnavailableError", "Message": "Later."},
        **{"Retry-After": in_ten_minutes},
    )
    page.get_by_role("button", name="Save profile").click()
    page.get_by_role("alert").filter(has_text="Later.").wait_for()
    assert page.get_by_role("alert").inner_text() == "Later. (try again in 10 min)"

    # 429 with a Retry-After too long to wait out in the page (a short one is waited out: see the next test):
    # the file it stopped fails, with the hint.
    page.get_by_role("link", name="Photos", exact=True).click()
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()
    refuse(
        page,
        devstack,
        "POST",
        "/photos",
        429,
        {"Code": "TooManyRequestsError", "Message": "Slow down."},
        **{"Retry-After": "3600"},
    )
    png_file = {"name": "a.png", "mimeType": "image/png", "buffer": small_png()}
    page.locator("#file-input").set_input_files([png_file])
    failed = page.locator('#upload-list li[data-filename="a.png"][data-status="FAILED"]')
    failed.wait_for()
    assert failed.locator(".state").inner_text() == "Slow down. (try again in 60 min)"
    page.get_by_role("status").filter(
        has_text="a.png could not be uploaded: Slow down. (try again in 60 min)"
    ).wait_for()

    # 429 without Retry-After (quota full): nothing to wait for, so no hint.
    page.unroute(devstack["api_url"] + "/photos")
    refuse(page, devstack, "POST", "/photos", 429, {"Code": "TooManyRequestsError", "Message": "Quota full."})
    page.locator("#file-input").set_input_files([{**png_file, "name": "b.png"}])
    failed = page.locator('#upload-list li[data-filename="b.png"][data-status="FAILED"]')
    failed.wait_for()
    assert failed.locator(".state").inner_text() == "Quota full."


def small_png(size: tuple[int, int] = (32, 32)) -> bytes:
    """A small PNG no other call returns (random pixels): the same bytes twice would be a duplicate upload."""
    return encode(noise(size), "PNG")


def refuse_first(
    page: Any, devstack: dict[str, Any], method: str, path: str, refusals: list[tuple[int, Any, str | None]]
) -> list[str]:
    """The first `method path` requests get these refusals (status, body, Retry-After or None), in turn; later ones
    reach the real API. Returns what each request got, in order ("429", "503", ..., "API")."""
    answered: list[str] = []

    def handle(route: Any) -> None:
        if route.request.method != method:
            route.continue_()
            return
        if len(answered) >= len(refusals):
            answered.append("API")
            route.continue_()
            return
        status, body, retry_after = refusals[len(answered)]
        answered.append(str(status))
        route.fulfill(
            status=status,
            json=body,
            headers={
                "Access-Control-Allow-Origin": devstack["web_url"],
                "Access-Control-Expose-Headers": "Retry-After",
                **({} if retry_after is None else {"Retry-After": retry_after}),
            },
        )

    page.route(devstack["api_url"] + path, handle)
    return answered


# What each upload row shows, every time it changes (status and text), and every message of the live region.
RECORD_UPLOADS_AND_ANNOUNCEMENTS = """() => {
    window.uploadLog = [];
    window.announced = [];
    new MutationObserver(() => {
        const rows = [...document.querySelectorAll("#upload-list li.upload")];
        const active = rows.filter((row) => ["STARTING", "WAITING", "UPLOADING"].includes(row.dataset.status));
        window.uploadLog.push({
            active: active.length,
            rows: rows.map((row) => [
                row.dataset.filename, row.dataset.status, row.querySelector(".state").textContent,
            ]),
        });
    }).observe(document.getElementById("main"), { subtree: true, attributes: true, attributeFilter: ["data-status"] });
    const status = document.getElementById("status");
    new MutationObserver(() => {
        if (status.textContent) window.announced.push(status.textContent);
    }).observe(status, { childList: true, characterData: true, subtree: true });
}"""


def test_a_short_retry_after_on_upload_is_waited_out_and_the_file_goes_on(
    page: Any, devstack: dict[str, Any], new_account: Callable[[], Account], polling_only: None
) -> None:
    # Polling only: the test reads the settling poll's requests (with the live socket there are none).
    account = new_account()
    sign_in(page, devstack, account.username, account.password)
    create_profile(page, "Waiter")
    page.get_by_role("link", name="Photos", exact=True).click()
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()
    page.evaluate(RECORD_UPLOADS_AND_ANNOUNCEMENTS)

    # The API's cap on uploads in progress refuses the three files' first declarations, then AWS throttles one
    # retry; each says to come back in a second. Nothing fails: the files wait, then upload for real.
    in_progress = {
        "Code": "TooManyRequestsError",
        "Message": "100 uploads are still in progress (at most 100): finish or wait for them first",
    }
    busy = {"Code": "ServiceUnavailableError", "Message": "The service is busy."}
    answered = refuse_first(
        page,
        devstack,
        "POST",
        "/photos",
        [(429, in_progress, "1"), (429, in_progress, "1"), (429, in_progress, "1"), (503, busy, "1")],
    )
    # Once declared and sent, a file is not failed by a poll that API Gateway throttles (no Retry-After).
    polled = refuse_first(page, devstack, "GET", "/photos/*", [(429, {"message": "Too Many Requests"}, None)])
    names = ["w1.png", "w2.png", "w3.png"]
    page.locator("#file-input").set_input_files(
        [{"name": n, "mimeType": "image/png", "buffer": small_png()} for n in names]
    )
    for name in names:
        page.locator(f'#upload-list li[data-filename="{name}"][data-status="READY"]').wait_for()
        tile(page, name).wait_for()
    assert answered == ["429", "429", "429", "503", "API", "API", "API"]
    assert polled[0] == "429"

    shown = {
        (name, status, text) for entry in page.evaluate("window.uploadLog") for name, status, text in entry["rows"]
    }
    for name in names:
        assert (name, "WAITING", f"Waiting 1 s: {in_progress['Message']}") in shown
    assert any(status == "WAITING" and text == "Waiting 1 s: The service is busy." for _, status, text in shown)
    assert not any(status == "FAILED" for _, status, _ in shown)
    # Three files waited (one twice); the live region said so once, not once per file or per retry.
    announced = page.evaluate("window.announced")
    paused = [message for message in announced if "paused" in message]
    assert paused == [f"Uploads paused for 1 s: {in_progress['Message']}. They will go on by themselves."], announced


# web/views/upload.js's queue width: how many files are declared and sent to S3 at once.
UPLOAD_SLOTS = 4


class InFlight:
    """Counts the page's requests that `matches`, and the most in flight at once."""

    def __init__(self, matches: Callable[[Any], bool]) -> None:
        self.matches = matches
        self.now = 0
        self.most = 0
        self.total = 0

    def started(self, request: Any) -> None:
        if self.matches(request):
            self.total += 1
            self.now += 1
            self.most = max(self.most, self.now)

    def ended(self, request: Any) -> None:
        if self.matches(request):
            self.now -= 1


def test_a_large_drop_is_uploaded_a_few_files_at_a_time(
    page: Any, devstack: dict[str, Any], new_account: Callable[[], Account]
) -> None:
    """Dropping hundreds of photos must not start hundreds of uploads at once (the API caps uploads in progress
    per user, and a browser has about six connections per host anyway): a queue of UPLOAD_SLOTS at a time."""
    account = new_account()
    sign_in(page, devstack, account.username, account.password)
    create_profile(page, "Hoarder")
    page.get_by_role("link", name="Photos", exact=True).click()
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()
    page.evaluate(RECORD_UPLOADS_AND_ANNOUNCEMENTS)

    declarations = InFlight(lambda r: r.method == "POST" and r.url == devstack["api_url"] + "/photos")
    to_storage = InFlight(lambda r: r.method == "POST" and devstack["bucket_name"] in r.url)
    for tracker in (declarations, to_storage):
        page.on("request", tracker.started)
        page.on("requestfinished", tracker.ended)
        page.on("requestfailed", tracker.ended)

    names = [f"many{n:02d}.png" for n in range(3 * UPLOAD_SLOTS)]
    page.locator("#file-input").set_input_files(
        [{"name": n, "mimeType": "image/png", "buffer": small_png()} for n in names]
    )
    for name in names:
        page.locator(f'#upload-list li[data-filename="{name}"][data-status="READY"]').wait_for()
    for name in names:
        tile(page, name).wait_for()

    assert (declarations.total, to_storage.total) == (len(names), len(names))
    assert declarations.most == UPLOAD_SLOTS, declarations.most
    assert to_storage.most <= UPLOAD_SLOTS, to_storage.most
    log = page.evaluate("window.uploadLog")
    assert max(entry["active"] for entry in log) == UPLOAD_SLOTS
    # The files past the first few were shown waiting for their turn.
    queued = {name for entry in log for name, status, text in entry["rows"] if (status, text) == ("QUEUED", "Waiting…")}
    assert set(names[UPLOAD_SLOTS:]) <= queued
    # The batch is listed in the order it is uploaded: the first file first.
    assert page.locator("#upload-list li").evaluate_all("rows => rows.map((row) => row.dataset.filename)") == names


def test_limits_come_from_the_servers_config(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(devstack["web_url"] + "/config.json") as r:
        config = json.loads(r.read())
    limits = config["limits"]
    account = new_account()
    declared: list[str] = []
    page.on(
        "request",
        lambda r: declared.append(r.url) if r.method == "POST" and r.url == devstack["api_url"] + "/photos" else None,
    )
    sign_in(page, devstack, account.username, account.password)
    create_profile(page, "Limited")
    assert page.get_by_label("Display name").get_attribute("maxlength") == str(limits["display_name_max"])
    assert page.get_by_label("Bio").get_attribute("maxlength") == str(limits["bio_max"])

    # The server's size limit: a larger file is refused before anything is sent, and the message names the limit.
    page.get_by_role("link", name="Photos", exact=True).click()
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()
    accept = page.locator("#file-input").get_attribute("accept").split(",")
    assert set(limits["content_types"]) <= set(accept)
    limit_text = f"{limits['max_upload_bytes'] / 2**20:.0f} MB"  # as the client formats sizes of 10 MB and more
    assert f"up to {limit_text} each" in page.locator("#upload-hint").inner_text()
    choose_in_page(page, "huge.jpg", "image/jpeg", limits["max_upload_bytes"] + 2**20)
    failed = page.locator('#upload-list li[data-filename="huge.jpg"][data-status="FAILED"]')
    failed.wait_for()
    assert failed.locator(".state").inner_text().startswith("Too large (")
    assert f"up to {limit_text} each" in failed.inner_text()
    assert declared == []

    # Whatever the server says, the client follows: there is no copy of a limit left in it.
    token = id_token(cognito, devstack, account)
    status, created = call_api(
        devstack, token, "POST", "/photos", {"filename": "x.png", "content_type": "image/png", "size_bytes": 10}
    )
    assert status == 201, created
    small = {**limits, "max_upload_bytes": 1000, "content_types": ["image/png"], "title_max": 7, "bio_max": 11}
    page.route(devstack["web_url"] + "/config.json", lambda route: route.fulfill(json={**config, "limits": small}))
    page.reload()  # the client reads config.json once, at start
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()
    assert page.locator("#file-input").get_attribute("accept") == "image/png,.png"
    assert page.locator("#upload-hint").inner_text() == "PNG, up to 1000 bytes each."
    choose_in_page(page, "big.png", "image/png", 1001)
    failed = page.locator('#upload-list li[data-filename="big.png"][data-status="FAILED"]')
    failed.wait_for()
    assert failed.locator(".state").inner_text() == "Too large (1001 bytes): photos can be up to 1000 bytes each."
    assert declared == []
    page.goto(devstack["web_url"] + f"/#/photo/{created['photo']['photo_id']}")
    page.get_by_role("heading", name="x.png", exact=True).wait_for()
    assert page.get_by_label("Title", exact=True).get_attribute("maxlength") == "7"
    page.get_by_role("link", name="Profile").click()
    page.get_by_role("heading", name="Your profile", exact=True).wait_for()
    assert page.get_by_label("Bio").get_attribute("maxlength") == "11"


def choose_in_page(page: Any, name: str, content_type: str, size: int) -> None:
    """Pick a file of `size` zero bytes made in the page (nothing that large crosses the DevTools connection)."""
    page.evaluate(
        """([name, type, size]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(size)], name, { type }));
            const input = document.getElementById("file-input");
            input.files = transfer.files;
            input.dispatchEvent(new Event("change"));
        }""",
        [name, content_type, size],
    )
