"""Section 6: monthly AWS cost of 1M API requests and 100k photo uploads, from this run's measurements.

PRICES and ASSUMPTIONS are inputs: edit them (nothing is fetched). Prices are AWS's public us-east-1 list prices
as known when this file was written; check them before relying on a figure. Free tiers are ignored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
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
