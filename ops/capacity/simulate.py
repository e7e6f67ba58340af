"""The simulation: the workload sampled second by second through the access model and the real key builders.

Each simulated second, every operation runs as many times as its rate says; each run draws its ids (a user by
activity rank, an album or a link by popularity, a fresh photo or connection id), builds each access's partition key
with chalicelib.keys (so the shard counts of the moment apply), and adds its units to that partition. The report
gives, per key pattern, the hottest partition's read and write units in any second, its share of the pattern's
total and of a partition's limit, the stated bound, and whether the pattern's sort keys only grow.
"""

from __future__ import annotations

import hashlib
import math
import random
import statistics
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from chalicelib import keys as keys_module
from chalicelib.albums import shown_photos
from chalicelib.config import Settings
from chalicelib.ids import new_ulid
from ops.capacity import bounds, workload
from ops.capacity.model import (
    AccessModel,
    AccessTemplate,
    OpModel,
    PkTemplate,
    ShardOf,
    Symbol,
    build_pk,
    shard_prefixes,
)
from ops.capacity.trace import READ_UNIT_BYTES

_TABLE_TARGETS = ("table", "GSI1", "GSI2")


@dataclass
class PatternRow:
    target: str
    pattern: str
    hottest_rcu: float = 0.0
    hottest_wcu: float = 0.0
    total_rcu: float = (
        0.0  # in the second of the hottest partition's peak (reads or writes, whichever is nearer its limit)
    )
    total_wcu: float = 0.0
    rcu_share: float = 0.0
    wcu_share: float = 0.0
    grows: bool = False
    bound: bounds.Bound | None = None
    read_by: dict[str, float] = field(default_factory=dict)  # the hottest partition's reads, by operation
    write_by: dict[str, float] = field(default_factory=dict)

    @property
    def limit_share(self) -> float:
        read_limit, write_limit = bounds.limits(self.target)
        return max(self.hottest_rcu / read_limit, self.hottest_wcu / write_limit)

    @property
    def over(self) -> bool:
        return self.bound is None or self.limit_share > self.bound.share


@dataclass
class Report:
    seconds: int
    seed: int
    rows: list[PatternRow]
    totals: dict[str, tuple[float, float]]  # target -> (mean RCU/s, mean WCU/s)
    refused_writes: int
    ops_per_second: float
    shard_counts: dict[str, int] = field(default_factory=dict)
    burst: tuple[str, float, float] = ("", 0.0, 0.0)  # (write op, its WCU on the writer's partition, x the limit)
    write_rate_limit: int = 0
    viral: tuple[float, float] = (0.0, 0.0)  # (public views/s let through, views/s the owner's partition bounds)
    viral_owner_rcu: float = 0.0

    @property
    def failures(self) -> list[PatternRow]:
        return [row for row in self.rows if row.over]

    def row(self, target: str, pattern: str) -> PatternRow:
        return next(r for r in self.rows if (r.target, r.pattern) == (target, pattern))


# --- drawing ids ---------------------------------------------------------------------------------------------------


def _power_law_rank(rng: random.Random, n: int, exponent: float) -> int:
    """A rank in [0, n) drawn with weight (rank + 1) ** -exponent (the continuous law's inverse CDF)."""
    a = 1.0 - exponent
    top = (n + 1) ** a
    rank = (1.0 + rng.random() * (top - 1.0)) ** (1.0 / a)
    return min(n - 1, int(rank) - 1)


def user_id(index: int) -> str:
    return f"{index:08x}-0000-4000-8000-{index:012x}"


def album_id(index: int) -> str:
    return new_ulid(0, index.to_bytes(10, "big"))


def album_owner(album_index: int) -> int:
    """Album 0 (the hottest) is the busiest user's; the others belong to anyone (a fixed scatter)."""
    return 0 if album_index == 0 else (album_index * 2_654_435_761) % workload.TARGET_USERS


def link_hash(index: int) -> str:
    return hashlib.sha256(f"link-{index}".encode()).hexdigest()


_HOTTEST_USER = user_id(0)
_HOTTEST_ALBUM = album_id(0)
_NORMAL = statistics.NormalDist()


class _Draw:
    """One run's ids: each symbol of the operation, drawn as its role is distributed."""

    def __init__(self, rng: random.Random, now_ms: int) -> None:
        self.rng = rng
        self.now_ms = now_ms
        self.sizes: dict[str, int] = {}
        self.time_part = new_ulid(now_ms, bytes(10))[:10]
        # Ids drawn fresh each run (only when a partition key needs them: most appear in sort keys alone).
        self._fresh: dict[str, Callable[[], str]] = {
            "photo": self.photo_id,
            "connection": self.connection_id,
            "tag": self.tag,
        }

    def photo_id(self) -> str:
        """A new photo's ULID: this second's time, 80 random bits (new_ulid's layout, without its per-call cost)."""
        return f"{self.time_part}{self.rng.getrandbits(64):016X}"  # hex digits are Crockford digits too

    def user(self) -> int:
        return _power_law_rank(self.rng, workload.TARGET_USERS, workload.ACTIVITY_ZIPF)

    def album(self) -> int:
        return _power_law_rank(self.rng, workload.ALBUMS, workload.ALBUM_ZIPF)

    def link(self) -> int:
        if self.rng.random() < workload.VIRAL_LINK_SHARE:
            return 0
        return _power_law_rank(self.rng, workload.LINKS, workload.LINK_ZIPF)

    def values(self, op: OpModel, needed: frozenset[Symbol]) -> tuple[dict[Symbol, str], int]:
        """(symbol -> id, the actor's user index) for the symbols some partition key needs (and the actor)."""
        values: dict[Symbol, str] = {}
        link_index = self._links(op, values)
        album_index = self._albums(op, values, link_index)
        actor = -1
        owner = workload.ALBUM_OWNER.get(op.name)
        for symbol in op.symbols:
            if symbol.role == "user":
                owned = album_index is not None and owner == symbol.n
                index = album_owner(album_index) if owned and album_index is not None else self.user()
                actor = index if symbol.n == 0 else actor
                values[symbol] = user_id(index)
            elif symbol in needed and symbol.role in self._fresh:
                values[symbol] = self._fresh[symbol.role]()
        return values, actor

    def _links(self, op: OpModel, values: dict[Symbol, str]) -> int | None:
        link_index = None
        for symbol in op.symbols:
            if symbol.role == "link":
                # Visitors follow popularity; owners manage (create, list, revoke) any of their links alike.
                link_index = self.link() if op.name.startswith("public.") else self.rng.randrange(workload.LINKS)
                values[symbol] = link_hash(link_index)
        return link_index

    def _albums(self, op: OpModel, values: dict[Symbol, str], link_index: int | None) -> int | None:
        album_index = None
        for symbol in op.symbols:
            if symbol.role == "album":
                if link_index is not None:
                    album_index = link_index  # a link's album: the viral link shows the hottest album
                elif op.name in workload.CREATES:
                    album_index = self.rng.randrange(workload.ALBUMS)  # a new album: popular only later
                else:
                    album_index = self.album()
                values[symbol] = album_id(album_index)
        return album_index

    def connection_id(self) -> str:
        return f"{self.rng.getrandbits(64):016x}="

    def tag(self) -> str:
        return f"tag{self.rng.randrange(20)}"

    def page(self, template: AccessTemplate, values: dict[Symbol, str]) -> int:
        """Items a page read finds: a full page unless the library (or album) is smaller. Each library and album
        has one size, drawn from its id; the hottest user's and album's fill every page (the worst case)."""
        limit = template.query_limit or template.query_items
        symbol = next((a for a in template.pk.args if isinstance(a, Symbol)), None)
        if symbol is None or symbol.role not in ("user", "album"):
            return template.query_items
        value = values[symbol]
        if value in (_HOTTEST_USER, _HOTTEST_ALBUM):
            return limit
        size = self.sizes.get(value)
        if size is None:
            median, sigma = (
                (workload.LIBRARY_MEDIAN, workload.LIBRARY_SIGMA)
                if symbol.role == "user"
                else (workload.ALBUM_MEDIAN, workload.ALBUM_SIGMA)
            )
            uniform = (zlib.crc32(value.encode()) + 0.5) / 2**32
            size = self.sizes[value] = int(math.exp(math.log(median) + sigma * _NORMAL.inv_cdf(uniform)))
        return max(1, min(limit, size))


# --- compiled operations -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    """Accesses of one operation to one partition template, their fixed units summed."""

    kind: int  # 0 read, 1 write
    target: str
    pk: PkTemplate
    pattern: str
    units: float  # fixed units
    page: AccessTemplate | None  # a page read, its units drawn per run
    per_item: float  # units per item of the run's page


def _compile(op: OpModel) -> list[_Step]:
    fixed: dict[tuple[int, str, PkTemplate, str], float] = defaultdict(float)
    per_item: dict[tuple[int, str, PkTemplate, str], float] = defaultdict(float)
    steps = []
    for t in op.accesses:
        key = (0 if t.kind == "read" else 1, t.target, t.pk, t.pattern)
        if t.api == "Query" and t.query_limit:
            steps.append(_Step(key[0], t.target, t.pk, t.pattern, 0.0, t, 0.0))
        elif t.per_item:
            per_item[key] += t.units
        else:
            fixed[key] += t.units
    for key, units in fixed.items():
        steps.append(_Step(*key, units, None, 0.0))
    for key, units in per_item.items():
        steps.append(_Step(*key, 0.0, None, units / max(1, op.page_items)))
    return steps


def _page_units(template: AccessTemplate, items: int) -> float:
    units = max(1, math.ceil(items * template.item_bytes / READ_UNIT_BYTES))
    return float(units) if template.consistent else units / 2


# --- the run -------------------------------------------------------------------------------------------------------


# One flat loop over every sampled run: a function per access would cost a call on each of millions per run.
def simulate(  # noqa: PLR0912, PLR0915
    model: AccessModel,
    *,
    seconds: int = 3,
    seed: int = 17,
    keys: ModuleType = keys_module,
    rates: Callable[[], dict[str, float]] = workload.rates,
    settings: Settings | None = None,
) -> Report:
    """Sample `seconds` seconds of the workload at the target and report the hottest partition of every pattern."""
    settings = settings or Settings(table_name="", bucket_name="", region="")
    write_cap = settings.write_rate_limit / settings.write_rate_window_seconds
    rng = random.Random(seed)  # noqa: S311 - a seeded, reproducible workload, not a secret
    draw = _Draw(rng, now_ms=1_800_000_000_000)
    per_second = rates()
    op_models = simulated_ops(model)
    ops = {name: _compile(op_models[name]) for name in sorted(per_second)}
    ops["jobs.sweep"] = _compile(op_models["jobs.sweep"])
    needed = {name: _needed(steps) for name, steps in ops.items()}
    cache: dict[tuple[int, tuple[str, ...]], list[str]] = {}  # (the step's id: steps live all run, ids) -> keys
    peaks: dict[tuple[str, str], PatternRow] = {}
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    refused = 0
    runs = 0
    for second in range(seconds):
        units: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
        pattern_of: dict[tuple[str, str], str] = {}
        writes: dict[int, float] = defaultdict(float)
        by_op: dict[tuple[str, str], dict[tuple[int, str], float]] = defaultdict(lambda: defaultdict(float))
        # (partition, album, operation) -> [views, their photo reads' units had nothing been kept]
        album_views: dict[tuple[tuple[str, str], str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
        schedule = [(name, _count(rng, rate)) for name, rate in sorted(per_second.items())]
        if second == 0:
            schedule.append(("jobs.sweep", 1))
        for name, count in schedule:
            op, steps, is_write = op_models[name], ops[name], name in workload.WRITES
            for _ in range(count):
                values, actor = draw.values(op, needed[name])
                if is_write:
                    writes[actor] += 1
                    if writes[actor] > write_cap:
                        refused += 1
                        continue
                runs += 1
                page_items = 0
                for step in steps:
                    amount = step.units
                    if step.page is not None:
                        page_items = draw.page(step.page, values)
                        amount = _page_units(step.page, page_items)
                    elif step.per_item:
                        amount = step.per_item * (page_items or op.page_items)
                    cache_key = (id(step), tuple(_symbol_value(a, values) for a in step.pk.args))
                    pks = cache.get(cache_key)
                    if pks is None:
                        pks = cache[cache_key] = build_pk(step.pk, values, keys)
                    if name in workload.ALBUM_PAGES and _kept_photo_read(step):
                        # Counted per album and settled below, as the album pages' keep lets them through.
                        album = next((v for s, v in values.items() if s.role == "album"), "")
                        for pk in pks:
                            viewed = album_views[((step.target, pk), album, name)]
                            viewed[0] += 1
                            viewed[1] += amount
                            pattern_of[(step.target, pk)] = step.pattern
                        continue
                    for pk in pks:
                        slot = (step.target, pk)
                        units[slot][step.kind] += amount
                        by_op[slot][(step.kind, name)] += amount
                        pattern_of[slot] = step.pattern
        for (slot, _album, name), (views, amount) in album_views.items():
            read = kept_page_reads(views) * amount / views
            units[slot][0] += read
            by_op[slot][(0, name)] += read
        _fold(units, pattern_of, peaks, sums, by_op)
        cache.clear()  # photo ids are fresh each second; keep memory flat
    rows = _rows(peaks, model)
    totals = {target: (r / seconds, w / seconds) for target, (r, w) in sorted(sums.items())}
    counts = {name: int(getattr(keys, f"{name.upper()}_SHARDS")) for name in _shard_names(keys)}
    return Report(
        seconds,
        seed,
        rows,
        totals,
        refused,
        runs / seconds,
        counts,
        burst_ceiling(op_models, settings.write_rate_limit),
        settings.write_rate_limit,
        (per_second["public.view"], viral_ceiling(op_models["public.view"])),
        owner_rcu_per_view(op_models["public.view"]),
    )


def _kept_photo_read(step: _Step) -> bool:
    """A page's per-photo reads of the photos' own items (in their owners' partitions): what the album pages'
    keep (chalicelib/albums/shown_photos.py) holds on to."""
    return step.kind == 0 and step.target == "table" and step.per_item > 0 and step.pattern == "USER#<user>"


def kept_page_reads(views_per_second: float) -> float:
    """Pages of photos read a second for an album viewed this often, with each environment keeping what it read
    for the window: every view reads until an environment holds the page; views spread evenly over E environments
    give E / TTL * (1 - e^(-v * TTL / E)), never more than the views and never more than E / TTL."""
    environments, ttl = workload.API_ENVIRONMENTS, shown_photos.TTL_SECONDS
    return environments / ttl * -math.expm1(-views_per_second * ttl / environments)


def owner_rcu_per_view(view: OpModel) -> float:
    """RCU one public view of a full page puts on the album owner's partition (user 0 of its trace)."""
    owner = Symbol("user", 0)
    page = next((t for t in view.accesses if t.api == "Query" and t.query_limit), None)
    full = page.query_limit if page and page.query_limit else view.page_items
    units = 0.0
    for t in view.accesses:
        if t.kind == "read" and t.target == "table" and t.pk.args == (owner,):
            units += t.units * (t.per_item * full if t.per_item else 1)
    return units


def viral_ceiling(view: OpModel) -> float:
    """Views/s of one album that keep its owner's partition within its bound, the album pages' keep counted
    (infinite: no view rate takes it there, the keep's ceiling of E / TTL pages a second is below the bound)."""
    per_view = owner_rcu_per_view(view)
    bound = bounds.BOUNDS[("table", "USER#<user>")].share
    pages = bound * bounds.RCU_PER_PARTITION / per_view if per_view else float("inf")
    ceiling = workload.API_ENVIRONMENTS / shown_photos.TTL_SECONDS
    if pages >= ceiling:
        return float("inf")
    return -math.log1p(-pages / ceiling) * workload.API_ENVIRONMENTS / shown_photos.TTL_SECONDS


def _heated_by(row: PatternRow) -> str:
    read_limit, write_limit = bounds.limits(row.target)
    by = row.read_by if row.hottest_rcu / read_limit >= row.hottest_wcu / write_limit else row.write_by
    total = sum(by.values()) or 1.0
    return ", ".join(f"{name} {units / total:.0%}" for name, units in list(by.items())[:2])


def burst_ceiling(ops: dict[str, OpModel], write_rate_limit: int) -> tuple[str, float, float]:
    """The worst one user can do to their own partition within the write-rate limit: a whole window's tokens in one
    second, each on the write costing that partition the most (as traced)."""
    actor = Symbol("user", 0)
    worst = ("", 0.0)
    for name in sorted(workload.WRITES):
        own = sum(
            t.units
            for t in ops[name].accesses
            if t.kind == "write" and t.target == "table" and t.pk.builder == "user_pk" and t.pk.args == (actor,)
        )
        if own > worst[1]:
            worst = (name, own)
    return worst[0], worst[1], worst[1] * write_rate_limit


def _needed(steps: list[_Step]) -> frozenset[Symbol]:
    found: set[Symbol] = set()
    for step in steps:
        for arg in step.pk.args:
            if isinstance(arg, Symbol):
                found.add(arg)
            elif isinstance(arg, ShardOf):
                found.add(arg.symbol)
    return frozenset(found)


def simulated_ops(model: AccessModel) -> dict[str, OpModel]:
    """The model's operations, plus the composites the workload runs as one (same ids throughout)."""
    ops = dict(model.ops)
    for name, parts in workload.COMPOSITES.items():
        members = [model.ops[part] for part in parts]
        symbols = tuple(sorted({s for m in members for s in m.symbols}, key=lambda s: (s.role, s.n)))
        accesses = tuple(t for m in members for t in m.accesses)
        ops[name] = OpModel(name, symbols, accesses, max(m.page_items for m in members))
    return ops


def _symbol_value(arg: object, values: dict[Symbol, str]) -> str:
    if isinstance(arg, Symbol):
        return values[arg]
    if isinstance(arg, ShardOf):
        return values[arg.symbol]
    return ""


def _shard_names(keys: ModuleType) -> list[str]:
    return shard_prefixes(keys)


def _count(rng: random.Random, rate: float) -> int:
    whole = int(rate)
    return whole + (1 if rng.random() < rate - whole else 0)


def _fold(
    units: dict[tuple[str, str], list[float]],
    pattern_of: dict[tuple[str, str], str],
    peaks: dict[tuple[str, str], PatternRow],
    sums: dict[str, list[float]],
    by_op: dict[tuple[str, str], dict[tuple[int, str], float]],
) -> None:
    """One second's partitions into each pattern's peak: its hottest partition and the pattern's totals then."""
    per_pattern: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    hottest: dict[tuple[str, str], list[tuple[str, str] | None]] = defaultdict(lambda: [None, None])
    for (target, pk), (read, write) in units.items():
        key = (target, pattern_of[(target, pk)])
        acc = per_pattern[key]
        if read > acc[0]:
            acc[0], hottest[key][0] = read, (target, pk)
        if write > acc[1]:
            acc[1], hottest[key][1] = write, (target, pk)
        acc[2] += read
        acc[3] += write
        sums[target][0] += read
        sums[target][1] += write
        if target in _TABLE_TARGETS:
            sums["table+indexes"][0] += read
            sums["table+indexes"][1] += write
    for key, (hot_r, hot_w, total_r, total_w) in per_pattern.items():
        row = peaks.setdefault(key, PatternRow(*key))
        if hot_r > row.hottest_rcu:
            row.hottest_rcu, row.total_rcu = hot_r, total_r
            row.rcu_share = hot_r / total_r if total_r else 0.0
            row.read_by = _contributions(by_op, hottest[key][0], 0)
        if hot_w > row.hottest_wcu:
            row.hottest_wcu, row.total_wcu = hot_w, total_w
            row.wcu_share = hot_w / total_w if total_w else 0.0
            row.write_by = _contributions(by_op, hottest[key][1], 1)


def _contributions(
    by_op: dict[tuple[str, str], dict[tuple[int, str], float]], slot: tuple[str, str] | None, kind: int
) -> dict[str, float]:
    """What heated one partition, by operation, most first."""
    found = {name: units for (k, name), units in by_op.get(slot, {}).items() if k == kind} if slot else {}
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def _rows(peaks: dict[tuple[str, str], PatternRow], model: AccessModel) -> list[PatternRow]:
    rows = []
    for key, row in sorted(peaks.items()):
        row.grows = model.growing.get(key, False)
        row.bound = bounds.BOUNDS.get(key)
        rows.append(row)
    return rows


# --- the report ----------------------------------------------------------------------------------------------------


def markdown(report: Report) -> str:
    shards = ", ".join(f"{name} {count}" for name, count in sorted(report.shard_counts.items()))
    lines = [
        f"Capacity simulation: {report.seconds} s at the target ({workload.TARGET_USERS:,} users, "
        f"{workload.UPLOADS_PER_SECOND:,} uploads/s, {workload.API_REQUESTS_PER_SECOND:,} API requests/s), "
        f"seed {report.seed}; shards: {shards}; {report.ops_per_second:,.0f} operations/s simulated, "
        f"{report.refused_writes / report.seconds:,.1f} writes/s refused by the per-user write-rate limit.",
        "",
        "Hottest partition per key pattern, in its hottest second (RCU/WCU per second; S3: requests per second per "
        "prefix). Share of pattern: the hottest partition's part of the pattern's total that second. Of limit: "
        "of a partition's 3,000 RCU / 1,000 WCU (S3 5,500 reads / 3,500 writes). Grows: the pattern's new sort "
        "keys only grow (time-ordered), so split-for-heat cannot spread its writes.",
        "",
        "| target | key pattern | hottest RCU/s | share of pattern | hottest WCU/s | share of pattern | of limit "
        "| bound | grows | verdict | heated most by |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in report.rows:
        bound = f"{r.bound.share:.0%}" if r.bound else "none"
        verdict = ("OVER (reported)" if (r.target, r.pattern) in bounds.REPORTED else "OVER") if r.over else "ok"
        lines.append(
            f"| {r.target} | `{r.pattern}` | {r.hottest_rcu:,.1f} | {r.rcu_share:.2%} | {r.hottest_wcu:,.1f} | "
            f"{r.wcu_share:.2%} | {r.limit_share:.1%} | {bound} | {'yes' if r.grows else ''} | {verdict} | "
            f"{_heated_by(r)} |"
        )
    op, per_run, burst = report.burst
    lines += [
        "",
        f"Single-user burst: a whole window's write tokens ({report.write_rate_limit}) spent in one second on the "
        f"costliest write for the user's own partition ({op}, {per_run:,.0f} WCU as traced) would be {burst:,.0f} "
        f"WCU/s ({burst / bounds.WCU_PER_PARTITION:.1f}x a partition's limit): DynamoDB throttles that user's "
        "partition alone (nobody else's data lives there).",
    ]
    rate, owner_ceiling = report.viral
    kept = workload.API_ENVIRONMENTS / shown_photos.TTL_SECONDS * report.viral_owner_rcu
    allows = (
        "any number of views of one album"
        if math.isinf(owner_ceiling)
        else f"{owner_ceiling:,.0f} views/s of one album"
    )
    lines.append(
        f"Viral link: API Gateway lets {rate:,.0f} views/s through to GET /public/albums/{{token}} (prod throttle), "
        f"all on one link at worst. Each view of a full page would put {report.viral_owner_rcu:,.1f} RCU on the "
        f"album owner's partition; the album pages' keep ({workload.API_ENVIRONMENTS} environments, "
        f"{shown_photos.TTL_SECONDS:.0f} s) caps that at {kept:,.0f} RCU/s whatever the views, so that partition's "
        f"bound ({bounds.BOUNDS[('table', 'USER#<user>')].share:.0%}) allows {allows}."
    )
    for (target, pattern), why in sorted(bounds.REPORTED.items()):
        lines.append(f"Reported over its bound: {target} `{pattern}`: {why}.")
    lines += ["", "| target | mean RCU/s | mean WCU/s |", "|---|---:|---:|"]
    for target, (read, write) in report.totals.items():
        lines.append(f"| {target} | {read:,.0f} | {write:,.0f} |")
    return "\n".join(lines) + "\n"
