"""Browser tests: the web client in headless Chromium (Debian's, driven by Playwright) against a real dev stack.

The stack is started exactly as tests/e2e starts it (the same fixture, imported). Chromium is the system's
(`apt-get install chromium chromium-driver`); Playwright never downloads a browser here. Without
/usr/bin/chromium every test skips and says how to install it. A failed test leaves a screenshot of its page in
.artifacts/browser/ (git-ignored).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.clients import emulated_client, presigned_post_body
from devstack.token import new_confirmed_user
from tests.e2e.conftest import PROJECT_DIR, devstack, spawn  # noqa: F401 - fixtures, shared with tests/e2e
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = PROJECT_DIR / ".artifacts" / "browser"
# Every wait is bounded: a broken page fails in seconds instead of hanging the suite.
ACTION_TIMEOUT_MS = 15_000
NAVIGATION_TIMEOUT_MS = 15_000

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Chromium at {CHROMIUM}: install it with "
            "`sudo apt-get install -y chromium chromium-driver` (.ci/run does this on CI)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _open_page(chromium: Any) -> tuple[Any, Any, list[str]]:
    """A fresh browser context (no session, no storage) and its page, with the page's JavaScript errors collected."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, errors


def _screenshot_if_failed(request: pytest.FixtureRequest, page: Any, suffix: str = "") -> None:
    reports = request.node.stash.get(_REPORTS, {})
    if any(report.failed for report in reports.values()):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1]) + suffix
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, timeout=5_000)
        except Exception as e:  # a screenshot must never hide the test's own failure
            print(f"could not save a screenshot for {name}: {e}")


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no session, no storage) and its page; JavaScript errors fail the test."""
    context, page, errors = _open_page(chromium)
    try:
        yield page
        assert errors == [], f"JavaScript errors on the page: {errors}"
    finally:
        _screenshot_if_failed(request, page)
        context.close()


@pytest.fixture
def another_page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    """More people at once (a second user, a signed-out visitor): each call opens a page in its own fresh browser
    context, with the same checks as `page`."""
    opened: list[tuple[Any, Any, list[str]]] = []

    def make() -> Any:
        opened.append(_open_page(chromium))
        return opened[-1][1]

    try:
        yield make
        for n, (_, _page, errors) in enumerate(opened, start=2):
            assert errors == [], f"JavaScript errors on page {n}: {errors}"
    finally:
        for n, (context, page, _) in enumerate(opened, start=2):
            _screenshot_if_failed(request, page, f"-page{n}")
            context.close()


@pytest.fixture
def polling_only(page: Any, devstack: dict[str, Any]) -> None:  # noqa: F811
    """The page's web client without its live status socket (a config.json with no `ws_url`), for tests of what
    polling does: while the socket is open an upload makes no GET of the photo at all."""

    def without_ws_url(route: Any) -> None:
        response = route.fetch()
        config = response.json()
        config.pop("ws_url", None)
        route.fulfill(response=response, json=config)

    page.route(devstack["web_url"] + "/config.json", without_ws_url)


@dataclass(frozen=True)
class Account:
    username: str
    password: str


@pytest.fixture(scope="session")
def cognito(devstack: dict[str, Any]) -> Any:  # noqa: F811 - the imported fixture, by name
    return emulated_client("cognito-idp", devstack)


@pytest.fixture
def new_account(devstack: dict[str, Any], cognito: Any) -> Callable[[], Account]:  # noqa: F811
    """A confirmed user made through the emulated Cognito's API (for tests that are not about signing up)."""

    def make() -> Account:
        return Account(*new_confirmed_user(devstack, "web"))

    return make


def id_token(cognito: Any, stack: dict[str, Any], account: Account) -> str:
    result = cognito.initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        ClientId=stack["user_pool_client_id"],
        AuthParameters={"USERNAME": account.username, "PASSWORD": account.password},
    )
    token: str = result["AuthenticationResult"]["IdToken"]
    return token


def call_api(stack: dict[str, Any], token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """The API as another client (another tab, another device) would call it."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": token, "Content-Type": "application/json"}
    req = urllib.request.Request(stack["api_url"] + path, data=data, method=method, headers=headers)
    try:
        with _opener.open(req, timeout=10) as response:
            status, content = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, content = e.code, e.read()
    return status, json.loads(content) if content else None


# Bound only, for test setup: the contract says an upload settles "within a few seconds".
SETTLE_SECONDS = 20.0


def ready_photos(
    stack: dict[str, Any], token: str, files: list[tuple[bytes, str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Photos of the caller's that have reached READY, uploaded as the SPA does (declare, POST the form to S3): all
    declared and sent first, then awaited together. `files` are (data, content type, details such as the title)."""
    photo_ids = []
    for data, content_type, details in files:
        declared = {"filename": "upload", "content_type": content_type, "size_bytes": len(data), **details}
        status, created = call_api(stack, token, "POST", "/photos", declared)
        assert status == 201, created
        body, form_type = presigned_post_body(created["upload"]["fields"], data, content_type)
        upload = urllib.request.Request(
            created["upload"]["url"], data=body, method="POST", headers={"Content-Type": form_type}
        )
        with _opener.open(upload, timeout=10) as response:
            assert response.status in (200, 201, 204)
        photo_ids.append(created["photo"]["photo_id"])
    settled: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + SETTLE_SECONDS
    while len(settled) < len(photo_ids):
        for photo_id in photo_ids:
            if photo_id in settled:
                continue
            status, photo = call_api(stack, token, "GET", f"/photos/{photo_id}")
            assert status == 200, photo
            if photo["status"] != "PENDING" or time.monotonic() > deadline:
                assert photo["status"] == "READY", photo
                settled[photo_id] = photo
        time.sleep(0.1)
    return [settled[photo_id] for photo_id in photo_ids]


def ready_photo(stack: dict[str, Any], token: str, data: bytes, content_type: str, **details: Any) -> dict[str, Any]:
    """One READY photo of the caller's (see ready_photos)."""
    return ready_photos(stack, token, [(data, content_type, details)])[0]
