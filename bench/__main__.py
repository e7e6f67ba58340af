"""`python -m bench [--quick]` (`make bench`): every PhotoSky benchmark in one run, printed and written to
docs/PERFORMANCE.md with the machine and versions. Figures are medians of fresh processes and ratios measured
in the same run; nothing here asserts a time."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common, cost, report

DEFAULT_OUTPUT = common.PROJECT_DIR / "docs" / "PERFORMANCE.md"
SECTIONS = (
    "coldstart",
    "warm",
    "roundtrips",
    "albums",
    "library",
    "previews",
    "formats",
    "devstack",
    "media",
    "realtime",
)


@dataclass(frozen=True)
class Settings:
    cold_rounds: int  # paired rounds (bare, baseline, PhotoSky) per block, in the goal's bytecode state
    cold_max_blocks: int  # more blocks while the verdict is within the noise
    cold_other_rounds: int  # rounds in each of the other bytecode states
    cold_importtime_runs: int
    cold_instruction_repetitions: int  # valgrind runs per script (counts repeat exactly; >1 shows it)
    warm_repetitions: int
    warm_requests: int
    warm_warmup: int
    preview_repetitions: int
    read_levels: tuple[int, ...]
    seconds_per_level: float
    upload_clients: int
    upload_seconds: float
    max_uploads: int
    media_sign_processes: int  # fresh processes timing the ways of signing a URL (section 9)
    media_list_rounds: int  # warm owner lists of 100 timed in each of them
    media_cycles: int  # cycles of the four list-route variants (CDN / S3 presigned, PhotoSky / Powertools)
    # Section 11: rounds of uploads one at a time then a burst, each followed by the socket and by polling.
    realtime_rounds: int = 3


FULL = Settings(20, 3, 7, 5, 2, 5, 200, 30, 3, (1, 4, 16), 15.0, 4, 20.0, 60, 7, 100, 5)
QUICK = Settings(10, 2, 2, 3, 1, 2, 40, 10, 1, (1, 4, 16), 3.0, 4, 5.0, 12, 3, 20, 2, realtime_rounds=1)

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


def code_version() -> str:
    """The commit measured, and whether the code the cold start imports (app.py, chalicelib) differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=common.PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "app.py", "chalicelib"],  # noqa: S607
            cwd=common.PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "n/a"
    return f"{commit} + local changes" if changed else commit


def run(settings: Settings, sections: tuple[str, ...], *, quick: bool, label: str = "") -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": common.machine_description(),
        "versions": versions(),
        "settings": settings,
        "quick": quick,
        "complete": set(sections) == set(SECTIONS),
        "code": code_version(),
        "label": label,
        "timings": {},
    }
    for section in sections:
        section_started = time.monotonic()
        log(f"[bench] {section} ...")
        if section == "coldstart":
            from bench import coldstart

            results[section] = coldstart.measure(
                rounds=settings.cold_rounds,
                max_blocks=settings.cold_max_blocks,
                other_rounds=settings.cold_other_rounds,
                importtime_runs=settings.cold_importtime_runs,
                instruction_repetitions=settings.cold_instruction_repetitions,
                log=log,
            )
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
        elif section == "albums":
            from bench import albums

            results[section] = albums.measure(log=log)
        elif section == "library":
            from bench import library

            results[section] = library.measure(log=log)
        elif section == "previews":
            from bench import previews

            results[section] = previews.measure(repetitions=settings.preview_repetitions, log=log)
        elif section == "formats":
            from bench import formats

            results[section] = formats.measure(log=log)
        elif section == "media":
            from bench import media

            results[section] = media.measure(
                sign_processes=settings.media_sign_processes,
                list_rounds=settings.media_list_rounds,
                warm_cycles=settings.media_cycles,
                requests=settings.warm_requests,
                warmup=settings.warm_warmup,
                browser=True,
                log=log,
            )
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
        elif section == "realtime":
            from bench import realtime

            results[section] = realtime.measure(rounds=settings.realtime_rounds, log=log)
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
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        help=(
            "run only these sections (the report is not rewritten, except its cold-start parts by a cold-start run "
            "and sections 7, 8, 9 and 11 by an albums, library, media or realtime run, section 10 by a formats run)"
        ),
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the report")
    parser.add_argument("--no-write", action="store_true", help="print the report without writing it")
    parser.add_argument("--label", default="", help="a note for this run's row in the cold-start run log")
    args = parser.parse_args(argv)
    sections = tuple(args.only) if args.only else SECTIONS
    results = run(QUICK if args.quick else FULL, sections, quick=args.quick, label=args.label)
    previous = args.output.read_text() if args.output.exists() else None
    text = with_late_sections(report.render(results, previous), results)
    print(text)
    if args.no_write:
        return 0
    if not args.only:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        log(f"[bench] wrote {args.output} ({results['total_seconds']:.0f} s)")
        return 0
    if "coldstart" in results:
        # Every cold-start run is reported: a cold-start-only run replaces the report's cold-start parts (and adds
        # itself to their run log), leaving every other section as the whole run that wrote them left it.
        updated = report.with_cold_start(previous, results) if previous else None
        if updated is None:
            log(f"[bench] {args.output} has no cold-start section to replace: run the whole bench")
        else:
            args.output.write_text(updated)
            previous = updated
            log(f"[bench] replaced the cold-start parts of {args.output}")
    spliced = [name for name in report.SPLICED_SECTIONS if name in results]
    if spliced:
        # A run of the call-count sections alone writes them in place (each says so in its first paragraph).
        updated = report.with_sections(previous, results) if previous else None
        if updated is None:
            log(f"[bench] {args.output} has no place for {', '.join(spliced)}: run the whole bench")
        else:
            args.output.write_text(updated)
            previous = updated
            log(f"[bench] wrote {', '.join(spliced)} into {args.output}")
    if "formats" in results:
        # Like sections 7 and 8: a formats run writes section 10 in place and nothing else.
        updated = formats_section(previous, results) if previous else None
        if updated is None:
            log(f"[bench] {args.output} has no place for formats: run the whole bench")
        else:
            args.output.write_text(updated)
            log(f"[bench] wrote formats into {args.output}")
    return 0


def with_late_sections(text: str, results: dict[str, Any]) -> str:
    """The whole report with the sections `report.render` leaves out: 10, then 11 after it."""
    if "formats" in results:
        # Section 10 is rendered by bench/formats.py and put before the Analysis (bench/report.py does not know it).
        text = formats_section(text, results) or text
    if "realtime" in results:
        text = realtime_section(text, results) or text
    return text


def realtime_section(text: str, results: dict[str, Any]) -> str | None:
    """Section 11 spliced in after section 10 (which formats_section puts before the Analysis), the way a run of it
    alone writes it; only it: the other spliced sections are in `text` already."""
    others = set(report.SPLICED_SECTIONS) - {"realtime"}
    return report.with_sections(text, {key: value for key, value in results.items() if key not in others})


def formats_section(text: str, results: dict[str, Any]) -> str | None:
    from bench import formats

    return formats.with_section(text, formats.section(results))


if __name__ == "__main__":
    sys.exit(main())
