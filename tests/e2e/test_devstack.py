"""Black-box checks of the running dev stack over real HTTP: the contract in ../shared/CONTRACT.md, as a client sees it.

Tokens come from the emulated Cognito exactly as in AWS (InitiateAuth, USER_PASSWORD_AUTH). Bad tokens are
built from the demo user's real claims: signed by moto's own key (expired, wrong issuer), by a stranger's key,
or not signed at all, plus real tokens that are the wrong kind (access token) or for another app client.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jwt
import moto
import pytest

from devstack.clients import emulated_client
from devstack.token import new_confirmed_user
from tests.e2e.conftest import Spawn, free_port, port_is_free, started_devstack
from tests.support.cognito import FakeCognitoPool, unsigned_token

pytestmark = pytest.mark.e2e

UNAUTHORIZED = {"message": "Unauthorized"}
PUBLIC_FIELDS = {"user_id", "display_name", "bio", "created_at"}
ACCOUNT_FIELDS = PUBLIC_FIELDS | {"updated_at", "usage", "quota"}

# urllib must never go through a proxy, even if the environment names one: only 127.0.0.1 traffic.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Reply(NamedTuple):
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or None if the body is empty or not JSON


def call(
    base_url: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    raw: bytes | None = None,
) -> Reply:
    """One HTTP request; 4xx/5xx come back as replies, not exceptions (a dropped connection still raises)."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = token
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    try:
        with _opener.open(request, timeout=10) as response:
            status, reply_headers, content = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, reply_headers, content = e.code, e.headers, e.read()
    try:
        parsed = json.loads(content) if content else None
    except ValueError:
        parsed = None
    return Reply(status, {k.lower(): v for k, v in reply_headers.items()}, parsed)


# --- Cognito helpers ---------------------------------------------------------------------------------------------


class User(NamedTuple):
    username: str
    sub: str
    id_token: str
    access_token: str


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


@pytest.fixture(scope="session")
def api(devstack: dict[str, Any]) -> Callable[..., Reply]:
    base_url = devstack["api_url"]

    def request(method: str, path: str, **kwargs: Any) -> Reply:
        return call(base_url, method, path, **kwargs)

    return request


@pytest.fixture(scope="session")
def cognito(devstack: dict[str, Any]) -> Any:
    return emulated_client("cognito-idp", devstack)


def sign_in(cognito: Any, client_id: str, username: str, password: str) -> User:
    result = cognito.initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        ClientId=client_id,
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    id_token, access_token = result["IdToken"], result["AccessToken"]
    return User(username, _claims(id_token)["sub"], id_token, access_token)


@pytest.fixture(scope="session")
def demo(devstack: dict[str, Any], cognito: Any) -> User:
    creds = devstack["demo_user"]
    return sign_in(cognito, devstack["user_pool_client_id"], creds["username"], creds["password"])


@pytest.fixture
def new_user(devstack: dict[str, Any], cognito: Any) -> Callable[[], User]:
    """Sign up a brand-new user as the SPA would, confirm them as an admin would, and sign them in."""
    client_id = devstack["user_pool_client_id"]

    def make() -> User:
        return sign_in(cognito, client_id, *new_confirmed_user(devstack, "e2e"))

    return make


@pytest.fixture(scope="session")
def moto_jwk() -> dict[str, Any]:
    """The private key moto signs every Cognito token with (so "valid signature, bad claims" is possible)."""
    path = Path(moto.__file__).parent / "cognitoidp" / "resources" / "jwks-private.json.gz"
    jwk: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return jwk


def moto_sign(jwk: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    return jwt.encode(dict(claims), jwt.PyJWK(dict(jwk)).key, algorithm="RS256", headers={"kid": jwk["kid"]})


@pytest.fixture(scope="session")
def bad_tokens(devstack: dict[str, Any], cognito: Any, demo: User, moto_jwk: dict[str, Any]) -> dict[str, str | None]:
    """Every kind of credential the API must turn away with 401, by name (None: no Authorization header)."""
    claims = _claims(demo.id_token)
    real_kid = jwt.get_unverified_header(demo.id_token)["kid"]
    now = int(time.time())

    # A second app client on the same pool: its ID tokens are genuine, just not for the SPA's client.
    other_client = cognito.create_user_pool_client(
        UserPoolId=devstack["user_pool_id"],
        ClientName=f"e2e-other-{uuid.uuid4().hex[:6]}",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    creds = devstack["demo_user"]
    other_audience = sign_in(cognito, other_client, creds["username"], creds["password"]).id_token
    assert _claims(other_audience)["aud"] == other_client != devstack["user_pool_client_id"]

    stranger = FakeCognitoPool(devstack["user_pool_id"], devstack["user_pool_client_id"])
    tokens: dict[str, str | None] = {
        "missing": None,
        "garbage": "garbage",
        "a.b.c": "a.b.c",
        "alg_none": unsigned_token(claims),
        "wrong_key": stranger.sign(claims, kid=real_kid),
        "expired": moto_sign(moto_jwk, {**claims, "iat": now - 7200, "auth_time": now - 7200, "exp": now - 3600}),
        "wrong_issuer": moto_sign(
            moto_jwk, {**claims, "iss": f"https://cognito-idp.{devstack['region']}.amazonaws.com/us-east-1_Other"}
        ),
        "wrong_audience": other_audience,
        "access_token": demo.access_token,
    }
    assert _claims(demo.access_token)["token_use"] == "access"
    return tokens


BAD_TOKEN_KINDS = [
    "missing",
    "garbage",
    "a.b.c",
    "alg_none",
    "wrong_key",
    "expired",
    "wrong_issuer",
    "wrong_audience",
    "access_token",
]

# (method, path, body); "{demo}" is replaced by the demo user's sub.
PROTECTED_ROUTES = {
    "POST /users": ("POST", "/users", {"display_name": "Intruder"}),
    "GET /users/me": ("GET", "/users/me", None),
    "PATCH /users/me": ("PATCH", "/users/me", {"bio": "intruder was here"}),
    "GET /users/{id}": ("GET", "/users/{demo}", None),
}


# --- public ------------------------------------------------------------------------------------------------------


def test_health_is_public(api: Callable[..., Reply]) -> None:
    status, _, body = api("GET", "/health")
    assert (status, body) == (200, {"status": "ok"})


def test_outputs_describe_the_stack(devstack: dict[str, Any]) -> None:
    expected = {
        "api_url",
        "aws_endpoint_url",
        "region",
        "user_pool_id",
        "user_pool_client_id",
        "table_name",
        "bucket_name",
        "demo_user",
        "user_pool_arn",
        "uploads_queue_url",
        "uploads_dlq_url",
    }
    assert expected <= set(devstack)
    assert set(devstack["demo_user"]) >= {"username", "password"}
    for key in ("api_url", "aws_endpoint_url", "uploads_queue_url", "uploads_dlq_url"):
        assert devstack[key].startswith("http://127.0.0.1:"), key


# --- the demo user's profile, start to finish --------------------------------------------------------------------


def test_demo_user_profile_flow(api: Callable[..., Reply], demo: User) -> None:
    token = demo.id_token

    status, _, body = api("GET", "/users/me", token=token)
    assert status == 404, body
    assert set(body) == {"Code", "Message"}

    status, _, created = api("POST", "/users", token=token, body={"display_name": "  Demo  ", "bio": "hello"})
    assert status == 201, created
    assert set(created) == ACCOUNT_FIELDS
    assert created["user_id"] == demo.sub
    assert created["display_name"] == "Demo"
    assert created["bio"] == "hello"
    assert created["usage"] == {"photos": 0, "bytes": 0, "pending": 0, "trash": {"photos": 0, "bytes": 0}}
    assert created["created_at"].endswith(("Z", "+00:00"))

    status, _, body = api("POST", "/users", token=token, body={"display_name": "Again"})
    assert status == 409, body
    assert body["Code"] == "ConflictError"

    status, _, me = api("GET", "/users/me", token=token)
    assert status == 200, me
    assert set(me) == ACCOUNT_FIELDS
    assert me["user_id"] == demo.sub
    assert me["display_name"] == "Demo"
    assert me["usage"] == {"photos": 0, "bytes": 0, "pending": 0, "trash": {"photos": 0, "bytes": 0}}
    assert set(me["quota"]) == {"photos", "bytes", "pending"}
    assert me["quota"]["photos"] > 0
    assert me["quota"]["bytes"] > 0

    status, _, patched = api("PATCH", "/users/me", token=token, body={"bio": "new bio"})
    assert status == 200, patched
    assert patched["bio"] == "new bio"
    assert patched["display_name"] == "Demo"
    assert api("GET", "/users/me", token=token).body["bio"] == "new bio"

    status, _, cleared = api("PATCH", "/users/me", token=token, body={"bio": None})
    assert status == 200, cleared
    assert cleared["bio"] is None
    assert api("GET", "/users/me", token=token).body["bio"] is None

    status, _, public = api("GET", f"/users/{demo.sub}", token=token)
    assert status == 200, public
    assert set(public) == PUBLIC_FIELDS
    assert public == {"user_id": demo.sub, "display_name": "Demo", "bio": None, "created_at": created["created_at"]}

    status, _, me = api("GET", "/users/me", token=f"Bearer {token}")
    assert status == 200, me
    assert me["user_id"] == demo.sub


# --- other users -------------------------------------------------------------------------------------------------


def test_signed_up_user_can_use_the_api(api: Callable[..., Reply], new_user: Callable[[], User]) -> None:
    user = new_user()
    assert api("GET", "/users/me", token=user.id_token).status == 404

    status, _, created = api("POST", "/users", token=user.id_token, body={"display_name": "Newcomer"})
    assert status == 201, created
    assert created["user_id"] == user.sub

    status, _, me = api("GET", "/users/me", token=user.id_token)
    assert status == 200, me
    no_usage = {"photos": 0, "bytes": 0, "pending": 0, "trash": {"photos": 0, "bytes": 0}}
    assert (me["user_id"], me["display_name"], me["usage"]) == (user.sub, "Newcomer", no_usage)


def test_unknown_user_is_404(api: Callable[..., Reply], new_user: Callable[[], User]) -> None:
    user = new_user()
    status, _, body = api("GET", f"/users/{uuid.uuid4()}", token=user.id_token)
    assert status == 404, body
    assert set(body) == {"Code", "Message"}


@pytest.fixture
def two_profiles(api: Callable[..., Reply], new_user: Callable[[], User]) -> tuple[User, User, dict[str, Any]]:
    alice, bob = new_user(), new_user()
    status, _, alice_profile = api("POST", "/users", token=alice.id_token, body={"display_name": "Alice", "bio": "A"})
    assert status == 201, alice_profile
    status, _, bob_profile = api("POST", "/users", token=bob.id_token, body={"display_name": "Bob", "bio": "B"})
    assert status == 201, bob_profile
    return alice, bob, alice_profile


def test_patch_changes_only_the_callers_profile(
    api: Callable[..., Reply], two_profiles: tuple[User, User, dict[str, Any]]
) -> None:
    alice, bob, alice_before = two_profiles

    status, _, bob_after = api("PATCH", "/users/me", token=bob.id_token, body={"display_name": "Robert", "bio": "b2"})
    assert status == 200, bob_after
    assert (bob_after["user_id"], bob_after["display_name"], bob_after["bio"]) == (bob.sub, "Robert", "b2")

    assert api("GET", "/users/me", token=alice.id_token).body == alice_before
    status, _, seen_by_bob = api("GET", f"/users/{alice.sub}", token=bob.id_token)
    assert status == 200, seen_by_bob
    assert seen_by_bob == {k: alice_before[k] for k in PUBLIC_FIELDS}
    status, _, seen_by_alice = api("GET", f"/users/{bob.sub}", token=alice.id_token)
    assert status == 200, seen_by_alice
    assert (seen_by_alice["display_name"], seen_by_alice["bio"]) == ("Robert", "b2")
    assert set(seen_by_alice) == PUBLIC_FIELDS


def test_user_id_in_body_is_rejected(
    api: Callable[..., Reply], two_profiles: tuple[User, User, dict[str, Any]], new_user: Callable[[], User]
) -> None:
    alice, bob, alice_before = two_profiles
    bob_before = api("GET", "/users/me", token=bob.id_token).body

    status, _, body = api("PATCH", "/users/me", token=bob.id_token, body={"user_id": alice.sub, "bio": "hijacked"})
    assert status == 400, body
    assert body["Code"] == "BadRequestError"
    assert "user_id" in body["Message"]

    # Someone without a profile cannot create one in another user's name either.
    carol = new_user()
    status, _, body = api("POST", "/users", token=carol.id_token, body={"user_id": alice.sub, "display_name": "Alice"})
    assert status == 400, body
    assert "user_id" in body["Message"]
    assert api("GET", "/users/me", token=carol.id_token).status == 404

    assert api("GET", "/users/me", token=alice.id_token).body == alice_before
    assert api("GET", "/users/me", token=bob.id_token).body == bob_before


def test_another_users_profile_cannot_be_written_by_path(
    api: Callable[..., Reply], two_profiles: tuple[User, User, dict[str, Any]]
) -> None:
    alice, bob, alice_before = two_profiles
    status, _, body = api("PATCH", f"/users/{alice.sub}", token=bob.id_token, body={"bio": "hijacked"})
    assert status in (403, 404, 405), (status, body)
    assert api("GET", "/users/me", token=alice.id_token).body == alice_before


# --- authentication ----------------------------------------------------------------------------------------------


@pytest.mark.suite("auth")
@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
@pytest.mark.parametrize("route", list(PROTECTED_ROUTES))
def test_bad_credentials_get_401(
    api: Callable[..., Reply], demo: User, bad_tokens: dict[str, str | None], route: str, kind: str
) -> None:
    method, path, body = PROTECTED_ROUTES[route]
    status, headers, reply = api(method, path.format(demo=demo.sub), token=bad_tokens[kind], body=body)
    assert (status, reply) == (401, UNAUTHORIZED)
    assert headers["content-type"].startswith("application/json")


def test_moto_signed_token_with_real_claims_is_accepted(
    api: Callable[..., Reply], demo: User, moto_jwk: dict[str, Any]
) -> None:
    """Control for the expired and wrong-issuer cases: the key itself is trusted, so only the claim is at fault."""
    token = moto_sign(moto_jwk, _claims(demo.id_token))
    assert jwt.get_unverified_header(token)["kid"] == jwt.get_unverified_header(demo.id_token)["kid"]
    status, _, body = api("GET", f"/users/{uuid.uuid4()}", token=token)
    assert status == 404, body  # past the authorizer; nobody by that id


# --- bad requests ------------------------------------------------------------------------------------------------

MALFORMED_BODIES = {
    "truncated": b'{"display_name": ',
    "not_json": b"display_name=Demo",
    "nan": b'{"display_name": NaN}',
    "not_utf8": b'{"display_name": "\xff\xfe"}',
    "array": b'["display_name"]',
    "deeply_nested": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize("kind", list(MALFORMED_BODIES))
def test_malformed_json_is_400(api: Callable[..., Reply], new_user: Callable[[], User], method: str, kind: str) -> None:
    user = new_user()
    if method == "PATCH":
        assert api("POST", "/users", token=user.id_token, body={"display_name": "Before"}).status == 201
    path = "/users" if method == "POST" else "/users/me"
    status, _, body = api(method, path, token=user.id_token, raw=MALFORMED_BODIES[kind])
    assert status == 400, body
    assert isinstance(body, dict)
    assert set(body) == {"Code", "Message"}
    assert body["Code"] == "BadRequestError"


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("POST", "/users/me/extra"), ("GET", "/photos/x/y")])
def test_unknown_route_is_403_or_404(api: Callable[..., Reply], demo: User, method: str, path: str) -> None:
    status, _, body = api(method, path, token=demo.id_token)
    assert status in (403, 404), (status, body)
    assert isinstance(body, dict), body


@pytest.mark.parametrize("method", ["PUT", "TRACE", "QUERY", "BREW"])
def test_unsupported_method_is_a_json_405(api: Callable[..., Reply], demo: User, method: str) -> None:
    # Verbs the HTTP server itself does not know used to get a 501 HTML page (found by the fuzzer).
    status, _, body = api(method, "/users/me", token=demo.id_token)
    assert status == 405, (status, body)
    assert body["Code"] == "MethodNotAllowedError"


# --- the dev stack itself ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("busy", ["api_port", "aws_port"])
def test_second_stack_on_a_busy_port_exits_2(
    api: Callable[..., Reply], cognito: Any, devstack: dict[str, Any], spawn: Spawn, tmp_path: Path, busy: str
) -> None:
    running_api = int(devstack["api_url"].rsplit(":", 1)[1])
    running_aws = int(devstack["aws_endpoint_url"].rsplit(":", 1)[1])
    api_port, aws_port = (running_api, free_port()) if busy == "api_port" else (free_port(), running_aws)
    taken = running_api if busy == "api_port" else running_aws
    outputs = tmp_path / "second-outputs.json"

    second = spawn(
        api_port=api_port, aws_port=aws_port, outputs=outputs, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        stdout, stderr = second.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        second.kill()
        second.communicate()
        pytest.fail(f"a second dev stack on busy port {taken} did not exit within 15 s")

    message = stderr.decode(errors="replace")
    assert second.returncode == 2, (second.returncode, stdout, message)
    assert f"port {taken}" in message, message
    assert "in use" in message, message
    assert not outputs.exists()
    # The first stack is untouched.
    status, _, body = api("GET", "/health")
    assert (status, body) == (200, {"status": "ok"})
    assert cognito.describe_user_pool(UserPoolId=devstack["user_pool_id"])["UserPool"]["Id"] == devstack["user_pool_id"]


@pytest.mark.e2e
def test_a_demo_password_the_pool_refuses_is_a_clear_startup_error(spawn: Spawn, tmp_path: Path) -> None:
    aws_port = free_port()
    message = failed_start(spawn, tmp_path, {"PHOTOSKY_DEMO_PASSWORD": "short"}, aws_port=aws_port)
    assert "PHOTOSKY_DEMO_PASSWORD does not meet" in message
    assert port_is_free(aws_port), "the emulated AWS kept its port after a failed start"


def failed_start(spawn: Spawn, tmp_path: Path, env: dict[str, str], *, aws_port: int | None = None) -> str:
    """Start a dev stack that must refuse to start: exit 2 within a minute, one clear message, no traceback, no
    outputs file. Returns what it printed on stderr."""
    outputs = tmp_path / "refused-outputs.json"
    stack = spawn(
        api_port=free_port(),
        aws_port=aws_port or free_port(),
        outputs=outputs,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        extra_env=env,
    )
    try:
        _, stderr = stack.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        stack.kill()
        stack.communicate()
        pytest.fail(f"a dev stack started with {env} did not exit within 60 s")
    message = stderr.decode(errors="replace")
    assert stack.returncode == 2, message
    assert "Traceback" not in message
    assert not outputs.exists()
    return message


@pytest.mark.e2e
def test_photosky_settings_in_the_environment_win_over_the_config_file(tmp_path: Path) -> None:
    # .chalice/config.json says 10000 photos; the developer's PHOTOSKY_QUOTA_PHOTOS=2 used to be ignored.
    with started_devstack(tmp_path, extra_env={"PHOTOSKY_QUOTA_PHOTOS": "2"}) as outputs:
        demo = sign_in(
            emulated_client("cognito-idp", outputs),
            outputs["user_pool_client_id"],
            outputs["demo_user"]["username"],
            outputs["demo_user"]["password"],
        )
        status, _, profile = call(outputs["api_url"], "POST", "/users", token=demo.id_token, body={"display_name": "D"})
        assert status == 201, profile
        assert profile["quota"]["photos"] == 2
        photo = {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 100}
        statuses = [
            call(outputs["api_url"], "POST", "/photos", token=demo.id_token, body=photo).status for _ in range(3)
        ]
        assert statuses == [201, 201, 429]
    assert "PHOTOSKY_QUOTA_PHOTOS" in (tmp_path / "devstack.log").read_text()  # the override is logged, by name


@pytest.mark.e2e
def test_a_malformed_setting_in_the_environment_is_a_clear_startup_error(spawn: Spawn, tmp_path: Path) -> None:
    message = failed_start(spawn, tmp_path, {"PHOTOSKY_QUOTA_PHOTOS": "lots"})
    assert "PHOTOSKY_QUOTA_PHOTOS must be a whole number, got 'lots'" in message
