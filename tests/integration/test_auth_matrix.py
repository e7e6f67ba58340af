"""Every protected route turns every bad token away with API Gateway's 401, before any view runs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from chalice.app import CognitoUserPoolAuthorizer
from chalice.test import Client
from moto import mock_aws

from app import app
from chalicelib import deps
from devstack import resources
from devstack.auth import CognitoIdTokenVerifier, StaticJwks
from devstack.gateway import verifying_test_client
from tests.conftest import POOL, PROJECT_DIR, STAGE
from tests.integration.conftest import TABLE
from tests.support.cognito import REGION, bad_tokens

pytestmark = pytest.mark.suite("auth")

SUB = "a11ce000-0000-4000-8000-000000000001"
PHOTO_ID = "01JD0000000000000000000000"
BAD_TOKENS = bad_tokens(POOL, SUB)
# (method, route as declared, a concrete path, a body a valid caller could send)
PROTECTED = [
    ("POST", "/users", "/users", b'{"display_name": "Mallory"}'),
    ("GET", "/users/me", "/users/me", b""),
    ("PATCH", "/users/me", "/users/me", b'{"display_name": "Mallory"}'),
    ("GET", "/users/{user_id}", f"/users/{SUB}", b""),
    ("POST", "/photos", "/photos", b'{"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 10}'),
    ("GET", "/photos", "/photos?limit=5", b""),
    ("GET", "/photos/{photo_id}", f"/photos/{PHOTO_ID}", b""),
    ("PATCH", "/photos/{photo_id}", f"/photos/{PHOTO_ID}", b'{"title": "x", "version": 1}'),
    ("DELETE", "/photos/{photo_id}", f"/photos/{PHOTO_ID}", b""),
]


@pytest.fixture(scope="module")
def guarded_api() -> Iterator[Client]:
    # One emulated AWS for the whole matrix: a rejected request never reaches the app, so cases cannot interfere.
    with mock_aws():
        deps.reset()
        session = boto3.session.Session(region_name=REGION)
        resources.create_table(session.client("dynamodb"), TABLE)
        verifier = CognitoIdTokenVerifier(issuer=POOL.issuer, audiences=[POOL.client_id], jwks=StaticJwks(POOL.jwks()))
        yield verifying_test_client(app, verifier, stage=STAGE, project_dir=str(PROJECT_DIR))
    deps.reset()


def test_every_route_but_health_is_guarded_and_in_this_matrix() -> None:
    declared = {(method, path) for path, methods in app.routes.items() for method in methods}
    unguarded = {
        (method, path)
        for path, methods in app.routes.items()
        for method, entry in methods.items()
        if not isinstance(entry.authorizer, CognitoUserPoolAuthorizer)
    }
    # The only exceptions: /health, and CORS preflights (browsers send them without a token; they return no
    # data, see tests/integration/test_cors.py).
    preflights = {(method, path) for method, path in unguarded if method == "OPTIONS"}
    assert preflights == {("OPTIONS", path) for path in app.routes if path != "/health"}
    assert unguarded - preflights == {("GET", "/health")}
    assert declared - unguarded == {(method, route) for method, route, _, _ in PROTECTED}


@pytest.mark.parametrize(
    ("method", "route", "path", "payload"), PROTECTED, ids=[f"{m} {r}" for m, r, _, _ in PROTECTED]
)
@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_bad_token_is_401_unauthorized(
    guarded_api: Client, method: str, route: str, path: str, payload: bytes, kind: str
) -> None:
    token = BAD_TOKENS[kind]
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = token
    response = guarded_api.http.request(method, path, headers=headers, body=payload)
    assert response.status_code == 401
    assert json.loads(response.body) == {"message": "Unauthorized"}


def test_a_rejected_token_writes_nothing(guarded_api: Client) -> None:
    forged = BAD_TOKENS["alg_none"] or ""
    guarded_api.http.post("/users", headers={"Authorization": forged}, body=b'{"display_name": "M"}')
    me = guarded_api.http.get("/users/me", headers={"Authorization": POOL.id_token(SUB)})
    assert me.status_code == 404
