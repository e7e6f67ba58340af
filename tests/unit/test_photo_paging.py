"""Paging semantics the way real DynamoDB behaves (moto differs: it omits LastEvaluatedKey at an exact end)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.photos.models import ListQuery, Photo, PhotoStatus
from chalicelib.photos.repository import DynamoPhotoRepository, _photo_item, _tag_item


def photo(n: int) -> Photo:
    stamp = "2026-11-23T10:00:00.000Z"
    return Photo(
        f"01JD{n:022d}", "owner", PhotoStatus.READY, "f.jpg", "image/jpeg", 10, stamp, stamp, stamp, tags=("cats",)
    )


class DynamoLikeClient:
    """Returns LastEvaluatedKey whenever it stops at Limit, even when nothing follows, as DynamoDB does."""

    def __init__(
        self, items: list[dict[str, Any]], key_names: tuple[str, ...], photos: list[Photo] = (), unprocessed: int = 0
    ) -> None:
        self.items = items
        self.key_names = key_names
        self.limits: list[int] = []
        # What BatchGetItem finds (tag listings read the photos behind their key-only copies), and how many of
        # its calls leave their first key unprocessed, as DynamoDB may under load.
        self.photos = {_photo_item(p)["SK"]["S"]: _photo_item(p) for p in photos}
        self.unprocessed = unprocessed
        self.batch_gets = 0

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.batch_gets += 1
        ((table, request),) = RequestItems.items()
        wanted = request["Keys"]
        left: list[Any] = []
        if self.unprocessed:
            self.unprocessed -= 1
            wanted, left = wanted[1:], wanted[:1]
        found = [self.photos[key["SK"]["S"]] for key in wanted if key["SK"]["S"] in self.photos]
        return {"Responses": {table: found}, "UnprocessedKeys": {table: {"Keys": left}} if left else {}}

    def query(self, **request: Any) -> dict[str, Any]:
        self.limits.append(request["Limit"])
        page = self.items[: request["Limit"]]
        response: dict[str, Any] = {"Items": page}
        if len(page) == request["Limit"]:
            response["LastEvaluatedKey"] = {name: page[-1][name] for name in self.key_names}
        return response


@pytest.mark.parametrize("tag", [None, "cats"])
def test_a_page_that_ends_the_listing_has_no_next_cursor(tag: str | None) -> None:
    photos = [photo(2), photo(1)]
    make_item = _photo_item if tag is None else (lambda p: _tag_item(p, "cats"))
    names = ("PK", "SK") if tag is None else ("PK", "SK", "GSI1PK", "GSI1SK")
    client = DynamoLikeClient([make_item(p) for p in photos], names, photos)
    repository = DynamoPhotoRepository(client, "table")  # type: ignore[arg-type]

    items, next_key = repository.list_page("owner", limit=2, query=ListQuery(tag=tag), start_key=None)

    assert [p.photo_id for p in items] == [p.photo_id for p in photos]
    assert next_key is None


@pytest.mark.parametrize("tag", [None, "cats"])
def test_a_page_with_more_behind_it_continues_after_its_last_item(tag: str | None) -> None:
    photos = [photo(3), photo(2), photo(1)]
    make_item = _photo_item if tag is None else (lambda p: _tag_item(p, "cats"))
    names = ("PK", "SK") if tag is None else ("PK", "SK", "GSI1PK", "GSI1SK")
    items_stored = [make_item(p) for p in photos]
    repository = DynamoPhotoRepository(DynamoLikeClient(items_stored, names, photos), "table")  # type: ignore[arg-type]

    items, next_key = repository.list_page("owner", limit=2, query=ListQuery(tag=tag), start_key=None)

    assert [p.photo_id for p in items] == [photos[0].photo_id, photos[1].photo_id]
    assert next_key == {name: items_stored[1][name] for name in names}


def test_a_tag_listing_asks_again_for_photos_dynamodb_left_unprocessed() -> None:
    photos = [photo(3), photo(2), photo(1)]
    client = DynamoLikeClient([_tag_item(p, "cats") for p in photos], ("PK", "SK", "GSI1PK", "GSI1SK"), photos, 2)
    repository = DynamoPhotoRepository(client, "table")  # type: ignore[arg-type]

    items, _ = repository.list_page("owner", limit=3, query=ListQuery(tag="cats"), start_key=None)

    assert [p.photo_id for p in items] == [p.photo_id for p in photos]
    assert client.batch_gets == 3


def test_a_tag_listing_that_dynamodb_keeps_leaving_unprocessed_is_a_503() -> None:
    photos = [photo(1)]
    client = DynamoLikeClient([_tag_item(p, "cats") for p in photos], ("PK", "SK", "GSI1PK", "GSI1SK"), photos, 99)
    repository = DynamoPhotoRepository(client, "table")  # type: ignore[arg-type]

    with pytest.raises(errors.Unavailable):
        repository.list_page("owner", limit=3, query=ListQuery(tag="cats"), start_key=None)


def test_a_tag_copy_whose_photo_is_gone_or_untagged_is_not_listed() -> None:
    """The index lags the table: what the photo item says now wins over a copy the index still shows."""
    kept, untagged, deleted = photo(3), dataclasses.replace(photo(2), tags=()), photo(1)
    client = DynamoLikeClient(
        [_tag_item(p, "cats") for p in (kept, untagged, deleted)], ("PK", "SK", "GSI1PK", "GSI1SK"), [kept, untagged]
    )
    repository = DynamoPhotoRepository(client, "table")  # type: ignore[arg-type]

    items, _ = repository.list_page("owner", limit=3, query=ListQuery(tag="cats"), start_key=None)

    assert [p.photo_id for p in items] == [kept.photo_id]
