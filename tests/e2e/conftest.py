"""End-to-end harness: the real dev stack (`python -m devstack`) as a child process on free 127.0.0.1 ports.

One stack serves the whole session. It is started exactly as a developer would start it (same module, same
environment variables, its own `--outputs` file), awaited through that outputs file, and stopped with SIGINT
like Ctrl-C; the teardown checks that a stop is clean (exit 0, outputs file removed, ports released).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.1
STOP_TIMEOUT_SECONDS = 15.0

# Filled in by the `devstack` fixture, reported at the end of the run.
_startup_seconds: list[float] = []

Spawn = Callable[..., subprocess.Popen[bytes]]


def free_port() -> int:
    """A port the OS just handed out on 127.0.0.1 (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    # SO_REUSEADDR, as the dev stack's own probe and servers use, so TIME_WAIT leftovers do not count as busy.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def devstack_env(
    api_port: int,
    aws_port: int,
    extra: dict[str, str] | None = None,
    web_port: int | None = None,
    media_port: int | None = None,
    ws_port: int | None = None,
) -> dict[str, str]:
    return {
        **os.environ,
        "PHOTOSKY_API_PORT": str(api_port),
        "PHOTOSKY_AWS_PORT": str(aws_port),
        # Never the defaults 8080, 8090 and 8100: a developer's own stack (or anything else) may hold them.
        "PHOTOSKY_WEB_PORT": str(web_port if web_port is not None else free_port()),
        "PHOTOSKY_MEDIA_PORT": str(media_port if media_port is not None else free_port()),
        "PHOTOSKY_WS_PORT": str(ws_port if ws_port is not None else free_port()),
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }


def spawn_devstack(
    *,
    api_port: int,
    aws_port: int,
    outputs: Path,
    stdout: Any,
    stderr: Any = subprocess.STDOUT,
    extra_env: dict[str, str] | None = None,
    web_port: int | None = None,
    media_port: int | None = None,
    ws_port: int | None = None,
    no_api: bool = False,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "devstack", "--outputs", str(outputs), *(["--no-api"] if no_api else [])],
        cwd=PROJECT_DIR,
        env=devstack_env(api_port, aws_port, extra_env, web_port, media_port, ws_port),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )


def _stop(process: subprocess.Popen[bytes]) -> int | None:
    """SIGINT (Ctrl-C) and wait; returns the exit code, or None if it had to be killed."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
        return None


@pytest.fixture(scope="session")
def spawn() -> Spawn:
    """Start another dev stack process (e.g. to check what happens on a busy port)."""
    return spawn_devstack


@contextlib.contextmanager
def started_devstack(
    workdir: Path, extra_env: dict[str, str] | None = None, *, no_api: bool = False
) -> Iterator[dict[str, Any]]:
    """A dev stack on free ports, its outputs.json parsed; on exit, Ctrl-C and the checks that it stopped cleanly.
    `no_api`: `python -m devstack --no-api` (`make aws`), whose API `chalice local` serves at its `api_url`."""
    outputs_path = workdir / "outputs.json"
    log_path = workdir / "devstack.log"
    api_port = free_port()
    aws_port = free_port()
    while aws_port == api_port:
        aws_port = free_port()
    web_port = free_port()
    while web_port in (api_port, aws_port):
        web_port = free_port()
    media_port = free_port()
    while media_port in (api_port, aws_port, web_port):
        media_port = free_port()
    ws_port = free_port()
    while ws_port in (api_port, aws_port, web_port, media_port):
        ws_port = free_port()

    def log_text() -> str:
        return log_path.read_text(errors="replace")

    with log_path.open("ab") as log:
        started = time.monotonic()
        process = spawn_devstack(
            api_port=api_port,
            aws_port=aws_port,
            outputs=outputs_path,
            stdout=log,
            web_port=web_port,
            media_port=media_port,
            ws_port=ws_port,
            extra_env=extra_env,
            no_api=no_api,
        )
        try:
            deadline = started + READY_TIMEOUT_SECONDS
            while not outputs_path.exists():
                if process.poll() is not None:
                    pytest.fail(
                        f"dev stack exited with {process.returncode} before it was ready; log {log_path}:\n{log_text()}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"dev stack not ready after {READY_TIMEOUT_SECONDS:.0f} s; log {log_path}:\n{log_text()}"
                    )
                time.sleep(POLL_SECONDS)
            outputs: dict[str, Any] = json.loads(outputs_path.read_text())
        except BaseException:
            _stop(process)
            raise

        seconds = time.monotonic() - started
        _startup_seconds.append(seconds)
        log.write(f"\n[e2e] dev stack ready in {seconds:.2f} s (api {api_port}, aws {aws_port})\n".encode())
        log.flush()
        print(f"photosky dev stack ready in {seconds:.2f} s (log {log_path})")

        assert outputs["api_url"] == f"http://{HOST}:{api_port}", log_text()
        assert outputs["aws_endpoint_url"] == f"http://{HOST}:{aws_port}", log_text()
        assert outputs["web_url"] == f"http://{HOST}:{web_port}", log_text()
        assert outputs["media_url"] == f"http://{HOST}:{media_port}", log_text()
        assert outputs["ws_url"] == f"ws://{HOST}:{ws_port}", log_text()

        try:
            yield outputs
        finally:
            exit_code = _stop(process)

    assert exit_code is not None, f"dev stack ignored SIGINT for {STOP_TIMEOUT_SECONDS:.0f} s; log:\n{log_text()}"
    assert exit_code == 0, f"dev stack exited with {exit_code} on SIGINT; log:\n{log_text()}"
    assert not outputs_path.exists(), f"dev stack left {outputs_path} behind after stopping"
    assert port_is_free(api_port), f"API port {api_port} still in use after the dev stack stopped"
    assert port_is_free(aws_port), f"AWS port {aws_port} still in use after the dev stack stopped"
    assert port_is_free(web_port), f"web port {web_port} still in use after the dev stack stopped"
    assert port_is_free(media_port), f"media port {media_port} still in use after the dev stack stopped"
    assert port_is_free(ws_port), f"WebSocket port {ws_port} still in use after the dev stack stopped"


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The running stack's outputs.json, parsed.

    Its abuse limits are raised: the fuzzer makes thousands of writes and hundreds of never-finished uploads as one
    user, and a 429 that depends on how many came before would make schemathesis's state machine replay differently
    from its first run. The limits are tested on a stack of their own (test_abuse_limits_devstack.py)."""
    relaxed = {"PHOTOSKY_WRITE_RATE_LIMIT": "1000000", "PHOTOSKY_MAX_PENDING_UPLOADS": "1000000"}
    with started_devstack(tmp_path_factory.mktemp("devstack"), relaxed) as outputs:
        yield outputs


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for seconds in _startup_seconds:
        terminalreporter.write_line(f"photosky dev stack startup: {seconds:.2f} s")
