"""`python -m ops.smoke` against the session's dev stack, run as the deploy pipeline runs it against a stage (a child
process, the stack's outputs in a file), and what it leaves: nothing, checked in the emulated AWS itself, whether
it passes, a step fails, or it is interrupted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chalicelib import keys
from devstack.clients import emulated_client
from ops.smoke import CLEANUP_ACCOUNT, CLEANUP_USER, PASSWORD_SHAPE, STEPS, WAIT_READY
from tests.conftest import PROJECT_DIR

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 120.0  # bound only: a run takes about a second here
# Bound only. An upload the worker is still processing when its account goes is removed by the worker itself (it
# finds no photo to settle) a moment later; everything else is gone when the smoke test exits.
SETTLE_SECONDS = 10.0
STEP_LINE = re.compile(r"^(?P<verdict>ok|FAIL)\s{2,}(?P<name>\S.*?)\s{2,}(?P<ms>\d+) ms(\s{2}|$)")
JWT = re.compile(r"eyJ[\w-]+\.")
# describe-stacks' names for the dev stack's values, as the stage's single stack outputs them.
STACK_NAMES = {
    "EndpointURL": "api_url",
    "UserPoolId": "user_pool_id",
    "UserPoolClientId": "user_pool_client_id",
    "UserPoolArn": "user_pool_arn",
    "Region": "region",
    "TableName": "table_name",
    "BucketName": "bucket_name",
    "MediaUrl": "media_url",
}


def devstack_file(devstack: dict[str, Any], directory: Path) -> Path:
    path = directory / "outputs.json"
    path.write_text(json.dumps(devstack))
    return path


def describe_stacks_file(devstack: dict[str, Any], directory: Path) -> Path:
    """The dev stack's values under describe-stacks' names (EndpointURL with Chalice's trailing slash)."""
    values = {**devstack, "api_url": devstack["api_url"] + "/"}
    path = directory / "stack-outputs.json"
    path.write_text(json.dumps([{"OutputKey": key, "OutputValue": values[name]} for key, name in STACK_NAMES.items()]))
    return path


def stack_environment(devstack: dict[str, Any]) -> dict[str, str]:
    # What the pipeline has in AWS, pointed at the emulated AWS the standard way: boto3 reads AWS_ENDPOINT_URL.
    return {**os.environ, "AWS_ENDPOINT_URL": devstack["aws_endpoint_url"]}


def smoke_command(outputs: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ops.smoke", "--outputs", str(outputs), *extra]


def run_smoke(outputs: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        smoke_command(outputs, *extra),
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


def verdicts(output: str) -> dict[str, str]:
    """Each step line's step -> verdict (only lines with a latency count)."""
    return {match["name"]: match["verdict"] for line in output.splitlines() if (match := STEP_LINE.match(line))}


def identity(output: str) -> tuple[str, str]:
    """(user name, sub) of the run's throwaway user, as its report names them."""
    username = re.search(r"\b(photosky-smoke-[0-9a-f]+)\b", output)
    sub = re.search(r"ID token for sub ([0-9a-f-]+)", output)
    assert username, output
    assert sub, output
    return username[1], sub[1]


def assert_secrets_not_printed(output: str) -> None:
    assert not JWT.search(output), output
    assert not PASSWORD_SHAPE.search(output), output


def leftovers(devstack: dict[str, Any], username: str, sub: str) -> list[str]:
    """Whatever of the user is still stored: items in their partition (write-rate counters included, though
    ops.invariants.remains_of spares them: the account's deletion removes those too), objects under their prefixes
    and the Cognito user. Queries and prefix listings only: no Scan of the table the whole session shares (the
    smoke test makes no albums, the other place an account's items may be)."""
    dynamodb, s3 = emulated_client("dynamodb", devstack), emulated_client("s3", devstack)
    partition = dynamodb.query(
        TableName=devstack["table_name"],
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.user_pk(sub)}},
        ConsistentRead=True,
    )["Items"]
    left = [f"item {item['PK']['S']}/{item['SK']['S']}" for item in partition]
    for prefix in keys.user_object_prefixes(sub):
        listing = s3.list_objects_v2(Bucket=devstack["bucket_name"], Prefix=prefix)
        left += [f"object {obj['Key']}" for obj in listing.get("Contents", [])]
    cognito = emulated_client("cognito-idp", devstack)
    try:
        cognito.admin_get_user(UserPoolId=devstack["user_pool_id"], Username=username)
        left.append(f"Cognito user {username}")
    except cognito.exceptions.UserNotFoundException:
        pass
    return left


def assert_nothing_left(devstack: dict[str, Any], output: str) -> None:
    username, sub = identity(output)
    deadline = time.monotonic() + SETTLE_SECONDS
    while (left := leftovers(devstack, username, sub)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], output


@pytest.mark.parametrize("shape", ["outputs.json", "describe-stacks"])
def test_the_smoke_test_passes_and_leaves_nothing(devstack: dict[str, Any], tmp_path: Path, shape: str) -> None:
    if shape == "outputs.json":
        result = run_smoke(devstack_file(devstack, tmp_path))
    else:
        # The pipeline's input: no aws_endpoint_url, so the very code path that runs against AWS.
        result = run_smoke(describe_stacks_file(devstack, tmp_path), env=stack_environment(devstack))
        assert f"AWS_ENDPOINT_URL {devstack['aws_endpoint_url']}" in result.stdout.splitlines()[0]

    assert result.returncode == 0, result.stdout + result.stderr
    assert {step: verdicts(result.stdout).get(step) for step in STEPS} == dict.fromkeys(STEPS, "ok"), result.stdout
    last = result.stdout.splitlines()[-1]
    assert re.match(r"^PASS\s+total\s+\d+ ms  10 steps passed; nothing left behind$", last), result.stdout
    assert_secrets_not_printed(result.stdout + result.stderr)
    assert_nothing_left(devstack, result.stdout)


def test_a_failed_step_still_leaves_nothing(devstack: dict[str, Any], tmp_path: Path) -> None:
    # A real failure: no upload settles in 0 s, so the run stops with a PENDING photo, its upload in the bucket and
    # the worker possibly busy with it; the clean-up must take all of that, and the user.
    result = run_smoke(devstack_file(devstack, tmp_path), "--timeout", "0")

    assert result.returncode == 1, result.stdout + result.stderr
    steps = verdicts(result.stdout)
    assert steps[WAIT_READY] == "FAIL", result.stdout
    assert "still PENDING after 0 s" in result.stdout
    assert (steps[CLEANUP_ACCOUNT], steps[CLEANUP_USER]) == ("ok", "ok"), result.stdout
    last = result.stdout.splitlines()[-1]
    assert re.match(r"^FAIL\s+total\s+\d+ ms  wait for READY failed; nothing left behind$", last), result.stdout
    assert_secrets_not_printed(result.stdout + result.stderr)
    assert_nothing_left(devstack, result.stdout)


def test_ctrl_c_once_the_photo_is_ready_still_leaves_nothing(devstack: dict[str, Any], tmp_path: Path) -> None:
    process = subprocess.Popen(
        smoke_command(devstack_file(devstack, tmp_path), "--timeout", "20"),
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    try:
        # Interrupted as soon as the most exists: a READY photo with its original and previews, a profile, a user.
        while line := process.stdout.readline():
            seen.append(line)
            if STEP_LINE.match(line) and WAIT_READY in line:
                process.send_signal(signal.SIGINT)
                break
        rest, errors = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(seen) + rest

    assert process.returncode == 128 + signal.SIGINT, output + errors
    steps = verdicts(output)
    assert (steps[CLEANUP_ACCOUNT], steps[CLEANUP_USER]) == ("ok", "ok"), output
    # The signal lands in a step (its line says so) or between two (while the READY line is printed).
    last = output.splitlines()[-1]
    assert re.match(r"^FAIL\s+total\s+\d+ ms  interrupted by SIGINT (during|after) .+; nothing left behind$", last)
    assert "Traceback" not in errors
    assert_secrets_not_printed(output + errors)
    assert_nothing_left(devstack, output)
