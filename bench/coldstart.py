"""Section 1: what a cold start costs, PhotoSky against `chalice` + the two boto3 clients alone.

Each figure is one fresh interpreter, accounted by its own CPU (user + system) and wall clock, minus a bare
interpreter measured in the same round. The machine is shared, so the goal's figure is taken pair by pair: every
round runs bare, baseline and PhotoSky back to back (baseline and PhotoSky alternate which goes first), the ratio is
taken within the round, and the verdict comes from the median of those ratios with a distribution-free 95%
confidence interval. A run whose interval straddles the goal is "within the noise": the bench runs another block of
rounds (pooled, every block reported) up to a limit. A second, load-independent measure counts the instructions
each script executes under valgrind (cachegrind without cache simulation); it is skipped when valgrind is absent.

Three bytecode states, made with PYTHONPYCACHEPREFIX so nothing in the checkout is touched:

- `package.py`: every module has unchecked-hash bytecode, as infra/package.py ships the zip (the goal's state);
- `chalice zip`: the standard library and the runtime's boto3/botocore have bytecode, but app.py, chalicelib and
  the bundled chalice runtime do not (what `chalice deploy` ships);
- `none`: only the standard library has bytecode; everything else compiles on import.
"""

from __future__ import annotations

import json
import math
import os
import py_compile
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import common

# Issue 14: the API's cold start may cost no more than the baseline's (PhotoSky / baseline, CPU, package.py bytecode;
# docs/PERFORMANCE.md). It was 1.10x before: the first list no longer needs an S3 client (media URLs are signed by
# PhotoSky itself, in pure Python), which is what should pay for PhotoSky's own modules.
GOAL = 1.00
CONFIDENCE = 0.95

# Each script marks its phases with its own CPU (user + system) and the wall clock; the figure is taken at the end
# of the script, not at process exit: Lambda keeps the environment after INIT, so it never pays the interpreter's
# teardown (measured here at a quarter of a second for these imports: freeing botocore's loaded models).
PRELUDE = (
    "import resource as _r, time as _t\n"
    "_m = {}\n"
    "def _mark(name):\n"
    "    _u = _r.getrusage(_r.RUSAGE_SELF)\n"
    "    _m[name] = ((_u.ru_utime + _u.ru_stime) * 1000, _t.time())\n"
)
# The photo whose URLs the first list signs (any ids do: signing needs no read).
MEDIA_OWNER = "5f0c7a52-8f1e-4d0b-9a53-2c1f4e6b7d10"
MEDIA_PHOTO = "01JDQ3Z8R4W6T2M9K5N7P1C3B5"
EPILOGUE = "_mark('end')\nimport json as _j\nprint(_j.dumps(_m))\n"
BODIES = {
    "bare": "pass\n",
    # The baseline: the framework and the two clients any Chalice API on DynamoDB + S3 needs, nothing else, made
    # the way the Chalice samples make them: `boto3.client`, i.e. both from boto3's one default session.
    "baseline": (
        "import boto3\n"
        "from botocore.config import Config\n"
        "from chalice.app import Chalice\n"
        "app = Chalice(app_name='baseline')\n"
        "_mark('import')\n"
        "dynamodb = boto3.client('dynamodb', region_name='us-east-1')\n"
        "_mark('dynamodb')\n"
        # The "media" phase: what hands out the photos' URLs (here S3 presigning, so the S3 client).
        "s3 = boto3.client('s3', region_name='us-east-1', config=Config(signature_version='s3v4'))\n"
        "_mark('media')\n"
    ),
    # PhotoSky builds its clients lazily: import the app, then build what the first GET /photos builds. Since issue 14
    # that is the DynamoDB client, the photo service and the first page's media URLs: CloudFront signed URLs (the
    # key parsed, then one ECDSA P-256 signature for the owner's previews and one for their originals, in pure
    # Python with the small table a container starts with), and no S3 client (the list no longer presigns).
    # Compared with the baseline phase by phase: the DynamoDB client with the DynamoDB client, the first media URLs
    # with the S3 client (what a plain Chalice app needs to hand out its photos' URLs), the services with nothing.
    "photosky": (
        "import app\n"
        "_mark('import')\n"
        "from chalicelib import deps\n"
        "deps.dynamodb()\n"
        "_mark('dynamodb')\n"
        "from chalicelib.photos.models import PreviewFormat\n"
        f"deps.media().urls({MEDIA_OWNER!r}, {MEDIA_PHOTO!r}, viewer={MEDIA_OWNER!r}, original=True, "
        "filename='IMG_2041.jpg', preview_format=PreviewFormat.WEBP)\n"
        "_mark('media')\n"
        "deps.photo_service()\n"
    ),
}
PHASES = ("import", "dynamodb", "media", "end")
COMPARED = ("baseline", "photosky")
STATES = ("package.py", "chalice zip", "none")
GOAL_STATE = "package.py"


def script(name: str) -> str:
    return PRELUDE + BODIES[name] + EPILOGUE


def instruction_script(name: str, *, until: str | None = None) -> str:
    """The body alone (up to the mark `until`, if given), leaving with os._exit: under valgrind the count runs to
    process exit, and the interpreter's teardown is no part of a cold start."""
    body = BODIES[name]
    if until is not None:
        marker = f"_mark({until!r})\n"
        if marker not in body:
            raise ValueError(f"{name} has no mark {until!r}")
        body = body[: body.index(marker)]
    lines = [line for line in body.splitlines() if not line.startswith("_mark(")]
    return "\n".join([*lines, "import os as _o, sys as _s", "_s.stdout.flush()", "_o._exit(0)", ""])


_MODULE_FILES = """
import json, sys
exec(compile(sys.argv[1], '<bench>', 'exec'))
print(json.dumps(sorted({m.__file__ for m in list(sys.modules.values())
                         if getattr(m, '__file__', None) and m.__file__.endswith('.py')})))
"""


# After the PhotoSky body: which of chalicelib.deps' factories it used, and the kind of media links it made.
_WHAT_WAS_BUILT = """
import json, sys
exec(compile(sys.argv[1], '<bench>', 'exec'))
from chalicelib import deps
print(json.dumps({"built": sorted(c.__wrapped__.__name__ for c in deps._cached if c.cache_info().currsize),
                  "media": type(deps.media()).__name__}))
"""


def check_photosky_body(env: dict[str, str]) -> list[str]:
    """What the PhotoSky script builds, failing the run if it is not what the first GET /photos builds since issue
    14: CloudFront URLs, and no S3 client (nor Secrets Manager: the key is in the environment)."""
    run = common.run_fresh([common.python(), "-c", _WHAT_WAS_BUILT, script("photosky")], env=env)
    found = common.last_json_line(run.stdout)
    built: list[str] = found["built"]
    if found["media"] != "CloudFrontMedia" or {"s3", "secrets_manager"} & set(built):
        raise AssertionError(f"the cold start's PhotoSky script built {built} and {found['media']}")
    return built


def cache_path(prefix: Path, source: str) -> Path:
    """Where the interpreter looks for a module's bytecode under PYTHONPYCACHEPREFIX (importlib's own rule)."""
    source_path = Path(source).resolve()
    return prefix / str(source_path.parent).lstrip("/") / f"{source_path.stem}.{sys.implementation.cache_tag}.pyc"


def classify(source: str) -> str:
    """stdlib | runtime (boto3 & co., which Lambda's runtime ships compiled) | ours (app, chalicelib, chalice)."""
    path = str(Path(source).resolve())
    project = str(common.PROJECT_DIR)
    if path.startswith(project + "/") and "site-packages" not in path:
        return "ours"
    if "/site-packages/chalice/" in path:
        return "ours"
    if "site-packages" in path:
        return "runtime"
    return "stdlib"


def build_prefixes(root: Path, env: dict[str, str]) -> dict[str, Path]:
    """Compile what the scripts import into one pycache prefix per bytecode state."""
    sources: set[str] = set()
    for name in COMPARED:
        run = common.run_fresh([common.python(), "-c", _MODULE_FILES, script(name)], env=env)
        sources.update(json.loads(run.stdout.strip().splitlines()[-1]))
    compiled_kinds = {
        "package.py": {"stdlib", "runtime", "ours"},
        "chalice zip": {"stdlib", "runtime"},
        "none": {"stdlib"},
    }
    prefixes = {}
    for state, kinds in compiled_kinds.items():
        prefix = root / state.replace(" ", "-").replace(".", "-")
        prefix.mkdir(parents=True)
        for source in sources:
            if classify(source) in kinds:
                target = cache_path(prefix, source)
                target.parent.mkdir(parents=True, exist_ok=True)
                py_compile.compile(
                    source,
                    cfile=str(target),
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                )
        prefixes[state] = prefix
    return prefixes


_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """(module, self µs, cumulative µs, depth) per line of `python -X importtime` output."""
    rows = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            self_us, cumulative_us, indent, module = match.groups()
            rows.append((module, int(self_us), int(cumulative_us), (len(indent) - 1) // 2))
    return rows


def median_importtime(runs: Sequence[list[tuple[str, int, int, int]]]) -> list[tuple[str, int, int, int]]:
    """One row per module with the median self and cumulative µs over several `-X importtime` runs (first-seen
    order); a module missing from a run counts as 0 there."""
    order: dict[str, int] = {}
    for rows in runs:
        for module, _s, _c, depth in rows:
            order.setdefault(module, depth)
    by_run = [{module: (self_us, cumulative) for module, self_us, cumulative, _d in rows} for rows in runs]
    return [
        (
            module,
            int(statistics.median(run.get(module, (0, 0))[0] for run in by_run)),
            int(statistics.median(run.get(module, (0, 0))[1] for run in by_run)),
            depth,
        )
        for module, depth in order.items()
    ]


def top_packages(rows: list[tuple[str, int, int, int]], count: int = 10) -> list[tuple[str, int, int]]:
    """Top-level packages by total self import time: (package, self µs, modules)."""
    totals: dict[str, list[int]] = {}
    for module, self_us, _cumulative, _depth in rows:
        entry = totals.setdefault(module.split(".")[0], [0, 0])
        entry[0] += self_us
        entry[1] += 1
    ordered = sorted(totals.items(), key=lambda kv: -kv[1][0])
    return [(name, us, modules) for name, (us, modules) in ordered[:count]]


def phases_from(run: common.ProcessRun) -> dict[str, float]:
    """CPU ms at each mark, and 'wall' = ms from spawning the process to the end of the script."""
    marks = common.last_json_line(run.stdout)
    found = {name: cpu for name, (cpu, _epoch) in marks.items()}
    found["wall"] = (marks["end"][1] - run.started_epoch) * 1000
    return found


def round_order(index: int) -> list[str]:
    """Bare first, then baseline and PhotoSky, swapping which of the two goes first every other round (ABBA), so
    whatever the previous process leaves behind (warm page cache, a neighbour's burst) favours neither."""
    return ["bare", *(COMPARED if index % 2 == 0 else reversed(COMPARED))]


def paired_ratios(rounds: Sequence[dict[str, dict[str, float]]], key: str = "end") -> list[float]:
    """(PhotoSky − bare) / (baseline − bare) within each round, the bare interpreter of the same round."""
    out = []
    for measured in rounds:
        bare = measured["bare"][key]
        out.append(common.ratio(measured["photosky"][key] - bare, measured["baseline"][key] - bare))
    return out


def verdict_with_noise(low: float, high: float, goal: float) -> str:
    """From the confidence interval of a ratio whose goal is "at most `goal`": met when the whole interval is at or
    below it, missed when the whole interval is above it, otherwise within the noise (repeat the run)."""
    if high <= goal:
        return "met"
    if low > goal:
        return "missed"
    return "within the noise"


def summarise_ratios(ratios: Sequence[float], goal: float = GOAL) -> dict[str, Any]:
    low, high, coverage = common.median_interval(ratios, CONFIDENCE)
    return {
        "ratios": list(ratios),
        "median": common.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "low": low,
        "high": high,
        "coverage": coverage,
        "verdict": verdict_with_noise(low, high, goal),
    }


# Instruction counts: cachegrind without cache simulation runs a script ~15x slower than natively and counts every
# instruction the process executes in user space; with a fixed hash seed the count repeats exactly, whatever the
# machine's load. It does not see the kernel's work (page faults, file reads) nor cache misses, so it complements
# the CPU figure rather than replacing it.
_I_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def valgrind() -> str | None:
    return shutil.which("valgrind")


def valgrind_version() -> str:
    tool = valgrind()
    if tool is None:
        return "not installed"
    done = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return done.stdout.strip() or "unknown"


def parse_cachegrind(stderr: str) -> int | None:
    """The total instructions executed ("I refs") from cachegrind's summary on stderr."""
    match = _I_REFS.search(stderr)
    return int(match.group(1).replace(",", "")) if match else None


def count_instructions(source: str, *, env: dict[str, str], timeout: float = 600.0) -> int | None:
    tool = valgrind()
    if tool is None:
        return None
    done = subprocess.run(  # noqa: S603
        [tool, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", common.python(), "-c", source],
        cwd=common.PROJECT_DIR,
        env={**env, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"valgrind failed with {done.returncode}:\n{done.stderr[-3000:]}")
    return parse_cachegrind(done.stderr)


def measure_instructions(env: dict[str, str], repetitions: int, log: Callable[[str], None]) -> dict[str, Any] | None:
    if valgrind() is None:
        log("  cold start: valgrind not found, no instruction counts")
        return None
    scripts = {
        "bare": instruction_script("bare"),
        "baseline": instruction_script("baseline"),
        "photosky": instruction_script("photosky"),
        "baseline import": instruction_script("baseline", until="import"),
        "photosky import": instruction_script("photosky", until="import"),
    }
    counts: dict[str, list[int]] = {name: [] for name in scripts}
    for _ in range(repetitions):
        for name, source in scripts.items():
            count = count_instructions(source, env=env)
            if count is None:
                return None
            counts[name].append(count)
    net = {name: int(common.median(values)) - int(common.median(counts["bare"])) for name, values in counts.items()}
    return {
        "tool": valgrind_version() + " cachegrind (--cache-sim=no), PYTHONHASHSEED=0",
        "repetitions": repetitions,
        "identical": all(len(set(values)) == 1 for values in counts.values()),
        "net": net,
        "ratio": common.ratio(net["photosky"], net["baseline"]),
        "import_ratio": common.ratio(net["photosky import"], net["baseline import"]),
    }


def state_summary(rounds: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Per-variant medians (minus the bare interpreter) and the paired ratios of one bytecode state."""
    bare_cpu = common.median(r["bare"]["end"] for r in rounds)
    bare_wall = common.median(r["bare"]["wall"] for r in rounds)
    result: dict[str, Any] = {"rounds": len(rounds), "bare_cpu_ms": bare_cpu, "bare_wall_ms": bare_wall}
    for name in COMPARED:
        cpu = [r[name]["end"] - r["bare"]["end"] for r in rounds]
        result[name] = {
            "cpu_ms": common.median(cpu),
            "wall_ms": common.median(r[name]["wall"] - r["bare"]["wall"] for r in rounds),
            "cpu_min_ms": min(cpu),
            "cpu_max_ms": max(cpu),
            "cpu_spread": common.spread(cpu),
            # CPU of each phase (import, DynamoDB client, media URLs' signer, the rest), medians of the differences:
            # the media phase is the S3 client for the baseline and the first signed URLs for PhotoSky.
            "phases_ms": {
                "import": common.median(r[name]["import"] - r["bare"]["end"] for r in rounds),
                "dynamodb": common.median(r[name]["dynamodb"] - r[name]["import"] for r in rounds),
                "media": common.median(r[name]["media"] - r[name]["dynamodb"] for r in rounds),
                "rest": common.median(r[name]["end"] - r[name]["media"] for r in rounds),
            },
        }
    cpu_ratios = summarise_ratios(paired_ratios(rounds, "end"))
    wall = paired_ratios(rounds, "wall")
    result.update(
        cpu_ratio=cpu_ratios["median"],
        cpu_ratio_summary=cpu_ratios,
        wall_ratio=common.median(wall),
        wall_ratio_min=min(wall),
        wall_ratio_max=max(wall),
    )
    return result


def load_average() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan, math.nan, math.nan)
    return f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def measure(
    *,
    rounds: int,
    max_blocks: int,
    other_rounds: int,
    importtime_runs: int,
    instruction_repetitions: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """`rounds` paired rounds per block in the goal's state, more blocks (up to `max_blocks`) while the pooled
    verdict is within the noise; `other_rounds` rounds in each of the other states."""
    # Both scripts run with the CDN configured (PHOTOSKY_MEDIA_URL and its key), as the API is deployed since issue 14.
    env = common.lambda_environment({"PYTHONDONTWRITEBYTECODE": "1", **common.media_environment()})
    load_at_start = load_average()
    built = check_photosky_body(env)
    with tempfile.TemporaryDirectory(prefix="photosky-bench-pyc-") as scratch:
        prefixes = build_prefixes(Path(scratch), env)

        def one_round(state: str, index: int) -> dict[str, dict[str, float]]:
            state_env = {**env, "PYTHONPYCACHEPREFIX": str(prefixes[state])}
            return {
                name: phases_from(common.run_fresh([common.python(), "-c", script(name)], env=state_env))
                for name in round_order(index)
            }

        samples: dict[str, list[dict[str, dict[str, float]]]] = {state: [] for state in STATES}
        blocks: list[dict[str, Any]] = []
        while len(blocks) < max_blocks:
            block_load = load_average()
            block = [one_round(GOAL_STATE, index) for index in range(rounds)]
            samples[GOAL_STATE].extend(block)
            blocks.append({**summarise_ratios(paired_ratios(block)), "load_at_start": block_load})
            pooled = summarise_ratios(paired_ratios(samples[GOAL_STATE]))
            log(
                f"  cold start: block {len(blocks)}: median {blocks[-1]['median']:.3f}, pooled "
                f"{pooled['median']:.3f} [{pooled['low']:.3f}, {pooled['high']:.3f}] {pooled['verdict']}"
            )
            if pooled["verdict"] != "within the noise":
                break
        for state in STATES:
            if state != GOAL_STATE:
                samples[state] = [one_round(state, index) for index in range(other_rounds)]
        log("  cold start: processes done")
        goal_env = {**env, "PYTHONPYCACHEPREFIX": str(prefixes[GOAL_STATE])}
        instructions = measure_instructions(goal_env, instruction_repetitions, log)
        importtime = median_importtime(
            [
                parse_importtime(
                    common.run_fresh([common.python(), "-X", "importtime", "-c", "import app"], env=goal_env).stderr
                )
                for _ in range(importtime_runs)
            ]
        )
        module_counts = {}
        for name in COMPARED:
            run = common.run_fresh([common.python(), "-c", _MODULE_FILES, script(name)], env=goal_env)
            module_counts[name] = len(json.loads(run.stdout.strip().splitlines()[-1]))
    states = {state: state_summary(samples[state]) for state in STATES}
    pooled = states[GOAL_STATE]["cpu_ratio_summary"]
    ours = [(m, s, c) for m, s, c, _d in importtime if m == "app" or m.startswith("chalicelib")]
    return {
        "goal": GOAL,
        "goal_state": GOAL_STATE,
        "confidence": CONFIDENCE,
        "rounds_per_block": rounds,
        "max_blocks": max_blocks,
        "blocks": blocks,
        "verdict": pooled["verdict"],
        "states": states,
        "instructions": instructions,
        "load": {"start": load_at_start, "end": load_average()},
        "module_files": module_counts,
        "photosky_built": built,
        "importtime_runs": importtime_runs,
        "import_total_us": sum(self_us for _m, self_us, _c, _d in importtime),
        "top_packages": top_packages(importtime),
        "our_modules": sorted(ours, key=lambda msc: -msc[1])[:8],
        "our_modules_self_us": sum(s for _m, s, _c in ours),
    }
