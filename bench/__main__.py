"""`python -m bench [--quick]` (`make bench`): every PhotoSky benchmark in one run, printed and written to
docs/PERFORMANCE.md with the machine and versions. Figures are medians of fresh processes and ratios measured
in the same run; nothing here asserts a time."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common, cost, report

DEFAULT_OUTPUT = common.PROJECT_DIR / "docs" / "PERFORMANCE.md"
SECTIONS = ("coldstart", "warm", "roundtrips", "previews", "devstack")


@dataclass(frozen=True)
class Settings:
    cold_repetitions: int
    warm_repetitions: int
    warm_requests: int
    warm_warmup: int
    preview_repetitions: int
    read_levels: tuple[int, ...]
    seconds_per_level: float
    upload_clients: int
    upload_seconds: float
    max_uploads: int


FULL = Settings(7, 5, 200, 30, 3, (1, 4, 16), 15.0, 4, 20.0, 60)
QUICK = Settings(2, 2, 40, 10, 1, (1, 4, 16), 3.0, 4, 5.0, 12)

VERSIONED = (
    "chalice",
    "boto3",
    "botocore",
    "moto",
    "pillow",
    "pillow-heif",
    "pyvips",
    "pyvips-binary",
    "aws-lambda-powertools",
    "fastapi",
    "starlette",
    "mangum",
    "pydantic",
)


def versions() -> dict[str, str]:
    found = {name: common.package_version(name) or "not installed" for name in VERSIONED}
    try:
        import pyvips

        found["libvips"] = f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
    except (ImportError, OSError):
        found["libvips"] = "not available"
    return found


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(settings: Settings, sections: tuple[str, ...], *, quick: bool) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": common.machine_description(),
        "versions": versions(),
        "settings": settings,
        "quick": quick,
        "timings": {},
    }
    for section in sections:
        section_started = time.monotonic()
        log(f"[bench] {section} ...")
        if section == "coldstart":
            from bench import coldstart

            results[section] = coldstart.measure(repetitions=settings.cold_repetitions, log=log)
        elif section == "warm":
            from bench import warm

            results[section] = warm.measure(
                repetitions=settings.warm_repetitions,
                requests=settings.warm_requests,
                warmup=settings.warm_warmup,
                log=log,
            )
        elif section == "roundtrips":
            from bench import roundtrips

            results[section] = roundtrips.measure(log=log)
        elif section == "previews":
            from bench import previews

            results[section] = previews.measure(repetitions=settings.preview_repetitions, log=log)
        elif section == "devstack":
            from bench import devstack_load

            results[section] = devstack_load.measure(
                levels=settings.read_levels,
                seconds_per_level=settings.seconds_per_level,
                upload_seconds=settings.upload_seconds,
                upload_clients=settings.upload_clients,
                max_uploads=settings.max_uploads,
                log=log,
            )
        results["timings"][section] = time.monotonic() - section_started
    if all(name in results for name in ("coldstart", "warm", "roundtrips", "previews")):
        results["cost"] = cost_section(results)
    results["machine"]["load_at_end"] = common.machine_description()["load_at_start"]
    results["total_seconds"] = time.monotonic() - started
    return results


def cost_section(results: dict[str, Any]) -> dict[str, Any]:
    photosky = results["warm"]["medians_us"]["photosky"]
    operations = results["roundtrips"]["operations"]
    list_route = next(route for route in photosky if route.startswith("GET /photos?"))
    jpeg = results["previews"]["images"]["jpeg"]["methods"]["photosky"]
    measured = cost.Measured(
        api_cpu_ms={
            "GET /photos": photosky[list_route] / 1000,
            "GET /photos/{id}": photosky["GET /photos/{id}"] / 1000,
            "POST /photos": photosky["POST /photos"] / 1000,
        },
        api_calls={
            route: sum(operations[route]["calls"].values())
            for route in ("GET /photos", "GET /photos/{id}", "POST /photos")
        },
        rru={route: operations[route]["rru"] for route in ("GET /photos", "GET /photos/{id}", "upload worker")},
        wru={route: operations[route]["wru"] for route in ("POST /photos", "upload worker")},
        cold_start_ms=results["coldstart"]["states"]["package.py"]["photosky"]["cpu_ms"],
        worker_cpu_ms=jpeg["cpu_ms"],
        worker_calls=sum(operations["upload worker"]["calls"].values()),
        preview_bytes=sum(size for _w, _h, size in jpeg["previews"]),
    )
    scenarios = {}
    for memory in cost.ASSUMPTIONS["api_memory_mb"]:
        scenarios[memory] = {
            "items": cost.monthly_cost(measured, memory),
            "request_ms": cost.api_request_ms(measured, memory),
        }
    return {"measured": measured, "scenarios": scenarios}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions and short load levels (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections (no report written)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the report")
    parser.add_argument("--no-write", action="store_true", help="print the report without writing it")
    args = parser.parse_args(argv)
    sections = tuple(args.only) if args.only else SECTIONS
    results = run(QUICK if args.quick else FULL, sections, quick=args.quick)
    text = report.render(results)
    print(text)
    if not args.no_write and not args.only:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        log(f"[bench] wrote {args.output} ({results['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
