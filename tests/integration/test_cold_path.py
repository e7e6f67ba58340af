"""What `import app` costs a cold Lambda: no image or JWT libraries, and no AWS client built at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import POOL, PROJECT_DIR, stage_environment

# Run in a fresh interpreter with only what Lambda would set: the stage's variables and the runtime's own.
PROBE = """
import json, sys
import botocore.session

def refuse(*args, **kwargs):
    raise AssertionError("a boto3/botocore client was created while importing app.py")

botocore.session.Session.create_client = refuse
import app
banned = {"PIL", "pillow_heif", "jwt", "cryptography", "moto", "devstack"}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in banned)
print(json.dumps({"heavy": heavy, "routes": sorted(app.app.routes)}))
"""


def lambda_like_environment(stage: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "photosky-dev",
        **stage_environment(stage),
        "BUCKET_NAME": "photosky-dev-photos",
        "COGNITO_USER_POOL_ARN": POOL.arn,
    }


def test_importing_the_app_loads_no_heavy_library_and_builds_no_client() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=PROJECT_DIR,
        env=lambda_like_environment("dev"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert "/users/me" in report["routes"]


def test_a_missing_pool_arn_fails_the_import_with_a_clear_message() -> None:
    env = lambda_like_environment("dev")
    del env["COGNITO_USER_POOL_ARN"]
    result = subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "COGNITO_USER_POOL_ARN is not set" in result.stderr
