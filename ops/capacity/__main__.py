"""`python -m ops.capacity [--seconds N] [--seed S] [--out build/capacity.md]`: trace, model, simulate, report.

Prints the markdown report (and writes it to --out); exits 1 when a key pattern is over its bound.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ops.capacity.trace import Traces


def main(argv: Sequence[str] | None = None, build: Callable[[], Traces] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=_positive, default=3, help="simulated seconds at the target (default 3)")
    parser.add_argument("--seed", type=int, default=17, help="the workload's random seed (default 17)")
    parser.add_argument("--out", type=Path, help="also write the report here (e.g. build/capacity.md)")
    args = parser.parse_args(argv)

    from ops.capacity.model import build_model
    from ops.capacity.simulate import markdown, simulate
    from ops.capacity.trace import build_traces

    report = simulate(build_model((build or build_traces)()), seconds=args.seconds, seed=args.seed)
    text = markdown(report)
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    for row in report.failures:
        print(f"over its bound: {row.target} {row.pattern} at {row.limit_share:.1%} of a partition", file=sys.stderr)
    return 1 if report.failures else 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
