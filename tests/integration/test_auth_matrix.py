"""Every protected route turns every bad token away with API Gateway's 401, before any view runs; the two public
share-link routes take no token at all, and ignore one if it is sent."""

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
ALBUM_ID = "01JD0000000000000000000A1B"
LINK_ID = "01JD00000000000000000001NK"
ALBUM = f"/albums/{ALBUM_ID}"
UNKNOWN_TOKEN = "Q" * 43  # shaped like a share-link token, so the lookup really happens
BAD_TOKENS = bad_tokens(POOL, SUB)
# (method, route as declared, a concrete path, a body a valid caller could send)
PROTECTED = [
    ("POST", "/users", "/users", b'{"display_name": "Mallory"}'),
    ("GET", "/users/me", "/users/me", b""),
    ("PATCH", "/users/me", "/users/me", b'{"display_name": "Mallory"}'),
    ("GET", "/users/{user_id}", f"/users/{SUB}", b""),
    ("POST", "/photos", "/photos", b'{"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 10}'),
    ("GET", "/photos", "/photos?limit=5&favorite=true&sort=taken&from=2024-01-01&to=2024-12-31", b""),
    ("GET", "/photos/{photo_id}", f"/photos/{PHOTO_ID}", b""),
    ("PATCH", "/photos/{photo_id}", f"/photos/{PHOTO_ID}", b'{"title": "x", "version": 1}'),
    ("DELETE", "/photos/{photo_id}", f"/photos/{PHOTO_ID}?permanent=true", b""),
    ("GET", "/photos/timeline", "/photos/timeline", b""),
    ("POST", "/photos/batch", "/photos/batch", f'{{"action": "delete", "photo_ids": ["{PHOTO_ID}"]}}'.encode()),
    ("POST", "/photos/{photo_id}/restore", f"/photos/{PHOTO_ID}/restore", b""),
    ("GET", "/trash", "/trash?limit=5", b""),
    ("DELETE", "/trash", "/trash", b""),
    ("DELETE", "/users/me", "/users/me", b""),
    ("POST", "/albums", "/albums", b'{"title": "Mallory\'s"}'),
    ("GET", "/albums", "/albums?limit=5", b""),
    ("GET", "/albums/{album_id}", ALBUM, b""),
    ("PATCH", "/albums/{album_id}", ALBUM, b'{"title": "x", "version": 1}'),
    ("DELETE", "/albums/{album_id}", ALBUM, b""),
    ("POST", "/albums/{album_id}/photos", f"{ALBUM}/photos", f'{{"photo_ids": ["{PHOTO_ID}"]}}'.encode()),
    ("POST", "/albums/{album_id}/photos/remove", f"{ALBUM}/photos/remove", f'{{"photo_ids": ["{PHOTO_ID}"]}}'.encode()),
    ("GET", "/albums/{album_id}/photos", f"{ALBUM}/photos?limit=5", b""),
    ("POST", "/albums/{album_id}/members", f"{ALBUM}/members", b'{"username": "mallory", "role": "contributor"}'),
    ("GET", "/albums/{album_id}/members", f"{ALBUM}/members", b""),
    ("PATCH", "/albums/{album_id}/members/{user_id}", f"{ALBUM}/members/{SUB}", b'{"role": "contributor"}'),
    ("DELETE", "/albums/{album_id}/members/{user_id}", f"{ALBUM}/members/{SUB}", b""),
    ("POST", "/albums/{album_id}/links", f"{ALBUM}/links", b'{"allow_download": true}'),
    ("GET", "/albums/{album_id}/links", f"{ALBUM}/links", b""),
    ("DELETE", "/albums/{album_id}/links/{link_id}", f"{ALBUM}/links/{LINK_ID}", b""),
]
# The share-link routes: the token in the path is the credential, so they have no authorizer (app.py).
PUBLIC = [
    ("GET", "/public/albums/{token}", f"/public/albums/{UNKNOWN_TOKEN}", b""),
    ("POST", "/public/albums/{token}/unlock", f"/public/albums/{UNKNOWN_TOKEN}/unlock", b'{"password": "letmein"}'),
]
NO_SUCH_LINK = {"Code": "NotFoundError", "Message": "no such link"}
# What an Authorization header on a public route may hold: every bad kind, and a good one; none of it matters.
SENT_TO_PUBLIC = {**BAD_TOKENS, "valid_id_token": POOL.id_token(SUB)}


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


def test_every_route_but_health_and_the_public_ones_is_guarded_and_in_this_matrix() -> None:
    declared = {(method, path) for path, methods in app.routes.items() for method in methods}
    unguarded = {
        (method, path)
        for path, methods in app.routes.items()
        for method, entry in methods.items()
        if not isinstance(entry.authorizer, CognitoUserPoolAuthorizer)
    }
    # The only exceptions: /health, CORS preflights (browsers send them without a token; they return no data, see
    # tests/integration/test_cors.py), and the two share-link routes, whose credential is the token in the path.
    preflights = {(method, path) for method, path in unguarded if method == "OPTIONS"}
    assert preflights == {("OPTIONS", path) for path in app.routes if path != "/health"}
    assert unguarded - preflights == {("GET", "/health")} | {(method, route) for method, route, _, _ in PUBLIC}
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


def test_a_rejected_token_deletes_no_account(guarded_api: Client) -> None:
    # The one route that removes everything a user has: no kind of bad token may reach it.
    sub = "b0b00000-0000-4000-8000-000000000002"
    created = guarded_api.http.post(
        "/users", headers={"Authorization": POOL.id_token(sub)}, body=b'{"display_name": "B"}'
    )
    assert created.status_code == 201, created.body
    for kind, token in bad_tokens(POOL, sub).items():  # each forged for this very user
        headers = {} if token is None else {"Authorization": token}
        assert guarded_api.http.delete("/users/me", headers=headers).status_code == 401, kind
    me = guarded_api.http.get("/users/me", headers={"Authorization": POOL.id_token(sub)})
    assert me.status_code == 200, me.body


@pytest.mark.parametrize(("method", "route", "path", "payload"), PUBLIC, ids=[f"{m} {r}" for m, r, _, _ in PUBLIC])
@pytest.mark.parametrize("kind", list(SENT_TO_PUBLIC))
def test_the_public_routes_need_no_token_and_ignore_one(
    guarded_api: Client, method: str, route: str, path: str, payload: bytes, kind: str
) -> None:
    """No Authorization header: the view answers (404 for a token that opens nothing), not the gateway's 401. And
    whatever an Authorization header holds, bad or good, the answer is the same: it is never read."""
    plain = {"Content-Type": "application/json"}
    bare = guarded_api.http.request(method, path, headers=plain, body=payload)
    assert bare.status_code == 404, bare.body
    assert json.loads(bare.body) == NO_SUCH_LINK
    token = SENT_TO_PUBLIC[kind]
    sent = plain if token is None else {**plain, "Authorization": token}
    response = guarded_api.http.request(method, path, headers=sent, body=payload)
    assert (response.status_code, response.body) == (bare.status_code, bare.body)
