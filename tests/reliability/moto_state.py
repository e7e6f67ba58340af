"""What in-process moto holds of PhotoSky's table and bucket: saved once, put back before each case.

A suite's scene costs seconds to build through the API and the real worker, and moto's Scan, Query and transactions
take time in proportion to the whole table: rebuilding it for every test, or letting cases pile their state up, is
where the reliability suites spent their time. Putting a saved state back costs milliseconds.

moto keeps a table as one `Table` (its items, its indexes, its settings) and a bucket as one `FakeBucket` (its keys
with their bytes, metadata, ETag and last-modified time, and its configuration). A saved state is both pickled: inert
bytes that no later request can change and that moto's reset (which closes the buffer of every key it tracks)
cannot empty. Restoring puts freshly unpickled copies in place of the live objects, so every item and object is
exactly as it was saved. Both round-trip by moto's own design: moto deep-copies a whole `Table` to roll back a
cancelled transaction, and `FakeKey` pickles its bytes (`__getstate__`/`__setstate__`). Everything else moto holds
(other services, other tables) is left alone: each test's `aws` fixture still starts a fresh moto.

The same objects give support.snapshot the table and the bucket as a Scan and ListObjectsV2 would return them,
without serialising and parsing whole-table responses hundreds of times a run.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from moto.dynamodb.models import dynamodb_backends
from moto.s3.models import FakeDeleteMarker, s3_backends

from tests.integration.conftest import BUCKET, TABLE

T = TypeVar("T")


@dataclass(frozen=True)
class MotoState:
    """The pickled moto objects of the table and the bucket."""

    table: bytes
    bucket: bytes


def _dynamodb_backend() -> Any:
    holders = [backend for regions in dynamodb_backends.values() for backend in regions.values()]
    holders = [backend for backend in holders if TABLE in backend.tables]
    if len(holders) != 1:
        raise LookupError(f"moto holds {len(holders)} tables named {TABLE}: is the `aws` fixture active?")
    return holders[0]


def _s3_backend() -> Any:
    # How moto itself finds a bucket's backend (moto.s3.models.S3Backend.get_bucket).
    if BUCKET not in s3_backends.bucket_accounts:
        raise LookupError(f"moto holds no bucket named {BUCKET}: is the `aws` fixture active?")
    partition, account_id = s3_backends.bucket_accounts[BUCKET]
    return s3_backends[account_id][partition]


def save() -> MotoState:
    return MotoState(
        table=pickle.dumps(_dynamodb_backend().tables[TABLE]),
        bucket=pickle.dumps(_s3_backend().buckets[BUCKET]),
    )


def restore(state: MotoState) -> None:
    """The table and the bucket as they were saved. The objects replaced stay tracked by moto, which closes their
    buffers when the test's moto stops, as it does for every key."""
    _dynamodb_backend().tables[TABLE] = pickle.loads(state.table)  # noqa: S301 - pickled by `save`, in this process
    _s3_backend().buckets[BUCKET] = pickle.loads(state.bucket)  # noqa: S301 - the same


def in_process(dynamodb: Any) -> bool:
    """Whether this DynamoDB client's requests reach the in-process moto holding the table, rather than a moto
    server at an endpoint of its own (a dev stack)."""
    if not str(dynamodb.meta.endpoint_url).endswith(".amazonaws.com"):
        return False
    try:
        _dynamodb_backend(), _s3_backend()
    except LookupError:
        return False
    return True


def stored_items() -> list[dict[str, Any]]:
    """Every item of the table as a consistent Scan returns it through botocore, read from moto's own objects: the
    same data without serialising and parsing a response, which is most of what a Scan costs. (moto renders an
    item as botocore parses it: binary values as bytes; test_moto_state holds the two equal for every type.)"""
    return [item.to_json()["Attributes"] for item in _dynamodb_backend().tables[TABLE].all_items()]


def stored_objects(wanted: Callable[[str], bool], *, read: bool) -> dict[str, Any]:
    """The wanted objects of those ListObjectsV2 lists, with their bytes (`read`) or ETags, from moto's own
    objects."""
    found = _s3_backend().buckets[BUCKET].keys.items()
    return {
        name: key.value if read else key.etag
        for name, key in found
        if wanted(name) and not isinstance(key, FakeDeleteMarker)
    }


class MadeOnce:
    """State a module's tests share: made by the first test that asks for it, restored for every later one.

    `make` builds through the app what a test starts from and returns what the test needs to know of it (ids,
    tokens, the clock's shift). Each caller gets its own deep copy of that value, with the table and the bucket
    exactly as `make` left them. Objects in `keep` (the API client, the moto session: what the value is bound to
    rather than what it knows) are not copied; a caller binds its copy to its own."""

    def __init__(self) -> None:
        self._made: dict[Hashable, tuple[MotoState, Any, tuple[object, ...]]] = {}
        self.built: list[Hashable] = []  # the keys made, in order (a key made twice would be listed twice)

    def __call__(self, key: Hashable, make: Callable[[], T], *, keep: Iterable[object] = ()) -> T:
        if key not in self._made:
            value, kept = make(), tuple(keep)
            self._made[key] = (save(), _copy(value, kept), kept)
            self.built.append(key)
            return value
        state, value, kept = self._made[key]
        restore(state)
        return _copy(value, kept)


def _copy(value: T, kept: tuple[object, ...]) -> T:
    # deepcopy returns what its memo already holds for an object's id as it is: `kept` is shared, not copied.
    return copy.deepcopy(value, {id(obj): obj for obj in kept})
