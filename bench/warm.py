"""Section 2: CPU per warm request through each framework's real Lambda entry point, AWS answered by Stubber.

`python -m bench.warm --framework photosky|powertools|fastapi --requests N` is the child: one fresh process per
framework and repetition. DynamoDB and S3 are botocore `Stubber`s attached to the clients chalicelib.deps builds
(the peers use the same service layer, so the same calls): request serialisation and presigning run for real,
nothing goes on the network, and every queued response must be consumed (same calls everywhere).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench import common
from bench.events import LambdaContext, api_gateway_event

FRAMEWORKS = {
    "photosky": "PhotoSky (Chalice)",
    "powertools": "Powertools REST resolver",
    "fastapi": "FastAPI + Mangum",
}
PEERS = ("powertools", "fastapi")
OWNER = "5f0c7a52-8f1e-4d0b-9a53-2c1f4e6b7d10"
LIST_PAGE = 10


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    resource: str
    status: int
    path_parameters: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    dynamodb: tuple[str, ...] = ()  # operations each request makes, answered by the stub in this order
    items: int = LIST_PAGE + 1  # photos the stub's Query answers with (a page and one more: a next cursor)


def routes(photo_id: str) -> list[Route]:
    return [
        Route("GET /health", "GET", "/health", 200),
        Route(
            f"GET /photos?limit={LIST_PAGE}",
            "GET",
            "/photos",
            200,
            query={"limit": str(LIST_PAGE)},
            dynamodb=("query",),
        ),
        Route(
            "GET /photos/{id}",
            "GET",
            "/photos/{photo_id}",
            200,
            path_parameters={"photo_id": photo_id},
            dynamodb=("get_item",),
        ),
        Route(
            "POST /photos",
            "POST",
            "/photos",
            201,
            body={
                "filename": "IMG_2041.jpg",
                "content_type": "image/jpeg",
                "size_bytes": 4_718_592,
                "title": "Harbour at dusk",
                "tags": ["Holiday", "sea", "  Boats "],
            },
            # The caller's write-rate token (chalicelib.ratelimit: one UpdateItem on its RATE# counter), then the
            # transaction that stores the photo, its tag copies and the quota reservation.
            dynamodb=("update_item", "transact_write_items"),
        ),
    ]


def ready_photo_items(count: int) -> list[dict[str, Any]]:
    """DynamoDB items of READY photos, written by the repository's own item builder (the stored shape)."""
    from chalicelib.ids import new_ulid
    from chalicelib.photos.models import Photo, PhotoStatus
    from chalicelib.photos.repository import _photo_item

    items = []
    for index in range(count):
        photo = Photo(
            photo_id=new_ulid(),
            owner_id=OWNER,
            status=PhotoStatus.READY,
            filename=f"IMG_{2000 + index}.jpg",
            content_type="image/jpeg",
            size_bytes=4_718_592,
            created_at="2026-11-20T09:15:02.118Z",
            updated_at="2026-11-20T09:15:03.402Z",
            upload_expires_at="2026-11-20T09:30:02.118Z",
            title=f"Photo {index}",
            description="A walk along the harbour",
            tags=("holiday", "sea"),
            width=6000,
            height=4000,
            taken_at="2026-11-19T17:42:10.000Z",
        )
        items.append(_photo_item(photo))
    return items


def stub_response(operation: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    if operation == "query":
        return {"Items": items, "Count": len(items), "ScannedCount": len(items)}
    if operation == "get_item":
        return {"Item": items[0]}
    if operation in ("update_item", "transact_write_items"):
        return {}  # the rate counter's update asks for no ReturnValues; a transaction answers nothing on success
    raise ValueError(operation)


def load_handler(framework: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    if framework == "photosky":
        from app import app

        return app
    if framework == "powertools":
        from bench.peers.powertools_app import handler

        return handler
    if framework == "fastapi":
        from bench.peers.fastapi_app import handler as mangum_handler

        return mangum_handler
    raise ValueError(f"unknown framework {framework!r}")


def response_shape(body: Any) -> Any:
    """Keys (recursively) and value types, not values: what 'same response shape' compares."""
    if isinstance(body, dict):
        return {key: response_shape(value) for key, value in sorted(body.items())}
    if isinstance(body, list):
        return [response_shape(body[0])] if body else []
    return type(body).__name__


def _child(framework: str, requests: int, warmup: int, profile_route: str | None) -> dict[str, Any]:
    common.apply_lambda_environment()
    results = run_routes(framework, routes, requests=requests, warmup=warmup, profile_route=profile_route)
    for entry in results["routes"].values():
        del entry["body"]  # (checked by the media section; here only its shape is compared)
    return results


def run_routes(
    framework: str,
    make_routes: Callable[[str], list[Route]],
    *,
    requests: int | Mapping[str, int],
    warmup: int | Mapping[str, int],
    profile_route: str | None = None,
) -> dict[str, Any]:
    """CPU per request of each route (`make_routes(photo_id)`) through `framework`'s handler, in this process
    (whose environment the caller has set). `requests` and `warmup` may differ per route name."""
    from botocore.stub import Stubber

    from chalicelib import deps

    handler = load_handler(framework)
    dynamodb, s3 = deps.dynamodb(), deps.s3()
    stub = Stubber(dynamodb)
    s3_stub = Stubber(s3)  # nothing queued: any S3 call would fail the run (presigning makes none)
    stub.activate()
    s3_stub.activate()
    first_items = ready_photo_items(1)
    planned = make_routes(first_items[0]["photo_id"]["S"])
    items = first_items + ready_photo_items(max(route.items for route in planned) - 1)
    context = LambdaContext()
    real_stdout = sys.stdout
    results: dict[str, Any] = {"framework": framework, "routes": {}}
    for route in planned:
        measured = requests if isinstance(requests, int) else requests[route.name]
        warm_up = warmup if isinstance(warmup, int) else warmup[route.name]
        total = warm_up + measured
        for _ in range(total):
            for operation in route.dynamodb:
                stub.add_response(operation, stub_response(operation, items[: route.items]))
        events = [
            api_gateway_event(
                route.method,
                route.resource,
                sub=OWNER,
                path_parameters=route.path_parameters or None,
                query=route.query or None,
                body=route.body,
            )
            for _ in range(total)
        ]
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the request log lines, for every framework alike
        try:
            first = handler(events[0], context)
            for event in events[1:warm_up]:
                handler(event, context)
            profiler = cProfile.Profile() if profile_route == route.name else None
            if profiler:
                profiler.enable()
            started = time.process_time()
            for event in events[warm_up:]:
                response = handler(event, context)
            cpu = time.process_time() - started
            if profiler:
                profiler.disable()
        finally:
            sys.stdout.close()
            sys.stdout = real_stdout
        stub.assert_no_pending_responses()
        if first["statusCode"] != route.status or response["statusCode"] != route.status:
            raise AssertionError(f"{framework} {route.name}: {first['statusCode']} {first.get('body')}")
        entry: dict[str, Any] = {
            "us_per_request": cpu / measured * 1e6,
            "shape": response_shape(json.loads(first["body"])),
            "body": first["body"],  # the first response, for callers that check what it holds
        }
        if profiler:
            entry["profile"] = profile_breakdown(profiler)
        results["routes"][route.name] = entry
    return results


def area(filename: str) -> str:
    """Which layer a function belongs to, from its file."""
    path = filename.replace("\\", "/")
    for marker, name in (
        ("/botocore/", "botocore (serialise, sign, presign)"),
        ("/chalice/", "chalice (routing, request/response)"),
        ("/chalicelib/", "PhotoSky code (chalicelib)"),
        ("/app.py", "PhotoSky code (chalicelib)"),
        ("/pydantic", "pydantic"),
        ("/aws_lambda_powertools/", "powertools"),
        ("/fastapi/", "fastapi/starlette"),
        ("/starlette/", "fastapi/starlette"),
        ("/mangum/", "mangum"),
        ("/json/", "json (stdlib)"),
        ("/urllib/", "urllib (stdlib)"),
        ("/hmac.py", "hmac/hashlib (stdlib)"),
        ("/datetime.py", "datetime (stdlib)"),
        ("/uuid.py", "uuid (stdlib)"),
    ):
        if marker in path:
            return name
    if path.startswith("~") or path == "<built-in>":
        return "builtins (C)"
    return "other stdlib"


def profile_breakdown(profiler: cProfile.Profile) -> dict[str, Any]:
    stats = pstats.Stats(profiler)
    by_area: dict[str, float] = {}
    functions: list[tuple[float, str]] = []
    total = 0.0
    for (filename, line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        by_area[area(filename)] = by_area.get(area(filename), 0.0) + tottime
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        functions.append((tottime, f"{short}:{line} {name}"))
    functions.sort(reverse=True)
    return {
        "areas": {name: seconds / total for name, seconds in sorted(by_area.items(), key=lambda kv: -kv[1])},
        "top": [(label, seconds / total) for seconds, label in functions[:8]],
    }


# --- parent ----------------------------------------------------------------------------------------------------


def measure(*, repetitions: int, requests: int, warmup: int, log: Callable[[str], None]) -> dict[str, Any]:
    per: dict[str, dict[str, list[float]]] = {fw: {} for fw in FRAMEWORKS}
    shapes: dict[str, dict[str, Any]] = {}
    env = common.lambda_environment({"PYTHONPATH": str(common.PROJECT_DIR)})
    for framework in common.interleaved(list(FRAMEWORKS), repetitions):
        run = common.run_fresh(
            [
                common.python(),
                "-m",
                "bench.warm",
                "--framework",
                framework,
                "--requests",
                str(requests),
                "--warmup",
                str(warmup),
            ],
            env=env,
            timeout=300,
        )
        result = common.last_json_line(run.stdout)
        for route, entry in result["routes"].items():
            per[framework].setdefault(route, []).append(entry["us_per_request"])
            shapes.setdefault(route, {})[framework] = entry["shape"]
        log(f"  warm: {framework} done")
    profile_run = common.run_fresh(
        [
            common.python(),
            "-m",
            "bench.warm",
            "--framework",
            "photosky",
            "--requests",
            str(requests),
            "--warmup",
            str(warmup),
            "--profile",
            f"GET /photos?limit={LIST_PAGE}",
        ],
        env=env,
        timeout=300,
    )
    profiled = common.last_json_line(profile_run.stdout)["routes"][f"GET /photos?limit={LIST_PAGE}"]["profile"]
    medians = {fw: {route: common.median(values) for route, values in routes_.items()} for fw, routes_ in per.items()}
    return {
        "repetitions": repetitions,
        "requests": requests,
        "medians_us": medians,
        "samples_us": per,
        "same_shape": {
            route: len({json.dumps(s, sort_keys=True) for s in by.values()}) == 1 for route, by in shapes.items()
        },
        "profile": profiled,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one warm-request measurement (a child of python -m bench)")
    parser.add_argument("--framework", choices=list(FRAMEWORKS), required=True)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--profile", help="route name to profile with cProfile")
    args = parser.parse_args(argv)
    result = _child(args.framework, args.requests, args.warmup, args.profile)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
