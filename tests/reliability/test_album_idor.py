"""Albums and share links: every album route × every kind of caller, against one table of expected answers.

The table (`EXPECTED`, keyed by (route, role)) is the one in docs/RELIABILITY.md ("Albums and share links: the
authorization matrix"); a test holds the two equal. Each refused cell must answer its status and error code and
change nothing: every table item and object is the same after it (quick snapshots after each cell, a byte-for-byte
one at the end). A 404 for someone who cannot see the album must be byte-identical (status, headers, body) to the
404 for an album, or a token, that never existed. Allowed reads are checked in the same scenario (they change
nothing either); allowed writes each get a fresh, smaller scenario so one success cannot hide another cell's answer.
Each scenario is built once per module and restored for every test that starts from it (moto_state).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import clock
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import User
from tests.reliability.moto_state import MadeOnce
from tests.reliability.support import assert_invariants, body, snapshot, upload_ready
from tests.support.albums import add_photos, create_album, create_link, public, share, unlock

pytestmark = pytest.mark.suite("idor")

DOC = PROJECT_DIR / "docs" / "RELIABILITY.md"
DOC_SECTION = "## Albums and share links: the authorization matrix"

OWNER, CONTRIBUTOR, VIEWER, FORMER, STRANGER = "owner", "contributor", "viewer", "former member", "stranger"
VISITOR, EXPIRED, REVOKED = "link visitor", "expired link", "revoked link"
ROLES = (OWNER, CONTRIBUTOR, VIEWER, FORMER, STRANGER, VISITOR, EXPIRED, REVOKED)
ACCOUNT_ROLES = (OWNER, CONTRIBUTOR, VIEWER, FORMER, STRANGER)
LINK_ROLES = (VISITOR, EXPIRED, REVOKED)

PUBLIC_ROUTES = ("GET /public/albums/{token}", "POST /public/albums/{token}/unlock")
# One row per route, one column per role in ROLES' order. A signed-in caller with no role gets the 404 an unknown
# album gets; a role that can see the album but not do this, 403; no account (a share-link visitor, whatever their
# link's state), API Gateway's 401 on every signed-in route. On the public routes the token is the credential: an
# account's ID token is ignored, and an account holder sending the album's id where the token goes gets the 404 of an
# unknown link. GET /albums answers every account 200, listing only the albums they own or are a member of.
_ROWS: dict[str, tuple[int, int, int, int, int, int, int, int]] = {
    "POST /albums": (201, 201, 201, 201, 201, 401, 401, 401),
    "GET /albums": (200, 200, 200, 200, 200, 401, 401, 401),
    "GET /albums/{id}": (200, 200, 200, 404, 404, 401, 401, 401),
    "PATCH /albums/{id}": (200, 403, 403, 404, 404, 401, 401, 401),
    "DELETE /albums/{id}": (204, 403, 403, 404, 404, 401, 401, 401),
    "POST /albums/{id}/photos": (200, 200, 403, 404, 404, 401, 401, 401),
    "POST /albums/{id}/photos/remove": (200, 200, 403, 404, 404, 401, 401, 401),
    "GET /albums/{id}/photos": (200, 200, 200, 404, 404, 401, 401, 401),
    "POST /albums/{id}/members": (201, 403, 403, 404, 404, 401, 401, 401),
    "GET /albums/{id}/members": (200, 200, 200, 404, 404, 401, 401, 401),
    "PATCH /albums/{id}/members/{userId}": (200, 403, 403, 404, 404, 401, 401, 401),
    "DELETE /albums/{id}/members/{userId}": (204, 403, 403, 404, 404, 401, 401, 401),
    "POST /albums/{id}/links": (201, 403, 403, 404, 404, 401, 401, 401),
    "GET /albums/{id}/links": (200, 403, 403, 404, 404, 401, 401, 401),
    "DELETE /albums/{id}/links/{linkId}": (204, 403, 403, 404, 404, 401, 401, 401),
    "GET /public/albums/{token}": (404, 404, 404, 404, 404, 200, 404, 404),
    "POST /public/albums/{token}/unlock": (404, 404, 404, 404, 404, 200, 404, 404),
}
EXPECTED: dict[tuple[str, str], int] = {
    (route, role): status for route, statuses in _ROWS.items() for role, status in zip(ROLES, statuses, strict=True)
}
ROUTES = tuple(_ROWS)


def _writes(route: str) -> bool:
    """A success on this route changes the album's state (the public unlock writes nothing when it succeeds)."""
    return not route.startswith("GET ") and route not in PUBLIC_ROUTES


# Allowed writes that change the album the other cells rely on: each runs on a fresh scenario of its own.
# (POST /albums makes a new album of the caller's and touches nothing else: those cells run last in the matrix.)
WRITE_CELLS = [
    (route, role)
    for (route, role), status in EXPECTED.items()
    if status < 300 and _writes(route) and route != "POST /albums"
]
MATRIX_CELLS = [cell for cell in EXPECTED if cell not in WRITE_CELLS]

UNKNOWN_ALBUM_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
UNKNOWN_TOKEN = "Q" * 43  # shaped like a token, so the lookup really happens
PASSWORD = "correct horse battery"
UNAUTHORIZED = {"message": "Unauthorized"}
NO_SUCH_ALBUM = {"Code": "NotFoundError", "Message": "no such album"}
NO_SUCH_LINK = {"Code": "NotFoundError", "Message": "no such link"}


# --- the clock the album service reads ------------------------------------------------------------------------------


class ShiftedClock:
    """`chalicelib.clock.now`, moved forward on demand: a link expires without the test waiting for it."""

    def __init__(self) -> None:
        self.shift = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


@pytest.fixture
def shifted_clock(aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch) -> ShiftedClock:
    # The services take `clock.now` when deps builds them, on their first use (after `aws` has reset deps): patched
    # here, before any request, it is the clock every service and view reads. The scenario checks it took effect.
    moved = ShiftedClock()
    monkeypatch.setattr(clock, "now", moved)
    return moved


# --- the scenario ---------------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One album of the owner's: a contributor and a viewer in it, a contributor who was removed, a stranger, and
    share links (with a password) that are live, expired and revoked, with the access tokens unlocking them gave."""

    api: Client
    aws: boto3.session.Session
    users: dict[str, User]
    album_id: str
    version: int = 0
    photos: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # role (link visitor, expired, revoked) -> link token
    access: dict[str, str] = field(default_factory=dict)  # role -> X-Link-Access its unlock gave (before it died)
    live_link_id: str = ""
    former_cursor: str | None = None
    strangers_album_id: str = ""  # an album of the stranger's own, when a test makes one


def _sub(prefix: str) -> str:
    return f"{prefix}-0000-4000-8000-00000000{prefix[:4]}"


def _future(moved: ShiftedClock, seconds: int) -> str:
    return clock.iso_utc(moved() + timedelta(seconds=seconds))


def build(
    api: Client, aws: boto3.session.Session, moved: ShiftedClock, *, full: bool = True, adding: bool = True
) -> Scenario:
    """The scenario; `full=False` is the smaller one for a cell that writes: the owner, the contributor and the
    viewer, a photo of the owner's and one of the contributor's in the album, one more of each to add if `adding`,
    and the live link."""
    s3 = aws.client("s3")
    users = {
        OWNER: User(api, _sub("0a0e1000")),
        CONTRIBUTOR: User(api, _sub("c0a71000")),
        VIEWER: User(api, _sub("7e0e1000")),
        FORMER: User(api, _sub("f0e1e000")),
        STRANGER: User(api, _sub("5a0a1000")),
    }
    owner, contributor = users[OWNER], users[CONTRIBUTOR]
    uploads = {"owner in album": owner, "contributor in album": contributor}
    if full or adding:
        uploads |= {"owner not in album": owner, "contributor not in album": contributor}
    if full:
        uploads |= {"viewer's": users[VIEWER], "stranger's": users[STRANGER], "former member's": users[FORMER]}
    photos = {name: upload_ready(api, s3, user)["photo_id"] for name, user in uploads.items()}
    album_id = create_album(owner, "Summer", description="the whole family")["album_id"]
    scenario = Scenario(api, aws, users, album_id, photos=photos)
    add_photos(owner, album_id, photos["owner in album"])
    share(owner, album_id, contributor, "contributor")
    assert add_photos(contributor, album_id, photos["contributor in album"])[0]["status"] == "added"
    share(owner, album_id, users[VIEWER], "viewer")
    live = create_link(owner, album_id, password=PASSWORD)
    scenario.live_link_id, scenario.tokens[VISITOR] = live["link_id"], live["token"]
    if full:
        former = users[FORMER]
        share(owner, album_id, former, "contributor")
        assert add_photos(former, album_id, photos["former member's"])[0]["status"] == "added"
        page = former.call("GET", f"/albums/{album_id}/photos?limit=1")
        assert page.status_code == 200, page.body
        scenario.former_cursor = body(page)["next_cursor"]
        assert scenario.former_cursor
        removed = owner.call("DELETE", f"/albums/{album_id}/members/{former.sub}")
        assert removed.status_code == 204, removed.body

        revoked = create_link(owner, album_id, password=PASSWORD)
        scenario.tokens[REVOKED] = revoked["token"]
        scenario.access[REVOKED] = unlock(api, revoked["token"], PASSWORD)
        gone = owner.call("DELETE", f"/albums/{album_id}/links/{revoked['link_id']}")
        assert gone.status_code == 204, gone.body

        expiring = create_link(owner, album_id, password=PASSWORD, expires_at=_future(moved, 60))
        scenario.tokens[EXPIRED] = expiring["token"]
        scenario.access[EXPIRED] = unlock(api, expiring["token"], PASSWORD)  # works while the link lives
        moved.shift += timedelta(minutes=2)
        after = public(api, "POST", f"/public/albums/{expiring['token']}/unlock", {"password": PASSWORD})
        assert after.status_code == 404, "the moved clock did not reach the album service"
    scenario.access[VISITOR] = unlock(api, scenario.tokens[VISITOR], PASSWORD)
    album = owner.call("GET", f"/albums/{album_id}")
    assert album.status_code == 200, album.body
    scenario.version = body(album)["version"]
    return scenario


def bound(s: Scenario, api: Client, aws: boto3.session.Session) -> Scenario:
    """The scenario as this test's: its API, its moto session, its users' tokens."""
    users = {role: User(api, user.sub) for role, user in s.users.items()}
    return dataclasses.replace(s, api=api, aws=aws, users=users)


def made_scenario(
    made: MadeOnce,
    api: Client,
    aws: boto3.session.Session,
    moved: ShiftedClock,
    *,
    full: bool = True,
    adding: bool = True,
) -> Scenario:
    """`build`'s scenario of this size, built once per module and restored for every later test (the clock moved as
    far as building it moved it), bound to this test's fixtures."""

    def make() -> tuple[Scenario, timedelta]:
        return build(api, aws, moved, full=full, adding=adding), moved.shift

    scenario, moved.shift = made(("scenario", full, adding), make, keep=(api, aws))
    return bound(scenario, api, aws)


@pytest.fixture
def scenario(api: Client, aws: boto3.session.Session, shifted_clock: ShiftedClock, made_once: MadeOnce) -> Scenario:
    return made_scenario(made_once, api, aws, shifted_clock)


# --- one cell: the request a role sends to a route -----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def request_for(
    s: Scenario, route: str, role: str, *, album_id: str | None = None, token: str | None = None
) -> Request:
    """What `role` sends to `route`: each caller tries the thing their role would want from it (their own photo to
    add, another member to change, a newcomer to invite), at this album or at `album_id`, with their link's token
    or `token` on the public routes."""
    album = f"/albums/{album_id or s.album_id}"
    users, photos = s.users, s.photos
    others = users[CONTRIBUTOR] if role == VIEWER else users[VIEWER]  # another member than the caller
    newcomer = users[FORMER] if role == FORMER else users[STRANGER]  # the former member asks to be back
    own_photo = {
        CONTRIBUTOR: "contributor not in album",
        VIEWER: "viewer's",
        FORMER: "former member's",
        STRANGER: "stranger's",
    }.get(role, "owner not in album")
    headers = {"X-Link-Access": s.access[role]} if role in s.access else {}
    if route in PUBLIC_ROUTES:
        # An account holder has no token: they try the album's id in its place (and their ID token, ignored).
        link = token or s.tokens.get(role) or (album_id or s.album_id)
        if route == "GET /public/albums/{token}":
            return Request("GET", f"/public/albums/{link}", headers=headers)
        return Request("POST", f"/public/albums/{link}/unlock", {"password": PASSWORD})
    requests = {
        "POST /albums": Request("POST", "/albums", {"title": "Mine now"}),
        "GET /albums": Request("GET", "/albums?limit=100"),
        "GET /albums/{id}": Request("GET", album),
        "PATCH /albums/{id}": Request("PATCH", album, {"title": "Taken over", "version": s.version}),
        "DELETE /albums/{id}": Request("DELETE", album),
        "POST /albums/{id}/photos": Request("POST", f"{album}/photos", {"photo_ids": [photos.get(own_photo)]}),
        "POST /albums/{id}/photos/remove": Request(
            "POST", f"{album}/photos/remove", {"photo_ids": [photos["contributor in album"]]}
        ),
        "GET /albums/{id}/photos": Request("GET", f"{album}/photos?limit=100"),
        "POST /albums/{id}/members": Request(
            "POST", f"{album}/members", {"username": newcomer.username, "role": "contributor"}
        ),
        "GET /albums/{id}/members": Request("GET", f"{album}/members"),
        "PATCH /albums/{id}/members/{userId}": Request(
            "PATCH",
            f"{album}/members/{others.sub}",
            {"role": "viewer" if others is users[CONTRIBUTOR] else "contributor"},
        ),
        "DELETE /albums/{id}/members/{userId}": Request("DELETE", f"{album}/members/{others.sub}"),
        "POST /albums/{id}/links": Request("POST", f"{album}/links", {"allow_download": True}),
        "GET /albums/{id}/links": Request("GET", f"{album}/links"),
        "DELETE /albums/{id}/links/{linkId}": Request("DELETE", f"{album}/links/{s.live_link_id}"),
    }
    sent = requests[route]
    if role == VISITOR:
        # A visitor's browser: no Authorization, the access token its unlock gave.
        return Request(sent.method, sent.path, sent.payload, headers)
    if role in LINK_ROLES:
        # The dead link's token tried as the credential itself.
        return Request(sent.method, sent.path, sent.payload, {"Authorization": s.tokens[role]})
    return sent


def send(s: Scenario, role: str, request: Request) -> Any:
    headers = {"Authorization": s.users[role].token, **request.headers} if role in ACCOUNT_ROLES else request.headers
    return public(s.api, request.method, request.path, request.payload, **headers)


def assert_refused(route: str, status: int, response: Any) -> None:
    assert response.status_code == status, (response.status_code, response.body)
    if status == 401:
        assert body(response) == UNAUTHORIZED
    elif status == 403:
        assert body(response)["Code"] == "ForbiddenError", response.body
    else:
        assert body(response) == (NO_SUCH_LINK if route in PUBLIC_ROUTES else NO_SUCH_ALBUM)


def assert_same_answer(seen: Any, never_existed: Any) -> None:
    """Byte for byte: whoever cannot see an album learns nothing from its 404 that an unknown id would not say."""
    assert (seen.status_code, seen.body, dict(seen.headers)) == (
        never_existed.status_code,
        never_existed.body,
        dict(never_existed.headers),
    )


def listed_album_ids(response: Any) -> set[str]:
    return {album["album_id"] for album in body(response)["items"]}


# Checks of an allowed read beyond its status, by route.
def _check_read(s: Scenario, route: str, role: str, response: Any) -> None:
    shown = body(response)
    if route == "GET /albums":
        assert (s.album_id in listed_album_ids(response)) == (role in (OWNER, CONTRIBUTOR, VIEWER))
    elif route == "GET /albums/{id}":
        assert shown["role"] == role
    elif route == "GET /albums/{id}/photos":
        expected = {s.photos["owner in album"], s.photos["contributor in album"]}
        assert {photo["photo_id"] for photo in shown["items"]} == expected
    elif route == "GET /albums/{id}/members":
        assert [member["role"] for member in shown["items"]] == ["owner", "contributor", "viewer"]
    elif route == "GET /public/albums/{token}":
        assert shown["album"]["title"] == "Summer"
        assert len(shown["items"]) == 2
    elif route == "POST /public/albums/{token}/unlock":
        assert shown["access_token"]


# --- the matrix -----------------------------------------------------------------------------------------------------


def test_the_table_is_the_documents_table() -> None:
    """docs/RELIABILITY.md's matrix and EXPECTED are the same table: a cell changed in one must change in both."""
    text = DOC.read_text()
    assert DOC_SECTION in text
    section = text.split(DOC_SECTION, 1)[1].split("\n## ", 1)[0]
    header = next(line for line in section.splitlines() if line.startswith("| route |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")][1:]
    assert tuple(columns) == ROLES
    documented: dict[tuple[str, str], int] = {}
    for line in section.splitlines():
        row = re.match(r"^\| `([A-Z]+ /[^`]*)` \|(.*)\|$", line)
        if row:
            cells = [cell.strip() for cell in row.group(2).split("|")]
            for role, cell in zip(ROLES, cells, strict=True):
                status = re.match(r"\d{3}", cell)
                assert status, f"{row.group(1)} / {role}: {cell!r}"
                documented[(row.group(1), role)] = int(status.group())
    assert documented == EXPECTED


def test_every_refusal_and_read_answers_its_cell_and_changes_nothing(scenario: Scenario, subtests: Any) -> None:
    s, before = scenario, snapshot(scenario.aws)
    quick_before = snapshot(s.aws, quick=True)
    for route, role in (cell for cell in MATRIX_CELLS if cell[0] != "POST /albums"):
        status = EXPECTED[(route, role)]
        with subtests.test(route=route, role=role, expected=status):
            response = send(s, role, request_for(s, route, role))
            if status >= 400:
                assert_refused(route, status, response)
                if status == 404 and route in PUBLIC_ROUTES:
                    unknown = send(s, role, request_for(s, route, role, token=UNKNOWN_TOKEN))
                    assert_same_answer(response, unknown)
                elif status == 404:
                    unknown = send(s, role, request_for(s, route, role, album_id=UNKNOWN_ALBUM_ID))
                    assert_same_answer(response, unknown)
                assert snapshot(s.aws, quick=True) == quick_before
            else:
                assert response.status_code == status, (response.status_code, response.body)
                _check_read(s, route, role, response)
    assert snapshot(s.aws) == before  # byte for byte, reads included: every item and every object's bytes
    # Last, the one write left in the matrix: anyone signed in makes an album of their own (and nothing else moves).
    for role in ROLES:
        status = EXPECTED[("POST /albums", role)]
        with subtests.test(route="POST /albums", role=role, expected=status):
            ahead = snapshot(s.aws, quick=True)
            response = send(s, role, request_for(s, "POST /albums", role))
            if status >= 400:
                assert_refused("POST /albums", status, response)
                assert snapshot(s.aws, quick=True) == ahead
            else:
                assert response.status_code == status, response.body
                made = body(response)
                assert (made["owner_id"], made["role"], made["photo_count"]) == (s.users[role].sub, "owner", 0)
                assert made["album_id"] != s.album_id
    album = s.users[OWNER].call("GET", f"/albums/{s.album_id}")
    assert body(album)["version"] == s.version
    assert_invariants(s.aws)


@pytest.mark.parametrize(("route", "role"), WRITE_CELLS, ids=[f"{route} as {role}" for route, role in WRITE_CELLS])
def test_an_allowed_write_succeeds(
    api: Client, aws: boto3.session.Session, shifted_clock: ShiftedClock, made_once: MadeOnce, route: str, role: str
) -> None:
    s = made_scenario(made_once, api, aws, shifted_clock, full=False, adding=route == "POST /albums/{id}/photos")
    before = snapshot(aws, quick=True)
    response = send(s, role, request_for(s, route, role))
    assert response.status_code == EXPECTED[(route, role)], response.body
    assert snapshot(aws, quick=True) != before
    owner = s.users[OWNER]
    effects: dict[str, Callable[[], None]] = {
        "PATCH /albums/{id}": lambda: _assert(body(response)["title"] == "Taken over"),
        "DELETE /albums/{id}": lambda: assert_refused(
            "GET /albums/{id}", 404, owner.call("GET", f"/albums/{s.album_id}")
        ),
        "POST /albums/{id}/photos": lambda: _assert([r["status"] for r in body(response)["results"]] == ["added"]),
        "POST /albums/{id}/photos/remove": lambda: _assert(
            [r["status"] for r in body(response)["results"]] == ["removed"]
        ),
        "POST /albums/{id}/members": lambda: _assert(body(response)["user_id"] == s.users[STRANGER].sub),
        "PATCH /albums/{id}/members/{userId}": lambda: _assert(body(response)["role"] == "contributor"),
        "DELETE /albums/{id}/members/{userId}": lambda: assert_refused(
            "GET /albums/{id}", 404, s.users[VIEWER].call("GET", f"/albums/{s.album_id}")
        ),
        "POST /albums/{id}/links": lambda: _assert(len(body(response)["token"]) == 43),
        "DELETE /albums/{id}/links/{linkId}": lambda: assert_refused(
            "GET /public/albums/{token}", 404, send(s, VISITOR, request_for(s, "GET /public/albums/{token}", VISITOR))
        ),
    }
    effects[route]()
    assert_invariants(aws)


def _assert(condition: bool) -> None:
    assert condition


# --- around the matrix: what a role holds does not stretch past it --------------------------------------------------


def former_members_cursor_dies_with_their_membership(s: Scenario) -> None:
    former, cursor = s.users[FORMER], s.former_cursor
    with_cursor = former.call("GET", f"/albums/{s.album_id}/photos?limit=1&cursor={cursor}")
    assert_refused("GET /albums/{id}/photos", 404, with_cursor)
    # The album is refused before the cursor is read: a forged one, or the same one on an unknown album, says the same.
    assert_same_answer(with_cursor, former.call("GET", f"/albums/{s.album_id}/photos?limit=1&cursor=forged"))
    assert_same_answer(with_cursor, former.call("GET", f"/albums/{UNKNOWN_ALBUM_ID}/photos?limit=1&cursor={cursor}"))
    # The control: the cursor itself is still good for someone who may see the album.
    still = s.users[OWNER].call("GET", f"/albums/{s.album_id}/photos?limit=1&cursor={cursor}")
    assert still.status_code == 200, still.body


def shared_photo_urls_last_ten_minutes(s: Scenario) -> None:
    """What outlives a membership or a link: the presigned URLs already handed out, for at most 600 s."""
    shown = s.users[VIEWER].call("GET", f"/albums/{s.album_id}/photos")
    visited = send(s, VISITOR, request_for(s, "GET /public/albums/{token}", VISITOR))
    urls = [url for photo in body(shown)["items"] for url in photo["urls"].values() if url]
    urls += [url for photo in body(visited)["items"] for url in photo["urls"].values() if url]
    assert len(urls) == 2 * 3 + 2 * 2  # a member gets the originals, this link (no allow_download) does not
    assert all(re.search(r"[?&]X-Amz-Expires=600(&|$)", url) for url in urls), urls


def photo_results_hold_each_member_to_their_own_photos(s: Scenario) -> None:
    contributor, viewer = s.users[CONTRIBUTOR], s.users[VIEWER]
    album = f"/albums/{s.album_id}"
    # A viewer adds nothing, not even their own photo.
    refused = viewer.call("POST", f"{album}/photos", {"photo_ids": [s.photos["viewer's"]]})
    assert_refused("POST /albums/{id}/photos", 403, refused)
    # A contributor adding other users' photos (the owner's, a stranger's, the former member's): "not_found", as for
    # a photo that does not exist.
    foreign = [s.photos["owner not in album"], s.photos["stranger's"], s.photos["former member's"]]
    added = contributor.call("POST", f"{album}/photos", {"photo_ids": foreign})
    assert added.status_code == 200, added.body
    assert [(r["photo_id"], r["status"]) for r in body(added)["results"]] == [(p, "not_found") for p in foreign]
    # A contributor removing the owner's photo: "forbidden", and the photo stays.
    removing = contributor.call("POST", f"{album}/photos/remove", {"photo_ids": [s.photos["owner in album"]]})
    assert removing.status_code == 200, removing.body
    assert [r["status"] for r in body(removing)["results"]] == ["forbidden"]


def members_cannot_change_other_members_or_raise_themselves(s: Scenario) -> None:
    contributor, viewer, owner = s.users[CONTRIBUTOR], s.users[VIEWER], s.users[OWNER]
    album = f"/albums/{s.album_id}"
    attempts = [
        (contributor, "PATCH", f"{album}/members/{viewer.sub}", {"role": "contributor"}),
        (contributor, "DELETE", f"{album}/members/{viewer.sub}", None),
        (viewer, "PATCH", f"{album}/members/{contributor.sub}", {"role": "viewer"}),
        (viewer, "DELETE", f"{album}/members/{contributor.sub}", None),
        (contributor, "DELETE", f"{album}/members/{owner.sub}", None),
        (viewer, "PATCH", f"{album}/members/{owner.sub}", {"role": "viewer"}),
        # Their own membership: leaving is allowed (below), raising their own role is not.
        (viewer, "PATCH", f"{album}/members/{viewer.sub}", {"role": "contributor"}),
        (contributor, "PATCH", f"{album}/members/{contributor.sub}", {"role": "contributor"}),
    ]
    for caller, method, path, payload in attempts:
        response = caller.call(method, path, payload)
        assert response.status_code == 403, (method, path, response.body)
        assert body(response)["Code"] == "ForbiddenError"


def nobody_acts_through_someone_elses_membership(s: Scenario) -> None:
    theirs = s.strangers_album_id  # none of this album's members is in it
    contributor, viewer, former, stranger = (s.users[r] for r in (CONTRIBUTOR, VIEWER, FORMER, STRANGER))
    no_such_member = {"Code": "NotFoundError", "Message": "no such member"}
    # The stranger, owner of another album, names this album's members in their own album's paths.
    for method, payload in (("PATCH", {"role": "viewer"}), ("DELETE", None)):
        response = stranger.call(method, f"/albums/{theirs}/members/{contributor.sub}", payload)
        assert (response.status_code, body(response)) == (404, no_such_member), (method, response.body)
    # This album's members at an album they are not in, through the path of their own membership; the former member
    # and the stranger at this album, through theirs (gone, or never there).
    for caller, album_id in ((contributor, theirs), (viewer, theirs), (former, s.album_id), (stranger, s.album_id)):
        for method, payload in (("PATCH", {"role": "contributor"}), ("DELETE", None)):
            response = caller.call(method, f"/albums/{album_id}/members/{caller.sub}", payload)
            assert_refused("DELETE /albums/{id}/members/{userId}", 404, response)
            unknown = caller.call(method, f"/albums/{UNKNOWN_ALBUM_ID}/members/{caller.sub}", payload)
            assert_same_answer(response, unknown)


def test_what_a_role_holds_does_not_stretch_past_it(scenario: Scenario, subtests: Any) -> None:
    s = scenario
    s.strangers_album_id = create_album(s.users[STRANGER], "Stranger's own")["album_id"]
    before, quick_before = snapshot(s.aws), snapshot(s.aws, quick=True)
    checks = (
        former_members_cursor_dies_with_their_membership,
        shared_photo_urls_last_ten_minutes,
        photo_results_hold_each_member_to_their_own_photos,
        members_cannot_change_other_members_or_raise_themselves,
        nobody_acts_through_someone_elses_membership,
    )
    for check in checks:
        with subtests.test(check=check.__name__.replace("_", " ")):
            check(s)
            assert snapshot(s.aws, quick=True) == quick_before
    assert snapshot(s.aws) == before  # byte for byte: none of it changed anything
    # A member's own path is theirs to use: leaving ends their access at once, like a removal.
    viewer = s.users[VIEWER]
    left = viewer.call("DELETE", f"/albums/{s.album_id}/members/{viewer.sub}")
    assert left.status_code == 204, left.body
    gone = viewer.call("GET", f"/albums/{s.album_id}")
    assert_refused("GET /albums/{id}", 404, gone)
    assert_same_answer(gone, viewer.call("GET", f"/albums/{UNKNOWN_ALBUM_ID}"))
    assert_invariants(s.aws)
