"""The stated bounds: per key pattern, how hot its hottest partition may run at the target, and why.

Limits per partition (FINDINGS.md, AWS limits): DynamoDB 1,000 WCU/s and 3,000 RCU/s; S3 3,500 PUT/COPY/POST/DELETE
and 5,500 GET/HEAD requests/s per prefix. A bound is a share of that limit the hottest partition may reach in any
simulated second. A pattern with no bound here fails the simulation: a new key pattern states its bound first.
"""

from __future__ import annotations

from dataclasses import dataclass

WCU_PER_PARTITION = 1_000
RCU_PER_PARTITION = 3_000
S3_WRITES_PER_PREFIX = 3_500
S3_READS_PER_PREFIX = 5_500


@dataclass(frozen=True)
class Bound:
    share: float  # of the per-partition limit, reads and writes alike
    reason: str


# Shared by everyone: no user's behaviour bounds them, only the shard count does.
_CROSS_USER = Bound(
    0.5,
    "cross-user index partition: at most half a partition's limit at the target, so a peak twice the target still "
    "fits before re-sharding",
)
# One user's own partitions: the write-rate limit caps their writes; reads are their own browsing.
_PER_USER = Bound(
    0.5,
    "one user's partition: writes capped by the per-user write-rate limit, reads by one client's browsing; half a "
    "partition leaves room for a whole window's burst (burst_ceiling)",
)
_ALBUM = Bound(
    0.5,
    "one album: its members' views and the viral link's visitors (capped by the public route's throttle); half a "
    "partition at the target",
)
_LINK = Bound(
    0.5,
    "one share link: bounded by the public routes' API Gateway throttle (every view of the viral link at once); "
    "half a partition",
)
_CONNECTION = Bound(0.5, "one WebSocket connection: its own pings and pushes, a handful a minute")
_S3_PREFIX = Bound(0.5, "one user's objects: their uploads (write-rate limited) and the worker's writes")

BOUNDS: dict[tuple[str, str], Bound] = {
    ("table", "USER#<user>"): _PER_USER,
    ("GSI1", "USER#<user>#FAV"): _PER_USER,
    ("GSI1", "USER#<user>#TAG#<tag>"): _PER_USER,
    ("GSI2", "USER#<user>#TAKEN"): _PER_USER,
    ("GSI2", "USER#<user>#TRASH"): _PER_USER,
    ("GSI1", "PENDING#<pending_shard>"): _CROSS_USER,
    ("GSI1", "PURGE#<purge_shard>"): _CROSS_USER,
    ("GSI1", "CLEANUP#<cleanup_shard>"): _CROSS_USER,
    ("table", "ALBUM#<album>"): _ALBUM,
    ("GSI1", "ALBUM#<album>#PHOTOS"): _ALBUM,
    ("table", "LINK#<link>"): _LINK,
    ("table", "WS#<connection>"): _CONNECTION,
    ("s3", "uploads/<user>/"): _S3_PREFIX,
    ("s3", "originals/<user>/"): _S3_PREFIX,
    ("s3", "previews/<user>/"): _S3_PREFIX,
}


def limits(target: str) -> tuple[float, float]:
    """(read, write) limit per partition of a target: DynamoDB's for the table and its indexes, S3's per prefix."""
    if target == "s3":
        return S3_READS_PER_PREFIX, S3_WRITES_PER_PREFIX
    return RCU_PER_PARTITION, WCU_PER_PARTITION


# Patterns over their bound at the target, reported to the lead: the fix belongs in the key design, not in a looser
# bound. The simulation still marks them OVER and `python -m ops.capacity` exits 1; tests/capacity expect exactly
# these to be over, so a new excess fails, and so does a fixed one still listed here.
REPORTED: dict[tuple[str, str], str] = {}
