"""Section 1: what a cold start costs, PhotoSky against `chalice` + the two boto3 clients alone.

Each figure is one fresh interpreter, accounted by wait4 (its own CPU, user + system) and wall clock, minus a bare
interpreter measured in the same run. Three bytecode states, made with PYTHONPYCACHEPREFIX so nothing in the
checkout is touched:

- `package.py`: every module has unchecked-hash bytecode, as infra/package.py ships the zip;
- `chalice zip`: the standard library and the runtime's boto3/botocore have bytecode, but app.py, chalicelib and
  the bundled chalice runtime do not (what `chalice deploy` ships);
- `none`: only the standard library has bytecode; everything else compiles on import.
"""

from __future__ import annotations

import json
import py_compile
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common

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
EPILOGUE = "_mark('end')\nimport json as _j\nprint(_j.dumps(_m))\n"
BODIES = {
    "bare": "pass\n",
    # The baseline: the framework and the two clients any Chalice API on DynamoDB + S3 needs, nothing else.
    "baseline": (
        "import boto3\n"
        "from botocore.config import Config\n"
        "from chalice.app import Chalice\n"
        "app = Chalice(app_name='baseline')\n"
        "_mark('import')\n"
        "dynamodb = boto3.session.Session().client('dynamodb', region_name='us-east-1')\n"
        "_mark('dynamodb')\n"
        "s3 = boto3.session.Session().client('s3', region_name='us-east-1', config=Config(signature_version='s3v4'))\n"
        "_mark('s3')\n"
    ),
    # PhotoSky builds its clients lazily: import the app, then build what the first photo request builds.
    "photosky": (
        "import app\n"
        "_mark('import')\n"
        "from chalicelib import deps\n"
        "deps.dynamodb()\n"
        "_mark('dynamodb')\n"
        "deps.s3()\n"
        "_mark('s3')\n"
        "deps.photo_service()\n"
    ),
}
PHASES = ("import", "dynamodb", "s3", "end")


def script(name: str) -> str:
    return PRELUDE + BODIES[name] + EPILOGUE


STATES = ("package.py", "chalice zip", "none")

_MODULE_FILES = """
import json, sys
exec(compile(sys.argv[1], '<bench>', 'exec'))
print(json.dumps(sorted({m.__file__ for m in list(sys.modules.values())
                         if getattr(m, '__file__', None) and m.__file__.endswith('.py')})))
"""


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
    for name in ("baseline", "photosky"):
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


def measure(*, repetitions: int, log: Callable[[str], None]) -> dict[str, Any]:
    env = common.lambda_environment({"PYTHONDONTWRITEBYTECODE": "1"})
    with tempfile.TemporaryDirectory(prefix="photosky-bench-pyc-") as scratch:
        prefixes = build_prefixes(Path(scratch), env)
        samples: dict[str, dict[str, list[dict[str, float]]]] = {state: {} for state in STATES}
        variants = [(state, name) for state in STATES for name in BODIES]
        for index in common.interleaved([str(i) for i in range(len(variants))], repetitions):
            state, name = variants[int(index)]
            run = common.run_fresh(
                [common.python(), "-c", script(name)], env={**env, "PYTHONPYCACHEPREFIX": str(prefixes[state])}
            )
            samples[state].setdefault(name, []).append(phases_from(run))
        log("  cold start: processes done")
        importtime = common.run_fresh(
            [common.python(), "-X", "importtime", "-c", "import app"],
            env={**env, "PYTHONPYCACHEPREFIX": str(prefixes["package.py"])},
        )
        module_counts = {}
        for name in ("baseline", "photosky"):
            run = common.run_fresh(
                [common.python(), "-c", _MODULE_FILES, script(name)],
                env={**env, "PYTHONPYCACHEPREFIX": str(prefixes["package.py"])},
            )
            module_counts[name] = len(json.loads(run.stdout.strip().splitlines()[-1]))
    results: dict[str, Any] = {"repetitions": repetitions, "states": {}, "module_files": module_counts}
    for state in STATES:
        by_script = samples[state]
        bare_cpu = common.median(run["end"] for run in by_script["bare"])
        bare_wall = common.median(run["wall"] for run in by_script["bare"])
        state_result: dict[str, Any] = {"bare_cpu_ms": bare_cpu, "bare_wall_ms": bare_wall}
        for name in ("baseline", "photosky"):
            runs = by_script[name]
            cpu = [run["end"] for run in runs]
            state_result[name] = {
                "cpu_ms": common.median(cpu) - bare_cpu,
                "wall_ms": common.median(run["wall"] for run in runs) - bare_wall,
                "cpu_spread": common.spread([value - bare_cpu for value in cpu]),
                # CPU of each phase (import, DynamoDB client, S3 client, the rest), medians of the differences.
                "phases_ms": {
                    "import": common.median(run["import"] for run in runs) - bare_cpu,
                    "dynamodb": common.median(run["dynamodb"] - run["import"] for run in runs),
                    "s3": common.median(run["s3"] - run["dynamodb"] for run in runs),
                    "rest": common.median(run["end"] - run["s3"] for run in runs),
                },
            }
        state_result["cpu_ratio"] = common.ratio(state_result["photosky"]["cpu_ms"], state_result["baseline"]["cpu_ms"])
        state_result["wall_ratio"] = common.ratio(
            state_result["photosky"]["wall_ms"], state_result["baseline"]["wall_ms"]
        )
        results["states"][state] = state_result
    rows = parse_importtime(importtime.stderr)
    results["import_total_us"] = sum(self_us for _m, self_us, _c, _d in rows)
    results["top_packages"] = top_packages(rows)
    ours = [(m, c) for m, _s, c, d in rows if m == "app" or m.startswith("chalicelib")]
    results["our_modules_cumulative"] = sorted(ours, key=lambda mc: -mc[1])[:6]
    return results
