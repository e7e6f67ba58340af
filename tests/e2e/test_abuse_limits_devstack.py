"""Abuse limits on the real dev stack, over HTTP with real Cognito tokens: the per-user write rate limit and the
cap on outstanding uploads hold across requests the way they will in AWS (the counters live in the table)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devstack.clients import emulated_client
from devstack.token import new_confirmed_user
from tests.e2e.conftest import started_devstack
from tests.e2e.test_devstack import User, call, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.suite("abuse")]

RATE_LIMIT = 8
PENDING_CAP = 3


@pytest.fixture(scope="module")
def limited_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    # An hour-long window, so the test never straddles two windows.
    env = {
        "PHOTOSKY_WRITE_RATE_LIMIT": str(RATE_LIMIT),
        "PHOTOSKY_WRITE_RATE_WINDOW_SECONDS": "3600",
        "PHOTOSKY_MAX_PENDING_UPLOADS": str(PENDING_CAP),
    }
    with started_devstack(Path(tmp_path_factory.mktemp("limited")), env) as outputs:
        yield outputs


def person(stack: dict[str, Any], prefix: str) -> User:
    cognito = emulated_client("cognito-idp", stack)
    return sign_in(cognito, stack["user_pool_client_id"], *new_confirmed_user(stack, prefix))


def new_photo() -> dict[str, Any]:
    return {"filename": "f.jpg", "content_type": "image/jpeg", "size_bytes": 100}


def test_concurrent_writes_past_the_rate_limit_are_429_with_retry_after(limited_stack: dict[str, Any]) -> None:
    user, other = person(limited_stack, "rate"), person(limited_stack, "rate-other")
    api = limited_stack["api_url"]

    def patch_profile(n: int) -> Any:
        return call(api, "PATCH", "/users/me", body={"bio": f"edit {n}"}, token=user.id_token)

    assert call(api, "POST", "/users", body={"display_name": "Hasty"}, token=user.id_token).status == 201
    # Concurrent requests through the threaded dev API: the counter is one conditional update, so exactly the
    # budget's worth get through, whatever the interleaving.
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(patch_profile, range(2 * RATE_LIMIT)))
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [200] * (RATE_LIMIT - 1) + [429] * (RATE_LIMIT + 1)
    refused = next(reply for reply in replies if reply.status == 429)
    assert refused.body["Code"] == "TooManyRequestsError"
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    # Reads go on; another user's budget is their own.
    assert call(api, "GET", "/users/me", token=user.id_token).status == 200
    assert call(api, "POST", "/users", body={"display_name": "Calm"}, token=other.id_token).status == 201


def test_outstanding_uploads_are_capped_per_user(limited_stack: dict[str, Any]) -> None:
    user = person(limited_stack, "pending")
    api = limited_stack["api_url"]
    started = [call(api, "POST", "/photos", body=new_photo(), token=user.id_token) for _ in range(PENDING_CAP + 1)]

    assert [reply.status for reply in started] == [201] * PENDING_CAP + [429]
    assert "still in progress" in started[-1].body["Message"]
    assert started[-1].headers["retry-after"] == "5"
    first = started[0].body["photo"]["photo_id"]
    assert call(api, "DELETE", f"/photos/{first}", token=user.id_token).status == 204
    assert call(api, "POST", "/photos", body=new_photo(), token=user.id_token).status == 201
