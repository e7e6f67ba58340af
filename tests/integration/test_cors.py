"""CORS: the API lets exactly the configured SPA origins read its responses, errors and 401s included."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.app import CognitoUserPoolAuthorizer
from chalice.test import Client

from chalicelib import deps
from chalicelib.albums.links import new_token
from chalicelib.config import ConfigError, Settings
from tests.integration.conftest import User
from tests.support.albums import create_album, create_link, public

ALLOWED_HEADERS = "Authorization, Content-Type, X-Link-Access"
ALBUM = "01JD0000000000000000000000"
LINK = "01JD0000000000000000000001"
TOKEN = "t" * 43
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
        ("/users/me", "DELETE, GET, OPTIONS, PATCH"),
        ("/users/abc", "GET, OPTIONS"),
        ("/photos", "GET, OPTIONS, POST"),
        ("/photos/01JD0000000000000000000000", "DELETE, GET, OPTIONS, PATCH"),
        ("/albums", "GET, OPTIONS, POST"),
        (f"/albums/{ALBUM}", "DELETE, GET, OPTIONS, PATCH"),
        (f"/albums/{ALBUM}/photos", "GET, OPTIONS, POST"),
        (f"/albums/{ALBUM}/photos/remove", "OPTIONS, POST"),
        (f"/albums/{ALBUM}/members", "GET, OPTIONS, POST"),
        (f"/albums/{ALBUM}/members/abc", "DELETE, OPTIONS, PATCH"),
        (f"/albums/{ALBUM}/links", "GET, OPTIONS, POST"),
        (f"/albums/{ALBUM}/links/{LINK}", "DELETE, OPTIONS"),
        (f"/public/albums/{TOKEN}", "GET, OPTIONS"),
        (f"/public/albums/{TOKEN}/unlock", "OPTIONS, POST"),
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
    assert response.headers["Access-Control-Allow-Headers"] == ALLOWED_HEADERS
    assert response.headers["Vary"] == "Origin"


def _example(template: str) -> str:
    """A concrete path for a route template: an id-shaped value for each parameter."""
    values = {"album_id": ALBUM, "photo_id": ALBUM, "link_id": LINK, "token": TOKEN, "user_id": "abc"}
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], template)


def test_every_route_answers_a_preflight_with_its_own_methods(api: Client) -> None:
    """A route added without its OPTIONS twin would be unusable from the SPA; this catches it for any new route."""
    from app import app

    for template, methods in app.routes.items():
        if template == "/health":
            continue  # same-origin-safe GET with no credentials: browsers send no preflight for it
        assert "OPTIONS" in methods, template
        response = api.http.request(
            "OPTIONS", _example(template), headers={"Origin": SPA, "Access-Control-Request-Method": "GET"}
        )
        assert response.status_code == 204, template
        assert response.headers["Access-Control-Allow-Methods"] == ", ".join(sorted(methods)), template
        assert response.headers["Access-Control-Allow-Headers"] == ALLOWED_HEADERS, template


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
    public = {("GET", "/public/albums/{token}"), ("POST", "/public/albums/{token}/unlock")}
    preflights = {("OPTIONS", path) for path in app.routes if path != "/health"}
    assert unguarded == {("GET", "/health")} | public | preflights


# --- the public share-link routes: no token, and CORS for the SPA origins only, like every other route -----------


@pytest.fixture
def links(alice: User) -> dict[str, Any]:
    album = create_album(alice)
    return {
        "open": create_link(alice, album["album_id"]),
        "locked": create_link(alice, album["album_id"], password="open sesame"),
    }


def _cors_for(response: Any, origin: str | None) -> None:
    """The response is readable by `origin` (an SPA origin), or by no one (None)."""
    assert response.headers["Vary"] == "Origin"
    if origin is None:
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Expose-Headers" not in response.headers
    else:
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]


def test_a_public_album_is_readable_from_the_spa_origins_only(api: Client, links: dict[str, Any]) -> None:
    path = f"/public/albums/{links['open']['token']}"
    for origin, readable in ((SPA, SPA), (OTHER_SPA, OTHER_SPA), (STRANGER, None), ("null", None)):
        response = public(api, "GET", path, Origin=origin)
        assert response.status_code == 200, response.body  # served all the same: CORS is the browser's rule
        _cors_for(response, readable)
    response = public(api, "GET", path)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_the_public_routes_errors_are_readable_from_the_spa_origin_only(api: Client, links: dict[str, Any]) -> None:
    """The SPA must read a 401 to ask for the password, a 404 to say the link is gone, a 429's Retry-After."""
    locked = links["locked"]["token"]
    cases: list[tuple[str, str, Any, int]] = [
        ("GET", f"/public/albums/{locked}", None, 401),
        ("GET", f"/public/albums/{new_token()}", None, 404),
        ("GET", f"/public/albums/{locked}?limit=0", None, 400),
        ("POST", f"/public/albums/{locked}/unlock", {"password": "wrong"}, 401),
    ]
    for method, path, body, status in cases:
        for origin, readable in ((SPA, SPA), (STRANGER, None)):
            response = public(api, method, path, body, Origin=origin)
            assert response.status_code == status, (path, response.body)
            _cors_for(response, readable)
    for _ in range(10):
        public(api, "POST", f"/public/albums/{locked}/unlock", {"password": "wrong"})
    for origin, readable in ((SPA, SPA), (STRANGER, None)):
        response = public(api, "POST", f"/public/albums/{locked}/unlock", {"password": "open sesame"}, Origin=origin)
        assert response.status_code == 429, response.body
        assert response.headers["Retry-After"].isdigit()
        _cors_for(response, readable)


def test_a_public_albums_preflight_allows_the_access_header_for_the_spa_origin_only(
    api: Client, links: dict[str, Any]
) -> None:
    for path, method in (
        (f"/public/albums/{links['locked']['token']}", "GET"),
        (f"/public/albums/{links['locked']['token']}/unlock", "POST"),
    ):
        asked = {
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,x-link-access",
        }
        response = api.http.request("OPTIONS", path, headers={"Origin": SPA, **asked})
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == SPA
        assert method in response.headers["Access-Control-Allow-Methods"].split(", ")
        assert "X-Link-Access" in response.headers["Access-Control-Allow-Headers"].split(", ")
        assert response.headers["Vary"] == "Origin"

        response = api.http.request("OPTIONS", path, headers={"Origin": STRANGER, **asked})
        assert response.status_code == 403
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Headers" not in response.headers


def test_an_unlocked_album_is_readable_with_the_access_header_from_the_spa(api: Client, links: dict[str, Any]) -> None:
    locked = links["locked"]["token"]
    unlocked = public(api, "POST", f"/public/albums/{locked}/unlock", {"password": "open sesame"}, Origin=SPA)
    assert unlocked.status_code == 200, unlocked.body
    _cors_for(unlocked, SPA)
    access = json.loads(unlocked.body)["access_token"]
    response = public(api, "GET", f"/public/albums/{locked}", Origin=SPA, **{"X-Link-Access": access})
    assert response.status_code == 200, response.body
    _cors_for(response, SPA)


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
