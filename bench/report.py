"""Turns one run's results into docs/PERFORMANCE.md: every figure and every sentence with a number comes from
the run itself."""

from __future__ import annotations

import itertools
import re
from typing import Any

from bench import albums, common, cost, library, media, realtime, roundtrips
from bench.coldstart import GOAL as COLD_GOAL
from bench.common import fmt_num, fmt_ratio, table, verdict

PREVIEW_TIME_GOAL = 1.10  # × pyvips
NAIVE_SPEEDUP_GOAL = 3.0


def render(results: dict[str, Any], previous: str | None = None) -> str:
    """The whole report; `previous` is the report this one replaces, whose cold-start run log is carried over."""
    results = with_run_logs(results, previous)
    parts = [header(results), summary(results)]
    for name, function in (
        ("coldstart", cold_section),
        ("warm", warm_section),
        ("roundtrips", roundtrips_section),
        ("previews", previews_section),
        ("devstack", devstack_section),
        ("cost", cost_section),
        ("albums", albums.section),
        ("library", library.section),
        ("media", media.section),
    ):
        if name in results:
            parts.append(function(results))
    parts.append(analysis(results))
    return "\n\n".join(part for part in parts if part) + "\n"


def header(results: dict[str, Any]) -> str:
    machine = results["machine"]
    settings = results["settings"]
    kind = "quick (smoke) run: few repetitions, short levels" if results["quick"] else "full run"
    rows = [
        ("CPU", f"{machine['cpu']} ({machine['cores']} cores, shared)"),
        ("memory", machine["memory"]),
        ("OS", machine["os"]),
        ("Python", machine["python"]),
        ("load average at start / end", f"{machine['load_at_start']} / {machine.get('load_at_end', 'n/a')}"),
    ]
    versions = ", ".join(f"{name} {version}" for name, version in results["versions"].items())
    timings = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in results["timings"].items())
    return "\n".join(
        [
            "# PhotoSky performance",
            "",
            f"Written by `make bench` (`python -m bench`) on {results['started']}, a {kind}, in "
            f"{results.get('total_seconds', 0):.0f} s ({timings}). Do not edit by hand: run `make bench` again.",
            "",
            "Every figure is a median of fresh processes or a ratio between things measured in this same run: the "
            "machine is shared (2 cores, colleagues' test runs beside it), so absolute times drift between runs "
            "while same-run ratios hold better. Repetitions: cold start "
            f"{settings.cold_rounds} paired rounds per block (up to {settings.cold_max_blocks} blocks) with "
            f"package.py's bytecode and {settings.cold_other_rounds} in each other state, warm requests "
            f"{settings.warm_repetitions} processes "
            f"× {settings.warm_requests} requests per route, previews {settings.preview_repetitions} processes per "
            f"image and method, dev stack {settings.seconds_per_level:.0f} s per concurrency level.",
            "",
            table(["machine", ""], rows),
            "",
            f"Versions: {versions}.",
        ]
    )


def summary(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []
    if "coldstart" in results:
        cold = results["coldstart"]
        state = cold["states"][cold["goal_state"]]
        summary_ = state["cpu_ratio_summary"]
        instructions = cold["instructions"]
        rows.append(
            (
                "API cold start (CPU over a bare interpreter, with bytecode)",
                f"≤ {COLD_GOAL:.2f}× chalice + 2 clients",
                f"{fmt_ratio(summary_['median'])} median of {len(summary_['ratios'])} pairs (95% CI "
                f"{fmt_interval(summary_['low'], summary_['high'])}, min–max "
                f"{fmt_interval(summary_['min'], summary_['max'])}; {fmt_num(state['photosky']['cpu_ms'])} vs "
                f"{fmt_num(state['baseline']['cpu_ms'])} ms); instructions "
                + (fmt_ratio(instructions["ratio"]) if instructions else "not counted (no valgrind)"),
                cold_verdict(cold["verdict"]),
            )
        )
    if "warm" in results:
        for route, ours, fastest, name in warm_comparisons(results["warm"]):
            rows.append(
                (
                    f"warm CPU per request, {route}",
                    "≤ fastest peer",
                    f"{fmt_num(ours)} µs vs {fmt_num(fastest)} µs ({name}): {fmt_ratio(common.ratio(ours, fastest))}",
                    verdict(ours <= fastest),
                )
            )
    if "roundtrips" in results:
        data = results["roundtrips"]
        ops, by_design = data["operations"], data.get("by_design", {})
        for route in ("POST /photos", "GET /photos", "GET /photos?tag=", "GET /photos/{id}"):
            calls = sum(ops[route]["calls"].values())
            minimum = roundtrips.minimum_calls(data["minimum"][route][0])
            allowed = roundtrips.budget(route, data["minimum"], by_design)
            goal = f"≤ {allowed}" + (f" (minimum {minimum} + {by_design[route][1]})" if allowed > minimum else "")
            rows.append((f"AWS calls, {route}", goal, str(calls), verdict(calls <= allowed)))
    rows.extend(section_goal_rows(results))
    if "previews" in results:
        for name, entry in results["previews"]["images"].items():
            if not name.startswith("jpeg"):
                continue
            methods = entry["methods"]
            ours, vips, naive = methods.get("photosky"), methods.get("pyvips"), methods.get("pillow")
            if ours and vips:
                time_ratio = common.ratio(ours["cpu_ms"], vips["cpu_ms"])
                rows.append(
                    (
                        f"previews, {entry['description']}: CPU vs pyvips",
                        f"≤ {PREVIEW_TIME_GOAL:.2f}×",
                        f"{fmt_ratio(time_ratio)} ({fmt_num(ours['cpu_ms'])} vs {fmt_num(vips['cpu_ms'])} ms; "
                        f"wall {fmt_ratio(common.ratio(ours['wall_ms'], vips['wall_ms']))})",
                        verdict(time_ratio <= PREVIEW_TIME_GOAL),
                    )
                )
                rows.append(
                    (
                        f"previews, {entry['description']}: peak memory vs pyvips",
                        "below",
                        f"{fmt_num(ours['rss_growth_mb'], 1)} vs {fmt_num(vips['rss_growth_mb'], 1)} MB",
                        verdict(ours["rss_growth_mb"] < vips["rss_growth_mb"]),
                    )
                )
            if ours and naive:
                speedup = common.ratio(naive["cpu_ms"], ours["cpu_ms"])
                rows.append(
                    (
                        f"previews, {entry['description']}: speed-up over naive Pillow (CPU)",
                        f"≥ {NAIVE_SPEEDUP_GOAL:.0f}×",
                        f"{fmt_ratio(speedup)} (wall {fmt_ratio(common.ratio(naive['wall_ms'], ours['wall_ms']))})",
                        verdict(speedup >= NAIVE_SPEEDUP_GOAL),
                    )
                )
    if not rows:
        return ""
    return "## Goals\n\n" + table(["what", "goal", "measured", "verdict"], rows)


def section_goal_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The Goals rows of the sections that render their own (albums, media)."""
    rows = []
    for name, goal_rows in (
        ("albums", albums.goal_rows),
        ("media", media.goal_rows),
        ("realtime", realtime.goal_rows),
    ):
        if name in results:
            rows.extend(goal_rows(results[name]))
    return rows


def warm_comparisons(warm: dict[str, Any]) -> list[tuple[str, float, float, str]]:
    from bench.warm import FRAMEWORKS, PEERS

    medians = warm["medians_us"]
    out = []
    for route, ours in medians["photosky"].items():
        fastest_peer = min(PEERS, key=lambda peer: medians[peer][route])
        out.append((route, ours, medians[fastest_peer][route], FRAMEWORKS[fastest_peer]))
    return out


def fmt_interval(low: float, high: float) -> str:
    return f"{low:.2f}–{high:.2f}×"


def cold_verdict(outcome: str) -> str:
    """The cold-start goal's three outcomes, as the Goals table shows them."""
    return {"met": "met", "missed": "**missed**"}.get(outcome, "**within the noise**: repeat the run")


COLD_LOG_MARKER = "<!-- cold-start run log: bench/report.py carries these rows over from run to run -->"
COLD_LOG_HEADERS = (
    "date",
    "run",
    "code",
    "load (1 min)",
    "pairs",
    "CPU ratio, median",
    "95% CI",
    "min–max",
    "instructions",
    "verdict",
    "note",
)


def with_run_logs(results: dict[str, Any], previous: str | None) -> dict[str, Any]:
    """`results` with the run logs of the sections it measured: the rows of `previous` (the report this run
    replaces or writes into), then this run's."""
    if "coldstart" in results and "cold_log" not in results:
        results = {**results, "cold_log": [*cold_log_rows(previous), cold_log_row(results)]}
    if "media" in results and "media_log" not in results:
        carried = log_rows(previous, media.LOG_MARKER, len(media.LOG_HEADERS))
        results = {**results, "media_log": [*carried, media.log_row(results)]}
    return results


def log_rows(previous: str | None, marker: str, width: int) -> list[tuple[str, ...]]:
    """The rows of the run log under `marker` in the report being replaced (none when there is none, or it has no
    such log yet); rows of another width (an older layout) are dropped."""
    if not previous or marker not in previous:
        return []
    lines = previous.split(marker, 1)[1].strip().splitlines()
    rows = []
    for line in lines[2:]:  # after the header and the alignment row
        if not line.startswith("|"):
            break
        cells = tuple(cell.strip() for cell in line.strip().strip("|").split("|"))
        if len(cells) == width:
            rows.append(cells)
    return rows


def cold_log_rows(previous: str | None) -> list[tuple[str, ...]]:
    """The cold-start run log's rows from the report being replaced."""
    return log_rows(previous, COLD_LOG_MARKER, len(COLD_LOG_HEADERS))


def cold_log_row(results: dict[str, Any]) -> tuple[str, ...]:
    cold = results["coldstart"]
    summary_ = cold["states"][cold["goal_state"]]["cpu_ratio_summary"]
    instructions = cold["instructions"]
    return (
        results["started"],
        ("quick" if results["quick"] else "full") + ("" if results.get("complete", True) else ", cold start only"),
        results.get("code", "n/a"),
        cold["load"]["start"].split()[0],
        str(len(summary_["ratios"])),
        fmt_ratio(summary_["median"]),
        fmt_interval(summary_["low"], summary_["high"]),
        fmt_interval(summary_["min"], summary_["max"]),
        fmt_ratio(instructions["ratio"]) if instructions else "n/a",
        cold["verdict"],
        results.get("label", "").replace("|", "/"),
    )


def cold_section(results: dict[str, Any]) -> str:
    cold = results["coldstart"]
    goal_state = cold["goal_state"]
    goal_data = cold["states"][goal_state]
    pooled = goal_data["cpu_ratio_summary"]
    block_rows = [
        (
            str(index),
            str(len(block["ratios"])),
            block["load_at_start"],
            fmt_ratio(block["median"]),
            fmt_interval(block["low"], block["high"]),
            fmt_interval(block["min"], block["max"]),
            block["verdict"],
        )
        for index, block in enumerate(cold["blocks"], start=1)
    ]
    block_rows.append(
        (
            "**all, pooled**",
            str(len(pooled["ratios"])),
            "",
            f"**{fmt_ratio(pooled['median'])}**",
            fmt_interval(pooled["low"], pooled["high"]),
            fmt_interval(pooled["min"], pooled["max"]),
            f"**{pooled['verdict']}**",
        )
    )
    rows = []
    for state, data in cold["states"].items():
        for name, label in (
            ("baseline", "baseline: chalice + DynamoDB and S3 clients"),
            ("photosky", "PhotoSky: `import app` + what the first GET /photos builds"),
        ):
            figures = data[name]
            phases = figures["phases_ms"]
            rows.append(
                (
                    state,
                    label,
                    fmt_num(phases["import"]),
                    fmt_num(phases["dynamodb"]),
                    fmt_num(phases["media"]),
                    fmt_num(phases["rest"]),
                    fmt_num(figures["cpu_ms"]),
                    f"{fmt_num(figures['cpu_min_ms'])}–{fmt_num(figures['cpu_max_ms'])}",
                    fmt_num(figures["wall_ms"]),
                )
            )
        summary_ = data["cpu_ratio_summary"]
        rows.append(
            (
                state,
                f"**PhotoSky / baseline**, median of {data['rounds']} pairs (min–max)",
                "",
                "",
                "",
                "",
                f"{fmt_ratio(summary_['median'])} ({fmt_interval(summary_['min'], summary_['max'])})",
                "",
                f"{fmt_ratio(data['wall_ratio'])} ({fmt_interval(data['wall_ratio_min'], data['wall_ratio_max'])})",
            )
        )
    packages = [(name, fmt_num(us / 1000, 1), str(modules)) for name, us, modules in cold["top_packages"]]
    ours = [(module, fmt_num(s / 1000, 1), fmt_num(c / 1000, 1)) for module, s, c in cold["our_modules"]]
    instructions = cold["instructions"]
    if instructions:
        net = instructions["net"]
        instruction_part = [
            f"Instructions executed (load-independent; {instructions['tool']}, to the end of the script, minus a bare "
            f"interpreter; {instructions['repetitions']} run(s) per script"
            + (", identical every time" if instructions["identical"] and instructions["repetitions"] > 1 else "")
            + (", **not identical between runs**" if not instructions["identical"] else "")
            + "). They leave out what the kernel does for the process (page faults, file reads) and how fast the "
            "processor gets through them (cache misses, branch mispredictions), so they complement the CPU figure "
            "rather than replace it:",
            "",
            table(
                ["what", "import (M instructions)", "in all (M instructions)"],
                [
                    ("baseline", fmt_num(net["baseline import"] / 1e6, 1), fmt_num(net["baseline"] / 1e6, 1)),
                    ("PhotoSky", fmt_num(net["photosky import"] / 1e6, 1), fmt_num(net["photosky"] / 1e6, 1)),
                    (
                        "**PhotoSky / baseline**",
                        fmt_ratio(instructions["import_ratio"]),
                        f"**{fmt_ratio(instructions['ratio'])}**",
                    ),
                ],
            ),
        ]
    else:
        instruction_part = ["Instructions: not counted in this run (valgrind is not installed)."]
    log_rows = results.get("cold_log", [])
    return "\n".join(
        [
            "## 1. API cold start",
            "",
            "Fresh interpreter per figure with the `local` stage's environment (plus a pool ARN and throwaway "
            "credentials). CPU (user + system) and wall time (from spawning the process) are read at the end of the "
            "initialisation, each minus a bare interpreter's; not at process exit, because Lambda keeps the "
            "environment after INIT and never pays the interpreter's teardown (which, for these imports, costs "
            "hundreds of ms: freeing botocore's loaded models). PhotoSky builds its clients on first use, so it is "
            "measured as `import app` plus what the first GET /photos builds, with the CDN configured "
            "(`PHOTOSKY_MEDIA_URL` and `PHOTOSKY_MEDIA_KEY`, as deployed since issue 14): the DynamoDB client, the "
            "first media URLs (`deps.media().urls(…, original=True, filename=…)`: the key parsed and two ECDSA P-256 "
            "signatures in pure Python, one for the owner's previews and one for their originals) and the photo "
            "service (repository, storage, cursor codec); no S3 client, which the list no longer needs. The "
            "baseline is `import chalice` + `Chalice()` + a DynamoDB and an S3 client made with `boto3.client` "
            "(both from boto3's default session, as the Chalice samples do). Phase by phase: *media URLs* is what "
            "hands out the photos' URLs, the S3 client for the baseline (presigning), the first signed URLs for "
            "PhotoSky.",
            "",
            f"**The goal's figure** ({goal_state} bytecode, as infra/package.py ships): the machine is shared, so "
            "each round runs a bare interpreter, the baseline and PhotoSky back to back (the two alternating which "
            "goes first) and the ratio (PhotoSky − bare) / (baseline − bare) is taken within the round. The figure is "
            f"the median of those ratios with its distribution-free {cold['confidence'] * 100:.0f}% confidence "
            "interval (order statistics of the pairs); **met** when the whole interval is at or below "
            f"{COLD_GOAL:.2f}×, **missed** when it is all above, otherwise **within the noise**. A run within the "
            f"noise is repeated: the bench adds blocks of {cold['rounds_per_block']} rounds (up to "
            f"{cold['max_blocks']}) and pools them, every block shown; if the pooled verdict is still within the "
            "noise, run it again later and keep every run in the log below. Never keep the best of several runs. "
            f"Load average during this section: {cold['load']['start']} at the start, {cold['load']['end']} at the "
            "end (2 cores).",
            "",
            table(["block", "pairs", "load at start", "median", "95% CI", "min–max", "verdict"], block_rows),
            "",
            *instruction_part,
            "",
            "Every bytecode state: **package.py** = everything precompiled with unchecked-hash; **chalice zip** = "
            "what plain `chalice deploy` ships: app.py, chalicelib and chalice's runtime compile at import, "
            "boto3/botocore precompiled as in Lambda's runtime; **none** = nothing but the standard library "
            "precompiled. CPU ms per phase and in all are medians over the rounds (per-phase medians need not add "
            "up); the ratio row is the median of the per-round ratios.",
            "",
            table(
                [
                    "bytecode",
                    "what",
                    "import",
                    "DynamoDB client",
                    "media URLs",
                    "rest",
                    "CPU ms",
                    "min–max",
                    "wall ms",
                ],
                rows,
            ),
            "",
            f"Modules loaded (files): baseline {cold['module_files']['baseline']}, PhotoSky "
            f"{cold['module_files']['photosky']}."
            + (
                " What PhotoSky's script built of chalicelib.deps (checked in every run: CloudFront URLs, no S3 "
                f"client): {', '.join(f'`{name}`' for name in cold['photosky_built'])}."
                if cold.get("photosky_built")
                else ""
            ),
            "",
            f"What `import app` pulls in (`python -X importtime`, with bytecode, median of {cold['importtime_runs']} "
            f"runs; {fmt_num(cold['import_total_us'] / 1000)} ms of self time in total), by top-level package:",
            "",
            table(["package", "self ms", "modules"], packages),
            "",
            f"PhotoSky's own modules ({fmt_num(cold['our_modules_self_us'] / 1000, 1)} ms of self time in all), the "
            "costliest by self time (cumulative includes what they import first, mostly boto3 and chalice):",
            "",
            table(["module", "self ms", "cumulative ms"], ours),
            "",
            "Every run of this section so far, newest last (`python -m bench`, full or `--quick`, or "
            "`python -m bench --only coldstart`, which updates only this log), so that a verdict that flips between "
            "runs shows:",
            "",
            COLD_LOG_MARKER,
            table(COLD_LOG_HEADERS, log_rows),
        ]
    )


def warm_section(results: dict[str, Any]) -> str:
    from bench.warm import FRAMEWORKS, LIST_PAGE

    warm = results["warm"]
    medians = warm["medians_us"]
    rows = []
    for route, ours, fastest, _name in warm_comparisons(warm):
        rows.append(
            (
                route,
                *(fmt_num(medians[fw][route]) for fw in FRAMEWORKS),
                fmt_ratio(common.ratio(ours, fastest)),
                f"{common.spread(warm['samples_us']['photosky'][route]) * 100:.0f}%",
                "yes" if warm["same_shape"][route] else "**no**",
            )
        )
    profile = warm["profile"]
    areas = [(name, f"{share * 100:.1f}%") for name, share in profile["areas"].items() if share >= 0.005]
    top = [(f"`{label}`", f"{share * 100:.1f}%") for label, share in profile["top"]]
    return "\n".join(
        [
            "## 2. Warm request cost",
            "",
            "CPU µs per request (median of processes) through each framework's real Lambda entry point with an "
            "API Gateway REST proxy event (Cognito claims as strings in requestContext.authorizer.claims). DynamoDB "
            "and S3 are botocore `Stubber`s on the clients chalicelib.deps builds, so request serialisation, "
            "presigning and our code run for real and nothing touches a network; each queued response must be "
            "consumed. The peers (bench/peers/) use the same service layer (same DynamoDB calls, same presigned "
            "URLs) and spend the same write-rate token as app.py (POST /photos: an UpdateItem on the caller's "
            "rate counter, then the transaction), and have the same response shapes (checked: last column), "
            "pydantic validation with the same limits and the same log line per request. "
            f"The list returns a page of {LIST_PAGE} READY photos (3 presigned GETs "
            "each) and a signed next cursor. Spread = (max − min) / median of PhotoSky's per-process figures.",
            "",
            table(["route", *FRAMEWORKS.values(), "PhotoSky / fastest peer", "spread", "same shape"], rows),
            "",
            "Where PhotoSky's CPU goes on the list route (cProfile, own time by layer):",
            "",
            table(["layer", "share"], areas),
            "",
            "Top functions by own time:",
            "",
            table(["function", "share"], top),
        ]
    )


def roundtrips_section(results: dict[str, Any]) -> str:
    data = results["roundtrips"]
    by_design = data.get("by_design", {})
    rows = []
    for operation, entry in data["operations"].items():
        calls = ", ".join(f"{count}× {name}" for name, count in entry["calls"].items())
        total = sum(entry["calls"].values())
        minimum, why = data["minimum"].get(operation, ("", ""))
        extra, reason = by_design.get(operation, (0, ""))
        over = bool(minimum) and total > roundtrips.budget(operation, data["minimum"], by_design)
        rows.append(
            (
                operation,
                calls,
                f"**{total}**" if over else str(total),
                f"{minimum} ({why})" if minimum else "",
                f"+{extra}: {reason}" if extra else "",
                fmt_num(entry["rru"], 1),
                fmt_num(entry["wru"], 1),
                str(entry.get("presigned_urls", 0)),
            )
        )
    probe = data["moto_consumed_capacity_probe"]
    return "\n".join(
        [
            "## 3. AWS round trips and DynamoDB capacity per operation",
            "",
            "Through the real handlers (`app.app(event, context)`, the worker's SQS handler) on in-process "
            "`moto.mock_aws`, counted with botocore's `before-call` hook on the app's own clients. The library "
            "holds 10 photos (1 READY with previews, 9 PENDING), so lists sign URLs for the READY one only; the "
            "READY one is edited, deleted (to the trash, since issue 13) and then deleted for good from the trash "
            "(`?permanent=true`), its objects with it. PhotoSky "
            "does not request ReturnConsumedCapacity, and moto's figure is not size-based (asked directly for a "
            f"GetItem it answered `{probe}`), so RRU/WRU are computed from the items' sizes with DynamoDB's rules: "
            "reads per 4 KB (½ if eventually consistent), writes per 1 KB of the larger of the item before and "
            "after, ×2 in a transaction; a key a BatchGetItem does not find is charged like a GetItem that finds "
            "nothing (GET /users/me asks for the usage item, which a user has once they upload). *Minimum possible* "
            "is the fewest calls any implementation of the route "
            "needs; *above it by design* is what PhotoSky spends on top on purpose (explained below), and a total "
            "in bold is above both (explained below too, with what would save the calls).",
            "",
            table(
                [
                    "operation",
                    "calls",
                    "total",
                    "minimum possible",
                    "above it by design",
                    "RRU",
                    "WRU",
                    "URLs signed",
                ],
                rows,
            ),
            *(["", *roundtrips_design_notes(data)] if by_design else []),
        ]
    )


def roundtrips_design_notes(data: dict[str, Any]) -> list[str]:
    """Why the routes marked 'by design' make more calls than their minimum, with this run's figures."""
    ops = data["operations"]
    notes = []
    writes = [op for op, (_extra, reason) in data["by_design"].items() if "write-rate token" in reason and op in ops]
    if writes:
        post = ops["POST /photos"]
        token_wru = post.get("wru_by_call", {}).get("DynamoDB UpdateItem")
        limit = data.get("write_rate_limit", {})
        per_million = cost.PRICES["dynamodb_write_request_unit"] * 1e6
        notes.append(
            f"- **The write-rate token.** Every write route ({', '.join(writes)}) first spends one of the caller's "
            "write-rate tokens (app.py: `deps.write_limiter().spend(user_id)`): one conditional UpdateItem on the "
            "user's `RATE#<window>` counter (chalicelib/ratelimit.py"
            + (f"; at most {limit['writes']} writes per {limit['window_seconds']} s by default" if limit else "")
            + "), before the route's own calls and before the body is read. So POST /photos makes "
            f"{sum(post['calls'].values())} calls ({', '.join(post['calls'])}) where its minimum is one "
            "transaction. The counter could join the route's transaction and save the round trip, but a "
            "transactional write costs twice the write units, and the limiter would then sit inside every "
            "repository's writes rather than once in front of them; as its own call it costs "
            + (f"{fmt_num(token_wru, 1)} WRU" if token_wru is not None else "one small write")
            + f" per write request (${per_million:.3g} per million in on-demand at section 6's price) and one "
            "round trip."
        )
    purge, trash = ops.get(roundtrips.DELETE_FOR_GOOD), ops.get(roundtrips.DELETE_TO_TRASH)
    if purge is not None and trash is not None:
        notes.append(
            "- **Deleting a photo (issue 13).** A READY photo's DELETE moves it to the trash: "
            f"{sum(trash['calls'].values())} calls and {fmt_num(trash['wru'], 1)} WRU, no S3 call (its objects stay "
            "for a restore). `?permanent=true` deletes it for good; from the trash it makes "
            f"{sum(purge['calls'].values())} calls ({', '.join(purge['calls'])}), two above its minimum by design: "
            "the write-rate token, and the purging mark: the photo is first marked in the trash as being purged (a "
            "transaction of its own), then its objects go, then its item, so a crash anywhere leaves a photo whose "
            "purge the retry or the scheduled job finishes, never objects without their photo, and a restore cannot "
            f"race the purge ({fmt_num(purge['wru'], 1)} WRU in all, the mark's included)."
        )
    tagged, listed = ops.get("GET /photos?tag="), ops.get("GET /photos")
    if tagged and "GET /photos?tag=" in data["by_design"]:
        notes.append(
            "- **Tag listings.** The tag copies in the index hold keys only, so a tag listing is a Query for the "
            f"page's keys and one BatchGetItem for its photos ({sum(tagged['calls'].values())} calls, "
            f"{fmt_num(tagged['rru'], 1)} RRU for {tagged.get('items', '?')} photos"
            + (
                f", against {fmt_num(listed['rru'], 1)} RRU for the plain list of {listed.get('items', '?')}"
                if listed
                else ""
            )
            + "): a batch read charges each photo at least one read unit of its own (½ if eventually consistent), "
            "where a Query charges the summed size of what it returns. Copies holding whole photos would answer in "
            "one Query, at the price of rewriting every copy whenever its photo is edited or settled by the worker."
        )
    for operation, entry in ops.items():
        if operation not in data["minimum"]:
            continue
        total = sum(entry["calls"].values())
        allowed = roundtrips.budget(operation, data["minimum"], data["by_design"])
        if total > allowed:
            why = roundtrips.OVER_BUDGET.get(operation, "not explained yet: look at the calls in the table")
            notes.append(f"- **{operation}: {total} calls against a budget of {allowed}.** {why[0].upper()}{why[1:]}.")
    return notes


def previews_section(results: dict[str, Any]) -> str:
    from bench.previews import METHODS

    data = results["previews"]
    rows = []
    notes = []
    for entry in data["images"].values():
        size = f"{entry['bytes'] / 1e6:.1f} MB" if entry["bytes"] else "n/a"
        if entry["unavailable"]:
            notes.append(f"- {entry['description']}: not measured ({entry['unavailable']}).")
            continue
        for method, label in METHODS.items():
            figures = entry["methods"].get(method)
            if figures is None:
                why = entry["errors"].get(method) or data.get("pyvips_unavailable") or "not run"
                rows.append((entry["description"], size, label, "n/a", "n/a", "n/a", f"failed: {why}"))
                continue
            dims = " + ".join(f"{w}×{h}" for w, h, _b in figures["previews"])
            rows.append(
                (
                    entry["description"],
                    size,
                    label,
                    fmt_num(figures["wall_ms"]),
                    fmt_num(figures["cpu_ms"]),
                    fmt_num(figures["rss_growth_mb"], 1),
                    dims,
                )
            )
    return "\n".join(
        [
            "## 4. Previews",
            "",
            "Both previews (fit 1024 and fit 256, JPEG q82, EXIF orientation applied) from one image, one fresh "
            "process per figure, libraries imported before the clock starts. Images are generated by the bench "
            "(smooth gradients with grain, cached in build/bench-samples). Peak memory = the kernel's high-water "
            "mark (VmHWM, reset just before the work) minus the resident size before the work; not ru_maxrss, "
            "which on Linux a child inherits from its parent at fork. Naive Pillow = open, exif_transpose, "
            "thumbnail per size, save q82. pyvips = `thumbnail_buffer` to 1024 (shrink-on-load, auto-rotate), the "
            "256 from that, `jpegsave` q82 with optimised coding and no metadata; libvips uses its own threads, "
            "so compare CPU (what a Lambda with less than one vCPU pays) as well as wall time.",
            "",
            table(["image", "file", "method", "wall ms", "CPU ms", "peak MB", "previews"], rows),
            *(["", *notes] if notes else []),
        ]
    )


def devstack_section(results: dict[str, Any]) -> str:
    data = results["devstack"]
    uploads = data["uploads"]
    read_rows = [
        (
            str(level["clients"]),
            fmt_num(level["seconds"]),
            str(level["requests"]),
            str(level["errors"]),
            fmt_num(level["requests_per_second"], 1),
            fmt_num(level["p50_ms"]),
            fmt_num(level["p99_ms"]),
            " / ".join(fmt_num(level["by_kind_p50_ms"].get(kind)) for kind in ("list", "get", "me")),
        )
        for level in data["reads"]
    ]
    return "\n".join(
        [
            "## 5. Dev stack throughput (127.0.0.1)",
            "",
            f"`python -m devstack` on free ports (up in {data['startup_seconds']:.1f} s), {data['users']} users "
            "signed up and confirmed against the emulated Cognito, tokens from USER_PASSWORD_AUTH. The load "
            "generator shares the 2 cores with the stack, and the stack is one Python process (API, worker and "
            "moto behind one GIL), so these figures locate saturation on this machine; they say nothing about AWS.",
            *(["", devstack_limits_note(data)] if "raised_limits" in data else []),
            "",
            f"Uploads: {uploads['clients']} clients declared and POSTed a {uploads['file_bytes'] / 1e6:.2f} MB JPEG "
            f"for up to {uploads['seconds']:.0f} s (at most {uploads['max_uploads']}): {uploads['submitted']} "
            f"submitted, {uploads['ready']} READY, {uploads['not_settled']} unsettled, {uploads['failure_count']} "
            f"failed requests. **{uploads['ready_per_second']:.2f} uploads READY per second**; from declaration "
            f"to READY p50 {fmt_num(uploads['declare_to_ready_p50_ms'])} ms, p99 "
            f"{fmt_num(uploads['declare_to_ready_p99_ms'])} ms (queueing behind the single worker included).",
            "",
            "Mixed reads (each client cycles `GET /photos?limit=30`, `GET /photos/{id}`, `GET /users/me` on a "
            "keep-alive connection):",
            "",
            table(
                ["clients", "seconds", "requests", "errors", "req/s", "p50 ms", "p99 ms", "p50 list / get / me"],
                read_rows,
            ),
        ]
    )


def devstack_limits_note(data: dict[str, Any]) -> str:
    raised, defaults = data["raised_limits"], data["default_limits"]
    busiest = data["uploads"].get("busiest_user_uploads")
    return (
        "The stack ran with the per-user abuse limits raised out of reach ("
        + ", ".join(f"`{name}={value}`" for name, value in raised.items())
        + f"; by default {defaults['write_rate_limit']} writes per {defaults['write_rate_window_seconds']} s and "
        f"{defaults['max_pending_uploads']} pending uploads per user), because this section measures throughput and "
        "a few users making many requests would otherwise measure the limits (429s) instead"
        + (
            f". The busiest user declared {busiest} uploads in the upload phase, so at most that many were pending "
            "at once"
            if busiest is not None
            else ""
        )
        + "; reads spend no tokens."
    )


def cost_section(results: dict[str, Any]) -> str:
    data = results["cost"]
    scenarios = data["scenarios"]
    memories = list(scenarios)
    names = list(scenarios[memories[0]]["items"])
    rows = [(name, *(f"${scenarios[m]['items'][name]:,.2f}" for m in memories)) for name in names]
    rows.append(("**total**", *(f"**${sum(scenarios[m]['items'].values()):,.2f}**" for m in memories)))
    ms_rows = [
        (route, *(fmt_num(scenarios[m]["request_ms"][route]) for m in memories))
        for route in scenarios[memories[0]]["request_ms"]
    ]
    price_rows = [(name, f"{value:.10g}") for name, value in cost.PRICES.items()]
    assumption_rows = [(name, str(value)) for name, value in cost.ASSUMPTIONS.items()]
    measured = data["measured"]
    return "\n".join(
        [
            "## 6. Cost model",
            "",
            f"A month of {cost.ASSUMPTIONS['api_requests']:,} API requests and {cost.ASSUMPTIONS['uploads']:,} "
            "photo uploads in us-east-1, from this run's measurements: warm CPU per route, AWS calls and RRU/WRU "
            f"per operation (POST /photos: {measured.api_calls['POST /photos']} calls and "
            f"{fmt_num(measured.wru['POST /photos'], 1)} WRU, its write-rate token included), "
            f"cold-start CPU ({measured.cold_start_ms:.0f} ms, billed INIT), the worker's preview CPU "
            f"for a 24 MP JPEG ({measured.worker_cpu_ms:.0f} ms) and its previews' size. A Lambda gets CPU in "
            "proportion to its memory (one vCPU at 1,769 MB), so CPU time is stretched by that share; each AWS "
            "call adds an assumed in-region latency. Prices and assumptions below are inputs (bench/cost.py), "
            f"prices as of {cost.PRICES_AS_OF}; free tiers, Cognito MAUs, CloudWatch Logs, data transfer and "
            "Secrets Manager are not included.",
            "",
            table(["line item", *(f"API at {m} MB" for m in memories)], rows),
            "",
            "Billed API duration per request (ms):",
            "",
            table(["route", *(f"{m} MB" for m in memories)], ms_rows),
            "",
            table(["price input", "USD"], price_rows),
            "",
            table(["assumption", "value"], assumption_rows),
        ]
    )


def analysis(results: dict[str, Any]) -> str:
    lines = ["## Analysis: where time and memory go, and what was done", ""]
    if "coldstart" in results:
        lines.append(cold_analysis(results["coldstart"]))
    if "warm" in results:
        comparisons = warm_comparisons(results["warm"])
        profile = results["warm"]["profile"]["areas"]
        botocore_share = sum(share for name, share in profile.items() if name.startswith("botocore"))
        ours_share = profile.get("PhotoSky code (chalicelib)", 0.0)
        chalice_share = profile.get("chalice (routing, request/response)", 0.0)
        wins = [route for route, ours, fastest, _n in comparisons if ours <= fastest]
        samples = results["warm"]["samples_us"]["photosky"]
        losses = [
            f"{route} ({fmt_ratio(common.ratio(ours, fastest))} of {name}, "
            + ("within" if common.ratio(ours, fastest) - 1 <= common.spread(samples[route]) else "beyond")
            + f" the {common.spread(samples[route]) * 100:.0f}% spread of PhotoSky's own samples)"
            for route, ours, fastest, name in comparisons
            if ours > fastest
        ]
        lines.append(
            f"- **Warm requests.** PhotoSky is at or below the fastest peer on {len(wins)} of {len(comparisons)} "
            "routes" + (f"; above it on {', '.join(losses)}" if losses else "") + ". On the list route "
            f"botocore takes {botocore_share * 100:.0f}% of PhotoSky's CPU (presigning 3 GET URLs per READY photo: "
            "each `generate_presigned_url` runs botocore's whole request pipeline, endpoint-rule resolution "
            f"included), chalice {chalice_share * 100:.1f}% and PhotoSky's own code {ours_share * 100:.1f}%. The "
            "framework is not where the time goes, and the peers pay the same presigning (same service layer), so "
            "on the data routes the frameworks differ by their own overhead only, which `GET /health` shows bare. "
            "Not changed in the app: the presigning cost is the "
            "lever (a presigner that resolves the endpoint once and signs with SigV4 directly, or CloudFront "
            "signed cookies for previews), but replacing botocore's presigner is neither small nor free of risk, "
            "so it is reported here rather than done in this change."
        )
    if "roundtrips" in results:
        lines.append(roundtrips_analysis(results["roundtrips"]))
    if "albums" in results:
        lines.append(albums.analysis(results["albums"]))
    if "library" in results:
        lines.append(library.analysis(results["library"]))
    if "media" in results:
        lines.append(media.analysis(results["media"]))
    if "realtime" in results:
        lines.append(realtime.analysis(results["realtime"]))
    if "previews" in results:
        lines.extend(previews_analysis(results))
    if "devstack" in results:
        reads = results["devstack"]["reads"]
        best = max(reads, key=lambda level: level["requests_per_second"])
        steps = [
            f"{a['clients']}→{b['clients']} clients: throughput "
            f"×{common.ratio(b['requests_per_second'], a['requests_per_second']):.1f}, "
            f"p99 ×{common.ratio(b['p99_ms'], a['p99_ms']):.1f}"
            for a, b in itertools.pairwise(reads)
        ]
        lines.append(
            f"- **Dev stack.** Reads peak at {best['requests_per_second']:.1f} req/s ({best['clients']} clients); "
            + "; ".join(steps)
            + ". Where throughput stops growing with the clients and p99 grows instead, the stack is saturated: "
            "one process verifies each RS256 token, runs the API, presigns URLs and emulates AWS behind one GIL, "
            "on 2 cores shared with the load generator. Uploads are bound by the single worker thread "
            f"({results['devstack']['uploads']['ready_per_second']:.2f} READY/s). Fine for development; it is not "
            "a load-test target."
        )
    if "cost" in results:
        scenarios = results["cost"]["scenarios"]
        totals = {memory: sum(s["items"].values()) for memory, s in scenarios.items()}
        cheapest = min(totals, key=lambda memory: totals[memory])
        list_ms = {memory: s["request_ms"]["GET /photos"] for memory, s in scenarios.items()}
        items = scenarios[cheapest]["items"]
        top_items = sorted(items.items(), key=lambda kv: -kv[1])[:3]
        lines.append(
            "- **Cost.** "
            + ", ".join(f"${total:,.2f} a month with the API at {memory} MB" for memory, total in totals.items())
            + f" (cheapest: {cheapest} MB). The largest items are "
            + ", ".join(f"{name} (${value:,.2f})" for name, value in top_items)
            + f"; at {min(list_ms)} MB (Chalice's default) a list request is billed about "
            f"{list_ms[min(list_ms)]:.0f} ms against {list_ms[max(list_ms)]:.0f} ms at {max(list_ms)} MB, because "
            "a Lambda's CPU share shrinks with its memory: latency, more than cost, is why .chalice/config.json "
            f"gives the API {cost.configured_memory_mb('api_handler')} MB, and the presigning cost above is what a "
            "list pays for most."
        )
    return "\n".join(lines)


def roundtrips_analysis(data: dict[str, Any]) -> str:
    ops, minimum, by_design = data["operations"], data["minimum"], data.get("by_design", {})

    def total(route: str) -> int:
        return sum(ops[route]["calls"].values())

    at_minimum = [
        route
        for route in ("GET /photos", "GET /photos/{id}", "GET /users/me")
        if route in ops and total(route) <= roundtrips.minimum_calls(minimum[route][0])
    ]
    over_budget = [
        f"{route} ({total(route)} against {roundtrips.budget(route, minimum, by_design)})"
        for route in ops
        if route in minimum and total(route) > roundtrips.budget(route, minimum, by_design)
    ]
    token_routes = [route for route, design in by_design.items() if design == roundtrips.WRITE_RATE_TOKEN]

    def calls(route: str) -> str:
        return " + ".join(name.removeprefix("DynamoDB ") for name in ops[route]["calls"])

    parts = ["- **Round trips.**"]
    if at_minimum:
        verb = "is" if len(at_minimum) == 1 else "are"
        parts.append(
            f"{', '.join(at_minimum)} {verb} at the minimum (one DynamoDB call each; URLs are signed locally)."
        )
    if token_routes and "POST /photos" in ops:
        parts.append(
            f"Every write route ({', '.join(token_routes)}) spends one call above its minimum on the write-rate "
            f"token: POST /photos makes {total('POST /photos')} ({calls('POST /photos')})."
        )
    if "GET /photos?tag=" in by_design and "GET /photos?tag=" in ops:
        parts.append(
            f"A tag listing makes {total('GET /photos?tag=')} ({calls('GET /photos?tag=')}) for its key-only copies."
        )
    purge = roundtrips.DELETE_FOR_GOOD
    if purge in ops and roundtrips.PURGING_MARK in by_design.get(purge, (0, ""))[1]:
        parts.append(
            f"A permanent delete of a photo in the trash makes {total(purge)} ({calls(purge)}): the token, and the "
            "purging mark before its objects go."
        )
    if len(parts) > 1 + bool(at_minimum):
        parts.append("These are by design (section 3).")
    parts.append(
        f"Above their budget (explained under section 3's table): {', '.join(over_budget)}."
        if over_budget
        else "No route is above its budget."
    )
    sentence = " ".join(parts)
    worker = ops["upload worker"]
    s3_calls = sum(count for name, count in worker["calls"].items() if name.startswith("S3"))
    s3_minimum = sum(
        int(part.split()[0]) for part in minimum["upload worker"][0].split("+") if part.strip().endswith("S3")
    )
    if s3_calls > s3_minimum and "S3 HeadObject" in worker["calls"]:
        sentence += (
            f" The worker makes {s3_calls} S3 calls where {s3_minimum} suffice: it HEADs the upload to check its size "
            "before reading it (never reading more than declared); a ranged GET (`Range: bytes=0-<declared>`) "
            "returns the object's whole size in Content-Range and reads at most one byte more than declared, "
            "which would save one S3 request and one round trip per upload. Not changed here (worker semantics)."
        )
    return sentence


def cold_analysis(cold: dict[str, Any]) -> str:
    states = cold["states"]
    full, zipped, none = states["package.py"], states["chalice zip"], states["none"]
    pooled = full["cpu_ratio_summary"]
    instructions = cold["instructions"]
    ours, theirs = full["photosky"]["phases_ms"], full["baseline"]["phases_ms"]
    top = cold["top_packages"][:3]
    own = cold["our_modules"][:3]
    sentence = (
        f"- **Cold start.** With infra/package.py's bytecode PhotoSky costs {fmt_ratio(pooled['median'])} the "
        f"baseline's CPU (median of {len(pooled['ratios'])} pairs, 95% CI "
        f"{fmt_interval(pooled['low'], pooled['high'])}: {pooled['verdict']}"
        + (f"; {fmt_ratio(instructions['ratio'])} of its instructions" if instructions else "")
        + f"). By phase: `import app` {fmt_num(ours['import'])} ms against {fmt_num(theirs['import'])} ms for "
        "importing boto3 and chalice (the app's import includes them: deps imports boto3)"
        + (f", {fmt_ratio(instructions['import_ratio'])} in instructions" if instructions else "")
        + f"; PhotoSky's own modules take {fmt_num(cold['our_modules_self_us'] / 1000, 1)} ms of self time, the "
        "most in " + ", ".join(f"{module} ({self_us / 1000:.1f} ms)" for module, self_us, _c in own)
    )
    if own and own[0][0].endswith(".models"):
        sentence += (
            " (each `@dataclass(frozen=True)` generates and compiles its methods with `exec` when its module is "
            "imported)"
        )
    sentence += (
        f". Then the DynamoDB client ({fmt_num(ours['dynamodb'])} vs {fmt_num(theirs['dynamodb'])} ms): botocore "
        "loading and parsing the service model and endpoint rules, which every Chalice app on DynamoDB pays and "
        "PhotoSky defers to the first request, from one boto3 session as `boto3.client` does (chalicelib/deps.py "
        "used to make a session per client: the run log's rows before that fix). The first media URLs cost "
        f"PhotoSky {fmt_num(ours['media'])} ms (the key parsed, two P-256 signatures in pure Python) where the "
        f"baseline's S3 client costs {fmt_num(theirs['media'])} ms: since issue 14 the list needs no S3 client. "
        f"The services cost {fmt_num(ours['rest'])} ms. The heaviest imports are "
        + ", ".join(f"{name} ({us / 1000:.0f} ms)" for name, us, _m in top)
        + ". Shipped as plain `chalice deploy` does (our code and chalice compiled at import) PhotoSky takes "
        f"{fmt_num(zipped['photosky']['cpu_ms'])} ms "
        f"({zipped['photosky']['cpu_ms'] - full['photosky']['cpu_ms']:+.0f} ms against package.py's bytecode; "
        f"ratio {fmt_ratio(zipped['cpu_ratio'])}, {zipped['rounds']} pairs), and with no bytecode at all "
        f"{fmt_num(none['photosky']['cpu_ms'])} ms. "
    )
    if cold["verdict"] == "met":
        sentence += (
            "The precompiled zip keeps the goal; the `chalice deploy` path (no bytecode for our code) pays the "
            "compilation on every cold start."
        )
    elif cold["verdict"] == "missed":
        sentence += f"The goal of {COLD_GOAL:.2f}× is missed even with bytecode in this run."
    else:
        sentence += (
            f"This run cannot tell whether the goal of {COLD_GOAL:.2f}× is met (its interval straddles it): repeat "
            "it, and keep every run in the log."
        )
    return sentence


def previews_analysis(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    images = results["previews"]["images"]
    jpeg = images["jpeg"]["methods"]
    if "photosky" in jpeg and "pillow" in jpeg:
        sentence = (
            "- **Previews.** For the 24 MP JPEG PhotoSky's pipeline takes "
            f"{fmt_num(jpeg['photosky']['cpu_ms'])} ms of CPU "
            f"and {fmt_num(jpeg['photosky']['rss_growth_mb'], 1)} MB, naive Pillow "
            f"{fmt_num(jpeg['pillow']['cpu_ms'])} ms and {fmt_num(jpeg['pillow']['rss_growth_mb'], 1)} MB: "
            "asking the JPEG decoder for a DCT-scaled draft decodes about 1/16 of the pixels, and rotating "
            "the 1024 image instead of the original avoids a full-size copy."
        )
        if "pyvips" in jpeg:
            sentence += (
                f" pyvips takes {fmt_num(jpeg['pyvips']['wall_ms'])} ms wall / {fmt_num(jpeg['pyvips']['cpu_ms'])} "
                f"ms CPU and {fmt_num(jpeg['pyvips']['rss_growth_mb'], 1)} MB (shrink-on-load as well)."
            )
        lines.append(sentence)
    others = []
    for name in ("png", "webp", "heic"):
        methods = images[name]["methods"]
        if "photosky" in methods and "pillow" in methods:
            speedup = common.ratio(methods["pillow"]["cpu_ms"], methods["photosky"]["cpu_ms"])
            others.append(f"{images[name]['description']} {fmt_ratio(speedup)}")
    if others:
        lines.append(
            "  PNG, WebP and HEIC have no shrink-on-load in Pillow (the whole image is decoded), so PhotoSky's "
            "gain over naive Pillow there comes only from resizing once with `reducing_gap` and rotating the "
            f"small image: CPU speed-up {', '.join(others)}. HEIC decoding in libheif dominates its time."
        )
    heavier = [
        f"{entry['description']} {fmt_num(entry['methods']['photosky']['rss_growth_mb'], 0)} vs "
        f"{fmt_num(entry['methods']['pyvips']['rss_growth_mb'], 0)} MB"
        for entry in images.values()
        if {"photosky", "pyvips"} <= set(entry["methods"])
        and entry["methods"]["photosky"]["rss_growth_mb"] > entry["methods"]["pyvips"]["rss_growth_mb"]
    ]
    slower = []
    for entry in images.values():
        ours, vips = entry["methods"].get("photosky"), entry["methods"].get("pyvips")
        if ours and vips and ours["cpu_ms"] > PREVIEW_TIME_GOAL * vips["cpu_ms"]:
            slower.append(f"{entry['description']} {fmt_ratio(common.ratio(ours['cpu_ms'], vips['cpu_ms']))}")
    if heavier or slower:
        lines.append(
            "  Where pyvips does better (streaming decode, no full-size copy in Python): "
            + "; ".join(
                part
                for part in (
                    f"peak memory {', '.join(heavier)}" if heavier else "",
                    f"CPU {', '.join(slower)} of pyvips'" if slower else "",
                )
                if part
            )
            + ". A whole-image decode in Pillow holds the full RGB(A) raster (and Pillow's WebP decoder goes "
            "through its animation decoder, with its own frame buffers); the worker's 1,536 MB leaves room for "
            "that, so this is a cost of time, not a failure. Not changed: swapping the worker to libvips is a "
            "new native dependency and a new decoder to harden, not a small fix."
        )
    return lines


COLD_GOALS_ROW = "| API cold start"
COLD_HEADING = "## 1. API cold start"
COLD_BULLET = "- **Cold start.**"
COLD_NOTE = "**Cold start measured again:**"


def with_cold_start(previous: str, results: dict[str, Any]) -> str | None:
    """`previous` (a report a whole run wrote) with its cold-start parts from this cold-start-only run: the Goals
    row, section 1 with its run log (carried over, this run added), the Analysis paragraph, and a note under the
    header saying so. Everything else stays the earlier run's. None if `previous` lacks one of those parts."""
    fresh = render(results, previous)

    def line_starting(text: str, prefix: str) -> str | None:
        return next((line for line in text.splitlines() if line.startswith(prefix)), None)

    def section(text: str) -> str | None:
        if COLD_HEADING not in text:
            return None
        start = text.index(COLD_HEADING)
        end = text.find("\n## ", start)
        return text[start : end if end >= 0 else len(text)].rstrip("\n")

    olds = [line_starting(previous, COLD_GOALS_ROW), section(previous), line_starting(previous, COLD_BULLET)]
    news = [line_starting(fresh, COLD_GOALS_ROW), section(fresh), line_starting(fresh, COLD_BULLET)]
    written = line_starting(previous, "Written by `make bench`")
    text = previous
    for old, new in zip(olds, news, strict=True):
        if old is None or new is None:
            return None
        text = text.replace(old, new, 1)
    if written is None:
        return None
    cold = results["coldstart"]
    settings = results["settings"]
    repetitions = (
        f"{settings.cold_rounds} paired rounds per block (up to {settings.cold_max_blocks} blocks) with package.py's "
        f"bytecode and {settings.cold_other_rounds} in each other state"
    )
    text = re.sub(
        r"Repetitions: cold start .*?, warm requests",
        f"Repetitions: cold start {repetitions}, warm requests",
        text,
        count=1,
    )
    note = (
        f"{COLD_NOTE} its Goals row, section 1 and its Analysis paragraph come from `python -m bench --only "
        f"coldstart` on {results['started']} ({'quick' if results['quick'] else 'full'} settings, code "
        f"{results.get('code', 'n/a')}, load average {cold['load']['start']} at its start); every other figure, "
        "the machine table's load averages and the cost model's cold-start input are from the run above."
    )
    lines = [line for line in text.split("\n") if not line.startswith(COLD_NOTE)]
    at = lines.index(written) + 1
    return "\n".join([*lines[:at], "", note, *lines[at:]]).replace("\n\n\n", "\n\n")


# Sections a run of their own (`--only albums`, `--only library`) writes into the report in place: each says in its
# own first paragraph that it comes from such a run, and nothing else in the report changes.
SPLICED_SECTIONS = {
    "albums": (albums.SECTION_HEADING, albums.section),
    "library": (library.SECTION_HEADING, library.section),
    "media": (media.SECTION_HEADING, media.section),
    # Not rendered by `render`: a whole run splices it in after section 10 (bench/__main__.py).
    "realtime": (realtime.SECTION_HEADING, realtime.section),
}
ANALYSIS_HEADING = "## Analysis"


def with_sections(previous: str, results: dict[str, Any]) -> str | None:
    """`previous` with each of SPLICED_SECTIONS this run measured replaced by the fresh one (or, new, put before the
    first section numbered after it, else before the Analysis heading); None if `previous` has neither the section
    nor that heading."""
    text = previous
    results = with_run_logs(results, previous)
    for name, (heading, render_section) in SPLICED_SECTIONS.items():
        if name not in results:
            continue
        fresh = render_section(results).rstrip("\n")
        start = text.find("\n" + heading + "\n")
        if start >= 0:
            start += 1
            end = text.find("\n## ", start)
            end = len(text) if end < 0 else end
            text = text[:start] + fresh + "\n" + text[end:]
            continue
        anchor = next_section_at(text, heading)
        if anchor < 0:
            return None
        text = text[:anchor] + "\n\n" + fresh + text[anchor:]
    return text


_NUMBERED = re.compile(r"^## (\d+)\. ", re.MULTILINE)


def next_section_at(text: str, heading: str) -> int:
    """Where a new section `heading` ("## 9. …") goes in `text`: at the blank line before the first section numbered
    after it, else before the Analysis heading; -1 if there is neither."""
    number = _NUMBERED.match(heading)
    if number is not None:
        for later in _NUMBERED.finditer(text):
            if int(later.group(1)) > int(number.group(1)) and text[: later.start()].endswith("\n\n"):
                return later.start() - 2
    return text.find("\n\n" + ANALYSIS_HEADING)
