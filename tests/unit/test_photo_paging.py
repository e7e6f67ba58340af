"""Paging semantics the way real DynamoDB behaves (moto differs: it omits LastEvaluatedKey at an exact end)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.photos.models import Photo, PhotoStatus
from chalicelib.photos.repository import DynamoPhotoRepository, _photo_item, _tag_item


def photo(n: int) -> Photo:
    stamp = "2026-11-23T10:00:00.000Z"
    return Photo(
        f"01JD{n:022d}", "owner", PhotoStatus.READY, "f.jpg", "image/jpeg", 10, stamp, stamp, stamp, tags=("cats",)
    )


class DynamoLikeClient:
    """Returns LastEvaluatedKey whenever it stops at Limit, even when nothing follows, as DynamoDB does."""

    def __init__(self, items: list[dict[str, Any]], key_names: tuple[str, ...]) -> None:
        self.items = items
        self.key_names = key_names
        self.limits: list[int] = []

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
    client = DynamoLikeClient([make_item(p) for p in photos], names)
    repository = DynamoPhotoRepository(client, "table")  # type: ignore[arg-type]

    items, next_key = repository.list_page("owner", limit=2, tag=tag, start_key=None)

    assert [p.photo_id for p in items] == [p.photo_id for p in photos]
    assert next_key is None


@pytest.mark.parametrize("tag", [None, "cats"])
def test_a_page_with_more_behind_it_continues_after_its_last_item(tag: str | None) -> None:
    photos = [photo(3), photo(2), photo(1)]
    make_item = _photo_item if tag is None else (lambda p: _tag_item(p, "cats"))
    names = ("PK", "SK") if tag is None else ("PK", "SK", "GSI1PK", "GSI1SK")
    items_stored = [make_item(p) for p in photos]
    repository = DynamoPhotoRepository(DynamoLikeClient(items_stored, names), "table")  # type: ignore[arg-type]

    items, next_key = repository.list_page("owner", limit=2, tag=tag, start_key=None)

    assert [p.photo_id for p in items] == [photos[0].photo_id, photos[1].photo_id]
    assert next_key == {name: items_stored[1][name] for name in names}
