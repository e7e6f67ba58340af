"""Pure helpers shared by every section: statistics, ratios, tables, the Lambda-like environment, fresh processes.

Everything here is deterministic and cheap, so tests/unit/test_bench_helpers.py can run it without timing anything.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
STAGE = "local"
REGION = "us-east-1"
# A syntactically valid pool ARN: the API reads it at import for its authorizer; nothing ever calls the pool.
BENCH_POOL_ARN = "arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_BenchPool"


def median(values: Iterable[float]) -> float:
    data = list(values)
    if not data:
        raise ValueError("median of no values")
    return float(statistics.median(data))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of a non-empty sample."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be within 0..1")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least 1
    return float(ordered[int(rank) - 1])


def ratio(value: float, baseline: float) -> float:
    """value / baseline; infinity when the baseline is zero or below (a ratio over nothing is not a ratio)."""
    if baseline <= 0:
        return float("inf")
    return value / baseline


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: how noisy a set of repetitions was."""
    mid = median(values)
    return (max(values) - min(values)) / mid if mid > 0 else 0.0


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free confidence interval of the median: (low, high, coverage) where low and high are the k-th
    smallest and k-th largest values, k as large as keeps the coverage (from the binomial distribution of how many
    values fall below the median) at least `confidence`. With too few values for that, (min, max) and its coverage.
    """
    if not values:
        raise ValueError("interval of no values")
    ordered = sorted(values)
    n = len(ordered)

    def coverage(k: int) -> float:  # P(x_(k) <= median <= x_(n+1-k)) = 1 - 2 P(Binomial(n, 1/2) < k)
        return 1.0 - 2.0 * sum(math.comb(n, i) for i in range(k)) / float(2**n)

    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= confidence:
        k += 1
    return float(ordered[k - 1]), float(ordered[n - k]), coverage(k)


def fmt_ratio(value: float) -> str:
    return "n/a" if value != value or value == float("inf") else f"{value:.2f}×"  # noqa: PLR0124 - NaN check


def fmt_num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "**missed**")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned."""
    if any(len(row) != len(headers) for row in rows):
        raise ValueError("every row needs one cell per header")
    cells = [[str(cell) for cell in row] for row in rows]
    numeric = [all(_looks_numeric(row[i]) for row in cells) and bool(cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---:" if is_number else "---" for is_number in numeric) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in cells)
    return "\n".join(lines)


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("×", "").replace("$", "").replace("%", "").strip()
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def stage_environment(stage: str = STAGE) -> dict[str, str]:
    """The stage's variables exactly as .chalice/config.json sets them (global, then the stage's own)."""
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def lambda_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the Lambda runtime would give the API: the `local` stage's variables, region, the pool ARN and
    throwaway credentials; nothing from this shell (no AWS profile, no endpoint override)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": "photosky-local-api",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "COGNITO_USER_POOL_ARN": BENCH_POOL_ARN,
        **stage_environment(),
    }
    env.update(extra or {})
    return env


# The CDN the API signs media URLs for when a bench configures one (issue 14). Nothing is ever fetched from it.
MEDIA_URL = "https://d111111abcdef8.cloudfront.net"
# A fixed P-256 signing key (any scalar below the curve's order is one): with a fixed key the signatures, and so the
# work of every big-integer operation, repeat for the same policy, which valgrind's exact counts need.
MEDIA_KEY_SCALAR = 0x5D1F3A7C9B2E4F6A8C0D2E4F6A8B0C1D3E5F7A9B1C3D5E7F9A0B2C4D6E8F0A1B
MEDIA_KEY_PAIR_ID = "KBENCHMEDIAKEY"


def media_key_json() -> str:
    """`PHOTOSKY_MEDIA_KEY` for the bench's key: `{"key_pair_id", "private_key"}` with a PKCS #8 PEM, as
    tests/support/media.py writes it (with `cryptography`, a dev dependency; the API itself never imports it)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.support.media import media_key_json as key_json

    return key_json(ec.derive_private_key(MEDIA_KEY_SCALAR, ec.SECP256R1()), MEDIA_KEY_PAIR_ID)


def media_environment(media_url: str = MEDIA_URL) -> dict[str, str]:
    """The variables that make the API hand out CloudFront signed URLs instead of S3 presigned ones."""
    return {"PHOTOSKY_MEDIA_URL": media_url, "PHOTOSKY_MEDIA_KEY": media_key_json()}


def apply_lambda_environment() -> None:
    """Make this process look like the API Lambda (used by in-process sections before importing the app)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update({k: v for k, v in lambda_environment().items() if k not in ("PATH", "LANG")})


@dataclass(frozen=True)
class ProcessRun:
    """One fresh interpreter: its own CPU (user + system, from wait4), its wall time and its output. (Not its
    ru_maxrss: on Linux a child starts from its parent's at fork, so a child of a big parent reports the parent's.)"""

    cpu_ms: float
    wall_ms: float
    stdout: str
    stderr: str
    started_epoch: float  # time.time() just before the spawn, for children that report their own clock


def run_fresh(
    args: Sequence[str], *, env: Mapping[str, str], cwd: Path = PROJECT_DIR, timeout: float = 120.0
) -> ProcessRun:
    """Run a child to completion and account for exactly its resources (not those of other children)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started_epoch = time.time()
        started = time.perf_counter()
        child = subprocess.Popen(list(args), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err)  # noqa: S603
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                child.wait()
                raise TimeoutError(f"{args[:3]} ran over {timeout:.0f} s")
            time.sleep(0.002)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed with {child.returncode}:\n{stderr[-3000:]}")
    return ProcessRun(
        cpu_ms=(usage.ru_utime + usage.ru_stime) * 1000,
        wall_ms=wall * 1000,
        stdout=stdout,
        stderr=stderr,
        started_epoch=started_epoch,
    )


def last_json_line(text: str) -> Any:
    lines = [line for line in text.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError(f"no JSON result in output:\n{text[-2000:]}")
    return json.loads(lines[-1])


def interleaved(variants: Sequence[str], repetitions: int) -> list[str]:
    """Run order A B C A B C …: slow drifts of a shared machine hit every variant alike."""
    return [variant for _ in range(repetitions) for variant in variants]


def package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_description() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load_at_start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def python() -> str:
    return sys.executable


def jpeg_bytes(image: Any, variant: int = 0) -> bytes:
    """`image` (a PIL image) saved as a JPEG at quality 85; a `variant` above 0 changes one pixel first, on a copy.

    Every upload in a bench needs bytes of its own: since issue 13 the worker rejects a second upload of the same
    bytes into a library as a duplicate (REJECTED, `duplicate_of`), which is not what an upload bench measures."""
    import io

    if variant:
        image = image.copy()
        width, height = image.size
        position = (width // 2 + variant % (width // 2), height // 2 + variant // (width // 2) % (height // 2))
        image.putpixel(position, (variant % 256, variant // 256 % 256, 255 - variant % 256))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
