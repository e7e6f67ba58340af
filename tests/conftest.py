"""Test-wide set-up: the environment the app is imported under.

It must be in place before any test imports `app.py` (which reads its authorizer's pool ARN at import), and no
boto3 client may ever see real credentials or a real endpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.cognito import REGION, FakeCognitoPool

pytest_plugins = ["tests.support.reliability"]

PROJECT_DIR = Path(__file__).resolve().parent.parent
STAGE = "local"

# One pool for the whole run: its key is generated once (RSA key generation is slow).
POOL = FakeCognitoPool()


def stage_environment(stage: str = STAGE) -> dict[str, str]:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
os.environ.update(
    {
        **stage_environment(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "COGNITO_USER_POOL_ARN": POOL.arn,
    }
)
