"""Integration fixtures: in-process moto with PhotoSky's real table, and the API behind a verifying gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib import deps
from devstack import resources
from devstack.auth import CognitoIdTokenVerifier, StaticJwks
from devstack.gateway import verifying_test_client
from tests.conftest import POOL, PROJECT_DIR, STAGE, stage_environment
from tests.support.cognito import REGION
from tests.support.fakes import FakeDirectory

TABLE = stage_environment()["TABLE_NAME"]
BUCKET = stage_environment()["BUCKET_NAME"]


# Cognito's AdminGetUser, in-process: every test user can be found by the user name in their tokens. (moto's pools
# give users a `sub` of their own choosing, which would not match these tests' fixed ones; the Cognito adapter itself
# is tested against moto in test_user_directory.py, and the dev stack uses it for real.)
DIRECTORY = FakeDirectory()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    monkeypatch.setattr(deps, "user_directory", lambda: DIRECTORY)
    with mock_aws():
        deps.reset()
        session = boto3.session.Session(region_name=REGION)
        resources.create_table(session.client("dynamodb"), TABLE)
        resources.create_bucket(session.client("s3"), BUCKET, REGION)
        yield session
    deps.reset()


@pytest.fixture
def dynamodb(aws: boto3.session.Session) -> Any:
    return aws.client("dynamodb")


class User:
    """An API caller holding a valid ID token for one Cognito `sub`."""

    def __init__(self, client: Client, sub: str) -> None:
        self.sub = sub
        self.token = POOL.id_token(sub)
        self.username = DIRECTORY.add(sub).username
        self._client = client

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **headers: str) -> Any:
        sent = {"Authorization": self.token, "Content-Type": "application/json", **headers}
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        return self._client.http.request(method, path, headers=sent, body=payload)


@pytest.fixture
def api(aws: boto3.session.Session) -> Client:
    from app import app

    verifier = CognitoIdTokenVerifier(issuer=POOL.issuer, audiences=[POOL.client_id], jwks=StaticJwks(POOL.jwks()))
    return verifying_test_client(app, verifier, stage=STAGE, project_dir=str(PROJECT_DIR))


@pytest.fixture
def alice(api: Client) -> User:
    return User(api, "a11ce000-0000-4000-8000-000000000001")


@pytest.fixture
def bob(api: Client) -> User:
    return User(api, "b0b00000-0000-4000-8000-000000000002")
