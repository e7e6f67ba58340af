"""Previews come from the browser's HTTP cache on a second visit (issue 14): the API's media URLs stay the same for
a whole window and are served with a long private cache lifetime, so a gallery opened again in a new tab fetches
no thumbnail over the network.

Two witnesses, because either alone can be fooled:
- the browser's own: Chromium's DevTools protocol says, per response, whether it came from the network or from the
  disk cache (`Network.responseReceived` `fromDiskCache`, or `Network.requestServedFromCache`). Playwright's
  `request` / `response` events fire for cache hits too, so they only list what the page asked for.
- the media endpoint's: it counts the requests that reach it per path and says so in a response header
  (`X-Devstack-Path-Requests`); a probe before and after the second visit shows whether anything arrived between.

Routing (`page.route`) is never used here: Playwright turns the HTTP cache off for a page that routes.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from devstack.media import REQUEST_COUNT_HEADER
from tests.browser.conftest import Account, ready_photos
from tests.browser.test_library_browser import jpeg, person, sign_in

pytestmark = pytest.mark.browser

PHOTOS = 3
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_GALLERY_LOADED = """(count) => {
    const images = [...document.querySelectorAll('#photo-grid img')];
    return images.length === count && images.every((image) => image.complete && image.naturalWidth > 0);
}"""


@dataclass
class Visit:
    """What one page load of the gallery asked for, and how the browser got each preview."""

    requested: list[str] = field(default_factory=list)  # Playwright `request` events for previews, cache hits too
    from_network: list[str] = field(default_factory=list)  # DevTools: responses that came over the network
    from_cache: list[str] = field(default_factory=list)  # DevTools: responses from the HTTP (disk or memory) cache

    def previews(self) -> set[str]:
        return set(self.requested)


def is_preview(url: str) -> bool:
    return "/previews/" in urlsplit(url).path


def visit_gallery(page: Any, stack: dict[str, Any], account: Account) -> Visit:
    """Sign in on `page` (a new tab: the SPA keeps its session per tab) and wait for every preview to show."""
    visit = Visit()
    page.on("request", lambda request: visit.requested.append(request.url) if is_preview(request.url) else None)
    devtools = page.context.new_cdp_session(page)
    served_from_cache: set[str] = set()  # request ids Chromium answered from its memory cache

    def received(event: dict[str, Any]) -> None:
        response = event["response"]
        url = response["url"]
        if not is_preview(url):
            return
        cached = response.get("fromDiskCache") or event["requestId"] in served_from_cache
        (visit.from_cache if cached else visit.from_network).append(url)

    devtools.on("Network.requestServedFromCache", lambda event: served_from_cache.add(event["requestId"]))
    devtools.on("Network.responseReceived", received)
    devtools.send("Network.enable")

    sign_in(page, stack, account)
    page.wait_for_function(_GALLERY_LOADED, arg=PHOTOS)
    devtools.detach()
    return visit


def requests_reaching_the_endpoint(url: str) -> int | None:
    """The media endpoint's count of requests for this URL's path, this probe included (a HEAD: headers only);
    None for a URL the endpoint does not serve (the assertions then say what went wrong)."""
    with _opener.open(urllib.request.Request(url, method="HEAD"), timeout=10) as response:
        assert response.status == 200
        count = response.headers[REQUEST_COUNT_HEADER]
        return None if count is None else int(count)


def test_a_second_visit_takes_every_preview_from_the_browsers_cache(
    page: Any, devstack: dict[str, Any], cognito: Any, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    token = person(devstack, cognito, account, "Cathy Cache")
    ready_photos(devstack, token, [(jpeg(), "image/jpeg", {"title": f"Cached {n}"}) for n in range(PHOTOS)])
    errors: list[str] = []

    def new_tab() -> Any:
        # Another page of the same browser context: the same HTTP cache, a fresh document and session.
        tab = page.context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        return tab

    first = visit_gallery(page, devstack, account)
    before = {url: requests_reaching_the_endpoint(url) for url in first.previews()}
    second = visit_gallery(new_tab(), devstack, account)
    if second.previews() != first.previews():
        # A URL window ended between the two visits (once an hour): the pair is taken again, once.
        first = visit_gallery(new_tab(), devstack, account)
        before = {url: requests_reaching_the_endpoint(url) for url in first.previews()}
        second = visit_gallery(new_tab(), devstack, account)

    assert errors == [], f"JavaScript errors on the second visit: {errors}"
    assert len(first.previews()) == PHOTOS, first
    assert first.from_network, "the first visit must have fetched the previews over the network"
    # The browser's word: on the second visit, not one preview came over the network.
    assert second.from_network == [], f"previews fetched again on the second visit: {second.from_network}"
    assert len(set(second.from_cache)) == PHOTOS, second
    assert second.previews() == first.previews(), "the previews' URLs changed between two visits"
    # The endpoint's word: nothing for these paths reached it between the two probes but the second probe.
    for url in first.previews():
        assert url.startswith(devstack["media_url"] + "/"), url
    after = {url: requests_reaching_the_endpoint(url) for url in first.previews()}
    assert after == {url: (count or 0) + 1 for url, count in before.items()}, (before, after)
