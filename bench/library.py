"""Section 8: the library (issue 13: favourites, the timeline, the trash, duplicates, batches, account deletion), AWS
calls and DynamoDB capacity per operation, counted as sections 3 and 7 count theirs: through the real handler (and
the upload worker) on in-process moto, with bench/roundtrips.py's Meter on the app's DynamoDB and S3 clients.

Every operation is compared with the fewest calls any implementation of it needs (MINIMUM, with the reasoning) plus
what PhotoSky spends above that on purpose (BY_DESIGN); anything more is a finding, shown in bold and explained
(OVER_BUDGET) with what would save the calls. Writes to the two indexes are counted apart (index WRU), so the cost of
issue 13's GSI2 (every READY photo) and favourites' GSI1 entries shows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import albums, cost, roundtrips
from bench.common import fmt_num, table

OWNER = roundtrips.OWNER
LEAVER = "5f3c2a1b-8d7e-4f60-9a1b-2c3d4e5f6a7b"  # the account deleted at the end
LIBRARY = 60  # READY photos, one uploaded a day, taken six days apart over a year (twelve months on the timeline)
PAGE = 30  # GET /photos' default limit
FAVOURITE_EVERY = 4  # every fourth photo is a favourite
TAGS = ("holiday", "sea")
BATCH = 10  # photos per POST /photos/batch, and in the trash when it is emptied
ACCOUNT = {"photos": 3, "in_album": 2, "trashed": 1}  # the small account deleted by DELETE /users/me
UPLOAD_DAY = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)  # the first photo's upload; one a day after it
TAKEN_DAY = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)  # the first photo's taken time; six days apart after it
UPLOADED_RANGE = ("2026-09-11", "2026-09-20")  # ?from&to on upload time: ten of the photos
TAKEN_RANGE = ("2026-03-01", "2026-03-31")  # ?sort=taken&from&to: one month

WRITE_TOKEN_CALL = roundtrips.WRITE_RATE_TOKEN[1]  # "the write-rate token (UpdateItem)"
design = albums.design

LIST = "GET /photos"
LIST_FAVOURITES = "GET /photos?favorite=true"
LIST_TAKEN = "GET /photos?sort=taken"
LIST_TAKEN_RANGE = "GET /photos?sort=taken&from&to (one month)"
LIST_UPLOADED_RANGE = "GET /photos?from&to (ten days, upload time)"
LIST_AFTER_TRASH = f"GET /photos (the {BATCH} newest in the trash)"
TIMELINE = "GET /photos/timeline (12 months)"
TRASH_LIST = f"GET /trash ({BATCH} photos)"
TRASH_ALONE = "DELETE /photos/{id} (to the trash, in no album)"
TRASH_COVER = "DELETE /photos/{id} (to the trash, in 1 album as its cover)"
RESTORE_ALONE = "POST /photos/{id}/restore (in no album)"
RESTORE_COVER = "POST /photos/{id}/restore (back into 1 album)"
PURGE = "DELETE /photos/{id}?permanent=true (READY, in no album)"
EMPTY_TRASH = f"DELETE /trash ({BATCH} photos)"
BATCH_FAVOURITE = f"POST /photos/batch (favorite ×{BATCH})"
BATCH_TRASH = f"POST /photos/batch (trash ×{BATCH}, in no album)"
UPLOAD_HASHED = "POST /photos with sha256 (new bytes)"
UPLOAD_COPY = "POST /photos with sha256 (a copy → 409)"
SETTLE = "upload worker (settles a photo READY)"
SETTLE_COPY = "upload worker (a copy → REJECTED)"
DELETE_ACCOUNT = (
    f"DELETE /users/me ({ACCOUNT['photos']} photos, {ACCOUNT['in_album']} in the 1 album they own, "
    f"{ACCOUNT['trashed']} in the trash)"
)


# --- the measurement -----------------------------------------------------------------------------------------------


def seed_library(h: albums.Harness, owner_id: str, count: int) -> list[str]:
    """READY photos written through the photo repository itself on the uncounted client, as an upload and its settle
    write them (photo, tag copies, usage, the month's count, the claim on the bytes), oldest first."""
    from chalicelib.ids import new_ulid
    from chalicelib.photos.models import Photo, PhotoStatus
    from chalicelib.photos.repository import DynamoPhotoRepository

    repository = DynamoPhotoRepository(h.raw, h.settings.table_name)
    ids = []
    for index in range(count):
        uploaded = UPLOAD_DAY + timedelta(days=index)
        stamp = uploaded.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        photo_id = new_ulid(int(uploaded.timestamp() * 1000))
        pending = Photo(
            photo_id=photo_id,
            owner_id=owner_id,
            status=PhotoStatus.PENDING,
            filename=f"IMG_{index:04d}.jpg",
            content_type="image/jpeg",
            size_bytes=4_718_592,
            created_at=stamp,
            updated_at=stamp,
            upload_expires_at=(uploaded + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            title=f"Photo {index}",
            description="A walk along the harbour",
            tags=TAGS,
        )
        repository.add_reserving_quota(pending, max_photos=10_000, max_bytes=10**12, max_pending=10_000)
        ready = Photo(
            **{
                **pending.__dict__,
                "status": PhotoStatus.READY,
                "width": 6000,
                "height": 4000,
                "taken_at": (TAKEN_DAY + timedelta(days=6 * index)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "sha256": hashlib.sha256(f"photo {index}".encode()).hexdigest(),
                "favorite": index % FAVOURITE_EVERY == 0,
                "revision": 2,
            }
        )
        if not repository.replace(ready, pending):
            raise AssertionError(f"seeding photo {index}")
        ids.append(photo_id)
    h.meter.reset()
    return ids


def upload(h: albums.Harness, data: bytes, *, sub: str = OWNER, sha256: str | None = None) -> tuple[str, str]:
    """Declare an upload (not measured) and put its bytes as the browser's presigned POST does: (photo id, key)."""
    body: dict[str, Any] = {"filename": "harbour.jpg", "content_type": "image/jpeg", "size_bytes": len(data)}
    body["tags"] = list(TAGS)
    if sha256 is not None:
        body["sha256"] = sha256
    created = h.setup("POST", "/photos", 201, sub=sub, body=body)
    key = str(created["upload"]["fields"]["key"])
    h.session.client("s3").put_object(Bucket=h.settings.bucket_name, Key=key, Body=data)
    return str(created["photo"]["photo_id"]), key


def run_worker(h: albums.Harness, key: str) -> None:
    h.run_worker(key)


def measure_worker(h: albums.Harness, name: str, key: str) -> None:
    h.meter.reset()
    run_worker(h, key)
    tally = h.meter.reset()
    h.results[name] = {**tally.summary(), "sequence": list(tally.calls), "presigned_urls": 0}


def uploaded_photo(h: albums.Harness, variant: int, *, sub: str = OWNER) -> str:
    """A READY photo through the real flow, not measured: it has objects in the bucket and a claim on its bytes."""
    photo_id, key = upload(h, roundtrips.photo_bytes(variant), sub=sub)
    h.meter.sizing = False
    try:
        run_worker(h, key)
    finally:
        h.meter.sizing = True
        h.meter.reset()
    return photo_id


def photo_path(photo_id: str) -> dict[str, Any]:
    return {"path_parameters": {"photo_id": photo_id}}


def measure(*, log: Callable[[str], None]) -> dict[str, Any]:  # noqa: PLR0915 - one scripted scenario
    with albums.harness() as (h, _subs):
        h.setup("POST", "/users", 201, body={"display_name": "Olga"})
        photos = seed_library(h, OWNER, LIBRARY)
        log("  library: set up")

        # Listings of a library of LIBRARY READY photos, nothing in the trash.
        for name, query in (
            (LIST, {}),
            (LIST_FAVOURITES, {"favorite": "true"}),
            (LIST_TAKEN, {"sort": "taken"}),
            (LIST_TAKEN_RANGE, {"sort": "taken", "from": TAKEN_RANGE[0], "to": TAKEN_RANGE[1]}),
            (LIST_UPLOADED_RANGE, {"from": UPLOADED_RANGE[0], "to": UPLOADED_RANGE[1]}),
        ):
            listed = h.call(name, "GET", "/photos", 200, query=query)
            h.results[name]["items"] = len(listed["items"])
        timeline = h.call(TIMELINE, "GET", "/photos/timeline", 200)
        h.results[TIMELINE]["items"] = len(timeline["buckets"])

        # One photo at a time: to the trash and back, alone and as an album's cover; one deleted for good.
        alone, cover, after_cover = photos[1], photos[2], photos[3]
        album_id = str(h.setup("POST", "/albums", 201, body={"title": "Harbour"})["album_id"])
        h.setup("POST", "/albums/{album_id}/photos", 200, **h.on(album_id, photo_ids=[cover, after_cover]))
        h.call(TRASH_ALONE, "DELETE", "/photos/{photo_id}", 204, **photo_path(alone))
        h.call(TRASH_COVER, "DELETE", "/photos/{photo_id}", 204, **photo_path(cover))
        h.call(RESTORE_ALONE, "POST", "/photos/{photo_id}/restore", 200, **photo_path(alone))
        restored = h.call(RESTORE_COVER, "POST", "/photos/{photo_id}/restore", 200, **photo_path(cover))
        if restored["trashed_at"] is not None:
            raise AssertionError(f"restore left the photo trashed: {restored}")
        back = h.request("GET", "/albums/{album_id}/photos", 200, **h.on(album_id))
        if cover not in [item["photo_id"] for item in back["items"]]:
            raise AssertionError("the restored photo is not back in its album")
        doomed = uploaded_photo(h, 1)
        h.call(PURGE, "DELETE", "/photos/{photo_id}", 204, query={"permanent": "true"}, **photo_path(doomed))
        log("  library: single photos measured")

        # Batches of BATCH: favourites (photos that are not yet), then the newest to the trash; the listing with
        # them interleaved, the trash listed and emptied.
        plain = [photo_id for index, photo_id in enumerate(photos) if index % FAVOURITE_EVERY][5 : 5 + BATCH]
        done = h.call(BATCH_FAVOURITE, "POST", "/photos/batch", 200, body={"action": "favorite", "photo_ids": plain})
        newest = photos[-BATCH:]
        trashed = h.call(BATCH_TRASH, "POST", "/photos/batch", 200, body={"action": "trash", "photo_ids": newest})
        for outcome in (done, trashed):
            if {result["status"] for result in outcome["results"]} != {"done"}:
                raise AssertionError(f"batch: {outcome['results'][:3]}")
        listed = h.call(LIST_AFTER_TRASH, "GET", "/photos", 200)
        h.results[LIST_AFTER_TRASH]["items"] = len(listed["items"])
        in_trash = h.call(TRASH_LIST, "GET", "/trash", 200)
        h.results[TRASH_LIST]["items"] = len(in_trash["items"])
        h.call(EMPTY_TRASH, "DELETE", "/trash", 204)
        log("  library: batches and the trash measured")

        # Uploads with a hash: a new photo (its claim read, then settled by the worker), then a copy of it: refused
        # at POST when the client sends the hash, rejected by the worker when it does not.
        data = roundtrips.photo_bytes(2)
        digest = hashlib.sha256(data).hexdigest()
        body = {"filename": "pier.jpg", "content_type": "image/jpeg", "size_bytes": len(data), "tags": list(TAGS)}
        created = h.call(UPLOAD_HASHED, "POST", "/photos", 201, body={**body, "sha256": digest})
        key = created["upload"]["fields"]["key"]
        h.session.client("s3").put_object(Bucket=h.settings.bucket_name, Key=key, Body=data)
        measure_worker(h, SETTLE, key)
        settled = h.request("GET", "/photos/{photo_id}", 200, **photo_path(created["photo"]["photo_id"]))
        if settled["status"] != "READY":
            raise AssertionError(f"the worker left the photo {settled['status']}")
        refused = h.call(UPLOAD_COPY, "POST", "/photos", 409, body={**body, "sha256": digest})
        if refused.get("photo_id") != settled["photo_id"]:
            raise AssertionError(f"409 without the library's copy: {refused}")
        copy_id, copy_key = upload(h, data)
        measure_worker(h, SETTLE_COPY, copy_key)
        copy = h.request("GET", "/photos/{photo_id}", 200, **photo_path(copy_id))
        if copy["status"] != "REJECTED" or copy["duplicate_of"] != settled["photo_id"]:
            raise AssertionError(f"the copy was not rejected as one: {copy}")
        log("  library: uploads measured")

        # A small account deleted: photos with objects, an album of theirs holding some, one photo in the trash.
        h.setup("POST", "/users", 201, sub=LEAVER, body={"display_name": "Leo"})
        theirs = [uploaded_photo(h, 10 + index, sub=LEAVER) for index in range(ACCOUNT["photos"])]
        their_album = str(h.setup("POST", "/albums", 201, sub=LEAVER, body={"title": "Leo's"})["album_id"])
        h.setup(
            "POST",
            "/albums/{album_id}/photos",
            200,
            sub=LEAVER,
            **h.on(their_album, photo_ids=theirs[: ACCOUNT["in_album"]]),
        )
        for photo_id in theirs[len(theirs) - ACCOUNT["trashed"] :]:
            h.setup("DELETE", "/photos/{photo_id}", 204, sub=LEAVER, **photo_path(photo_id))
        h.call(DELETE_ACCOUNT, "DELETE", "/users/me", 204, sub=LEAVER)
        left = h.raw.query(
            TableName=h.settings.table_name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"USER#{LEAVER}"}},
        )["Items"]
        objects = h.session.client("s3").list_objects_v2(Bucket=h.settings.bucket_name).get("Contents", [])
        if left or any(LEAVER in item["Key"] for item in objects):
            raise AssertionError(f"the deleted account left {len(left)} items and objects behind")
        log("  library: done")
        results = h.results
        work_budget = h.app_module.WORK_BUDGET_SECONDS
    sizes = {**scenario_sizes(), "work_budget_seconds": work_budget}
    return {"operations": results, "minimum": MINIMUM, "by_design": BY_DESIGN, "sizes": sizes}


def scenario_sizes() -> dict[str, Any]:
    return {
        "library": LIBRARY,
        "page": PAGE,
        "favourite_every": FAVOURITE_EVERY,
        "tags": len(TAGS),
        "batch": BATCH,
        "account": ACCOUNT,
        "uploaded_range": UPLOADED_RANGE,
        "taken_range": TAKEN_RANGE,
    }


# --- the minimum, and what PhotoSky spends above it on purpose ----------------------------------------------------


def transactions(items: int) -> int:
    """TransactWriteItems calls for `items` items, at DynamoDB's 100 per transaction."""
    return -(-items // 100)


def object_deletes(photos: int) -> int:
    """S3 DeleteObjects calls for `photos` photos' objects (4 keys each: upload, original, 2 previews; 1,000 a call)."""
    return -(-(4 * photos) // 1000)


PURGE_ITEMS = 1 + len(TAGS)  # a trashed photo's items: the photo and its tag copies (no month count or claim)
TRASH_ITEMS = 3  # trashing a photo writes it, its claim and its month's count (usage once per transaction)
EMPTY_MINIMUM = 1 + transactions(BATCH * PURGE_ITEMS + 1) + object_deletes(BATCH)
ACCOUNT_MINIMUM = (3, 1)  # DynamoDB, S3

# (operation, the fewest calls any implementation needs, why). As in section 7, a right rides in a read the route
# makes anyway; "if the photo said whether it is in an album" is section 7's assumption for a photo delete (adding a
# photo to an album rewrites the photo item anyway, so a flag there costs nothing more).
MINIMUM: dict[str, tuple[str, str]] = {
    LIST: ("1 DynamoDB", f"one Query of the owner's photos (a page of {PAGE} and one more)"),
    LIST_FAVOURITES: ("1 DynamoDB", "one Query of the favourites' index partition"),
    LIST_TAKEN: ("1 DynamoDB", "one Query of the taken-time index partition"),
    LIST_TAKEN_RANGE: ("1 DynamoDB", "the same Query, its sort key between the two days"),
    LIST_UPLOADED_RANGE: ("1 DynamoDB", "one Query, photo ids (which carry the upload time) between the two days"),
    LIST_AFTER_TRASH: ("1 DynamoDB", "one Query, if trashed photos were not among the photos it reads"),
    TIMELINE: ("1 DynamoDB", "one Query of the month counters"),
    TRASH_LIST: ("1 DynamoDB", "one Query of the trash's index partition (whole photos: every attribute projected)"),
    TRASH_ALONE: (
        "2 DynamoDB",
        "the photo, if it said whether it is in an album; one transaction (photo, usage, month, claim)",
    ),
    TRASH_COVER: (
        "5 DynamoDB",
        "the photo; its album copies (Query); the albums and the photo's entries in them, for the restore, in one "
        "BatchGetItem; the newest photo left, for the cover (Query); one transaction",
    ),
    RESTORE_ALONE: ("2 DynamoDB", "the photo; one transaction"),
    RESTORE_COVER: (
        "3 DynamoDB",
        "the photo; the albums it left (still there? may its owner add?) in one BatchGetItem; one transaction",
    ),
    PURGE: (
        "2 DynamoDB + 1 S3",
        "the photo, if it said whether it is in an album; one transaction; one S3 batch delete",
    ),
    EMPTY_TRASH: (
        f"{EMPTY_MINIMUM - object_deletes(BATCH)} DynamoDB + {object_deletes(BATCH)} S3",
        f"one Query of the trash (whole photos); {transactions(BATCH * PURGE_ITEMS + 1)} transaction of the "
        f"{BATCH * PURGE_ITEMS + 1} items (each photo and its {len(TAGS)} tag copies, usage once); one S3 batch "
        f"delete of the {4 * BATCH} objects",
    ),
    BATCH_FAVOURITE: (
        f"{1 + transactions(BATCH)} DynamoDB",
        f"the {BATCH} photos in one BatchGetItem; one transaction of {BATCH} conditional writes",
    ),
    BATCH_TRASH: (
        f"{1 + transactions(TRASH_ITEMS * BATCH + 1)} DynamoDB",
        f"the {BATCH} photos in one BatchGetItem (if each said whether it is in an album); one transaction of at most "
        f"{TRASH_ITEMS * BATCH + 1} items (each photo, its claim and its month's count; usage once)",
    ),
    UPLOAD_HASHED: (
        "1 DynamoDB",
        "one transaction (usage, photo, tag copies), the claim's absence a ConditionCheck in it",
    ),
    UPLOAD_COPY: ("1 DynamoDB", "the claim on those bytes (GetItem): it names the library's copy for the 409"),
    SETTLE: (
        "2 DynamoDB + 5 S3",
        "read the photo, settle it (one transaction: photo, usage, month, claim); GET the upload, PUT 2 previews and "
        "the verified original, DELETE the upload",
    ),
    SETTLE_COPY: (
        "3 DynamoDB + 2 S3",
        "read the photo; GET the upload; the claim on its bytes (whose copy); one transaction (REJECTED, usage "
        "released); DELETE the upload",
    ),
    DELETE_ACCOUNT: (
        f"{ACCOUNT_MINIMUM[0]} DynamoDB + {ACCOUNT_MINIMUM[1]} S3",
        "the user's partition in one Query (profile, usage, photos, their copies, claims, counters, album access); "
        "the album's partition (Query); one transaction of every item; one S3 batch delete (the keys follow from "
        "the photos)",
    ),
}

CLAIM_READ_POST = (
    "the claim read before the transaction (GetItem, 1 RRU) rather than a ConditionCheck in it (charged as a "
    "transactional write, 2 WRU: ten times the price at section 6's on-demand prices), a round trip for the money"
)
CLAIM_READ_WORKER = (
    "the claim read before the objects are written (GetItem): a copy is turned away before 3 S3 PUTs and a "
    "DeleteObjects (the transaction's claim condition alone would catch it after them)"
)
PER_PHOTO = "one transaction per photo: a conflict on one photo cancels no other's (a result per photo)"
PURGING_MARK = roundtrips.PURGING_MARK

# Calls above MINIMUM on purpose: the write-rate token (section 3) on every write route, and the others said here.
BY_DESIGN: dict[str, tuple[int, str]] = {
    TRASH_ALONE: design(WRITE_TOKEN_CALL),
    TRASH_COVER: design(WRITE_TOKEN_CALL),
    RESTORE_ALONE: design(WRITE_TOKEN_CALL),
    RESTORE_COVER: design(WRITE_TOKEN_CALL),
    PURGE: design(WRITE_TOKEN_CALL, PURGING_MARK),
    EMPTY_TRASH: design(WRITE_TOKEN_CALL, PURGING_MARK),
    BATCH_FAVOURITE: design(WRITE_TOKEN_CALL, (BATCH - transactions(BATCH), PER_PHOTO)),
    BATCH_TRASH: design(WRITE_TOKEN_CALL, (BATCH - transactions(TRASH_ITEMS * BATCH + 1), PER_PHOTO)),
    UPLOAD_HASHED: design(WRITE_TOKEN_CALL, CLAIM_READ_POST),
    UPLOAD_COPY: design(WRITE_TOKEN_CALL),
    SETTLE: design(CLAIM_READ_WORKER),
    SETTLE_COPY: design(
        "the copy's original and previews removed before it is marked REJECTED (S3 DeleteObjects), apart from the "
        "upload: an earlier delivery that lost the claim only at its last step may have written them, and a REJECTED "
        "photo keeps none"
    ),
    DELETE_ACCOUNT: design(
        WRITE_TOKEN_CALL,
        "the deletion mark first (a transaction: uploads blocked, the profile gone at once, the work resumable)",
        "the albums behind the key-only access entries (BatchGetItem, section 7)",
        (2, "the album goes as its owner's DELETE does (section 7: the authorization read, the album's deletion mark)"),
        (3, "a ListObjectsV2 per object prefix (uploads, originals, previews: what a failed step left is found too)"),
        "the mark and the usage counters go last, on their own (a transaction)",
    ),
}


def budget(operation: str) -> int:
    return roundtrips.budget(operation, MINIMUM, BY_DESIGN)


# --- the report ----------------------------------------------------------------------------------------------------

SECTION_HEADING = "## 8. The library (trash, favourites, timeline, duplicates): AWS calls and capacity per operation"

ALBUMS_HOLDING = (
    "every trash, and every permanent delete of a photo not yet in the trash, Queries the photo's album copies "
    "(`_albums_holding`), also for a photo in no album (most photos): sections 3 and 7 find the same. Adding a "
    "photo to an album already rewrites the photo item (its revision); a flag set there (`SET in_albums = :yes`) "
    "lets a delete skip the Query when it is absent"
)
HEAD_FIRST = (
    "the HEAD before the GET (section 3's finding): a ranged GET (`Range: bytes=0-<declared>`) returns the object's "
    "whole size in Content-Range and reads at most one byte more than declared, one S3 request and one round trip "
    "less per upload"
)

# Why an operation makes more calls than its budget, and what would save them: shown for those above it in the run.
OVER_BUDGET: dict[str, str] = {
    TRASH_ALONE: ALBUMS_HOLDING,
    PURGE: ALBUMS_HOLDING,
    LIST_AFTER_TRASH: (
        "the default listing Queries the owner's `PHOTO#` items and filters trashed photos out "
        "(`attribute_not_exists(trashed_at)`); DynamoDB applies `Limit` before the filter, so with trashed photos "
        "among the newest the first round (page + 1 items) comes back short and `_filtered_page` reads a second "
        "(up to 4 rounds, then a short page with a cursor), paying for every trashed photo it passes. A first round "
        "of `2 × limit + 1` would absorb up to `limit` trashed photos in one call (at up to twice the read units when "
        "nothing is trashed); only an index without trashed photos (a third sparse key, another index write per "
        "photo) removes the filter"
    ),
    EMPTY_TRASH: (
        "`empty_trash` reads the trash once (the index's whole photos serve each first attempt: the marks' "
        "revision conditions catch a photo restored meanwhile), then purges each photo on its own: the purging mark "
        "(a transaction), its own S3 DeleteObjects, the delete (a transaction): 3 calls and 2 usage updates per "
        "photo. Marking the photos in one transaction, deleting all their objects in one DeleteObjects and the items "
        "in transactions of up to 100 items (usage once each), one photo at a time only after a cancelled "
        f"transaction, would make it the budget's calls for up to {(100 - 1) // PURGE_ITEMS} photos with "
        f"{len(TAGS)} tags each, and fewer write units (usage written once per transaction, not twice per photo)"
    ),
    BATCH_TRASH: (
        "`batch` reads the photos in one BatchGetItem, whose read serves each photo's first attempt (no GetItem per "
        "photo), but trashing each photo still Queries its album copies (`_albums_holding`, above): one call per "
        "photo in no album, which the album flag would save"
    ),
    SETTLE: HEAD_FIRST,
    SETTLE_COPY: "the same HEAD before the GET",
    DELETE_ACCOUNT: (
        "after the albums, the photos are read a page at a time (`photos`, a Query, and one more that finds none "
        "left) and each deleted as a permanent delete is, a Query of its album copies (none are left: the albums "
        "went first) and a transaction each; every other item is then found by a third Query of the same partition "
        "(`leftover_keys`). Each object prefix is listed again after its DeleteObjects, though a list of fewer than "
        "`MaxKeys` keys was already the whole prefix, and each prefix gets its own DeleteObjects. One Query of the "
        "whole partition, deleting its items with BatchWriteItem (uploads are already blocked by the mark, and usage "
        "goes last) and listing each prefix once would bring a small account to the budget. Rare (once per account), "
        "so a cost of latency within the request's time budget, not of money"
    ),
}


def over_budget(data: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(operation, calls, budget) of every measured operation above its budget."""
    return albums.over_budget(data)


def settle_costs(entry: dict[str, Any]) -> dict[str, float]:
    """A settle's write units split into what it wrote before issue 13 (the photo, usage, the PENDING index entry
    removed) and what issue 13 added (the month's count, the claim on the bytes, the photo's taken-time entry)."""
    by_item, by_index = entry.get("wru_by_item", {}), entry.get("index_wru_by_index", {})
    return {
        "before": by_item.get("PHOTO", 0.0) + by_item.get("USAGE", 0.0) + by_index.get("GSI1", 0.0),
        "month": by_item.get("MONTH", 0.0),
        "claim": by_item.get("SHA256", 0.0),
        "gsi2": by_index.get("GSI2", 0.0),
        "total": entry["wru"] + entry.get("index_wru", 0.0),
    }


def calls_text(entry: dict[str, Any]) -> str:
    return ", ".join(f"{count}× {name}" for name, count in entry["calls"].items())


def section(results: dict[str, Any]) -> str:
    data = results["library"]
    measured = data["operations"]
    rows = []
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
                calls_text(entry),
                f"**{total}**" if over else str(total),
                f"{minimum} ({why})" if minimum else "",
                f"+{extra}: {reason}" if extra else "",
                fmt_num(entry["rru"], 1),
                fmt_num(entry["wru"], 1),
                fmt_num(entry.get("index_wru", 0.0), 1),
                str(entry.get("items", "")),
            )
        )
    sizes = data["sizes"]
    account = sizes["account"]
    how = (
        "a whole `make bench` run"
        if results.get("complete")
        else "`.venv/bin/python -m bench --only library` (this section alone; the rest of this report is from the run "
        "named at the top)"
    )
    intro = (
        f"Measured on {results['started']} by {how}, as sections 3 and 7 measure theirs: through the real handler "
        "(`app.app(event, context)`) and the upload worker (`app.process_uploads`) on in-process `moto.mock_aws`, "
        "every call of the app's DynamoDB and S3 clients counted with botocore's `before-call` hook "
        "(bench/library.py, bench/roundtrips.py's Meter), capacity computed from the items' sizes with DynamoDB's "
        "rules as in sections 3 and 7 (a Query with a ProjectionExpression is charged for the whole items it reads). "
        "*Index WRU* are the writes to GSI1 and GSI2, which sections 3 and 7 leave out, from the item before and "
        "after each write by DynamoDB's rules for an index projecting every attribute: an item entering or leaving "
        "an index is one index write, one whose index keys change is two, one that stays with any attribute changed "
        "is one, each per 1 KB of the item, not doubled by a transaction. The library: "
        f"{sizes['library']} READY photos written through the photo repository (one uploaded a day, taken six days "
        f"apart over a year, {sizes['tags']} tags each, every {sizes['favourite_every']}th a favourite); listed "
        f"(pages of {sizes['page']}, the default), the timeline read; one photo trashed and restored alone, one as "
        f"the cover of an album of 2; an uploaded photo deleted for good; {sizes['batch']} photos favourited and the "
        f"{sizes['batch']} newest trashed in batches, the library listed with them in the trash, the trash listed "
        "and emptied; an upload declared with its SHA-256 and settled by the worker, then the same bytes declared "
        "again (409) and uploaded without the hash (the worker rejects the copy); and an account with "
        f"{account['photos']} uploaded photos ({account['in_album']} in an album of theirs, {account['trashed']} "
        "in the trash) deleted. *Minimum possible*, *above it by design* and a total in bold mean what they mean "
        "in section 7; *items* is what the reply listed."
    )
    return "\n".join(
        [
            SECTION_HEADING,
            "",
            intro,
            "",
            table(
                [
                    "operation",
                    "calls",
                    "total",
                    "minimum possible",
                    "above it by design",
                    "RRU",
                    "WRU",
                    "index WRU",
                    "items",
                ],
                rows,
            ),
            "",
            *notes(data),
        ]
    )


def notes(data: dict[str, Any]) -> list[str]:
    ops = data["operations"]
    lines = []
    for operation, total, allowed in over_budget(data):
        why = OVER_BUDGET.get(operation, "not explained yet: look at the calls in the table")
        lines.append(f"- **{operation}: {total} calls against a budget of {allowed}.** {why[0].upper()}{why[1:]}.")
    settle = ops.get(SETTLE)
    if settle is not None:
        split = settle_costs(settle)
        lines.append(
            f"- **What issue 13 adds to every upload.** The worker's settle writes {fmt_num(split['total'], 1)} WRU: "
            f"{fmt_num(split['before'], 1)} for what it wrote before issue 13 (the photo and usage in the "
            "transaction, the PENDING entry leaving GSI1; table and index writes alike), and now also the month's "
            "count "
            f"({fmt_num(split['month'], 1)}, transactional), the claim on the bytes ({fmt_num(split['claim'], 1)}) "
            f"and the photo's entry in GSI2's taken-time partition ({fmt_num(split['gsi2'], 1)}): "
            f"{fmt_num(split['total'] / split['before'], 2) if split['before'] else '?'}× the write units, and one "
            "GetItem more (the claim, before the objects)."
        )
    favourite, edits = ops.get(BATCH_FAVOURITE), ops.get(TRASH_ALONE)
    if favourite is not None and edits is not None:
        per_photo = favourite.get("index_wru_by_index", {})
        lines.append(
            "- **The indexes' share.** Every READY photo not in the trash has an entry in GSI2 (its taken time) "
            "holding the whole item, so every write to it rewrites that entry too: favouriting "
            f"{BATCH} photos wrote {fmt_num(favourite['wru'], 1)} WRU to the table and "
            f"{fmt_num(favourite.get('index_wru', 0.0), 1)} to the indexes (GSI1 "
            f"{fmt_num(per_photo.get('GSI1', 0.0), 1)}: each entering the favourites' partition; GSI2 "
            f"{fmt_num(per_photo.get('GSI2', 0.0), 1)}: each entry rewritten), and an edit of a photo's title or tags "
            "now costs one index write more than before issue 13. Trashing a photo moves it between GSI2 "
            "partitions (two index writes) and into GSI1's purge partition (one): "
            f"{fmt_num(edits.get('index_wru', 0.0), 1)} index WRU besides {fmt_num(edits['wru'], 1)} to the table. "
            "A favourite toggle is a transaction of one Put (`replace` → `_write_transition`), charged twice what a "
            "conditional PutItem or UpdateItem is: the table's share of a batch of favourites would halve as single "
            "writes (section 7 found the same for an album's title edit). Projecting fewer attributes into GSI2 "
            "would make edits free for it but cost a BatchGetItem per `?sort=taken` page (the photos behind the keys)."
        )
    empty = ops.get(EMPTY_TRASH)
    if empty is not None:
        total = sum(empty["calls"].values())
        per_photo = (total - 2) / BATCH
        latency = cost.ASSUMPTIONS["aws_call_latency_ms"]
        seconds = data["sizes"]["work_budget_seconds"]
        lines.append(
            f"- **Emptying the trash grows per photo.** DELETE /trash made {total} calls for {BATCH} photos "
            f"({fmt_num(per_photo, 1)} per photo after the write-rate token and the Query), and "
            f"{fmt_num(empty['wru'], 1)} WRU + {fmt_num(empty.get('index_wru', 0.0), 1)} index WRU. The request "
            f"stops at its {seconds} s budget and answers 202 with what is left; at section 6's {fmt_num(latency, 0)} "
            f"ms per AWS call that is about {fmt_num(per_photo * latency, 0)} ms a photo, some "
            f"{fmt_num(seconds * 1000 / (per_photo * latency), 0)} photos a request."
        )
    return lines


def analysis(data: dict[str, Any]) -> str:
    over = over_budget(data)
    total = len([name for name in data["operations"] if name in data["minimum"]])
    text = f"- **The library (section 8).** {total - len(over)} of {total} library operations are within their budget"
    if over:
        text += (
            ". Above budget: "
            + ", ".join(f"{name} ({calls} against {allowed})" for name, calls, allowed in over)
            + ". Each is explained under section 8's table with what would save the calls."
        )
    else:
        text += ". No library operation is above its budget."
    return text
