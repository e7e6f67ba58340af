"""The library (issue 13): every library route × every kind of caller, against one table of expected answers.

The table (`EXPECTED`, keyed by (route, role)) is the one in docs/RELIABILITY.md ("The library: the authorization
matrix"); a test holds the two equal. The roles are the album matrix's (test_album_idor.py), on its scenario: an
album of the owner's with a contributor and a viewer, a former member, a stranger, and share links live, expired and
revoked. On top of it every account has photos of its own, one of them in the trash, and the owner has a favourite,
an upload still PENDING and a REJECTED one. The library is the caller's own: whatever a member can see of the
owner's photos through the album, every library route treats the owner's photo ids as ids that do not exist.

Each refused cell must answer its status, and a 404 byte for byte (status, headers, body) what the same caller gets
for a photo id that never existed; a batch answers every foreign id exactly as an unknown one. Nothing changes:
every item and object is the same after each cell (quick snapshots after each, a byte-for-byte one over the whole
matrix). The routes every account may use (listings, the timeline, the trash) must show the caller's own photos
exactly and nothing of anyone else's. The caller's writes to their own library (emptying their trash, uploading a
copy of the owner's bytes) must change nothing outside it; the owner's writes and every account deletion each get a
fresh scenario, check their effect, and that nothing of anyone else's changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from chalice.test import Client

from chalicelib import keys
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import BUCKET, User
from tests.reliability.moto_state import MadeOnce
from tests.reliability.support import (
    Snapshot,
    assert_invariants,
    body,
    create_profile,
    deliver,
    put_upload,
    snapshot,
    start_upload,
    upload_ready,
    upload_rejected,
)
from tests.reliability.test_album_idor import (
    ACCOUNT_ROLES,
    CONTRIBUTOR,
    FORMER,
    LINK_ROLES,
    OWNER,
    ROLES,
    STRANGER,
    UNAUTHORIZED,
    UNKNOWN_ALBUM_ID,
    VIEWER,
    VISITOR,
    Request,
    Scenario,
    ShiftedClock,
    assert_same_answer,
    bound,
    build,
    shifted_clock,  # noqa: F401 - the fixture, used by this module's tests
)
from tests.support.albums import add_photos, public

pytestmark = pytest.mark.suite("idor")

DOC = PROJECT_DIR / "docs" / "RELIABILITY.md"
DOC_SECTION = "## The library: the authorization matrix"

MEMBERS_AND_STRANGERS = (CONTRIBUTOR, VIEWER, FORMER, STRANGER)
BATCH_ACTIONS = ("trash", "restore", "delete", "favorite", "unfavorite", "add_tags", "remove_tags")

# The rows: one per route (and per batch action); the query filters of GET /photos each get their own.
FAVORITES = "GET /photos?favorite=true"
TAKEN = "GET /photos?sort=taken"
BETWEEN = "GET /photos?from=&to="
ALL_FILTERS = "GET /photos?favorite=true&sort=taken&from=&to="
TIMELINE = "GET /photos/timeline"
TRASH = "GET /trash"
EMPTY_TRASH = "DELETE /trash"
RESTORE = "POST /photos/{id}/restore"
FAVOURITE = "PATCH /photos/{id} {favorite}"
TRASH_ONE = "DELETE /photos/{id}"
PURGE_ONE = "DELETE /photos/{id}?permanent=true"
BATCH = {action: f"POST /photos/batch {{action: {action}}}" for action in BATCH_ACTIONS}
ACTION_OF = {route: action for action, route in BATCH.items()}
UPLOAD_COPY = "POST /photos {sha256}"
DELETE_ACCOUNT = "DELETE /users/me"

LISTINGS = {
    FAVORITES: {"favorite": "true"},
    TAKEN: {"sort": "taken"},
    BETWEEN: {"from": "", "to": ""},  # the days are the scenario's (yesterday to tomorrow)
    ALL_FILTERS: {"favorite": "true", "sort": "taken", "from": "", "to": ""},
}

# One row per route, one column per role in ROLES' order. Every route here is a library route: the caller's own
# photos only. Any account gets 200 from a listing (its own photos); naming the owner's photo (one a member sees in
# the album, or saw before it was trashed) is the 404 of a photo that does not exist, and in a batch "not_found" for
# each id; a share-link visitor has no account: API Gateway's 401 on every route.
_ROWS: dict[str, tuple[int, int, int, int, int, int, int, int]] = {
    FAVORITES: (200, 200, 200, 200, 200, 401, 401, 401),
    TAKEN: (200, 200, 200, 200, 200, 401, 401, 401),
    BETWEEN: (200, 200, 200, 200, 200, 401, 401, 401),
    ALL_FILTERS: (200, 200, 200, 200, 200, 401, 401, 401),
    TIMELINE: (200, 200, 200, 200, 200, 401, 401, 401),
    TRASH: (200, 200, 200, 200, 200, 401, 401, 401),
    EMPTY_TRASH: (204, 204, 204, 204, 204, 401, 401, 401),
    RESTORE: (200, 404, 404, 404, 404, 401, 401, 401),
    FAVOURITE: (200, 404, 404, 404, 404, 401, 401, 401),
    TRASH_ONE: (204, 404, 404, 404, 404, 401, 401, 401),
    PURGE_ONE: (204, 404, 404, 404, 404, 401, 401, 401),
    **dict.fromkeys(BATCH.values(), (200, 200, 200, 200, 200, 401, 401, 401)),
    UPLOAD_COPY: (409, 201, 201, 201, 201, 401, 401, 401),
    DELETE_ACCOUNT: (204, 204, 204, 204, 204, 401, 401, 401),
}
EXPECTED: dict[tuple[str, str], int] = {
    (route, role): status for route, statuses in _ROWS.items() for role, status in zip(ROLES, statuses, strict=True)
}


def _writes(route: str, role: str) -> bool:
    """A success that changes data (a batch of ids none of which is the caller's writes nothing)."""
    if EXPECTED[(route, role)] >= 400 or route.startswith("GET "):
        return False
    return role == OWNER or route not in ACTION_OF


# A member's or stranger's write to their own library (their trash emptied, their copy of the owner's bytes
# uploaded) runs at the end of the matrix: it must change nothing outside their partition and their objects.
OWN_WRITES = [(route, role) for route in (EMPTY_TRASH, UPLOAD_COPY) for role in MEMBERS_AND_STRANGERS]
# The owner's writes, and every account deletion, each on a fresh scenario of its own.
WRITE_CELLS = [cell for cell in EXPECTED if _writes(*cell) and cell not in OWN_WRITES]
MATRIX_CELLS = [cell for cell in EXPECTED if not _writes(*cell)]

UNKNOWN_IDS = tuple(f"01HZZZZZZZZZZZZZZZZZZZZZZ{digit}" for digit in "01234")  # ULIDs: the lookups really happen
NO_SUCH_PHOTO = {"Code": "NotFoundError", "Message": "no such photo"}
NOT_YOURS = {"status": "not_found", "message": "you have no such photo"}


# --- the scenario ---------------------------------------------------------------------------------------------------


@dataclass
class Library:
    """The album matrix's scenario, with every account's library filled: what each role owns, by name."""

    album: Scenario
    photos: dict[str, str] = field(default_factory=dict)  # name -> photo id (the album scenario's and these)
    owners: dict[str, str] = field(default_factory=dict)  # name -> the role owning it
    ready: set[str] = field(default_factory=set)  # READY and not trashed
    favourites: set[str] = field(default_factory=set)
    trashed: set[str] = field(default_factory=set)
    unsettled: set[str] = field(default_factory=set)  # PENDING or REJECTED
    days: tuple[str, str] = ("", "")  # yesterday and tomorrow by the scenario's clock

    @property
    def users(self) -> dict[str, User]:
        return self.album.users

    @property
    def owner(self) -> User:
        return self.album.users[OWNER]

    def own(self, role: str, among: set[str] | None = None) -> set[str]:
        """The photo ids of `role`'s, among a set (READY ones, favourites, ...) or all of them."""
        return {self.photos[name] for name, who in self.owners.items() if who == role} & (
            among if among is not None else set(self.photos.values())
        )

    def version(self, name: str) -> int:
        return int(body(self.users[self.owners[name]].call("GET", f"/photos/{self.photos[name]}"))["version"])


_ALBUM_PHOTOS = {
    "owner in album": OWNER,
    "owner not in album": OWNER,
    "contributor in album": CONTRIBUTOR,
    "contributor not in album": CONTRIBUTOR,
    "viewer's": VIEWER,
    "stranger's": STRANGER,
    "former member's": FORMER,
}
_TRASHED = {
    OWNER: "owner trashed",
    CONTRIBUTOR: "contributor trashed",
    VIEWER: "viewer trashed",
    FORMER: "former member trashed",
    STRANGER: "stranger trashed",
}


def build_library(api: Client, aws: boto3.session.Session, moved: ShiftedClock, *, full: bool = True) -> Library:
    """The scenario; `full=False` is the smaller one for the owner's writes: the owner, the contributor and the
    viewer with the owner's and the contributor's photos (in the album, out of it, and trashed from it), the live
    link; no former member, stranger, dead links or unsettled uploads."""
    s3 = aws.client("s3")
    s = Library(build(api, aws, moved, full=full))
    s.photos |= s.album.photos
    s.owners |= {name: role for name, role in _ALBUM_PHOTOS.items() if name in s.photos}
    s.ready |= set(s.album.photos.values())
    for role, user in s.users.items():
        if full or role in (OWNER, CONTRIBUTOR, VIEWER):
            create_profile(user, role.title().replace(" ", ""))
    # The owner's and the contributor's photos in the album are favourites tagged "summer".
    for name in ("owner in album", "contributor in album"):
        user = s.users[s.owners[name]]
        edit = {"favorite": True, "tags": ["summer"], "version": s.version(name)}
        edited = user.call("PATCH", f"/photos/{s.photos[name]}", edit)
        assert edited.status_code == 200, edited.body
        s.favourites.add(s.photos[name])
    # Every account has a photo in the trash; the owner's and the contributor's were in the album before.
    for role, name in _TRASHED.items():
        if not full and role not in (OWNER, CONTRIBUTOR):
            continue
        user = s.users[role]
        s.photos[name], s.owners[name] = upload_ready(api, s3, user)["photo_id"], role
        if role in (OWNER, CONTRIBUTOR):
            assert add_photos(user, s.album.album_id, s.photos[name])[0]["status"] == "added"
        trashed = user.call("DELETE", f"/photos/{s.photos[name]}")
        assert trashed.status_code == 204, trashed.body
        s.trashed.add(s.photos[name])
    if full:
        # And uploads that never became photos: one still PENDING, one REJECTED.
        s.photos["owner pending"] = start_upload(s.owner, b"\xff\xd8 not sent yet")["photo"]["photo_id"]
        s.photos["owner rejected"] = upload_rejected(api, s3, s.owner)["photo_id"]
        for name in ("owner pending", "owner rejected"):
            s.owners[name] = OWNER
            s.unsettled.add(s.photos[name])
    today = moved().date()
    s.days = ((today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat())
    return s


def made_library(
    made: MadeOnce, api: Client, aws: boto3.session.Session, moved: ShiftedClock, *, full: bool = True
) -> Library:
    """`build_library`'s scenario of this size, built once per module and restored for every later test (the clock
    moved as far as building it moved it), bound to this test's fixtures."""

    def make() -> tuple[Library, timedelta]:
        return build_library(api, aws, moved, full=full), moved.shift

    library, moved.shift = made(("library", full), make, keep=(api, aws))
    return dataclasses.replace(library, album=bound(library.album, api, aws))


@pytest.fixture
def library(
    api: Client,
    aws: boto3.session.Session,
    shifted_clock: ShiftedClock,  # noqa: F811
    made_once: MadeOnce,
) -> Library:
    return made_library(made_once, api, aws, shifted_clock)


# --- one cell: the request a role sends to a route -----------------------------------------------------------------


def _batch_targets(s: Library, action: str, role: str) -> list[str]:
    """The ids a batch sends: the owner's own photo the action changes, then the contributor's (in the owner's album,
    or trashed from it) that it must not; anyone else, every photo of the owner's they could have seen or guessed."""
    if role != OWNER:
        names = ("owner in album", "owner trashed", "owner not in album", "owner pending", "owner rejected")
        return [s.photos[name] for name in names]
    own, theirs = {
        "restore": ("owner trashed", "contributor trashed"),
        "favorite": ("owner not in album", "contributor not in album"),
    }.get(action, ("owner in album", "contributor in album"))
    return [s.photos[own], s.photos[theirs]]


def _batch(s: Library, action: str, photo_ids: list[str]) -> dict[str, Any]:
    payload: dict[str, Any] = {"action": action, "photo_ids": photo_ids}
    if action in ("add_tags", "remove_tags"):
        payload["tags"] = ["summer"] if action == "remove_tags" else ["taken-over"]
    return payload


def request_for(s: Library, route: str, role: str, *, photo_id: str | None = None) -> Request:
    """What `role` sends to `route`: the owner's photo (or `photo_id`: an unknown one, for the comparison) where the
    route names one, and their own library where it does not."""
    in_album = photo_id or s.photos["owner in album"]
    trashed = photo_id or s.photos["owner trashed"]
    low, high = s.days
    if route in LISTINGS:
        params = {name: {"from": low, "to": high}.get(name, value) for name, value in LISTINGS[route].items()}
        sent = Request("GET", "/photos?" + urlencode({**params, "limit": 100}))
    elif route in ACTION_OF:
        action = ACTION_OF[route]
        targets = list(UNKNOWN_IDS) if photo_id else _batch_targets(s, action, role)
        sent = Request("POST", "/photos/batch", _batch(s, action, targets))
    else:
        requests = {
            TIMELINE: Request("GET", "/photos/timeline"),
            TRASH: Request("GET", "/trash?limit=100"),
            EMPTY_TRASH: Request("DELETE", "/trash"),
            RESTORE: Request("POST", f"/photos/{trashed}/restore"),
            FAVOURITE: Request(
                "PATCH", f"/photos/{in_album}", {"favorite": False, "version": s.version("owner in album")}
            ),
            TRASH_ONE: Request("DELETE", f"/photos/{in_album}"),
            PURGE_ONE: Request("DELETE", f"/photos/{in_album}?permanent=true"),
            UPLOAD_COPY: Request("POST", "/photos", upload_copy_of(s, "owner in album")),
            DELETE_ACCOUNT: Request("DELETE", "/users/me"),
        }
        sent = requests[route]
    if role == VISITOR:
        # A visitor's browser: no Authorization, the access token its unlock gave.
        return Request(sent.method, sent.path, sent.payload, {"X-Link-Access": s.album.access[VISITOR]})
    if role in LINK_ROLES:
        # The dead link's token tried as the credential itself.
        return Request(sent.method, sent.path, sent.payload, {"Authorization": s.album.tokens[role]})
    return sent


def send(s: Library, role: str, request: Request) -> Any:
    headers = {"Authorization": s.users[role].token, **request.headers} if role in ACCOUNT_ROLES else request.headers
    return public(s.album.api, request.method, request.path, request.payload, **headers)


def original_bytes(s: Library, name: str) -> bytes:
    """The bytes of a photo's original, as anyone its URL was handed to downloads them (a member: any photo in the
    album)."""
    s3 = s.album.aws.client("s3")
    key = keys.original_object(s.users[s.owners[name]].sub, s.photos[name])
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def upload_copy_of(s: Library, name: str) -> dict[str, Any]:
    """POST /photos declaring a copy of a photo's bytes, with their SHA-256."""
    data = original_bytes(s, name)
    return {
        "filename": "copy.jpg",
        "content_type": "image/jpeg",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def assert_refused(status: int, response: Any) -> None:
    assert response.status_code == status, (response.status_code, response.body)
    if status == 401:
        assert body(response) == UNAUTHORIZED
    elif status == 404:
        assert body(response) == NO_SUCH_PHOTO
    else:
        assert body(response)["Code"] == "DuplicatePhoto", response.body


# Checks of an answer beyond its status, by route: what a role's own library holds, exactly.
def _check_answer(s: Library, route: str, role: str, response: Any) -> None:
    shown = body(response)
    caller = s.users[role].sub
    if route in LISTINGS:
        items = shown["items"]
        assert shown["next_cursor"] is None
        assert all(photo["owner_id"] == caller and photo["trashed_at"] is None for photo in items)
        expected = s.own(role, s.ready | s.unsettled)
        if "favorite" in LISTINGS[route]:
            expected &= s.favourites
        if "sort" in LISTINGS[route]:
            expected &= s.ready  # only a verified photo has a taken time
        assert {photo["photo_id"] for photo in items} == expected
    elif route == TIMELINE:
        buckets = shown["buckets"]
        assert [bucket["month"] for bucket in buckets] == sorted((b["month"] for b in buckets), reverse=True)
        assert sum(bucket["count"] for bucket in buckets) == len(s.own(role, s.ready))
    elif route == TRASH:
        items = shown["items"]
        assert {photo["photo_id"] for photo in items} == s.own(role, s.trashed)
        assert all(photo["owner_id"] == caller and photo["trashed_at"] and photo["purge_at"] for photo in items)
    elif route in ACTION_OF:
        results = shown["results"]
        sent = request_for(s, route, role).payload["photo_ids"]
        assert results == [{"photo_id": photo_id, **NOT_YOURS} for photo_id in sent]
        # Exactly what a batch of ids that never existed answers.
        unknown = body(send(s, role, request_for(s, route, role, photo_id=UNKNOWN_IDS[0])))["results"]
        assert [{**r, "photo_id": "?"} for r in results] == [{**r, "photo_id": "?"} for r in unknown]


# --- snapshots: what belongs to whom ----------------------------------------------------------------------------


def without(taken: Snapshot, *user_ids: str) -> Snapshot:
    """A snapshot without these users' partitions and objects: everything of everyone else's."""
    pks = {keys.user_pk(user_id) for user_id in user_ids}
    return Snapshot(
        {key: item for key, item in taken.items.items() if key[0] not in pks},
        {key: obj for key, obj in taken.objects.items() if key.split("/")[1] not in user_ids},
    )


def only(taken: Snapshot, user_id: str) -> Snapshot:
    """One user's partition and objects in a snapshot."""
    pk = keys.user_pk(user_id)
    return Snapshot(
        {key: item for key, item in taken.items.items() if key[0] == pk},
        {key: obj for key, obj in taken.objects.items() if key.split("/")[1] == user_id},
    )


def outside(taken: Snapshot, s: Library, user_id: str) -> Snapshot:
    """Everything but one user's partition and objects and the scenario's album (its entries, members, counts)."""
    rest = without(taken, user_id)
    album_pk = keys.album_pk(s.album.album_id)
    return Snapshot({key: item for key, item in rest.items.items() if key[0] != album_pk}, rest.objects)


def library_of(taken: Snapshot, user_id: str) -> Snapshot:
    """One user's library in a snapshot: their photos, tags, counters, claims, profile and objects, but not their
    places in albums (an album's deletion, or a member leaving it, takes those with it)."""
    pk = keys.user_pk(user_id)
    album_places = (keys.ALBUM_PREFIX, keys.PHOTO_ALBUM_PREFIX)
    return Snapshot(
        {key: item for key, item in taken.items.items() if key[0] == pk and not key[1].startswith(album_places)},
        {key: obj for key, obj in taken.objects.items() if key.split("/")[1] == user_id},
    )


def album_photo_ids(s: Library, role: str) -> set[str]:
    """The album's photos as `role` sees them: a member through the album, a link visitor through the link."""
    if role == VISITOR:
        response = public(
            s.album.api,
            "GET",
            f"/public/albums/{s.album.tokens[VISITOR]}",
            **{"X-Link-Access": s.album.access[VISITOR]},
        )
    else:
        response = s.users[role].call("GET", f"/albums/{s.album.album_id}/photos?limit=100")
    assert response.status_code == 200, (role, response.body)
    return {photo["photo_id"] for photo in body(response)["items"]}


def assert_album_shows(s: Library, expected: set[str]) -> None:
    for role in (OWNER, CONTRIBUTOR, VIEWER, VISITOR):
        assert album_photo_ids(s, role) == expected, role
    album = body(s.owner.call("GET", f"/albums/{s.album.album_id}"))
    assert album["photo_count"] == len(expected)


def album_is_gone_for(s: Library, *roles: str) -> None:
    for role in roles:
        if role == VISITOR:
            gone = public(
                s.album.api,
                "GET",
                f"/public/albums/{s.album.tokens[VISITOR]}",
                **{"X-Link-Access": s.album.access[VISITOR]},
            )
            assert gone.status_code == 404, gone.body
        else:
            gone = s.users[role].call("GET", f"/albums/{s.album.album_id}")
            assert_same_answer(gone, s.users[role].call("GET", f"/albums/{UNKNOWN_ALBUM_ID}"))
            assert gone.status_code == 404, gone.body


# --- the matrix -----------------------------------------------------------------------------------------------------


def test_the_table_is_the_documents_table() -> None:
    """docs/RELIABILITY.md's library matrix and EXPECTED are the same table."""
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


def test_every_refusal_and_read_answers_its_cell_and_changes_nothing(library: Library, subtests: Any) -> None:
    s = library
    before, quick_before = snapshot(s.album.aws), snapshot(s.album.aws, quick=True)
    for route, role in MATRIX_CELLS:
        status = EXPECTED[(route, role)]
        with subtests.test(route=route, role=role, expected=status):
            response = send(s, role, request_for(s, route, role))
            if status >= 400:
                assert_refused(status, response)
                if status == 404:
                    unknown = send(s, role, request_for(s, route, role, photo_id=UNKNOWN_IDS[0]))
                    assert_same_answer(response, unknown)
                elif status == 409:
                    assert body(response)["photo_id"] == s.photos["owner in album"]
            else:
                assert response.status_code == status, (response.status_code, response.body)
                _check_answer(s, route, role, response)
            assert snapshot(s.album.aws, quick=True) == quick_before
    assert snapshot(s.album.aws) == before  # byte for byte: every item and every object's bytes
    # Last, each account's writes to its own library: nothing outside it moves.
    for route, role in OWN_WRITES:
        with subtests.test(route=route, role=role, expected=EXPECTED[(route, role)]):
            caller = s.users[role]
            ahead = snapshot(s.album.aws, quick=True)
            response = send(s, role, request_for(s, route, role))
            assert response.status_code == EXPECTED[(route, role)], response.body
            after = snapshot(s.album.aws, quick=True)
            assert without(after, caller.sub) == without(ahead, caller.sub)
            if route == EMPTY_TRASH:
                assert body(caller.call("GET", "/trash"))["items"] == []
                assert caller.call("GET", f"/photos/{s.photos[_TRASHED[role]]}").status_code == 404
            else:
                uploaded_a_copy_of_the_owners_bytes(s, role, body(response)["photo"])
    assert without(snapshot(s.album.aws), *(s.users[role].sub for role in MEMBERS_AND_STRANGERS)) == without(
        before, *(s.users[role].sub for role in MEMBERS_AND_STRANGERS)
    )
    assert_invariants(s.album.aws)


def uploaded_a_copy_of_the_owners_bytes(s: Library, role: str, photo: dict[str, Any]) -> None:
    """The copy is the caller's own photo: nothing said the owner has those bytes (a 201, not a 409), and the worker,
    which hashes the real bytes, settles it READY, not REJECTED as a duplicate of the owner's."""
    caller, owners = s.users[role], snapshot(s.album.aws, s.owner.sub, quick=True)
    assert (photo["owner_id"], photo["status"], photo["duplicate_of"]) == (caller.sub, "PENDING", None)
    data = original_bytes(s, "owner in album")
    deliver(s.album.api, put_upload(s.album.aws.client("s3"), caller.sub, photo["photo_id"], data))
    settled = body(caller.call("GET", f"/photos/{photo['photo_id']}"))
    assert (settled["status"], settled["duplicate_of"], settled["rejection_reason"]) == ("READY", None, None)
    assert settled["sha256"] == hashlib.sha256(data).hexdigest()
    assert snapshot(s.album.aws, s.owner.sub, quick=True) == owners


# --- the writes: each on a fresh scenario ---------------------------------------------------------------------------


def _owner_write_effect(s: Library, route: str, response: Any) -> None:
    owner, photos = s.owner, s.photos
    in_album, trashed = photos["owner in album"], photos["owner trashed"]
    album_before = {photos["owner in album"], photos["contributor in album"]}
    shown = body(response)
    if route == EMPTY_TRASH:
        assert body(owner.call("GET", "/trash"))["items"] == []
        assert owner.call("GET", f"/photos/{trashed}").status_code == 404
    elif route == RESTORE or route == BATCH["restore"]:
        # Back in the library and in the album it left: every member and the link visitor see it again.
        assert body(owner.call("GET", f"/photos/{trashed}"))["trashed_at"] is None
        assert_album_shows(s, album_before | {trashed})
    elif route == FAVOURITE:
        assert shown["favorite"] is False
        assert in_album not in {p["photo_id"] for p in body(owner.call("GET", "/photos?favorite=true"))["items"]}
    elif route == TRASH_ONE or route == BATCH["trash"]:
        # Out of the album at once, for every member and the link visitor; still the owner's, in their trash.
        assert body(owner.call("GET", f"/photos/{in_album}"))["trashed_at"]
        assert_album_shows(s, album_before - {in_album})
    elif route == PURGE_ONE or route == BATCH["delete"]:
        assert owner.call("GET", f"/photos/{in_album}").status_code == 404
        assert not [key for key in snapshot(s.album.aws, owner.sub, quick=True).objects if in_album in key]
        assert_album_shows(s, album_before - {in_album})
    elif route == BATCH["favorite"]:
        assert body(owner.call("GET", f"/photos/{photos['owner not in album']}"))["favorite"] is True
    elif route == BATCH["unfavorite"]:
        assert body(owner.call("GET", f"/photos/{in_album}"))["favorite"] is False
    elif route == BATCH["add_tags"]:
        assert body(owner.call("GET", f"/photos/{in_album}"))["tags"] == ["summer", "taken-over"]
    elif route == BATCH["remove_tags"]:
        assert body(owner.call("GET", f"/photos/{in_album}"))["tags"] == []
    if route in ACTION_OF:
        # The owner's own photo done; the contributor's, though in the owner's album, as unknown as any.
        sent = request_for(s, route, OWNER).payload["photo_ids"]
        assert shown["results"] == [{"photo_id": sent[0], "status": "done"}, {"photo_id": sent[1], **NOT_YOURS}]


def _account_deletion_effect(s: Library, role: str, before: Snapshot) -> None:
    caller = s.users[role]
    after = snapshot(s.album.aws)
    assert caller.call("GET", "/users/me").status_code == 404
    for other in (user for user in s.users.values() if user is not caller):
        assert other.call("GET", f"/users/{caller.sub}").status_code == 404  # the public profile went first
    assert not only(after, caller.sub).items  # nothing of theirs is left: items
    assert not only(after, caller.sub).objects  # and objects
    for other in (user for user in s.users.values() if user is not caller):
        assert library_of(after, other.sub) == library_of(before, other.sub), other.sub
    if role == OWNER:
        # Their album goes with them: its members and its link lose it; the contributor's photos stay theirs.
        album_is_gone_for(s, CONTRIBUTOR, VIEWER, VISITOR)
        for member in (CONTRIBUTOR, VIEWER):
            listed = body(s.users[member].call("GET", "/albums?limit=100"))["items"]
            assert s.album.album_id not in {album["album_id"] for album in listed}
        contributor = s.users[CONTRIBUTOR]
        for name in ("contributor in album", "contributor trashed"):
            assert contributor.call("GET", f"/photos/{s.photos[name]}").status_code == 200
        return
    # A member's, a former member's or a stranger's account: the owner's album and photos are all still there, the
    # owner's partition and objects byte for byte; a member's own photos have left the album.
    assert only(after, s.owner.sub) == only(before, s.owner.sub)
    expected = {s.photos["owner in album"]} | ({s.photos["contributor in album"]} if role != CONTRIBUTOR else set())
    for seer in (r for r in (OWNER, CONTRIBUTOR, VIEWER, VISITOR) if r != role):
        assert album_photo_ids(s, seer) == expected, seer
    members = body(s.owner.call("GET", f"/albums/{s.album.album_id}/members"))["items"]
    assert caller.sub not in {member["user_id"] for member in members}
    if role in (FORMER, STRANGER):
        # Not in the album: nothing of anyone else's changed at all, the album's items included.
        assert without(after, caller.sub) == without(before, caller.sub)
    else:
        # A member: outside their own partition, only the album's items (their membership, their photos' places).
        assert outside(after, s, caller.sub) == outside(before, s, caller.sub)


@pytest.mark.parametrize(("route", "role"), WRITE_CELLS, ids=[f"{route} as {role}" for route, role in WRITE_CELLS])
def test_an_allowed_write_succeeds_and_touches_nothing_of_anyone_elses(
    api: Client,
    aws: boto3.session.Session,
    shifted_clock: ShiftedClock,  # noqa: F811
    made_once: MadeOnce,
    route: str,
    role: str,
) -> None:
    s = made_library(made_once, api, aws, shifted_clock, full=route == DELETE_ACCOUNT)
    before = snapshot(aws)
    response = send(s, role, request_for(s, route, role))
    assert response.status_code == EXPECTED[(route, role)], response.body
    assert snapshot(aws) != before
    if route == DELETE_ACCOUNT:
        _account_deletion_effect(s, role, before)
    else:
        _owner_write_effect(s, route, response)
        # Only the owner's partition and objects changed, and the album's items where a photo left or came back.
        assert outside(snapshot(aws), s, s.owner.sub) == outside(before, s, s.owner.sub)
    assert_invariants(aws)


# --- around the matrix ----------------------------------------------------------------------------------------------


def trashed_photos_have_left_the_album(s: Library) -> None:
    """The owner's and the contributor's trashed photos were in the album: no member and no link visitor sees them,
    and adding one back is refused like a photo that is not there."""
    assert_album_shows(s, {s.photos["owner in album"], s.photos["contributor in album"]})
    for role, name in ((OWNER, "owner trashed"), (CONTRIBUTOR, "contributor trashed")):
        added = add_photos(s.users[role], s.album.album_id, s.photos[name])
        assert [(r["photo_id"], r["status"]) for r in added] == [(s.photos[name], "not_found")]


def the_album_owner_has_no_power_over_a_members_photos(s: Library) -> None:
    """The owner sees the contributor's photo in their album and may take it out of it, nothing more: every library
    route answers the owner as for a photo that does not exist."""
    owner = s.owner
    theirs, trashed = s.photos["contributor in album"], s.photos["contributor trashed"]
    attempts = [
        ("GET", f"/photos/{trashed}", None),
        ("PATCH", f"/photos/{theirs}", {"favorite": False, "version": s.version("contributor in album")}),
        ("DELETE", f"/photos/{theirs}", None),
        ("DELETE", f"/photos/{theirs}?permanent=true", None),
        ("POST", f"/photos/{trashed}/restore", None),
    ]
    for method, path, payload in attempts:
        response = owner.call(method, path, payload)
        unknown = owner.call(method, path.replace(theirs, UNKNOWN_IDS[0]).replace(trashed, UNKNOWN_IDS[0]), payload)
        assert response.status_code == 404, (method, path, response.body)
        assert_same_answer(response, unknown)
    for action in BATCH_ACTIONS:
        answer = owner.call("POST", "/photos/batch", _batch(s, action, [theirs, trashed]))
        assert answer.status_code == 200, answer.body
        assert body(answer)["results"] == [{"photo_id": p, **NOT_YOURS} for p in (theirs, trashed)]


def a_link_access_token_is_no_id_token(s: Library) -> None:
    """A visitor holding the access token their unlock gave, sending it as the Authorization header itself (raw and
    as a bearer token), gets API Gateway's 401 on every library route, as without it."""
    access = s.album.access[VISITOR]
    for route in _ROWS:
        sent = request_for(s, route, OWNER)
        for credential in (access, f"Bearer {access}"):
            response = public(s.album.api, sent.method, sent.path, sent.payload, Authorization=credential)
            assert (response.status_code, body(response)) == (401, UNAUTHORIZED), (route, response.body)


def test_what_a_role_sees_of_the_library_does_not_stretch_past_it(library: Library, subtests: Any) -> None:
    s = library
    before, quick_before = snapshot(s.album.aws), snapshot(s.album.aws, quick=True)
    checks = (
        trashed_photos_have_left_the_album,
        the_album_owner_has_no_power_over_a_members_photos,
        a_link_access_token_is_no_id_token,
    )
    for check in checks:
        with subtests.test(check=check.__name__.replace("_", " ")):
            check(s)
            assert snapshot(s.album.aws, quick=True) == quick_before
    assert snapshot(s.album.aws) == before


def restored(user: User, photo_id: str) -> dict[str, Any]:
    response = user.call("POST", f"/photos/{photo_id}/restore")
    assert response.status_code == 200, response.body
    shown: dict[str, Any] = body(response)
    assert shown["trashed_at"] is None
    return shown


Change = Callable[[Library], None]


def _remove_contributor(s: Library) -> None:
    removed = s.owner.call("DELETE", f"/albums/{s.album.album_id}/members/{s.users[CONTRIBUTOR].sub}")
    assert removed.status_code == 204, removed.body


def _make_contributor_a_viewer(s: Library) -> None:
    changed = s.owner.call(
        "PATCH", f"/albums/{s.album.album_id}/members/{s.users[CONTRIBUTOR].sub}", {"role": "viewer"}
    )
    assert changed.status_code == 200, changed.body


def _contributor_leaves(s: Library) -> None:
    contributor = s.users[CONTRIBUTOR]
    left = contributor.call("DELETE", f"/albums/{s.album.album_id}/members/{contributor.sub}")
    assert left.status_code == 204, left.body


RESTORE_AFTER: dict[str, Change] = {
    "the owner removed the contributor": _remove_contributor,
    "the owner made the contributor a viewer": _make_contributor_a_viewer,
    "the contributor left": _contributor_leaves,
}


@pytest.mark.parametrize("change", list(RESTORE_AFTER))
def test_a_restore_never_puts_a_photo_where_its_owner_may_no_longer_add(
    api: Client,
    aws: boto3.session.Session,
    shifted_clock: ShiftedClock,  # noqa: F811
    made_once: MadeOnce,
    change: str,
) -> None:
    """The contributor's photo left the album when they trashed it; once they may no longer add to the album, their
    restore brings it back to their library only, and the album stays as the owner and members see it."""
    s = made_library(made_once, api, aws, shifted_clock, full=False)
    RESTORE_AFTER[change](s)
    album = {role: album_photo_ids(s, role) for role in (OWNER, VIEWER, VISITOR)}
    ahead = snapshot(aws, s.owner.sub)
    contributor = s.users[CONTRIBUTOR]
    back = restored(contributor, s.photos["contributor trashed"])
    assert back["photo_id"] in {p["photo_id"] for p in body(contributor.call("GET", "/photos"))["items"]}
    assert {role: album_photo_ids(s, role) for role in album} == album
    assert back["photo_id"] not in album[OWNER]
    assert snapshot(aws, s.owner.sub) == ahead
    assert_invariants(aws)


def test_a_restore_never_brings_back_a_deleted_album(
    api: Client,
    aws: boto3.session.Session,
    shifted_clock: ShiftedClock,  # noqa: F811
    made_once: MadeOnce,
) -> None:
    s = made_library(made_once, api, aws, shifted_clock, full=False)
    deleted = s.owner.call("DELETE", f"/albums/{s.album.album_id}")
    assert deleted.status_code == 204, deleted.body
    for role, name in ((OWNER, "owner trashed"), (CONTRIBUTOR, "contributor trashed")):
        restored(s.users[role], s.photos[name])
    album_is_gone_for(s, OWNER, CONTRIBUTOR, VIEWER, VISITOR)
    accessible = {album["album_id"] for album in body(s.owner.call("GET", "/albums"))["items"]}
    assert s.album.album_id not in accessible
    assert_invariants(aws)


def test_a_trashed_cover_is_no_longer_the_albums_cover(
    api: Client,
    aws: boto3.session.Session,
    shifted_clock: ShiftedClock,  # noqa: F811
    made_once: MadeOnce,
) -> None:
    """A cover is shown to every member and link visitor: a trashed photo stops being it at once."""
    s = made_library(made_once, api, aws, shifted_clock, full=False)
    album_path, cover = f"/albums/{s.album.album_id}", s.photos["owner in album"]
    version = body(s.owner.call("GET", album_path))["version"]
    set_cover = s.owner.call("PATCH", album_path, {"cover_photo_id": cover, "version": version})
    assert set_cover.status_code == 200, set_cover.body
    trashed = s.owner.call("DELETE", f"/photos/{cover}")
    assert trashed.status_code == 204, trashed.body
    for role in (OWNER, CONTRIBUTOR, VIEWER):
        assert body(s.users[role].call("GET", album_path))["cover_photo_id"] != cover, role
    visited = public(
        api, "GET", f"/public/albums/{s.album.tokens[VISITOR]}", **{"X-Link-Access": s.album.access[VISITOR]}
    )
    urls = [url for url in (body(visited)["album"]["cover"] or {}).values() if url]
    assert not [url for url in urls if cover in url]
    assert_invariants(aws)
