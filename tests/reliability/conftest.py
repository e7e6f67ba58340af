"""Reliability fixtures: the integration suite's in-process moto and verifying API, plus what attacks need.

The `aws`, `api`, `alice` and `bob` fixtures are the integration ones (imported, not copied), so both suites run the
app exactly the same way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.loaders import Loader
from botocore.retries import standard
from chalice.test import Client
from moto.core.botocore_stubber import BotocoreStubber

from tests.integration.conftest import User, alice, api, aws, bob, dynamodb  # noqa: F401 - fixtures re-exported
from tests.reliability.moto_state import MadeOnce
from tests.reliability.support import Faults


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """The process environment after each test as it was before it (set up first, so torn down after `monkeypatch`).

    chalice.test's clients swap `os.environ` for a patched copy around each invocation and put back the object they
    found: two invocations racing in threads (the worker races) can leave the first one's copy in place, with the
    stage's variables and the test's own (AWS_EXECUTION_ENV, a monkeypatched limit) set for every later test."""
    real, saved = os.environ, dict(os.environ)
    yield
    os.environ = real  # noqa: B003 - the object itself, put back in place of a copy
    if dict(real) != saved:
        real.clear()
        real.update(saved)


@pytest.fixture(scope="session")
def botocore_loader() -> Loader:
    return botocore.session.create_loader(None)


@pytest.fixture(autouse=True)
def shared_botocore_loader(monkeypatch: pytest.MonkeyPatch, botocore_loader: Loader) -> None:
    """One botocore data loader for every session the run makes (moto's, the app's, the tests' own).

    The app builds each client from a fresh session, and each fresh session re-parses the service models' JSON
    (~0.1 s a client). Clients of one session already share their loader and treat what it loaded as read-only,
    so sharing it across sessions, and across tests, changes nothing but the time.
    """
    monkeypatch.setattr(botocore.session, "create_loader", lambda data_path=None: botocore_loader)


@pytest.fixture(scope="module")
def made_once() -> MadeOnce:
    """The scenes a module's tests start from, each built once through the app and restored for every later test
    (and case) that starts from it."""
    return MadeOnce()


@pytest.fixture
def s3(aws: boto3.session.Session) -> Any:  # noqa: F811 - the imported fixture
    return aws.client("s3")


@pytest.fixture
def carol(api: Client) -> User:  # noqa: F811
    return User(api, "ca201000-0000-4000-8000-000000000003")


@pytest.fixture
def faults(aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:  # noqa: F811
    """Error injection on the app's own clients (deps.dynamodb(), deps.s3()), retries without their back-off sleep.

    Back-off only spaces attempts out in time; dropping it keeps each persistent-fault case fast while the number of
    attempts (what the tests count) stays botocore's.
    """
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    injected = Faults()
    yield injected
    injected.clear()


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make in-process moto handle one request at a time, as DynamoDB and S3 apply each request atomically.

    moto's transactions check, write, and on a cancelled transaction restore a deep copy of the whole table: two
    threads inside moto at once lose each other's writes, an emulator artefact that says nothing about the app.
    Serialising moto's request handling keeps every interleaving *between* requests, which is what the app's
    conditional writes must survive.
    """
    lock = threading.RLock()
    original = BotocoreStubber.__call__

    def serialised(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", serialised)
