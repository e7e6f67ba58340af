"""Test-wide set-up: the environment the app is imported under.

It must be in place before any test imports `app.py` (which reads its authorizer's pool ARN at import), and no
boto3 client may ever see real credentials or a real endpoint.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from tests.support.cognito import FakeCognitoPool
from tests.support.offline_aws import REAL_AWS_VARIABLES, offline_aws_environment

pytest_plugins = ["tests.support.reliability"]


def _one_request_at_a_time_in_moto() -> None:
    """In-process moto answers one request at a time, as the dev stack's moto server does (devstack/__main__.py,
    _SerializedDynamoDB): moto's DynamoDB is not thread-safe (a transaction deep-copies the table to roll back from,
    and a write from another thread meanwhile fails it with "dictionary changed size during iteration"), where real
    DynamoDB applies each request atomically. Threads in the code under test (the scheduled jobs' sweep, the
    worker races) still interleave between requests."""
    from moto.core.botocore_stubber import BotocoreStubber

    process_request = BotocoreStubber.process_request
    lock = threading.RLock()

    def serialized(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return process_request(self, request)

    BotocoreStubber.process_request = serialized  # type: ignore[method-assign]


_one_request_at_a_time_in_moto()

PROJECT_DIR = Path(__file__).resolve().parent.parent
STAGE = "local"

# One pool for the whole run: its key is generated once (RSA key generation is slow).
POOL = FakeCognitoPool()


def stage_environment(stage: str = STAGE) -> dict[str, str]:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


for _name in REAL_AWS_VARIABLES:
    os.environ.pop(_name, None)
os.environ.update({**stage_environment(), **offline_aws_environment(POOL.arn)})
