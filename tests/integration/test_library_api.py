"""The library through the API, in-process: trash and restore, favourites, the timeline, duplicates, batch edits
and account deletion; what each route does and what it refuses.

Every role against every new route is tests/reliability/test_library_idor.py; faults injected into the multi-step
operations are tests/reliability/test_library_faults.py.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import boto3
import pytest
from chalice.test import Client
from PIL import Image

import app as photosky
from chalicelib import deps, keys
from tests.integration.conftest import BUCKET, TABLE, User
from tests.reliability.support import (
    body,
    deliver,
    get_photo,
    jpeg,
    put_upload,
    start_upload,
    upload_ready,
    upload_rejected,
)
from tests.support.albums import add_photos, album_photo_ids, create_album, create_link, public, share

UNKNOWN_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


@pytest.fixture
def s3(aws: boto3.session.Session) -> Any:
    return aws.client("s3")


@pytest.fixture(autouse=True)
def profiles(alice: User, bob: User) -> None:
    for user, name in ((alice, "Alice"), (bob, "Bob")):
        assert user.call("POST", "/users", {"display_name": name}).status_code == 201


def jpeg_taken(when: str) -> bytes:
    """A unique JPEG whose EXIF says it was taken at `when` ("YYYY:MM:DD HH:MM:SS", no zone: read as UTC)."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = when  # DateTimeOriginal, in the Exif IFD
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(
        buffer, "JPEG", exif=exif.tobytes(), comment=hashlib.sha256(when.encode() + jpeg()).digest()
    )
    return buffer.getvalue()


def listed(user: User, query: str = "") -> list[str]:
    """Every photo id of a listing, following its cursors."""
    ids: list[str] = []
    cursor = None
    for _ in range(50):
        separator = "&" if query else ""
        path = f"/photos?{query}{separator}limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = user.call("GET", path)
        assert response.status_code == 200, response.body
        page = body(response)
        ids += [photo["photo_id"] for photo in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("still paging")


def trash_ids(user: User) -> list[str]:
    response = user.call("GET", "/trash")
    assert response.status_code == 200, response.body
    return [photo["photo_id"] for photo in body(response)["items"]]


def usage(user: User) -> dict[str, Any]:
    response = user.call("GET", "/users/me")
    assert response.status_code == 200, response.body
    return dict(body(response)["usage"])


def objects_of(s3: Any, user: User) -> list[str]:
    found: list[str] = []
    for prefix in keys.user_object_prefixes(user.sub):
        found += [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    return found


def items_of(user: User) -> list[str]:
    client = deps.dynamodb()
    response = client.query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.user_pk(user.sub)}},
    )
    return [item["SK"]["S"] for item in response["Items"]]


def batch(user: User, action: str, *photo_ids: str, **fields: Any) -> list[dict[str, Any]]:
    response = user.call("POST", "/photos/batch", {"action": action, "photo_ids": list(photo_ids), **fields})
    assert response.status_code == 200, response.body
    return list(body(response)["results"])


# --- trash ---------------------------------------------------------------------------------------------------------


def test_a_deleted_photo_goes_to_the_trash_counts_there_and_leaves_the_library(
    api: Client, s3: Any, alice: User
) -> None:
    kept, trashed = upload_ready(api, s3, alice), upload_ready(api, s3, alice)
    before = usage(alice)

    assert alice.call("DELETE", f"/photos/{trashed['photo_id']}").status_code == 204

    assert listed(alice) == [kept["photo_id"]]
    assert trash_ids(alice) == [trashed["photo_id"]]
    shown = get_photo(alice, trashed["photo_id"])
    assert shown["trashed_at"] is not None
    assert shown["purge_at"] > shown["trashed_at"]
    assert shown["purge_at"][:10] > shown["trashed_at"][:10]  # 30 days later
    now = usage(alice)
    assert (now["photos"], now["bytes"]) == (before["photos"], before["bytes"])  # counts until purged
    assert now["trash"] == {"photos": 1, "bytes": trashed["size_bytes"]}
    assert len(objects_of(s3, alice)) == 6  # both photos keep their original and previews
    # Again: nothing changes. An edit of a trashed photo is refused.
    assert alice.call("DELETE", f"/photos/{trashed['photo_id']}").status_code == 204
    edit = alice.call("PATCH", f"/photos/{trashed['photo_id']}", {"title": "x", "version": shown["version"]})
    assert edit.status_code == 409, edit.body


def test_a_trashed_photo_leaves_its_albums_and_links_at_once_and_a_restore_puts_it_back_in_its_place(
    api: Client, s3: Any, alice: User, bob: User
) -> None:
    first, second, third = (upload_ready(api, s3, alice)["photo_id"] for _ in range(3))
    album_id = create_album(alice, "Trip")["album_id"]
    add_photos(alice, album_id, first)
    add_photos(alice, album_id, second, third)
    share(alice, album_id, bob, "viewer")
    token = create_link(alice, album_id)["token"]
    assert body(alice.call("GET", f"/albums/{album_id}"))["cover_photo_id"] == first

    assert alice.call("DELETE", f"/photos/{first}").status_code == 204

    shown = body(alice.call("GET", f"/albums/{album_id}"))
    assert shown["photo_count"] == 2
    assert shown["cover_photo_id"] in (second, third)
    assert first not in album_photo_ids(bob, album_id)
    assert first not in [photo["photo_id"] for photo in body(public(api, "GET", f"/public/albums/{token}"))["items"]]
    refused = add_photos(alice, album_id, first)
    assert refused[0]["status"] == "not_found"  # a trashed photo cannot join an album

    restored = alice.call("POST", f"/photos/{first}/restore")
    assert restored.status_code == 200, restored.body
    assert body(restored)["trashed_at"] is None
    assert body(alice.call("GET", f"/albums/{album_id}"))["photo_count"] == 3
    # Back where it was: added before the other two, so listed after them.
    assert album_photo_ids(bob, album_id)[-1] == first
    assert trash_ids(alice) == []
    assert usage(alice)["trash"] == {"photos": 0, "bytes": 0}
    assert first in listed(alice)
    # Restoring what is not in the trash changes nothing.
    again = alice.call("POST", f"/photos/{first}/restore")
    assert again.status_code == 200
    assert body(again)["version"] == body(restored)["version"]


def test_a_restore_skips_albums_that_are_gone_or_where_its_owner_may_no_longer_add(
    api: Client, s3: Any, alice: User, bob: User
) -> None:
    photo_id = upload_ready(api, s3, bob)["photo_id"]
    kept, deleted, demoted = (create_album(alice, title)["album_id"] for title in ("Kept", "Deleted", "Demoted"))
    for album_id in (kept, deleted, demoted):
        share(alice, album_id, bob, "contributor")
        add_photos(bob, album_id, photo_id)
    assert bob.call("DELETE", f"/photos/{photo_id}").status_code == 204
    assert alice.call("DELETE", f"/albums/{deleted}").status_code == 204
    bob_id = bob.sub
    assert alice.call("PATCH", f"/albums/{demoted}/members/{bob_id}", {"role": "viewer"}).status_code == 200

    assert bob.call("POST", f"/photos/{photo_id}/restore").status_code == 200

    assert album_photo_ids(alice, kept) == [photo_id]
    assert album_photo_ids(alice, demoted) == []
    assert body(alice.call("GET", f"/albums/{demoted}"))["photo_count"] == 0


def test_a_permanent_delete_and_emptying_the_trash_remove_objects_and_release_usage(
    api: Client, s3: Any, alice: User
) -> None:
    photos = [upload_ready(api, s3, alice)["photo_id"] for _ in range(3)]
    assert alice.call("DELETE", f"/photos/{photos[0]}?permanent=true").status_code == 204
    assert alice.call("GET", f"/photos/{photos[0]}").status_code == 404
    for photo_id in photos[1:]:
        assert alice.call("DELETE", f"/photos/{photo_id}").status_code == 204

    assert alice.call("DELETE", "/trash").status_code == 204

    assert trash_ids(alice) == []
    assert objects_of(s3, alice) == []
    assert usage(alice) == {"photos": 0, "bytes": 0, "pending": 0, "trash": {"photos": 0, "bytes": 0}}
    assert alice.call("DELETE", "/trash").status_code == 204  # empty already


def test_emptying_a_trash_larger_than_one_request_answers_202_with_what_is_left(
    api: Client, s3: Any, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        assert alice.call("DELETE", f"/photos/{upload_ready(api, s3, alice)['photo_id']}").status_code == 204
    monkeypatch.setattr(photosky, "WORK_BUDGET_SECONDS", 0)
    response = alice.call("DELETE", "/trash")
    assert response.status_code == 202
    assert body(response) == {"remaining": 3}
    monkeypatch.setattr(photosky, "WORK_BUDGET_SECONDS", 20)
    assert alice.call("DELETE", "/trash").status_code == 204
    assert trash_ids(alice) == []


def test_the_scheduled_job_purges_only_photos_whose_time_in_the_trash_is_up(
    api: Client, s3: Any, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    expired, fresh = upload_ready(api, s3, alice)["photo_id"], upload_ready(api, s3, alice)["photo_id"]
    monkeypatch.setenv("PHOTOSKY_TRASH_DAYS", "1")
    deps.reset()
    assert alice.call("DELETE", f"/photos/{expired}").status_code == 204
    monkeypatch.setenv("PHOTOSKY_TRASH_DAYS", "30")
    deps.reset()
    assert alice.call("DELETE", f"/photos/{fresh}").status_code == 204
    tomorrow = deps.clock.now() + __import__("datetime").timedelta(days=2)
    monkeypatch.setattr(deps.clock, "now", lambda: tomorrow)
    deps.reset()

    counts = deps.photo_service().purge_expired(out_of_time=lambda: False)

    assert counts == {"purged": 1, "failed": 0, "left": 0}
    assert trash_ids(alice) == [fresh]
    assert not [key for key in objects_of(s3, alice) if expired in key]
    assert usage(alice)["trash"]["photos"] == 1


def test_the_scheduled_purge_on_several_threads_purges_every_expired_photo_of_every_owner_once(
    api: Client, s3: Any, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    owners = {alice: [upload_ready(api, s3, alice)["photo_id"] for _ in range(5)]}
    owners[bob] = [upload_ready(api, s3, bob)["photo_id"] for _ in range(4)]
    kept = upload_ready(api, s3, alice)["photo_id"]
    monkeypatch.setenv("PHOTOSKY_TRASH_DAYS", "1")
    deps.reset()
    for user, photo_ids in owners.items():
        assert [r["status"] for r in batch(user, "trash", *photo_ids)] == ["done"] * len(photo_ids)
    later = deps.clock.now() + __import__("datetime").timedelta(days=2)
    monkeypatch.setattr(deps.clock, "now", lambda: later)
    monkeypatch.setenv("PHOTOSKY_SWEEP_THREADS", "4")
    deps.reset()

    counts = deps.photo_service().purge_expired(out_of_time=lambda: False)

    assert counts == {"purged": 9, "failed": 0, "left": 0}
    for user, photo_ids in owners.items():
        assert trash_ids(user) == []
        assert not [key for key in objects_of(s3, user) if any(p in key for p in photo_ids)]
        assert usage(user)["trash"]["photos"] == 0
    assert listed(alice) == [kept]
    assert usage(alice)["photos"] == 1
    assert usage(bob)["photos"] == 0


def test_bad_trash_requests_are_400(alice: User) -> None:
    for path in ("/photos/01HZZZZZZZZZZZZZZZZZZZZZZZ?permanent=yes", "/photos/01HZZZZZZZZZZZZZZZZZZZZZZZ?purge=1"):
        response = alice.call("DELETE", path)
        assert response.status_code == 400, (path, response.body)
    assert alice.call("GET", "/trash?limit=0").status_code == 400
    assert alice.call("POST", f"/photos/{UNKNOWN_ID}/restore").status_code == 404
    assert alice.call("POST", "/photos/not-an-id/restore").status_code == 404


# --- favourites and the timeline -----------------------------------------------------------------------------------


def test_favourites_are_set_by_patch_or_in_bulk_and_filtered(api: Client, s3: Any, alice: User) -> None:
    photos = [upload_ready(api, s3, alice) for _ in range(4)]
    favourite = alice.call("PATCH", f"/photos/{photos[0]['photo_id']}", {"favorite": True, "version": 1})
    assert favourite.status_code == 200, favourite.body
    assert body(favourite)["favorite"] is True
    assert body(favourite)["version"] == 2
    assert batch(alice, "favorite", photos[2]["photo_id"], photos[3]["photo_id"]) == [
        {"photo_id": photos[2]["photo_id"], "status": "done"},
        {"photo_id": photos[3]["photo_id"], "status": "done"},
    ]
    assert listed(alice, "favorite=true") == [photos[3]["photo_id"], photos[2]["photo_id"], photos[0]["photo_id"]]
    batch(alice, "unfavorite", photos[3]["photo_id"])
    assert alice.call("DELETE", f"/photos/{photos[2]['photo_id']}").status_code == 204
    assert listed(alice, "favorite=true") == [photos[0]["photo_id"]]
    assert alice.call("GET", "/photos?favorite=false").status_code == 400
    assert alice.call("PATCH", f"/photos/{photos[1]['photo_id']}", {"favorite": "yes", "version": 1}).status_code == 400


def test_the_timeline_counts_photos_by_the_month_they_were_taken_and_follows_trash_and_restore(
    api: Client, s3: Any, alice: User
) -> None:
    march = [upload_ready(api, s3, alice, jpeg_taken(f"2021:03:0{day} 10:00:00")) for day in (1, 2)]
    july = upload_ready(api, s3, alice, jpeg_taken("2019:07:31 23:59:59"))
    undated = upload_ready(api, s3, alice)  # no EXIF date: the month it was uploaded
    upload_rejected(api, s3, alice)  # not in the timeline
    assert march[0]["taken_at"] == "2021-03-01T10:00:00.000Z"
    this_month = undated["created_at"][:7]

    def buckets() -> list[dict[str, Any]]:
        response = alice.call("GET", "/photos/timeline")
        assert response.status_code == 200, response.body
        return list(body(response)["buckets"])

    assert buckets() == [
        {"month": this_month, "count": 1},
        {"month": "2021-03", "count": 2},
        {"month": "2019-07", "count": 1},
    ]
    assert listed(alice, "sort=taken") == [
        undated["photo_id"],
        march[1]["photo_id"],
        march[0]["photo_id"],
        july["photo_id"],
    ]
    assert listed(alice, "sort=taken&from=2021-03-01&to=2021-03-01") == [march[0]["photo_id"]]
    assert listed(alice, "sort=taken&to=2020-12-31") == [july["photo_id"]]

    assert alice.call("DELETE", f"/photos/{march[0]['photo_id']}").status_code == 204
    assert buckets()[1] == {"month": "2021-03", "count": 1}
    assert alice.call("DELETE", f"/photos/{july['photo_id']}?permanent=true").status_code == 204
    assert [bucket["month"] for bucket in buckets()] == [this_month, "2021-03"]
    assert alice.call("POST", f"/photos/{march[0]['photo_id']}/restore").status_code == 200
    assert buckets()[1] == {"month": "2021-03", "count": 2}
    assert alice.call("GET", "/photos/timeline?limit=5").status_code == 400


def test_listing_by_upload_date_is_a_range_of_days(api: Client, s3: Any, alice: User) -> None:
    photo = upload_ready(api, s3, alice)
    today = photo["created_at"][:10]
    assert listed(alice, f"from={today}&to={today}") == [photo["photo_id"]]
    assert listed(alice, "to=2000-01-01") == []
    assert listed(alice, f"from={today}&favorite=true") == []
    for query in (
        "from=2021-02-30",
        "from=2021-3-1",
        "from=2022-01-01&to=2021-01-01",
        "sort=random",
        "tag=cats&sort=taken",
    ):
        assert alice.call("GET", f"/photos?{query}").status_code == 400, query


# --- duplicates ----------------------------------------------------------------------------------------------------


def test_a_second_upload_of_the_same_bytes_is_refused_up_front_or_rejected_by_the_worker(
    api: Client, s3: Any, alice: User, bob: User
) -> None:
    data = jpeg()
    digest = hashlib.sha256(data).hexdigest()
    original = upload_ready(api, s3, alice, data)
    assert original["sha256"] == digest

    told = alice.call(
        "POST",
        "/photos",
        {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": len(data), "sha256": digest},
    )
    assert told.status_code == 409, told.body
    assert body(told)["Code"] == "DuplicatePhoto"
    assert body(told)["photo_id"] == original["photo_id"]
    # Another user's library is theirs: the same bytes are no duplicate of anything of bob's.
    assert upload_ready(api, s3, bob, data)["status"] == "READY"

    # A client that does not say (or lies) is caught by the worker, and the upload's quota is released.
    before = usage(alice)
    copy = start_upload(alice, data, sha256="0" * 64)["photo"]
    deliver(api, put_upload(s3, alice.sub, copy["photo_id"], data))
    rejected = get_photo(alice, copy["photo_id"])
    assert rejected["status"] == "REJECTED"
    assert rejected["duplicate_of"] == original["photo_id"]
    assert rejected["sha256"] is None
    assert usage(alice)["photos"] == before["photos"]
    assert not [key for key in objects_of(s3, alice) if copy["photo_id"] in key]

    # Once the original is in the trash, the bytes may come in again; restoring the original is then refused.
    assert alice.call("DELETE", f"/photos/{original['photo_id']}").status_code == 204
    again = upload_ready(api, s3, alice, data)
    restore = alice.call("POST", f"/photos/{original['photo_id']}/restore")
    assert restore.status_code == 409
    assert body(restore)["photo_id"] == again["photo_id"]
    assert (
        alice.call(
            "POST", "/photos", {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 5, "sha256": "ABC"}
        ).status_code
        == 400
    )


def test_a_copy_that_passes_the_early_check_loses_at_the_claim_and_leaves_no_objects(
    api: Client, s3: Any, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two copies settling at the same moment both find no claim before writing their objects; the claim written
    with the photo decides. (In-process moto is not safe under threads, so the race is staged: the dev stack's
    test uploads copies truly at once.)"""
    data = jpeg()
    first, second = (start_upload(alice, data)["photo"]["photo_id"] for _ in range(2))
    deliver(api, put_upload(s3, alice.sub, first, data))
    repository_class = type(deps.photo_repository())
    real_claim_holder = repository_class.claim_holder
    calls = []

    def stale_first_read(self: Any, owner_id: str, digest: str) -> str | None:
        calls.append(digest)
        return None if len(calls) == 1 else real_claim_holder(self, owner_id, digest)

    monkeypatch.setattr(repository_class, "claim_holder", stale_first_read)
    deliver(api, put_upload(s3, alice.sub, second, data))
    monkeypatch.undo()
    assert len(calls) == 2  # the early check (made stale here), then the read of who holds the claim

    assert get_photo(alice, first)["status"] == "READY"
    loser = get_photo(alice, second)
    assert (loser["status"], loser["duplicate_of"]) == ("REJECTED", first)
    assert not [key for key in objects_of(s3, alice) if second in key]
    assert usage(alice)["photos"] == 1


# --- batch ---------------------------------------------------------------------------------------------------------


def test_a_batch_reports_each_photo_and_is_safe_to_repeat(api: Client, s3: Any, alice: User, bob: User) -> None:
    mine = [
        upload_ready(api, s3, alice, tags=[f"t{n}" for n in range(19)] if n == 0 else [])["photo_id"] for n in range(3)
    ]
    theirs = upload_ready(api, s3, bob)["photo_id"]

    results = batch(alice, "add_tags", mine[0], mine[1], theirs, "bad id", tags=["sea", "sun"])
    assert [result["status"] for result in results] == ["invalid", "done", "not_found", "not_found"]
    assert "tags" in results[0]["message"]
    assert get_photo(alice, mine[1])["tags"] == ["sea", "sun"]
    assert batch(alice, "add_tags", mine[1], tags=["sea"])[0]["status"] == "done"
    assert get_photo(alice, mine[1])["version"] == 2  # the repeat changed nothing

    assert [r["status"] for r in batch(alice, "trash", *mine)] == ["done"] * 3
    assert [r["status"] for r in batch(alice, "trash", *mine)] == ["done"] * 3
    assert batch(alice, "favorite", mine[0])[0]["status"] == "conflict"  # in the trash
    assert [r["status"] for r in batch(alice, "restore", mine[0], mine[1])] == ["done", "done"]
    assert [r["status"] for r in batch(alice, "delete", mine[2])] == ["done"]
    assert [r["status"] for r in batch(alice, "delete", mine[2])] == ["not_found"]
    assert batch(alice, "remove_tags", mine[1], tags=["sea"])[0]["status"] == "done"
    assert get_photo(alice, mine[1])["tags"] == ["sun"]
    assert get_photo(bob, theirs)["tags"] == []


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "explode", "photo_ids": [UNKNOWN_ID]},
        {"action": "trash", "photo_ids": []},
        {"action": "trash", "photo_ids": [UNKNOWN_ID] * 2},
        {"action": "trash", "photo_ids": [f"{n:026d}" for n in range(51)]},
        {"action": "trash", "photo_ids": [UNKNOWN_ID], "tags": ["x"]},
        {"action": "add_tags", "photo_ids": [UNKNOWN_ID]},
        {"action": "add_tags", "photo_ids": [UNKNOWN_ID], "tags": []},
        {"action": "trash", "photo_ids": [7]},
        {"action": "trash", "photo_ids": [UNKNOWN_ID], "extra": 1},
    ],
)
def test_a_malformed_batch_is_400_naming_the_field(alice: User, payload: dict[str, Any]) -> None:
    response = alice.call("POST", "/photos/batch", payload)
    assert response.status_code == 400, response.body
    assert body(response)["Code"] == "BadRequestError"


# --- account deletion ----------------------------------------------------------------------------------------------


def test_deleting_an_account_removes_everything_of_the_users_and_nothing_of_anyone_elses(
    api: Client, s3: Any, alice: User, bob: User
) -> None:
    own_album = create_album(alice, "Mine")["album_id"]
    bobs_album = create_album(bob, "Bob's")["album_id"]
    share(alice, own_album, bob, "viewer")
    share(bob, bobs_album, alice, "contributor")
    alice_photos = [upload_ready(api, s3, alice, tags=["x"])["photo_id"] for _ in range(3)]
    bob_photo = upload_ready(api, s3, bob)["photo_id"]
    add_photos(alice, own_album, *alice_photos)
    add_photos(alice, bobs_album, alice_photos[0])
    add_photos(bob, bobs_album, bob_photo)
    create_link(alice, own_album)
    batch(alice, "favorite", alice_photos[1])
    assert alice.call("DELETE", f"/photos/{alice_photos[2]}").status_code == 204  # one in the trash

    assert alice.call("DELETE", "/users/me").status_code == 204

    assert alice.call("GET", "/users/me").status_code == 404
    assert items_of(alice) == [] or all(sort_key.startswith(keys.RATE_PREFIX) for sort_key in items_of(alice))
    assert objects_of(s3, alice) == []
    assert bob.call("GET", f"/albums/{own_album}").status_code == 404
    assert album_photo_ids(bob, bobs_album) == [bob_photo]
    assert body(bob.call("GET", f"/albums/{bobs_album}"))["photo_count"] == 1
    assert get_photo(bob, bob_photo)["status"] == "READY"
    members = body(bob.call("GET", f"/albums/{bobs_album}/members"))["items"]
    assert [member["user_id"] for member in members] == [bob.sub]
    # Retrying is safe, and the same user may start afresh.
    assert alice.call("DELETE", "/users/me").status_code == 204
    assert alice.call("POST", "/users", {"display_name": "Alice again"}).status_code == 201


def test_an_account_deletion_cut_short_is_202_blocks_uploads_and_is_finished_by_a_retry_or_the_job(
    api: Client, s3: Any, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):
        upload_ready(api, s3, alice)
    monkeypatch.setattr(photosky, "WORK_BUDGET_SECONDS", -1)
    response = alice.call("DELETE", "/users/me")
    assert response.status_code == 202
    assert body(response) == {"status": "deleting"}
    refused = alice.call("POST", "/photos", {"filename": "a.jpg", "content_type": "image/jpeg", "size_bytes": 10})
    assert refused.status_code == 409, refused.body

    counts = deps.account_deletion().finish_left_behind(out_of_time=lambda: False)

    assert counts == {"accounts_deleted": 1, "left_for_next_run": 0}
    assert all(sort_key.startswith(keys.RATE_PREFIX) for sort_key in items_of(alice))
    assert objects_of(s3, alice) == []
    monkeypatch.setattr(photosky, "WORK_BUDGET_SECONDS", 20)
    assert alice.call("DELETE", "/users/me").status_code == 204


def test_a_restore_into_more_albums_than_one_transaction_holds_cut_short_is_finished_even_after_a_new_trash(
    api: Client, s3: Any, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.photos import repository as photo_repository

    monkeypatch.setattr(photo_repository, "_RESTORE_ROOM", 1)
    photo_id = upload_ready(api, s3, alice)["photo_id"]
    albums = [create_album(alice, f"A{n}")["album_id"] for n in range(3)]
    for album_id in albums:
        add_photos(alice, album_id, photo_id)
    assert alice.call("DELETE", f"/photos/{photo_id}").status_code == 204

    # The restore's first transaction lands (the photo and one album); the process dies before the next.
    real_transact = photo_repository.DynamoPhotoRepository._transact
    calls = []

    def die_on_the_second(self: Any, writes: list[Any]) -> list[str]:
        calls.append(len(writes))
        if len(calls) == 2:
            raise RuntimeError("the function was stopped")
        return real_transact(self, writes)

    monkeypatch.setattr(photo_repository.DynamoPhotoRepository, "_transact", die_on_the_second)
    with pytest.raises(RuntimeError):
        deps.photo_service().restore(alice.sub, photo_id)
    monkeypatch.setattr(photo_repository.DynamoPhotoRepository, "_transact", real_transact)
    assert sum(photo_id in album_photo_ids(alice, album_id) for album_id in albums) == 1

    # Its owner adds it by hand to an album it was still to return to, and trashes it again before anyone retried:
    # that album is now listed twice among those to return to. One restore settles all.
    missing = next(album_id for album_id in albums if photo_id not in album_photo_ids(alice, album_id))
    add_photos(alice, missing, photo_id)
    assert alice.call("DELETE", f"/photos/{photo_id}").status_code == 204
    assert alice.call("POST", f"/photos/{photo_id}/restore").status_code == 200
    for album_id in albums:
        assert album_photo_ids(alice, album_id) == [photo_id]
        assert body(alice.call("GET", f"/albums/{album_id}"))["photo_count"] == 1
    assert deps.photo_repository().get(alice.sub, photo_id).album_return == ()  # type: ignore[union-attr]
