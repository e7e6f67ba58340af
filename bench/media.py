"""Section 9: media URLs (issue 14), CloudFront signed URLs (chalicelib/media.py) against S3 presigned ones.

Every ratio is against a baseline measured in the same run, most in the same process:

1. Signing cost per URL (`python -m bench.media sign`, one fresh process per repetition), against botocore's
   `generate_presigned_url` in the same process: (a) a 100-photo owner list with the memo warm (two signatures
   serve every URL of the owner's: a dictionary lookup and a join each); (b) a memo miss, one new signature, with
   the small table every container starts with and with the fixed-base table it builds after a few signatures;
   (c) a shared album page of 100 photos on a cold memo, one signature per photo, in a container that has not
   signed yet and in one that has (a new URL window).
2. Warm CPU of `GET /photos?limit=10` and `?limit=100` through the real handlers, as bench/warm.py drives them
   (API Gateway events, DynamoDB answered by a Stubber), with the CDN configured and without it (S3 presigned
   URLs, the path before issue 14), for PhotoSky and for the Powertools peer, each both ways: the peer uses the
   same service layer, so it signs as the app it is compared with does.
3. A browser's second visit on the dev stack: one user with 100 photos, the gallery opened in headless Chromium
   and opened again in a new page of the same browser context; requests and bytes by kind, the second visit
   against the first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import common
from bench.common import table
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS  # as the browser tests launch it

SECTION_HEADING = "## 9. Media URLs: CloudFront signed URLs against S3 presigning (issue 14)"
PHOTOS = 100  # the owner list, the album page and the gallery of the browser visit
# Goals (the issue's): a warm owner list's URL at most this share of a botocore presign; the list route's CPU with the
# CDN at most this share of the presigning path's; no preview over the network on a second visit.
URL_GOAL = 0.05
ROUTE_GOAL = 0.25
LIST_LIMITS = (10, 100)
# limit=100 presigns 300 URLs a request on the S3 path (about 0.1 s of CPU): fewer requests keep it to seconds.
LARGE_PAGE_SHARE = 5
WARM_VARIANTS = {
    "photosky-cdn": ("photosky", True),
    "photosky-s3": ("photosky", False),
    "powertools-cdn": ("powertools", True),
    "powertools-s3": ("powertools", False),
}
VARIANT_LABELS = {
    "photosky-cdn": "PhotoSky (Chalice), CDN",
    "photosky-s3": "PhotoSky (Chalice), S3 presigned",
    "powertools-cdn": "Powertools peer, CDN",
    "powertools-s3": "Powertools peer, S3 presigned",
}
MEMBER = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"  # an album member: URLs of someone else's photos


# --- pure helpers ----------------------------------------------------------------------------------------------


def ratio_summary(ratios: Sequence[float], goal: float) -> dict[str, Any]:
    """Median and range of paired ratios (each measured within one process or one cycle) against a goal of "at most
    `goal`": met when every pair is at or below it, missed when every pair is above it, otherwise within the noise
    (the run is repeated, never the best kept)."""
    from bench.coldstart import verdict_with_noise

    low, high = min(ratios), max(ratios)
    return {
        "ratios": list(ratios),
        "median": common.median(ratios),
        "min": low,
        "max": high,
        "goal": goal,
        "verdict": verdict_with_noise(low, high, goal),
    }


def url_kind(url: str, media_url: str) -> str:
    """ "cdn" for a CloudFront signed URL under `media_url` (custom policy, SHA-256), "s3" for a SigV4 presigned one."""
    if url.startswith(media_url + "/") and all(
        f"{name}=" in url for name in ("Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm")
    ):
        return "cdn"
    if "X-Amz-Signature=" in url:
        return "s3"
    return "other"


def request_kind(url: str, *, api_url: str, media_url: str, web_url: str) -> str:
    """How the browser section groups a request: the API, a media preview, the web client's own files, or anything
    else (signing in to the emulated Cognito, an original)."""
    if url.startswith(api_url + "/") or url == api_url:
        return "api"
    if url.startswith(media_url + "/") and "/previews/" in urlsplit(url).path:
        return "previews"
    if url.startswith(web_url + "/") or url == web_url:
        return "web"
    return "other"


# --- child: signing cost ---------------------------------------------------------------------------------------


def _per_call_us(function: Callable[[], Any], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        function()
    return (time.process_time() - started) / calls * 1e6


def _sign_child(list_rounds: int) -> dict[str, Any]:  # noqa: PLR0915 - one scripted measurement
    """CPU µs per URL of each way of handing out URLs, in this one process (ratios are taken here, pair by pair)."""
    common.apply_lambda_environment()
    from chalicelib import deps, keys, p256
    from chalicelib.ids import new_ulid
    from chalicelib.media import CloudFrontMedia
    from chalicelib.photos.models import PreviewFormat
    from tests.support.media import public_key_of, signed_policy

    key_json = common.media_key_json()
    settings = deps.settings()
    window = settings.media_url_window_seconds
    owner = "5f0c7a52-8f1e-4d0b-9a53-2c1f4e6b7d10"
    photos = [(new_ulid(), f"IMG_{2000 + n}.jpg") for n in range(PHOTOS)]
    object_keys = [
        key
        for photo_id, _name in photos
        for key in (
            keys.original_object(owner, photo_id),
            f"{keys.photo_previews_prefix(owner, photo_id)}large.jpg",
            f"{keys.photo_previews_prefix(owner, photo_id)}small.jpg",
        )
    ]
    s3, bucket = deps.s3(), settings.bucket_name
    presigned = deps.media()  # no PHOTOSKY_MEDIA_URL here: S3Media, the presigning path the API falls back to
    if type(presigned).__name__ != "S3Media":
        raise AssertionError(f"expected the presigning path, got {type(presigned).__name__}")
    as_stored = {"preview_format": PreviewFormat.WEBP}  # what a new photo records (the cost does not depend on it)
    out: dict[str, Any] = {}

    # The baseline: botocore's presign of one GET, as chalicelib.storage asks for it (the first call loads the
    # endpoint rules and is left out).
    s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": object_keys[0]}, ExpiresIn=900)
    started = time.process_time()
    for key in object_keys:
        s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=900)
    out["botocore_us"] = (time.process_time() - started) / len(object_keys) * 1e6

    def owner_list(media: Any) -> None:
        for photo_id, name in photos:
            media.urls(owner, photo_id, viewer=owner, original=True, filename=name, **as_stored)

    def album_page(media: Any, photo_ids: Sequence[str]) -> None:
        for photo_id in photo_ids:
            media.urls(owner, photo_id, viewer=MEMBER, original=False, **as_stored)

    # Today's presigning path for the same list (3 presigns a photo, the original's with its file name) and page.
    owner_list(presigned)
    out["s3_list_us"] = _per_call_us(lambda: owner_list(presigned), 2) / (3 * PHOTOS)
    out["s3_page_us"] = _per_call_us(lambda: album_page(presigned, [p for p, _n in photos]), 2) / (2 * PHOTOS)

    def fresh_media() -> CloudFrontMedia:
        return CloudFrontMedia(common.MEDIA_URL, lambda: key_json, window_seconds=window)

    # (b) memo misses with the small table: containers that have not signed yet (p256's tables are per process;
    # replacing them starts a container's signing over). A container's first URL also loads the key and builds the
    # small table: timed apart, once per container.
    first_urls, small = [], []
    for _ in range(4):
        p256._tables = p256._Tables()
        media = fresh_media()
        started = time.process_time()
        media.urls(owner, new_ulid(), viewer=MEMBER, original=False, **as_stored)
        first_urls.append((time.process_time() - started) * 1e6)
        for _ in range(p256._COMB_AFTER - 1):  # the signatures a container makes before its fixed-base table
            photo_id = new_ulid()
            started = time.process_time()
            media.urls(owner, photo_id, viewer=MEMBER, original=False, **as_stored)
            small.append((time.process_time() - started) * 1e6)
    out["first_url_us"] = common.median(first_urls)
    out["small_table_us"] = common.median(small)
    # The fixed-base table, built on the signature after p256._COMB_AFTER of them (timed here on its own).
    if p256._tables.signatures != p256._COMB_AFTER:
        raise AssertionError(f"{p256._tables.signatures} signatures before the fixed-base table")
    started = time.process_time()
    if p256._tables.comb() is None:
        raise AssertionError("the fixed-base table was not built")
    out["comb_build_ms"] = (time.process_time() - started) * 1000
    fixed = []
    for _ in range(200):
        photo_id = new_ulid()
        started = time.process_time()
        media.urls(owner, photo_id, viewer=MEMBER, original=False, **as_stored)
        fixed.append((time.process_time() - started) * 1e6)
    out["fixed_table_us"] = common.median(fixed)

    # (a) the owner list with the memo warm: two signatures (the owner's previews and originals) serve it all.
    warm = fresh_media()
    owner_list(warm)
    out["memo_list_us"] = _per_call_us(lambda: owner_list(warm), list_rounds) / (3 * PHOTOS)

    # (c) an album page of 100 other people's photos on a cold memo: one signature a photo, 2 URLs a photo.
    page_ids = [new_ulid() for _ in range(PHOTOS)]
    p256._tables = p256._Tables()
    cold = fresh_media()
    started = time.process_time()
    album_page(cold, page_ids)  # a container's first request: the key, the small table, then the fixed-base one
    out["page_cold_container_ms"] = (time.process_time() - started) * 1000
    new_window = fresh_media()  # the tables built, the key loaded, the memo empty: a new window's first page
    new_window.urls(owner, new_ulid(), viewer=MEMBER, original=False, **as_stored)
    page_ids = [new_ulid() for _ in range(PHOTOS)]
    started = time.process_time()
    album_page(new_window, page_ids)
    out["page_new_window_ms"] = (time.process_time() - started) * 1000

    # What was timed is what CloudFront accepts: the signatures verify with `cryptography`, outside the clock.
    public = public_key_of(key_json)
    for url in (
        warm.urls(owner, photos[0][0], viewer=owner, original=True, filename=photos[0][1], **as_stored).original,
        new_window.urls(owner, page_ids[0], viewer=MEMBER, original=False, **as_stored).small,
    ):
        if url is None or url_kind(url, common.MEDIA_URL) != "cdn":
            raise AssertionError(f"not a CloudFront signed URL: {url}")
        signed_policy(url, public)
    return out


# --- child: warm list routes -----------------------------------------------------------------------------------


def list_routes(photo_id: str) -> list[Any]:
    from bench.warm import Route

    del photo_id  # (only the list routes)
    return [
        Route(
            f"GET /photos?limit={limit}",
            "GET",
            "/photos",
            200,
            query={"limit": str(limit)},
            dynamodb=("query",),
            items=limit + 1,
        )
        for limit in LIST_LIMITS
    ]


def _warm_child(framework: str, requests: int, warmup: int, profile_route: str | None) -> dict[str, Any]:
    """The list routes through `framework` with the media configuration the parent put in the environment."""
    import os

    common.apply_lambda_environment()
    from bench import warm

    large = f"GET /photos?limit={LIST_LIMITS[-1]}"
    per_route = {route.name: requests for route in list_routes("")}
    per_route[large] = max(2, requests // LARGE_PAGE_SHARE)
    warmups = {name: max(2, warmup // (LARGE_PAGE_SHARE if name == large else 1)) for name in per_route}
    results = warm.run_routes(framework, list_routes, requests=per_route, warmup=warmups, profile_route=profile_route)
    media_url = os.environ.get("PHOTOSKY_MEDIA_URL", "")
    for name, entry in results["routes"].items():
        body = json.loads(entry.pop("body"))
        urls = [url for item in body["items"] for url in item["urls"].values() if url]
        kinds = {url_kind(url, media_url) if media_url else url_kind(url, "-") for url in urls}
        if len(body["items"]) != int(name.rsplit("=", 1)[1]) or len(kinds) != 1:
            raise AssertionError(f"{framework} {name}: {len(body['items'])} items, URL kinds {kinds}")
        entry["media"] = kinds.pop()
        entry["urls"] = len(urls)
        entry["requests"] = per_route[name]
        if entry["media"] == "cdn":
            from tests.support.media import public_key_of, signed_policy

            signed_policy(urls[0], public_key_of(os.environ["PHOTOSKY_MEDIA_KEY"]))
    return results


# --- parent: signing and warm routes ---------------------------------------------------------------------------

SIGN_FIGURES = (
    "botocore_us",
    "s3_list_us",
    "s3_page_us",
    "memo_list_us",
    "first_url_us",
    "small_table_us",
    "comb_build_ms",
    "fixed_table_us",
    "page_cold_container_ms",
    "page_new_window_ms",
)


def summarise_signing(processes: list[dict[str, float]]) -> dict[str, Any]:
    """Medians, ranges and per-process ratios against botocore of the signing child's figures."""

    def figures(name: str) -> list[float]:
        return [process[name] for process in processes]

    def against_botocore(values: list[float]) -> list[float]:
        return [common.ratio(value, process["botocore_us"]) for value, process in zip(values, processes, strict=True)]

    summary: dict[str, Any] = {
        name: {"median": common.median(figures(name)), "min": min(figures(name)), "max": max(figures(name))}
        for name in SIGN_FIGURES
    }
    per_url = {
        "memo_list_us": figures("memo_list_us"),
        "small_table_us": figures("small_table_us"),
        "fixed_table_us": figures("fixed_table_us"),
        "s3_list_us": figures("s3_list_us"),
        "s3_page_us": figures("s3_page_us"),
        # An album page's cost per URL: two URLs a photo, one signature a photo.
        "page_cold_container_per_url_us": [ms * 1000 / (2 * PHOTOS) for ms in figures("page_cold_container_ms")],
        "page_new_window_per_url_us": [ms * 1000 / (2 * PHOTOS) for ms in figures("page_new_window_ms")],
    }
    summary["per_url_us"] = {name: common.median(values) for name, values in per_url.items()}
    summary["per_url_range_us"] = {name: (min(values), max(values)) for name, values in per_url.items()}
    summary["ratios"] = {name: ratio_summary(against_botocore(values), URL_GOAL) for name, values in per_url.items()}
    summary["processes"] = len(processes)
    return summary


def summarise_warm(samples: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """Medians and spreads per variant and route, and the paired ratios of one cycle (every variant once)."""
    medians = {
        variant: {route: common.median(values) for route, values in routes.items()}
        for variant, routes in samples.items()
    }
    spreads = {
        variant: {route: common.spread(values) for route, values in routes.items()}
        for variant, routes in samples.items()
    }

    def paired(numerator: str, denominator: str, route: str) -> list[float]:
        return [common.ratio(a, b) for a, b in zip(samples[numerator][route], samples[denominator][route], strict=True)]

    routes = list(samples["photosky-cdn"])
    return {
        "medians_us": medians,
        "spreads": spreads,
        "samples_us": samples,
        # The goal: PhotoSky with the CDN against PhotoSky presigning, cycle by cycle.
        "cdn_vs_s3": {
            route: ratio_summary(paired("photosky-cdn", "photosky-s3", route), ROUTE_GOAL) for route in routes
        },
        "peer_cdn_vs_s3": {
            route: ratio_summary(paired("powertools-cdn", "powertools-s3", route), ROUTE_GOAL) for route in routes
        },
        # Framework against framework, each pair signing the same way.
        "vs_peer": {
            way: {route: ratio_summary(paired(f"photosky-{way}", f"powertools-{way}", route), 1.0) for route in routes}
            for way in ("cdn", "s3")
        },
    }


def measure_signing(processes: int, list_rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    env = common.lambda_environment({"PYTHONPATH": str(common.PROJECT_DIR)})
    results = []
    for _ in range(processes):
        run = common.run_fresh(
            [common.python(), "-m", "bench.media", "sign", "--list-rounds", str(list_rounds)], env=env, timeout=300
        )
        results.append(common.last_json_line(run.stdout))
    log(f"  media: signing, {processes} processes done")
    return {**summarise_signing(results), "list_rounds": list_rounds}


def measure_warm(cycles: int, requests: int, warmup: int, log: Callable[[str], None]) -> dict[str, Any]:
    base = common.lambda_environment({"PYTHONPATH": str(common.PROJECT_DIR)})
    cdn_env = {**base, **common.media_environment()}
    samples: dict[str, dict[str, list[float]]] = {variant: {} for variant in WARM_VARIANTS}
    media: dict[str, dict[str, str]] = {variant: {} for variant in WARM_VARIANTS}
    requests_by_route: dict[str, int] = {}

    def child(framework: str, env: dict[str, str], profile: str | None = None) -> dict[str, Any]:
        args = ["--framework", framework, "--requests", str(requests), "--warmup", str(warmup)]
        args += ["--profile", profile] if profile else []
        run = common.run_fresh([common.python(), "-m", "bench.media", "warm", *args], env=env, timeout=600)
        return dict(common.last_json_line(run.stdout))

    for cycle in range(cycles):
        for variant, (framework, cdn) in WARM_VARIANTS.items():
            result = child(framework, cdn_env if cdn else base)
            for route, entry in result["routes"].items():
                samples[variant].setdefault(route, []).append(entry["us_per_request"])
                media[variant][route] = entry["media"]
                requests_by_route[route] = entry["requests"]
        log(f"  media: warm routes, cycle {cycle + 1} of {cycles} done")
    large = f"GET /photos?limit={LIST_LIMITS[-1]}"
    profiled = child("photosky", cdn_env, large)["routes"][large]["profile"]
    for variant, (_framework, cdn) in WARM_VARIANTS.items():
        if set(media[variant].values()) != {"cdn" if cdn else "s3"}:
            raise AssertionError(f"{variant} handed out {media[variant]}")
    return {
        **summarise_warm(samples),
        "cycles": cycles,
        "requests": requests_by_route,
        "media": media,
        "profile": profiled,
        "profile_route": large,
    }


# --- the browser's second visit --------------------------------------------------------------------------------

SETTLE_SECONDS = 120.0
TIMEOUT_MS = 60_000
KINDS = ("api", "previews", "web", "other")
# True once every tile of the gallery shows its preview; until then it scrolls to the first preview not shown yet
# (previews load lazily, near the viewport) or to the bottom (the next page of the list).
_GALLERY_SHOWN = """(count) => {
    const images = [...document.querySelectorAll('#photo-grid img')];
    const shown = (image) => image.complete && image.naturalWidth > 0;
    if (images.length === count && images.every(shown)) return true;
    const waiting = images.find((image) => !shown(image));
    if (waiting) waiting.scrollIntoView({ block: "center" });
    else window.scrollTo(0, document.body.scrollHeight);
    return false;
}"""


@dataclass
class Visit:
    """One page load of the gallery, request by request, as Chromium's DevTools protocol reports them."""

    asked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))  # Playwright `request` events
    url_of: dict[str, str] = field(default_factory=dict)  # DevTools request id -> URL
    preflights: set[str] = field(default_factory=set)  # request ids of CORS preflights (Playwright never sees them)
    cached: set[str] = field(default_factory=set)  # request ids answered from the HTTP (memory or disk) cache
    wire_bytes: dict[str, int] = field(default_factory=dict)  # request id -> bytes received (headers and body)
    preview_urls: set[str] = field(default_factory=set)
    seconds: float = 0.0

    def summary(self, kind_of: Callable[[str], str]) -> dict[str, dict[str, int]]:
        """Per kind: requests asked for; answered over the network (CORS preflights among them), from the cache;
        bytes received."""
        out = {
            kind: {"asked": self.asked[kind], "network": 0, "preflights": 0, "cache": 0, "bytes": 0} for kind in KINDS
        }
        for request_id, url in self.url_of.items():
            entry = out[kind_of(url)]
            if request_id in self.cached:
                entry["cache"] += 1
                continue
            entry["network"] += 1
            entry["preflights"] += request_id in self.preflights
            entry["bytes"] += self.wire_bytes.get(request_id, 0)
        return out


def _upload_photos(outputs: dict[str, Any], token: str, count: int) -> list[str]:
    from bench.devstack_load import Api, post_form
    from bench.previews import photo_like

    api = Api(outputs["api_url"], token)
    image = photo_like((640, 480))
    photo_ids = []
    for variant in range(1, count + 1):  # each with bytes of its own: the worker rejects a copy as a duplicate
        data = common.jpeg_bytes(image, variant)
        status, body = api.call(
            "POST",
            "/photos",
            {"filename": f"IMG_{variant:04d}.jpg", "content_type": "image/jpeg", "size_bytes": len(data)},
        )
        if status != 201:
            raise RuntimeError(f"POST /photos answered {status}: {body}")
        sent = post_form(body["upload"]["url"], body["upload"]["fields"], data, "image/jpeg")
        if sent not in (200, 201, 204):
            raise RuntimeError(f"the upload's POST answered {sent}")
        photo_ids.append(body["photo"]["photo_id"])
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        status, body = api.call("GET", f"/photos?limit={count}")
        ready = [item for item in body["items"] if item["status"] == "READY"] if status == 200 else []
        if len(ready) == count:
            return photo_ids
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(ready)} of {count} photos READY after {SETTLE_SECONDS:.0f} s")
        time.sleep(0.5)


def _visit(context: Any, outputs: dict[str, Any], username: str, password: str, count: int) -> Visit:
    """Sign in on a new page of `context` (the SPA keeps its session per tab) and wait until every preview shows."""
    kind_of = _kind_of(outputs)
    visit = Visit()
    page = context.new_page()

    def asked(request: Any) -> None:
        visit.asked[kind_of(request.url)] += 1

    def sent(event: dict[str, Any]) -> None:
        visit.url_of[event["requestId"]] = event["request"]["url"]
        if event["request"]["method"] == "OPTIONS":
            visit.preflights.add(event["requestId"])

    def received(event: dict[str, Any]) -> None:
        if event["response"].get("fromDiskCache") or event["response"].get("fromPrefetchCache"):
            visit.cached.add(event["requestId"])

    def finished(event: dict[str, Any]) -> None:
        visit.wire_bytes[event["requestId"]] = int(event["encodedDataLength"])

    page.on("request", asked)
    devtools = context.new_cdp_session(page)
    devtools.on("Network.requestWillBeSent", sent)
    devtools.on("Network.requestServedFromCache", lambda event: visit.cached.add(event["requestId"]))
    devtools.on("Network.responseReceived", received)
    devtools.on("Network.loadingFinished", finished)
    devtools.send("Network.enable")
    started = time.monotonic()
    page.goto(outputs["web_url"] + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your photos", exact=True).wait_for()
    page.wait_for_function(_GALLERY_SHOWN, arg=count, polling=100)
    visit.seconds = time.monotonic() - started
    page.wait_for_load_state("networkidle")
    visit.preview_urls = set(
        page.eval_on_selector_all("#photo-grid img", "(images) => images.map((image) => image.src)")
    )
    devtools.detach()
    page.close()
    return visit


def _kind_of(outputs: dict[str, Any]) -> Callable[[str], str]:
    def kind_of(url: str) -> str:
        return request_kind(url, api_url=outputs["api_url"], media_url=outputs["media_url"], web_url=outputs["web_url"])

    return kind_of


def _endpoint_counts(urls: set[str]) -> dict[str, int]:
    """The media endpoint's count of requests per URL path, this probe (a HEAD) included."""
    from devstack.media import REQUEST_COUNT_HEADER

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    counts = {}
    for url in urls:
        # (http URLs of the dev stack's own media endpoint, from the page it served)
        with opener.open(urllib.request.Request(url, method="HEAD"), timeout=10) as response:  # noqa: S310
            counts[url] = int(response.headers[REQUEST_COUNT_HEADER])
    return counts


def measure_second_visit(count: int, log: Callable[[str], None]) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from bench.devstack_load import Api, start_stack, stop_stack
    from devstack.token import id_token, new_confirmed_user

    if not CHROMIUM.exists():
        raise RuntimeError(f"the browser visit needs Chromium at {CHROMIUM} (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="photosky-bench-media-") as scratch:
        process, outputs, log_path = start_stack(Path(scratch))
        try:
            if "media_url" not in outputs:
                raise RuntimeError("this dev stack has no media endpoint (devstack/media.py, `media_url`)")
            username, password = new_confirmed_user(outputs, "bench")
            token = id_token(outputs, username, password)
            status, body = Api(outputs["api_url"], token).call("POST", "/users", {"display_name": "Bench"})
            if status != 201:
                raise RuntimeError(f"POST /users answered {status}: {body}")
            started = time.monotonic()
            _upload_photos(outputs, token, count)
            log(f"  media: {count} photos READY on the dev stack in {time.monotonic() - started:.0f} s")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
                attempts = 0
                try:
                    while attempts < 2:
                        attempts += 1
                        # A fresh context each time: an empty HTTP cache for the first visit.
                        context = browser.new_context(viewport={"width": 1280, "height": 900})
                        context.set_default_timeout(TIMEOUT_MS)
                        try:
                            first = _visit(context, outputs, username, password, count)
                            before = _endpoint_counts(first.preview_urls)
                            second = _visit(context, outputs, username, password, count)
                            after = _endpoint_counts(first.preview_urls)
                        finally:
                            context.close()
                        if second.preview_urls == first.preview_urls:
                            break
                        # A URL window ended between the two visits (once an hour): every URL changed with it.
                        log("  media: a URL window ended between the visits; both again, in a new browser context")
                finally:
                    browser.close()
        except Exception as e:
            raise RuntimeError(f"{e}\ndev stack log:\n{log_path.read_text()[-3000:]}") from e
        finally:
            stop_stack(process)
    kind_of = _kind_of(outputs)
    first_previews = first.summary(kind_of)["previews"]
    if first_previews["network"] != count or len(first.preview_urls) != count:
        raise RuntimeError(f"the first visit did not fetch its {count} previews over the network: {first_previews}")
    log("  media: browser visits done")
    return {
        "photos": count,
        "first": first.summary(kind_of),
        "second": second.summary(kind_of),
        "first_seconds": first.seconds,
        "second_seconds": second.seconds,
        "same_preview_urls": second.preview_urls == first.preview_urls,
        "previews_shown": len(first.preview_urls),
        "attempts": attempts,
        # Requests for the previews' paths that reached the media endpoint between the two probes, probe excluded.
        "endpoint_requests_during_second": sum(after[url] - before[url] - 1 for url in before),
        "chromium": CHROMIUM.name,
    }


def measure(
    *,
    sign_processes: int,
    list_rounds: int,
    warm_cycles: int,
    requests: int,
    warmup: int,
    browser: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    timings: dict[str, float] = {}
    load_start = common.machine_description()["load_at_start"]
    started = time.monotonic()
    signing = measure_signing(sign_processes, list_rounds, log)
    timings["signing"] = time.monotonic() - started
    started = time.monotonic()
    warm = measure_warm(warm_cycles, requests, warmup, log)
    timings["warm"] = time.monotonic() - started
    started = time.monotonic()
    visit = measure_second_visit(PHOTOS, log) if browser else None
    timings["browser"] = time.monotonic() - started
    return {
        "signing": signing,
        "warm": warm,
        "browser": visit,
        "timings": timings,
        "load_start": load_start,
        "load_end": common.machine_description()["load_at_start"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one media measurement (a child of python -m bench)")
    sub = parser.add_subparsers(dest="what", required=True)
    sign = sub.add_parser("sign")
    sign.add_argument("--list-rounds", type=int, default=100)
    warm = sub.add_parser("warm")
    warm.add_argument("--framework", choices=("photosky", "powertools"), required=True)
    warm.add_argument("--requests", type=int, default=200)
    warm.add_argument("--warmup", type=int, default=30)
    warm.add_argument("--profile")
    args = parser.parse_args(argv)
    if args.what == "sign":
        result = _sign_child(args.list_rounds)
    else:
        result = _warm_child(args.framework, args.requests, args.warmup, args.profile)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --- the report ------------------------------------------------------------------------------------------------

LOG_MARKER = "<!-- media run log: bench/report.py carries these rows over from run to run -->"
LOG_HEADERS = (
    "date",
    "run",
    "code",
    "load (1 min)",
    "warm list URL × botocore",
    "limit=10 CDN / S3",
    "limit=100 CDN / S3",
    "previews over the network, 2nd visit",
    "verdicts",
)


def _range(summary: dict[str, Any]) -> str:
    return f"{summary['min']:.3f}–{summary['max']:.3f}×"


def _ratio_cell(summary: dict[str, Any]) -> str:
    return f"{summary['median']:.3f}× ({_range(summary)})"


def verdicts(data: dict[str, Any]) -> dict[str, str]:
    """Each goal's verdict: met, missed, within the noise, or not measured."""
    out = {
        "url": data["signing"]["ratios"]["memo_list_us"]["verdict"],
        **{route: summary["verdict"] for route, summary in data["warm"]["cdn_vs_s3"].items()},
    }
    visit = data.get("browser")
    if visit is not None:
        network = visit["second"]["previews"]["network"] + visit["endpoint_requests_during_second"]
        out["second visit"] = "met" if network == 0 and visit["same_preview_urls"] else "missed"
    return out


def log_row(results: dict[str, Any]) -> tuple[str, ...]:
    data = results["media"]
    warm = data["warm"]["cdn_vs_s3"]
    visit = data.get("browser")
    return (
        results["started"],
        ("quick" if results["quick"] else "full") + ("" if results.get("complete", True) else ", media only"),
        results.get("code", "n/a"),
        data["load_start"].split()[0],
        _ratio_cell(data["signing"]["ratios"]["memo_list_us"]),
        *(_ratio_cell(warm[f"GET /photos?limit={limit}"]) for limit in LIST_LIMITS),
        (
            f"{visit['second']['previews']['network']} of {visit['photos']} (endpoint: "
            f"{visit['endpoint_requests_during_second']})"
            if visit
            else "not run"
        ),
        ", ".join(sorted(set(verdicts(data).values()))),
    )


def goal_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    signing = data["signing"]
    memo = signing["ratios"]["memo_list_us"]
    rows = [
        (
            "media URL, warm owner list (CDN), CPU per URL",
            f"≤ {URL_GOAL:.2f}× botocore's presign",
            f"{_ratio_cell(memo)}: {fmt_us(signing['per_url_us']['memo_list_us'])} vs "
            f"{fmt_us(signing['botocore_us']['median'])} µs",
            verdict_cell(memo["verdict"]),
        )
    ]
    for route, summary in data["warm"]["cdn_vs_s3"].items():
        medians = data["warm"]["medians_us"]
        rows.append(
            (
                f"warm CPU, {route}: CDN vs presigning",
                f"≤ {ROUTE_GOAL:.2f}×",
                f"{_ratio_cell(summary)}: {common.fmt_num(medians['photosky-cdn'][route])} vs "
                f"{common.fmt_num(medians['photosky-s3'][route])} µs",
                verdict_cell(summary["verdict"]),
            )
        )
    visit = data.get("browser")
    if visit is not None:
        rows.append(
            (
                f"browser second visit ({visit['photos']} photos): previews over the network",
                "none",
                f"{visit['second']['previews']['network']} (DevTools); {visit['endpoint_requests_during_second']} "
                "reached the media endpoint",
                verdict_cell(verdicts(data)["second visit"]),
            )
        )
    return rows


def verdict_cell(outcome: str) -> str:
    return {"met": "met", "missed": "**missed**"}.get(outcome, "**within the noise**: repeat the run")


def fmt_us(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _signing_rows(signing: dict[str, Any]) -> list[tuple[str, ...]]:
    per_url, ratios = signing["per_url_us"], signing["ratios"]

    def per_url_figure(name: str) -> str:
        low, high = signing["per_url_range_us"][name]
        return f"{fmt_us(per_url[name])} ({fmt_us(low)}–{fmt_us(high)})"

    def figure(name: str) -> str:
        entry = signing[name]
        return f"{fmt_us(entry['median'])} ({fmt_us(entry['min'])}–{fmt_us(entry['max'])})"

    rows: list[tuple[str, ...]] = [
        ("botocore `generate_presigned_url` (the baseline)", "1 presign", figure("botocore_us"), "1.00×", ""),
        (
            "S3 presigning path (`S3Media`), owner list of 100",
            "1 presign",
            figure("s3_list_us"),
            _ratio_cell(ratios["s3_list_us"]),
            "",
        ),
        (
            "**(a) CDN, owner list of 100, memo warm**",
            "a lookup and a join",
            figure("memo_list_us"),
            f"**{_ratio_cell(ratios['memo_list_us'])}**",
            f"≤ {URL_GOAL:.2f}×: {verdict_cell(ratios['memo_list_us']['verdict'])}",
        ),
        (
            "(b) CDN memo miss, small table (a container's first 8 signatures)",
            "1 signature",
            figure("small_table_us"),
            _ratio_cell(ratios["small_table_us"]),
            "",
        ),
        (
            "(b) CDN memo miss, fixed-base table (built after 8 signatures)",
            "1 signature",
            figure("fixed_table_us"),
            _ratio_cell(ratios["fixed_table_us"]),
            "",
        ),
        (
            "(c) CDN album page of 100, cold memo, a container's first request",
            "½ signature",
            per_url_figure("page_cold_container_per_url_us"),
            _ratio_cell(ratios["page_cold_container_per_url_us"]),
            f"page: {figure('page_cold_container_ms')} ms",
        ),
        (
            "(c) CDN album page of 100, cold memo, a new window (tables built)",
            "½ signature",
            per_url_figure("page_new_window_per_url_us"),
            _ratio_cell(ratios["page_new_window_per_url_us"]),
            f"page: {figure('page_new_window_ms')} ms",
        ),
        (
            "S3 presigning path, album page of 100 (2 presigns a photo)",
            "1 presign",
            figure("s3_page_us"),
            _ratio_cell(ratios["s3_page_us"]),
            f"page: {fmt_us(per_url['s3_page_us'] * 2 * PHOTOS / 1000)} ms",
        ),
    ]
    return rows


def _warm_rows(warm: dict[str, Any]) -> list[tuple[str, ...]]:
    medians, spreads = warm["medians_us"], warm["spreads"]
    rows = []
    for route in warm["cdn_vs_s3"]:
        rows.append(
            (
                route,
                *(
                    f"{common.fmt_num(medians[variant][route])} ({spreads[variant][route] * 100:.0f}%)"
                    for variant in WARM_VARIANTS
                ),
                _ratio_cell(warm["cdn_vs_s3"][route]),
                _ratio_cell(warm["peer_cdn_vs_s3"][route]),
                _ratio_cell(warm["vs_peer"]["cdn"][route]),
                _ratio_cell(warm["vs_peer"]["s3"][route]),
            )
        )
    return rows


KIND_LABELS = {
    "api": "API",
    "previews": "media previews",
    "web": "the web client's files",
    "other": "other (signing in to Cognito)",
}


def _visit_rows(visit: dict[str, Any]) -> list[tuple[str, ...]]:
    def network(entry: dict[str, int]) -> str:
        return (
            f"{entry['network']} ({entry['preflights']} preflight{'s' if entry['preflights'] > 1 else ''})"
            if entry["preflights"]
            else str(entry["network"])
        )

    def cells(entry: dict[str, int]) -> tuple[str, ...]:
        return str(entry["asked"]), network(entry), str(entry["cache"]), f"{entry['bytes'] / 1024:,.1f}"

    def total(which: str) -> dict[str, int]:
        return {name: sum(visit[which][kind][name] for kind in KINDS) for name in visit[which][KINDS[0]]}

    rows = []
    for kind in KINDS:
        first, second = visit["first"][kind], visit["second"][kind]
        rows.append(
            (
                KIND_LABELS[kind],
                *cells(first),
                *cells(second),
                common.fmt_ratio(common.ratio(second["bytes"], first["bytes"])),
            )
        )
    first, second = total("first"), total("second")
    rows.append(
        (
            "**all**",
            *cells(first),
            *cells(second),
            f"**{common.fmt_ratio(common.ratio(second['bytes'], first['bytes']))}**",
        )
    )
    return rows


def section(results: dict[str, Any]) -> str:
    data = results["media"]
    signing, warm, visit = data["signing"], data["warm"], data.get("browser")
    how = (
        "a whole `make bench` run"
        if results.get("complete")
        else "`.venv/bin/python -m bench --only media`, this section alone (the rest of this report is from the run "
        "named at the top)"
    )
    requests = ", ".join(f"{count} requests for {route}" for route, count in warm["requests"].items())
    lines = [
        SECTION_HEADING,
        "",
        f"Measured on {results['started']} by {how}: bench/media.py, code {results.get('code', 'n/a')}, load average "
        f"{data['load_start']} at its start and {data['load_end']} at its end (2 shared cores). Since issue 14 the API "
        "hands out CloudFront signed URLs (chalicelib/media.py: a custom policy with a wildcard resource, ECDSA P-256 "
        "in pure Python, chalicelib/p256.py) signed once per resource and URL window and memoised, where it used to "
        "presign every URL with botocore (`S3Media`, still the path without a CDN). Every figure is CPU time (user + "
        "system) and every ratio is against a baseline measured in the same process (signing) or the same cycle "
        "(routes); a range is the smallest and largest of those paired ratios, and a goal is **met** when the whole "
        "range is within it, **missed** when none of it is, otherwise **within the noise** (the run is repeated, "
        "never the best kept: the run log below keeps every run).",
        "",
        "### Signing cost per URL",
        "",
        f"{signing['processes']} fresh processes (`python -m bench.media sign`), each timing botocore's "
        "`generate_presigned_url` for the 300 URLs of a 100-photo owner list (the baseline, first call left out), "
        "then the other ways of handing out the same URLs; the figure is the median of the processes (min–max), the "
        "ratio the median of the per-process ratios. (a) The owner's list with the memo warm: two signatures (their "
        "previews' and originals' prefixes) serve all 300 URLs, each a dictionary lookup and a join "
        f"({signing['list_rounds']} lists per process). (b) A memo miss: one new signature (an album member's view "
        "of a photo), timed one at a time, with the small table every container starts with (its first "
        "`p256._COMB_AFTER` = 8 signatures) and with the fixed-base table it then builds (200 signatures); "
        "p256's tables are replaced to start a container's signing over. (c) A shared album page of 100 other "
        "people's photos on a cold memo: one signature a photo for its two URLs (large, small), in a container's "
        "first request (the key loaded, 8 signatures with the small table, the fixed-base table built, 92 with it) "
        "and in a new URL window of a container that has signed before. Signatures made here are checked against "
        "`cryptography` outside the clock.",
        "",
        table(
            ["what", "signing work per URL", "CPU µs per URL (min–max)", "× botocore (min–max)", "goal; a page"],
            _signing_rows(signing),
        ),
        "",
        f"A container's first URL costs {fmt_us(signing['first_url_us']['median'])} µs (the key parsed from its PEM, "
        "the small table built, one signature); building the fixed-base table costs "
        f"{common.fmt_num(signing['comb_build_ms']['median'], 1)} ms once "
        f"({common.fmt_num(signing['comb_build_ms']['min'], 1)}–{common.fmt_num(signing['comb_build_ms']['max'], 1)}).",
        "",
        "### Warm CPU of the list route",
        "",
        f"Through each framework's real Lambda entry point as section 2 drives it (bench/warm.py: API Gateway REST "
        "events, DynamoDB answered by a botocore Stubber with READY photos, an S3 Stubber that refuses any call), one "
        f"fresh process per variant, {warm['cycles']} cycles of the four variants in turn ({requests}, after a "
        "warm-up that also fills the memo). *CDN*: `PHOTOSKY_MEDIA_URL` and `PHOTOSKY_MEDIA_KEY` set; *S3 "
        "presigned*: the same app without them (the presigning path). The Powertools peer (bench/peers/"
        "powertools_app.py) uses the same service layer and so signs exactly as the PhotoSky variant it is compared "
        "with; it is reported both ways. Every process checks its first reply: the page's URLs are all of the "
        "expected kind, and a CDN one verifies with `cryptography`. CPU µs per request, median of the cycles "
        "(spread = (max − min) / median); ratios are the median of the per-cycle ratios (min–max).",
        "",
        table(
            [
                "route",
                *(f"{VARIANT_LABELS[variant]} µs (spread)" for variant in WARM_VARIANTS),
                f"**PhotoSky CDN / S3** (goal ≤ {ROUTE_GOAL:.2f}×)",
                "peer CDN / S3",
                "PhotoSky / peer, CDN",
                "PhotoSky / peer, S3",
            ],
            _warm_rows(warm),
        ),
        "",
        f"Where PhotoSky's CPU goes on {warm['profile_route']} with the CDN (cProfile, own time by layer): "
        + ", ".join(f"{name} {share * 100:.1f}%" for name, share in warm["profile"]["areas"].items() if share >= 0.005)
        + "; top functions: "
        + ", ".join(f"`{label}` {share * 100:.1f}%" for label, share in warm["profile"]["top"][:5])
        + ".",
    ]
    if visit is not None:
        lines += [
            "",
            "### A browser's second visit",
            "",
            f"The dev stack (`python -m devstack` on free ports, with its media endpoint devstack/media.py checking "
            f"signed URLs as CloudFront does); one user uploads {visit['photos']} small JPEGs (640×480, each with "
            "bytes of its own) through the API and the presigned POST, and waits until all are READY. Headless "
            f"Chromium ({visit['chromium']}, Debian's, driven by Playwright) opens the web client, signs in and "
            "scrolls the gallery until every tile shows its preview (previews load lazily; the list comes 24 at a "
            "time); then a new page of the same browser context (the same HTTP cache, a new document and session) "
            "does it again. *Asked*: Playwright's `request` events (they fire for cache hits too). *Network* / "
            "*cache* and KB: Chromium's DevTools protocol for the same page (`Network.requestServedFromCache`, "
            "`fromDiskCache`; bytes received = `Network.loadingFinished` `encodedDataLength`, headers included, for "
            "what came over the network; DevTools also reports the CORS preflights of the API's cross-origin "
            "requests, which Playwright's events do not, and none once Chromium has cached them). The media "
            "endpoint's own count of requests per path (a HEAD probe of every preview before and after the second "
            "visit, the probe itself taken off) is the second witness. Gallery "
            f"shown in {visit['first_seconds']:.1f} s on the first visit and {visit['second_seconds']:.1f} s on the "
            "second (sign-in included).",
            "",
            table(
                [
                    "kind",
                    "1st: asked",
                    "1st: network",
                    "1st: cache",
                    "1st: KB",
                    "2nd: asked",
                    "2nd: network",
                    "2nd: cache",
                    "2nd: KB",
                    "KB 2nd / 1st",
                ],
                _visit_rows(visit),
            ),
            "",
            f"Previews over the network on the second visit: **{visit['second']['previews']['network']}** "
            f"(DevTools), **{visit['endpoint_requests_during_second']}** requests for their paths reached the media "
            f"endpoint; the second visit's preview URLs are "
            + ("the same as the first's" if visit["same_preview_urls"] else "**not** the same as the first's")
            + f" ({visit['previews_shown']} previews shown). Goal (no preview request on the second visit): "
            f"{verdict_cell(verdicts(data)['second visit'])}.",
        ]
    lines += [
        "",
        "Every run of this section so far, newest last (`python -m bench` or `python -m bench --only media`), so "
        "that a verdict that flips between runs shows (ratios: median and min–max of the run's pairs):",
        "",
        LOG_MARKER,
        table(LOG_HEADERS, results.get("media_log", [log_row(results)])),
    ]
    return "\n".join(lines)


def analysis(data: dict[str, Any]) -> str:
    signing, warm = data["signing"], data["warm"]
    ratios = signing["ratios"]
    outcome = verdicts(data)
    text = (
        "- **Media URLs (section 9).** With the memo warm a CDN URL costs "
        f"{fmt_us(signing['per_url_us']['memo_list_us'])} µs of CPU against botocore's "
        f"{fmt_us(signing['botocore_us']['median'])} µs ({ratios['memo_list_us']['median']:.3f}×; goal "
        f"≤ {URL_GOAL:.2f}×: {outcome['url']}). A memo miss is dearer than a presign: one signature costs "
        f"{fmt_us(signing['small_table_us']['median'])} µs with the small table "
        f"({ratios['small_table_us']['median']:.2f}× botocore) and {fmt_us(signing['fixed_table_us']['median'])} µs "
        f"with the fixed-base table ({ratios['fixed_table_us']['median']:.2f}×); a shared album page of 100 on a "
        f"cold memo costs {fmt_us(signing['page_cold_container_ms']['median'])} ms in a container's first request "
        f"and {fmt_us(signing['page_new_window_ms']['median'])} ms in a later window, against "
        f"{fmt_us(signing['per_url_us']['s3_page_us'] * 2 * PHOTOS / 1000)} ms presigned, and then nothing for the "
        "rest of the window. On the list route PhotoSky with the CDN takes "
        + ", ".join(
            f"{summary['median']:.3f}× the presigning path's CPU on {route} ({outcome[route]})"
            for route, summary in warm["cdn_vs_s3"].items()
        )
        + f" (goal ≤ {ROUTE_GOAL:.2f}×)."
    )
    visit = data.get("browser")
    if visit is not None:
        text += (
            f" A second visit to a {visit['photos']}-photo gallery fetched {visit['second']['previews']['network']} "
            f"previews over the network ({outcome['second visit']}) and "
            f"{sum(visit['second'][kind]['bytes'] for kind in KINDS) / 1024:,.0f} KB in all, against "
            f"{sum(visit['first'][kind]['bytes'] for kind in KINDS) / 1024:,.0f} KB on the first."
        )
    return text
