"""Schemathesis against the running dev stack, with a real Cognito token: every operation in openapi.yaml.

Each operation is fuzzed with schema-valid and schema-invalid requests; every response must be no 5xx, a
documented status, the documented body and headers. The public share-link operations are called without a token,
as a visitor's browser calls them. Random ids only reach the "no such album" answer, so the album operations are
fuzzed a second time against a real album (with a photo, a member and share links), and the public ones with real
link tokens: an open link, a password link without and with its access token, and a password link whose unlock
takes random passwords until its limit answers 429. The photo operations are fuzzed a second time against a real
READY photo (trashed and restored, favourited, tagged, deleted for good: a fresh photo each time it would be lost).
`DELETE /users/me` removes everything its caller has, so it is never sent as the shared fuzz user: each of its cases
has a throwaway user of its own. A stateful run follows the spec's links (upload, then get, edit, delete and restore
that photo; create an album, then edit, fill, share and link it). The budget is small in `make test` and large in
`make fuzz` (`PHOTOSKY_FUZZ_EXAMPLES`). Each example is a case in the "fuzz" reliability suite.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from PIL import Image
from schemathesis.checks import CHECKS
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from devstack.token import new_confirmed_user
from tests.conftest import PROJECT_DIR
from tests.e2e.test_devstack import Reply, User, api, cognito, sign_in  # noqa: F401  (fixtures used below)
from tests.e2e.test_photos_devstack import post_form
from tests.support.imaging_samples import encode
from tests.support.reliability import Cases

pytestmark = [pytest.mark.e2e, pytest.mark.suite("fuzz")]

EXAMPLES = int(os.environ.get("PHOTOSKY_FUZZ_EXAMPLES", "25"))
STATEFUL_STEPS = max(10, EXAMPLES // 2)
SCHEMA = schemathesis.openapi.from_path(PROJECT_DIR / "openapi.yaml")
# Deleting the account as the shared fuzz user would take its profile, photos and album with it mid-run (every later
# case would then be answered for a user with nothing), so the shared runs leave it out; it has its own test below,
# a throwaway user per case.
ACCOUNT_DELETION_ID = "deleteMyAccount"
SHARED_USER_OPERATIONS = SCHEMA.exclude(operation_id=ACCOUNT_DELETION_ID)
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure in CI reproduces locally
    database=None,
    phases=[Phase.explicit, Phase.generate],  # shrinking a failure against a live server costs more than it tells
    suppress_health_check=list(HealthCheck),
)


def excluded_checks(case: Any) -> list[Any]:
    excluded = []
    # The spec cannot express which cursors and path ids exist, so a schema-valid cursor or id may rightly be
    # refused (400 for a cursor the API never signed): "valid data must be accepted" does not hold for those.
    if case.query and case.query.get("cursor") is not None:
        excluded.append(positive_data_acceptance)
    # The same for an album's cover (it must be a photo in the album) and a link's expiry (it must be in the future
    # and at most ten years ahead): a schema-valid one may rightly be a 400.
    if isinstance(case.body, dict) and any(isinstance(case.body.get(f), str) for f in ("cover_photo_id", "expires_at")):
        excluded.append(positive_data_acceptance)
    # The photo listing's rules across parameters, which a schema per parameter cannot say: no tag filter in taken
    # order, and `from` not after `to`. Either is rightly a 400.
    query = case.query or {}
    if query.get("tag") is not None and query.get("sort") == "taken":
        excluded.append(positive_data_acceptance)
    if isinstance(query.get("from"), str) and isinstance(query.get("to"), str) and query["from"] > query["to"]:
        excluded.append(positive_data_acceptance)
    # The API accepts tags in any script, a superset of the portable pattern the spec documents; so a request the
    # spec calls invalid may rightly succeed. Every other check (no 5xx, documented status and body) still runs.
    excluded.append(negative_data_rejection)
    return excluded


# Headers that frame the message itself, the HTTP client's business: schemathesis's coverage phase may send any
# header name, and a nonsense Transfer-Encoding is refused by the server (as CloudFront or API Gateway would) before
# any route sees it, with a status no operation documents. Framing attacks have their own suite (edges).
FRAMING_HEADERS = frozenset({"transfer-encoding", "content-length", "connection", "host", "te", "trailer", "upgrade"})


def unframed(case: Any) -> Any:
    if case.headers:
        case.headers = {name: value for name, value in case.headers.items() if name.lower() not in FRAMING_HEADERS}
    return case


def is_public(case: Any) -> bool:
    """An operation the spec says needs no token (`security: []`): the public share-link ones, and health."""
    return bool(case.operation.definition.raw.get("security") == [])


def credentials(case: Any, token: dict[str, str]) -> dict[str, str]:
    """What to send as the caller: the token, except to a public operation, which a visitor calls without one."""
    return {} if is_public(case) else token


def is_positive(case: Any) -> bool:
    return case.meta is None or bool(case.meta.generation.mode.is_positive)


@pytest.fixture(scope="module")
def fuzzer_user(devstack: dict[str, Any], cognito: Any, api: Callable[..., Any]) -> User:  # noqa: F811
    """A fresh user with a profile, so the profile routes have something to answer."""
    user = sign_in(cognito, devstack["user_pool_client_id"], *new_confirmed_user(devstack, "fuzz"))
    reply = api("POST", "/users", token=user.id_token, body={"display_name": "Fuzzer"})
    assert reply.status == 201, reply
    return user


@pytest.fixture(scope="module")
def fuzzer(fuzzer_user: User) -> dict[str, str]:
    return {"Authorization": fuzzer_user.id_token}


@pytest.fixture(scope="module")
def session() -> requests.Session:
    return requests.Session()


@SHARED_USER_OPERATIONS.parametrize()
@FUZZ_SETTINGS
def test_every_operation_survives_fuzzing(
    case: Any, devstack: dict[str, Any], fuzzer: dict[str, str], session: requests.Session, cases: Cases
) -> None:
    cases.tried()
    unframed(case).call_and_validate(
        base_url=devstack["api_url"],
        headers=credentials(case, fuzzer),
        session=session,
        excluded_checks=excluded_checks(case),
    )


def test_stateful_workflows_follow_the_links(
    devstack: dict[str, Any], fuzzer: dict[str, str], session: requests.Session, cases: Cases
) -> None:
    base_machine = SHARED_USER_OPERATIONS.as_state_machine()

    class Workflow(base_machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            unframed(case)
            return {"base_url": devstack["api_url"], "headers": credentials(case, fuzzer), "session": session}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            cases.tried()
            case.validate_response(response, excluded_checks=excluded_checks(case), headers=credentials(case, fuzzer))

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=max(3, EXAMPLES // 5),
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_the_checks_we_rely_on_exist() -> None:
    # Guards the exclusions above against a schemathesis upgrade renaming them (an unknown name would exclude
    # nothing and the suite would fail for the wrong reason, or worse, a rename would silently skip a check).
    names = set(CHECKS.get_all_names())
    assert {"not_a_server_error", "status_code_conformance", "response_schema_conformance"} <= names
    assert {"positive_data_acceptance", "negative_data_rejection"} <= names


def _operation_ids(schema: Any) -> set[str]:
    return {result.ok().definition.raw["operationId"] for result in schema.get_all_operations()}


def test_only_a_throwaway_user_is_ever_deleted() -> None:
    # The shared runs (stateless and stateful) must never hold the operation; its own test must hold only it.
    assert ACCOUNT_DELETION_ID in _operation_ids(SCHEMA)
    assert ACCOUNT_DELETION_ID not in _operation_ids(SHARED_USER_OPERATIONS)
    assert _operation_ids(ACCOUNT_DELETION) == {ACCOUNT_DELETION_ID}
    # Nor may a link lead the state machine to it (its rules are named after the operations they call).
    rules = dir(SHARED_USER_OPERATIONS.as_state_machine())
    assert any(name.endswith("_POST_photos_photo_id_restore") for name in rules)  # the names are what we think
    assert not any("DELETE_users_me" in name for name in rules)


# --- albums and share links that exist --------------------------------------------------------------------------

ALBUM_OPERATIONS = SCHEMA.include(path_regex=r"^/albums/\{album_id\}")
PUBLIC_OPERATIONS = SCHEMA.include(path_regex=r"^/public/")
LINK_PASSWORD = "fuzz-password"  # the password links' password; the fuzzer's random ones are not it
SETTLE_SECONDS = 15.0


@dataclass
class Estate:
    """Real things for the fuzzer to aim at: the fuzzer's READY photo, their album holding it with a second user as
    a member, and share links. Operations that destroy what they are aimed at get a fresh one each case."""

    call: Callable[..., Reply]
    owner: User
    friend: User
    photo_id: str
    album_id: str = ""
    open_token: str = ""  # no password, downloads allowed
    locked_token: str = ""  # a password; `access` is the access token its right password earned
    access: str = ""
    guessed_token: str = ""  # a password; only the fuzzer's wrong guesses are ever sent to it

    def as_owner(
        self, method: str, path: str, body: Any = None, expect: int = 200, *, retry_on: tuple[int, ...] = ()
    ) -> Any:
        """A set-up call that must succeed. `retry_on`: the answers a retried write may get on the dev stack, where
        moto ignores DynamoDB's idempotency token: when the API's DynamoDB call times out after committing, botocore's
        retry of the same transaction fails its own condition (a new album's 409, a new link's 404)."""
        for _ in range(3):
            reply = self.call(method, path, token=self.owner.id_token, body=body)
            if reply.status not in (*retry_on, 503):
                break
        assert reply.status == expect, (method, path, reply)
        return reply.body

    def new_album(self) -> str:
        return str(self.as_owner("POST", "/albums", {"title": "Fuzzed"}, 201, retry_on=(409,))["album_id"])

    def add_friend(self, album_id: str) -> None:
        member = {"username": self.friend.username, "role": "viewer"}
        for _ in range(3):
            reply = self.call("POST", f"/albums/{album_id}/members", token=self.owner.id_token, body=member)
            if reply.status in (201, 409):  # 409 "already a member": a retried write found what it had made
                return
        raise AssertionError(("POST", f"/albums/{album_id}/members", reply))

    def new_link(self) -> str:
        return str(self.as_owner("POST", f"/albums/{self.album_id}/links", {}, 201, retry_on=(404,))["link_id"])

    def restore_photo(self) -> None:
        reply = self.as_owner("POST", f"/albums/{self.album_id}/photos", {"photo_ids": [self.photo_id]})
        assert reply["results"][0]["status"] in ("added", "already"), reply

    def aim(self, case: Any) -> Callable[[], None] | None:
        """Point the case at real things (and, when it is schema-valid, at the real photo, member and version);
        returns what to do after the call to leave the estate as it was, if anything."""
        where, method = case.operation.path, case.method.upper()
        params = case.path_parameters
        params["album_id"] = self.album_id
        if (method, where) == ("DELETE", "/albums/{album_id}"):
            params["album_id"] = self.new_album()
        elif where == "/albums/{album_id}/members/{user_id}":
            params["user_id"] = self.friend.sub
            if method == "DELETE":
                params["album_id"] = self.new_album()
                self.add_friend(params["album_id"])
        elif where == "/albums/{album_id}/links/{link_id}":
            params["link_id"] = self.new_link()
        body = case.body if is_positive(case) and isinstance(case.body, dict) else None
        if body is None:
            return None
        if (method, where) == ("PATCH", "/albums/{album_id}"):
            if "version" in body:
                body["version"] = self.as_owner("GET", f"/albums/{self.album_id}")["version"]
            if isinstance(body.get("cover_photo_id"), str):
                body["cover_photo_id"] = self.photo_id
        elif method == "POST" and where in ("/albums/{album_id}/photos", "/albums/{album_id}/photos/remove"):
            if isinstance(body.get("photo_ids"), list) and body["photo_ids"]:
                body["photo_ids"][0] = self.photo_id
                if where.endswith("/remove"):
                    return self.restore_photo
        elif (method, where) == ("POST", "/albums/{album_id}/members") and "username" in body:
            body["username"] = self.friend.username
        return None


def _ready_photo(call: Callable[..., Reply], token: str) -> str:
    # Random pixels: a second copy of the same bytes would be REJECTED as a duplicate (and JPEG makes nearby solid
    # colours the same bytes).
    data = encode(Image.frombytes("RGB", (64, 48), os.urandom(64 * 48 * 3)), "JPEG")
    body = {"filename": "fuzz.jpg", "content_type": "image/jpeg", "size_bytes": len(data)}
    created = call("POST", "/photos", token=token, body=body)
    assert created.status == 201, created
    form = created.body["upload"]
    assert post_form(form["url"], form["fields"], data, "image/jpeg") in (200, 201, 204)
    photo_id = str(created.body["photo"]["photo_id"])
    deadline = time.monotonic() + SETTLE_SECONDS
    while (status := call("GET", f"/photos/{photo_id}", token=token).body["status"]) == "PENDING":
        assert time.monotonic() < deadline, "the upload did not settle"
        time.sleep(0.1)
    assert status == "READY", status
    return photo_id


@pytest.fixture(scope="module")
def estate(
    devstack: dict[str, Any],
    cognito: Any,  # noqa: F811
    api: Callable[..., Reply],  # noqa: F811
    fuzzer_user: User,
) -> Estate:
    friend = sign_in(cognito, devstack["user_pool_client_id"], *new_confirmed_user(devstack, "friend"))
    built = Estate(api, fuzzer_user, friend, _ready_photo(api, fuzzer_user.id_token))
    built.album_id = built.new_album()
    built.restore_photo()
    built.add_friend(built.album_id)
    links = f"/albums/{built.album_id}/links"
    built.open_token = built.as_owner("POST", links, {"allow_download": True}, 201)["token"]
    built.locked_token = built.as_owner("POST", links, {"password": LINK_PASSWORD}, 201)["token"]
    built.guessed_token = built.as_owner("POST", links, {"password": LINK_PASSWORD}, 201)["token"]
    unlocked = api("POST", f"/public/albums/{built.locked_token}/unlock", body={"password": LINK_PASSWORD})
    assert unlocked.status == 200, unlocked
    built.access = unlocked.body["access_token"]
    return built


@ALBUM_OPERATIONS.parametrize()
@FUZZ_SETTINGS
def test_album_operations_survive_fuzzing_on_a_real_album(
    case: Any, devstack: dict[str, Any], fuzzer: dict[str, str], estate: Estate, session: requests.Session, cases: Cases
) -> None:
    cases.tried()
    undo = estate.aim(unframed(case))
    try:
        case.call_and_validate(
            base_url=devstack["api_url"], headers=fuzzer, session=session, excluded_checks=excluded_checks(case)
        )
    finally:
        if undo is not None:
            undo()


@PUBLIC_OPERATIONS.parametrize()
@FUZZ_SETTINGS
def test_public_operations_survive_fuzzing_with_real_links(
    case: Any, devstack: dict[str, Any], estate: Estate, session: requests.Session, cases: Cases
) -> None:
    """Each case three ways for the album (the open link; the password link without, then with its access token)
    and two for unlocking (the open link takes any password; a password link wrong guesses, then 429 after ten)."""
    unframed(case)
    with_access = {"X-Link-Access": estate.access}
    variants: list[tuple[str, dict[str, str]]] = (
        [(estate.open_token, {}), (estate.locked_token, {}), (estate.locked_token, with_access)]
        if case.method.upper() == "GET"
        else [(estate.open_token, {}), (estate.guessed_token, {})]
    )
    for token, headers in variants:
        cases.tried()
        case.path_parameters["token"] = token
        case.call_and_validate(
            base_url=devstack["api_url"], headers=headers, session=session, excluded_checks=excluded_checks(case)
        )


# --- the fuzzer's own photos, and deleting an account ------------------------------------------------------------

PHOTO_OPERATIONS = SCHEMA.include(path_regex=r"^/photos/(\{photo_id\}|batch$)")
ACCOUNT_DELETION = SCHEMA.include(operation_id=ACCOUNT_DELETION_ID)
DELETION_SECONDS = 30.0


@dataclass
class Library:
    """A READY photo of the fuzzer's in no album (trashing it must not disturb the album cases), put back after each
    case; a case that would delete a photo for good gets a fresh one instead."""

    call: Callable[..., Reply]
    owner: User
    photo_id: str

    def as_owner(self, method: str, path: str, expect: int, body: Any = None) -> Any:
        for _ in range(3):
            reply = self.call(method, path, token=self.owner.id_token, body=body)
            if reply.status != 503:
                break
        assert reply.status == expect, (method, path, reply)
        return reply.body

    def fresh_photo(self) -> str:
        return _ready_photo(self.call, self.owner.id_token)

    def trash(self) -> None:
        self.as_owner("DELETE", f"/photos/{self.photo_id}", 204)

    def restore(self) -> None:
        restored = self.as_owner("POST", f"/photos/{self.photo_id}/restore", 200)
        assert restored["trashed_at"] is None, restored

    def aim(self, case: Any) -> Callable[[], None] | None:
        """Point the case at the photo (a schema-valid body at its current version); returns what puts it back."""
        where, method = case.operation.path, case.method.upper()
        if "photo_id" in case.path_parameters:
            case.path_parameters["photo_id"] = self.photo_id
        if (method, where) == ("DELETE", "/photos/{photo_id}"):
            if (case.query or {}).get("permanent") in (True, "true"):
                case.path_parameters["photo_id"] = self.fresh_photo()
                return None
            return self.restore
        if (method, where) == ("POST", "/photos/{photo_id}/restore"):
            self.trash()  # so that there is something to restore
            return self.restore
        body = case.body if is_positive(case) and isinstance(case.body, dict) else None
        if body is None:
            return self.restore if where == "/photos/batch" else None
        if (method, where) == ("PATCH", "/photos/{photo_id}") and "version" in body:
            body["version"] = self.as_owner("GET", f"/photos/{self.photo_id}", 200)["version"]
        elif where == "/photos/batch" and isinstance(body.get("photo_ids"), list) and body["photo_ids"]:
            body["photo_ids"][0] = self.fresh_photo() if body.get("action") == "delete" else self.photo_id
        return self.restore if where == "/photos/batch" else None


@pytest.fixture(scope="module")
def library(api: Callable[..., Reply], fuzzer_user: User) -> Library:  # noqa: F811
    return Library(api, fuzzer_user, _ready_photo(api, fuzzer_user.id_token))


@PHOTO_OPERATIONS.parametrize()
@FUZZ_SETTINGS
def test_photo_operations_survive_fuzzing_on_a_real_photo(
    case: Any,
    devstack: dict[str, Any],
    fuzzer: dict[str, str],
    library: Library,
    session: requests.Session,
    cases: Cases,
) -> None:
    cases.tried()
    undo = library.aim(unframed(case))
    try:
        case.call_and_validate(
            base_url=devstack["api_url"], headers=fuzzer, session=session, excluded_checks=excluded_checks(case)
        )
    finally:
        if undo is not None:
            undo()


@ACCOUNT_DELETION.parametrize()
@settings(FUZZ_SETTINGS, max_examples=min(EXAMPLES, 10))  # no parameters or body: more examples add little
def test_account_deletion_survives_fuzzing_as_a_throwaway_user(
    case: Any,
    devstack: dict[str, Any],
    cognito: Any,  # noqa: F811
    api: Callable[..., Reply],  # noqa: F811
    session: requests.Session,
    cases: Cases,
) -> None:
    """Each case deletes a user made for it, who has a profile, a READY photo (in the trash) and an album; retried
    while it answers 202 it ends in 204, and the profile is gone."""
    cases.tried()
    user = sign_in(cognito, devstack["user_pool_client_id"], *new_confirmed_user(devstack, "doomed"))
    token = {"Authorization": user.id_token}
    assert api("POST", "/users", token=user.id_token, body={"display_name": "Doomed"}).status == 201
    photo_id = _ready_photo(api, user.id_token)
    album = api("POST", "/albums", token=user.id_token, body={"title": "Doomed"})
    assert album.status == 201, album
    added = api("POST", f"/albums/{album.body['album_id']}/photos", token=user.id_token, body={"photo_ids": [photo_id]})
    assert added.status == 200, added
    assert api("DELETE", f"/photos/{photo_id}", token=user.id_token).status == 204
    response = unframed(case).call_and_validate(
        base_url=devstack["api_url"], headers=token, session=session, excluded_checks=excluded_checks(case)
    )
    if response.status_code not in (202, 204):
        return  # a refused case (a negative one): nothing was deleted, nothing more to check
    deadline = time.monotonic() + DELETION_SECONDS
    while (again := api("DELETE", "/users/me", token=user.id_token)).status in (202, 503):
        assert time.monotonic() < deadline, "the account deletion did not finish"
        time.sleep(0.2)
    assert again.status == 204, again
    assert api("GET", "/users/me", token=user.id_token).status == 404
    assert api("GET", f"/photos/{photo_id}", token=user.id_token).status == 404


# --- what random generation does not reach: JSON escapes of lone surrogates, non-ASCII header bytes --------------

# A JSON string may spell a lone surrogate ("\ud800"); json.loads hands it over as is. Hypothesis never generates
# one, and header values it generates are ASCII, so these are sent by hand: (name, method, path, headers, raw body,
# acceptable statuses). "{album}", "{locked}" and "{fresh_locked}" are filled in from the estate.
LONE_SURROGATE = b"\\ud800"
NEVER_AN_ERROR_OF_OURS: list[Any] = [
    pytest.param(
        "GET",
        "/public/albums/{locked}",
        {"X-Link-Access": "99999999999." + "\u00e9" * 43},
        None,
        {401},
        id="access-header-with-latin-1-bytes",
    ),
    pytest.param(
        "GET", "/public/albums/{locked}", {"X-Link-Access": "99999999999." + "A" * 43}, None, {401}, id="forged-access"
    ),
    pytest.param(
        "POST",
        "/public/albums/{fresh_locked}/unlock",
        {"Content-Type": "application/json"},
        b'{"password": "' + LONE_SURROGATE + b'"}',
        {400, 401},
        id="unlock-password-lone-surrogate",
    ),
    pytest.param(
        "POST",
        "/albums/{album}/links",
        {"Content-Type": "application/json"},
        b'{"password": "ab' + LONE_SURROGATE + b'cd"}',
        {400},
        id="link-password-lone-surrogate",
    ),
    pytest.param(
        "POST",
        "/albums/{album}/links",
        {"Content-Type": "application/json"},
        b'{"expires_at": "2031-01-01T00:00:00' + LONE_SURROGATE + b'"}',
        {400},
        id="expiry-lone-surrogate",
    ),
    pytest.param(
        "POST",
        "/albums/{album}/members",
        {"Content-Type": "application/json"},
        b'{"username": "' + LONE_SURROGATE + b'", "role": "viewer"}',
        {400, 404},
        id="username-lone-surrogate",
    ),
    pytest.param(
        "POST",
        "/albums/{album}/photos",
        {"Content-Type": "application/json"},
        b'{"photo_ids": ["' + LONE_SURROGATE + b'"]}',
        {400},
        id="photo-id-lone-surrogate",
    ),
    pytest.param(
        "PATCH",
        "/albums/{album}",
        {"Content-Type": "application/json"},
        b'{"title": "' + LONE_SURROGATE + b'", "version": 1}',
        {400},
        id="album-title-lone-surrogate",
    ),
    pytest.param(
        "POST",
        "/photos/batch",
        {"Content-Type": "application/json"},
        b'{"action": "trash", "photo_ids": ["' + LONE_SURROGATE + b'"]}',
        {200, 400},  # an id that is no photo of the caller's is answered not_found, echoed as sent
        id="batch-photo-id-lone-surrogate",
    ),
    pytest.param(
        "POST",
        "/photos/batch",
        {"Content-Type": "application/json"},
        b'{"action": "add_tags", "photo_ids": ["01JD0000000000000000000000"], "tags": ["a' + LONE_SURROGATE + b'"]}',
        {400},
        id="batch-tag-lone-surrogate",
    ),
    pytest.param(
        "POST",
        "/photos",
        {"Content-Type": "application/json"},
        b'{"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 9, "sha256": "' + LONE_SURROGATE + b'"}',
        {400},
        id="sha256-lone-surrogate",
    ),
    pytest.param("GET", "/photos?from=%ED%A0%80&to=%FF", {}, None, {400}, id="day-not-utf-8"),
    pytest.param("GET", "/photos?sort=%ED%A0%80", {}, None, {400}, id="sort-not-utf-8"),
    pytest.param("GET", "/photos/timeline?%FF=1", {}, None, {400}, id="timeline-parameter-not-utf-8"),
    pytest.param(
        "DELETE", "/photos/01JD0000000000000000000000?permanent=%FF", {}, None, {400}, id="permanent-not-utf-8"
    ),
    pytest.param("GET", "/public/albums/{locked}?cursor=%ED%A0%80.%FF", {}, None, {400, 401}, id="cursor-not-utf-8"),
    pytest.param("GET", "/public/albums/%ED%A0%80%FF", {}, None, {404}, id="token-not-utf-8"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "statuses"), NEVER_AN_ERROR_OF_OURS)
def test_hand_made_hostile_inputs_get_a_documented_4xx(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    statuses: set[int],
    devstack: dict[str, Any],
    fuzzer: dict[str, str],
    estate: Estate,
    session: requests.Session,
    cases: Cases,
) -> None:
    cases.tried()
    fresh_locked = ""
    if "{fresh_locked}" in path:  # a password link no guess has been spent on (the estate's may be at its limit)
        created = estate.as_owner("POST", f"/albums/{estate.album_id}/links", {"password": LINK_PASSWORD}, 201)
        fresh_locked = created["token"]
    url = devstack["api_url"] + path.format(
        album=estate.album_id, locked=estate.locked_token, fresh_locked=fresh_locked
    )
    sent = headers if path.startswith("/public/") else {**fuzzer, **headers}
    response = session.request(method, url, headers=sent, data=body, timeout=10)
    assert response.status_code in statuses, (method, url, headers, body, response.status_code, response.text)
