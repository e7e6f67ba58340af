"""`chalice local --stage local` against the dev stack, run exactly as a developer types it (the real Chalice CLI, as a
subprocess, with its default autoreload): the attach step in app.py (devstack/chalice_local.py).

- Against the session dev stack (the `make dev` + `--port 8001` workflow): the dev stack's token checks and front door,
  the same emulated table, bucket, worker and media endpoint.
- Against a `python -m devstack --no-api` stack (the `make aws` workflow): its outputs and its web client's
  /config.json send clients to chalice local, and its worker settles what chalice local's API started.
- Reload: a change to the project is served after Chalice's reloader restarts its worker, token checks included.
- Without a dev stack: one line saying what to run, at once, no traceback, no restart loop.

The servers run on a copy of the project: Chalice's reloader restarts on any change under the project directory, and
other processes (pytest's caches, an editor) write into the working tree while the tests run.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import moto
import pytest

from devstack.clients import emulated_client
from devstack.token import new_confirmed_user
from tests.e2e.conftest import PROJECT_DIR, free_port, started_devstack
from tests.e2e.test_devstack import Reply, User, call, moto_sign, sign_in
from tests.e2e.test_media_devstack import get
from tests.e2e.test_photos_devstack import settled, upload
from tests.support.cognito import FakeCognitoPool, unsigned_token
from tests.support.imaging_samples import encode, noise

pytestmark = pytest.mark.e2e

CHALICE = Path(sys.executable).with_name("chalice")
READY_SECONDS = 30.0
# Bound only: the attach step gives up before the app has finished importing (measured ~0.7 s for the whole command).
GIVE_UP_SECONDS = 15.0
RELOAD_SECONDS = 30.0
UNAUTHORIZED = {"message": "Unauthorized"}
ATTACHED = "attached to the dev stack at "
MOTO_KEY = "cognitoidp/resources/jwks-private.json.gz"
# What a project needs for `chalice local`: the app, its packages and the Chalice config. Copied with their bytecode
# (mtimes preserved, so it stays valid) and run with PYTHONDONTWRITEBYTECODE, so nothing the server does itself
# changes the copy and restarts it.
PROJECT_FILES = ("app.py", "chalicelib", "devstack", ".chalice/config.json", "requirements.txt")


def copy_project(destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source, target = PROJECT_DIR / name, destination / name
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@dataclass
class ChaliceLocal:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        return call(self.url, method, path, **kwargs)


def chalice_local_command(project_dir: Path, port: int, *options: str) -> list[str]:
    # --project-dir is an option of `chalice` itself, not of its `local` command.
    return [str(CHALICE), "--project-dir", str(project_dir), "local", "--stage", "local", "--port", str(port), *options]


def chalice_local_env(outputs_file: Path | None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", **extra}
    env.pop("PHOTOSKY_DEVSTACK_OUTPUTS", None)
    if outputs_file is not None:
        env["PHOTOSKY_DEVSTACK_OUTPUTS"] = str(outputs_file)
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the CLI and its reloader's worker: they share the session the test started them in."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _healthy(url: str) -> bool:
    try:
        return call(url, "GET", "/health").status == 200
    except OSError:  # not listening yet, or restarting
        return False


@contextlib.contextmanager
def running_chalice_local(
    project_dir: Path, outputs_file: Path, port: int, log_path: Path, **extra_env: str
) -> Iterator[ChaliceLocal]:
    """`chalice local --stage local` on `port`, attached to the stack of `outputs_file`, until /health answers."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            chalice_local_command(project_dir, port),
            cwd=project_dir,
            env=chalice_local_env(outputs_file, **extra_env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ChaliceLocal(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not _healthy(server.url):
            if process.poll() is not None:
                pytest.fail(f"chalice local exited with {process.returncode}:\n{server.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"chalice local not serving after {READY_SECONDS:.0f} s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        _stop(process)


def write_outputs(path: Path, outputs: dict[str, Any]) -> Path:
    path.write_text(json.dumps(outputs))
    return path


def demo_user(outputs: dict[str, Any]) -> User:
    creds = outputs["demo_user"]
    cognito = emulated_client("cognito-idp", outputs)
    return sign_in(cognito, outputs["user_pool_client_id"], creds["username"], creds["password"])


def new_user(outputs: dict[str, Any]) -> User:
    cognito = emulated_client("cognito-idp", outputs)
    return sign_in(cognito, outputs["user_pool_client_id"], *new_confirmed_user(outputs, "chalice-local"))


def as_user(server_url: str, user: User) -> Callable[..., Reply]:
    def request(method: str, path: str, **kwargs: Any) -> Reply:
        return call(server_url, method, path, token=user.id_token, **kwargs)

    return request


# --- against the session dev stack (`make dev`, then `chalice local --stage local --port 8001`) ---------------------


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("chalice-local") / "project")


@pytest.fixture(scope="module")
def chalice_api(
    devstack: dict[str, Any], project_copy: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaliceLocal]:
    workdir = tmp_path_factory.mktemp("chalice-local-run")
    outputs_file = write_outputs(workdir / "outputs.json", devstack)
    # A developer's AWS profile in the shell must not reach the API's boto3 clients: this one does not exist, so
    # any client built with it fails (ProfileNotFound) and every request would be a 500.
    with running_chalice_local(
        project_copy, outputs_file, free_port(), workdir / "chalice.log", AWS_PROFILE="photosky-e2e-no-such-profile"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def refused_tokens(devstack: dict[str, Any]) -> dict[str, str | None]:
    """Credentials the dev stack's API turns away, by name (None: no Authorization header)."""
    demo = demo_user(devstack)
    claims = jwt.decode(demo.id_token, options={"verify_signature": False})
    now = int(time.time())
    # The key moto signs every token with: an expired token can carry a valid signature.
    moto_key = json.loads(gzip.decompress((Path(moto.__file__).parent / MOTO_KEY).read_bytes()))
    stranger = FakeCognitoPool(devstack["user_pool_id"], devstack["user_pool_client_id"])
    return {
        "missing": None,
        "garbage": "garbage",
        "alg_none": unsigned_token(claims),
        "forged": stranger.sign(claims, kid=jwt.get_unverified_header(demo.id_token)["kid"]),
        "expired": moto_sign(moto_key, {**claims, "iat": now - 7200, "auth_time": now - 7200, "exp": now - 3600}),
        "access_token": demo.access_token,
    }


def test_health_is_served_and_the_attach_step_is_logged(chalice_api: ChaliceLocal, devstack: dict[str, Any]) -> None:
    status, _, body = chalice_api.request("GET", "/health")
    assert (status, body) == (200, {"status": "ok"})
    log = chalice_api.log()
    assert f"{ATTACHED}{devstack['aws_endpoint_url']}" in log, log
    assert "with token checks on" in log
    # Not the stack's own API port: the web client keeps sending the SPA there, and the log says so.
    assert f"sends the SPA to {devstack['api_url']}, not to this server" in log


@pytest.mark.parametrize("kind", ["missing", "garbage", "alg_none", "forged", "expired", "access_token"])
@pytest.mark.parametrize(
    ("method", "path", "body"), [("GET", "/users/me", None), ("POST", "/users", {"display_name": "X"})]
)
def test_bad_credentials_get_the_same_401_as_from_the_dev_stacks_api(
    chalice_api: ChaliceLocal,
    devstack: dict[str, Any],
    refused_tokens: dict[str, str | None],
    kind: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    ours = chalice_api.request(method, path, token=refused_tokens[kind], body=body)
    theirs = call(devstack["api_url"], method, path, token=refused_tokens[kind], body=body)
    assert (ours.status, ours.body) == (theirs.status, theirs.body) == (401, UNAUTHORIZED)
    assert ours.headers["content-type"].startswith("application/json")


def test_the_front_door_and_cors_are_the_dev_stacks(chalice_api: ChaliceLocal, devstack: dict[str, Any]) -> None:
    origin = devstack["web_url"]
    request = urllib.request.Request(chalice_api.url + "/users/me", headers={"Origin": origin})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10)
    # A 401 the SPA can read (Chalice's own local gateway sends it without CORS headers).
    assert refused.value.code == 401
    assert refused.value.headers["Access-Control-Allow-Origin"] == origin
    # A verb Chalice's own handler does not know gets the dev stack's JSON 405, not http.server's 501 HTML page.
    status, _, reply = chalice_api.request("BREW", "/users/me", token=demo_user(devstack).id_token)
    assert (status, reply["Code"]) == (405, "MethodNotAllowedError")


def test_a_real_token_is_accepted_and_writes_where_the_dev_stacks_api_reads(
    chalice_api: ChaliceLocal, devstack: dict[str, Any]
) -> None:
    # The demo user's profile belongs to test_devstack.py's flow: read-only here.
    status, _, listing = chalice_api.request("GET", "/photos", token=demo_user(devstack).id_token)
    assert (status, listing["items"]) == (200, []), listing

    user = new_user(devstack)
    name = f"Via chalice local {uuid.uuid4().hex[:6]}"
    status, _, created = as_user(chalice_api.url, user)("POST", "/users", body={"display_name": name})
    assert status == 201, created
    status, _, seen = as_user(devstack["api_url"], user)("GET", "/users/me")
    assert (status, seen["user_id"], seen["display_name"]) == (200, user.sub, name), seen


def test_an_upload_through_chalice_local_settles_and_its_media_is_served(
    chalice_api: ChaliceLocal, devstack: dict[str, Any]
) -> None:
    api_as = as_user(chalice_api.url, new_user(devstack))
    assert api_as("POST", "/users", body={"display_name": "Uploader"}).status == 201
    photo = settled(api_as, upload(api_as, encode(noise((320, 240)), "JPEG"), "image/jpeg")["photo_id"])
    assert photo["status"] == "READY", photo  # by the dev stack's worker: chalice local runs no event handlers
    small = photo["urls"]["small"]
    assert small.startswith(devstack["media_url"] + "/"), small
    status, headers, data = get(small)
    assert status == 200, data[:200]
    assert headers["content-type"].startswith("image/"), headers


def test_a_change_to_the_project_is_served_after_a_reload_with_token_checks(
    chalice_api: ChaliceLocal, project_copy: Path, devstack: dict[str, Any]
) -> None:
    attached_before = chalice_api.log().count(ATTACHED)
    with (project_copy / "app.py").open("a") as app_file:
        app_file.write(
            '\n\n@app.route("/reloaded", methods=["GET"], authorizer=cognito)\n'
            'def reloaded() -> dict[str, bool]:\n    return {"reloaded": True}\n'
        )
    demo = demo_user(devstack)
    deadline = time.monotonic() + RELOAD_SECONDS
    while True:
        with contextlib.suppress(OSError):  # refused while the new worker starts
            reply = chalice_api.request("GET", "/reloaded", token=demo.id_token)
            if reply.status == 200:
                break
        assert time.monotonic() < deadline, f"the new route was not served within {RELOAD_SECONDS:.0f} s"
        time.sleep(0.2)
    assert reply.body == {"reloaded": True}
    assert chalice_api.log().count(ATTACHED) > attached_before  # the new worker attached again
    for token in (None, "garbage"):
        for path in ("/reloaded", "/users/me"):
            status, _, body = chalice_api.request("GET", path, token=token)
            assert (status, body) == (401, UNAUTHORIZED), (path, token)


# --- the `make aws` workflow: `python -m devstack --no-api`, then `chalice local --stage local` --------------------


def test_make_aws_then_chalice_local(project_copy: Path, tmp_path: Path) -> None:
    with started_devstack(tmp_path, no_api=True) as outputs:
        api_url = outputs["api_url"]
        port = int(api_url.rsplit(":", 1)[1])
        assert not _healthy(api_url), "a --no-api stack serves no API"
        stack_log = (tmp_path / "devstack.log").read_text()
        assert f"chalice local --stage local --port {port}" in stack_log, stack_log
        status, _, config = get(outputs["web_url"] + "/config.json")
        assert status == 200
        assert json.loads(config)["api_url"] == api_url

        with running_chalice_local(project_copy, tmp_path / "outputs.json", port, tmp_path / "chalice.log") as server:
            assert server.url == api_url
            assert "sends the SPA to" not in server.log()  # it is where the web client sends the SPA
            api_as = as_user(server.url, new_user(outputs))
            assert api_as("POST", "/users", body={"display_name": "AWS only"}).status == 201
            photo = settled(api_as, upload(api_as, encode(noise((320, 240)), "JPEG"), "image/jpeg")["photo_id"])
            assert photo["status"] == "READY", photo  # the --no-api stack's worker


# --- without a dev stack, and other refusals ------------------------------------------------------------------------


def refused_start(
    outputs_file: Path | None, *options: str, port: int | None = None, **extra_env: str
) -> tuple[int, str, str]:
    """Run `chalice local --stage local` on the project, which must exit on its own within GIVE_UP_SECONDS; returns
    (exit code, stdout, stderr)."""
    command = chalice_local_command(PROJECT_DIR, port or free_port(), *options)
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env=chalice_local_env(outputs_file, **extra_env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=GIVE_UP_SECONDS)
    except subprocess.TimeoutExpired:
        _stop(process)
        stdout, stderr = process.communicate()
        pytest.fail(f"chalice local still running after {GIVE_UP_SECONDS:.0f} s:\n{stdout!r}\n{stderr!r}")
    print(f"chalice local gave up in {time.monotonic() - started:.2f} s")
    return process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")


def assert_one_line(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    # One line, once: the reloader did not start another worker to fail again.
    assert len(lines) == 1, stderr
    assert lines[0].startswith("photosky chalice local: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr


def test_without_a_dev_stack_it_says_what_to_run_and_exits(tmp_path: Path) -> None:
    missing = tmp_path / "outputs.json"
    # With autoreload (the default), Chalice's reloader process exits 0 whatever its worker's exit code
    # (chalice/cli/reloader.py); the worker's 2 is the command's own exit code without it.
    _, stdout, stderr = refused_start(missing)
    assert_one_line(stderr, "no dev stack is running", str(missing), "make aws", "--port 8001")
    assert "Serving on" not in stdout
    code, _, stderr = refused_start(missing, "--no-autoreload")
    assert code == 2
    assert_one_line(stderr, "no dev stack is running")


def test_a_stale_outputs_file_is_detected(tmp_path: Path, devstack: dict[str, Any]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: a stack killed without cleaning up
    stale = write_outputs(tmp_path / "outputs.json", {**devstack, "aws_endpoint_url": dead})
    _, _, stderr = refused_start(stale)
    assert_one_line(stderr, f"does not answer at {dead}", "make aws")


def test_the_dev_stacks_own_api_port_is_a_clear_error(tmp_path: Path, devstack: dict[str, Any]) -> None:
    outputs = write_outputs(tmp_path / "outputs.json", devstack)
    port = int(devstack["api_url"].rsplit(":", 1)[1])
    _, _, stderr = refused_start(outputs, port=port)
    assert_one_line(stderr, f"port {port} on 127.0.0.1 is already in use", f"--port {port + 1}")


def test_a_malformed_setting_is_a_clear_error(tmp_path: Path, devstack: dict[str, Any]) -> None:
    outputs = write_outputs(tmp_path / "outputs.json", devstack)
    _, _, stderr = refused_start(outputs, PHOTOSKY_DOWNLOAD_URL_SECONDS="soon")
    assert_one_line(stderr, "PHOTOSKY_DOWNLOAD_URL_SECONDS must be a whole number, got 'soon'")
