"""One contract, two implementations: the photo repository fake the unit tests trust, and DynamoDB on moto.

Usage counters are read the way the API reads them, through the user repository, because photo writes keep them.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib import errors, keys
from chalicelib.clock import iso_utc
from chalicelib.ids import new_ulid
from chalicelib.photos.models import ListQuery, Photo, PhotoStatus, PreviewFormat
from chalicelib.photos.repository import DynamoPhotoRepository, _photo_item
from chalicelib.users.models import Usage
from chalicelib.users.repository import DynamoUserRepository
from tests.integration.conftest import TABLE
from tests.support.fakes import InMemoryPhotoRepository, InMemoryUserRepository

OWNER = "a11ce000-0000-4000-8000-000000000001"
OTHER = "b0b00000-0000-4000-8000-000000000002"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CUTOFF = iso_utc(NOW)
ROOMY = {"max_photos": 1000, "max_bytes": 10**9, "max_pending": 1000}


def photo_id(n: int) -> str:
    """Ids that sort as they were made: n=2 is newer than n=1."""
    return new_ulid(now_ms=1_795_000_000_000 + n * 1000, randomness=n.to_bytes(10, "big"))


def pending(
    n: int, *, owner: str = OWNER, size: int = 100, tags: tuple[str, ...] = (), expires: datetime | None = None
) -> Photo:
    stamp = iso_utc(NOW)
    return Photo(
        photo_id=photo_id(n),
        owner_id=owner,
        status=PhotoStatus.PENDING,
        filename=f"photo-{n}.jpg",
        content_type="image/jpeg",
        size_bytes=size,
        created_at=stamp,
        updated_at=stamp,
        upload_expires_at=iso_utc(expires or NOW + timedelta(minutes=15)),
        tags=tags,
    )


def written(photo: Photo, **changes: Any) -> Photo:
    """`photo` as its next write leaves it: a new revision, plus `changes`."""
    return dataclasses.replace(photo, **{"revision": photo.revision + 1, **changes})


@dataclasses.dataclass
class Library:
    photos: Any  # the repository under test
    users: Any  # reads the usage counters that photo writes keep

    def usage(self, owner: str = OWNER) -> Usage:
        usage: Usage = self.users.get_usage(owner)
        return usage

    def add(self, photo: Photo, **limits: int) -> Photo:
        self.photos.add_reserving_quota(photo, **{**ROOMY, **limits})
        return photo

    def pages(self, *, limit: int, tag: str | None = None, owner: str = OWNER) -> list[list[str]]:
        """Every page's photo ids, following start keys the way a cursor carries them (through JSON)."""
        pages: list[list[str]] = []
        start_key = None
        for _ in range(100):
            photos, next_key = self.photos.list_page(owner, limit=limit, query=ListQuery(tag=tag), start_key=start_key)
            pages.append([p.photo_id for p in photos])
            if next_key is None:
                return pages
            assert photos, "an empty page with a next key"
            start_key = json.loads(json.dumps(next_key))
        raise AssertionError(f"still paging after {len(pages)} pages: {pages[-3:]}")

    def listed(self, *, tag: str | None = None, owner: str = OWNER) -> list[str]:
        return [photo_id for page in self.pages(limit=100, tag=tag, owner=owner) for photo_id in page]


@pytest.fixture(params=["fake", "dynamodb"])
def library(request: pytest.FixtureRequest) -> Library:
    if request.param == "fake":
        users = InMemoryUserRepository()
        return Library(InMemoryPhotoRepository(users), users)
    dynamodb = request.getfixturevalue("dynamodb")
    return Library(DynamoPhotoRepository(dynamodb, TABLE), DynamoUserRepository(dynamodb, TABLE))


# --- reading back ----------------------------------------------------------------------------------------------


def test_every_field_reads_back_equal(library: Library) -> None:
    full = Photo(
        photo_id=photo_id(1),
        owner_id=OWNER,
        status=PhotoStatus.PENDING,
        filename="Café «été».jpg",
        content_type="image/heic",
        size_bytes=123_456,
        created_at="2026-11-23T10:00:00.000Z",
        updated_at="2026-11-23T10:00:01.000Z",
        upload_expires_at="2026-11-23T10:15:00.000Z",
        title="Été",
        description="line one\nline two",
        tags=("cats", "été", "b"),
        width=4032,
        height=3024,
        taken_at="2026-08-01T12:34:56.000Z",
        rejection_reason="not really rejected",
        version=3,
        revision=5,
    )
    library.add(full)
    assert library.photos.get(OWNER, full.photo_id) == full

    ready = written(
        full,
        status=PhotoStatus.READY,
        width=10,
        height=20,
        taken_at="2025-01-01T00:00:00.000Z",
        preview_format=PreviewFormat.WEBP,
    )
    assert library.photos.replace(ready, full)
    assert library.photos.get(OWNER, full.photo_id) == ready
    # An edit of any kind keeps the previews' format.
    edited = written(ready, title="Hiver", version=ready.version + 1)
    assert library.photos.replace(edited, ready)
    assert library.photos.get(OWNER, full.photo_id) == edited


def test_a_photo_without_optional_fields_reads_back_with_none_and_no_tags(library: Library) -> None:
    bare = library.add(pending(1))
    assert library.photos.get(OWNER, bare.photo_id) == bare
    # Clearing every optional field on a write clears it in the store too.
    full = written(bare, title="t", description="d", tags=("x",), width=1, height=2, taken_at="2026-01-01T00:00:00Z")
    assert library.photos.replace(full, bare)
    cleared = written(full, title=None, description=None, tags=(), width=None, height=None, taken_at=None)
    assert library.photos.replace(cleared, full)
    assert library.photos.get(OWNER, bare.photo_id) == cleared


def test_absent_photos_are_none_and_photos_belong_to_their_owner(library: Library) -> None:
    mine = library.add(pending(1))
    assert library.photos.get(OWNER, photo_id(2)) is None
    assert library.photos.get(OTHER, mine.photo_id) is None
    # The same id under another owner is another photo, not a duplicate.
    theirs = library.add(pending(1, owner=OTHER, size=7))
    assert library.photos.get(OTHER, mine.photo_id) == theirs
    assert library.photos.get(OWNER, mine.photo_id) == mine


# --- listing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "limit", "expected"),
    [
        (5, 2, [[5, 4], [3, 2], [1]]),
        (4, 2, [[4, 3], [2, 1]]),  # ends exactly on a page: no empty page after it
        (2, 5, [[2, 1]]),
        (3, 1, [[3], [2], [1]]),
        (0, 3, [[]]),
    ],
)
def test_listing_is_newest_first_in_pages_and_never_ends_with_an_empty_page(
    library: Library, count: int, limit: int, expected: list[list[int]]
) -> None:
    made = [pending(n) for n in range(1, count + 1)]
    for photo in made[1::2] + made[::2]:  # stored out of order, listed by id
        library.add(photo)
    assert library.pages(limit=limit) == [[photo_id(n) for n in page] for page in expected]


def test_listing_returns_whole_photos_and_only_the_owners(library: Library) -> None:
    mine = [library.add(pending(1, tags=("cats",))), library.add(pending(3))]
    library.add(pending(2, owner=OTHER, tags=("cats",)))
    photos, next_key = library.photos.list_page(OWNER, limit=10, query=ListQuery(tag=None), start_key=None)
    assert photos == list(reversed(mine))
    assert next_key is None
    assert library.listed(owner=OTHER) == [photo_id(2)]
    assert library.listed(tag="cats") == [photo_id(1)]


def test_tag_listing_pages_newest_first_over_the_tagged_photos_only(library: Library) -> None:
    tags = {1: ("cats",), 2: ("cats", "dogs"), 3: ("dogs",), 4: ("cats",), 5: (), 6: ("cats", "sea")}
    for n, photo_tags in tags.items():
        library.add(pending(n, tags=photo_tags))
    library.add(pending(7, owner=OTHER, tags=("cats",)))

    assert library.pages(limit=2, tag="cats") == [[photo_id(6), photo_id(4)], [photo_id(2), photo_id(1)]]
    assert library.pages(limit=3, tag="cats") == [[photo_id(6), photo_id(4), photo_id(2)], [photo_id(1)]]
    assert library.pages(limit=1, tag="dogs") == [[photo_id(3)], [photo_id(2)]]
    assert library.pages(limit=5, tag="birds") == [[]]
    # A tag listing hands back the photos themselves, as `get` does.
    photos, _ = library.photos.list_page(OWNER, limit=1, query=ListQuery(tag="sea"), start_key=None)
    assert photos == [library.photos.get(OWNER, photo_id(6))]


def test_tags_added_and_removed_by_replace_appear_in_and_leave_tag_listings(library: Library) -> None:
    first = library.add(pending(1, tags=("cats", "sea")))
    library.add(pending(2, tags=("cats",)))

    retagged = written(first, tags=("sea", "dogs"), title="renamed")
    assert library.photos.replace(retagged, first)

    assert library.listed(tag="cats") == [photo_id(2)]
    assert library.listed(tag="dogs") == [photo_id(1)]
    # A tag it kept lists the photo as it is now, not as it was when tagged.
    kept, _ = library.photos.list_page(OWNER, limit=5, query=ListQuery(tag="sea"), start_key=None)
    assert kept == [retagged]

    untagged = written(retagged, tags=())
    assert library.photos.replace(untagged, retagged)
    assert library.listed(tag="sea") == []
    assert library.listed(tag="dogs") == []
    assert library.listed() == [photo_id(2), photo_id(1)]


def test_a_deleted_photo_leaves_every_listing(library: Library) -> None:
    gone = library.add(pending(1, tags=("cats",)))
    library.add(pending(2, tags=("cats",)))
    assert library.photos.delete(gone)
    assert library.listed() == [photo_id(2)]
    assert library.listed(tag="cats") == [photo_id(2)]


# --- reserving quota -------------------------------------------------------------------------------------------


def assert_nothing_written(library: Library, refused: Photo, before: Usage, listed: list[str]) -> None:
    assert library.photos.get(refused.owner_id, refused.photo_id) is None
    assert library.usage(refused.owner_id) == before
    assert library.listed(owner=refused.owner_id) == listed
    for tag in refused.tags:
        assert refused.photo_id not in library.listed(tag=tag, owner=refused.owner_id)


def test_the_photo_count_quota_refuses_with_quota_exceeded_and_writes_nothing(library: Library) -> None:
    library.add(pending(1), max_photos=2)
    library.add(pending(2), max_photos=2)
    refused = pending(3, tags=("cats",))
    with pytest.raises(errors.QuotaExceeded) as raised:
        library.add(refused, max_photos=2)
    assert type(raised.value) is errors.QuotaExceeded
    assert_nothing_written(library, refused, Usage(photos=2, bytes=200, pending=2), [photo_id(2), photo_id(1)])


def test_the_byte_quota_counts_what_is_stored_plus_the_new_upload(library: Library) -> None:
    library.add(pending(1, size=100), max_bytes=250)
    library.add(pending(2, size=100), max_bytes=250)
    refused = pending(3, size=51, tags=("cats",))
    with pytest.raises(errors.QuotaExceeded) as raised:
        library.add(refused, max_bytes=250)
    assert type(raised.value) is errors.QuotaExceeded
    assert_nothing_written(library, refused, Usage(photos=2, bytes=200, pending=2), [photo_id(2), photo_id(1)])

    library.add(pending(4, size=50), max_bytes=250)  # exactly up to the quota is allowed
    assert library.usage() == Usage(photos=3, bytes=250, pending=3)


def test_an_upload_larger_than_the_whole_quota_is_refused_on_an_empty_library(library: Library) -> None:
    refused = pending(1, size=1001)
    with pytest.raises(errors.QuotaExceeded) as raised:
        library.add(refused, max_bytes=1000)
    assert type(raised.value) is errors.QuotaExceeded
    assert_nothing_written(library, refused, Usage(), [])


def test_too_many_pending_uploads_is_its_own_refusal_and_a_settled_one_frees_a_slot(library: Library) -> None:
    first = library.add(pending(1), max_pending=2)
    library.add(pending(2), max_pending=2)
    refused = pending(3, tags=("cats",))
    with pytest.raises(errors.TooManyPending):
        library.add(refused, max_pending=2)
    assert_nothing_written(library, refused, Usage(photos=2, bytes=200, pending=2), [photo_id(2), photo_id(1)])

    assert library.photos.replace(written(first, status=PhotoStatus.READY), first)
    library.add(refused, max_pending=2)
    assert library.usage() == Usage(photos=3, bytes=300, pending=2)


def test_the_pending_limit_is_reported_even_when_the_other_quotas_are_also_full(library: Library) -> None:
    library.add(pending(1), max_photos=1, max_pending=1)
    with pytest.raises(errors.TooManyPending):
        library.add(pending(2), max_photos=1, max_pending=1)


def test_quotas_are_per_owner(library: Library) -> None:
    library.add(pending(1), max_photos=1)
    library.add(pending(2, owner=OTHER), max_photos=1)
    assert library.usage(OTHER) == Usage(photos=1, bytes=100, pending=1)


def test_a_duplicate_id_is_a_conflict_that_keeps_the_first_and_reserves_nothing(library: Library) -> None:
    first = library.add(pending(1, tags=("cats",)))
    duplicate = dataclasses.replace(pending(1, size=999, tags=("dogs",)), title="impostor")
    with pytest.raises(errors.Conflict):
        library.add(duplicate)
    assert library.photos.get(OWNER, first.photo_id) == first
    assert library.usage() == Usage(photos=1, bytes=100, pending=1)
    assert library.listed(tag="dogs") == []


def test_a_photo_repeating_a_tag_is_refused_and_nothing_is_written(library: Library) -> None:
    """The schemas de-duplicate tags; a caller that does not gets an error, not a half-written photo."""
    refused = pending(1, tags=("cats", "cats"))
    with pytest.raises((ValueError, ClientError)):
        library.add(refused)
    assert_nothing_written(library, refused, Usage(), [])


# --- optimistic writes -----------------------------------------------------------------------------------------


def test_replace_over_a_stale_revision_is_false_and_changes_nothing(library: Library) -> None:
    original = library.add(pending(1, tags=("cats",)))
    edited = written(original, title="first")
    assert library.photos.replace(edited, original)

    late = written(original, title="second", tags=("dogs",), status=PhotoStatus.READY)
    assert library.photos.replace(late, original, release_usage=True) is False

    assert library.photos.get(OWNER, original.photo_id) == edited
    assert library.listed(tag="dogs") == []
    assert library.listed(tag="cats") == [original.photo_id]
    assert library.usage() == Usage(photos=1, bytes=100, pending=1)


def test_replace_of_a_deleted_photo_is_false_and_does_not_bring_it_back(library: Library) -> None:
    original = library.add(pending(1, tags=("cats",)))
    assert library.photos.delete(original)
    assert library.photos.replace(written(original, status=PhotoStatus.READY), original) is False
    assert library.photos.get(OWNER, original.photo_id) is None
    assert library.listed(tag="cats") == []
    assert library.usage() == Usage()


def test_delete_of_a_stale_revision_is_false_and_changes_nothing(library: Library) -> None:
    original = library.add(pending(1, tags=("cats",)))
    ready = written(original, status=PhotoStatus.READY)
    assert library.photos.replace(ready, original)

    assert library.photos.delete(original) is False

    assert library.photos.get(OWNER, original.photo_id) == ready
    assert library.listed(tag="cats") == [original.photo_id]
    assert library.usage() == Usage(photos=1, bytes=100, pending=0)


def test_a_second_delete_is_false_and_releases_nothing_twice(library: Library) -> None:
    ready_one = library.add(pending(1, size=30))
    library.add(pending(2, size=70))
    assert library.photos.delete(ready_one)
    assert library.photos.delete(ready_one) is False
    assert library.usage() == Usage(photos=1, bytes=70, pending=1)


# --- usage through every transition ----------------------------------------------------------------------------


def test_usage_follows_a_photo_from_pending_to_ready_to_deleted(library: Library) -> None:
    library.add(pending(9, size=1000))  # another photo's usage is never touched
    photo = library.add(pending(1, size=30))
    assert library.usage() == Usage(photos=2, bytes=1030, pending=2)

    edited = written(photo, title="still pending")
    assert library.photos.replace(edited, photo)
    assert library.usage() == Usage(photos=2, bytes=1030, pending=2)

    ready = written(edited, status=PhotoStatus.READY)
    assert library.photos.replace(ready, edited)
    assert library.usage() == Usage(photos=2, bytes=1030, pending=1)

    retitled = written(ready, title="ready and edited")
    assert library.photos.replace(retitled, ready)
    assert library.usage() == Usage(photos=2, bytes=1030, pending=1)

    assert library.photos.delete(retitled)
    assert library.usage() == Usage(photos=1, bytes=1000, pending=1)


def test_a_rejection_releases_the_quota_at_once_and_its_delete_releases_nothing_more(library: Library) -> None:
    library.add(pending(9, size=1000))
    photo = library.add(pending(1, size=30))

    rejected = written(photo, status=PhotoStatus.REJECTED, rejection_reason="not an image")
    assert library.photos.replace(rejected, photo, release_usage=True)
    assert library.usage() == Usage(photos=1, bytes=1000, pending=1)

    assert library.photos.delete(rejected)
    assert library.usage() == Usage(photos=1, bytes=1000, pending=1)


def test_deleting_a_pending_photo_releases_its_quota_and_its_pending_slot(library: Library) -> None:
    library.add(pending(9, size=1000))
    photo = library.add(pending(1, size=30))
    assert library.photos.delete(photo)
    assert library.usage() == Usage(photos=1, bytes=1000, pending=1)


# --- the reconciler's index ------------------------------------------------------------------------------------


def test_stale_pending_finds_every_overdue_upload_across_shards_earliest_first(library: Library) -> None:
    ages = {1: timedelta(days=30), 2: timedelta(hours=1), 3: timedelta(days=2), 4: timedelta(milliseconds=1)}
    for n in range(5, 25):
        ages[n] = timedelta(minutes=n)
    for n, age in ages.items():
        library.add(pending(n, owner=OWNER if n % 2 else OTHER, expires=NOW - age))
    library.add(pending(30, expires=NOW))  # exactly at the cutoff: not before it
    library.add(pending(31, expires=NOW + timedelta(minutes=5)))
    assert len({keys.pending_shard(photo_id(n)) for n in ages}) > 4  # the overdue ones sit in several shards

    found = library.photos.stale_pending(CUTOFF)

    by_age = sorted(ages, key=lambda n: ages[n], reverse=True)
    assert found == [(OWNER if n % 2 else OTHER, photo_id(n)) for n in by_age]


def test_stale_pending_forgets_uploads_once_settled_or_deleted_but_not_once_edited(library: Library) -> None:
    long_ago = NOW - timedelta(days=30)
    made = {n: library.add(pending(n, expires=long_ago + timedelta(seconds=n))) for n in range(1, 6)}
    assert library.photos.replace(written(made[1], status=PhotoStatus.READY), made[1])
    rejected = written(made[2], status=PhotoStatus.REJECTED, rejection_reason="no")
    assert library.photos.replace(rejected, made[2], release_usage=True)
    assert library.photos.delete(made[3])
    assert library.photos.replace(written(made[4], title="edited while uploading", tags=("x",)), made[4])

    assert library.photos.stale_pending(CUTOFF) == [(OWNER, photo_id(4)), (OWNER, photo_id(5))]


def test_stale_pending_is_empty_when_nothing_is_overdue(library: Library) -> None:
    assert library.photos.stale_pending(CUTOFF) == []
    library.add(pending(1, expires=NOW + timedelta(seconds=1)))
    assert library.photos.stale_pending(CUTOFF) == []


# --- the fake's own promises (DynamoDB's, which moto does not keep) ---------------------------------------------


@pytest.mark.parametrize(
    ("tag", "start_key"),
    [
        (None, {**keys.photo_key(OTHER, photo_id(1))}),  # another owner's
        ("cats", {**keys.photo_key(OWNER, photo_id(1))}),  # an untagged listing's key for a tag listing
        (
            None,
            {
                **keys.photo_tag_key(OWNER, photo_id(1), "cats"),
                "GSI1PK": {"S": keys.tag_index_pk(OWNER, "cats")},
                "GSI1SK": {"S": keys.photo_sk(photo_id(1))},
            },
        ),
        (
            "dogs",
            {
                **keys.photo_tag_key(OWNER, photo_id(1), "cats"),
                "GSI1PK": {"S": keys.tag_index_pk(OWNER, "cats")},
                "GSI1SK": {"S": keys.photo_sk(photo_id(1))},
            },
        ),
        (None, {"PK": "not an attribute value", "SK": 3}),
    ],
    ids=["other-owner", "untagged-key-for-tag", "tag-key-for-untagged", "other-tag", "garbage"],
)
def test_the_fake_refuses_a_start_key_from_another_listing_as_dynamodb_does(
    tag: str | None, start_key: dict[str, Any]
) -> None:
    """DynamoDB answers these with a ValidationException, which the adapter turns into Invalid; moto crashes or
    ignores the key instead, so only the fake is held to it here."""
    repository = InMemoryPhotoRepository()
    with pytest.raises(errors.Invalid):
        repository.list_page(OWNER, limit=2, query=ListQuery(tag=tag), start_key=start_key)


# --- DynamoDB's own limits -------------------------------------------------------------------------------------


def test_dynamodb_lists_every_photo_even_when_a_page_of_them_passes_the_1mb_query_limit(dynamodb: Any) -> None:
    """A Query stops at 1 MB before it reaches Limit; then it has fewer than limit + 1 items but more behind them.

    Photos as large as the schemas allow (text counts characters, and an emoji is 4 bytes) are ~13 KB each, so 101
    of them pass 1 MB: DynamoDB (and moto) return ~75 with a LastEvaluatedKey, and the listing must go on from there.
    """
    cat = "\U0001f408"
    made = [
        dataclasses.replace(
            pending(n),
            status=PhotoStatus.READY,
            filename=cat * 255,
            title=cat * 200,
            description=cat * 2000,
            tags=tuple(f"{k:02d}{cat * 38}" for k in range(20)),
        )
        for n in range(1, 102)
    ]
    # Written directly (tag copies are not needed for this listing): 101 transactions of 22 items are slow on moto.
    for first in range(0, len(made), 25):
        batch = [{"PutRequest": {"Item": _photo_item(p)}} for p in made[first : first + 25]]
        dynamodb.batch_write_item(RequestItems={TABLE: batch})
    library = Library(DynamoPhotoRepository(dynamodb, TABLE), DynamoUserRepository(dynamodb, TABLE))

    pages = library.pages(limit=100)

    assert [photo_id for page in pages for photo_id in page] == [p.photo_id for p in reversed(made)]
