"""chalicelib.albums.shown_photos: album pages' photos, kept briefly per environment."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from chalicelib.albums.shown_photos import PhotoKey, ShownPhotos
from chalicelib.photos.models import Photo, PhotoStatus


def photo(owner: str, photo_id: str, title: str = "") -> Photo:
    return Photo(
        owner_id=owner,
        photo_id=photo_id,
        status=PhotoStatus.READY,
        filename="a.jpg",
        content_type="image/jpeg",
        size_bytes=1,
        created_at="2026-12-01T00:00:00.000Z",
        updated_at="2026-12-01T00:00:00.000Z",
        upload_expires_at="2026-12-01T00:15:00.000Z",
        title=title,
    )


class Table:
    """What the reads would find, and every read made."""

    def __init__(self, *photos: Photo) -> None:
        self.photos = {(p.owner_id, p.photo_id): p for p in photos}
        self.reads: list[list[PhotoKey]] = []

    def read(self, wanted: Sequence[PhotoKey]) -> dict[PhotoKey, Photo]:
        self.reads.append(list(wanted))
        return {key: self.photos[key] for key in wanted if key in self.photos}

    def rename(self, key: PhotoKey, title: str) -> None:
        self.photos[key] = dataclasses.replace(self.photos[key], title=title)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


A, B = ("alice", "p1"), ("bob", "p2")


def test_a_photo_is_read_once_per_window_then_read_again() -> None:
    table, clock = Table(photo(*A, "one"), photo(*B, "two")), Clock()
    shown = ShownPhotos(ttl_seconds=30, clock=clock)
    assert set(shown.get([A, B], table.read, fresh_for=None)) == {A, B}
    clock.now += 29
    table.rename(A, "renamed")
    assert shown.get([A, B], table.read, fresh_for=None)[A].title == "one"  # within the window: kept
    assert table.reads == [[A, B]]
    clock.now += 1
    assert shown.get([A, B], table.read, fresh_for=None)[A].title == "renamed"  # at most 30 s late
    assert table.reads == [[A, B], [A, B]]


def test_the_viewers_own_photos_are_always_read_and_only_theirs() -> None:
    table, clock = Table(photo(*A, "one"), photo(*B, "two")), Clock()
    shown = ShownPhotos(clock=clock)
    shown.get([A, B], table.read, fresh_for=None)
    table.rename(A, "renamed")
    assert shown.get([A, B], table.read, fresh_for="alice")[A].title == "renamed"
    assert table.reads[-1] == [A]


def test_a_photo_not_found_is_not_kept_and_absent_from_the_answer() -> None:
    table, clock = Table(photo(*A)), Clock()
    shown = ShownPhotos(clock=clock)
    assert set(shown.get([A, B], table.read, fresh_for=None)) == {A}
    table.photos[B] = photo(*B)  # its item arrived after the index listed it
    assert set(shown.get([A, B], table.read, fresh_for=None)) == {A, B}
    assert table.reads == [[A, B], [B]]


def test_a_photo_gone_since_it_was_kept_is_forgotten_when_read_again() -> None:
    table, clock = Table(photo(*A)), Clock()
    shown = ShownPhotos(ttl_seconds=30, clock=clock)
    shown.get([A], table.read, fresh_for=None)
    del table.photos[A]
    clock.now += 31
    assert shown.get([A], table.read, fresh_for=None) == {}
    assert shown.get([A], table.read, fresh_for=None) == {}
    assert len(table.reads) == 3  # not kept as present


def test_it_keeps_at_most_its_bound_the_least_recently_read_go_first() -> None:
    keys = [("owner", f"p{n}") for n in range(5)]
    table, clock = Table(*(photo(*key) for key in keys)), Clock()
    shown = ShownPhotos(max_photos=3, clock=clock)
    shown.get(keys[:3], table.read, fresh_for=None)
    shown.get(keys[3:], table.read, fresh_for=None)  # p0 and p1 make room
    shown.get(keys[2:], table.read, fresh_for=None)
    assert len(table.reads) == 2  # p2..p4 all kept: no third read
    shown.get(keys[:1], table.read, fresh_for=None)
    assert table.reads[-1] == [keys[0]]
