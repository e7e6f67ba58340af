"""Section 11: live upload status over the WebSocket API (issue 16) against the web client's polling.

On the real dev stack (`python -m devstack` on free 127.0.0.1 ports, started here as section 5 starts it), one user
keeps one WebSocket connection open (`<ws_url>?token=<ID token>`, the `websockets` package; the SPA keeps one socket
per tab) and uploads photos through the API and the presigned POST, in rounds of uploads one after the other (the
next once both arms have seen the last settle) then a burst of concurrent ones, so that the machine's drift over the
run hits both kinds. Every upload is followed two ways at once, from the moment its S3 POST returned (the object
exists, and the web client starts following the upload then):

- **socket**: the `photo` message saying it settled (READY or REJECTED) arriving on the connected socket;
- **polling**: a second client polling `GET /photos/<id>` on the web client's own schedule, read from web/settle.js
  (POLL_DELAYS_MS, each delay counted from the previous answer, as settle.js schedules its next check), until an
  answer is no longer PENDING.

Both arms follow the same uploads at the same moments, so every upload gives a pair (its socket time, its polling
time) and the ratio is taken within the pair. Where the time goes comes from the server's own clock on the same
machine: the worker's `upload` log line (its end and its `latency_ms`, hence when the S3 event was delivered to it)
and the photo's `updated_at` in the message (stamped by the worker as it settles the photo).

Nothing here asserts a time; tests/unit/test_bench_helpers.py checks the pure helpers (the schedule, its simulation,
the summaries) on made-up uploads.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import common
from bench.common import fmt_num, fmt_ratio, table

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

    from bench.devstack_load import Api

SECTION_HEADING = "## 11. Live upload status: WebSocket push against polling (issue 16)"
SETTLE_JS = common.PROJECT_DIR / "web" / "settle.js"
SEQUENTIAL = 10  # uploads one after the other, per round
BURST = 10  # uploads at once, per round
ISSUE_UPLOADS = 50  # the issue's example: "fifty uploads cost hundreds of GETs"
# CONTRACT.md, "Realtime": the owner receives the message within 2 s of the photo settling.
PUSH_GOAL_MS = 2000.0
# Longer than the client's own give-up (120 s): a message later than that is missing, not slow.
MESSAGE_WAIT_SECONDS = 150.0
OPEN_SECONDS = 10.0
# Stray messages (a second push for a photo) still on their way when the last upload settled.
QUIET_SECONDS = 1.0
# Settle times the schedule is simulated at: what polling costs when the worker is slower than on this stack.
MODEL_SETTLE_SECONDS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0)
# Answers to a poll that the web client treats as passing (settle.js `passing`): it goes on polling.
PASSING = frozenset({0, 429})
MODES = ("sequential", "burst")


# --- the web client's schedule (web/settle.js) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """How the web client follows an upload (web/settle.js): the polling delays (the last one repeats), when it
    gives up, and how often it still checks while the socket is connected."""

    poll_delays_ms: tuple[int, ...]
    give_up_ms: int
    check_while_connected_ms: int

    def delay(self, attempt: int) -> int:
        """The wait before poll number `attempt` (0-based)."""
        return self.poll_delays_ms[min(attempt, len(self.poll_delays_ms) - 1)]


_NUMBER = re.compile(r"\d+(?:_\d+)*")


def _integer(text: str, name: str) -> int:
    """A JavaScript integer literal or a product of them (`120_000`, `2 * 60 * 1000`)."""
    factors = [factor.strip() for factor in text.split("*")]
    if not all(_NUMBER.fullmatch(factor) for factor in factors):
        raise ValueError(f"web/settle.js: {name} is `{text}`, not a number the bench can read")
    product = 1
    for factor in factors:
        product *= int(factor.replace("_", ""))
    return product


def client_schedule(source: str) -> Schedule:
    """The schedule in settle.js's source: its POLL_DELAYS_MS, GIVE_UP_MS and CHECK_WHILE_CONNECTED_MS constants.
    ValueError naming the constant when one is missing or not a plain number (the bench follows the client's own
    schedule, never a copy that could drift from it)."""

    def constant(name: str) -> str:
        match = re.search(rf"^const {name} = (.+?);\s*$", source, re.MULTILINE)
        if match is None:
            raise ValueError(f"web/settle.js has no `const {name} = …;`: the bench polls on the client's schedule")
        return match.group(1).strip()

    listed = constant("POLL_DELAYS_MS")
    if not (listed.startswith("[") and listed.endswith("]")) or not listed[1:-1].strip():
        raise ValueError(f"web/settle.js: POLL_DELAYS_MS is `{listed}`, not a list of delays")
    delays = tuple(_integer(item, "POLL_DELAYS_MS") for item in listed[1:-1].split(",") if item.strip())
    return Schedule(
        poll_delays_ms=delays,
        give_up_ms=_integer(constant("GIVE_UP_MS"), "GIVE_UP_MS"),
        check_while_connected_ms=_integer(constant("CHECK_WHILE_CONNECTED_MS"), "CHECK_WHILE_CONNECTED_MS"),
    )


def load_schedule(path: Path = SETTLE_JS) -> Schedule:
    return client_schedule(path.read_text())


def simulate_polling(settle_ms: float, schedule: Schedule, request_ms: float = 0.0) -> tuple[float | None, int]:
    """What polling costs for a photo that settles `settle_ms` after its upload returned: (when the client learns it,
    or None if it gives up first; the GETs it sends). Each GET goes out one delay after the previous answer, sees
    the photo as it is when sent and is answered `request_ms` later."""
    sent_at, gets = 0.0, 0
    while True:
        sent_at += schedule.delay(gets)
        if sent_at > schedule.give_up_ms:
            return None, gets
        gets += 1
        if sent_at >= settle_ms:
            return sent_at + request_ms, gets
        sent_at += request_ms


def connected_gets(wait_ms: float, schedule: Schedule) -> int:
    """GETs the web client sends for one upload while its socket is connected: one check every
    CHECK_WHILE_CONNECTED_MS (a lost push still gets noticed), none when the message comes sooner."""
    return int(wait_ms // schedule.check_while_connected_ms)


# --- statistics ----------------------------------------------------------------------------------------------------


def distribution(values: Sequence[float]) -> dict[str, float] | None:
    """p50, p99 (nearest rank), mean, min, max and spread ((max − min) / median) of a sample; None for no values."""
    if not values:
        return None
    return {
        "n": len(values),
        "p50": common.percentile(values, 0.5),
        "p99": common.percentile(values, 0.99),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
        "spread": common.spread(values),
    }


def ratio_summary(ratios: Sequence[float]) -> dict[str, float] | None:
    """Median of paired ratios with its distribution-free 95% interval and the range."""
    if not ratios:
        return None
    low, high, coverage = common.median_interval(ratios)
    return {
        "n": len(ratios),
        "median": common.median(ratios),
        "low": low,
        "high": high,
        "coverage": coverage,
        "min": min(ratios),
        "max": max(ratios),
    }


def worker_starts(log_text: str) -> dict[str, float]:
    """When the upload worker began on each photo's S3 event (epoch seconds), from the dev stack's log: the worker's
    `upload` line (chalicelib/logs.py) is written when it is done, with the time and its `latency_ms`. A redelivered
    event keeps its first start. Lines that are not such JSON are skipped."""
    starts: dict[str, float] = {}
    for line in log_text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or entry.get("type") != "upload":
                continue
            parts = str(entry["object_key"]).split("/")
            started = _epoch(str(entry["time"])) - float(entry["latency_ms"]) / 1000
        except (KeyError, TypeError, ValueError):
            continue
        if len(parts) == 3 and parts[0] == "uploads":
            starts[parts[2]] = min(started, starts.get(parts[2], started))
    return starts


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def summarise(uploads: Sequence[dict[str, Any]], schedule: Schedule) -> dict[str, Any]:
    """Per kind of upload (and all together): both arms' times, their paired ratios, where the time went, GETs per
    upload measured and as the schedule predicts them for the same settle times, and what fifty uploads cost."""
    groups = {mode: [u for u in uploads if u["mode"] == mode] for mode in MODES}
    groups = {mode: group for mode, group in groups.items() if group}
    if len(groups) > 1:
        groups["all"] = list(uploads)
    return {name: _summarise_group(group, schedule) for name, group in groups.items()}


def _summarise_group(group: Sequence[dict[str, Any]], schedule: Schedule) -> dict[str, Any]:
    both = [u for u in group if u["socket_ms"] is not None and u["polling_ms"] is not None]
    socket = distribution([u["socket_ms"] for u in both])
    polling = distribution([u["polling_ms"] for u in both])
    settled = [u for u in group if u["settle_ms"] is not None]
    modelled = [simulate_polling(u["settle_ms"], schedule) for u in settled]
    gets = [u["gets"] for u in group]  # an upload polling gave up on cost its GETs too
    socket_gets = [connected_gets(u["socket_ms"], schedule) for u in group if u["socket_ms"] is not None]
    messages = [u["messages"] for u in group]
    mean_gets = statistics.fmean(gets) if gets else 0.0
    mean_socket_gets = statistics.fmean(socket_gets) if socket_gets else 0.0
    mean_messages = statistics.fmean(messages) if messages else 0.0

    derived = [
        {
            "queue": u["worker_start_ms"],
            "work": _minus(u["settle_ms"], u["worker_start_ms"]),
            "push": _minus(u["socket_ms"], u["settle_ms"]),
            "poll_lag": _minus(u["polling_ms"], u["settle_ms"]),
            "socket_from_event": _minus(u["socket_ms"], u["worker_start_ms"]),
            "polling_from_event": _minus(u["polling_ms"], u["worker_start_ms"]),
        }
        for u in group
    ]
    return {
        "uploads": len(group),
        "paired": len(both),
        "missing_messages": sum(u["socket_ms"] is None for u in group),
        "polling_gave_up": sum(u["polling_ms"] is None for u in group),
        "seen_at_first_get": sum(u["gets"] == 1 and u["polling_ms"] is not None for u in group),
        "socket_ms": socket,
        "polling_ms": polling,
        "p50_ratio": common.ratio(socket["p50"], polling["p50"]) if socket and polling else None,
        "p99_ratio": common.ratio(socket["p99"], polling["p99"]) if socket and polling else None,
        "paired_ratio": ratio_summary([common.ratio(u["socket_ms"], u["polling_ms"]) for u in both]),
        "spans_ms": {
            name: distribution([value for value in (d[name] for d in derived) if value is not None])
            for name in derived[0]
        }
        if derived
        else {},
        "settle_ms": distribution([u["settle_ms"] for u in settled]),
        "get_ms": distribution([ms for u in group for ms in u["get_ms"]]),
        "gets": distribution([float(count) for count in gets]),
        "model_gets_mean": statistics.fmean(count for _seen, count in modelled) if modelled else None,
        "socket_gets_mean": mean_socket_gets,
        "messages_mean": mean_messages,
        "saved_per_upload": mean_gets - mean_socket_gets,
        "poll_errors": sum(len(u["poll_errors"]) for u in group),
        "fifty": {
            "polling_gets": round(ISSUE_UPLOADS * mean_gets),
            # The socket's one connect, then the checks its client still makes while connected.
            "socket_requests": 1 + round(ISSUE_UPLOADS * mean_socket_gets),
            "socket_messages": round(ISSUE_UPLOADS * mean_messages),
        },
    }


def model_rows(schedule: Schedule, request_ms: float) -> list[dict[str, float | int | None]]:
    """The schedule simulated at MODEL_SETTLE_SECONDS: when polling learns of the settle and with how many GETs."""
    rows: list[dict[str, float | int | None]] = []
    for seconds in MODEL_SETTLE_SECONDS:
        seen, gets = simulate_polling(seconds * 1000, schedule, request_ms)
        rows.append(
            {
                "settle_s": seconds,
                "seen_s": None if seen is None else seen / 1000,
                "gets": gets,
                "socket_gets": connected_gets(seconds * 1000, schedule),
            }
        )
    return rows


# --- the live run --------------------------------------------------------------------------------------------------


class Listener:
    """One WebSocket connection and a thread reading it: when each photo's first settled `photo` message arrived
    (epoch seconds, with the message), and how many messages each photo got."""

    def __init__(self, ws_url: str, token: str) -> None:
        from websockets.exceptions import InvalidStatus
        from websockets.sync.client import connect

        try:
            # No proxy (127.0.0.1), no compression (API Gateway negotiates none), no client pings: the run is far
            # shorter than the 10-minute idle limit and every frame on the socket is the server's.
            self._ws: ClientConnection = connect(
                f"{ws_url}?token={token}",
                proxy=None,
                compression=None,
                ping_interval=None,
                open_timeout=OPEN_SECONDS,
                close_timeout=2,
            )
        except InvalidStatus as e:  # the URL carries the token: never in a message
            raise RuntimeError(f"the dev stack refused the WebSocket ({e.response.status_code})") from None
        except (OSError, TimeoutError) as e:
            raise RuntimeError(f"cannot open the WebSocket at {ws_url}: {type(e).__name__}") from None
        self._changed = threading.Condition()
        self.settled: dict[str, tuple[float, dict[str, Any]]] = {}
        self.counts: dict[str, int] = {}
        self.closed_because: str | None = None
        self._thread = threading.Thread(target=self._read, name="bench-ws", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        reason = "closed"
        try:
            for raw in self._ws:
                arrived = time.time()
                message = json.loads(raw)
                photo = message.get("photo") or {}
                photo_id = photo.get("photo_id") or message.get("photo_id")
                with self._changed:
                    if photo_id:
                        self.counts[photo_id] = self.counts.get(photo_id, 0) + 1
                    if message.get("type") == "photo" and photo.get("status") not in (None, "PENDING"):
                        self.settled.setdefault(photo_id, (arrived, photo))
                    self._changed.notify_all()
        except ConnectionClosed as e:
            reason = f"closed: {e}"
        except ValueError as e:
            reason = f"a message that is not JSON: {e}"
        finally:
            with self._changed:
                self.closed_because = reason
                self._changed.notify_all()

    def wait(self, photo_id: str, timeout: float) -> tuple[float, dict[str, Any]] | None:
        with self._changed:
            self._changed.wait_for(lambda: photo_id in self.settled or self.closed_because is not None, timeout)
            return self.settled.get(photo_id)

    def close(self) -> None:
        self._ws.close()
        self._thread.join(timeout=5)


@dataclass
class Followed:
    """One upload as the polling arm saw it."""

    photo_id: str
    mode: str
    stored_at: float  # epoch s: the S3 POST returned
    polled_at: float | None  # the answer that first showed it settled; None: the client gave up first
    gets: int
    get_ms: list[float]
    poll_errors: list[int]


def declare_and_store(api: Api, data: bytes) -> tuple[str, float]:
    """POST /photos, then the file to the presigned POST; (photo id, when the S3 POST returned)."""
    from bench.devstack_load import post_form

    status, body = api.call(
        "POST", "/photos", {"filename": "bench.jpg", "content_type": "image/jpeg", "size_bytes": len(data)}
    )
    if status != 201:
        raise RuntimeError(f"POST /photos answered {status}: {body}")
    sent = post_form(body["upload"]["url"], body["upload"]["fields"], data, "image/jpeg")
    if sent not in (200, 201, 204):
        raise RuntimeError(f"the upload's S3 POST answered {sent}")
    return str(body["photo"]["photo_id"]), time.time()


def poll_until_settled(poller: Api, photo_id: str, stored_at: float, schedule: Schedule, mode: str) -> Followed:
    """The web client's polling (settle.js without a socket): wait, GET, and again one delay after each answer,
    until the photo is not PENDING or the client's give-up time has passed."""
    gets = 0
    get_ms: list[float] = []
    errors: list[int] = []
    for attempt in itertools.count():
        time.sleep(schedule.delay(attempt) / 1000)
        if (time.time() - stored_at) * 1000 > schedule.give_up_ms:
            break
        sent = time.time()
        status, body = poller.call("GET", f"/photos/{photo_id}")
        answered = time.time()
        gets += 1
        get_ms.append((answered - sent) * 1000)
        if status == 200 and body["status"] != "PENDING":
            return Followed(photo_id, mode, stored_at, answered, gets, get_ms, errors)
        if status in PASSING or status >= 500:
            errors.append(status)  # the client keeps polling (the dev stack sends no Retry-After to wait out)
        elif status != 200:
            raise RuntimeError(f"GET /photos/{photo_id} answered {status}: {body}")
    return Followed(photo_id, mode, stored_at, None, gets, get_ms, errors)


def upload_and_poll(outputs: dict[str, Any], token: str, data: bytes, schedule: Schedule, mode: str) -> Followed:
    from bench.devstack_load import Api

    photo_id, stored_at = declare_and_store(Api(outputs["api_url"], token), data)
    # The polling arm is a second client, with a connection of its own.
    return poll_until_settled(Api(outputs["api_url"], token), photo_id, stored_at, schedule, mode)


def burst(outputs: dict[str, Any], token: str, files: list[bytes], schedule: Schedule) -> list[Followed]:
    """`files` uploaded at once (released together by a barrier), each followed by its own polling client."""
    done: list[Followed] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(files))

    def one(data: bytes) -> None:
        try:
            start.wait()
            followed = upload_and_poll(outputs, token, data, schedule, "burst")
        except BaseException as e:  # re-raised below, in the bench's thread
            with lock:
                failures.append(e)
            return
        with lock:
            done.append(followed)

    threads = [threading.Thread(target=one, args=(data,), name="bench-burst") for data in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} upload(s) of a burst failed: {failures[0]}") from failures[0]
    return done


def record(followed: Followed, listener: Listener, worker_started: dict[str, float]) -> dict[str, Any]:
    """One upload's figures, in ms from the moment its S3 POST returned."""

    def since_stored(moment: float | None) -> float | None:
        return None if moment is None else (moment - followed.stored_at) * 1000

    heard = listener.settled.get(followed.photo_id)
    socket_at, photo = heard if heard else (None, {})
    return {
        "mode": followed.mode,
        "status": photo.get("status"),
        "socket_ms": since_stored(socket_at),
        "polling_ms": since_stored(followed.polled_at),
        "settle_ms": since_stored(_epoch(photo["updated_at"]) if photo.get("updated_at") else None),
        "worker_start_ms": since_stored(worker_started.get(followed.photo_id)),
        "gets": followed.gets,
        "get_ms": followed.get_ms,
        "poll_errors": followed.poll_errors,
        "messages": listener.counts.get(followed.photo_id, 0),
    }


@contextmanager
def _stack(scratch: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    """The dev stack on free ports (bench/devstack_load.py's start_stack, its WebSocket endpoint's port among them),
    stopped on the way out; a failure inside comes with the end of the stack's log."""
    from bench.devstack_load import start_stack, stop_stack

    process, outputs, log_path = start_stack(scratch)
    try:
        if "ws_url" not in outputs:
            raise RuntimeError("this dev stack has no WebSocket endpoint (devstack/websocket.py, `ws_url`)")
        yield outputs, log_path
    except Exception as e:
        raise RuntimeError(f"{e}\ndev stack log:\n{log_path.read_text(errors='replace')[-3000:]}") from e
    finally:
        stop_stack(process)


def _wait_for_message(listener: Listener, photo_id: str) -> None:
    if listener.wait(photo_id, MESSAGE_WAIT_SECONDS) is None and listener.closed_because is not None:
        # Without the connection the socket arm measures nothing: stop rather than report a broken comparison.
        raise RuntimeError(f"the WebSocket ended during the run ({listener.closed_because})")


def measure(*, rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    from bench.devstack_load import Samples, sign_up_users

    schedule = load_schedule()
    load_start = common.machine_description()["load_at_start"]
    started = time.monotonic()
    samples = Samples(rounds * (SEQUENTIAL + BURST) + 1)
    followed: list[Followed] = []
    with tempfile.TemporaryDirectory(prefix="photosky-bench-realtime-") as scratch, _stack(Path(scratch)) as stack:
        outputs, log_path = stack
        (token,) = sign_up_users(outputs, 1)
        listener = Listener(outputs["ws_url"], token)
        try:
            # Not counted: the worker's first upload loads the image libraries, the API's first requests build
            # their clients; a Lambda pays that once per container, not per upload.
            warmup = upload_and_poll(outputs, token, samples.take(), schedule, "warm-up")
            _wait_for_message(listener, warmup.photo_id)
            log(f"  realtime: dev stack up, warmed up in {time.monotonic() - started:.0f} s")
            for round_ in range(rounds):
                for _ in range(SEQUENTIAL):
                    followed.append(upload_and_poll(outputs, token, samples.take(), schedule, "sequential"))
                    _wait_for_message(listener, followed[-1].photo_id)
                together = burst(outputs, token, [samples.take() for _ in range(BURST)], schedule)
                for one in together:
                    _wait_for_message(listener, one.photo_id)
                followed.extend(together)
                log(f"  realtime: round {round_ + 1} of {rounds} done ({len(followed)} uploads)")
            time.sleep(QUIET_SECONDS)
        finally:
            listener.close()
        worker_started = worker_starts(log_path.read_text(errors="replace"))
    uploads = [record(one, listener, worker_started) for one in followed]
    summary = summarise(uploads, schedule)
    get_ms = summary["all" if "all" in summary else MODES[0]]["get_ms"]
    return {
        "schedule": {
            "poll_delays_ms": list(schedule.poll_delays_ms),
            "give_up_ms": schedule.give_up_ms,
            "check_while_connected_ms": schedule.check_while_connected_ms,
        },
        "rounds": rounds,
        "sequential": SEQUENTIAL,
        "burst": BURST,
        "file_bytes": samples.file_bytes,
        "uploads": uploads,
        "summary": summary,
        "model": model_rows(schedule, get_ms["p50"] if get_ms else 0.0),
        "model_request_ms": get_ms["p50"] if get_ms else 0.0,
        "worker_lines_found": sum(u["worker_start_ms"] is not None for u in uploads),
        "seconds": time.monotonic() - started,
        "load_start": load_start,
        "load_end": common.machine_description()["load_at_start"],
    }


# --- the report ----------------------------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _p50_p99(summary: dict[str, float] | None) -> str:
    if summary is None:
        return "n/a"
    return f"{fmt_ms(summary['p50'])} · {fmt_ms(summary['p99'])} ({fmt_ms(summary['min'])}–{fmt_ms(summary['max'])})"


def _ratio_cell(summary: dict[str, float] | None) -> str:
    if summary is None:
        return "n/a"
    return (
        f"{fmt_ratio(summary['median'])} (95% CI {summary['low']:.2f}–{summary['high']:.2f}×, "
        f"min–max {summary['min']:.2f}–{summary['max']:.2f}×)"
    )


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else fmt_ratio(value)


def _span_p50(spans: dict[str, Any], name: str) -> str:
    entry = spans.get(name)
    return "n/a" if entry is None else f"{fmt_ms(entry['p50'])} · {fmt_ms(entry['p99'])}"


def push_verdict(data: dict[str, Any]) -> bool | None:
    """CONTRACT.md's 2 s from settling to the message, held at the p99 of every upload; None if not measured."""
    push = _overall(data)["spans_ms"].get("push")
    return None if push is None else push["p99"] <= PUSH_GOAL_MS


def _overall(data: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = data["summary"]
    return summary["all"] if "all" in summary else next(iter(summary.values()))


def goal_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    push = _overall(data)["spans_ms"].get("push")
    return [
        (
            "live status: `photo` message after the worker settles a photo (dev stack), p99",
            f"≤ {PUSH_GOAL_MS / 1000:.0f} s (CONTRACT.md)",
            "n/a"
            if push is None
            else f"{fmt_ms(push['p99'])} ms (p50 {fmt_ms(push['p50'])}, max {fmt_ms(push['max'])})",
            common.verdict(push_verdict(data)),
        )
    ]


def _label(name: str, data: dict[str, Any]) -> str:
    return {"sequential": "one at a time", "burst": f"bursts of {data['burst']}"}.get(name, name)


def _latency_rows(data: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            _label(name, data),
            f"{group['paired']} of {group['uploads']}",
            _p50_p99(group["socket_ms"]),
            _p50_p99(group["polling_ms"]),
            f"{_ratio(group['p50_ratio'])} · {_ratio(group['p99_ratio'])}",
            _ratio_cell(group["paired_ratio"]),
        )
        for name, group in data["summary"].items()
    ]


def _span_rows(data: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            _label(name, data),
            _span_p50(group["spans_ms"], "queue"),
            _span_p50(group["spans_ms"], "work"),
            _span_p50(group["spans_ms"], "push"),
            _span_p50(group["spans_ms"], "poll_lag"),
            _span_p50(group["spans_ms"], "socket_from_event"),
            _span_p50(group["spans_ms"], "polling_from_event"),
        )
        for name, group in data["summary"].items()
    ]


def _request_rows(data: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for name, group in data["summary"].items():
        gets = group["gets"]
        fifty = group["fifty"]
        rows.append(
            (
                _label(name, data),
                "n/a" if gets is None else f"{gets['mean']:.2f} ({gets['min']:.0f}–{gets['max']:.0f})",
                fmt_num(group["model_gets_mean"], 2),
                f"{group['socket_gets_mean']:.2f}",
                f"{group['messages_mean']:.2f}",
                f"**{group['saved_per_upload']:.2f}**",
                f"{fifty['polling_gets']} GETs",
                f"{fifty['socket_requests']} (the connect) + {fifty['socket_messages']} messages pushed",
            )
        )
    return rows


def _model_table(data: dict[str, Any]) -> str:
    rows = [
        (
            f"{row['settle_s']:g}",
            "gave up" if row["seen_s"] is None else f"{row['seen_s']:.1f}",
            "n/a" if row["seen_s"] is None else f"{row['seen_s'] - row['settle_s']:.1f}",
            str(row["gets"]),
            str(row["socket_gets"]),
        )
        for row in data["model"]
    ]
    return table(
        [
            "photo settles after (s)",
            "polling learns it after (s)",
            "polling adds (s)",
            "GETs by polling",
            "GETs while connected",
        ],
        rows,
    )


def section(results: dict[str, Any]) -> str:
    data = results["realtime"]
    summary = data["summary"]
    schedule = data["schedule"]
    overall = _overall(data)
    how = (
        "a whole `make bench` run"
        if results.get("complete")
        else "`.venv/bin/python -m bench --only realtime`, this section alone (the rest of this report is from the "
        "run named at the top)"
    )
    uploads = data["rounds"] * (data["sequential"] + data["burst"])
    delays = ", ".join(f"{ms:,}" for ms in schedule["poll_delays_ms"])
    missing = sum(group["missing_messages"] for name, group in summary.items() if name != "all")
    gave_up = sum(group["polling_gave_up"] for name, group in summary.items() if name != "all")
    errors = sum(group["poll_errors"] for name, group in summary.items() if name != "all")
    fifty = overall["fifty"]
    push = overall["spans_ms"].get("push")
    settle = overall["settle_ms"]
    rounds = f"{data['rounds']} round" + ("s" if data["rounds"] != 1 else "")
    lines = [
        SECTION_HEADING,
        "",
        f"Measured on {results['started']} by {how}: bench/realtime.py, code {results.get('code', 'n/a')}, in "
        f"{data['seconds']:.0f} s, load average {data['load_start']} at its start and {data['load_end']} at its end "
        "(2 cores shared with other sessions' test runs: absolute times move with them, the paired ratios less). "
        f"The dev stack on free ports; one user, one WebSocket connection (`<ws_url>?token=<ID token>`, the "
        f"`websockets` package), {uploads} uploads of 1600×1200 JPEGs ({data['file_bytes'] / 1024:,.0f} KB, each with "
        f"bytes of its own) in {rounds} of {data['sequential']} one at a time (the next once both "
        f"arms saw the last settle) then a burst of {data['burst']} at once, after one warm-up upload not counted. "
        "Every upload is followed both ways at once from the moment its S3 POST returned (the object exists; the "
        "web client starts following there): **socket**, the `photo` message saying it settled arriving on the "
        "connected socket; **polling**, a second client with its own connection polling `GET /photos/<id>` on the "
        f"web client's schedule read from web/settle.js (waits of {delays} ms, the last repeated, each counted from "
        f"the previous answer; given up after {schedule['give_up_ms'] / 1000:.0f} s) until the answer is not "
        "PENDING (its GETs run in the dev stack's one process beside the worker and the push, so they slow both "
        "arms' uploads alike). Times are ms from that S3 POST returning, p50 · p99 (min–max) over the uploads "
        "(nearest rank: below 100 uploads the p99 is the largest); the ratio column is socket / polling within "
        "each upload (median, its distribution-free 95% interval and range). The reference is the client's S3 POST "
        "returning, not the S3 event: the dev stack does not say when it delivered the event, so the event's "
        "delivery is taken from the worker's own `upload` log line (its end minus its `latency_ms`: the handler's "
        f"start; found for {data['worker_lines_found']} of {uploads}) in the next table.",
        "",
        table(
            [
                "uploads",
                "paired",
                "**socket** ms p50 · p99 (min–max)",
                "**polling** ms p50 · p99 (min–max)",
                "socket / polling, p50 · p99",
                "socket / polling per upload",
            ],
            _latency_rows(data),
        ),
        "",
        "Where the time goes (ms, p50 · p99), from the server's clock on the same machine: *to the worker* = S3 POST "
        "returned → the worker's handler starts (S3 notification → SQS → the dev stack's event pump, a 1 s long "
        "poll that returns when a message arrives); *worker* = → the photo's `updated_at` (stamped as it is settled); "
        "*push* = settled → the message on the socket (the DynamoDB write, the connection lookup, the @connections "
        "POST, the frame); *polling's lag* = settled → the GET that shows it. The last two columns start the clock at "
        "the event's delivery instead.",
        "",
        table(
            [
                "uploads",
                "to the worker",
                "worker",
                "push",
                "polling's lag",
                "event → socket",
                "event → polling",
            ],
            _span_rows(data),
        ),
        "",
        "Requests per upload. *Polling*: GETs the polling client sent until it saw the photo settled, mean (min–max); "
        "*schedule's model*: what settle.js's delays predict for the same uploads' settle times with instant "
        "answers. *Socket*: the GETs the web client still sends while connected (settle.js checks every "
        f"{schedule['check_while_connected_ms'] / 1000:.0f} s in case a push was lost; none when the message comes "
        "sooner) and the messages pushed for the upload (counted on the socket). Both arms also make the upload's "
        f"POST /photos and S3 POST, left out. *Saved* = polling's GETs − the socket client's. For {ISSUE_UPLOADS} "
        "uploads (the issue's example) at each row's means; the socket's one connect serves any number of uploads (and "
        "a ping every 5 minutes keeps it open).",
        "",
        table(
            [
                "uploads",
                "polling: GETs per upload",
                "schedule's model",
                "socket: GETs",
                "socket: messages",
                "saved per upload",
                f"{ISSUE_UPLOADS} uploads, polling",
                f"{ISSUE_UPLOADS} uploads, socket",
            ],
            _request_rows(data),
        ),
        "",
        f"Poll answers other than 200 (the client polls on after them): {errors}; uploads whose message never came: "
        f"{missing}; uploads the polling client gave up on: {gave_up}. A poll took "
        + (
            f"{fmt_ms(overall['get_ms']['p50'])} ms (p50; p99 {fmt_ms(overall['get_ms']['p99'])})"
            if overall["get_ms"]
            else "n/a"
        )
        + f". CONTRACT.md's 2 s from settling to the message: p99 {fmt_ms(push['p99'] if push else None)} ms "
        f"({common.verdict(push_verdict(data))}).",
        "",
        "What the schedule costs when photos settle later than here (here an upload settles "
        f"{fmt_ms(settle['p50'] if settle else None)} ms after its S3 POST, p50; in AWS the event's delivery through "
        "SQS to Lambda, a cold worker and bigger photos add to that): settle.js simulated, each GET answered in "
        f"{fmt_ms(data['model_request_ms'])} ms (this run's p50). The socket learns of a settle one push later (p50 "
        f"{fmt_ms(push['p50'] if push else None)} ms above) whatever the time.",
        "",
        _model_table(data),
        "",
        f"For {ISSUE_UPLOADS} uploads: polling {fifty['polling_gets']} GETs, the socket {fifty['socket_requests']} "
        f"request (its connect) and {fifty['socket_messages']} messages pushed by the server.",
    ]
    return "\n".join(lines)


def analysis(data: dict[str, Any]) -> str:
    overall = _overall(data)
    socket, polling, paired = overall["socket_ms"], overall["polling_ms"], overall["paired_ratio"]
    if socket is None or polling is None or paired is None:
        return "- **Live status (section 11).** No upload was seen by both arms in this run."
    spans, settle, fifty = overall["spans_ms"], overall["settle_ms"], overall["fifty"]
    parts = [
        "- **Live status (section 11).** On the dev stack a connected client learns that an upload settled "
        f"{fmt_ms(socket['p50'])} ms (p50; p99 {fmt_ms(socket['p99'])}) after its S3 POST returned, a polling one "
        f"{fmt_ms(polling['p50'])} ms (p99 {fmt_ms(polling['p99'])}): {fmt_ratio(paired['median'])} per upload "
        f"(median; {paired['min']:.2f}–{paired['max']:.2f}×). "
    ]
    if spans.get("push") and spans.get("poll_lag"):
        parts.append(
            f"The push takes {fmt_ms(spans['push']['p50'])} ms after the worker settles the photo (p99 "
            f"{fmt_ms(spans['push']['p99'])}; CONTRACT.md's 2 s: {common.verdict(push_verdict(data))}); polling learns "
            f"it {fmt_ms(spans['poll_lag']['p50'])} ms after (p99 {fmt_ms(spans['poll_lag']['p99'])}), at its next "
            "scheduled GET. "
        )
    model = {row["settle_s"]: row for row in data["model"]}
    if settle and 1.0 in model and 10.0 in model and model[10.0]["seen_s"] is not None:
        parts.append(
            f"Here a photo settles {fmt_ms(settle['p50'])} ms after its upload (p50) and polling's first GET "
            f"({data['schedule']['poll_delays_ms'][0]} ms) found {overall['seen_at_first_get']} of "
            f"{overall['uploads']} settled, so the gap is small; if photos settle in 1–10 s instead (AWS adds the "
            "event's trip through SQS to Lambda, cold starts and bigger photos; not measured here), settle.js's "
            f"growing waits add {model[1.0]['seen_s'] - 1.0:.1f}–{model[10.0]['seen_s'] - 10.0:.1f} s and cost "
            f"{model[1.0]['gets']}–{model[10.0]['gets']} GETs an upload (the model table). "
        )
    parts.append(
        f"Polling spent {overall['gets']['mean']:.2f} GETs per upload where the connected client spends "
        f"{overall['socket_gets_mean']:.2f}: {overall['saved_per_upload']:.2f} saved per upload, "
        f"{fifty['polling_gets']} GETs against one connect for {ISSUE_UPLOADS} uploads (plus "
        f"{fifty['socket_messages']} messages the server pushes)."
    )
    return "".join(parts)
