"""The web client's live status socket (issue 16), in headless Chromium.

First the logic of web/live.js (connect, backoff, pings, token handover, sign-out, message dispatch) and
web/settle.js (an upload waits for its message while connected, polls while not, checks once after a reconnect),
driven with a fake WebSocket and Playwright's fake clock: no dev stack, no waiting, every timing exact. The web
client is served by the dev stack's own web server (devstack.web), alone.

Then the real thing on the session dev stack: uploads settle with no request for the photo while the socket is up,
settle by polling when there is no socket or it cannot connect, and still settle when it drops mid-upload; the
library, a photo's page and an album's page follow changes made elsewhere.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack.clients import presigned_post_body
from devstack.web import client_limits, serve_web
from tests.browser.conftest import Account, _open_page, call_api, id_token, ready_photo
from tests.browser.test_web_sources import WEB_DIR, source
from tests.e2e.conftest import PROJECT_DIR, free_port
from tests.support.imaging_samples import encode, marked

pytestmark = pytest.mark.browser

HOST = "127.0.0.1"
WS_URL = "ws://127.0.0.1:9/live?stage=test"
MINUTE = 60_000


@pytest.fixture(scope="module")
def static_web() -> Iterator[str]:
    """web/ served by the dev stack's web server, with a config.json that points nowhere (the app shows sign-in)."""
    nowhere = f"http://{HOST}:9"
    config = {
        "api_url": nowhere,
        "cognito_endpoint": nowhere,
        "user_pool_client_id": "test",
        "region": "us-east-1",
        "limits": client_limits(1024 * 1024),
    }
    server = serve_web(HOST, free_port(), PROJECT_DIR / "web", PROJECT_DIR / "openapi.yaml", config)
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# A WebSocket the test opens, feeds and fails by hand; a signed-in Auth whose token the test changes; an API whose
# GET /photos/{id} answers from a script (`answers`: photo fields, an error, or "hold" for an answer given later).
HARNESS = """async (wsUrl) => {
  const { Live, backoffDelay } = await import("/live.js");
  const { followUpload } = await import("/settle.js");
  const { ApiError } = await import("/api.js");
  class FakeSocket extends EventTarget {
    constructor(url) {
      super();
      this.url = url;
      this.sent = [];
      this.closedWith = null;
      FakeSocket.made.push(this);
    }
    send(data) { this.sent.push(JSON.parse(data)); }
    close(code) { this.closedWith = code; }
    open() { this.dispatchEvent(new Event("open")); }
    push(message) {
      const data = typeof message === "string" ? message : JSON.stringify(message);
      this.dispatchEvent(new MessageEvent("message", { data }));
    }
    fail() { this.dispatchEvent(new CloseEvent("close", { code: 1006 })); }
  }
  FakeSocket.made = [];
  const auth = {
    signedIn: true,
    token: "token-1",
    async idToken() {
      if (!this.signedIn) throw new Error("signed out");
      return this.token;
    },
  };
  const live = new Live(wsUrl, auth, { WebSocket: FakeSocket, random: () => 1 });
  const events = [];
  for (const type of ["open", "close"]) live.on(type, () => events.push(type));
  const gets = [];
  const held = [];
  const api = {
    answers: [],
    async getPhoto(id) {
      gets.push(id);
      const answer = this.answers.length ? this.answers.shift() : { status: "PENDING" };
      if (answer === "hold") return new Promise((resolve) => held.push(resolve));
      if (answer instanceof Error) throw answer;
      return { photo_id: id, version: 1, ...answer };
    },
  };
  const results = [];
  const follow = (photoId) => {
    const follower = followUpload({ api, live }, { photo_id: photoId, status: "PENDING", version: 1, urls: {} });
    return {
      follower,
      wait: () => follower.settled().then(
        (photo) => results.push({ photo }),
        (error) => results.push({ error: error.message }),
      ),
    };
  };
  const socket = () => FakeSocket.made[FakeSocket.made.length - 1];
  window.lab = {
    Live, backoffDelay, ApiError, FakeSocket, auth, live, events, api, gets, held, results, follow, socket,
  };
}"""


@pytest.fixture(scope="module")
def lab_page(chromium: Any, static_web: str) -> Iterator[tuple[Any, list[str]]]:
    """One page for every logic test (each gets a fresh harness on it): a browser context per test would cost more
    than the tests themselves."""
    context, page, errors = _open_page(chromium)
    try:
        # Paused: time moves only when a test says so (an installed clock otherwise follows the real one).
        page.clock.install(time=0)
        page.clock.pause_at(1000)
        page.goto(static_web + "/")
        page.get_by_role("heading", name="Sign in", exact=True).wait_for()
        yield page, errors
    finally:
        context.close()


@pytest.fixture
def lab(lab_page: tuple[Any, list[str]]) -> Iterator[Any]:
    """The page with a new harness (`window.lab`); JavaScript errors fail the test."""
    page, errors = lab_page
    errors.clear()
    page.evaluate(HARNESS, WS_URL)
    yield page
    assert errors == [], f"JavaScript errors on the page: {errors}"


def sockets(page: Any) -> int:
    return int(page.evaluate("lab.FakeSocket.made.length"))


def connect(page: Any) -> None:
    page.evaluate("lab.live.sync()")
    page.evaluate("lab.socket().open()")
    assert page.evaluate("lab.live.connected") is True


def photo_message(photo_id: str, status: str, version: int = 2) -> dict[str, Any]:
    photo = {"photo_id": photo_id, "status": status, "version": version, "updated_at": "2026-01-01T00:00:00Z"}
    return {"type": "photo", "photo": {**photo, "rejection_reason": None, "duplicate_of": None}}


@pytest.mark.parametrize("name", ["live.js", "settle.js"])
def test_the_socket_and_upload_following_modules_do_not_touch_the_dom(name: str) -> None:
    """Like api.js and auth.js (tests/browser/test_web_sources.py): what the views build on stays testable alone."""
    code = source(WEB_DIR / name)
    assert not re.search(r"\bdocument\b", code)
    assert "dom.js" not in code


def test_the_backoff_doubles_from_one_second_to_a_minute_with_jitter(lab: Any) -> None:
    ceilings = lab.evaluate("[1, 2, 3, 4, 5, 6, 7, 8, 12].map((n) => lab.backoffDelay(n, () => 1))")
    assert ceilings == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
    floors = lab.evaluate("[1, 7, 30].map((n) => lab.backoffDelay(n, () => 0))")
    assert floors == [500, 30000, 30000]


def test_the_socket_opens_with_the_id_token_in_its_query_string(lab: Any) -> None:
    lab.evaluate("lab.auth.token = 'a.b+c/d='")
    lab.evaluate("lab.live.sync()")
    assert lab.evaluate("lab.socket().url") == WS_URL + "&token=a.b%2Bc%2Fd%3D"
    assert lab.evaluate("lab.live.connected") is False  # not before the handshake has finished
    lab.evaluate("lab.socket().open()")
    assert lab.evaluate("[lab.live.connected, lab.events]") == [True, ["open"]]
    assert lab.locator("body").get_attribute("data-live") == "off"  # the app's own socket: no ws_url, never on


def test_a_refused_connect_is_retried_with_backoff_and_a_fresh_token(lab: Any) -> None:
    lab.evaluate("lab.live.sync()")
    lab.evaluate("lab.socket().fail()")  # e.g. a 401 from $connect: the browser only says "closed"
    lab.clock.run_for(999)
    assert sockets(lab) == 1
    lab.clock.run_for(1)
    assert sockets(lab) == 2
    lab.evaluate("lab.auth.token = 'token-2'")
    lab.evaluate("lab.socket().fail()")
    lab.clock.run_for(1999)
    assert sockets(lab) == 2
    lab.clock.run_for(1)
    assert sockets(lab) == 3
    assert lab.evaluate("lab.socket().url").endswith("token=token-2")
    assert lab.evaluate("lab.events") == []  # never connected: nobody stopped polling


def test_a_drop_is_announced_and_reconnected(lab: Any) -> None:
    connect(lab)
    lab.evaluate("lab.socket().fail()")
    assert lab.evaluate("[lab.live.connected, lab.events]") == [False, ["open", "close"]]
    lab.clock.run_for(1000)
    assert sockets(lab) == 2
    lab.evaluate("lab.socket().open()")
    assert lab.evaluate("lab.events") == ["open", "close", "open"]
    # Dropped at once again (a server that accepts and closes): the backoff keeps climbing instead of a 1 s loop.
    lab.evaluate("lab.socket().fail()")
    lab.clock.run_for(1999)
    assert sockets(lab) == 2
    lab.clock.run_for(1)
    assert sockets(lab) == 3


def test_a_connection_that_lasted_starts_the_backoff_again(lab: Any) -> None:
    connect(lab)
    for _ in range(3):  # three refusals: the next delay would be 8 s
        lab.evaluate("lab.socket().fail()")
        lab.clock.run_for(60_000)
    lab.evaluate("lab.socket().open()")
    lab.clock.run_for(MINUTE)
    count = sockets(lab)
    lab.evaluate("lab.socket().fail()")
    lab.clock.run_for(1000)
    assert sockets(lab) == count + 1


def test_pings_keep_the_connection_and_a_missing_pong_drops_it(lab: Any) -> None:
    connect(lab)
    lab.clock.run_for(5 * MINUTE)
    assert lab.evaluate("lab.socket().sent") == [{"type": "ping"}]
    lab.evaluate("lab.socket().push({ type: 'pong' })")
    lab.clock.run_for(5 * MINUTE)
    assert lab.evaluate("lab.socket().sent") == [{"type": "ping"}, {"type": "ping"}]
    assert lab.evaluate("lab.live.connected") is True
    # No answer to the second ping: the connection is dead though the browser has not noticed.
    lab.clock.run_for(30_000)
    assert lab.evaluate("[lab.live.connected, lab.events, lab.socket().closedWith]") == [False, ["open", "close"], 1000]
    lab.clock.run_for(1000)
    assert sockets(lab) == 2


def test_a_refreshed_token_hands_the_connection_over_without_a_gap(lab: Any) -> None:
    connect(lab)
    lab.evaluate("window.seen = []; void lab.live.on('photo', (p) => seen.push(p.photo_id))")
    lab.evaluate("lab.auth.token = 'token-2'")
    lab.evaluate("lab.live.sync()")
    assert sockets(lab) == 2
    assert lab.evaluate("lab.socket().url").endswith("token=token-2")
    old = "lab.FakeSocket.made[0]"
    # Until the new socket is open the old one still serves.
    assert lab.evaluate(f"{old}.closedWith") is None
    lab.evaluate(f"{old}.push({json.dumps(photo_message('p1', 'READY'))})")
    lab.evaluate("lab.socket().open()")
    assert lab.evaluate(f"{old}.closedWith") == 1000
    lab.evaluate(f"{old}.push({json.dumps(photo_message('p2', 'READY'))})")  # late frame from the old one: ignored
    lab.evaluate(f"lab.socket().push({json.dumps(photo_message('p3', 'READY'))})")
    assert lab.evaluate("seen") == ["p1", "p3"]
    assert lab.evaluate("lab.events") == ["open"]  # connected throughout: no upload fell back to polling
    lab.evaluate("lab.live.sync()")  # the same token again: nothing to do
    assert sockets(lab) == 2


def test_signing_out_closes_the_socket_for_good(lab: Any) -> None:
    connect(lab)
    lab.evaluate("lab.auth.signedIn = false")
    lab.evaluate("lab.live.sync()")
    assert lab.evaluate("[lab.live.connected, lab.events, lab.socket().closedWith]") == [False, ["open", "close"], 1000]
    lab.clock.run_for(10 * MINUTE)
    assert sockets(lab) == 1
    lab.evaluate("lab.auth.signedIn = true")
    lab.evaluate("lab.live.sync()")  # signed in again: a new socket
    assert sockets(lab) == 2


def test_a_handshake_that_hangs_is_given_up_and_retried(lab: Any) -> None:
    lab.evaluate("lab.live.sync()")
    lab.clock.run_for(9_999)
    assert lab.evaluate("lab.socket().closedWith") is None
    lab.clock.run_for(1)
    assert lab.evaluate("lab.socket().closedWith") == 1000
    lab.clock.run_for(1000)
    assert sockets(lab) == 2


def test_without_a_ws_url_nothing_connects(lab: Any) -> None:
    lab.evaluate("window.quiet = new lab.Live(undefined, lab.auth, { WebSocket: lab.FakeSocket })")
    lab.evaluate("quiet.sync()")
    lab.clock.run_for(MINUTE)
    assert sockets(lab) == 0
    assert lab.evaluate("quiet.connected") is False


def test_messages_reach_their_subscribers_and_nothing_else_does(lab: Any) -> None:
    connect(lab)
    lab.evaluate(
        """(() => {
            window.got = { one: [], all: [], album: [], deleted: [], removed: [], stale: [] };
            lab.live.on("photo", (p) => got.one.push(p.status), { id: "p1" });
            lab.live.on("photo", (p) => got.all.push(p.photo_id));
            lab.live.on("album", (a) => got.album.push(a.version), { id: "a1" });
            lab.live.on("photo_deleted", (id) => got.deleted.push(id));
            lab.live.on("album_removed", (id) => got.removed.push(id));
            lab.live.on("photo", (p) => got.stale.push(p.photo_id), { active: () => false });
        })()"""
    )
    frames: list[Any] = [
        "not json",
        "[1, 2]",
        {},
        {"type": "photo"},
        {"type": "photo", "photo": {"photo_id": 5}},
        {"type": "pong"},
        {"type": "error", "message": "Unknown message type"},
        {"type": "something-new", "photo_id": "p1"},
        photo_message("p1", "READY"),
        photo_message("p2", "REJECTED"),
        {"type": "album", "album": {"album_id": "a1", "version": 3, "updated_at": "2026-01-01T00:00:00Z"}},
        {"type": "album", "album": {"album_id": "a2", "version": 9, "updated_at": "2026-01-01T00:00:00Z"}},
        {"type": "photo_deleted", "photo_id": "p2"},
        {"type": "album_removed", "album_id": "a2"},
    ]
    for frame in frames:
        lab.evaluate("(frame) => lab.socket().push(frame)", frame)
    assert lab.evaluate("got") == {
        "one": ["READY"],
        "all": ["p1", "p2"],
        "album": [3],
        "deleted": ["p2"],
        "removed": ["a2"],
        "stale": [],
    }
    assert lab.evaluate("lab.live.listeners.size") == 7  # open, close and five: the inactive one was dropped


def test_while_connected_an_upload_waits_for_its_message_without_a_request(lab: Any) -> None:
    connect(lab)
    lab.evaluate("window.job = lab.follow('p1'); void job.wait()")
    lab.clock.run_for(20_000)
    assert lab.evaluate("[lab.gets, lab.results]") == [[], []]
    lab.evaluate(f"lab.socket().push({json.dumps(photo_message('p2', 'READY'))})")  # someone else's photo
    lab.evaluate(f"lab.socket().push({json.dumps(photo_message('p1', 'REJECTED'))})")
    lab.clock.run_for(0)
    result = lab.evaluate("lab.results")
    assert [entry["photo"]["status"] for entry in result] == ["REJECTED"]
    assert result[0]["photo"]["photo_id"] == "p1"
    lab.clock.run_for(5 * MINUTE)
    assert lab.evaluate("lab.gets") == []  # and nothing left running


def test_a_message_during_the_upload_settles_it_at_once(lab: Any) -> None:
    connect(lab)
    lab.evaluate("window.job = lab.follow('p1')")  # declared, bytes on their way to S3
    lab.evaluate(f"lab.socket().push({json.dumps(photo_message('p1', 'READY'))})")
    lab.evaluate("void job.wait()")
    lab.clock.run_for(0)
    assert lab.evaluate("lab.results.map((r) => r.photo.status)") == ["READY"]
    assert lab.evaluate("lab.gets") == []


def test_without_the_socket_an_upload_is_polled(lab: Any) -> None:
    lab.evaluate("lab.api.answers = [{ status: 'PENDING' }, { status: 'READY', urls: { small: 's' } }]")
    lab.evaluate("window.job = lab.follow('p1'); void job.wait()")
    lab.clock.run_for(299)
    assert lab.evaluate("lab.gets") == []
    lab.clock.run_for(1)
    assert lab.evaluate("lab.gets") == ["p1"]
    lab.clock.run_for(500)
    assert lab.evaluate("lab.gets") == ["p1", "p1"]
    assert lab.evaluate("lab.results.map((r) => r.photo.urls.small)") == ["s"]


def test_a_passing_poll_failure_is_waited_out_and_a_lasting_one_fails_the_upload(lab: Any) -> None:
    lab.evaluate(
        """lab.api.answers = [
            Object.assign(new lab.ApiError(503, 'ServiceUnavailableError', 'busy'), { retryAfter: 2 }),
            { status: 'READY' },
        ]"""
    )
    lab.evaluate("void lab.follow('p1').wait()")
    lab.clock.run_for(300)
    lab.clock.run_for(2000 + 499)  # Retry-After on top of the next delay
    assert lab.evaluate("lab.gets.length") == 1
    lab.clock.run_for(1)
    assert lab.evaluate("lab.results.map((r) => r.photo.status)") == ["READY"]
    lab.evaluate("lab.api.answers = [new lab.ApiError(404, 'NotFoundError', 'No such photo.')]")
    lab.evaluate("void lab.follow('p2').wait()")
    lab.clock.run_for(300)
    assert lab.evaluate("lab.results[1]") == {"error": "No such photo."}


def test_a_drop_mid_wait_polls_and_a_reconnect_checks_once_then_waits(lab: Any) -> None:
    connect(lab)
    lab.evaluate("window.job = lab.follow('p1'); void job.wait()")
    lab.clock.run_for(10_000)
    assert lab.evaluate("lab.gets") == []
    lab.evaluate("lab.socket().fail()")
    lab.clock.run_for(300 + 500)  # polling, from its first delay
    assert lab.evaluate("lab.gets.length") == 2
    lab.clock.run_for(200)  # the reconnect (1 s after the drop), while the third poll waits
    assert sockets(lab) == 2
    lab.evaluate("lab.socket().open()")
    lab.clock.run_for(0)
    assert lab.evaluate("lab.gets.length") == 3  # the one check a reconnect owes: a message may have been missed
    lab.clock.run_for(20_000)
    assert lab.evaluate("lab.gets.length") == 3  # then only messages
    lab.evaluate(f"lab.socket().push({json.dumps(photo_message('p1', 'READY'))})")
    lab.clock.run_for(0)
    assert lab.evaluate("lab.results.map((r) => r.photo.status)") == ["READY"]


def test_a_poll_sent_before_a_reconnect_does_not_stand_for_its_check(lab: Any) -> None:
    """The worker may settle the photo while the socket is down, after a poll was sent: that poll's PENDING answer,
    arriving after the reconnect, says nothing about the message missed meanwhile."""
    connect(lab)
    lab.evaluate("lab.api.answers = ['hold', { status: 'READY' }]")
    lab.evaluate("void lab.follow('p1').wait()")
    lab.evaluate("lab.socket().fail()")
    lab.clock.run_for(300)
    assert lab.evaluate("lab.gets.length") == 1
    lab.clock.run_for(700)
    lab.evaluate("lab.socket().open()")
    lab.evaluate("lab.held[0]({ photo_id: 'p1', status: 'PENDING', version: 1 })")
    lab.clock.run_for(0)
    assert lab.evaluate("lab.gets.length") == 2
    assert lab.evaluate("lab.results.map((r) => r.photo.status)") == ["READY"]


def test_a_message_lost_while_connected_is_found_by_a_rare_check(lab: Any) -> None:
    connect(lab)
    lab.evaluate("lab.api.answers = [{ status: 'PENDING' }, { status: 'READY' }]")
    lab.evaluate("void lab.follow('p1').wait()")
    lab.clock.run_for(29_999)
    assert lab.evaluate("lab.gets.length") == 0
    lab.clock.run_for(1)
    assert lab.evaluate("lab.gets.length") == 1
    lab.clock.run_for(30_000)
    assert lab.evaluate("lab.results.map((r) => r.photo.status)") == ["READY"]


def test_a_photo_deleted_meanwhile_fails_its_upload_and_a_cancelled_one_stops(lab: Any) -> None:
    connect(lab)
    lab.evaluate("void lab.follow('p1').wait()")
    lab.evaluate("lab.socket().push({ type: 'photo_deleted', photo_id: 'p1' })")
    lab.clock.run_for(0)
    assert lab.evaluate("lab.results") == [{"error": "The photo was deleted meanwhile."}]
    lab.evaluate("lab.socket().fail()")
    lab.evaluate("window.job = lab.follow('p2'); job.follower.cancel()")  # its bytes never made it to S3
    lab.clock.run_for(MINUTE)
    assert lab.evaluate("lab.gets") == []
    assert lab.evaluate("lab.live.listeners.size") == 2  # only the harness's open and close


def test_an_upload_gives_up_after_two_minutes_still_pending(lab: Any) -> None:
    connect(lab)
    lab.evaluate("void lab.follow('p1').wait()")
    lab.clock.run_for(2 * MINUTE)
    assert lab.evaluate("lab.results.map((r) => r.photo.status)") == ["PENDING"]
    assert lab.evaluate("lab.gets.length") == 3  # the rare checks at 30, 60 and 90 s


# The real socket, on the session dev stack.


def jpeg() -> bytes:
    """A picture no other call returns (its comment): the same bytes twice would be refused as a duplicate."""
    return encode(marked((640, 480)), "JPEG", quality=85, comment=secrets.token_hex(8).encode())


def ws_url(stack: dict[str, Any]) -> str:
    assert stack.get("ws_url"), "the dev stack publishes no ws_url in outputs.json (issue 16)"
    return str(stack["ws_url"])


def person(stack: dict[str, Any], cognito: Any, account: Account) -> str:
    """The account with a profile (signing in then lands in the library); returns its ID token."""
    token = id_token(cognito, stack, account)
    status, body = call_api(stack, token, "POST", "/users", {"display_name": account.username})
    assert status == 201, body
    return token


def open_library(page: Any, stack: dict[str, Any], account: Account) -> None:
    page.goto(stack["web_url"] + "/")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()


def photo_gets(page: Any, stack: dict[str, Any]) -> list[str]:
    """Every GET /photos/{id} the page makes (a poll), as it makes it."""
    pattern = re.compile(re.escape(stack["api_url"]) + r"/photos/(?!timeline$|batch$)[^/?]+$")
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.method == "GET" and pattern.match(r.url) else None)
    return seen


def upload(page: Any, names: list[str]) -> None:
    files = [{"name": name, "mimeType": "image/jpeg", "buffer": jpeg()} for name in names]
    page.locator("#file-input").set_input_files(files)


def wait_ready(page: Any, names: list[str]) -> None:
    for name in names:
        page.locator(f'#upload-list li[data-filename="{name}"][data-status="READY"]').wait_for()


def send_bytes(upload: dict[str, Any], data: bytes) -> None:
    """POST a declared photo's bytes to its presigned URL, as the SPA does."""
    body, form_type = presigned_post_body(upload["fields"], data, "image/jpeg")
    request = urllib.request.Request(upload["url"], data=body, method="POST", headers={"Content-Type": form_type})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as response:
        assert response.status in (200, 201, 204)


def tile_shows_its_preview(page: Any, name: str) -> None:
    image = page.locator("#photo-grid li").filter(has=page.locator(".caption", has_text=name)).locator("img")
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())


def test_uploads_settle_by_message_with_no_polling_request(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    ws_url(devstack)
    gets = photo_gets(page, devstack)
    account = new_account()
    person(devstack, cognito, account)
    open_library(page, devstack, account)
    page.locator('body[data-live="on"]').wait_for()
    names = ["dawn.jpg", "noon.jpg", "dusk.jpg"]
    upload(page, names)
    wait_ready(page, names)
    for name in names:  # the tiles' previews came with one listing, not a GET per photo
        tile_shows_its_preview(page, name)
    assert gets == []


def an_upload_settles_by_polling(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    """A new account's upload reaches READY through GETs of the photo, with the client showing it is not live."""
    gets = photo_gets(page, devstack)
    account = new_account()
    person(devstack, cognito, account)
    open_library(page, devstack, account)
    upload(page, ["polled.jpg"])
    wait_ready(page, ["polled.jpg"])
    tile_shows_its_preview(page, "polled.jpg")
    assert len(gets) >= 1
    assert page.locator("body").get_attribute("data-live") == "off"


def test_with_no_ws_url_uploads_settle_by_polling(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account], polling_only: None
) -> None:
    an_upload_settles_by_polling(page, devstack, cognito, new_account)


def test_a_socket_that_cannot_connect_leaves_uploads_to_polling(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    ws_url(devstack)
    # Nothing listens there (and the page's CSP, made for the real ws_url, refuses it before even trying).
    closed = f"ws://{HOST}:{free_port()}"

    def no_socket(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "ws_url": closed})

    page.route(devstack["web_url"] + "/config.json", no_socket)
    an_upload_settles_by_polling(page, devstack, cognito, new_account)


def test_a_socket_dropped_mid_upload_falls_back_to_polling(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    """The socket is proxied: its first connection swallows the photo's message and is then cut, so only polling
    can tell the upload has settled; later connections pass through, and the client is live again."""
    url = ws_url(devstack)
    connections: list[Any] = []
    swallowed: list[str] = []

    def proxy(route: Any) -> None:
        server = route.connect_to_server()
        connections.append(route)
        if len(connections) == 1:

            def from_server(message: str | bytes) -> None:
                text = message if isinstance(message, str) else message.decode()
                if '"photo"' in text:
                    swallowed.append(text)
                else:
                    route.send(message)

            server.on_message(from_server)

    # The browser adds the root path to a bare origin: ws://host:port/?token=...
    page.route_web_socket(re.compile(re.escape(url.rstrip("/")) + r"/?(\?.*)?$"), proxy)
    gets = photo_gets(page, devstack)
    account = new_account()
    person(devstack, cognito, account)
    open_library(page, devstack, account)
    page.locator('body[data-live="on"]').wait_for()
    assert len(connections) == 1
    upload(page, ["cut.jpg"])
    page.locator('#upload-list li[data-filename="cut.jpg"][data-status="PENDING"]').wait_for()
    deadline_ms = 20_000
    waited = 0
    while not swallowed and waited < deadline_ms:  # the worker settled it; its message never reached the page
        page.wait_for_timeout(100)
        waited += 100
    assert swallowed, "no photo message came through the socket"
    assert gets == []
    connections[0].close(code=1001, reason="going away")
    wait_ready(page, ["cut.jpg"])
    assert len(gets) >= 1
    page.locator('body[data-live="on"]').wait_for()
    assert len(connections) >= 2


def test_the_library_and_a_photos_page_follow_changes_made_elsewhere(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    ws_url(devstack)
    account = new_account()
    token = person(devstack, cognito, account)
    first = ready_photo(devstack, token, jpeg(), "image/jpeg", title="First")
    gets = photo_gets(page, devstack)
    open_library(page, devstack, account)
    page.locator('body[data-live="on"]').wait_for()
    library = page.locator("#photo-grid li .caption")
    library.filter(has_text="First").wait_for()

    # Uploaded from a phone: it appears on top, preview and all; deleted there for good: it goes.
    ready_photo(devstack, token, jpeg(), "image/jpeg", title="From my phone")
    tile_shows_its_preview(page, "From my phone")
    assert library.all_inner_texts() == ["From my phone", "First"]
    assert call_api(devstack, token, "DELETE", f"/photos/{first['photo_id']}?permanent=true")[0] == 204
    library.filter(has_text="First").wait_for(state="detached")
    assert gets == []

    # A photo's page while it is processing shows the previews once the worker is done, by itself.
    data = jpeg()
    declared = {"filename": "slow.jpg", "content_type": "image/jpeg", "size_bytes": len(data), "title": "Slow"}
    status, created = call_api(devstack, token, "POST", "/photos", declared)
    assert status == 201, created
    page.goto(f"{devstack['web_url']}/#/photo/{created['photo']['photo_id']}")
    page.get_by_text("Still processing…").wait_for()
    send_bytes(created["upload"], data)
    page.locator("#large-preview").wait_for()
    page.get_by_role("link", name="← All photos").click()

    # A photo's page edited elsewhere says so, and keeps what is shown until asked.
    page.get_by_role("link", name="From my phone").click()
    page.get_by_role("heading", name="From my phone", exact=True).wait_for()
    photo_id = page.url.rsplit("/", 1)[1]
    status, _ = call_api(devstack, token, "PATCH", f"/photos/{photo_id}", {"title": "Renamed", "version": 1})
    assert status == 200
    notice = page.locator("#changed-notice")
    notice.filter(has_text="changed somewhere else").wait_for()
    assert page.get_by_label("Title", exact=True).input_value() == "From my phone"
    notice.get_by_role("button", name="Show the latest").click()
    page.get_by_role("heading", name="Renamed", exact=True).wait_for()
    assert call_api(devstack, token, "DELETE", f"/photos/{photo_id}?permanent=true")[0] == 204
    page.get_by_role("heading", name="Photo deleted", exact=True).wait_for()


def test_an_albums_page_follows_its_photos_and_says_when_it_was_changed_or_removed(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    ws_url(devstack)
    owner, contributor = new_account(), new_account()
    owner_token = person(devstack, cognito, owner)
    contributor_token = person(devstack, cognito, contributor)
    status, album = call_api(devstack, owner_token, "POST", "/albums", {"title": "Beach week"})
    assert status == 201, album
    album_path = f"/albums/{album['album_id']}"
    member = {"username": contributor.username, "role": "contributor"}
    assert call_api(devstack, owner_token, "POST", f"{album_path}/members", member)[0] == 201
    sandcastle = ready_photo(devstack, contributor_token, jpeg(), "image/jpeg", title="Sandcastle")

    open_library(page, devstack, owner)
    page.goto(f"{devstack['web_url']}/#/album/{album['album_id']}")
    page.get_by_role("heading", name="Beach week", exact=True).wait_for()
    page.locator('body[data-live="on"]').wait_for()

    # A member adds a photo: the page shows it by itself.
    added = call_api(
        devstack, contributor_token, "POST", f"{album_path}/photos", {"photo_ids": [sandcastle["photo_id"]]}
    )
    assert added[0] == 200, added
    page.locator("#album-grid li").filter(has_text="Sandcastle").wait_for()
    assert page.locator("#album-count").inner_text() == "1 photo"

    # Renamed elsewhere: a notice, the page as it was until asked.
    status, renamed = call_api(devstack, owner_token, "PATCH", album_path, {"title": "Beach month", "version": 1})
    assert status == 200, renamed
    page.locator("#changed-notice").filter(has_text="changed somewhere else").wait_for()
    assert page.get_by_label("Album title").input_value() == "Beach week"
    page.get_by_role("button", name="Show the latest").click()
    page.get_by_role("heading", name="Beach month", exact=True).wait_for()

    # Deleted elsewhere: the page says so.
    assert call_api(devstack, owner_token, "DELETE", album_path)[0] in (202, 204)
    page.get_by_role("heading", name="Album not available", exact=True).wait_for()
