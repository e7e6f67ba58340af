"""The access model: each operation's trace as templates, concrete ids replaced by symbols.

A partition key value in a trace (`USER#a11ce...`, `PENDING#07`, `ALBUM#01J...#PHOTOS`) is matched against what
chalicelib.keys builds from the ids the operation involved: every `*_pk` function (a string) and every `*_key`
function (its `PK`), and for S3 every `*_prefix` / `*_prefixes` function, called with those ids by their parameter
names' roles. A sharded key is matched generically: for each `<name>_shard(id)` in keys.py there is a
`<name>_index_pk(shard)` and a `<NAME>_SHARDS` count; its value is `<name>_index_pk(<name>_shard(<id>))` for an id of
the operation, or, for a query of every shard (the scheduled job), all of `range(<NAME>_SHARDS)`. So a new key
builder or a new sharded key is picked up without touching this module, and the simulation re-reads the shard
counts every time it builds a key.

A partition the model cannot explain (a new key shape, an id it does not know) fails model-building: a new access the
capacity model does not understand is a test failure, never silently dropped.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from types import ModuleType
from typing import Any

from chalicelib import clock
from chalicelib import keys as keys_module
from chalicelib.ids import ULID_PATTERN
from ops.capacity.trace import S3_TARGET, Access, Trace, Traces

# What each parameter name of a key builder stands for.
ROLES = {
    "user_id": "user",
    "owner_id": "user",
    "photo_id": "photo",
    "album_id": "album",
    "token_hash": "link",
    "connection_id": "connection",
    "tag": "tag",
}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class ModelError(Exception):
    """A trace the model cannot explain: fix the model (or the key design), never drop the access."""


@dataclass(frozen=True)
class Symbol:
    role: str
    n: int  # the operation's n-th id of that role (the actor is user 0)


@dataclass(frozen=True)
class ShardOf:
    """`<prefix>_shard(<symbol>)`."""

    prefix: str
    symbol: Symbol


@dataclass(frozen=True)
class EachShard:
    """Every shard of `<prefix>`, one access each (a sweep)."""

    prefix: str


@dataclass(frozen=True)
class OneShard:
    """A shard the operation named by number, not through an id (kept as it was)."""

    prefix: str
    shard: int


Arg = Symbol | ShardOf | EachShard | OneShard


@dataclass(frozen=True)
class PkTemplate:
    builder: str  # a chalicelib.keys function
    args: tuple[Arg, ...]
    part: str | int | None = None  # "PK" of a Key, an index into a tuple of prefixes, or the string itself

    @property
    def sharded(self) -> bool:
        return any(isinstance(a, ShardOf | EachShard | OneShard) for a in self.args)


@dataclass(frozen=True)
class AccessTemplate:
    kind: str
    target: str
    pk: PkTemplate
    units: float
    api: str
    pattern: str  # the key pattern's name, as the report shows it
    query_limit: int | None = None
    query_items: int = 0
    item_bytes: float = 0.0
    consistent: bool = False
    per_item: float = 0.0  # > 0: one of a page's per-item accesses; the page's size scales it (1 / items traced)
    grows: bool | None = None  # a new entry's sort key: time-ordered from the operation's own time (None: no entry)


@dataclass(frozen=True)
class OpModel:
    name: str
    symbols: tuple[Symbol, ...]
    accesses: tuple[AccessTemplate, ...]
    page_items: int = 0  # items the traced page held (its limited Query's), 0 if it read no page


@dataclass(frozen=True)
class AccessModel:
    ops: dict[str, OpModel]
    growing: dict[tuple[str, str], bool]  # (target, pattern) -> its new entries' sort keys only grow


# --- key builders, found in chalicelib.keys ------------------------------------------------------------------------


def _builders(keys: ModuleType, suffixes: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    found = []
    for name, fn in inspect.getmembers(keys, inspect.isfunction):
        if fn.__module__ != keys.__name__ or not name.endswith(suffixes):
            continue
        params = tuple(inspect.signature(fn).parameters)
        if params and all(p in ROLES for p in params):
            found.append((name, params))
    # The most specific first: a string builder of one id before a Key built from several.
    return sorted(found, key=lambda b: (not b[0].endswith("_pk"), len(b[1]), b[0]))


def shard_prefixes(keys: ModuleType = keys_module) -> list[str]:
    """Every sharded key: `<prefix>_shard`, `<prefix>_index_pk` and `<PREFIX>_SHARDS` all present (else it fails)."""
    prefixes = []
    for name, fn in inspect.getmembers(keys, inspect.isfunction):
        if fn.__module__ == keys.__name__ and name.endswith("_shard"):
            prefix = name.removesuffix("_shard")
            if not hasattr(keys, f"{prefix}_index_pk") or not hasattr(keys, f"{prefix.upper()}_SHARDS"):
                raise ModelError(f"keys.{name} has no {prefix}_index_pk or {prefix.upper()}_SHARDS beside it")
            prefixes.append(prefix)
    return sorted(prefixes)


def _shard_role(keys: ModuleType, prefix: str) -> str:
    """What `<prefix>_shard` spreads by: the role of its one parameter (a photo id, an album id ...)."""
    params = list(inspect.signature(getattr(keys, f"{prefix}_shard")).parameters)
    if len(params) != 1 or params[0] not in ROLES:
        raise ModelError(f"keys.{prefix}_shard{tuple(params)}: a shard function takes one id of {sorted(ROLES)}")
    return ROLES[params[0]]


def shard_count(prefix: str, keys: ModuleType = keys_module) -> int:
    return int(getattr(keys, f"{prefix.upper()}_SHARDS"))


def build_pk(template: PkTemplate, values: dict[Symbol, str], keys: ModuleType = keys_module) -> list[str]:
    """The partition key values a template stands for, with `values` for its symbols (several for EachShard)."""
    choices: list[list[Any]] = []
    for arg in template.args:
        if isinstance(arg, Symbol):
            choices.append([values[arg]])
        elif isinstance(arg, ShardOf):
            choices.append([getattr(keys, f"{arg.prefix}_shard")(values[arg.symbol])])
        elif isinstance(arg, EachShard):
            choices.append(list(range(shard_count(arg.prefix, keys))))
        else:
            choices.append([arg.shard % shard_count(arg.prefix, keys)])
    builder = getattr(keys, template.builder)
    return [_part(builder(*combo), template.part) for combo in itertools.product(*choices)]


def _part(value: Any, part: str | int | None) -> str:
    if part is None:
        return str(value)
    if isinstance(part, str):
        return str(value[part]["S"])
    return str(value[part])


def pattern_name(template: PkTemplate, keys: ModuleType = keys_module) -> str:
    """`USER#<user>`, `PENDING#<pending_shard>`: the builder's output with placeholders for its arguments."""
    args: list[Any] = []
    for arg in template.args:
        args.append(f"<{arg.role}>" if isinstance(arg, Symbol) else 0)
    text = _part(getattr(keys, template.builder)(*args), template.part)
    shard = next((a for a in template.args if not isinstance(a, Symbol)), None)
    if shard is not None:
        formatted = getattr(keys, f"{shard.prefix}_index_pk")(0)
        digits = re.search(r"0+$", formatted)
        width = len(digits.group()) if digits else 0
        text = text[: len(text) - width] + f"<{shard.prefix}_shard>"
    return text


# --- normalizing one trace ----------------------------------------------------------------------------------------


def _symbols(trace: Trace, known: dict[str, str]) -> dict[str, Symbol]:
    """Each id the operation involved -> its symbol: the actor is user 0, the rest numbered by first mention."""
    involved = trace.involved(known)
    blob = "\n".join(trace.text)
    ordered = sorted(involved, key=lambda value: (value != trace.actor, blob.find(value), value))
    counters: Counter[str] = Counter()
    symbols = {}
    for value in ordered:
        role = involved[value]
        symbols[value] = Symbol(role, counters[role])
        counters[role] += 1
    return symbols


def _lookup(symbols: dict[str, Symbol], keys: ModuleType) -> tuple[dict[str, PkTemplate], dict[str, PkTemplate]]:
    """(table and index partitions, S3 prefixes) the operation's ids can build -> their templates."""
    by_role: dict[str, list[str]] = defaultdict(list)
    for value, symbol in symbols.items():
        by_role[symbol.role].append(value)
    table: dict[str, PkTemplate] = {}
    for prefix in shard_prefixes(keys):
        index_pk = getattr(keys, f"{prefix}_index_pk")
        role = _shard_role(keys, prefix)
        for value in by_role.get(role, []):
            shard = getattr(keys, f"{prefix}_shard")(value)
            table.setdefault(index_pk(shard), PkTemplate(f"{prefix}_index_pk", (ShardOf(prefix, symbols[value]),)))
    for name, params in _builders(keys, ("_pk", "_key")):
        if name.endswith("_index_pk") and name.removesuffix("_index_pk") in shard_prefixes(keys):
            continue
        part = None if name.endswith("_pk") else "PK"
        for combo in itertools.product(*(by_role.get(ROLES[p], []) for p in params)):
            built = _part(getattr(keys, name)(*combo), part)
            table.setdefault(built, PkTemplate(name, tuple(symbols[v] for v in combo), part))
    for prefix in shard_prefixes(keys):
        for shard in range(shard_count(prefix, keys)):
            pk = getattr(keys, f"{prefix}_index_pk")(shard)
            table.setdefault(pk, PkTemplate(f"{prefix}_index_pk", (OneShard(prefix, shard),)))
    s3: dict[str, PkTemplate] = {}
    for name, params in _builders(keys, ("_prefix", "_prefixes")):
        for combo in itertools.product(*(by_role.get(ROLES[p], []) for p in params)):
            built = getattr(keys, name)(*combo)
            parts = enumerate(built) if isinstance(built, tuple) else [(None, built)]
            for index, text in parts:
                s3.setdefault(str(text), PkTemplate(name, tuple(symbols[v] for v in combo), index))
    return table, s3


def normalize(trace: Trace, known: dict[str, str], keys: ModuleType = keys_module) -> OpModel:
    symbols = _symbols(trace, known)
    table, s3 = _lookup(symbols, keys)
    templates = []
    for access in trace.accesses:
        lookup = s3 if access.target == S3_TARGET else table
        template = lookup.get(access.pk)
        if template is None:
            raise ModelError(
                f"{trace.op}: {access.kind} of {access.target} partition {access.pk!r} ({access.api}) matches no "
                "key builder in chalicelib.keys for the ids this operation involves: teach ops/capacity/model.py "
                "(and the bounds) about it"
            )
        templates.append(_template(access, template, keys, trace.started))
    templates = _collapse_sweeps(templates, keys)
    templates, page = _per_item(templates)
    return OpModel(trace.op, tuple(sorted(set(symbols.values()), key=lambda s: (s.role, s.n))), tuple(templates), page)


def _template(access: Access, pk: PkTemplate, keys: ModuleType, started: datetime) -> AccessTemplate:
    return AccessTemplate(
        kind=access.kind,
        target=access.target,
        pk=pk,
        units=access.units,
        api=access.api,
        pattern=pattern_name(pk, keys),
        query_limit=access.query_limit,
        query_items=access.query_items,
        item_bytes=access.item_bytes,
        consistent=access.consistent,
        grows=None if access.sk is None else sk_grows(access.sk, started),
    )


def _collapse_sweeps(templates: list[AccessTemplate], keys: ModuleType) -> list[AccessTemplate]:
    """Queries of every shard of a key, one access per shard, become one access of EachShard per sweep."""
    groups: dict[tuple[Any, ...], list[AccessTemplate]] = defaultdict(list)
    for t in templates:
        arg = t.pk.args[0] if len(t.pk.args) == 1 else None
        if isinstance(arg, OneShard):
            groups[(t.kind, t.target, t.api, t.pk.builder, arg.prefix)].append(t)
    kept = [t for t in templates if not (len(t.pk.args) == 1 and isinstance(t.pk.args[0], OneShard))]
    for (_, _, _, _, prefix), members in groups.items():
        per_shard = Counter(t.pk.args[0].shard for t in members)  # type: ignore[union-attr]
        sweeps = set(per_shard.values())
        if set(per_shard) == set(range(shard_count(prefix, keys))) and len(sweeps) == 1:
            # Every shard queried the same number of times: that many sweeps (two jobs may sweep one index).
            mean = sum(t.units for t in members) / len(members)
            first = members[0]
            sweep = replace(first, pk=replace(first.pk, args=(EachShard(prefix),)), units=mean)
            kept.extend([sweep] * sweeps.pop())
        else:
            kept.extend(members)
    return kept


def _per_item(templates: list[AccessTemplate]) -> tuple[list[AccessTemplate], int]:
    """In an operation that read one page (one Query with a Limit, n items), accesses repeated exactly n times are
    per-item (the page's photos read one by one): the simulation scales them with the page it samples."""
    pages = [t for t in templates if t.api == "Query" and t.query_limit]
    if len(pages) != 1:
        return templates, 0
    n = pages[0].query_items
    if n < 2:
        return templates, n
    counts = Counter((t.kind, t.target, t.pk, t.api) for t in templates if t is not pages[0])
    scaled = [
        replace(t, per_item=1 / n) if t is not pages[0] and counts[(t.kind, t.target, t.pk, t.api)] == n else t
        for t in templates
    ]
    return scaled, n


# --- the whole model ----------------------------------------------------------------------------------------------


def build_model(traces: Traces, keys: ModuleType = keys_module) -> AccessModel:
    ops = {op: normalize(trace, traces.known, keys) for op, trace in traces.traces.items()}
    growing: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for op in ops.values():
        for t in op.accesses:
            if t.grows is not None:
                growing[(t.target, t.pattern)].append(t.grows)
    return AccessModel(ops=ops, growing={k: all(v) for k, v in growing.items()})


def sk_grows(sk: str, since: datetime) -> bool:
    """Whether a new entry's sort key leads with a time at or after `since`, its operation's start (an ISO time, a
    ULID minted by the operation, a window's epoch seconds): such keys always land at the end of their partition.
    A key led by an older time (a photo's id or its taken_at, in a favourite or timeline entry) does not grow."""
    for part in sk.split("#"):
        if re.fullmatch(r"[A-Z_]+", part):
            continue  # a type word: PHOTO, RATE, MONTH ...
        if re.match(r"\d{4}-\d{2}-\d{2}T", part):
            return part >= clock.iso_utc(since)
        if ULID_PATTERN.match(part):
            return _ulid_ms(part) >= since.timestamp() * 1000
        if part.isdigit():
            return int(part) >= int(since.timestamp()) - 3600  # a rate window began at most an hour ago
        return False
    return False


def _ulid_ms(value: str) -> int:
    ms = 0
    for ch in value[:10]:
        ms = ms * 32 + _CROCKFORD.index(ch)
    return ms


def patterns(model: AccessModel) -> set[tuple[str, str]]:
    return {(t.target, t.pattern) for op in model.ops.values() for t in op.accesses}
