"""The photos an album page shows, kept briefly in the environment that read them.

An album page reads its photos from their owners' partitions (the album's entries say which). A shared album's
page is read by every member and every visitor of its links, all from one owner's partition: at 25 read units a
page of 50, one partition's 3,000 a second holds about 120 page views a second, for all of that owner's albums
together (docs/SCALE.md, Partitions). Kept here for a short while, a photo is read at most once per window per
environment however often its album is viewed, so the partition's load is bounded by the number of environments,
not by the views.

What may be late, and by how much: a photo's own fields (title, description, tags, dimensions, favourite) as
someone else's album page shows them, by at most `ttl_seconds`. Never late: who may see the album (the album, the
membership and the link are read on every request, strongly), which photos it holds (its entries are queried on
every request, so a photo removed, trashed or deleted leaves at once), and anything on the viewer's own photos
(read fresh every time, so an owner sees their own edit at once).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from chalicelib.photos.models import Photo

PhotoKey = tuple[str, str]  # (owner_id, photo_id)
# How late someone else's edit may show on an album page, and how many photos an environment keeps (each a few
# hundred bytes: 20,000 is a few MB of the API's 512).
TTL_SECONDS = 30.0
MAX_PHOTOS = 20_000


class ShownPhotos:
    def __init__(
        self,
        *,
        ttl_seconds: float = TTL_SECONDS,
        max_photos: int = MAX_PHOTOS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_photos
        # Looked up at each call, not bound here: a test moves the module's clock.
        self._clock = clock or (lambda: time.monotonic())  # noqa: PLW0108
        self._kept: OrderedDict[PhotoKey, tuple[float, Photo]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        wanted: Sequence[PhotoKey],
        read: Callable[[Sequence[PhotoKey]], dict[PhotoKey, Photo]],
        *,
        fresh_for: str | None,
    ) -> dict[PhotoKey, Photo]:
        """The photos among `wanted` that exist: those kept for less than the window from here, the rest (and
        every photo of `fresh_for`, the viewer) through one `read`, which refreshes what is kept. A photo `read`
        does not find is not kept: its entry may be newer than the index that listed it."""
        now = self._clock()
        found: dict[PhotoKey, Photo] = {}
        missing: list[PhotoKey] = []
        with self._lock:
            for key in wanted:
                kept = self._kept.get(key)
                if kept is not None and key[0] != fresh_for and now - kept[0] < self._ttl:
                    found[key] = kept[1]
                else:
                    missing.append(key)
        if not missing:
            return found
        read_now = read(missing)
        with self._lock:
            for key, photo in read_now.items():
                self._kept[key] = (now, photo)
                self._kept.move_to_end(key)
            for key in missing:
                if key not in read_now:
                    self._kept.pop(key, None)
            while len(self._kept) > self._max:
                self._kept.popitem(last=False)
        return {**found, **read_now}
