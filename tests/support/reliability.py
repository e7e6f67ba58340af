"""Cases tried and failed per reliability suite, reported at the end of every pytest run.

A test joins a suite with ``@pytest.mark.suite("faults")`` (or ``pytestmark`` for a module). By default each test
(or each subtest) is one case. A test that tries many cases itself (a property test, a fuzz run, a table of inputs
in one loop) says how many with the ``cases`` fixture: ``cases.tried(n)`` and, for failures it tolerates and
reports rather than raises, ``cases.failed(n)``; a test that fails counts at least one failed case.

The table is printed after the run and written to ``.artifacts/reliability.json``. With
``PHOTOSKY_RELIABILITY_DOC=docs/RELIABILITY.md`` the run also rewrites the results table in that document (between
its ``<!-- results:start -->`` and ``<!-- results:end -->`` markers), so the committed document is a real run.
"""

from __future__ import annotations

import json
import os
import platform
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
ARTIFACT = PROJECT_DIR / ".artifacts" / "reliability.json"
DOC_ENV = "PHOTOSKY_RELIABILITY_DOC"
START, END = "<!-- results:start -->", "<!-- results:end -->"

# Suites in report order, with what each one attacks.
SUITES: dict[str, str] = {
    "auth": "authentication matrix: every protected route × every bad-token kind → 401",
    "idor": (
        "authorization matrix: every id-taking route × every role (owner, members, former member, stranger, "
        "link visitors) → 404/403/401 as tabled, data unchanged"
    ),
    "hostile-uploads": "hostile files through the real worker → READY with previews or REJECTED with a reason",
    "faults": "injected throttling, S3 5xx/timeouts, crashes, redelivery, races → 503/no loss/invariants hold",
    "properties": "hypothesis property tests: cursors, tags, validation",
    "fuzz": "schemathesis against the running dev stack with a real token: no 5xx, no schema violations",
    "invariants": "the invariant checker itself: each rule detects its violation",
    "abuse": "one user against everyone: outstanding uploads capped, writes rate limited → 429, nothing written",
    "edges": "the edges: HTTP framing (smuggling, huge headers, bursts), spoofing text (bidi, invisible) → 4xx",
}


@dataclass
class Tally:
    tried: int = 0
    failed: int = 0
    tests: int = 0


@dataclass
class _Declared:
    tried: int = 0
    failed: int = 0


class Cases:
    """Lets a test that runs many cases report how many it ran."""

    def __init__(self) -> None:
        self.declared = _Declared()

    def tried(self, n: int = 1) -> None:
        self.declared.tried += n

    def failed(self, n: int = 1) -> None:
        self.declared.failed += n


@dataclass
class _Recorder:
    suite_of: dict[str, str] = field(default_factory=dict)
    declared: dict[str, _Declared] = field(default_factory=dict)
    outcomes: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))  # per subtest: passed?
    failed_tests: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)

    def tally(self) -> dict[str, Tally]:
        tallies = {suite: Tally() for suite in SUITES}
        for key in self.finished:
            suite = self.suite_of[key]
            tally = tallies.setdefault(suite, Tally())
            tally.tests += 1
            declared = self.declared.get(key)
            subtests = self.outcomes.get(key, [])
            if declared is not None and declared.tried:
                tried, failed = declared.tried, declared.failed
            elif subtests:
                tried, failed = len(subtests), subtests.count(False)
            else:
                tried, failed = 1, 0
            if key in self.failed_tests:
                failed = max(failed, 1)
            tally.tried += tried
            tally.failed += failed
        return tallies


_recorder = _Recorder()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "suite(name): count this test's cases under a reliability suite")


def _key(item: pytest.Item) -> str:
    # Some plugins (schemathesis) give several items one nodeid; the name tells them apart.
    return f"{item.nodeid}::{item.name}"


_current: list[str] = []  # the key of the item running now (tests run one at a time in a process)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("suite")
        if marker is None:
            continue
        name = marker.args[0]
        if name not in SUITES:
            raise pytest.UsageError(f"{item.nodeid}: unknown reliability suite {name!r} (known: {', '.join(SUITES)})")
        _recorder.suite_of[_key(item)] = name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Any:
    _current.append(_key(item))
    try:
        return (yield)
    finally:
        _current.pop()


@pytest.fixture
def cases(request: pytest.FixtureRequest) -> Cases:
    declared = Cases()
    _recorder.declared[_key(request.node)] = declared.declared
    return declared


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    key = _current[-1] if _current else None
    if key is None or key not in _recorder.suite_of:
        return
    if type(report).__name__ == "SubtestReport":
        if report.when == "call" and not report.skipped:
            _recorder.outcomes[key].append(report.passed)
        return
    if report.failed:
        _recorder.failed_tests.add(key)
    if report.when == "call" or (report.when == "setup" and report.failed):
        _recorder.finished.add(key)


def _table(tallies: dict[str, Tally]) -> list[str]:
    rows = ["| suite | what it attacks | tests | cases tried | failed |", "|---|---|---:|---:|---:|"]
    for name, tally in tallies.items():
        if tally.tests:
            what = SUITES.get(name, "")
            rows.append(f"| {name} | {what} | {tally.tests} | {tally.tried} | {tally.failed} |")
    return rows


def _rewrite_doc(doc: Path, rows: list[str], stamp: str) -> None:
    text = doc.read_text()
    if START not in text or END not in text:
        raise pytest.UsageError(f"{doc} has no {START} ... {END} block to fill")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{START}\n{stamp}\n\n" + "\n".join(rows) + f"\n{END}{tail}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    tallies = _recorder.tally()
    if not any(t.tests for t in tallies.values()):
        return
    rows = _table(tallies)
    terminalreporter.section("reliability suites: cases tried / failed")
    for row in rows:
        terminalreporter.write_line(row)
    stamp = (
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, pytest exit status {exitstatus}."
    )
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(
        json.dumps({"stamp": stamp, "suites": {name: vars(t) for name, t in tallies.items() if t.tests}}, indent=2)
        + "\n"
    )
    doc = os.environ.get(DOC_ENV)
    if doc:
        _rewrite_doc(PROJECT_DIR / doc, rows, stamp)
        terminalreporter.write_line(f"results written to {doc}")
