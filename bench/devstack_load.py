"""Section 5: the real dev stack (`python -m devstack`) under load, on free 127.0.0.1 ports, for a bounded time.

Users sign up and are confirmed against the emulated Cognito and sign in with USER_PASSWORD_AUTH, as in AWS.
Uploads: clients declare a photo, POST the file to the presigned URL and move on; a photo's READY time is its
`updated_at` as the worker set it, so throughput = READY photos / (last READY - first declaration). Reads: N
client threads (keep-alive connections) run list / get / me in turn for a fixed time per level.
The load generator runs on the same cores as the stack: the figures are the whole machine's, not the server's.
The stack runs with the per-user abuse limits (write-rate tokens, pending uploads) raised out of reach: this measures
throughput, and a few users making many requests would otherwise measure the limits (429s) instead.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import common
from devstack.clients import presigned_post_body

HOST = "127.0.0.1"
READY_TIMEOUT = 90.0
SETTLE_TIMEOUT = 60.0
USERS = 4
# Out of reach of any run: the throughput, not the per-user limits (defaults in chalicelib.config.Settings), is
# what this section measures. Set through the dev stack's environment, which wins over .chalice/config.json.
RAISED_LIMITS = {"PHOTOSKY_WRITE_RATE_LIMIT": "1000000", "PHOTOSKY_MAX_PENDING_UPLOADS": "1000000"}


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Api:
    """A keep-alive HTTP/1.1 connection to the API for one client thread."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or HOST, parts.port or 80
        self._token = token
        self._connection: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": self._token, "Content-Type": "application/json"}
        for attempt in range(2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
            try:
                self._connection.request(method, path, body=payload, headers=headers)
                response = self._connection.getresponse()
                raw = response.read()
                return response.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, ConnectionError):
                self._connection.close()
                self._connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def post_form(url: str, fields: dict[str, str], data: bytes, content_type: str) -> int:
    """A browser's FormData POST to the presigned URL: the policy fields, then the file last."""
    body, form_type = presigned_post_body(fields, data, content_type)
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or HOST, parts.port or 80, timeout=60)
    try:
        connection.request("POST", parts.path or "/", body=body, headers={"Content-Type": form_type})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class Samples:
    """The files the upload phase sends: 2 MP photo-like JPEGs (a phone photo's resolution would make this a test of
    the image pipeline), each with bytes of its own, since the worker rejects a second upload of the same bytes as a
    duplicate (issue 13). `count` are made before the clock starts; more only if failed uploads need them. Not
    thread-safe: take and give back under the caller's lock."""

    def __init__(self, count: int) -> None:
        from bench.previews import photo_like

        self._image = photo_like((1600, 1200))
        self._ready = [common.jpeg_bytes(self._image, variant) for variant in range(count)]
        self._more = itertools.count(count)
        self.file_bytes = len(self._ready[0])

    def take(self) -> bytes:
        return self._ready.pop() if self._ready else common.jpeg_bytes(self._image, next(self._more))

    def give_back(self, data: bytes) -> None:
        """An upload's bytes that were never sent (its declaration failed): another upload may send them."""
        self._ready.append(data)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def start_stack(workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any], Path]:
    api_port, aws_port, web_port, media_port, ws_port = free_ports(5)
    outputs_path = workdir / "outputs.json"
    log_path = workdir / "devstack.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PHOTOSKY_API_PORT": str(api_port),
        "PHOTOSKY_AWS_PORT": str(aws_port),
        "PHOTOSKY_WEB_PORT": str(web_port),
        "PHOTOSKY_MEDIA_PORT": str(media_port),  # the media endpoint (issue 14), CloudFront's part in AWS
        "PHOTOSKY_WS_PORT": str(ws_port),  # the live-status WebSocket endpoint (issue 16)
        "PYTHONUNBUFFERED": "1",
        **RAISED_LIMITS,
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own module
            [common.python(), "-m", "devstack", "--outputs", str(outputs_path)],
            cwd=common.PROJECT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + READY_TIMEOUT
    while not outputs_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_stack(process)
            raise RuntimeError(f"dev stack did not start; log:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    return process, json.loads(outputs_path.read_text()), log_path


def stop_stack(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def sign_up_users(outputs: dict[str, Any], count: int) -> list[str]:
    from devstack.token import id_token, new_confirmed_user

    tokens = []
    for _ in range(count):
        username, password = new_confirmed_user(outputs, "bench")
        token = id_token(outputs, username, password)
        status, body = Api(outputs["api_url"], token).call("POST", "/users", {"display_name": username})
        if status != 201:
            raise RuntimeError(f"POST /users answered {status}: {body}")
        tokens.append(token)
    return tokens


def upload_phase(  # noqa: PLR0915 - one scripted phase: clients, then the settle wait, then its figures
    outputs: dict[str, Any], tokens: list[str], *, clients: int, seconds: float, max_uploads: int
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    samples = Samples(max_uploads)
    submitted: list[tuple[str, str, float]] = []  # (token, photo id, declared at, epoch)
    claimed = [0]  # uploads in flight, so no more than max_uploads are started
    failures: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        token = tokens[index % len(tokens)]
        api = Api(outputs["api_url"], token)
        while time.monotonic() < stop_at:
            with lock:
                if len(submitted) + claimed[0] >= max_uploads:
                    return
                claimed[0] += 1
                data = samples.take()
            declared = time.time()
            status, body = api.call(
                "POST", "/photos", {"filename": "bench.jpg", "content_type": "image/jpeg", "size_bytes": len(data)}
            )
            if status != 201:
                with lock:
                    failures.append(f"POST /photos {status}")
                    claimed[0] -= 1
                    samples.give_back(data)
                continue
            sent = post_form(body["upload"]["url"], body["upload"]["fields"], data, "image/jpeg")
            with lock:
                claimed[0] -= 1
                if sent in (200, 201, 204):
                    submitted.append((token, body["photo"]["photo_id"], declared))
                else:
                    failures.append(f"S3 POST {sent}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Wait for the worker to settle everything, then read each photo's READY time (its updated_at).
    pending = {photo_id for _t, photo_id, _d in submitted}
    settled: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while pending and time.monotonic() < deadline:
        for token in tokens:
            status, body = Api(outputs["api_url"], token).call("GET", "/photos?limit=100")
            if status == 200:
                for item in body["items"]:
                    if item["photo_id"] in pending and item["status"] != "PENDING":
                        settled[item["photo_id"]] = item
                        pending.discard(item["photo_id"])
        if pending:
            time.sleep(0.5)
    ready = [item for item in settled.values() if item["status"] == "READY"]
    first_declared = min((d for _t, _p, d in submitted), default=0.0)
    declared_at = {photo_id: d for _t, photo_id, d in submitted}
    ready_times = [_epoch(item["updated_at"]) for item in ready]
    latencies = [(_epoch(item["updated_at"]) - declared_at[item["photo_id"]]) * 1000 for item in ready]
    span = (max(ready_times) - first_declared) if ready_times else 0.0
    by_user: dict[str, list[str]] = {token: [] for token in tokens}
    for token, photo_id, _d in submitted:
        if photo_id in settled and settled[photo_id]["status"] == "READY":
            by_user[token].append(photo_id)
    return {
        "clients": clients,
        "seconds": seconds,
        "max_uploads": max_uploads,
        "submitted": len(submitted),
        "ready": len(ready),
        "not_settled": len(pending),
        "failures": failures[:5],
        "failure_count": len(failures),
        "ready_per_second": len(ready) / span if span > 0 else 0.0,
        "declare_to_ready_p50_ms": common.percentile(latencies, 0.5) if latencies else None,
        "declare_to_ready_p99_ms": common.percentile(latencies, 0.99) if latencies else None,
        "file_bytes": samples.file_bytes,
        # The busiest user's uploads in the phase (each one write, and at most that many pending at once).
        "busiest_user_uploads": max((sum(1 for t, _p, _d in submitted if t == token) for token in tokens), default=0),
    }, by_user


def read_level(
    outputs: dict[str, Any], tokens: list[str], photos: dict[str, list[str]], *, clients: int, seconds: float
) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {"list": [], "get": [], "me": []}
    errors: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        token = tokens[index % len(tokens)]
        own = photos[token] or [""]
        api = Api(outputs["api_url"], token)
        api.call("GET", "/health")  # connect before the clock starts
        mine: dict[str, list[float]] = {"list": [], "get": [], "me": []}
        bad: list[int] = []
        start.wait()
        turn = index
        while time.monotonic() < stop_at[0]:
            kind = ("list", "get", "me")[turn % 3]
            path = {"list": "/photos?limit=30", "get": f"/photos/{own[turn % len(own)]}", "me": "/users/me"}[kind]
            began = time.perf_counter()
            status, _body = api.call("GET", path)
            mine[kind].append((time.perf_counter() - began) * 1000)
            if status != 200:
                bad.append(status)
            turn += 1
        with lock:
            for kind, values in mine.items():
                latencies[kind].extend(values)
            errors.extend(bad)

    stop_at = [0.0]
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + seconds
    start.wait()
    began = time.monotonic()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    every = [v for values in latencies.values() for v in values]
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": len(every),
        "errors": len(errors),
        "requests_per_second": len(every) / elapsed,
        "p50_ms": common.percentile(every, 0.5),
        "p99_ms": common.percentile(every, 0.99),
        "by_kind_p50_ms": {kind: common.percentile(v, 0.5) for kind, v in latencies.items() if v},
    }


def measure(
    *,
    levels: tuple[int, ...],
    seconds_per_level: float,
    upload_seconds: float,
    upload_clients: int,
    max_uploads: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="photosky-bench-devstack-") as scratch:
        started = time.monotonic()
        process, outputs, _log_path = start_stack(Path(scratch))
        try:
            startup = time.monotonic() - started
            log(f"  dev stack: up in {startup:.1f} s")
            tokens = sign_up_users(outputs, USERS)
            uploads, photos = upload_phase(
                outputs, tokens, clients=upload_clients, seconds=upload_seconds, max_uploads=max_uploads
            )
            log(f"  dev stack: {uploads['ready']} uploads READY")
            reads = []
            for clients in levels:
                reads.append(read_level(outputs, tokens, photos, clients=clients, seconds=seconds_per_level))
                log(f"  dev stack: {clients} clients done")
        finally:
            stop_stack(process)
    from chalicelib.config import Settings

    return {
        "startup_seconds": startup,
        "uploads": uploads,
        "reads": reads,
        "users": USERS,
        "raised_limits": dict(RAISED_LIMITS),
        "default_limits": {
            "write_rate_limit": Settings.write_rate_limit,
            "write_rate_window_seconds": Settings.write_rate_window_seconds,
            "max_pending_uploads": Settings.max_pending_uploads,
        },
    }
