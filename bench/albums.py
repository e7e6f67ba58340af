"""Section 7: albums and sharing (issue 12), AWS calls and DynamoDB capacity per operation, counted as section 3
counts the photo routes (bench/roundtrips.py's Meter): through the real handler on in-process moto, with botocore's
`before-call` hook on the app's DynamoDB, S3 and Cognito clients, capacity from the items' sizes.

Every operation is compared with the fewest calls any implementation of it needs (MINIMUM, with the reasoning) plus
what PhotoSky spends above that on purpose (BY_DESIGN); anything more is a finding, shown in bold.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench import common, roundtrips
from bench.common import fmt_num, table
from bench.events import LambdaContext, api_gateway_event

OWNER = roundtrips.OWNER
PAGE = 50  # photos on an album page (the figure); also the most one call may add or remove
LIST_SIZES = (10, 120)  # albums the caller has, for GET /albums: one batch read, then two (over 100)
DELETED_ALBUM = {"photos": 50, "members": 3, "links": 1}
PHOTO_IN_ALBUMS = 3  # K, for DELETE /photos/{id}
LEAVER_PHOTOS = 3  # photos the leaving contributor added
# Members (Cognito users, found by AdminGetUser): a contributor, a viewer, and one more for the deleted album.
MEMBERS = ("mia", "vic", "ana")
# The setup writes far more than a person would in a minute; the limit's figure is not what is measured.
SETUP_ENVIRONMENT = {"PHOTOSKY_WRITE_RATE_LIMIT": "1000000"}

# The page route's calls: the one authorization read (album + the caller's membership), then the page itself in
# one index Query and one BatchGetItem (the issue: at most one of each for a page of 50).
PAGE_CALLS = ["DynamoDB BatchGetItem", "DynamoDB Query", "DynamoDB BatchGetItem"]

WRITE_TOKEN_CALL = roundtrips.WRITE_RATE_TOKEN[1]  # "the write-rate token (UpdateItem)"
AUTHORIZATION = "the authorization read on its own (BatchGetItem: album + caller's membership)"
PHOTOS_READ = "the caller's photos read first (BatchGetItem: a result per photo, only READY ones tried)"
KEY_ONLY_ENTRIES = "the photos behind key-only album entries (BatchGetItem)"
TWO_PHASES = "access ends in a transaction of its own; the membership item goes last (DeleteItem)"


def design(*reasons: str | tuple[int, str]) -> tuple[int, str]:
    """A BY_DESIGN entry from its reasons: one call each, or (calls, reason)."""
    counted = [reason if isinstance(reason, tuple) else (1, reason) for reason in reasons]
    return sum(calls for calls, _ in counted), "; ".join(
        reason if calls == 1 else f"{calls}× {reason}" for calls, reason in counted
    )


def batches(keys: int) -> int:
    """BatchGetItem calls for `keys` keys (at most 100 each)."""
    return -(-keys // 100)


def add_minimum(photos: int) -> int:
    """Transactions that add `photos` (3 items each: entry, copy beside the photo, the photo's revision) and update the
    album, at DynamoDB's 100 items per transaction."""
    return -(-(3 * photos + 1) // 100)


def remove_minimum(photos: int) -> int:
    """Transactions that remove `photos` (2 items each: entry and copy) and update the album."""
    return -(-(2 * photos + 1) // 100)


def delete_minimum(photos: int, members: int, links: int) -> int:
    """Transactions that delete an album: 2 items per photo entry, member and link, then the album and its owner's
    access entry."""
    return -(-(2 * (photos + members + links) + 2) // 100)


def list_name(albums: int) -> str:
    return f"GET /albums ({albums} albums)"


PHOTOS, MEMBERS_N, LINKS = DELETED_ALBUM["photos"], DELETED_ALBUM["members"], DELETED_ALBUM["links"]
PAGE_NAME = f"GET /albums/{{id}}/photos ({PAGE})"
PUBLIC_NAME = f"GET /public/albums/{{token}} ({PAGE})"
ADD_NAME = f"POST /albums/{{id}}/photos ({PAGE})"
REMOVE_NAME = f"POST /albums/{{id}}/photos/remove ({PAGE}, the cover among them)"
LEAVE_NAME = f"DELETE /albums/{{id}}/members/{{own id}} (leave, {LEAVER_PHOTOS} photos, one the cover)"
DELETE_ALBUM_NAME = f"DELETE /albums/{{id}} ({PHOTOS} photos, {MEMBERS_N} members, {LINKS} link)"
# Issue 13: a READY photo's DELETE moves it to the trash, out of its albums; `?permanent=true` deletes it for good.
DELETE_PHOTO_NAME = f"DELETE /photos/{{id}} (to the trash: in {PHOTO_IN_ALBUMS} albums, the cover of 1)"
PURGE_PHOTO_NAME = f"DELETE /photos/{{id}}?permanent=true (in {PHOTO_IN_ALBUMS} albums, the cover of 1)"
TRASH_ALONE_NAME = "DELETE /photos/{id} (to the trash: in no album)"

# (operation, the fewest calls any implementation needs, why). A caller's right can ride in a write's conditions
# (owner_id = :caller, a ConditionCheck of a membership) or in a read the route makes anyway, so a minimal route
# never reads only to authorize.
MINIMUM: dict[str, tuple[str, str]] = {
    "POST /albums": ("1 DynamoDB", "one transaction: the album + the owner's access entry"),
    **{
        list_name(n): ("1 DynamoDB", "one Query of the caller's access entries, if they held the albums")
        for n in LIST_SIZES
    },
    "GET /albums/{id}": ("1 DynamoDB", "the album + the caller's membership in one BatchGetItem"),
    "PATCH /albums/{id} (title)": (
        "1 DynamoDB",
        "one UpdateItem, conditional on version and owner, returning the item",
    ),
    "PATCH /albums/{id} (cover)": (
        "2 DynamoDB",
        "the cover's entry (whose photo it is) + one transaction (the update; a ConditionCheck that it is still in)",
    ),
    "POST /albums/{id}/photos (1)": (
        "1 DynamoDB",
        "one transaction: entry, copy beside the photo, the photo's revision (READY), the album's count",
    ),
    ADD_NAME: (f"{add_minimum(PAGE)} DynamoDB", f"{3 * PAGE + 1} items, at most 100 per transaction"),
    "POST /albums/{id}/photos (contributor, 3)": (
        "1 DynamoDB",
        "one transaction; the contributor's role is a condition in it",
    ),
    "POST /albums/{id}/photos/remove (1)": (
        "2 DynamoDB",
        "the entry (whose photo: its copy is in the owner's partition) + one transaction",
    ),
    REMOVE_NAME: (
        f"{1 + remove_minimum(PAGE) + 1} DynamoDB",
        f"the entries; the newest photo left, for the cover (Query); {remove_minimum(PAGE)} transactions of the "
        f"{2 * PAGE + 1} items, the new cover in the last",
    ),
    PAGE_NAME: ("1 DynamoDB", "one index Query, if album entries held whole photos"),
    "POST /albums/{id}/members": (
        "1 Cognito + 2 DynamoDB",
        "user name → id (AdminGetUser); album, caller's membership and the new member's profile (display_name) in "
        "one BatchGetItem; one transaction (membership, their access entry, the member count)",
    ),
    "GET /albums/{id}/members": (
        "2 DynamoDB",
        "one Query of the album's partition up to MEMBER# (the album, its members, the caller among them) + one "
        "BatchGetItem of display names",
    ),
    "PATCH /albums/{id}/members/{user_id}": (
        "2 DynamoDB",
        "album, caller's and member's memberships and the member's profile in one BatchGetItem (every key is in the "
        "path); one transaction (membership + access entry)",
    ),
    "DELETE /albums/{id}/members/{user_id} (viewer)": (
        "2 DynamoDB",
        "album, caller's and member's memberships in one BatchGetItem; one transaction (membership, access entry, "
        "count)",
    ),
    LEAVE_NAME: (
        "4 DynamoDB",
        "album + own membership; their entries (Query); the newest photo left, for the cover (Query); one "
        f"transaction (membership, access entry, {LEAVER_PHOTOS}×2 photo items, the album's count and cover)",
    ),
    "POST /albums/{id}/links": ("1 DynamoDB", "one transaction: both link items + the album's ConditionCheck"),
    "POST /albums/{id}/links (password)": ("1 DynamoDB", "the same (scrypt runs locally)"),
    "GET /albums/{id}/links": (
        "1 DynamoDB",
        "one Query of the album's partition from ALBUM to LINK#: the album and its links",
    ),
    "DELETE /albums/{id}/links/{link_id}": (
        "2 DynamoDB",
        "album, caller's membership and the link (its token hash keys the other item) in one BatchGetItem; one "
        "transaction",
    ),
    PUBLIC_NAME: (
        "2 DynamoDB",
        "the link by its token's hash; one Query, if album entries held whole photos (and the album's details)",
    ),
    f"GET /public/albums/{{token}} ({PAGE}, password, unlocked)": (
        "2 DynamoDB",
        "the same: the access token is an HMAC checked locally",
    ),
    "GET /public/albums/{token} (password, no access → 401)": ("1 DynamoDB", "the link (it has a password)"),
    "GET /public/albums/{token} (unknown token → 404)": ("1 DynamoDB", "the token's hash finds nothing"),
    "POST /public/albums/{token}/unlock": (
        "2 DynamoDB",
        "the link + this window's failed attempts in one BatchGetItem (both keys come from the token's hash); the "
        "album (not being deleted)",
    ),
    "POST /public/albums/{token}/unlock (wrong password)": ("3 DynamoDB", "the same + count the failure"),
    DELETE_ALBUM_NAME: (
        f"{1 + delete_minimum(PHOTOS, MEMBERS_N, LINKS)} DynamoDB",
        f"one Query of the album's partition (the album: its owner; {PHOTOS} entries, {MEMBERS_N} members, {LINKS} "
        f"link); {delete_minimum(PHOTOS, MEMBERS_N, LINKS)} transactions of the "
        f"{2 * (PHOTOS + MEMBERS_N + LINKS) + 2} items, the album in the last",
    ),
    DELETE_PHOTO_NAME: (
        "5 DynamoDB",
        "the photo; its album copies (Query); those albums and its entries in them (one BatchGetItem: counts, covers, "
        "its place in each for a restore); the newest photo of the album it was the cover of (Query); one transaction",
    ),
    PURGE_PHOTO_NAME: (
        "5 DynamoDB + 1 S3",
        "the photo; its album copies (Query); those albums (BatchGetItem: counts, covers); the newest photo of the "
        "album it was the cover of (Query); one transaction; one S3 batch delete",
    ),
    TRASH_ALONE_NAME: (
        "2 DynamoDB",
        "the photo, if it said whether it was ever put in an album (adding rewrites it anyway); one transaction",
    ),
}

# Calls above MINIMUM on purpose. The write-rate token is section 3's: every write route spends one first. The
# authorization read on its own is access.py's design: every album route but GET /albums asks AlbumAccess first
# (one strongly consistent BatchGetItem of the album and the caller's membership) before it reads or writes
# anything else, so one place decides who may do what.
BY_DESIGN: dict[str, tuple[int, str]] = {
    "POST /albums": design(WRITE_TOKEN_CALL),
    **{
        list_name(n): design(
            (
                batches(n),
                "BatchGetItem of the albums behind key-only access entries (every album, then sorted by update time "
                "and cut to the page)",
            )
        )
        for n in LIST_SIZES
    },
    "PATCH /albums/{id} (title)": design(WRITE_TOKEN_CALL, AUTHORIZATION),
    "PATCH /albums/{id} (cover)": design(
        WRITE_TOKEN_CALL,
        AUTHORIZATION,
        "the reply read afresh (GetItem: a transaction returns no item; the counts may move)",
    ),
    "POST /albums/{id}/photos (1)": design(WRITE_TOKEN_CALL, AUTHORIZATION, PHOTOS_READ),
    ADD_NAME: design(WRITE_TOKEN_CALL, AUTHORIZATION, PHOTOS_READ),
    "POST /albums/{id}/photos (contributor, 3)": design(WRITE_TOKEN_CALL, AUTHORIZATION, PHOTOS_READ),
    "POST /albums/{id}/photos/remove (1)": design(WRITE_TOKEN_CALL, AUTHORIZATION),
    REMOVE_NAME: design(WRITE_TOKEN_CALL, AUTHORIZATION),
    PAGE_NAME: design(AUTHORIZATION, KEY_ONLY_ENTRIES),
    "POST /albums/{id}/members": design(
        WRITE_TOKEN_CALL,
        "the authorization read before AdminGetUser (no user-name look-ups for callers who may not share), so the "
        "new member's profile is read on its own",
    ),
    "GET /albums/{id}/members": design(AUTHORIZATION),
    "PATCH /albums/{id}/members/{user_id}": design(WRITE_TOKEN_CALL, AUTHORIZATION),
    "DELETE /albums/{id}/members/{user_id} (viewer)": design(WRITE_TOKEN_CALL, AUTHORIZATION, TWO_PHASES),
    LEAVE_NAME: design(
        WRITE_TOKEN_CALL,
        (
            2,
            "phases: access ends in a transaction of its own, the photos leave in the next, the membership item goes "
            "last (DeleteItem)",
        ),
    ),
    "POST /albums/{id}/links": design(WRITE_TOKEN_CALL, AUTHORIZATION),
    "POST /albums/{id}/links (password)": design(WRITE_TOKEN_CALL, AUTHORIZATION),
    "GET /albums/{id}/links": design(AUTHORIZATION),
    "DELETE /albums/{id}/links/{link_id}": design(WRITE_TOKEN_CALL, AUTHORIZATION),
    PUBLIC_NAME: design("the album on its own (GetItem: title, count, being deleted?)", KEY_ONLY_ENTRIES),
    f"GET /public/albums/{{token}} ({PAGE}, password, unlocked)": design(
        "the album on its own (GetItem: title, count, being deleted?)", KEY_ONLY_ENTRIES
    ),
    "GET /public/albums/{token} (password, no access → 401)": design(
        "the album read before the password is asked for (a deleted album's links answer 404, not 401)"
    ),
    DELETE_ALBUM_NAME: design(
        WRITE_TOKEN_CALL,
        AUTHORIZATION,
        "the deletion mark first (UpdateItem): gone for everyone at once; the sweeper finishes a cut-short clean-up",
    ),
    DELETE_PHOTO_NAME: design(WRITE_TOKEN_CALL),
    PURGE_PHOTO_NAME: design(WRITE_TOKEN_CALL, roundtrips.PURGING_MARK),
    TRASH_ALONE_NAME: design(WRITE_TOKEN_CALL),
}


def budget(operation: str) -> int:
    return roundtrips.budget(operation, MINIMUM, BY_DESIGN)


# --- the measurement -----------------------------------------------------------------------------------------------


@dataclass
class Harness:
    """The app on in-process moto with a Meter on its clients: `call` measures one request, `setup` makes one
    without keeping its figures."""

    app: Any
    app_module: Any
    meter: roundtrips.Meter
    raw: Any  # an uncounted DynamoDB client
    session: Any
    settings: Any
    results: dict[str, Any] = field(default_factory=dict)
    context: LambdaContext = field(default_factory=LambdaContext)

    def request(
        self,
        method: str,
        resource: str,
        status: int,
        *,
        sub: str | None = OWNER,
        headers: dict[str, str] | None = None,
        what: str = "",
        **kwargs: Any,
    ) -> dict[str, Any]:
        event = api_gateway_event(method, resource, sub=sub or OWNER, **kwargs)
        if sub is None:  # a public route: no token, no authorizer
            event["requestContext"].pop("authorizer")
            event["headers"].pop("Authorization")
            event["multiValueHeaders"].pop("Authorization")
        for name, value in (headers or {}).items():
            event["headers"][name] = value
            event["multiValueHeaders"][name] = [value]
        response = self.app(event, self.context)
        if response["statusCode"] != status:
            raise AssertionError(f"{what or method + ' ' + resource}: {response['statusCode']} {response.get('body')}")
        body: dict[str, Any] = json.loads(response["body"]) if response.get("body") else {}
        return body

    def call(self, name: str, method: str, resource: str, status: int, **kwargs: Any) -> dict[str, Any]:
        self.meter.reset()
        body = self.request(method, resource, status, what=name, **kwargs)
        presigned = json.dumps(body).count("X-Amz-Signature")
        tally = self.meter.reset()
        self.results[name] = {**tally.summary(), "sequence": list(tally.calls), "presigned_urls": presigned}
        return body

    def setup(self, method: str, resource: str, status: int, **kwargs: Any) -> dict[str, Any]:
        self.meter.sizing = False
        try:
            return self.request(method, resource, status, **kwargs)
        finally:
            self.meter.sizing = True
            self.meter.reset()

    def seed_photos(self, owner_id: str, count: int) -> list[str]:
        """READY photos written straight into the table, in the repository's own item shape."""
        from chalicelib.ids import new_ulid
        from chalicelib.photos.models import Photo, PhotoStatus
        from chalicelib.photos.repository import _photo_item

        ids = [new_ulid() for _ in range(count)]
        items = [
            _photo_item(
                Photo(
                    photo_id=photo_id,
                    owner_id=owner_id,
                    status=PhotoStatus.READY,
                    filename=f"IMG_{index:04d}.jpg",
                    content_type="image/jpeg",
                    size_bytes=4_718_592,
                    created_at="2026-11-20T09:15:02.118Z",
                    updated_at="2026-11-20T09:15:03.402Z",
                    upload_expires_at="2026-11-20T09:30:02.118Z",
                    title=f"Photo {index}",
                    description="A walk along the harbour",
                    tags=("holiday", "sea"),
                    width=6000,
                    height=4000,
                    taken_at="2026-11-19T17:42:10.000Z",
                )
            )
            for index, photo_id in enumerate(ids)
        ]
        self.put_items(items)
        return ids

    def seed_albums(self, owner_id: str, count: int, *, cover: str) -> None:
        """Albums with one photo (the cover) written straight into the table as the repository writes them: the album
        and its owner's access entry (all GET /albums reads)."""
        from chalicelib.albums import items
        from chalicelib.albums.models import Album, Role
        from chalicelib.ids import new_ulid

        written = []
        for index in range(count):
            album = Album(
                album_id=new_ulid(),
                owner_id=owner_id,
                owner_username="bench-user",
                title=f"Trip {index}",
                description="Three days along the coast",
                cover_photo_id=cover,
                cover_owner_id=owner_id,
                photo_count=1,
                created_at="2026-11-20T09:15:02.118Z",
                updated_at=f"2026-11-21T09:15:{index % 60:02d}.000Z",
            )
            written += [items.album_item(album), items.access_item(owner_id, album.album_id, Role.OWNER)]
        self.put_items(written)

    def seed_album(self, owner_id: str, photo_ids: list[str]) -> str:
        """An album holding the owner's photos, written straight into the table as the repository writes it (the
        album, its owner's access entry, an entry per photo and its copy beside the photo), the first photo added
        first (the cover) and each later one a second after the one before."""
        from chalicelib.albums import items
        from chalicelib.albums.models import Album, AlbumPhotoEntry, Role
        from chalicelib.ids import new_ulid

        album_id = new_ulid()
        added = [
            f"2026-11-21T{index // 3600:02d}:{index // 60 % 60:02d}:{index % 60:02d}.000Z"
            for index in range(len(photo_ids))
        ]
        album = Album(
            album_id=album_id,
            owner_id=owner_id,
            owner_username="bench-user",
            title="Harbour",
            cover_photo_id=photo_ids[0] if photo_ids else None,
            cover_owner_id=owner_id if photo_ids else None,
            photo_count=len(photo_ids),
            created_at="2026-11-20T09:15:02.118Z",
            updated_at=added[-1] if added else "2026-11-20T09:15:02.118Z",
        )
        written = [items.album_item(album), items.access_item(owner_id, album_id, Role.OWNER)]
        for photo_id, added_at in zip(photo_ids, added, strict=True):
            entry = AlbumPhotoEntry(album_id, photo_id, owner_id, added_at)
            written += [items.album_photo_item(entry), items.photo_album_item(entry)]
        self.put_items(written)
        return album_id

    def put_items(self, written: list[dict[str, Any]]) -> None:
        for start in range(0, len(written), 25):
            self.raw.batch_write_item(
                RequestItems={
                    self.settings.table_name: [{"PutRequest": {"Item": i}} for i in written[start : start + 25]]
                }
            )

    def run_worker(self, key: str) -> None:
        """The worker's handler, with the SQS event S3 sends for an object created at `key`."""
        from devstack.events import sqs_lambda_event

        notification = {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Post",
                    "s3": {"bucket": {"name": self.settings.bucket_name}, "object": {"key": key}},
                }
            ]
        }
        self.app_module.process_uploads(
            sqs_lambda_event(
                {"Body": json.dumps(notification), "MessageId": str(uuid.uuid4())}, "arn:aws:sqs:q", "us-east-1"
            ),
            self.context,
        )

    def uploaded_photo(self, data: bytes) -> str:
        """A photo through the real flow (declared, uploaded, settled by the worker): it has objects to delete."""
        created = self.setup(
            "POST",
            "/photos",
            201,
            body={"filename": "harbour.jpg", "content_type": "image/jpeg", "size_bytes": len(data), "tags": ["sea"]},
        )
        key = created["upload"]["fields"]["key"]
        self.session.client("s3").put_object(Bucket=self.settings.bucket_name, Key=key, Body=data)
        self.run_worker(key)
        self.meter.reset()
        return str(created["photo"]["photo_id"])

    def new_album(self, title: str, photo_ids: list[str] | None = None, sub: str = OWNER) -> str:
        album_id = str(self.setup("POST", "/albums", 201, sub=sub, body={"title": title})["album_id"])
        for start in range(0, len(photo_ids or []), PAGE):
            chunk = (photo_ids or [])[start : start + PAGE]
            self.setup("POST", "/albums/{album_id}/photos", 200, sub=sub, **self.on(album_id, photo_ids=chunk))
        return album_id

    @staticmethod
    def on(album_id: str, *, body: Any = None, photo_ids: list[str] | None = None, **more: str) -> dict[str, Any]:
        """The path parameters (and body) of a request on one album."""
        kwargs: dict[str, Any] = {"path_parameters": {"album_id": album_id, **more}}
        if photo_ids is not None:
            kwargs["body"] = {"photo_ids": photo_ids}
        elif body is not None:
            kwargs["body"] = body
        return kwargs


@contextlib.contextmanager
def harness(*, cognito_users: tuple[str, ...] = ()) -> Iterator[tuple[Harness, dict[str, str]]]:
    """The app on a fresh in-process moto (table, bucket and, with `cognito_users`, a user pool holding them, whose
    ARN the app is configured with); yields the harness and each user name's `sub`. The process's environment is
    the API Lambda's while it runs, and as it was afterwards (the test suite runs this too)."""
    import boto3
    from moto import mock_aws

    from chalicelib import deps
    from devstack import resources

    saved = dict(os.environ)
    try:
        common.apply_lambda_environment()
        os.environ.update(SETUP_ENVIRONMENT)
        with mock_aws(), contextlib.redirect_stdout(io.StringIO()):  # the app's request log lines
            try:
                session = boto3.session.Session(region_name=common.REGION)
                subs: dict[str, str] = {}
                if cognito_users:
                    idp = session.client("cognito-idp")
                    pool = idp.create_user_pool(PoolName="photosky-bench")["UserPool"]
                    for name in cognito_users:
                        idp.admin_create_user(UserPoolId=pool["Id"], Username=name, MessageAction="SUPPRESS")
                        idp.admin_set_user_password(
                            UserPoolId=pool["Id"],
                            Username=name,
                            Password="Bench-Password-1",  # noqa: S106 - a user of moto's in-process pool
                            Permanent=True,
                        )
                        found = idp.admin_get_user(UserPoolId=pool["Id"], Username=name)["UserAttributes"]
                        subs[name] = next(a["Value"] for a in found if a["Name"] == "sub")
                    os.environ["COGNITO_USER_POOL_ARN"] = pool["Arn"]
                deps.reset()
                settings = deps.settings()
                raw = session.client("dynamodb")
                resources.create_table(raw, settings.table_name)
                resources.create_bucket(session.client("s3"), settings.bucket_name, common.REGION)
                import app as app_module

                clients = [deps.cognito()] if cognito_users else []
                meter = roundtrips.Meter(deps.dynamodb(), deps.s3(), raw, settings.table_name, *clients)
                deps.dynamodb().meta.events.register("provide-client-params.dynamodb", meter.remember_read)
                yield Harness(app_module.app, app_module, meter, raw, session, settings), subs
            finally:
                deps.reset()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def measure(*, log: Callable[[str], None]) -> dict[str, Any]:  # noqa: PLR0915 - one scripted scenario
    with harness(cognito_users=MEMBERS) as (h, subs):
        mia, vic, ana = (subs[name] for name in MEMBERS)
        for sub, name in ((OWNER, "Olga"), (mia, "Mia"), (vic, "Victor"), (ana, "Ana")):
            h.setup("POST", "/users", 201, sub=sub, body={"display_name": name})
        photos = h.seed_photos(OWNER, 2 * PAGE + 10)
        theirs = h.seed_photos(mia, LEAVER_PHOTOS)
        log("  albums: set up")

        # One album through its life: created, filled, edited, paged, shared, linked, emptied.
        album_id = str(h.call("POST /albums", "POST", "/albums", 201, body={"title": "Harbour"})["album_id"])
        on = h.on
        h.call(
            "POST /albums/{id}/photos (1)",
            "POST",
            "/albums/{album_id}/photos",
            200,
            **on(album_id, photo_ids=photos[:1]),
        )
        added = h.call(
            ADD_NAME,
            "POST",
            "/albums/{album_id}/photos",
            200,
            **on(album_id, photo_ids=photos[1 : PAGE + 1]),
        )
        if {result["status"] for result in added["results"]} != {"added"}:
            raise AssertionError(f"adding {PAGE} photos: {added['results'][:3]}")
        album = h.call("GET /albums/{id}", "GET", "/albums/{album_id}", 200, **on(album_id))
        album = h.call(
            "PATCH /albums/{id} (title)",
            "PATCH",
            "/albums/{album_id}",
            200,
            **on(album_id, body={"title": "Harbour walks", "version": album["version"]}),
        )
        h.call(
            "PATCH /albums/{id} (cover)",
            "PATCH",
            "/albums/{album_id}",
            200,
            **on(album_id, body={"cover_photo_id": photos[10], "version": album["version"]}),
        )
        page = h.call(
            PAGE_NAME,
            "GET",
            "/albums/{album_id}/photos",
            200,
            query={"limit": str(PAGE)},
            **on(album_id),
        )
        h.results[PAGE_NAME]["items"] = len(page["items"])

        h.call(
            "POST /albums/{id}/members",
            "POST",
            "/albums/{album_id}/members",
            201,
            **on(album_id, body={"username": "mia", "role": "contributor"}),
        )
        h.setup(
            "POST", "/albums/{album_id}/members", 201, **on(album_id, body={"username": "vic", "role": "contributor"})
        )
        members = h.call("GET /albums/{id}/members", "GET", "/albums/{album_id}/members", 200, **on(album_id))
        h.results["GET /albums/{id}/members"]["items"] = len(members["items"])
        h.call(
            "PATCH /albums/{id}/members/{user_id}",
            "PATCH",
            "/albums/{album_id}/members/{user_id}",
            200,
            **on(album_id, body={"role": "viewer"}, user_id=vic),
        )
        h.call(
            "POST /albums/{id}/photos (contributor, 3)",
            "POST",
            "/albums/{album_id}/photos",
            200,
            sub=mia,
            **on(album_id, photo_ids=theirs),
        )

        link = h.call("POST /albums/{id}/links", "POST", "/albums/{album_id}/links", 201, **on(album_id, body={}))
        locked = h.call(
            "POST /albums/{id}/links (password)",
            "POST",
            "/albums/{album_id}/links",
            201,
            **on(album_id, body={"password": "harbour-walks", "allow_download": True}),
        )
        h.call("GET /albums/{id}/links", "GET", "/albums/{album_id}/links", 200, **on(album_id))
        public = {"sub": None, "query": {"limit": str(PAGE)}}
        shown = h.call(
            PUBLIC_NAME,
            "GET",
            "/public/albums/{token}",
            200,
            path_parameters={"token": link["token"]},
            **public,
        )
        h.results[PUBLIC_NAME]["items"] = len(shown["items"])
        h.call(
            "GET /public/albums/{token} (password, no access → 401)",
            "GET",
            "/public/albums/{token}",
            401,
            path_parameters={"token": locked["token"]},
            **public,
        )
        h.call(
            "POST /public/albums/{token}/unlock (wrong password)",
            "POST",
            "/public/albums/{token}/unlock",
            401,
            sub=None,
            path_parameters={"token": locked["token"]},
            body={"password": "not-the-password"},
        )
        unlocked = h.call(
            "POST /public/albums/{token}/unlock",
            "POST",
            "/public/albums/{token}/unlock",
            200,
            sub=None,
            path_parameters={"token": locked["token"]},
            body={"password": "harbour-walks"},
        )
        h.call(
            f"GET /public/albums/{{token}} ({PAGE}, password, unlocked)",
            "GET",
            "/public/albums/{token}",
            200,
            path_parameters={"token": locked["token"]},
            headers={"X-Link-Access": unlocked["access_token"]},
            **public,
        )
        h.call(
            "GET /public/albums/{token} (unknown token → 404)",
            "GET",
            "/public/albums/{token}",
            404,
            path_parameters={"token": "x" * 43},
            **public,
        )
        h.call(
            "DELETE /albums/{id}/links/{link_id}",
            "DELETE",
            "/albums/{album_id}/links/{link_id}",
            204,
            **on(album_id, link_id=link["link_id"]),
        )

        h.call(
            "POST /albums/{id}/photos/remove (1)",
            "POST",
            "/albums/{album_id}/photos/remove",
            200,
            **on(album_id, photo_ids=[photos[PAGE]]),
        )
        removed = h.call(
            REMOVE_NAME,
            "POST",
            "/albums/{album_id}/photos/remove",
            200,
            **on(album_id, photo_ids=photos[:PAGE]),
        )
        if {result["status"] for result in removed["results"]} != {"removed"}:
            raise AssertionError(f"removing {PAGE} photos: {removed['results'][:3]}")
        h.call(
            "DELETE /albums/{id}/members/{user_id} (viewer)",
            "DELETE",
            "/albums/{album_id}/members/{user_id}",
            204,
            **on(album_id, user_id=vic),
        )
        h.call(
            LEAVE_NAME,
            "DELETE",
            "/albums/{album_id}/members/{user_id}",
            204,
            sub=mia,
            **on(album_id, user_id=mia),
        )
        log("  albums: one album's life measured")

        # An album with N photos, M members and a link, deleted.
        doomed = h.new_album("Doomed", photos[:PHOTOS])
        for name, role in zip(("mia", "vic", "ana"), ("contributor", "viewer", "viewer"), strict=True):
            h.setup("POST", "/albums/{album_id}/members", 201, **on(doomed, body={"username": name, "role": role}))
        h.setup("POST", "/albums/{album_id}/links", 201, **on(doomed, body={}))
        h.call(DELETE_ALBUM_NAME, "DELETE", "/albums/{album_id}", 204, **on(doomed))

        # Two photos in K albums each (the cover of the first), one trashed and one deleted for good, and one in no
        # album trashed. Each upload has bytes of its own (a copy of a library photo is rejected).
        trashed, purged, alone = (h.uploaded_photo(roundtrips.photo_bytes(variant)) for variant in (1, 2, 3))
        for photo_id in (trashed, purged):
            for index in range(PHOTO_IN_ALBUMS):
                # Added first to the first album (its cover), after two others to the rest.
                others = photos[PAGE : PAGE + 2]
                h.new_album(f"Holds it {index}", [photo_id, *others] if index == 0 else [*others, photo_id])
        for name, photo_id, query in (
            (DELETE_PHOTO_NAME, trashed, None),
            (PURGE_PHOTO_NAME, purged, {"permanent": "true"}),
            (TRASH_ALONE_NAME, alone, None),
        ):
            h.call(name, "DELETE", "/photos/{photo_id}", 204, query=query, path_parameters={"photo_id": photo_id})
        in_trash = {item["photo_id"] for item in h.request("GET", "/trash", 200, query={"limit": "100"})["items"]}
        if in_trash != {trashed, alone}:
            raise AssertionError(f"the trash holds {in_trash}, not the two photos trashed")

        # GET /albums for a caller with N albums (each with a cover: two signed preview URLs each on the page). The
        # albums beyond those above are written straight into the table (moto's transactions slow down as it grows).
        had = len(h.request("GET", "/albums", 200, query={"limit": "100"})["items"])
        for size in LIST_SIZES:
            h.seed_albums(OWNER, size - had, cover=photos[PAGE + 5])
            had = size
            listed = h.call(list_name(size), "GET", "/albums", 200)
            h.results[list_name(size)]["items"] = len(listed["items"])
        log("  albums: done")
        results = h.results
    return {"operations": results, "minimum": MINIMUM, "by_design": BY_DESIGN, "sizes": scenario_sizes()}


def scenario_sizes() -> dict[str, Any]:
    return {
        "page": PAGE,
        "list_sizes": LIST_SIZES,
        "deleted_album": DELETED_ALBUM,
        "photo_in_albums": PHOTO_IN_ALBUMS,
        "leaver_photos": LEAVER_PHOTOS,
    }


# --- the report ----------------------------------------------------------------------------------------------------

SECTION_HEADING = "## 7. Albums and sharing: AWS calls and DynamoDB capacity per operation"

# Why an operation makes more calls than its budget, and what would save them: shown for those above it in the run.
OVER_BUDGET: dict[str, str] = {
    "PATCH /albums/{id} (title)": (
        "the edit is a TransactWriteItems of a single Update (twice an UpdateItem's write units), and the reply is "
        "read again (GetItem) because a transaction returns no item. Without a cover change, an UpdateItem with the "
        "same condition and `ReturnValues=ALL_NEW` returns the item: one call and one read less, the write at half "
        "its units"
    ),
    "POST /albums/{id}/photos (contributor, 3)": (
        "the contributor's membership is read again (`get_with_membership`: the authorization read's own two keys, "
        "strongly consistent) for the transaction's condition, because AlbumAccess drops it (a Grant holds the album "
        "and the role only). A Grant carrying the membership saves the call"
    ),
    "POST /albums/{id}/photos/remove (1)": (
        "the service reads the entries (BatchGetItem), then `remove_entries` reads the album (GetItem) and the same "
        "entries (BatchGetItem) again before each transaction of at most 48. The album from the authorization read "
        "and the service's entries can go into the first transaction as they are (its conditions, each entry still "
        "there and the cover unchanged, already catch a concurrent change), reading again only after a failed one"
    ),
    REMOVE_NAME: (
        "the same two re-reads (album GetItem, entries BatchGetItem) before each of the transactions, so every "
        "entry is read twice, strongly consistently"
    ),
    "PATCH /albums/{id}/members/{user_id}": (
        "after the transaction the member is read back in two calls: the album with their membership again "
        "(`get_with_membership`, strongly consistent) and their profile (BatchGetItem). One BatchGetItem of "
        "membership + profile would do; or the authorization read could take both keys (they are in the path) and "
        "the reply be built from it and the new role"
    ),
    LEAVE_NAME: (
        "the member's own membership is read twice (the authorization read, then `get_with_membership` of the same "
        "two keys), and taking their photos out reads the album (GetItem) and their entries (BatchGetItem) again "
        "though the Query has just returned the entries and the authorization read the album (`remove_entries`, as "
        "above)"
    ),
    "POST /public/albums/{token}/unlock": (
        "the link and this window's failed attempts are two GetItems of keys both derived from the token's hash "
        "(`LINK#<hash>`/`LINK` and `LINK#<hash>`/`FAIL#<window>`): one BatchGetItem reads both"
    ),
    "POST /public/albums/{token}/unlock (wrong password)": "the same two GetItems where one BatchGetItem would do",
    DELETE_ALBUM_NAME: (
        "the album is read (GetItem) before the authorization read, to let its owner finish a cut-short deletion "
        "(which the authorization read refuses as 404); the authorization read returns the same item, so the "
        "service can decide from it. And the album and its owner's access entry go in a transaction of their own "
        "after the last chunk, though that chunk had room for them (it held "
        f"{(2 * (PHOTOS + MEMBERS_N + LINKS)) % 96 or 96} of 100 items here): still last if appended to it"
    ),
    TRASH_ALONE_NAME: (
        "every photo leaving the library (to the trash, or for good when not yet in it) Queries the photo's album "
        "copies (`PHOTOALBUM#<id>#`), also for a photo that was never in an album (most photos). Adding a photo to an "
        "album already updates the photo item (its revision); also setting a flag there (`SET in_albums = :yes`) "
        "would let a delete skip the Query when the flag is absent. Section 3's DELETE /photos/{id} and section 8's "
        "trash are the same route: they make this Query too"
    ),
}


def over_budget(data: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(operation, calls, budget) of every measured operation above its budget."""
    found = []
    for operation in data["minimum"]:
        if operation in data["operations"]:
            allowed = roundtrips.budget(operation, data["minimum"], data["by_design"])
            total = sum(data["operations"][operation]["calls"].values())
            if total > allowed:
                found.append((operation, total, allowed))
    return found


def page_met(sequence: list[str]) -> bool:
    """Issue 12's limit on an album page: after the authorization read, at most one Query and one BatchGetItem."""
    if not sequence or sequence[0] != "DynamoDB BatchGetItem":
        return False
    rest = sequence[1:]
    return set(rest) <= {"DynamoDB Query", "DynamoDB BatchGetItem"} and all(rest.count(c) <= 1 for c in set(rest))


def goal_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    page = data["operations"].get(PAGE_NAME)
    if page is None:
        return []
    sequence = page["sequence"]
    return [
        (
            f"AWS calls, an album page of {PAGE} photos",
            "≤ 1 Query + 1 BatchGetItem (issue 12), after the authorization read",
            " → ".join(name.removeprefix("DynamoDB ") for name in sequence),
            common.verdict(page_met(sequence)),
        )
    ]


def section(results: dict[str, Any]) -> str:
    data = results["albums"]
    rows = []
    measured = data["operations"]
    order = [name for name in data["minimum"] if name in measured] + [n for n in measured if n not in data["minimum"]]
    for operation in order:
        entry = measured[operation]
        total = sum(entry["calls"].values())
        minimum, why = data["minimum"].get(operation, ("", ""))
        extra, reason = data["by_design"].get(operation, (0, ""))
        over = bool(minimum) and total > roundtrips.budget(operation, data["minimum"], data["by_design"])
        rows.append(
            (
                operation,
                ", ".join(f"{count}× {name}" for name, count in entry["calls"].items()),
                f"**{total}**" if over else str(total),
                f"{minimum} ({why})" if minimum else "",
                f"+{extra}: {reason}" if extra else "",
                fmt_num(entry["rru"], 1),
                fmt_num(entry["wru"], 1),
                str(entry.get("presigned_urls", 0)),
            )
        )
    sizes = data["sizes"]
    deleted = sizes["deleted_album"]
    how = (
        "a whole `make bench` run"
        if results.get("complete")
        else "`.venv/bin/python -m bench --only albums` (this section alone; the rest of this report is from the run "
        "named at the top)"
    )
    intro = (
        f"Measured on {results['started']} by {how}, as section 3 measures the photo routes: through the real "
        "handler (`app.app(event, context)`) on in-process `moto.mock_aws`, every call of the app's DynamoDB, S3 "
        "and Cognito clients counted with botocore's `before-call` hook (bench/albums.py, bench/roundtrips.py's "
        "Meter), capacity computed from the items' sizes with DynamoDB's rules as in section 3. Besides those rules: "
        "a key a BatchGetItem asks for and does not find is charged like a GetItem that finds nothing (every "
        "authorization read by an album's owner asks for their membership, which owners do not have), a Query with "
        "a FilterExpression is charged for every item it evaluated, and a ConditionCheck like a transactional write "
        "of the item it checks. Writes to the GSI1 index are not counted (nor in section 3): an album entry carries "
        "GSI1 keys, so each one added or removed also costs an index write. One album goes through its life "
        f"(created; 1 then {sizes['page']} of the owner's READY photos added; edited; a page of {sizes['page']} "
        "read; a contributor and a viewer added; links made and opened; photos removed; the viewer removed; the "
        f"contributor leaving with their {sizes['leaver_photos']} photos); then an album with {deleted['photos']} "
        f"photos, {deleted['members']} members and {deleted['links']} link is deleted; of two photos in "
        f"{sizes['photo_in_albums']} albums each (the cover of one) one goes to the trash (a READY photo's DELETE, "
        "since issue 13) and one is deleted for good (`?permanent=true`), and a photo in no album goes to the trash; "
        "and the owner lists "
        + " and ".join(str(n) for n in sizes["list_sizes"])
        + " albums (each with a cover). URLs signed: S3 presigned GETs in the reply (covers, and 3 per photo to "
        "members: original, large, small; 2 to link visitors, 3 when the link allows downloads). *Minimum possible* "
        "is the fewest calls any implementation needs, the caller's right riding in a read the route makes anyway "
        "or in its writes' conditions; *above it by design* is what PhotoSky spends on purpose; a total in bold is "
        "above both (explained below the table)."
    )
    return "\n".join(
        [
            SECTION_HEADING,
            "",
            intro,
            "",
            table(
                ["operation", "calls", "total", "minimum possible", "above it by design", "RRU", "WRU", "URLs signed"],
                rows,
            ),
            "",
            *notes(data),
        ]
    )


def notes(data: dict[str, Any]) -> list[str]:
    ops = data["operations"]
    lines = []
    page = ops.get(PAGE_NAME)
    if page is not None:
        lines.append(
            f"- **The album page (issue 12).** GET /albums/{{id}}/photos?limit={PAGE} makes "
            + " → ".join(page["sequence"])
            + f": the authorization read, then one index Query and one BatchGetItem for the {page.get('items', '?')} "
            f"photos, {fmt_num(page['rru'], 1)} RRU (a batch read charges each photo at least ½ unit: "
            f"{fmt_num(PAGE / 2, 1)} of it), {page['presigned_urls']} URLs signed. Issue 12's limit (at most one "
            "Query and one BatchGetItem) holds for the page; the route's authorization read is a second "
            "BatchGetItem (2 keys). Folding the album and membership keys into the photos' BatchGetItem would make "
            f"the route 2 calls, but that batch would then be strongly consistent ({PAGE} RRU for the photos "
            f"instead of {fmt_num(PAGE / 2, 0)}) and photos would be read before the caller is known to be allowed. "
            "tests/unit/test_bench_helpers.py holds the route to exactly these calls."
        )
    token = next((entry for name, entry in ops.items() if name == "POST /albums"), None)
    if token is not None:
        lines.append(
            "- **Authorization read.** Every album route but GET /albums and the public ones asks "
            "`AlbumAccess.for_user` first: one "
            "strongly consistent BatchGetItem of the album and the caller's membership "
            f"({fmt_num(ops['GET /albums/{id}']['rru'], 1)} RRU for GET /albums/{{id}} by its owner, whose "
            "membership key finds nothing but is charged), before the route reads or writes anything else. It is "
            "counted as by design: one place decides access (chalicelib/albums/access.py). Every write route also "
            "spends the write-rate token first (section 3)."
        )
    for operation, total, allowed in over_budget(data):
        why = OVER_BUDGET.get(operation, "not explained yet: look at the calls in the table")
        lines.append(f"- **{operation}: {total} calls against a budget of {allowed}.** {why[0].upper()}{why[1:]}.")
    listed = [(name, entry) for name, entry in ops.items() if name.startswith("GET /albums (")]
    if listed:
        figures = ", ".join(
            f"{fmt_num(entry['rru'], 1)} RRU with {name.split('(')[1].split()[0]} albums "
            f"({entry.get('items', '?')} on the page)"
            for name, entry in listed
        )
        lines.append(
            "- **Listing albums reads every album.** GET /albums reads all the caller's access entries (one Query) "
            "and every album behind them (BatchGetItem per 100, strongly consistent), then sorts by update time and "
            f"cuts the page: {figures}. The cost grows with the albums a person has, not with the page. The albums "
            "could be read eventually consistently (½ unit each, halving it: a listing a second stale is harmless, "
            "and opening an album reads it strongly anyway); a page read in order would need an order kept per "
            "member, a write per member whenever an album changes (the service's docstring weighs this)."
        )
    added = ops.get(ADD_NAME)
    if added is not None:
        lines.append(
            f"- **Adding photos.** {PAGE} photos cost {fmt_num(added['wru'], 1)} WRU: three transactional writes per "
            "photo (the entry, its copy beside the photo, and a revision bump of the photo item, the last a third of "
            "the cost: it makes a concurrent delete of the photo read its albums again) and the album's count per "
            f"transaction; and {fmt_num(added['rru'], 1)} RRU, mostly the caller's photos read strongly consistently "
            "(1 unit each; the transaction re-checks READY, so an eventually consistent read would risk only a "
            '"not_ready" for a photo settled within the last second, at ½ unit each).'
        )
    return lines


def analysis(data: dict[str, Any]) -> str:
    over = over_budget(data)
    total = len([name for name in data["operations"] if name in data["minimum"]])
    page = data["operations"].get(PAGE_NAME)
    text = f"- **Albums (section 7).** {total - len(over)} of {total} album operations are within their budget"
    if page is not None:
        text += (
            f"; the album page of {PAGE} makes "
            + " → ".join(name.removeprefix("DynamoDB ") for name in page["sequence"])
            + (" (issue 12's limit met after the authorization read)" if page_met(page["sequence"]) else "")
        )
    if over:
        text += (
            ". Above budget: "
            + ", ".join(f"{name} ({calls} against {allowed})" for name, calls, allowed in over)
            + ". Each is one read more than needed, explained under section 7's table with its fix; left for now: "
            "they cost a round trip on rare operations (a role change, an unlock) or half a read unit (a delete)."
        )
    else:
        text += ". No album operation is above its budget."
    return text
