"""CORS: the API lets exactly the configured SPA origins read its responses, errors and 401s included."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from chalice.app import CognitoUserPoolAuthorizer
from chalice.test import Client

from chalicelib import deps
from chalicelib.config import ConfigError, Settings
from tests.integration.conftest import User

SPA = "http://127.0.0.1:8080"
OTHER_SPA = "https://d111111abcdef8.cloudfront.net"
STRANGER = "http://127.0.0.1:9999"


@pytest.fixture(autouse=True)
def allowed_origins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PHOTOSKY_ALLOWED_ORIGINS", f"{SPA}, {OTHER_SPA}/")
    deps.reset()
    yield
    deps.reset()


def test_an_allowed_origin_may_read_the_response(alice: User) -> None:
    for origin in (SPA, OTHER_SPA):
        response = alice.call("GET", "/users/me", Origin=origin)
        assert response.status_code == 404  # no profile yet: errors must be readable too
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Vary"] == "Origin"
        assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]


def test_another_origin_gets_no_cors_headers(alice: User) -> None:
    for origin in (STRANGER, "null", SPA + ".evil.test", "http://127.0.0.1:808"):
        body = {"display_name": "Alice"} if origin == STRANGER else None
        response = alice.call("POST", "/users", body, Origin=origin)
        assert "Access-Control-Allow-Origin" not in response.headers, origin
        assert response.headers["Vary"] == "Origin"
    # The request itself is served as usual (CORS is the browser's rule, not an authorization).
    assert alice.call("GET", "/users/me").status_code == 200


def test_no_origin_no_cors_headers(api: Client, alice: User) -> None:
    response = alice.call("GET", "/photos")
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in api.http.get("/health").headers


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/users", "OPTIONS, POST"),
        ("/users/me", "GET, OPTIONS, PATCH"),
        ("/users/abc", "GET, OPTIONS"),
        ("/photos", "GET, OPTIONS, POST"),
        ("/photos/01JD0000000000000000000000", "DELETE, GET, OPTIONS, PATCH"),
    ],
)
def test_preflight_from_an_allowed_origin_needs_no_token(api: Client, path: str, methods: str) -> None:
    response = api.http.request(
        "OPTIONS",
        path,
        headers={
            "Origin": SPA,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 204
    assert response.body in (b"", None)
    assert response.headers["Access-Control-Allow-Origin"] == SPA
    assert response.headers["Access-Control-Allow-Methods"] == methods
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert response.headers["Vary"] == "Origin"


def test_preflight_from_another_origin_is_refused_without_data(api: Client) -> None:
    for headers in ({"Origin": STRANGER, "Access-Control-Request-Method": "GET"}, {}):
        response = api.http.request("OPTIONS", "/users/me", headers=headers)
        assert response.status_code == 403
        assert json.loads(response.body) == {
            "Code": "ForbiddenError",
            "Message": "Origin: this origin may not call the API from a browser",
        }
        assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_routes_are_the_only_unguarded_ones_besides_health() -> None:
    from app import app

    unguarded = {
        (method, path)
        for path, methods in app.routes.items()
        for method, entry in methods.items()
        if not isinstance(entry.authorizer, CognitoUserPoolAuthorizer)
    }
    assert unguarded == {("GET", "/health")} | {("OPTIONS", path) for path in app.routes if path != "/health"}


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_the_gateways_401_carries_cors_headers_for_an_allowed_origin(api: Client, token: str | None) -> None:
    headers = {"Origin": SPA} | ({"Authorization": token} if token else {})
    response = api.http.get("/users/me", headers=headers)
    assert (response.status_code, json.loads(response.body)) == (401, {"message": "Unauthorized"})
    assert response.headers["Access-Control-Allow-Origin"] == SPA
    assert response.headers["Vary"] == "Origin"

    response = api.http.get("/users/me", headers={"Origin": STRANGER})
    assert response.status_code == 401
    assert "Access-Control-Allow-Origin" not in response.headers


def test_an_unknown_route_carries_cors_headers_for_an_allowed_origin(api: Client) -> None:
    response = api.http.get("/nope", headers={"Origin": SPA})
    assert response.status_code == 403
    assert response.headers["Access-Control-Allow-Origin"] == SPA


@pytest.mark.parametrize("value", ["*", "127.0.0.1:8080", "http://127.0.0.1:8080/app", "ftp://example.test"])
def test_a_malformed_origin_is_a_configuration_error(value: str) -> None:
    env = {"TABLE_NAME": "t", "BUCKET_NAME": "b", "AWS_REGION": "eu-west-1", "PHOTOSKY_CURSOR_SECRET": "s" * 16}
    with pytest.raises(ConfigError, match="PHOTOSKY_ALLOWED_ORIGINS"):
        Settings.from_env({**env, "PHOTOSKY_ALLOWED_ORIGINS": f"{SPA},{value}"})
    assert Settings.from_env({**env, "PHOTOSKY_ALLOWED_ORIGINS": " HTTP://LocalHost:5173/ ,,"}).allowed_origins == (
        "http://localhost:5173",
    )
    assert Settings.from_env(env).allowed_origins == ()
