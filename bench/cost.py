"""Section 6: monthly AWS cost of 1M API requests and 100k photo uploads, from this run's measurements.

PRICES and ASSUMPTIONS are inputs: edit them (nothing is fetched). Prices are AWS's public us-east-1 list prices
as known when this file was written; check them before relying on a figure. Free tiers are ignored.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

CHALICE_DEFAULT_MEMORY_MB = 128


def configured_memory_mb(function: str) -> int:
    """The memory .chalice/config.json gives a Lambda function (Chalice's default when it sets none)."""
    config = json.loads((Path(__file__).resolve().parent.parent / ".chalice" / "config.json").read_text())
    settings = config.get("lambda_functions", {}).get(function, {})
    return int(settings.get("lambda_memory_size", CHALICE_DEFAULT_MEMORY_MB))


PRICES_AS_OF = "2025-11 (AWS public list prices, us-east-1; edit before use)"
PRICES: dict[str, float] = {
    "lambda_gb_second": 0.0000166667,  # x86_64
    "lambda_request": 0.20 / 1e6,
    "api_gateway_rest_request": 3.50 / 1e6,  # first 333M requests a month
    "dynamodb_read_request_unit": 0.125 / 1e6,  # on-demand
    "dynamodb_write_request_unit": 0.625 / 1e6,  # on-demand
    "dynamodb_storage_gb_month": 0.25,
    "s3_put_class_request": 0.005 / 1000,  # PUT, COPY, POST, LIST (and multi-object DELETE, a POST)
    "s3_get_class_request": 0.0004 / 1000,  # GET, HEAD
    "s3_storage_gb_month": 0.023,  # Standard, first 50 TB
    "sqs_request": 0.40 / 1e6,  # standard queue
}

ASSUMPTIONS: dict[str, Any] = {
    "api_requests": 1_000_000,
    "uploads": 100_000,
    # The read mix of the 1M API requests (the routes measured warm).
    "mix": {"GET /photos": 0.6, "GET /photos/{id}": 0.4},
    # What .chalice/config.json gives the API, and Chalice's default for comparison.
    "api_memory_mb": (configured_memory_mb("api_handler"), CHALICE_DEFAULT_MEMORY_MB),
    "worker_memory_mb": configured_memory_mb("process_uploads"),
    # Lambda gives a function CPU in proportion to memory: one full vCPU at 1,769 MB.
    "full_vcpu_memory_mb": 1769,
    "aws_call_latency_ms": 8.0,  # per DynamoDB/S3 call from Lambda, in-region (not measurable here)
    "s3_transfer_ms_per_mb": 12.0,  # worker's GET of the original from S3
    "cold_start_fraction": 0.01,  # share of API requests that start a new environment (INIT is billed)
    "average_upload_mb": 4.0,  # originals stored (a phone JPEG)
    "previews_fetched_per_list": 10,  # small previews a browser loads per GET /photos page
    "previews_fetched_per_get": 1,  # the large preview per GET /photos/{id}
    "sqs_requests_per_upload": 3,  # S3's send, Lambda's receive and delete
    "dynamodb_kb_per_photo": 1.5,  # photo item + tag copies
}


@dataclass(frozen=True)
class Measured:
    """What this run measured, in the units the model needs."""

    api_cpu_ms: dict[str, float]  # per route, warm, PhotoSky
    api_calls: dict[str, int]  # AWS calls per route
    rru: dict[str, float]  # per route / operation
    wru: dict[str, float]  # POST /photos' includes its write-rate token (an UpdateItem on the caller's counter)
    cold_start_ms: float  # init CPU over a bare interpreter, with bytecode
    worker_cpu_ms: float  # PhotoSky's previews of a 24 MP JPEG
    worker_calls: int
    preview_bytes: int  # large + small


def lambda_ms(cpu_ms: float, memory_mb: int, calls: int, assumptions: dict[str, Any]) -> float:
    """Billed duration: CPU time stretched by the memory's CPU share, plus AWS round trips, rounded up to 1 ms."""
    stretch = max(1.0, assumptions["full_vcpu_memory_mb"] / memory_mb)
    return float(math.ceil(cpu_ms * stretch + calls * assumptions["aws_call_latency_ms"]))


def gb_seconds(ms: float, memory_mb: int) -> float:
    return ms / 1000 * memory_mb / 1024


def monthly_cost(
    measured: Measured,
    api_memory_mb: int,
    prices: dict[str, float] | None = None,
    assumptions: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Line items in USD for one month."""
    p = prices or PRICES
    a = assumptions or ASSUMPTIONS
    requests, uploads = a["api_requests"], a["uploads"]
    items: dict[str, float] = {}

    api_gb_s = 0.0
    rru = 0.0
    for route, share in a["mix"].items():
        ms = lambda_ms(measured.api_cpu_ms[route], api_memory_mb, measured.api_calls[route], a)
        api_gb_s += requests * share * gb_seconds(ms, api_memory_mb)
        rru += requests * share * measured.rru[route]
    start_ms = lambda_ms(measured.api_cpu_ms["POST /photos"], api_memory_mb, measured.api_calls["POST /photos"], a)
    api_gb_s += uploads * gb_seconds(start_ms, api_memory_mb)
    api_gb_s += (requests + uploads) * a["cold_start_fraction"] * gb_seconds(measured.cold_start_ms, api_memory_mb)
    items["Lambda API (GB-s, incl. billed INIT)"] = api_gb_s * p["lambda_gb_second"]
    items["Lambda requests (API + worker)"] = (requests + 2 * uploads) * p["lambda_request"]
    items["API Gateway REST requests"] = (requests + uploads) * p["api_gateway_rest_request"]

    worker_ms = lambda_ms(measured.worker_cpu_ms, a["worker_memory_mb"], measured.worker_calls, a)
    worker_ms += a["average_upload_mb"] * a["s3_transfer_ms_per_mb"]
    items["Lambda worker (GB-s)"] = uploads * gb_seconds(worker_ms, a["worker_memory_mb"]) * p["lambda_gb_second"]

    wru = uploads * (measured.wru["POST /photos"] + measured.wru["upload worker"])
    rru += uploads * measured.rru["upload worker"]
    items["DynamoDB reads (RRU)"] = rru * p["dynamodb_read_request_unit"]
    items["DynamoDB writes (WRU)"] = wru * p["dynamodb_write_request_unit"]
    items["DynamoDB storage"] = uploads * a["dynamodb_kb_per_photo"] / 1024 / 1024 * p["dynamodb_storage_gb_month"]

    # Per upload: the browser's POST, the worker's 3 PUTs (2 previews, the verified original) and 1 DeleteObjects
    # (a POST).
    items["S3 PUT/COPY/POST requests"] = uploads * 5 * p["s3_put_class_request"]
    gets = uploads * 2  # the worker's HEAD and GET
    gets += requests * a["mix"]["GET /photos"] * a["previews_fetched_per_list"]
    gets += requests * a["mix"]["GET /photos/{id}"] * a["previews_fetched_per_get"]
    items["S3 GET/HEAD requests"] = gets * p["s3_get_class_request"]
    stored_gb = uploads * (a["average_upload_mb"] * 1024 * 1024 + measured.preview_bytes) / 1024**3
    items["S3 storage (the month's uploads, one month)"] = stored_gb * p["s3_storage_gb_month"]
    items["SQS requests"] = uploads * a["sqs_requests_per_upload"] * p["sqs_request"]
    return items


def api_request_ms(measured: Measured, memory_mb: int, assumptions: dict[str, Any] | None = None) -> dict[str, float]:
    a = assumptions or ASSUMPTIONS
    return {
        route: lambda_ms(measured.api_cpu_ms[route], memory_mb, measured.api_calls[route], a)
        for route in (*a["mix"], "POST /photos")
    }


# ---------------------------------------------------------------------------------------------------------------
# Issue 17: the same model at docs/SCALE.md's target. `python -m bench.cost --scale [--write]` prints (or writes into
# docs/SCALE.md) the month's cost of several configurations and the load each limit on the path sees, from the last
# bench run's measured inputs as docs/PERFORMANCE.md reports them: nothing is re-measured.
# ---------------------------------------------------------------------------------------------------------------

SCALE_TARGET: dict[str, float] = {
    "users": 10_000_000,
    "peak_api_requests_per_second": 50_000,  # every REST request, the uploads' POST /photos included
    "peak_uploads_per_second": 5_000,  # POST /photos, each followed by its S3 upload and the worker
}

# What the target does not say. Each is an input: change it and rerun the command.
SCALE_ASSUMPTIONS: dict[str, Any] = {
    "seconds_per_month": 30 * 24 * 3600,
    # The month's volumes from the peaks: a day's curve puts the busiest hour at about 4x the month's mean; uploads
    # come in bursts on top of it (holidays, events), so their peak is further from their mean.
    "api_peak_to_average": 4.0,
    "upload_peak_to_average": 10.0,
    # A busy fleet keeps its environments warm: one request in a thousand starts one (section 6 assumes 1 in 100 for
    # a small month). Billed INIT is this share of requests times the cold start.
    "cold_start_fraction": 0.001,
    # A signed-in tab while in use makes an API request every 10 s and holds one WebSocket; connected tabs at the peak
    # are therefore the peak API rate / this.
    "api_requests_per_client_second": 0.1,
    "session_minutes": 10,  # a tab's average stay: each one signs in (the SPA keeps tokens in sessionStorage)
    "token_lifetime_seconds": 3600,  # IdTokenValidity: 60 minutes (infra/resources.yaml); each refresh reconnects
    "ping_every_seconds": 300,  # web/live.js PING_EVERY_MS
    "messages_per_ping": 2,  # the ping and its answer
    "sockets_per_uploader": 1.5,  # connections an owner has open when a photo settles (tabs, devices)
    "cdn_hit_ratio": 0.9,  # previews CloudFront serves from its cache; the rest are S3 GETs from the origin
    # Previews a browser shows from its own cache. CloudFront URLs stay the same for an hour and more (CONTRACT.md's
    # Media), so a second view of a page fetches none (section 9's second visit); presigned S3 URLs differ on every
    # request and between containers, so a browser fetches them again every time.
    "browser_cache_hit_ratio": {"cloudfront": 0.5, "s3": 0.0},
    "dynamodb_target_utilisation": 0.7,  # DynamoDB auto scaling's default target (consumed / provisioned)
    # What the worker may take of the account's concurrency while the API keeps the rest: the stack's default for
    # WorkerMaximumConcurrency is lower (infra/package.py); at the target it is raised to the event source's maximum.
    "worker_maximum_concurrency": 1000,
    "headroom": 1.25,  # quotas are asked for at this multiple of the modelled peak
}

# Prices the section 6 month does not need, as of PRICES_AS_OF (us-east-1 list prices; edit before use).
# Tiers are (units in the tier, USD per unit); the last tier is unbounded.
Tiers = tuple[tuple[float, float], ...]
SCALE_PRICES: dict[str, Any] = {
    # infra/package.py deploys every function on arm64 (Graviton), 20% below PRICES' x86_64 GB-s; below 6 billion
    # GB-s a month the first tier is the only one that applies.
    "lambda_gb_second_arm64": 0.0000133334,
    "api_gateway_rest_tiers": (
        (333e6, 3.50 / 1e6),
        (667e6, 2.80 / 1e6),
        (19e9, 2.38 / 1e6),
        (math.inf, 1.51 / 1e6),
    ),
    "websocket_message": 1.00 / 1e6,  # per 32 KB, first billion a month; ours are far smaller
    "websocket_connection_minute": 0.25 / 1e6,
    "dynamodb_wcu_hour": 0.00065,  # provisioned
    "dynamodb_rcu_hour": 0.00013,
    "s3_storage_tiers": ((50 * 1024, 0.023), (450 * 1024, 0.022), (math.inf, 0.021)),  # GB-month, Standard
    "s3_transfer_out_tiers": ((10 * 1024, 0.09), (40 * 1024, 0.085), (100 * 1024, 0.07), (math.inf, 0.05)),  # GB
    "cloudfront_https_request": 0.0100 / 10_000,  # North America
    "cloudfront_transfer_out_tiers": (  # GB, North America
        (10 * 1024, 0.085),
        (40 * 1024, 0.080),
        (100 * 1024, 0.060),
        (350 * 1024, 0.040),
        (524 * 1024, 0.030),
        (4 * 1024 * 1024, 0.025),
        (math.inf, 0.020),
    ),
}

# The latency goals a configuration must meet. docs/PERFORMANCE.md's goals are relative (cold start against the
# baseline, warm CPU against the peers), so the absolute ones come from elsewhere and are inputs here:
# - api_ms: the billed (server) time of each modelled route, warm; the API's share of a page's time to first byte
#   (API Gateway and the network add to it). 100 ms keeps the list route interactive.
# - worker_ms: CONTRACT.md has a photo READY "within a few seconds" and its message within 2 s of settling; the
#   worker's own time per upload must leave room for SQS's delivery in that.
# - cold_ms: a request that starts an environment waits for INIT, whose CPU (section 1) is stretched like any other
#   by the memory's CPU share; 1.5 s is the longest such wait the API may impose. SnapStart (the API's published
#   versions) restores the imports from a snapshot, so the real wait is shorter: this bound is conservative.
LATENCY_GOALS: dict[str, float] = {"api_ms": 100.0, "worker_ms": 1000.0, "cold_ms": 1500.0}

GOAL_NAMES = {"api_ms": "warm route", "cold_ms": "cold start", "worker_ms": "worker"}
API_MEMORY_CHOICES = (128, 256, 512, 1024, 1769)


@dataclass(frozen=True)
class ScaleConfig:
    api_memory_mb: int = 512
    dynamodb: str = "on-demand"  # or "provisioned" (auto scaling at the target utilisation)
    previews: str = "cloudfront"  # or "s3" (presigned S3 GETs, S3's transfer out)

    def label(self) -> str:
        return f"API {self.api_memory_mb} MB, DynamoDB {self.dynamodb}, previews via {self.previews}"


@dataclass(frozen=True)
class ReportInputs:
    """docs/PERFORMANCE.md's figures the model needs: section 6's Measured, the two previews' sizes (section 10)
    and what CloudFront URLs save the API (section 9)."""

    measured: Measured  # as section 6 has it: the API presigns S3 URLs (section 2's warm routes)
    small_preview_bytes: float
    large_preview_bytes: float
    # Section 9: the list route's CPU with CloudFront signed URLs over with S3 presigning, and one URL's signing
    # CPU each way; with them the model prices the API as deployed (CloudFront URLs, infra/package.py).
    cdn_list_ratio: float
    presign_us: float
    cdn_url_us: float
    urls_per_photo_get: int


class ReportError(ValueError):
    """docs/PERFORMANCE.md lacks a figure the model needs."""


def tiered(quantity: float, tiers: Tiers) -> float:
    """The price of `quantity` units billed through consecutive tiers (each (size, unit price))."""
    if quantity < 0:
        raise ValueError("a quantity cannot be negative")
    total, left = 0.0, quantity
    for size, unit_price in tiers:
        used = min(left, size)
        total += used * unit_price
        left -= used
        if left <= 0:
            return total
    raise ValueError("the last tier must be unbounded (math.inf)")


def month_volumes(
    target: dict[str, float] | None = None, assumptions: dict[str, Any] | None = None
) -> dict[str, float]:
    """The month's read requests (everything but POST /photos) and uploads, from the peaks and peak-to-average."""
    t, s = target or SCALE_TARGET, assumptions or SCALE_ASSUMPTIONS
    seconds = s["seconds_per_month"]
    peak_reads = t["peak_api_requests_per_second"] - t["peak_uploads_per_second"]
    if peak_reads < 0:
        raise ValueError("the peak API rate must include the uploads' POST /photos")
    return {
        "api_requests": peak_reads / s["api_peak_to_average"] * seconds,
        "uploads": t["peak_uploads_per_second"] / s["upload_peak_to_average"] * seconds,
    }


def worker_ms(measured: Measured, assumptions: dict[str, Any] | None = None) -> float:
    """The worker's billed time per upload, as monthly_cost bills it (the original's transfer included)."""
    a = assumptions or ASSUMPTIONS
    ms = lambda_ms(measured.worker_cpu_ms, a["worker_memory_mb"], measured.worker_calls, a)
    return ms + float(a["average_upload_mb"] * a["s3_transfer_ms_per_mb"])


def measured_for(inputs: ReportInputs, previews: str) -> Measured:
    """The measured inputs for a way of delivering previews: with CloudFront the list route's CPU shrinks by section
    9's ratio and a photo's GET signs its URLs from the memo instead of presigning them."""
    m = inputs.measured
    if previews == "s3":
        return m
    if previews != "cloudfront":
        raise ValueError(f"unknown preview delivery {previews!r}")
    saved_ms = inputs.urls_per_photo_get * (inputs.presign_us - inputs.cdn_url_us) / 1000
    cpu = {
        **m.api_cpu_ms,
        "GET /photos": m.api_cpu_ms["GET /photos"] * inputs.cdn_list_ratio,
        "GET /photos/{id}": max(0.0, m.api_cpu_ms["GET /photos/{id}"] - saved_ms),
    }
    return replace(m, api_cpu_ms=cpu)


def scale_cost(inputs: ReportInputs, config: ScaleConfig) -> dict[str, float]:
    """Line items in USD for a month at the target: section 6's model at the month's volumes, then the items that
    change at scale (tiered API Gateway and S3 storage, arm64 Lambda, provisioned DynamoDB if chosen, preview
    delivery, the WebSocket API)."""
    s, sp = SCALE_ASSUMPTIONS, SCALE_PRICES
    volumes = month_volumes()
    reads, uploads = volumes["api_requests"], volumes["uploads"]
    # Preview fetches are priced below, by the way they are delivered, so monthly_cost's S3 GETs are the worker's.
    a = {
        **ASSUMPTIONS,
        **volumes,
        "cold_start_fraction": s["cold_start_fraction"],
        "previews_fetched_per_list": 0,
        "previews_fetched_per_get": 0,
    }
    p = {**PRICES, "lambda_gb_second": sp["lambda_gb_second_arm64"]}
    measured = measured_for(inputs, config.previews)
    items = monthly_cost(measured, config.api_memory_mb, p, a)
    items["API Gateway REST requests"] = tiered(reads + uploads, sp["api_gateway_rest_tiers"])
    stored_gb = uploads * (ASSUMPTIONS["average_upload_mb"] * 1024 * 1024 + measured.preview_bytes) / 1024**3
    items["S3 storage (the month's uploads, one month)"] = tiered(stored_gb, sp["s3_storage_tiers"])

    if config.dynamodb == "provisioned":
        # Auto scaling keeps provisioned capacity at consumption / utilisation, so a month of units costs its
        # unit-seconds / utilisation, billed per unit-hour. One RCU serves what one RRU buys (one strongly
        # consistent 4 KB read a second, or two eventually consistent), one WCU what one WRU buys.
        rru = items.pop("DynamoDB reads (RRU)") / p["dynamodb_read_request_unit"]
        wru = items.pop("DynamoDB writes (WRU)") / p["dynamodb_write_request_unit"]
        hours = 1 / 3600 / s["dynamodb_target_utilisation"]
        items["DynamoDB reads (provisioned RCU)"] = rru * hours * sp["dynamodb_rcu_hour"]
        items["DynamoDB writes (provisioned WCU)"] = wru * hours * sp["dynamodb_wcu_hour"]
    elif config.dynamodb != "on-demand":
        raise ValueError(f"unknown DynamoDB capacity mode {config.dynamodb!r}")

    fetches = preview_fetches(reads, config.previews)
    fetched_gb = (
        fetches["small"] * inputs.small_preview_bytes + fetches["large"] * inputs.large_preview_bytes
    ) / 1024**3
    requests = fetches["small"] + fetches["large"]
    if config.previews == "cloudfront":
        items["CloudFront HTTPS requests (previews)"] = requests * sp["cloudfront_https_request"]
        items["CloudFront transfer out (previews)"] = tiered(fetched_gb, sp["cloudfront_transfer_out_tiers"])
        # A cache miss is a GET to the origin bucket; S3's transfer to CloudFront is free.
        items["S3 GET/HEAD requests"] += requests * (1 - s["cdn_hit_ratio"]) * p["s3_get_class_request"]
    elif config.previews == "s3":
        items["S3 GET/HEAD requests"] += requests * p["s3_get_class_request"]
        items["S3 transfer out (previews)"] = tiered(fetched_gb, sp["s3_transfer_out_tiers"])
    else:
        raise ValueError(f"unknown preview delivery {config.previews!r}")

    connections = (reads + uploads) / s["seconds_per_month"] / s["api_requests_per_client_second"]
    pings = connections * s["seconds_per_month"] / s["ping_every_seconds"] * s["messages_per_ping"]
    messages = uploads * s["sockets_per_uploader"] + pings
    items["WebSocket messages"] = messages * sp["websocket_message"]
    items["WebSocket connection minutes"] = (
        connections * s["seconds_per_month"] / 60 * sp["websocket_connection_minute"]
    )
    return items


def preview_fetches(reads: float, previews: str) -> dict[str, float]:
    """Small and large previews browsers fetch over the network for `reads` API read requests: section 6's mix and
    counts, less what their caches hold (which depends on the URLs staying the same)."""
    a = ASSUMPTIONS
    fetched = 1 - SCALE_ASSUMPTIONS["browser_cache_hit_ratio"][previews]
    return {
        "small": reads * a["mix"]["GET /photos"] * a["previews_fetched_per_list"] * fetched,
        "large": reads * a["mix"]["GET /photos/{id}"] * a["previews_fetched_per_get"] * fetched,
    }


def peak_concurrency(inputs: ReportInputs, config: ScaleConfig) -> dict[str, float]:
    """Lambda environments busy at the peak (Little's law: arrivals per second x seconds each), per function."""
    t, a = SCALE_TARGET, ASSUMPTIONS
    measured = measured_for(inputs, config.previews)
    ms = api_request_ms(measured, config.api_memory_mb)
    peak_reads = t["peak_api_requests_per_second"] - t["peak_uploads_per_second"]
    api = sum(peak_reads * share * ms[route] for route, share in a["mix"].items()) / 1000
    api += t["peak_uploads_per_second"] * ms["POST /photos"] / 1000
    return {"api": api, "worker": t["peak_uploads_per_second"] * worker_ms(measured) / 1000}


def cold_start_ms(measured: Measured, memory_mb: int) -> float:
    """INIT's CPU stretched by the memory's CPU share: what a request that starts an environment waits for."""
    return measured.cold_start_ms * max(1.0, float(ASSUMPTIONS["full_vcpu_memory_mb"]) / memory_mb)


def meets_goals(inputs: ReportInputs, config: ScaleConfig) -> dict[str, bool]:
    measured = measured_for(inputs, config.previews)
    ms = api_request_ms(measured, config.api_memory_mb)
    return {
        "api_ms": max(ms.values()) <= LATENCY_GOALS["api_ms"],
        "cold_ms": cold_start_ms(measured, config.api_memory_mb) <= LATENCY_GOALS["cold_ms"],
        "worker_ms": worker_ms(measured) <= LATENCY_GOALS["worker_ms"],
    }


def compared_configs() -> list[ScaleConfig]:
    """Every API memory with today's choices, then each other choice at today's memory."""
    configs = [ScaleConfig(api_memory_mb=memory) for memory in API_MEMORY_CHOICES]
    configs += [ScaleConfig(dynamodb="provisioned"), ScaleConfig(previews="s3")]
    return configs


def cheapest_meeting_goals(inputs: ReportInputs) -> ScaleConfig:
    """The cheapest combination of choices whose latency meets LATENCY_GOALS."""
    candidates = [
        ScaleConfig(memory, dynamodb, previews)
        for memory in API_MEMORY_CHOICES
        for dynamodb in ("on-demand", "provisioned")
        for previews in ("cloudfront", "s3")
    ]
    meeting = [c for c in candidates if all(meets_goals(inputs, c).values())]
    if not meeting:
        raise ValueError("no configuration meets the latency goals")
    return min(meeting, key=lambda c: sum(scale_cost(inputs, c).values()))


# --- docs/PERFORMANCE.md's figures -------------------------------------------------------------------------------

PERFORMANCE_REPORT = Path(__file__).resolve().parent.parent / "docs" / "PERFORMANCE.md"
_RUN_THE_BENCH = "run `python -m bench` (the whole bench writes every section the model reads)"


def _sections(text: str) -> dict[str, str]:
    """The report's `## N. Title` sections by number ("2", "3", ...)."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        number = chunk.split(".", 1)[0]
        if number.isdigit():
            found[number] = chunk
    return found


def _rows(section: str) -> list[list[str]]:
    """A section's table rows as cells (bold marks dropped)."""
    return [
        [cell.strip().strip("*") for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
    ]


def _number(cell: str, what: str) -> float:
    try:
        return float(cell.replace(",", ""))
    except ValueError:
        raise ReportError(f"docs/PERFORMANCE.md: {what} is {cell!r}, not a number; {_RUN_THE_BENCH}") from None


def _section(sections: dict[str, str], number: str) -> str:
    if number not in sections:
        raise ReportError(f"docs/PERFORMANCE.md has no section {number}; {_RUN_THE_BENCH}")
    return sections[number]


def _row(rows: list[list[str]], first: str, where: str, column: int = 0, value: str | None = None) -> list[str]:
    for row in rows:
        if row[0] == first and (value is None or (len(row) > column and row[column] == value)):
            return row
    raise ReportError(f"docs/PERFORMANCE.md has no row {first!r} in {where}; {_RUN_THE_BENCH}")


def report_inputs(text: str) -> ReportInputs:
    """Section 6's Measured rebuilt from the report: warm CPU per route (section 2), AWS calls and capacity units
    (section 3), cold-start and worker CPU as section 6 states them, and the previews' sizes (section 10's medians
    of today's JPEG q82 previews; section 6 itself prints no size)."""
    sections = _sections(text)
    warm = _rows(_section(sections, "2"))
    trips = _rows(_section(sections, "3"))
    list_row = next((row for row in warm if row[0].startswith("GET /photos?")), None)
    if list_row is None:
        raise ReportError(f"docs/PERFORMANCE.md has no list route in section 2; {_RUN_THE_BENCH}")
    cpu_us = {
        "GET /photos": _number(list_row[1], "the list route's warm CPU"),
        "GET /photos/{id}": _number(_row(warm, "GET /photos/{id}", "section 2")[1], "GET /photos/{id}'s warm CPU"),
        "POST /photos": _number(_row(warm, "POST /photos", "section 2")[1], "POST /photos' warm CPU"),
    }
    # Section 3's columns: operation, calls, total, minimum, above it by design, RRU, WRU, URLs signed.
    operations = {name: _row(trips, name, "section 3") for name in (*cpu_us, "upload worker")}
    costs = _section(sections, "6")
    cold = re.search(r"cold-start CPU \(([\d,.]+) ms", costs)
    worker = re.search(r"preview CPU for a 24 MP JPEG \(([\d,.]+) ms\)", costs)
    if cold is None or worker is None:
        raise ReportError(f"docs/PERFORMANCE.md's section 6 states no cold-start or worker CPU; {_RUN_THE_BENCH}")
    formats = _rows(_section(sections, "10"))
    small = _row(formats, "256 px", "section 10", 1, "JPEG q82 (today)")
    large = _row(formats, "1024 px", "section 10", 1, "JPEG q82 (today)")
    small_bytes = _number(small[5], "the 256 px preview's KB") * 1024
    large_bytes = _number(large[5], "the 1024 px preview's KB") * 1024
    media = _rows(_section(sections, "9"))
    # "745 (43%)": the median, then its spread or range.
    list_cpu = _row(media, "GET /photos?limit=10", "section 9's list route table")
    cdn_list, s3_list = (_number(cell.split(" ")[0], "the list route's CPU") for cell in list_cpu[1:3])
    presign = _row(media, "S3 presigning path (`S3Media`), owner list of 100", "section 9's signing table")
    cdn_url = _row(media, "(a) CDN, owner list of 100, memo warm", "section 9's signing table")
    measured = Measured(
        api_cpu_ms={route: us / 1000 for route, us in cpu_us.items()},
        api_calls={route: int(_number(operations[route][2], f"{route}'s calls")) for route in cpu_us},
        rru={
            name: _number(operations[name][5], f"{name}'s RRU")
            for name in ("GET /photos", "GET /photos/{id}", "upload worker")
        },
        wru={name: _number(operations[name][6], f"{name}'s WRU") for name in ("POST /photos", "upload worker")},
        cold_start_ms=_number(cold.group(1), "the cold-start CPU"),
        worker_cpu_ms=_number(worker.group(1), "the worker's CPU"),
        worker_calls=int(_number(operations["upload worker"][2], "the worker's calls")),
        preview_bytes=round(small_bytes + large_bytes),
    )
    return ReportInputs(
        measured,
        small_bytes,
        large_bytes,
        cdn_list_ratio=cdn_list / s3_list,
        presign_us=_number(presign[2].split(" ")[0], "a presigned URL's CPU"),
        cdn_url_us=_number(cdn_url[2].split(" ")[0], "a CDN URL's CPU"),
        urls_per_photo_get=int(_number(operations["GET /photos/{id}"][7], "GET /photos/{id}'s URLs")),
    )


# --- The load each limit sees at the target ---------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """One limit on the path: the load the target puts on it, its default value and where that is written."""

    name: str
    load: float
    unit: str
    default: float
    source: str
    change: str

    @property
    def headroom(self) -> float:
        return self.default / self.load if self.load else math.inf


def peak_rates(inputs: ReportInputs, config: ScaleConfig) -> dict[str, float]:
    """Per-second rates at the peak, from the target, SCALE_ASSUMPTIONS and the measured per-operation figures."""
    t, s, m = SCALE_TARGET, SCALE_ASSUMPTIONS, inputs.measured
    uploads = t["peak_uploads_per_second"]
    reads = t["peak_api_requests_per_second"] - uploads
    mix = ASSUMPTIONS["mix"]
    clients = t["peak_api_requests_per_second"] / s["api_requests_per_client_second"]
    signins = clients / (s["session_minutes"] * 60)
    refreshes = clients / s["token_lifetime_seconds"]
    pings = clients / s["ping_every_seconds"]
    fetches = preview_fetches(reads, config.previews)
    preview_bytes = fetches["small"] * inputs.small_preview_bytes + fetches["large"] * inputs.large_preview_bytes
    return {
        "reads": reads,
        "uploads": uploads,
        "list": reads * mix["GET /photos"],
        "clients": clients,
        "signins": signins,
        "refreshes": refreshes,
        # A tab connects when it opens and again with each new token (the socket follows the token: web/app.js).
        "ws_connects": signins + refreshes,
        "ws_frames_in": pings,
        # Pushes to the owners' sockets and the pongs: calls to the @connections (callback) API.
        "ws_callbacks": uploads * s["sockets_per_uploader"] + pings,
        "wru": uploads * (m.wru["POST /photos"] + m.wru["upload worker"]),
        "rru": sum(reads * mix[r] * m.rru[r] for r in mix) + uploads * m.rru["upload worker"],
        "preview_requests": fetches["small"] + fetches["large"],
        "preview_gbps": preview_bytes * 8 / 1e9,
    }


def limits(inputs: ReportInputs, config: ScaleConfig) -> list[Limit]:
    """Every limit on the path at the target, for `config`'s API memory. Sources are AWS's own pages (titles as
    published) or this repository's settings."""
    r, s = peak_rates(inputs, config), SCALE_ASSUMPTIONS
    busy = peak_concurrency(inputs, config)
    api_up_seconds = busy["api"] / 100  # 1,000 environments per 10 s
    worker_cap = s["worker_maximum_concurrency"]
    worker_ms_each = worker_ms(inputs.measured)  # the worker signs no URL: the same with either delivery
    rest = "Amazon API Gateway quotas"
    return [
        Limit(
            "API Gateway throttle per account and Region (REST + WebSocket + callbacks)",
            SCALE_TARGET["peak_api_requests_per_second"] + r["ws_connects"] + r["ws_frames_in"] + r["ws_callbacks"],
            "requests/s",
            10_000,
            f"{rest}: 10,000 RPS, burst bucket 5,000, adjustable (L-8A5B8E43); the burst is set by AWS from the RPS",
            "quota increase",
        ),
        Limit(
            "API stage throttle per method (prod), busiest method GET /photos",
            r["list"],
            "requests/s",
            200,
            "infra/package.py THROTTLING: prod 200 rps, burst 400, per method, shared by every caller",
            "raise THROTTLING['prod'] to the launch peak × headroom (keep the share-link caps)",
        ),
        Limit(
            "WebSocket new connections per account and Region",
            r["ws_connects"],
            "connections/s",
            500,
            "Quotas for configuring and running a WebSocket in API Gateway: 500, adjustable (L-9ED1E49A)",
            "quota increase; the WebSocket stage's route throttle (same 200/400) too",
        ),
        Limit(
            "Lambda concurrent executions per account and Region (API + worker)",
            busy["api"] + busy["worker"],
            "environments",
            1_000,
            "Configuring scaling behavior for SQS event source mappings: the account's default concurrency quota "
            "is 1,000 (new accounts may start lower), adjustable; Configuring reserved concurrency: reserve at most "
            "the unreserved concurrency minus 100",
            "quota increase; reserve the API's share (ApiReservedConcurrency)",
        ),
        Limit(
            "Lambda scaling rate per function: API environments to add from none (at most 1,000 per 10 s)",
            busy["api"],
            "environments",
            1_000,
            "Lambda scaling behavior: 1,000 execution environments every 10 s per function (10,000 RPS per 10 s), "
            "not adjustable",
            f"none at this peak ({api_up_seconds:.0f} s from none); a sharper step needs traffic ramped up",
        ),
        Limit(
            "SQS event source: worker environments needed vs the maximum one mapping invokes",
            busy["worker"],
            "environments",
            worker_cap,
            "ScalingConfig MaximumConcurrency: 2–1,000; standard mode scales by up to 300 instances a minute to "
            "1,000 batches (Configuring scaling behavior for SQS event source mappings)",
            f"the stack's default is 200 (WorkerMaximumConcurrency); at 1,000 the worker settles "
            f"{worker_cap / worker_ms_each * 1000:,.0f} uploads/s: provisioned mode (WorkerMaximumPollers) or a faster "
            "worker, or accept a backlog at the peak",
        ),
        Limit(
            "DynamoDB on-demand table write throughput (table + its GSIs share the account quota)",
            r["wru"],
            "WRU/s",
            40_000,
            "DynamoDB maximum throughput for on-demand tables: 40,000 table-level read and write quota, adjustable",
            "quota increase (table-level write throughput)",
        ),
        Limit(
            "DynamoDB on-demand table read throughput",
            r["rru"],
            "RRU/s",
            40_000,
            "as above",
            "quota increase (table-level read throughput)",
        ),
        Limit(
            "DynamoDB new on-demand table, writes served at once (warm throughput)",
            r["wru"],
            "WRU/s",
            4_000,
            "Pre-warming a table for on-demand capacity mode: a new table sustains 4,000 writes/s and 12,000 reads/s, "
            "then up to twice its previous peak within 30 minutes; Understanding DynamoDB warm throughput",
            "pre-warm (UpdateTable WarmThroughput) to the peak before launch",
        ),
        Limit(
            "DynamoDB new on-demand table, reads served at once (warm throughput)",
            r["rru"],
            "RRU/s",
            12_000,
            "as above",
            "pre-warm reads too",
        ),
        Limit(
            "S3 PUT/POST/DELETE per partitioned prefix: uploads/ (the browser's POST + the worker's delete)",
            2 * r["uploads"],
            "requests/s",
            3_500,
            "Amazon S3 performance guidelines: at least 3,500 PUT/COPY/POST/DELETE and 5,500 GET/HEAD per second per "
            "partitioned prefix; 503 Slow Down while S3 scales",
            "none: S3 partitions on the key's characters after the folder (a random user id); ramp up, retry 503s",
        ),
        Limit(
            "S3 PUT per partitioned prefix: previews/ (two per upload)",
            2 * r["uploads"],
            "requests/s",
            3_500,
            "as above",
            "as above",
        ),
        Limit(
            "S3 GET/HEAD per partitioned prefix: uploads/ (the worker's HEAD and GET)",
            2 * r["uploads"],
            "requests/s",
            5_500,
            "as above",
            "as above",
        ),
        Limit(
            "Cognito UserAuthentication (InitiateAuth: sign-ins and refreshes)",
            r["signins"] + r["refreshes"],
            "requests/s",
            120,
            "Quotas in Amazon Cognito: category UserAuthentication, adjustable (buy capacity in Service Quotas); "
            "figure from the category table, confirm in Service Quotas",
            "quota increase (paid), or fewer sign-ins: keep the refresh token across tabs",
        ),
        Limit(
            "CloudFront requests per distribution (previews; the SPA's files too)",
            r["preview_requests"],
            "requests/s",
            250_000,
            "CloudFront Quotas: 250,000 requests per second per distribution, adjustable",
            "quota increase, or a distribution of its own for media",
        ),
        Limit(
            "CloudFront data transfer rate per distribution",
            r["preview_gbps"],
            "Gbps",
            150,
            "CloudFront Quotas: 150 Gbps per distribution, adjustable",
            "none",
        ),
        Limit(
            "Secrets Manager GetSecretValue (2 per new API environment, at the fastest scaling)",
            2 * 100,
            "requests/s",
            10_000,
            "AWS Secrets Manager quotas: GetSecretValue and DescribeSecret 10,000 per second",
            "none",
        ),
    ]


# --- Rendering ----------------------------------------------------------------------------------------------------


def _usd(value: float) -> str:
    return f"${value:,.0f}"


def _cell(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def binding_goal(inputs: ReportInputs, best: ScaleConfig) -> str:
    """Which goal stops the next smaller API memory (the cheaper one), in words."""
    smaller = [memory for memory in API_MEMORY_CHOICES if memory < best.api_memory_mb]
    if not smaller:
        return "no goal binds the API's memory: the smallest size meets them all"
    below = replace(best, api_memory_mb=smaller[-1])
    measured = measured_for(inputs, below.previews)
    figures = {
        "api_ms": f"its slowest route is billed {max(api_request_ms(measured, below.api_memory_mb).values()):,.0f} ms",
        "cold_ms": f"a cold start waits {cold_start_ms(measured, below.api_memory_mb):,.0f} ms",
        "worker_ms": f"the worker takes {worker_ms(measured):,.0f} ms",
    }
    missed = [goal for goal, met in meets_goals(inputs, below).items() if not met]
    names = " and ".join(f"the {GOAL_NAMES[goal]} goal" for goal in missed)
    return f"{names} binds: at {below.api_memory_mb} MB " + "; ".join(
        f"{figures[goal]}, over {LATENCY_GOALS[goal]:,.0f} ms" for goal in missed
    )


def render_scale(inputs: ReportInputs) -> str:
    """SCALE.md's generated part: the month's volumes, the configurations compared, the cheapest meeting the goals
    with its line items, and the limits table."""
    from bench.common import table

    m, s, t = inputs.measured, SCALE_ASSUMPTIONS, SCALE_TARGET
    volumes = month_volumes()
    configs = compared_configs()
    best = cheapest_meeting_goals(inputs)
    today = ScaleConfig()
    rows = []
    for config in configs:
        measured = measured_for(inputs, config.previews)
        missed = [goal for goal, met in meets_goals(inputs, config).items() if not met]
        rows.append(
            (
                config.label(),
                _usd(sum(scale_cost(inputs, config).values())),
                _cell(api_request_ms(measured, config.api_memory_mb)["GET /photos"]),
                _cell(cold_start_ms(measured, config.api_memory_mb)),
                _cell(peak_concurrency(inputs, config)["api"]),
                "met" if not missed else "**missed**: " + ", ".join(GOAL_NAMES[goal] for goal in missed),
            )
        )
    best_items = scale_cost(inputs, best)
    item_rows = [(name, _usd(value)) for name, value in best_items.items()]
    item_rows.append(("**total**", f"**{_usd(sum(best_items.values()))}**"))
    limit_rows = [
        (
            limit.name,
            f"{_cell(limit.load)} {limit.unit}",
            f"{math.ceil(limit.load * s['headroom']):,}",
            f"{limit.default:,.0f}",
            "∞" if limit.headroom == math.inf else f"{limit.headroom:.2f}×",
            limit.source,
            limit.change,
        )
        for limit in limits(inputs, best)
    ]
    per_user = volumes["uploads"] / t["users"]
    return "\n".join(
        [
            f"Generated by `python -m bench.cost --scale --write` from docs/PERFORMANCE.md's measured inputs (warm "
            f"CPU {m.api_cpu_ms['GET /photos']:.2f} / {m.api_cpu_ms['GET /photos/{id}']:.2f} / "
            f"{m.api_cpu_ms['POST /photos']:.2f} ms for GET /photos, GET /photos/{{id}}, POST /photos; "
            f"{m.wru['POST /photos']:.1f} + {m.wru['upload worker']:.1f} WRU per upload; worker CPU "
            f"{m.worker_cpu_ms:.0f} ms; cold start {m.cold_start_ms:.0f} ms), bench/cost.py's PRICES, ASSUMPTIONS, "
            f"SCALE_PRICES and SCALE_ASSUMPTIONS (prices as of {PRICES_AS_OF}). Do not edit by hand.",
            "",
            f"**The month.** Peaks of {t['peak_api_requests_per_second']:,.0f} API requests/s (of which "
            f"{t['peak_uploads_per_second']:,.0f} POST /photos) at {s['api_peak_to_average']:g}× the mean for API "
            f"reads and {s['upload_peak_to_average']:g}× for uploads give {volumes['api_requests'] / 1e9:,.2f} billion "
            f"read requests and {volumes['uploads'] / 1e9:,.2f} billion uploads in "
            f"{s['seconds_per_month'] / 86400:.0f} days ({per_user:,.0f} uploads per user of {t['users']:,.0f}).",
            "",
            table(
                [
                    "configuration",
                    "USD / month",
                    "GET /photos, billed ms",
                    "cold start, ms",
                    "API environments at the peak",
                    "latency goals",
                ],
                rows,
            ),
            "",
            "Latency goals (LATENCY_GOALS): every modelled route billed ≤ "
            f"{LATENCY_GOALS['api_ms']:,.0f} ms warm; a cold start (INIT's CPU at the memory's CPU share) ≤ "
            f"{LATENCY_GOALS['cold_ms']:,.0f} ms; the worker ≤ {LATENCY_GOALS['worker_ms']:,.0f} ms per upload.",
            "",
            f"**Cheapest meeting the goals: {best.label()}** ({binding_goal(inputs, best)}; the worker is billed "
            f"{worker_ms(m):,.0f} ms per upload against {LATENCY_GOALS['worker_ms']:,.0f} ms). Against today's "
            f"settings ({today.label()}): {_usd(sum(scale_cost(inputs, today).values()))} a month.",
            "",
            table(["line item (cheapest configuration)", "USD / month"], item_rows),
            "",
            f"### Limits at the target (API at {best.api_memory_mb} MB)",
            "",
            table(
                [
                    "limit",
                    "load at the peak",
                    f"× {s['headroom']:g} (to ask for)",
                    "default",
                    "headroom",
                    "source",
                    "what to raise or change",
                ],
                limit_rows,
            ),
        ]
    )


SCALE_DOC = PERFORMANCE_REPORT.with_name("SCALE.md")
BEGIN_MARK = "<!-- bench/cost.py --scale: generated from here -->"
END_MARK = "<!-- bench/cost.py --scale: generated up to here -->"


def with_generated(doc: str, generated: str) -> str:
    """`doc` with the text between its two marks replaced by `generated`."""
    start, end = doc.find(BEGIN_MARK), doc.find(END_MARK)
    if start < 0 or end < start:
        raise ReportError(f"{SCALE_DOC.name} has no generated block (the marks {BEGIN_MARK!r} … {END_MARK!r})")
    return doc[: start + len(BEGIN_MARK)] + "\n" + generated + "\n" + doc[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cost", description="Issue 17's cost and capacity at scale, from docs/PERFORMANCE.md"
    )
    parser.add_argument("--scale", action="store_true", help="the month at docs/SCALE.md's target (required)")
    parser.add_argument("--write", action="store_true", help="write the tables into docs/SCALE.md's generated block")
    parser.add_argument("--report", type=Path, default=PERFORMANCE_REPORT, help="the bench report to read")
    args = parser.parse_args(argv)
    if not args.scale:
        parser.error("only --scale is available (section 6 is written by `python -m bench`)")
    try:
        generated = render_scale(report_inputs(args.report.read_text()))
        if args.write:
            SCALE_DOC.write_text(with_generated(SCALE_DOC.read_text(), generated))
            print(f"wrote {SCALE_DOC}", file=sys.stderr)
        else:
            print(generated)
    except (OSError, ReportError) as e:
        print(f"bench.cost: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
