"""ops.smoke without a stage: reading both shapes of outputs, the report's lines, the JPEG it uploads, and what it
does when a step or its clean-up fails, on a scripted stage (its end-to-end runs are in tests/e2e)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from ops import smoke
from ops.smoke import OutputsError, Reply, Report, Smoke, Target, format_line, target_from_outputs

API = "https://abc123.execute-api.eu-west-1.amazonaws.com/api"
UPLOAD_URL = "https://photosky-dev-photos.s3.eu-west-1.amazonaws.com/"
PREVIEW_URL = "https://d111111abcdef8.cloudfront.net/previews/sub/p1/small.webp?Expires=1&Signature=s&Key-Pair-Id=K"
POOL = "eu-west-1_AbCdEf123"
CLIENT = "4abc5def6ghi7jkl8mno9pqr0s"
SUB = "11111111-2222-3333-4444-555555555555"
PASSWORD = "Ps" + "x" * 40 + "9a"
STACK_OUTPUTS = [
    {"OutputKey": "EndpointURL", "OutputValue": f"{API}/"},
    {"OutputKey": "UserPoolId", "OutputValue": POOL},
    {"OutputKey": "UserPoolClientId", "OutputValue": CLIENT},
    {"OutputKey": "Region", "OutputValue": "eu-west-1"},
    {"OutputKey": "MediaUrl", "OutputValue": "https://d111111abcdef8.cloudfront.net"},
]
DEVSTACK_OUTPUTS = {
    "api_url": "http://127.0.0.1:8000",
    "aws_endpoint_url": "http://127.0.0.1:5000",
    "region": "us-east-1",
    "user_pool_id": "us-east-1_abc",
    "user_pool_client_id": "client",
    "table_name": "photosky-local",
    "demo_user": {"username": "demo", "password": "PhotoSky-demo-2026"},
}
TARGET = Target(api_url=API, region="eu-west-1", user_pool_id=POOL, user_pool_client_id=CLIENT)


# --- outputs -------------------------------------------------------------------------------------------------------


def test_describe_stacks_outputs_and_a_plain_object_of_the_same_names_read_alike() -> None:
    plain = {entry["OutputKey"]: entry["OutputValue"] for entry in STACK_OUTPUTS}
    assert target_from_outputs(STACK_OUTPUTS) == target_from_outputs(plain) == TARGET  # trailing slash dropped


def test_the_dev_stacks_outputs_name_its_emulated_aws() -> None:
    assert target_from_outputs(DEVSTACK_OUTPUTS) == Target(
        api_url="http://127.0.0.1:8000",
        region="us-east-1",
        user_pool_id="us-east-1_abc",
        user_pool_client_id="client",
        aws_endpoint_url="http://127.0.0.1:5000",
    )


def test_stack_outputs_renamed_are_the_dev_stacks_outputs() -> None:
    renamed = {smoke.STACK_OUTPUT_NAMES.get(e["OutputKey"], e["OutputKey"]): e["OutputValue"] for e in STACK_OUTPUTS}
    assert target_from_outputs(renamed) == target_from_outputs(STACK_OUTPUTS)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([e for e in STACK_OUTPUTS if e["OutputKey"] != "UserPoolId"], "the outputs lack: UserPoolId"),
        (
            [e for e in STACK_OUTPUTS if e["OutputKey"] not in ("EndpointURL", "Region")],
            "the outputs lack: EndpointURL, Region (or pass --api-url)",
        ),
        (
            {k: v for k, v in DEVSTACK_OUTPUTS.items() if k != "user_pool_client_id"},
            "the outputs lack: user_pool_client_id",
        ),
        ({**DEVSTACK_OUTPUTS, "api_url": " "}, "the outputs lack: api_url (or pass --api-url)"),
        ([], "the outputs lack: EndpointURL, UserPoolId, UserPoolClientId, Region (or pass --api-url)"),
        ([{"OutputKey": "Region"}], "each entry of describe-stacks' Outputs list needs OutputKey and OutputValue"),
        (["EndpointURL"], "each entry of describe-stacks' Outputs list needs OutputKey and OutputValue"),
        ("https://example", "outputs must be describe-stacks' Outputs list or a JSON object"),
        ({**DEVSTACK_OUTPUTS, "region": "Ireland"}, "the region is not an AWS region: 'Ireland'"),
        ({**DEVSTACK_OUTPUTS, "aws_endpoint_url": "127.0.0.1:5000"}, "aws_endpoint_url must be an http(s) URL"),
        ({**DEVSTACK_OUTPUTS, "api_url": "ftp://127.0.0.1"}, "the API URL must be an http(s) URL without a query"),
        # The ID token would cross the network in clear.
        ({**DEVSTACK_OUTPUTS, "api_url": "http://abc123.execute-api.eu-west-1.amazonaws.com/api/"}, "must be https"),
    ],
)
def test_bad_outputs_are_named(document: Any, message: str) -> None:
    with pytest.raises(OutputsError, match=re.escape(message)):
        target_from_outputs(document)


def test_api_url_fills_in_for_a_resources_only_stack() -> None:
    resources_only = [e for e in STACK_OUTPUTS if e["OutputKey"] != "EndpointURL"]
    assert target_from_outputs(resources_only, api_url=f"{API}/") == TARGET


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        (json.dumps(STACK_OUTPUTS[1:]), "the outputs lack: EndpointURL (or pass --api-url)"),
    ],
)
def test_a_bad_outputs_file_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "outputs.json"
    if content is not None:
        path.write_text(content)
    assert smoke.main(["--outputs", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("ops.smoke: error: ")
    assert message in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("timeout", ["-1", "601", "soon"])
def test_a_timeout_out_of_range_is_a_usage_error(tmp_path: Path, timeout: str) -> None:
    with pytest.raises(SystemExit) as exited:
        smoke.main(["--outputs", str(tmp_path / "o.json"), "--timeout", timeout])
    assert exited.value.code == 2


# --- the report and the image --------------------------------------------------------------------------------------


def test_report_lines_align_verdict_step_and_latency() -> None:
    lines = [
        format_line("ok", smoke.CREATE_USER, 12.4, "photosky-smoke-abc"),
        format_line("FAIL", smoke.CLEANUP_ACCOUNT, 60012.0, "still 202"),
        format_line("LEFT", "left behind", None, "Cognito user x"),
        format_line("PASS", "total", 1712.6, "10 steps passed"),
    ]
    assert lines[0] == "ok    create user                   12 ms  photosky-smoke-abc"
    assert lines[3] == "PASS  total                       1713 ms  10 steps passed"
    # Every detail starts in the same column, latency or not.
    assert (
        len({line.index(detail) for line, detail in zip(lines, ("photo", "still", "Cognito", "10"), strict=True)}) == 1
    )


def test_the_smoke_jpeg_is_a_real_colour_gradient() -> None:
    data = smoke.smoke_jpeg()
    image = Image.open(io.BytesIO(data))
    image.load()
    assert (image.format, image.size, image.mode) == ("JPEG", smoke.SMOKE_IMAGE_SIZE, "RGB")

    def near(pixel: Any, expected: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 3 for a, b in zip(pixel, expected, strict=True))

    width, height = smoke.SMOKE_IMAGE_SIZE
    assert near(image.getpixel((0, 0)), (0, 0, 255))
    assert near(image.getpixel((width - 1, 0)), (255, 0, 128))
    assert near(image.getpixel((width - 1, height - 1)), (255, 255, 0))
    assert len(image.getcolors(maxcolors=width * height) or []) > 1000  # a picture, not a flat colour


# --- a scripted stage ----------------------------------------------------------------------------------------------


def fake_token(sub: str) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'sub': sub, 'token_use': 'id'})}.c2lnbmF0dXJl"


TOKEN = fake_token(SUB)


class FakeCognito:
    def __init__(self) -> None:
        self.users: dict[str, str | None] = {}
        self.failures: dict[str, Exception] = {}

    def _maybe_fail(self, operation: str) -> None:
        if operation in self.failures:
            raise self.failures[operation]

    def admin_create_user(self, *, UserPoolId: str, Username: str, **_: Any) -> dict[str, Any]:
        assert UserPoolId == POOL
        self._maybe_fail("admin_create_user")
        self.users[Username] = None
        return {}

    def admin_set_user_password(self, *, Username: str, Password: str, Permanent: bool, **_: Any) -> dict[str, Any]:
        assert Permanent
        self.users[Username] = Password
        return {}

    def initiate_auth(self, *, AuthFlow: str, ClientId: str, AuthParameters: dict[str, str]) -> dict[str, Any]:
        assert (AuthFlow, ClientId) == ("USER_PASSWORD_AUTH", CLIENT)
        assert self.users[AuthParameters["USERNAME"]] == AuthParameters["PASSWORD"]
        return {"AuthenticationResult": {"IdToken": TOKEN, "AccessToken": "access"}}

    def admin_delete_user(self, *, UserPoolId: str, Username: str) -> dict[str, Any]:
        self._maybe_fail("admin_delete_user")
        if Username not in self.users:
            raise ClientError({"Error": {"Code": "UserNotFoundException", "Message": "no"}}, "AdminDeleteUser")
        del self.users[Username]
        return {}


def reply(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Reply:
    data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(status, dict(headers or {}), data)


class FakeStage:
    """The API, S3's presigned POST and the media URL, as the contract describes them, for one user."""

    def __init__(self, statuses: tuple[str, ...] = ("PENDING", "READY")) -> None:
        self.statuses = list(statuses)
        self.profile = False
        self.photo: dict[str, Any] | None = None
        self.uploaded = b""
        self.calls: list[str] = []
        self.scripted: dict[str, list[Reply]] = defaultdict(list)
        self.on_call: dict[str, Callable[[], None]] = {}

    def script(self, call: str, *replies: Reply) -> None:
        self.scripted[call].extend(replies)

    def __call__(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None) -> Reply:
        parts = urllib.parse.urlsplit(url)
        if url.startswith(API):
            assert headers["Authorization"] == TOKEN
            path = parts.path.removeprefix("/api") + (f"?{parts.query}" if parts.query else "")
        else:
            assert "Authorization" not in headers  # S3 and the CDN get no token
            path = smoke.safe_url(url)
        call = f"{method} {path}"
        self.calls.append(call)
        if call in self.on_call:
            self.on_call.pop(call)()
        if self.scripted[call]:
            return self.scripted[call].pop(0)
        return self.route(method, path, data)

    def route(self, method: str, path: str, data: bytes | None) -> Reply:  # noqa: PLR0911 (one return per route)
        photo_path = f"/photos/{self.photo['photo_id']}" if self.photo else None
        if (method, path) == ("POST", "/users"):
            self.profile = True
            return reply(201, {"user_id": SUB})
        if (method, path) == ("POST", "/photos"):
            self.photo = {"photo_id": "p1", "status": "PENDING", "rejection_reason": None}
            return reply(201, {"photo": self.photo, "upload": {"url": UPLOAD_URL, "fields": {"key": "uploads/k"}}})
        if (method, path) == ("POST", UPLOAD_URL):
            self.uploaded = data or b""
            return reply(204)
        if method == "GET" and path == photo_path and self.photo:
            if len(self.statuses) > 1:
                self.photo["status"] = self.statuses.pop(0)
            else:
                self.photo["status"] = self.statuses[0]
            return reply(200, {**self.photo, "urls": {"small": PREVIEW_URL}})
        if (method, path) == ("GET", "/photos?limit=100"):
            items = [{**self.photo, "urls": {"small": PREVIEW_URL}}] if self.photo else []
            return reply(200, {"items": items, "next_cursor": None})
        if (method, path) == ("GET", smoke.safe_url(PREVIEW_URL)):
            return reply(200, b"RIFF\x00\x00\x00\x00WEBPVP8 ", {"Content-Type": "image/webp"})
        if method == "DELETE" and photo_path and path in (photo_path, f"{photo_path}?permanent=true"):
            if path.endswith("permanent=true"):
                self.photo = None
            return reply(204)
        if (method, path) == ("DELETE", "/users/me"):
            self.profile, self.photo = False, None
            return reply(204)
        return reply(404, {"Code": "NotFoundError", "Message": "not found"})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run_smoke(
    stage: FakeStage, cognito: FakeCognito | None = None, *, timeout: float = 60.0
) -> tuple[int, str, FakeCognito, FakeClock]:
    cognito = cognito or FakeCognito()
    clock = FakeClock()
    out = io.StringIO()
    runner = Smoke(
        TARGET,
        cognito,  # type: ignore[arg-type]
        stage,
        timeout=timeout,
        clock=clock,
        sleep=clock.sleep,
        username="photosky-smoke-test",
        password=PASSWORD,
    )
    code = smoke.run(runner, Report(out, clock))
    return code, out.getvalue(), cognito, clock


def step_lines(output: str) -> dict[str, str]:
    """Step name -> its verdict, for every step line."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"^(ok|FAIL|PASS|LEFT)\s+(.+?)\s+(\d+ ms)?\s\s", line)
        if match:
            found[match[2]] = match[1]
    return found


def test_a_full_run_passes_and_never_prints_the_password_or_a_token() -> None:
    stage = FakeStage()
    code, output, cognito, _ = run_smoke(stage)

    assert code == 0, output
    assert step_lines(output) == {**dict.fromkeys(smoke.STEPS, "ok"), smoke.CLEANUP: "ok", "total": "PASS"}
    assert output.splitlines()[-1].startswith("PASS  total")
    assert PASSWORD not in output
    assert TOKEN not in output
    assert TOKEN.split(".")[1] not in output
    assert "Signature=" not in output  # the signed preview URL is a credential for its object
    assert cognito.users == {}
    assert (stage.profile, stage.photo) == (False, None)
    assert stage.uploaded.count(smoke.smoke_jpeg()) == 1  # the form carries the real image


def test_a_rejected_upload_fails_the_wait_with_its_reason_and_is_cleaned_up() -> None:
    stage = FakeStage(statuses=("REJECTED",))
    code, output, cognito, _ = run_smoke(stage)

    assert code == 1
    assert "FAIL  wait for READY" in output
    assert "REJECTED: " in output
    assert stage.photo is None  # the account's deletion took it
    assert step_lines(output)[smoke.CLEANUP_ACCOUNT] == "ok"
    assert step_lines(output)[smoke.CLEANUP_USER] == "ok"
    assert output.splitlines()[-1].endswith("wait for READY failed; nothing left behind")
    assert cognito.users == {}
    assert not stage.profile


def test_the_rejection_reason_is_printed() -> None:
    stage = FakeStage(statuses=("REJECTED",))
    original = stage.route

    def with_reason(method: str, path: str, data: bytes | None) -> Reply:
        answer = original(method, path, data)
        if stage.photo is not None:
            stage.photo["rejection_reason"] = "the file is not a JPEG"
        return answer

    stage.route = with_reason  # type: ignore[method-assign]
    code, output, _, _ = run_smoke(stage)
    assert code == 1
    assert "REJECTED: the file is not a JPEG" in output


def test_still_pending_at_the_timeout_fails_after_polling_with_backoff() -> None:
    code, output, cognito, clock = run_smoke(FakeStage(statuses=("PENDING",)), timeout=5)
    assert code == 1
    assert "still PENDING after 5 s" in output
    assert clock.slept[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(clock.slept) <= smoke.MAX_POLL_SECONDS
    assert cognito.users == {}


def test_a_clean_up_that_cannot_delete_the_account_says_what_is_left_and_keeps_the_user() -> None:
    stage = FakeStage(statuses=("PENDING",))
    stage.script("DELETE /users/me", reply(500, {"Code": "InternalError", "Message": "boom"}))
    code, output, cognito, _ = run_smoke(stage, timeout=0)

    assert code == 1
    left = [line for line in output.splitlines() if line.startswith("LEFT")]
    assert len(left) == 2, output
    assert f"sub {SUB}" in left[0]
    assert "photo p1" in left[0]
    assert "photosky-smoke-test" in left[1]
    assert step_lines(output)[smoke.CLEANUP_USER] == "FAIL"
    # Kept: without it nobody can delete the account through the API.
    assert "photosky-smoke-test" in cognito.users
    assert output.splitlines()[-1].endswith("LEFT BEHIND: see above")


def test_a_deletion_that_has_begun_lets_the_user_go() -> None:
    stage = FakeStage(statuses=("PENDING",))
    # 202 until the budget runs out: the scheduled job finishes a marked deletion, so the user need not stay.
    stage.script("DELETE /users/me", *[reply(202, {"status": "deleting"})] * 100)
    code, output, cognito, _ = run_smoke(stage, timeout=0)

    assert code == 1
    assert cognito.users == {}
    left = [line for line in output.splitlines() if line.startswith("LEFT")]
    assert len(left) == 1
    assert "the scheduled clean-up job finishes it" in left[0]


def test_account_deletion_is_asked_again_until_204() -> None:
    stage = FakeStage()
    stage.script("DELETE /users/me", reply(202, {"status": "deleting"}), reply(202, {"status": "deleting"}))
    code, output, _, _ = run_smoke(stage)
    assert code == 0, output
    assert "204 after 3 call(s)" in output
    assert stage.calls.count("DELETE /users/me") == 3


def test_a_503_is_retried_after_retry_after_and_a_409_then_means_it_was_created() -> None:
    stage = FakeStage()
    busy = reply(503, {"Code": "ServiceUnavailable", "Message": "busy"}, {"Retry-After": "2"})
    stage.script("POST /users", busy, reply(409, {"Code": "ConflictError", "Message": "exists"}))
    code, output, _, clock = run_smoke(stage)
    assert code == 0, output
    assert clock.slept[0] == 2.0
    assert "409 after a retry" in output


def test_a_409_without_a_retry_is_a_failure() -> None:
    stage = FakeStage()
    stage.script("POST /users", reply(409, {"Code": "ConflictError", "Message": "exists"}))
    code, output, _, _ = run_smoke(stage)
    assert code == 1
    assert "POST /users: expected 201, got HTTP 409 ConflictError: exists" in output


def test_a_refused_token_leaves_no_account_to_delete() -> None:
    stage = FakeStage()
    stage.script("POST /users", reply(401, {"message": "Unauthorized"}))
    code, output, cognito, _ = run_smoke(stage)
    assert code == 1
    assert "refused the ID token (401)" in output
    assert "DELETE /users/me" not in stage.calls
    assert cognito.users == {}
    assert output.splitlines()[-1].endswith("create profile failed; nothing left behind")


def test_a_user_whose_creation_failed_is_looked_for_anyway() -> None:
    cognito = FakeCognito()
    cognito.failures["admin_create_user"] = ClientError(
        {"Error": {"Code": "InvalidPasswordException", "Message": "too weak"}}, "AdminCreateUser"
    )
    code, output, _, _ = run_smoke(FakeStage(), cognito)
    assert code == 1
    assert "FAIL  create user" in output
    assert "InvalidPasswordException" in output
    assert "photosky-smoke-test was not there" in output
    assert output.splitlines()[-1].endswith("nothing left behind")


def test_a_preview_that_is_not_an_image_fails_the_download() -> None:
    stage = FakeStage()
    stage.script(f"GET {smoke.safe_url(PREVIEW_URL)}", reply(200, b"<html>", {"Content-Type": "text/html"}))
    code, output, _, _ = run_smoke(stage)
    assert code == 1
    assert "FAIL  download preview" in output
    assert "not an image" in output
    assert "Signature" not in output


def test_an_unexpected_reply_is_a_failed_step_not_a_traceback() -> None:
    stage = FakeStage()
    stage.script("POST /photos", reply(201, {"photo": {}}))
    code, output, _, _ = run_smoke(stage)
    assert code == 1
    assert "FAIL  upload" in output
    assert "the reply has no photo.photo_id" in output


def test_ctrl_c_during_a_step_still_cleans_up() -> None:
    stage = FakeStage()
    stage.on_call[f"GET {smoke.safe_url(PREVIEW_URL)}"] = lambda: os.kill(os.getpid(), signal.SIGINT)
    code, output, cognito, _ = run_smoke(stage)
    assert code == 128 + signal.SIGINT
    assert "FAIL  download preview" in output
    assert "interrupted (SIGINT)" in output
    assert step_lines(output)[smoke.CLEANUP_ACCOUNT] == "ok"
    assert cognito.users == {}
    assert output.splitlines()[-1].endswith("interrupted by SIGINT during download preview; nothing left behind")


def test_a_signal_during_the_clean_up_does_not_stop_it() -> None:
    before = signal.getsignal(signal.SIGTERM)
    stage = FakeStage(statuses=("PENDING",))
    # A cancelled CI job sends SIGTERM (and may send it again): the first stops the steps, the next is only noted.
    stage.on_call["GET /photos/p1"] = lambda: os.kill(os.getpid(), signal.SIGTERM)
    stage.on_call["DELETE /users/me"] = lambda: os.kill(os.getpid(), signal.SIGTERM)
    code, output, cognito, _ = run_smoke(stage)
    assert code == 128 + signal.SIGTERM
    assert step_lines(output)[smoke.CLEANUP_ACCOUNT] == "ok"
    assert step_lines(output)[smoke.CLEANUP_USER] == "ok"
    assert "(SIGTERM during the clean-up: it was finished first)" in output
    assert cognito.users == {}
    assert signal.getsignal(signal.SIGTERM) == before  # the handlers are put back


def test_ctrl_c_between_two_steps_names_the_last_one_and_still_cleans_up() -> None:
    class SignalAfterReady(Report):
        def line(self, verdict: str, name: str, milliseconds: float | None, detail: str = "") -> None:
            super().line(verdict, name, milliseconds, detail)
            if name == smoke.WAIT_READY:  # as the e2e test does: on reading the line, while it is being printed
                os.kill(os.getpid(), signal.SIGINT)

    stage, cognito, clock, out = FakeStage(), FakeCognito(), FakeClock(), io.StringIO()
    runner = Smoke(TARGET, cognito, stage, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    code = smoke.run(runner, SignalAfterReady(out, clock))

    output = out.getvalue()
    assert code == 128 + signal.SIGINT
    verdicts = step_lines(output)
    assert smoke.LIST not in verdicts
    assert verdicts[smoke.CLEANUP_ACCOUNT] == "ok"
    assert cognito.users == {}
    assert output.splitlines()[-1].endswith("interrupted by SIGINT after wait for READY; nothing left behind")
