"""In AWS the cursor key comes from Secrets Manager, read once and only when a listing pages."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from chalicelib import deps
from tests.integration.conftest import User


@pytest.fixture
def secret_from_secrets_manager(aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch) -> Any:
    secrets = aws.client("secretsmanager")
    arn = secrets.create_secret(Name="photosky-local-cursor-secret", SecretString="k" * 48)["ARN"]
    monkeypatch.delenv("PHOTOSKY_CURSOR_SECRET")
    monkeypatch.setenv("PHOTOSKY_CURSOR_SECRET_ARN", arn)
    deps.reset()
    assert deps.settings().cursor_secret is None  # cached now, before the test client patches the stage's env
    return secrets


def upload(user: User, name: str) -> None:
    body = {"filename": name, "content_type": "image/jpeg", "size_bytes": 100}
    assert user.call("POST", "/photos", body).status_code == 201


def test_paging_uses_the_key_from_secrets_manager(alice: User, secret_from_secrets_manager: Any) -> None:
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        upload(alice, name)
    first = json.loads(alice.call("GET", "/photos?limit=2").body)
    second = json.loads(alice.call("GET", f"/photos?limit=2&cursor={first['next_cursor']}").body)
    assert [p["filename"] for p in first["items"] + second["items"]] == ["c.jpg", "b.jpg", "a.jpg"]


def test_requests_that_do_not_page_never_read_the_secret(alice: User, secret_from_secrets_manager: Any) -> None:
    secret_from_secrets_manager.delete_secret(SecretId="photosky-local-cursor-secret", ForceDeleteWithoutRecovery=True)
    upload(alice, "a.jpg")
    assert json.loads(alice.call("GET", "/photos").body)["next_cursor"] is None


def test_secrets_manager_throttling_is_a_503_not_a_500(
    alice: User, secret_from_secrets_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(alice, "a.jpg")
    upload(alice, "b.jpg")

    real_call = BaseClient._make_api_call
    calls: list[str] = []

    def throttle_secrets_only(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        calls.append(operation)
        if operation == "GetSecretValue":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, operation)
        return real_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", throttle_secrets_only)
    response = alice.call("GET", "/photos?limit=1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "Secrets Manager" in json.loads(response.body)["Message"]
    assert calls[-1] == "GetSecretValue"
