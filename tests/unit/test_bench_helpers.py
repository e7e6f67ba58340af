"""The benchmark's pure helpers and its event builder, so `make bench` cannot rot unnoticed. No timing here:
every figure the bench reports is measured by `make bench`, never asserted by a test."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from typing import Any

import pytest
from botocore.stub import Stubber

from bench import common, cost, report, roundtrips, warm
from bench.events import LambdaContext, api_gateway_event
from chalicelib import deps


def test_median_percentile_ratio_and_spread() -> None:
    assert common.median([3.0, 1.0, 2.0]) == 2.0
    assert common.median([1.0, 2.0, 3.0, 4.0]) == 2.5
    assert common.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert common.percentile(list(map(float, range(1, 101))), 0.99) == 99.0
    assert common.ratio(3.0, 2.0) == 1.5
    assert common.ratio(1.0, 0.0) == float("inf")
    assert common.spread([9.0, 10.0, 11.0]) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no values"):
        common.median([])


def test_the_median_interval_widens_to_keep_its_coverage() -> None:
    ten = [float(v) for v in range(1, 11)]
    low, high, coverage = common.median_interval(ten)
    assert (low, high) == (2.0, 9.0)  # the 2nd smallest and 2nd largest of 10: 97.9%
    assert coverage == pytest.approx(1 - 2 * 11 / 1024)
    twenty = [float(v) for v in range(1, 21)]
    assert common.median_interval(twenty)[:2] == (6.0, 15.0)
    assert common.median_interval(list(reversed(twenty)))[:2] == (6.0, 15.0)
    # Five values cannot reach 95%: the whole range, and its coverage (93.75%) says so.
    assert common.median_interval([5.0, 1.0, 3.0, 2.0, 4.0]) == (1.0, 5.0, pytest.approx(0.9375))
    with pytest.raises(ValueError, match="no values"):
        common.median_interval([])


def test_cold_start_pairs_and_three_way_verdict() -> None:
    from bench import coldstart

    assert coldstart.round_order(0) == ["bare", "baseline", "photosky"]
    assert coldstart.round_order(1) == ["bare", "photosky", "baseline"]
    rounds = [
        {"bare": {"end": 10.0}, "baseline": {"end": 110.0}, "photosky": {"end": 115.0}},
        {"bare": {"end": 20.0}, "baseline": {"end": 220.0}, "photosky": {"end": 200.0}},
    ]
    assert coldstart.paired_ratios(rounds) == [pytest.approx(1.05), pytest.approx(0.9)]
    assert coldstart.verdict_with_noise(0.95, 1.08, 1.10) == "met"
    assert coldstart.verdict_with_noise(1.11, 1.30, 1.10) == "missed"
    assert coldstart.verdict_with_noise(1.02, 1.15, 1.10) == "within the noise"
    summary = coldstart.summarise_ratios([1.0, 1.2, 1.1, 1.05, 1.3])
    assert summary["median"] == 1.1
    assert (summary["min"], summary["max"]) == (1.0, 1.3)
    assert summary["verdict"] == "within the noise"


def test_instruction_scripts_stop_at_a_mark_and_skip_the_teardown() -> None:
    from bench import coldstart

    whole = coldstart.instruction_script("photosky")
    assert "_mark(" not in whole
    assert "deps.photo_service()" in whole
    assert whole.rstrip().endswith("_o._exit(0)")
    imported = coldstart.instruction_script("baseline", until="import")
    assert "Chalice(app_name='baseline')" in imported
    assert "boto3.client(" not in imported
    with pytest.raises(ValueError, match="no mark"):
        coldstart.instruction_script("bare", until="import")
    summary = "==1== \n==1== I   refs:      1,335,204,117\n"
    assert coldstart.parse_cachegrind(summary) == 1_335_204_117
    assert coldstart.parse_cachegrind("valgrind: no summary") is None


def test_the_baseline_builds_both_clients_from_one_session_as_boto3_client_does() -> None:
    from bench import coldstart

    baseline = coldstart.BODIES["baseline"]
    assert baseline.count("boto3.client(") == 2
    assert "Session()" not in baseline


def test_interleaving_runs_every_variant_in_turn() -> None:
    assert common.interleaved(["a", "b"], 3) == ["a", "b", "a", "b", "a", "b"]


def test_markdown_table_aligns_numbers_right_and_text_left() -> None:
    text = common.table(["route", "µs", "ratio"], [("GET /x", "1,234", "0.91×"), ("POST /y", "17", "1.20×")])
    lines = text.splitlines()
    assert lines[0] == "| route | µs | ratio |"
    assert lines[1] == "|---|---:|---:|"
    assert lines[2] == "| GET /x | 1,234 | 0.91× |"
    with pytest.raises(ValueError, match="one cell per header"):
        common.table(["a", "b"], [("only one",)])
    assert common.fmt_ratio(float("inf")) == "n/a"
    assert common.verdict(False) == "**missed**"


def test_lambda_environment_is_the_local_stage_and_nothing_from_this_shell() -> None:
    env = common.lambda_environment()
    assert env["TABLE_NAME"] == common.stage_environment()["TABLE_NAME"]
    assert env["COGNITO_USER_POOL_ARN"].startswith("arn:aws:cognito-idp:")
    assert "AWS_ENDPOINT_URL" not in env
    assert "AWS_PROFILE" not in env


def test_dynamodb_item_sizes_and_capacity_units_follow_the_published_rules() -> None:
    item = {"PK": {"S": "USER#a"}, "n": {"N": "12345"}, "tags": {"L": [{"S": "ab"}, {"S": "c"}]}}
    # "PK": 2 + 6; "n": 1 + ((5 digits + 1) // 2 + 1); "tags": 4 + 3 + (1 + 2) + (1 + 1)
    assert roundtrips.item_size(item) == 8 + 5 + 4 + 3 + 3 + 2
    assert roundtrips.read_units(4096, consistent=True) == 1.0
    assert roundtrips.read_units(4097, consistent=True) == 2.0
    assert roundtrips.read_units(100, consistent=False) == 0.5
    assert roundtrips.write_units(1025, transactional=False) == 2.0
    assert roundtrips.write_units(10, transactional=True) == 2.0


def test_cost_arithmetic_from_measured_inputs() -> None:
    measured = cost.Measured(
        api_cpu_ms={"GET /photos": 10.0, "GET /photos/{id}": 2.0, "POST /photos": 2.0},
        api_calls={"GET /photos": 1, "GET /photos/{id}": 1, "POST /photos": 1},
        rru={"GET /photos": 2.0, "GET /photos/{id}": 1.0, "upload worker": 1.0},
        wru={"POST /photos": 10.0, "upload worker": 8.0},
        cold_start_ms=700.0,
        worker_cpu_ms=200.0,
        worker_calls=8,
        preview_bytes=30_000,
    )
    assumptions = {**cost.ASSUMPTIONS, "aws_call_latency_ms": 8.0, "full_vcpu_memory_mb": 1769}
    # 10 ms of CPU at 128 MB is stretched by 1769/128, plus one call's latency, rounded up to a whole ms.
    assert cost.lambda_ms(10.0, 128, 1, assumptions) == 147.0
    assert cost.lambda_ms(10.0, 2048, 1, assumptions) == 18.0
    assert cost.gb_seconds(1000.0, 1024) == 1.0
    items = cost.monthly_cost(measured, 128, assumptions=assumptions)
    assert items["API Gateway REST requests"] == pytest.approx(1_100_000 * 3.50 / 1e6)
    assert items["DynamoDB writes (WRU)"] == pytest.approx(100_000 * 18 * 0.625 / 1e6)
    assert all(value >= 0 for value in items.values())


def test_importtime_parsing_groups_by_top_level_package() -> None:
    from bench import coldstart

    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |     botocore.utils\n"
        "import time:       250 |        350 |   botocore\n"
        "import time:        40 |        390 | app\n"
    )
    rows = coldstart.parse_importtime(stderr)
    assert rows[0] == ("botocore.utils", 100, 100, 2)
    assert coldstart.top_packages(rows) == [("botocore", 350, 2), ("app", 40, 1)]
    again = coldstart.parse_importtime(stderr.replace("  40 |", "  60 |"))
    third = coldstart.parse_importtime(stderr.replace("  40 |", "  50 |"))
    assert coldstart.median_importtime([rows, again, third])[-1] == ("app", 50, 390, 0)


def test_an_api_gateway_event_goes_through_the_real_handler() -> None:
    from app import app

    deps.reset()
    try:
        items = warm.ready_photo_items(1)
        stub = Stubber(deps.dynamodb())
        stub.add_response("get_item", warm.stub_response("get_item", items))
        with stub:
            event = api_gateway_event(
                "GET", "/photos/{photo_id}", sub=warm.OWNER, path_parameters={"photo_id": items[0]["photo_id"]["S"]}
            )
            assert all(isinstance(value, str) for value in event["requestContext"]["authorizer"]["claims"].values())
            response: dict[str, Any] = app(event, LambdaContext())
            stub.assert_no_pending_responses()
        assert response["statusCode"] == 200, response
        body = json.loads(response["body"])
        assert body["status"] == "READY"
        assert set(body["urls"]) == {"original", "large", "small"}
        health = app(api_gateway_event("GET", "/health", sub=warm.OWNER), LambdaContext())
        assert health["statusCode"] == 200
    finally:
        deps.reset()


# The peers' frameworks are bench-only dependencies (requirements-bench.txt): `make bench` installs them, CI does not.
PEER_MODULES = {"powertools": "aws_lambda_powertools", "fastapi": "fastapi"}


def load_handler(framework: str) -> Any:
    if framework in PEER_MODULES:
        pytest.importorskip(PEER_MODULES[framework], reason="a bench-only dependency: `make bench` installs it")
    return warm.load_handler(framework)


def invoke(handler: Any, event: dict[str, Any]) -> Any:
    """Call a Lambda handler on a thread of its own, as Lambda does: Mangum runs FastAPI on an asyncio loop, and a
    loop left running on this thread by an earlier test (Playwright's sync API) would make it refuse to start."""

    def call() -> Any:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return handler(event, LambdaContext())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


@pytest.mark.parametrize("framework", sorted(warm.FRAMEWORKS))
def test_every_framework_spends_the_write_rate_token_before_the_upload_transaction(framework: str) -> None:
    # The warm bench queues exactly these responses for POST /photos; the Stubber refuses any other call, order or
    # count, so a peer that skipped the token (or an app that made one more call) fails here, not in `make bench`.
    route = next(route for route in warm.routes("unused") if route.name == "POST /photos")
    assert route.dynamodb == ("update_item", "transact_write_items")
    handler = load_handler(framework)
    deps.reset()
    try:
        stub = Stubber(deps.dynamodb())
        for operation in route.dynamodb:
            stub.add_response(operation, warm.stub_response(operation, []))
        with stub:
            event = api_gateway_event(route.method, route.resource, sub=warm.OWNER, body=route.body)
            response = invoke(handler, event)
            stub.assert_no_pending_responses()
        assert response["statusCode"] == route.status, response
        assert set(json.loads(response["body"])) == {"photo", "upload"}
    finally:
        deps.reset()


@pytest.mark.parametrize("framework", sorted(warm.FRAMEWORKS))
def test_every_framework_answers_a_spent_write_budget_alike(framework: str) -> None:
    route = next(route for route in warm.routes("unused") if route.name == "POST /photos")
    handler = load_handler(framework)
    deps.reset()
    try:
        stub = Stubber(deps.dynamodb())
        stub.add_client_error("update_item", "ConditionalCheckFailedException")  # the window's count is at the limit
        with stub:
            event = api_gateway_event(route.method, route.resource, sub=warm.OWNER, body=route.body)
            response = invoke(handler, event)
            stub.assert_no_pending_responses()  # refused before the upload's transaction
    finally:
        deps.reset()
    assert response["statusCode"] == 429, response
    assert json.loads(response["body"])["Code"] == "TooManyRequestsError"
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    headers.update({name.lower(): values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()})
    assert int(headers["retry-after"]) >= 1


def test_a_route_is_held_to_its_minimum_plus_what_it_spends_by_design() -> None:
    assert roundtrips.minimum_calls("2 DynamoDB + 5 S3") == 7
    assert roundtrips.minimum_calls("1 DynamoDB") == 1
    assert roundtrips.budget("GET /photos") == 1
    assert roundtrips.budget("POST /photos") == 2  # one transaction + the write-rate token
    assert roundtrips.budget("GET /photos?tag=") == 2  # one query + the photos behind key-only tag copies
    writes = ("POST /users", "POST /photos", "PATCH /photos/{id}", roundtrips.DELETE_TO_TRASH)
    assert all(roundtrips.BY_DESIGN[route] == roundtrips.WRITE_RATE_TOKEN for route in writes)
    # Issue 13: a READY photo's DELETE goes to the trash (no S3 call); a permanent delete from the trash reads the
    # photo, marks it as purging, deletes its objects, then its item: the token and the mark are by design.
    assert roundtrips.budget(roundtrips.DELETE_TO_TRASH) == 3
    assert roundtrips.budget(roundtrips.DELETE_FOR_GOOD) == 5
    extra, reason = roundtrips.BY_DESIGN[roundtrips.DELETE_FOR_GOOD]
    assert extra == 2
    assert roundtrips.WRITE_RATE_TOKEN[1] in reason
    assert roundtrips.PURGING_MARK in reason
    assert set(roundtrips.BY_DESIGN) <= set(roundtrips.MINIMUM)
    assert set(roundtrips.OVER_BUDGET) <= set(roundtrips.MINIMUM)


def test_the_round_trips_section_explains_the_calls_above_the_minimum() -> None:
    def op(calls: dict[str, int], rru: float = 0.0, wru: float = 0.0, **extra: Any) -> dict[str, Any]:
        return {"calls": calls, "attempts": sum(calls.values()), "rru": rru, "wru": wru, **extra}

    operations = {
        "POST /photos": op(
            {"DynamoDB UpdateItem": 1, "DynamoDB TransactWriteItems": 1},
            wru=11.0,
            wru_by_call={"DynamoDB UpdateItem": 1.0, "DynamoDB TransactWriteItems": 10.0},
        ),
        "upload worker": op(
            {"DynamoDB GetItem": 1, "S3 HeadObject": 1, "S3 GetObject": 1, "S3 PutObject": 3, "S3 DeleteObjects": 1}
        ),
        "GET /photos": op({"DynamoDB Query": 1}, rru=2.0, items=10),
        "GET /photos?tag=": op({"DynamoDB Query": 1, "DynamoDB BatchGetItem": 1}, rru=10.5, items=10),
        "GET /photos/{id}": op({"DynamoDB GetItem": 1, "DynamoDB Query": 1}, rru=1.5),
    }
    results: dict[str, Any] = {
        "roundtrips": {
            "operations": operations,
            "minimum": roundtrips.MINIMUM,
            "by_design": roundtrips.BY_DESIGN,
            "write_rate_limit": {"writes": 300, "window_seconds": 60},
            "moto_consumed_capacity_probe": None,
        }
    }
    section = report.roundtrips_section(results)
    assert "+1: the write-rate token" in section
    assert "| GET /photos/{id} | 1× DynamoDB GetItem, 1× DynamoDB Query | **2** |" in section  # over its budget
    assert "at most 300 writes per 60 s" in section
    assert "1.0 WRU per write request" in section
    assert "- **GET /photos/{id}: 2 calls against a budget of 1.** Not explained yet" in section
    analysis = report.roundtrips_analysis(results["roundtrips"])
    assert "Above their budget (explained under section 3's table): GET /photos/{id} (2 against 1)" in analysis
    assert "HEADs the upload" in analysis


def test_the_report_renders_from_partial_results() -> None:
    results = {
        "started": "2026-01-01 00:00 UTC",
        "machine": common.machine_description(),
        "versions": {"chalice": "1"},
        "settings": warm_settings(),
        "quick": True,
        "timings": {},
        "total_seconds": 1.0,
    }
    text = report.render(results)
    assert text.startswith("# PhotoSky performance")


def cold_results(label: str = "") -> dict[str, Any]:
    """Results as `make bench` builds them, the cold-start section's from made-up rounds (nothing is timed)."""
    from bench import coldstart

    def one_round(index: int) -> dict[str, dict[str, float]]:
        base = {"import": 200.0, "dynamodb": 280.0, "media": 330.0, "end": 330.0, "wall": 340.0}
        ours = {key: value * (1.0 + index / 100) for key, value in base.items()}
        return {"bare": {"end": 15.0, "wall": 20.0}, "baseline": base, "photosky": ours}

    rounds = [one_round(index) for index in range(10)]
    states = {state: coldstart.state_summary(rounds) for state in coldstart.STATES}
    pooled = states[coldstart.GOAL_STATE]["cpu_ratio_summary"]
    cold = {
        "goal": coldstart.GOAL,
        "goal_state": coldstart.GOAL_STATE,
        "confidence": coldstart.CONFIDENCE,
        "rounds_per_block": 10,
        "max_blocks": 2,
        "blocks": [{**pooled, "load_at_start": "0.50 0.40 0.30"}],
        "verdict": pooled["verdict"],
        "states": states,
        "instructions": {
            "tool": "valgrind",
            "repetitions": 2,
            "identical": True,
            "net": {"baseline": 1_200e6, "photosky": 1_300e6, "baseline import": 700e6, "photosky import": 800e6},
            "ratio": 1300 / 1200,
            "import_ratio": 8 / 7,
        },
        "load": {"start": "0.50 0.40 0.30", "end": "0.60 0.40 0.30"},
        "module_files": {"baseline": 300, "photosky": 320},
        "importtime_runs": 3,
        "import_total_us": 200_000,
        "top_packages": [("botocore", 40_000, 70)],
        "our_modules": [("chalicelib.photos.models", 6_000, 6_000)],
        "our_modules_self_us": 15_000,
    }
    return {
        "started": "2026-01-01 00:00 UTC",
        "machine": common.machine_description(),
        "versions": {"chalice": "1"},
        "settings": warm_settings(),
        "quick": True,
        "complete": False,
        "code": "abc1234",
        "label": label,
        "timings": {},
        "total_seconds": 1.0,
        "coldstart": cold,
    }


def test_the_cold_start_section_renders_and_keeps_every_earlier_run_in_its_log() -> None:
    first = report.render(cold_results("before | the fix"))
    assert "## 1. API cold start" in first
    assert "1.05×" in first  # the median of the paired ratios 1.00 … 1.09
    assert report.COLD_LOG_MARKER in first
    assert len(report.cold_log_rows(first)) == 1
    assert report.cold_log_rows(first)[0][-1] == "before / the fix"
    second = report.render(cold_results("after"), previous=first)
    rows = report.cold_log_rows(second)
    assert [row[-1] for row in rows] == ["before / the fix", "after"]
    assert report.with_cold_start("# a report without a cold-start section", cold_results()) is None


def test_a_cold_start_only_run_replaces_the_cold_start_parts_and_nothing_else() -> None:
    whole = report.render(cold_results("whole run")).replace(
        "## Analysis", "## 2. Warm request cost\n\nfigures of the whole run\n\n## Analysis"
    )
    again = report.with_cold_start(whole, cold_results("cold start only"))
    assert again is not None
    assert [row[-1] for row in report.cold_log_rows(again)] == ["whole run", "cold start only"]
    assert "## 2. Warm request cost\n\nfigures of the whole run" in again
    assert again.count(report.COLD_NOTE) == 1
    assert again.count(report.COLD_HEADING) == 1
    assert again.count(report.COLD_BULLET) == 1
    once_more = report.with_cold_start(again, cold_results("and again"))
    assert once_more is not None
    assert once_more.count(report.COLD_NOTE) == 1
    assert len(report.cold_log_rows(once_more)) == 3
    assert without_log(once_more) == without_log(again)


def without_log(text: str) -> str:
    before, after = text.split(report.COLD_LOG_MARKER)
    return before + "\n".join(line for line in after.splitlines() if not line.startswith("|"))


def test_without_valgrind_the_cold_start_section_says_so() -> None:
    results = cold_results()
    results["coldstart"]["instructions"] = None
    text = report.render(results)
    assert "valgrind is not installed" in text
    assert "not counted (no valgrind)" in text


def warm_settings() -> Any:
    from bench.__main__ import QUICK

    return QUICK


# --- section 7: albums and sharing ----------------------------------------------------------------------------------


def test_album_operations_are_held_to_their_minimum_plus_what_they_spend_by_design() -> None:
    from bench import albums

    assert set(albums.BY_DESIGN) <= set(albums.MINIMUM)
    assert set(albums.OVER_BUDGET) <= set(albums.MINIMUM)
    assert all(roundtrips.minimum_calls(minimum) >= 1 for minimum, _why in albums.MINIMUM.values())
    assert roundtrips.minimum_calls("1 Cognito + 2 DynamoDB") == 3
    # DynamoDB's 100 items per transaction: 3 per photo added, 2 per photo removed, 2 per deleted album's item.
    assert (albums.add_minimum(1), albums.add_minimum(33), albums.add_minimum(50)) == (1, 1, 2)
    assert (albums.remove_minimum(49), albums.remove_minimum(50)) == (1, 2)
    assert albums.delete_minimum(50, 3, 1) == 2
    assert albums.batches(100) == 1
    assert albums.batches(120) == 2
    assert albums.design("a", (2, "b")) == (3, "a; 2× b")
    assert albums.budget("POST /albums") == 2  # one transaction + the write-rate token
    assert albums.budget("GET /albums/{id}") == 1  # the authorization read is the route's read
    assert albums.budget(albums.PAGE_NAME) == 3  # one Query + the authorization read + key-only entries' photos
    assert albums.budget(albums.list_name(120)) == 3  # one Query + a BatchGetItem per 100 albums
    # Issue 13: a photo's DELETE goes to the trash (no S3 call); `?permanent=true` adds the S3 delete and the mark.
    assert albums.budget(albums.TRASH_ALONE_NAME) == 3
    assert albums.budget(albums.DELETE_PHOTO_NAME) == 6
    assert albums.budget(albums.PURGE_PHOTO_NAME) == 8


def album_results(page_calls: list[str], title_edit: dict[str, int]) -> dict[str, Any]:
    from bench import albums

    def op(calls: dict[str, int], rru: float = 0.0, wru: float = 0.0, **extra: Any) -> dict[str, Any]:
        sequence = [name for name, count in calls.items() for _ in range(count)]
        return {"calls": calls, "attempts": len(sequence), "rru": rru, "wru": wru, "sequence": sequence, **extra}

    page_counts = {name: page_calls.count(name) for name in page_calls}
    operations = {
        "POST /albums": op({"DynamoDB UpdateItem": 1, "DynamoDB TransactWriteItems": 1}, wru=5.0),
        "GET /albums/{id}": op({"DynamoDB BatchGetItem": 1}, rru=2.0, presigned_urls=2),
        "PATCH /albums/{id} (title)": op(title_edit, rru=3.0, wru=3.0),
        albums.PAGE_NAME: {**op(page_counts, rru=29.5, items=50, presigned_urls=150), "sequence": page_calls},
        albums.list_name(120): op({"DynamoDB Query": 1, "DynamoDB BatchGetItem": 2}, rru=125.0, items=30),
        albums.ADD_NAME: op({"DynamoDB UpdateItem": 1, "DynamoDB BatchGetItem": 2}, rru=52.0, wru=305.0),
    }
    return {
        "started": "2026-01-01 00:00 UTC",
        "complete": False,
        "albums": {
            "operations": operations,
            "minimum": albums.MINIMUM,
            "by_design": albums.BY_DESIGN,
            "sizes": albums.scenario_sizes(),
        },
    }


def test_the_albums_section_flags_and_explains_the_calls_above_budget() -> None:
    from bench import albums

    edit = {
        "DynamoDB UpdateItem": 1,
        "DynamoDB BatchGetItem": 1,
        "DynamoDB TransactWriteItems": 1,
        "DynamoDB GetItem": 1,
    }
    results = album_results(albums.PAGE_CALLS, edit)
    section = albums.section(results)
    assert section.startswith(albums.SECTION_HEADING)
    assert "`.venv/bin/python -m bench --only albums`" in section
    assert "| PATCH /albums/{id} (title) | 1× DynamoDB UpdateItem, " in section
    assert "| **4** | 1 DynamoDB (one UpdateItem" in section  # over its budget of 3
    assert (
        "- **PATCH /albums/{id} (title): 4 calls against a budget of 3.** The edit is a TransactWriteItems" in section
    )
    assert "| GET /albums/{id} | 1× DynamoDB BatchGetItem | 1 |" in section  # at its budget: not bold
    assert section.index("| POST /albums |") < section.index("| GET /albums (120 albums) |")  # MINIMUM's order
    assert "125.0 RRU with 120 albums (30 on the page)" in section
    ((what, _goal, measured, verdict),) = albums.goal_rows(results["albums"])
    assert (what, measured, verdict) == (
        "AWS calls, an album page of 50 photos",
        "BatchGetItem → Query → BatchGetItem",
        "met",
    )
    assert "1 of 3 album operations" not in albums.analysis(results["albums"])
    assert "PATCH /albums/{id} (title) (4 against 3)" in albums.analysis(results["albums"])
    # One BatchGetItem more on the page (or a second Query) misses the limit.
    worse = album_results([*albums.PAGE_CALLS, "DynamoDB BatchGetItem"], {"DynamoDB UpdateItem": 1})
    assert albums.goal_rows(worse["albums"])[0][3] == "**missed**"
    assert not albums.page_met(["DynamoDB Query", "DynamoDB BatchGetItem"])  # no authorization read first
    assert albums.page_met(["DynamoDB BatchGetItem", "DynamoDB Query"])  # an empty album: no photos to read
    report_text = report.render({**results, **report_header_fields()})
    assert albums.SECTION_HEADING in report_text
    assert "AWS calls, an album page of 50 photos" in report_text


def report_header_fields() -> dict[str, Any]:
    return {
        "machine": common.machine_description(),
        "versions": {"chalice": "1"},
        "settings": warm_settings(),
        "quick": True,
        "timings": {},
        "total_seconds": 1.0,
    }


def test_the_meter_charges_missing_batch_keys_and_every_item_a_filtered_query_evaluates() -> None:
    import boto3
    from moto import mock_aws

    from devstack import resources

    with mock_aws():
        session = boto3.session.Session(region_name=common.REGION)
        app_client, raw = session.client("dynamodb"), session.client("dynamodb")
        resources.create_table(raw, "metered")
        items = [
            {"PK": {"S": "P"}, "SK": {"S": f"S#{index}"}, "owner": {"S": f"o{index}"}, "pad": {"S": "x" * 3000}}
            for index in range(3)
        ]
        for item in items:
            raw.put_item(TableName="metered", Item=item)
        meter = roundtrips.Meter(app_client, session.client("s3"), raw, "metered")
        app_client.meta.events.register("provide-client-params.dynamodb", meter.remember_read)
        keys = [{"PK": {"S": "P"}, "SK": {"S": "S#0"}}, {"PK": {"S": "P"}, "SK": {"S": "missing"}}]
        app_client.batch_get_item(RequestItems={"metered": {"Keys": keys, "ConsistentRead": True}})
        assert meter.reset().rru == 2.0  # one found (≤ 4 KB) + one missing, each a strongly consistent unit
        found = app_client.query(
            TableName="metered",
            KeyConditionExpression="PK = :pk",
            FilterExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":pk": {"S": "P"}, ":owner": {"S": "o1"}},
            ConsistentRead=True,
        )["Items"]
        assert len(found) == 1
        evaluated = sum(roundtrips.item_size(item) for item in items)  # ~9 KB read, ~3 KB kept
        assert meter.reset().rru == roundtrips.read_units(evaluated, consistent=True) == 3.0


def test_an_album_page_of_50_photos_is_one_query_and_one_batch_get_after_the_authorization_read() -> None:
    # Issue 12: an album page of 50 photos costs at most one Query and one BatchGetItem. Counted on the real handler
    # and moto (no time measured): the route makes the authorization read (album + the caller's membership), then
    # exactly one index Query and one BatchGetItem of the page's photos; the public page reads the link and the album
    # instead. One call more, or one of them per photo, fails here.
    from bench import albums

    with albums.harness() as (h, _subs):
        photos = h.seed_photos(albums.OWNER, albums.PAGE + 1)  # a page of 50 and one more
        album_id = h.seed_album(albums.OWNER, photos)  # as 51 adds would leave it (the bench measures adding)
        page = h.call(
            albums.PAGE_NAME, "GET", "/albums/{album_id}/photos", 200, query={"limit": "50"}, **h.on(album_id)
        )
        measured = h.results[albums.PAGE_NAME]
        assert (
            measured["sequence"]
            == albums.PAGE_CALLS
            == ["DynamoDB BatchGetItem", "DynamoDB Query", "DynamoDB BatchGetItem"]
        )
        assert measured["attempts"] == 3
        assert len(page["items"]) == albums.PAGE
        assert page["next_cursor"]
        assert measured["presigned_urls"] == 3 * albums.PAGE  # URLs are signed locally: no S3 call
        assert albums.page_met(measured["sequence"])
        rest = h.call(
            "next page",
            "GET",
            "/albums/{album_id}/photos",
            200,
            query={"limit": "50", "cursor": page["next_cursor"]},
            **h.on(album_id),
        )
        assert [item["photo_id"] for item in page["items"]] == photos[:0:-1]  # most recently added first
        assert [item["photo_id"] for item in rest["items"]] == photos[:1]
        assert h.results["next page"]["sequence"] == albums.PAGE_CALLS
        token = h.setup("POST", "/albums/{album_id}/links", 201, **h.on(album_id, body={}))["token"]
        shown = h.call(
            "public",
            "GET",
            "/public/albums/{token}",
            200,
            sub=None,
            query={"limit": "50"},
            path_parameters={"token": token},
        )
        assert len(shown["items"]) == albums.PAGE
        assert h.results["public"]["sequence"] == [
            "DynamoDB GetItem",  # the link, by its token's hash
            "DynamoDB GetItem",  # the album
            "DynamoDB Query",
            # No BatchGetItem: the owner's page just read these photos in this environment, and a visitor's page
            # takes them as kept (chalicelib/albums/shown_photos.py); the owner's own pages always read them.
        ]


# --- section 8: the library ------------------------------------------------------------------------------------------


def test_library_operations_are_held_to_their_minimum_plus_what_they_spend_by_design() -> None:
    from bench import library

    assert set(library.BY_DESIGN) <= set(library.MINIMUM)
    assert set(library.OVER_BUDGET) <= set(library.MINIMUM)
    assert all(roundtrips.minimum_calls(minimum) >= 1 for minimum, _why in library.MINIMUM.values())
    # Every listing, the timeline and the trash are one Query; reads spend no write-rate token.
    for listing in (library.LIST, library.LIST_FAVOURITES, library.LIST_TAKEN, library.LIST_TAKEN_RANGE):
        assert library.budget(listing) == 1
    assert library.budget(library.LIST_UPLOADED_RANGE) == library.budget(library.TIMELINE) == 1
    assert library.budget(library.TRASH_LIST) == library.budget(library.LIST_AFTER_TRASH) == 1
    assert library.budget(library.TRASH_ALONE) == 3  # the photo, one transaction, the write-rate token
    assert library.budget(library.TRASH_COVER) == 6  # + its copies, albums and entries, the next cover
    assert library.budget(library.RESTORE_ALONE) == 3
    assert library.budget(library.RESTORE_COVER) == 4  # + the albums it goes back to
    assert library.budget(library.PURGE) == 5  # the photo, the purging mark, S3, the delete, the token
    # 10 photos of 2 tags: one Query, one transaction of 31 items, one DeleteObjects; the mark; the token.
    assert (library.transactions(31), library.transactions(101), library.object_deletes(250)) == (1, 2, 1)
    assert library.budget(library.EMPTY_TRASH) == 5
    # A batch: one BatchGetItem, a transaction per photo (a result each), the token.
    assert library.budget(library.BATCH_FAVOURITE) == library.budget(library.BATCH_TRASH) == 2 + library.BATCH
    assert library.budget(library.UPLOAD_HASHED) == 3  # the token, the claim read, one transaction
    assert library.budget(library.UPLOAD_COPY) == 2
    assert library.budget(library.SETTLE) == 8  # section 3's worker minimum + the claim read
    assert library.budget(library.SETTLE_COPY) == 6  # + removing what an earlier delivery may have written
    assert library.budget(library.DELETE_ACCOUNT) == 13


def test_the_meter_counts_index_writes_batch_writes_and_whole_items_behind_a_projection() -> None:
    import boto3
    from moto import mock_aws

    from devstack import resources

    with mock_aws():
        session = boto3.session.Session(region_name=common.REGION)
        app_client, raw = session.client("dynamodb"), session.client("dynamodb")
        resources.create_table(raw, "metered")
        meter = roundtrips.Meter(app_client, session.client("s3"), raw, "metered")
        app_client.meta.events.register("provide-client-params.dynamodb", meter.remember_read)
        key = {"PK": {"S": "USER#a"}, "SK": {"S": "PHOTO#1"}}
        in_gsi2 = {"GSI2PK": {"S": "USER#a#TAKEN"}, "GSI2SK": {"S": "2026-01-01#1"}, "filler": {"S": "x" * 1500}}
        app_client.put_item(TableName="metered", Item={**key, **in_gsi2})
        tally = meter.reset()
        assert (tally.wru, tally.index_wru, tally.index_wru_by_index) == (2.0, 2.0, {"GSI2": 2.0})  # ~1.5 KB
        assert tally.wru_by_item == {"PHOTO": 2.0}
        # Keys moved within GSI2 (the old entry deleted, the new one put), and the item enters GSI1.
        app_client.update_item(
            TableName="metered",
            Key=key,
            UpdateExpression="SET GSI2PK = :trash, GSI1PK = :purge, GSI1SK = :when REMOVE filler",
            ExpressionAttributeValues={
                ":trash": {"S": "USER#a#TRASH"},
                ":purge": {"S": "PURGE#01"},
                ":when": {"S": "2026-02-01"},
            },
        )
        tally = meter.reset()
        assert tally.index_wru_by_index == {"GSI2": 2.0 + 1.0, "GSI1": 1.0}  # delete of the 1.5 KB entry, put of 1
        # An attribute changed, keys kept: one write per index holding the item; nothing changed: none.
        app_client.update_item(
            TableName="metered",
            Key=key,
            UpdateExpression="SET title = :t",
            ExpressionAttributeValues={":t": {"S": "Harbour"}},
        )
        assert meter.reset().index_wru_by_index == {"GSI1": 1.0, "GSI2": 1.0}
        app_client.update_item(
            TableName="metered",
            Key=key,
            UpdateExpression="SET title = :t",
            ExpressionAttributeValues={":t": {"S": "Harbour"}},
        )
        assert meter.reset().index_wru == 0.0
        # A projection does not make a Query cheaper: DynamoDB charges the whole items it reads.
        app_client.query(
            TableName="metered",
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": "USER#a"}},
            ProjectionExpression="SK",
            ConsistentRead=True,
        )
        assert meter.reset().rru == 1.0
        # BatchWriteItem's writes are sized like any other (one unit each here), and leave both indexes.
        app_client.batch_write_item(
            RequestItems={
                "metered": [
                    {"DeleteRequest": {"Key": key}},
                    {"PutRequest": {"Item": {"PK": {"S": "USER#a"}, "SK": {"S": "MONTH#2026-01"}}}},
                ]
            }
        )
        tally = meter.reset()
        assert (tally.wru, tally.wru_by_item) == (2.0, {"PHOTO": 1.0, "MONTH": 1.0})
        assert tally.index_wru_by_index == {"GSI1": 1.0, "GSI2": 1.0}
    assert roundtrips.item_kind({"PK": {"S": "USER#a"}, "SK": {"S": "SHA256#ab"}}) == "SHA256"
    assert roundtrips.index_writes(None, None) == {}


def library_results(empty_trash_calls: int) -> dict[str, Any]:
    from bench import library

    def op(calls: dict[str, int], rru: float = 0.0, wru: float = 0.0, **extra: Any) -> dict[str, Any]:
        sequence = [name for name, count in calls.items() for _ in range(count)]
        return {"calls": calls, "attempts": len(sequence), "rru": rru, "wru": wru, "sequence": sequence, **extra}

    per_photo = (empty_trash_calls - 2) // library.BATCH
    operations = {
        library.LIST: op({"DynamoDB Query": 1}, rru=6.0, items=30),
        library.TIMELINE: op({"DynamoDB Query": 1}, rru=1.0, items=12),
        library.TRASH_ALONE: op(
            {"DynamoDB UpdateItem": 1, "DynamoDB GetItem": 1, "DynamoDB TransactWriteItems": 1},
            rru=1.0,
            wru=9.0,
            index_wru=3.0,
        ),
        library.EMPTY_TRASH: op(
            {
                "DynamoDB UpdateItem": 1,
                "DynamoDB Query": 1,
                "DynamoDB GetItem": library.BATCH * (per_photo - 3),
                "DynamoDB TransactWriteItems": library.BATCH * 2,
                "S3 DeleteObjects": library.BATCH,
            },
            wru=101.0,
            index_wru=70.0,
        ),
        library.BATCH_FAVOURITE: op(
            {"DynamoDB UpdateItem": 1, "DynamoDB BatchGetItem": 1, "DynamoDB TransactWriteItems": library.BATCH},
            wru=21.0,
            index_wru=20.0,
            index_wru_by_index={"GSI1": 10.0, "GSI2": 10.0},
        ),
        library.SETTLE: op(
            {"DynamoDB GetItem": 2, "S3 GetObject": 1, "S3 PutObject": 3, "DynamoDB TransactWriteItems": 1},
            rru=2.0,
            wru=8.0,
            index_wru=2.0,
            wru_by_item={"PHOTO": 2.0, "USAGE": 2.0, "MONTH": 2.0, "SHA256": 2.0},
            index_wru_by_index={"GSI1": 1.0, "GSI2": 1.0},
        ),
    }
    return {
        "started": "2026-01-01 00:00 UTC",
        "complete": False,
        "library": {
            "operations": operations,
            "minimum": library.MINIMUM,
            "by_design": library.BY_DESIGN,
            "sizes": {**library.scenario_sizes(), "work_budget_seconds": 20},
        },
    }


def test_the_library_section_flags_and_explains_the_calls_above_budget() -> None:
    from bench import library

    results = library_results(empty_trash_calls=42)
    section = library.section(results)
    assert section.startswith(library.SECTION_HEADING)
    assert "`.venv/bin/python -m bench --only library`" in section
    assert f"| {library.LIST} | 1× DynamoDB Query | 1 | 1 DynamoDB (one Query" in section  # at budget: not bold
    assert f"| {library.EMPTY_TRASH} | 1× DynamoDB UpdateItem, 1× DynamoDB Query, 10× DynamoDB GetItem, " in section
    assert "| **42** |" in section
    assert f"- **{library.EMPTY_TRASH}: 42 calls against a budget of 5.** `empty_trash` reads the trash once" in section
    assert "| 101.0 | 70.0 |" in section  # table and index write units in their own columns
    # Issue 13's share of a settle, from the measured split: 5 before, the month, the claim, GSI2.
    assert "The worker's settle writes 10.0 WRU: 5.0 for what it wrote before issue 13" in section
    assert "2.00× the write units" in section
    assert "GSI1 10.0: each entering the favourites' partition; GSI2 10.0" in section
    assert "4.0 per photo after the write-rate token and the Query" in section
    assert section.index(f"| {library.LIST} |") < section.index(f"| {library.TIMELINE} |")  # MINIMUM's order
    # Within budget (the settle's HEAD gone), no bullet for it; the analysis names only what is above.
    assert f"- **{library.SETTLE}:" not in section
    analysis = library.analysis(results["library"])
    assert "5 of 6 library operations are within their budget" in analysis
    assert f"{library.EMPTY_TRASH} (42 against 5)" in analysis
    report_text = report.render({**results, **report_header_fields()})
    assert library.SECTION_HEADING in report_text
    assert "- **The library (section 8).**" in report_text


def test_a_section_run_alone_is_written_in_place_and_nothing_else_changes() -> None:
    from bench import library

    results = library_results(empty_trash_calls=42)
    fresh = library.section(results)
    before = "# PhotoSky performance\n\nintro\n\n## 7. Albums\n\nold albums\n\n## Analysis: where\n\n- a bullet\n"
    inserted = report.with_sections(before, results)
    assert inserted == before.replace("\n\n## Analysis", "\n\n" + fresh + "\n\n## Analysis")
    # Run again: the section is replaced, not added twice; the rest is untouched.
    again = report.with_sections(inserted or "", library_results(empty_trash_calls=22))
    assert again is not None
    assert again.count(library.SECTION_HEADING) == 1
    assert "| **22** |" in again
    assert "| **42** |" not in again
    assert again.startswith(before.split("## Analysis", maxsplit=1)[0])
    assert again.endswith("\n\n## Analysis: where\n\n- a bullet\n")
    assert report.with_sections("# no analysis heading\n", results) is None


def test_the_library_listings_are_one_query_each_on_the_real_handler() -> None:
    # Issue 13's reads: every listing, the timeline and the trash answer in one Query (no read per photo), counted on
    # the real handler and moto (no time measured). Held to at most their budget, so a fix elsewhere never fails it.
    from bench import albums, library

    with albums.harness() as (h, _subs):
        photos = library.seed_library(h, library.OWNER, 12)
        queries = {
            library.LIST: {"limit": "5"},
            library.LIST_FAVOURITES: {"favorite": "true"},
            library.LIST_TAKEN: {"sort": "taken", "limit": "5"},
            library.LIST_TAKEN_RANGE: {"sort": "taken", "from": "2025-10-01", "to": "2025-10-31"},
            library.LIST_UPLOADED_RANGE: {"from": "2026-09-03", "to": "2026-09-06"},
        }
        listed = {name: h.call(name, "GET", "/photos", 200, query=query) for name, query in queries.items()}
        # Pages of 5; 3 favourites (every 4th); taken 1, 7, 13, 19, 25 and 31 October; uploaded 3 to 6 September.
        assert [len(listed[name]["items"]) for name in queries] == [5, 3, 5, 6, 4]
        timeline = h.call(library.TIMELINE, "GET", "/photos/timeline", 200)
        assert sum(bucket["count"] for bucket in timeline["buckets"]) == 12
        h.setup("POST", "/photos/batch", 200, body={"action": "trash", "photo_ids": photos[-3:]})
        trash = h.call(library.TRASH_LIST, "GET", "/trash", 200)
        assert [item["photo_id"] for item in trash["items"]] == photos[:-4:-1]  # most recently trashed first
        for name in [*queries, library.TIMELINE, library.TRASH_LIST]:
            assert h.results[name]["sequence"] == ["DynamoDB Query"], name
            assert sum(h.results[name]["calls"].values()) <= library.budget(name)
        assert h.results[library.LIST]["presigned_urls"] == 3 * 5  # signed locally: no S3 call


def test_trashing_reads_each_photo_once_and_an_album_cover_s_albums_in_one_batch_get() -> None:
    # Trashing a photo reads the albums holding it and its entries in them in one BatchGetItem (it was two), and a
    # batch's first attempt per photo uses the batch's own read (no GetItem per photo). Counted on the real handler and
    # moto (no time measured); held to at most the budget, so a fix elsewhere (an album flag sparing the Query of the
    # photo's album copies) never fails it.
    from bench import albums, library

    with albums.harness() as (h, _subs):
        h.setup("POST", "/users", 201, body={"display_name": "Olga"})
        photos = library.seed_library(h, library.OWNER, 6)
        album_id = str(h.setup("POST", "/albums", 201, body={"title": "Harbour"})["album_id"])
        h.setup("POST", "/albums/{album_id}/photos", 200, **h.on(album_id, photo_ids=photos[:2]))
        h.call(library.TRASH_COVER, "DELETE", "/photos/{photo_id}", 204, **library.photo_path(photos[0]))
        cover = h.results[library.TRASH_COVER]["calls"]
        assert cover["DynamoDB BatchGetItem"] == 1
        assert "S3 DeleteObjects" not in cover  # the trash keeps the objects for a restore
        assert sum(cover.values()) <= library.budget(library.TRASH_COVER)
        album = h.request("GET", "/albums/{album_id}", 200, **h.on(album_id))
        assert album["cover_photo_id"] == photos[1]  # the newest photo left
        body = {"action": "trash", "photo_ids": photos[2:]}
        trashed = h.call(library.BATCH_TRASH, "POST", "/photos/batch", 200, body=body)
        assert [result["status"] for result in trashed["results"]] == ["done"] * 4
        calls = h.results[library.BATCH_TRASH]["calls"]
        assert "DynamoDB GetItem" not in calls
        assert (calls["DynamoDB BatchGetItem"], calls["DynamoDB TransactWriteItems"]) == (1, 4)
        assert calls.get("DynamoDB Query", 0) <= 4  # at most the album copies of each, which the flag would spare


def test_every_upload_in_a_bench_has_bytes_of_its_own() -> None:
    # Since issue 13 the worker rejects a second upload of the same bytes as a duplicate: the benches that upload
    # more than one photo (sections 5, 7 and 8) send a variant each.
    samples = [roundtrips.photo_bytes(variant) for variant in range(3)]
    assert len(set(samples)) == 3
    assert all(sample.startswith(b"\xff\xd8") for sample in samples)
    assert roundtrips.photo_bytes(1) == roundtrips.photo_bytes(1)  # the same variant: the same bytes, run to run


# --- section 9 (bench/media.py): media URLs, CDN against presigning --------------------------------------------------


def test_media_goals_are_met_only_when_every_paired_ratio_is_within_them() -> None:
    from bench import media

    assert media.ratio_summary([0.01, 0.02, 0.03], 0.05)["verdict"] == "met"
    assert media.ratio_summary([0.06, 0.07], 0.05)["verdict"] == "missed"
    within = media.ratio_summary([0.04, 0.06, 0.05], 0.05)
    assert (within["verdict"], within["median"], within["min"], within["max"]) == ("within the noise", 0.05, 0.04, 0.06)
    assert media.verdict_cell("within the noise").startswith("**within the noise**")


def test_media_urls_and_requests_are_told_apart_by_kind() -> None:
    from bench import media

    cdn = "https://d1.cloudfront.net"
    signed = f"{cdn}/previews/u/p/small.jpg?Policy=a&Signature=b&Key-Pair-Id=K1&Hash-Algorithm=SHA256"
    assert media.url_kind(signed, cdn) == "cdn"
    assert media.url_kind(signed.replace("&Hash-Algorithm=SHA256", ""), cdn) == "other"  # SHA-1 is not ours
    assert media.url_kind(signed, "https://elsewhere.example") == "other"
    assert media.url_kind("https://b.s3.amazonaws.com/k?X-Amz-Signature=00", cdn) == "s3"
    stack = {"api_url": "http://127.0.0.1:1", "media_url": "http://127.0.0.1:2", "web_url": "http://127.0.0.1:3"}
    kinds = [
        media.request_kind(url, **stack)
        for url in (
            "http://127.0.0.1:1/photos?limit=24",
            "http://127.0.0.1:2/previews/u/p/small.jpg?Policy=x",
            "http://127.0.0.1:2/originals/u/p",
            "http://127.0.0.1:3/app.js",
            "http://127.0.0.1:4/",  # the emulated Cognito
            "http://127.0.0.1:10/photos",  # another port that starts like the API's
        )
    ]
    assert kinds == ["api", "previews", "other", "web", "other", "other"]


def test_a_visit_counts_cache_hits_preflights_and_bytes_received_per_kind() -> None:
    from bench import media

    visit = media.Visit()
    visit.asked.update(api=1, previews=2)
    visit.url_of = {"1": "A/photos", "2": "A/photos", "3": "M/previews/a", "4": "M/previews/b"}
    visit.preflights = {"1"}
    visit.cached = {"4"}
    visit.wire_bytes = {"1": 300, "2": 5_000, "3": 9_000, "4": 0}
    summary = visit.summary(lambda url: "api" if url.startswith("A") else "previews")
    assert summary["api"] == {"asked": 1, "network": 2, "preflights": 1, "cache": 0, "bytes": 5_300}
    assert summary["previews"] == {"asked": 2, "network": 1, "preflights": 0, "cache": 1, "bytes": 9_000}
    assert summary["web"]["network"] == summary["other"]["network"] == 0


def test_signing_figures_are_ratios_to_botocore_in_the_same_process() -> None:
    from bench import media

    def process(botocore: float, memo: float) -> dict[str, float]:
        figures = dict.fromkeys(media.SIGN_FIGURES, 1.0)
        figures.update(botocore_us=botocore, memo_list_us=memo, page_new_window_ms=40.0)
        return figures

    # The second process is twice as slow at everything: its ratio is the first's, not its raw figure's.
    summary = media.summarise_signing([process(400.0, 2.0), process(800.0, 4.0), process(300.0, 6.0)])
    memo = summary["ratios"]["memo_list_us"]
    assert memo["ratios"] == [pytest.approx(0.005), pytest.approx(0.005), pytest.approx(0.02)]
    assert (memo["median"], memo["verdict"]) == (pytest.approx(0.005), "met")
    assert summary["botocore_us"] == {"median": 400.0, "min": 300.0, "max": 800.0}
    # An album page: one signature a photo, two URLs a photo.
    assert summary["per_url_us"]["page_new_window_per_url_us"] == pytest.approx(40_000 / (2 * media.PHOTOS))
    assert summary["processes"] == 3


def test_warm_list_ratios_pair_the_variants_of_one_cycle() -> None:
    from bench import media

    route = "GET /photos?limit=10"
    samples = {
        "photosky-cdn": {route: [1_000.0, 2_000.0]},
        "photosky-s3": {route: [10_000.0, 10_000.0]},
        "powertools-cdn": {route: [1_500.0, 1_500.0]},
        "powertools-s3": {route: [12_000.0, 9_000.0]},
    }
    warm = media.summarise_warm(samples)
    assert warm["cdn_vs_s3"][route]["ratios"] == [0.1, 0.2]
    assert warm["cdn_vs_s3"][route]["verdict"] == "met"
    assert warm["vs_peer"]["s3"][route]["ratios"] == [pytest.approx(10 / 12), pytest.approx(10 / 9)]
    assert warm["spreads"]["photosky-cdn"][route] == pytest.approx(1_000 / 1_500)


def test_the_list_routes_hand_out_cloudfront_urls_with_the_cdn_configured() -> None:
    # What the media section's warm children run (bench/warm.py's run_routes on bench/media.py's routes), with no
    # time measured: every URL of both pages is a CloudFront signed URL that verifies. In a fresh interpreter with
    # the child's environment, as the bench runs it: what earlier tests left in this process is no part of it.
    import os
    import subprocess
    import sys

    from bench import media
    from tests.support.media import public_key_of, signed_policy

    child = (
        "import json\n"
        "from bench import common, media, warm\n"
        "common.apply_lambda_environment()\n"
        "results = warm.run_routes('photosky', media.list_routes, requests=1, warmup=1)\n"
        "print(json.dumps({route: entry['body'] for route, entry in results['routes'].items()}))\n"
    )
    environment = {**os.environ, **common.media_environment()}
    done = subprocess.run(
        [sys.executable, "-c", child],
        cwd=common.PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    bodies = json.loads(done.stdout.strip().splitlines()[-1])
    for route, limit in (("GET /photos?limit=10", 10), ("GET /photos?limit=100", 100)):
        items = json.loads(bodies[route])["items"]
        urls = [url for item in items for url in item["urls"].values()]
        assert len(items) == limit
        assert {media.url_kind(url, common.MEDIA_URL) for url in urls} == {"cdn"}
    signed_policy(urls[0], public_key_of(common.media_key_json()))


def test_the_cold_start_signs_the_first_lists_urls_and_builds_no_s3_client() -> None:
    from bench import coldstart

    assert coldstart.GOAL == 1.0
    assert coldstart.PHASES == ("import", "dynamodb", "media", "end")
    photosky, baseline = coldstart.BODIES["photosky"], coldstart.BODIES["baseline"]
    assert "deps.media().urls(" in photosky
    assert "original=True" in photosky
    assert "filename=" in photosky
    assert "deps.s3()" not in photosky
    for body in (photosky, baseline):
        assert [line for line in body.splitlines() if line.startswith("_mark(")] == [
            "_mark('import')",
            "_mark('dynamodb')",
            "_mark('media')",
        ]
    # The key is fixed (valgrind's counts repeat only if the signatures do) and makes CloudFront URLs.
    assert common.media_key_json() == common.media_key_json()
    assert set(common.media_environment()) == {"PHOTOSKY_MEDIA_URL", "PHOTOSKY_MEDIA_KEY"}


def media_results(second_visit_network: int = 0, cdn_ratio: float = 0.1) -> dict[str, Any]:
    from bench import media

    signing = media.summarise_signing(
        [{**dict.fromkeys(media.SIGN_FIGURES, 50.0), "botocore_us": 400.0, "memo_list_us": 3.0} for _ in range(3)]
    )
    signing["list_rounds"] = 10
    routes = ("GET /photos?limit=10", "GET /photos?limit=100")
    samples = {
        variant: {route: [cdn_ratio * 1000.0 if variant.endswith("cdn") else 1000.0] * 2 for route in routes}
        for variant in media.WARM_VARIANTS
    }
    kinds = {kind: {"asked": 1, "network": 1, "preflights": 0, "cache": 0, "bytes": 2048} for kind in media.KINDS}
    second = {**kinds, "previews": {**kinds["previews"], "network": second_visit_network}}
    return {
        **report_header_fields(),
        "started": "2026-01-01 00:00 UTC",
        "complete": False,
        "code": "abc1234",
        "media": {
            "signing": signing,
            "warm": {
                **media.summarise_warm(samples),
                "cycles": 2,
                "requests": dict.fromkeys(routes, 10),
                "profile": {"areas": {"PhotoSky code (chalicelib)": 0.5}, "top": [("x.py:1 f", 0.2)]},
                "profile_route": routes[1],
            },
            "browser": {
                "photos": 100,
                "first": kinds,
                "second": second,
                "first_seconds": 2.0,
                "second_seconds": 1.0,
                "same_preview_urls": True,
                "previews_shown": 100,
                "endpoint_requests_during_second": 0,
                "chromium": "chromium",
                "attempts": 1,
            },
            "load_start": "0.50 0.40 0.30",
            "load_end": "0.60 0.40 0.30",
        },
    }


def test_the_media_section_renders_its_goals_and_keeps_every_run_in_its_log() -> None:
    from bench import media

    results = media_results()
    rows = media.goal_rows(results["media"])
    assert [row[3] for row in rows] == ["met"] * 4
    assert rows[0][2].startswith("0.007× (0.007–0.007×): 3.0 vs 400 µs")
    assert media.goal_rows(media_results(second_visit_network=3)["media"])[-1][3] == "**missed**"
    assert media.goal_rows(media_results(cdn_ratio=0.3)["media"])[1][3] == "**missed**"
    first = report.render(results)
    assert media.SECTION_HEADING in first
    assert "| media URL, warm owner list (CDN), CPU per URL |" in first  # in the Goals table
    assert "- **Media URLs (section 9).**" in first
    assert len(report.log_rows(first, media.LOG_MARKER, len(media.LOG_HEADERS))) == 1
    again = report.render(media_results(second_visit_network=3), previous=first)
    logged = report.log_rows(again, media.LOG_MARKER, len(media.LOG_HEADERS))
    assert [row[-2] for row in logged] == ["0 of 100 (endpoint: 0)", "3 of 100 (endpoint: 0)"]
    assert logged[-1][-1] == "met, missed"


def test_a_media_run_writes_section_9_in_place_before_section_10() -> None:
    from bench import media

    report_text = "# R\n\n## 8. Library\n\nold\n\n## 10. Formats\n\nformats\n\n## Analysis\n\n- a\n"
    once = report.with_sections(report_text, media_results())
    assert once is not None
    assert once.index("## 8. Library") < once.index(media.SECTION_HEADING) < once.index("## 10. Formats")
    twice = report.with_sections(once, media_results(second_visit_network=2))
    assert twice is not None
    assert twice.count(media.SECTION_HEADING) == 1
    assert "formats\n\n## Analysis" in twice
    assert len(report.log_rows(twice, media.LOG_MARKER, len(media.LOG_HEADERS))) == 2
    # Without section 10 it goes before the Analysis, as sections 7 and 8 do.
    alone = report.with_sections("# R\n\n## 8. Library\n\nold\n\n## Analysis\n\n- a\n", media_results())
    assert alone is not None
    assert alone.index(media.SECTION_HEADING) < alone.index("## Analysis")


# --- section 10 (bench/formats.py): SSIM, the quality search, srcset, the splice --------------------------------


def _plane(rows: list[list[float]]) -> Any:
    from PIL import Image

    plane = Image.new("F", (len(rows[0]), len(rows)))
    plane.putdata([value for row in rows for value in row])
    return plane


def _ssim_by_definition(x: list[list[float]], y: list[list[float]]) -> float:
    """Wang et al.'s SSIM with an 11-tap Gaussian window (σ 1.5), summed pixel by pixel, border left out."""
    from bench import formats

    taps, radius = formats.gaussian_taps(), formats.SSIM_RADIUS
    height, width = len(x), len(x[0])
    values = []
    for cy in range(radius, height - radius):
        for cx in range(radius, width - radius):
            mx = my = sxx = syy = sxy = 0.0
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    weight = taps[dy + radius] * taps[dx + radius]
                    a, b = x[cy + dy][cx + dx], y[cy + dy][cx + dx]
                    mx, my = mx + weight * a, my + weight * b
                    sxx, syy, sxy = sxx + weight * a * a, syy + weight * b * b, sxy + weight * a * b
            top = (2 * mx * my + formats.SSIM_C1) * (2 * (sxy - mx * my) + formats.SSIM_C2)
            bottom = (mx * mx + my * my + formats.SSIM_C1) * (sxx - mx * mx + syy - my * my + formats.SSIM_C2)
            values.append(top / bottom)
    return sum(values) / len(values)


def test_ssim_is_wang_et_al_gaussian_ssim_summed_by_hand() -> None:
    import random

    from bench import formats

    rng = random.Random(7)  # noqa: S311 - test pixels
    x = [[float(rng.randrange(256)) for _ in range(23)] for _ in range(19)]
    y = [[min(255.0, max(0.0, value + rng.randrange(-40, 41))) for value in row] for row in x]
    assert formats.ssim(_plane(x), _plane(y)) == pytest.approx(_ssim_by_definition(x, y), abs=1e-5)
    assert sum(formats.gaussian_taps()) == pytest.approx(1.0)
    assert len(formats.gaussian_taps()) == 11


def test_ssim_is_one_for_the_same_plane_and_the_luminance_term_for_flat_ones() -> None:
    import random

    from bench import formats

    rng = random.Random(8)  # noqa: S311 - test pixels
    x = _plane([[float(rng.randrange(256)) for _ in range(30)] for _ in range(20)])
    assert formats.ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    # Flat planes have no variance: SSIM is (2ab + C1) / (a² + b² + C1).
    a, b = 100.0, 140.0
    flat_a, flat_b = _plane([[a] * 16] * 16), _plane([[b] * 16] * 16)
    expected = (2 * a * b + formats.SSIM_C1) / (a * a + b * b + formats.SSIM_C1)
    assert formats.ssim(flat_a, flat_b) == pytest.approx(expected, rel=1e-5)


def test_ssim_falls_as_the_distortion_grows_and_is_symmetric() -> None:
    import random

    from bench import formats

    rng = random.Random(9)  # noqa: S311 - test pixels
    base = [[float(rng.randrange(40, 216)) for _ in range(32)] for _ in range(24)]
    noise = [[float(rng.randrange(-1, 2)) for _ in range(32)] for _ in range(24)]

    def distorted(amount: float) -> Any:
        return _plane([[v + amount * n for v, n in zip(r, m, strict=True)] for r, m in zip(base, noise, strict=True)])

    scores = [formats.ssim(_plane(base), distorted(amount)) for amount in (2, 8, 32)]
    assert scores[0] > scores[1] > scores[2]
    other = distorted(8)
    assert formats.ssim(_plane(base), other) == pytest.approx(formats.ssim(other, _plane(base)), abs=1e-6)


def test_ssim_refuses_planes_it_cannot_compare() -> None:
    from bench import formats

    with pytest.raises(ValueError, match="sizes differ"):
        formats.ssim(_plane([[0.0] * 20] * 20), _plane([[0.0] * 21] * 20))
    with pytest.raises(ValueError, match="too small"):
        formats.ssim(_plane([[0.0] * 10] * 30), _plane([[0.0] * 10] * 30))


@pytest.mark.parametrize(
    "curve",
    [
        lambda q: 1 - 0.2 * 2.718281828 ** (-q / 25),  # SSIM-like: steep at low qualities, flat at high
        lambda q: q / 100,
        lambda q: 1 / (1 + 2.718281828 ** (-(q - 60) / 3)),  # almost a step
        lambda q: (q // 7) / 20,  # plateaus
    ],
)
def test_the_quality_search_finds_the_lowest_quality_reaching_the_target(curve: Any) -> None:
    from bench import formats

    for answer in range(1, 101, 3):
        target = curve(answer)
        truth = next(q for q in range(1, 101) if curve(q) >= target)
        for hint in (None, 1, truth, truth - 3, truth + 3, truth + 15, 100):
            calls: list[int] = []

            def score(quality: int, calls: list[int] = calls) -> float:
                calls.append(quality)
                return curve(quality)

            assert formats.lowest_quality_reaching(target, score, hint=hint) == truth
            assert len(calls) <= 13  # never more than a bisection of 1..100 and a gallop
            assert len(set(calls)) == len(calls)  # no quality encoded twice


def test_the_quality_search_is_frugal_with_a_good_hint_and_says_when_nothing_reaches() -> None:
    from bench import formats

    calls: list[int] = []

    def score(quality: int) -> float:
        calls.append(quality)
        return quality / 100

    assert formats.lowest_quality_reaching(0.62, score, hint=62) == 62
    assert len(calls) <= 3  # the hint, a step below it, the neighbour the secant aims at
    assert formats.lowest_quality_reaching(1.5, lambda q: q / 100) is None
    assert formats.lowest_quality_reaching(0.0, lambda q: q / 100) == 1
    assert formats.lowest_quality_reaching(0.3, lambda q: q / 100, low=40, high=60) == 40
    with pytest.raises(ValueError, match="low must not exceed high"):
        formats.lowest_quality_reaching(0.5, lambda q: q / 100, low=60, high=40)


def test_srcset_picks_as_firefox_and_safari_and_as_chrome() -> None:
    from bench import formats

    def pick(slot: float, ratio: float, engine: str, widths: tuple[int, ...] = (256, 1024, 2048)) -> int:
        return formats.srcset_pick(widths, slot, ratio, engine=engine)

    # Firefox, Safari: the least dense candidate at least as dense as the screen, else the densest.
    assert pick(238, 1.0, "webkit") == 256
    assert pick(238, 2.0, "webkit") == 1024
    assert pick(358, 3.0, "webkit") == 2048  # a 3× phone's photo view: 1024 / 358 = 2.86 falls short of 3
    assert pick(752, 4.0, "gecko") == 2048
    assert pick(200, 3.0, "webkit", (256, 1024)) == 1024
    # Chrome (Blink): the denser of the two around the ratio only from their densities' geometric mean up.
    assert pick(358, 3.0, "blink") == 1024  # √(2.86 × 5.72) = 4.04 > 3: keeps the 1024
    assert pick(752, 2.0, "blink") == 2048  # √(1.36 × 2.72) = 1.93 ≤ 2
    assert pick(238, 2.0, "blink") == 256  # √(1.08 × 4.30) = 2.15 > 2: upscales the 256
    assert pick(238, 2.0, "blink", (256, 512, 1024, 2048)) == 512
    assert pick(300, 1.0, "blink") == 1024  # on a 1× screen never below 1×
    assert pick(200, 20.0, "blink") == 2048
    with pytest.raises(ValueError, match="unknown engine"):
        pick(200, 1.0, "presto")


def test_the_views_follow_the_web_clients_stylesheet() -> None:
    from bench import formats

    views = {(view["view"].split(" (")[0], view["screen"]): view for view in formats.views()}
    assert views[("photo view", "desktop, 1×")]["slot_css"] == pytest.approx(752)  # (1152 - 24) × 2/3
    assert views[("photo view", "phone, 3×")]["needed_px"] == pytest.approx(358 * 3)
    assert views[("gallery page", "desktop, 1×")]["slot_css"] == pytest.approx((1152 - 5 * 16) / 6)  # 6 columns
    assert views[("gallery page", "phone, 3×")]["slot_css"] == pytest.approx((358 - 16) / 2)  # 2 columns
    assert formats.draft_scale(4032, 1024) == 2
    assert formats.draft_scale(4032, 2048) == 1
    assert formats.draft_scale(6000, 1024) == 4


def test_the_formats_section_replaces_itself_or_goes_before_the_analysis() -> None:
    from bench import formats

    heading = formats.SECTION_HEADING
    fresh = f"{heading}\n\nnew figures\n"
    report_without = "# Report\n\n## 8. Library\n\ntable\n\n## Analysis\n\n- notes\n"
    inserted = formats.with_section(report_without, fresh)
    assert inserted == f"# Report\n\n## 8. Library\n\ntable\n\n{heading}\n\nnew figures\n\n## Analysis\n\n- notes\n"
    replaced = formats.with_section(inserted or "", f"{heading}\n\nnewer figures\n")
    assert replaced is not None
    assert "newer figures" in replaced
    assert "new figures\n" not in replaced
    assert replaced.count(heading) == 1
    assert replaced.endswith("## Analysis\n\n- notes\n")
    assert formats.with_section("# A report with no analysis\n", fresh) is None


# --- section 11 (bench/realtime.py): the client's schedule, its simulation, the summaries, the splice --------------

SETTLE_JS_LIKE = """
import { ApiError } from "./api.js";

const POLL_DELAYS_MS = [300, 500, 1_000];
// Past this the last known copy is returned.
const GIVE_UP_MS = 2 * 60 * 1000;
const MAX_WAIT_SECONDS = 60;
const CHECK_WHILE_CONNECTED_MS = 30_000;
"""


def test_the_bench_reads_the_web_clients_own_polling_schedule() -> None:
    from bench import realtime

    schedule = realtime.client_schedule(SETTLE_JS_LIKE)
    assert schedule == realtime.Schedule((300, 500, 1000), give_up_ms=120_000, check_while_connected_ms=30_000)
    assert [schedule.delay(attempt) for attempt in range(5)] == [300, 500, 1000, 1000, 1000]  # the last repeats
    # The real client's file parses too (the bench polls on it, never on a copy).
    shipped = realtime.load_schedule()
    assert shipped.poll_delays_ms
    assert all(delay > 0 for delay in shipped.poll_delays_ms)
    assert shipped.give_up_ms > sum(shipped.poll_delays_ms)


@pytest.mark.parametrize(
    ("source", "named"),
    [
        (SETTLE_JS_LIKE.replace("const GIVE_UP_MS", "let GIVE_UP_MS"), "GIVE_UP_MS"),
        (SETTLE_JS_LIKE.replace("[300, 500, 1_000]", "DELAYS.slice()"), "POLL_DELAYS_MS"),
        (SETTLE_JS_LIKE.replace("[300, 500, 1_000]", "[]"), "POLL_DELAYS_MS"),
        (SETTLE_JS_LIKE.replace("[300, 500, 1_000]", "[300, 0.5e3]"), "POLL_DELAYS_MS"),
        (SETTLE_JS_LIKE.replace("30_000", "HALF_A_MINUTE"), "CHECK_WHILE_CONNECTED_MS"),
    ],
)
def test_a_schedule_the_bench_cannot_read_is_a_clear_error(source: str, named: str) -> None:
    from bench import realtime

    with pytest.raises(ValueError, match=named):
        realtime.client_schedule(source)


def test_polling_is_simulated_get_by_get_as_settle_js_schedules_it() -> None:
    from bench import realtime

    schedule = realtime.Schedule((300, 500, 1000, 1000, 2000, 2000, 3000, 5000), 120_000, 30_000)
    assert realtime.simulate_polling(0, schedule) == (300, 1)
    assert realtime.simulate_polling(300, schedule) == (300, 1)  # a GET sent as it settles sees it
    assert realtime.simulate_polling(301, schedule) == (800, 2)
    # GETs at 0.3, 0.8, 1.8, 2.8, 4.8, 6.8, 9.8, 14.8 s: a 10 s settle is seen at 14.8 s, by the 8th.
    assert realtime.simulate_polling(10_000, schedule) == (14_800, 8)
    # Each delay starts when the previous answer came: 20 ms answers push the GETs to 0.3, 0.82, 1.84 s.
    assert realtime.simulate_polling(1_000, schedule, request_ms=20) == (1_840 + 20, 3)
    # Past the give-up time no GET goes out: 29 GETs at 0.3 … 119.8 s, and the next would be at 124.8 s.
    assert realtime.simulate_polling(200_000, schedule) == (None, 29)
    # While connected the client checks only every 30 s.
    assert [realtime.connected_gets(ms, schedule) for ms in (0, 29_999, 30_000, 65_000)] == [0, 0, 1, 2]


def test_percentiles_and_spread_of_a_sample() -> None:
    from bench import realtime

    figures = realtime.distribution([float(value) for value in range(100, 0, -1)])
    assert figures is not None
    assert (figures["p50"], figures["p99"], figures["min"], figures["max"]) == (50, 99, 1, 100)
    assert figures["spread"] == pytest.approx(99 / 50.5)  # (max − min) / median
    assert realtime.distribution([]) is None
    ratios = realtime.ratio_summary([0.5, 0.2, 0.4, 0.3, 0.1])
    assert ratios is not None
    assert (ratios["median"], ratios["min"], ratios["max"]) == (0.3, 0.1, 0.5)


def realtime_upload(
    mode: str,
    socket: float | None,
    polling: float | None,
    *,
    settle: float | None = 300.0,
    start: float | None = 5.0,
    gets: int = 2,
    messages: int = 1,
) -> dict[str, Any]:
    return {
        "mode": mode,
        "status": "READY",
        "socket_ms": socket,
        "polling_ms": polling,
        "settle_ms": settle,
        "worker_start_ms": start,
        "gets": gets,
        "get_ms": [20.0] * gets,
        "poll_errors": [],
        "messages": messages,
    }


def realtime_results(push_ms: float = 50.0) -> dict[str, Any]:
    from bench import realtime

    schedule = realtime.Schedule((300, 500, 1000, 1000, 2000, 2000, 3000, 5000), 120_000, 30_000)
    uploads = [
        realtime_upload("sequential", 300 + push_ms, 800.0, settle=300.0),
        realtime_upload("sequential", 400 + push_ms, 800.0, settle=400.0),
        realtime_upload("sequential", 900 + push_ms, 1_800.0, settle=900.0, gets=3),
        realtime_upload("burst", 2_000 + push_ms, 2_800.0, settle=2_000.0, gets=4),
        realtime_upload("burst", 3_000 + push_ms, 4_800.0, settle=3_000.0, gets=5),
        realtime_upload("burst", None, 5_800.0, settle=None, start=None, gets=5, messages=0),  # its message lost
    ]
    data = {
        "schedule": {
            "poll_delays_ms": list(schedule.poll_delays_ms),
            "give_up_ms": 120_000,
            "check_while_connected_ms": 30_000,
        },
        "rounds": 1,
        "sequential": 3,
        "burst": 3,
        "file_bytes": 200_000,
        "uploads": uploads,
        "summary": realtime.summarise(uploads, schedule),
        "model": realtime.model_rows(schedule, 20.0),
        "model_request_ms": 20.0,
        "worker_lines_found": 5,
        "seconds": 42.0,
        "load_start": "0.50 0.40 0.30",
        "load_end": "0.60 0.40 0.30",
    }
    return {"started": "2026-01-01 00:00 UTC", "code": "abc1234", "complete": False, "realtime": data}


def test_the_arms_are_paired_per_upload_and_requests_counted_both_ways() -> None:
    results = realtime_results()
    summary = results["realtime"]["summary"]
    assert list(summary) == ["sequential", "burst", "all"]
    sequential, burst, every = summary["sequential"], summary["burst"], summary["all"]
    assert (sequential["socket_ms"]["p50"], sequential["socket_ms"]["p99"]) == (450, 950)
    assert (sequential["polling_ms"]["p50"], sequential["polling_ms"]["p99"]) == (800, 1_800)
    # Ratios within each upload (350/800, 450/800, 950/1800), not of the percentiles.
    assert sequential["paired_ratio"]["median"] == pytest.approx(950 / 1800)
    assert sequential["p50_ratio"] == pytest.approx(450 / 800)
    # The lost message's upload is in neither arm's times (no pair) but its GETs count.
    assert (burst["uploads"], burst["paired"], burst["missing_messages"]) == (3, 2, 1)
    assert burst["gets"]["mean"] == pytest.approx(14 / 3)
    assert every["gets"]["mean"] == pytest.approx(21 / 6)
    # Settles at 0.3, 0.4, 0.9 s: settle.js's GETs at 0.3, 0.8, 1.8 s see them with 1, 2 and 3 GETs.
    assert sequential["model_gets_mean"] == pytest.approx(2.0)
    assert sequential["socket_gets_mean"] == 0
    assert sequential["saved_per_upload"] == pytest.approx(7 / 3)
    assert sequential["fifty"] == {"polling_gets": 117, "socket_requests": 1, "socket_messages": 50}
    assert every["spans_ms"]["push"]["p99"] == pytest.approx(50)
    assert every["spans_ms"]["poll_lag"]["p50"] == pytest.approx(800)
    assert every["spans_ms"]["queue"]["p50"] == 5


def test_the_realtime_section_renders_its_figures_and_the_contracts_push_goal() -> None:
    from bench import realtime

    results = realtime_results()
    section = realtime.section(results)
    assert section.startswith(realtime.SECTION_HEADING)
    assert "`.venv/bin/python -m bench --only realtime`" in section
    assert "| one at a time | 3 of 3 | 450 · 950 (350–950) | 800 · 1,800 (800–1,800) |" in section
    assert "uploads whose message never came: 1" in section
    assert "For 50 uploads: polling 175 GETs, the socket 1 request (its connect)" in section
    # The model: a 10 s settle, GETs answered in 20 ms, sent at 0.3, 0.82, 1.84 … 14.94 s.
    assert "| 10 | 15.0 | 5.0 | 8 | 0 |" in section
    assert "CONTRACT.md's 2 s from settling to the message: p99 50 ms (met)" in section
    assert realtime.goal_rows(results["realtime"])[0][3] == "met"
    assert realtime.goal_rows(realtime_results(push_ms=2_500)["realtime"])[0][3] == "**missed**"
    analysis = realtime.analysis(results["realtime"])
    assert analysis.startswith("- **Live status (section 11).**")
    assert "175 GETs against one connect for 50 uploads" in analysis
    assert "polling's first GET (300 ms) found 0 of 6 settled" in analysis
    assert "settle.js's growing waits add 0.9–5.0 s and cost 3–8 GETs an upload" in analysis
    # A whole run's report: the Goals row and the Analysis bullet; the section itself is spliced in after section 10.
    whole = report.render({**results, **report_header_fields()})
    assert "| live status: `photo` message after the worker settles a photo (dev stack), p99 |" in whole
    assert "- **Live status (section 11).**" in whole
    assert realtime.SECTION_HEADING not in whole


def test_worker_starts_come_from_the_workers_own_log_lines() -> None:
    from bench import realtime

    lines = [
        "PhotoSky dev stack ready",
        '{"time":"2026-01-01T00:00:01.500Z","type":"upload","object_key":"uploads/sub/p1","outcome":"ready",'
        '"latency_ms":300.0}',
        '{"time":"2026-01-01T00:00:09.000Z","type":"upload","object_key":"uploads/sub/p1","outcome":"duplicate",'
        '"latency_ms":10.0}',  # redelivered: the first start stands
        '{"time":"2026-01-01T00:00:02.000Z","type":"request","object_key":"uploads/sub/p2","latency_ms":1.0}',
        '{"time":"2026-01-01T00:00:02.000Z","type":"upload","object_key":"other/p3","latency_ms":1.0}',
        '{"time":"not a time","type":"upload","object_key":"uploads/sub/p4","latency_ms":1.0}',
        "{not json",
    ]
    starts = realtime.worker_starts("\n".join(lines))
    assert list(starts) == ["p1"]
    assert starts["p1"] == pytest.approx(realtime._epoch("2026-01-01T00:00:01.200Z"))


def test_a_realtime_run_writes_section_11_in_place_after_section_10() -> None:
    from bench import realtime
    from bench.__main__ import realtime_section

    report_text = "# R\n\n## 9. Media\n\nmedia\n\n## 10. Formats\n\nformats\n\n## Analysis\n\n- a\n"
    once = report.with_sections(report_text, realtime_results())
    assert once is not None
    assert once.index("## 10. Formats") < once.index(realtime.SECTION_HEADING) < once.index("## Analysis")
    twice = report.with_sections(once, realtime_results(push_ms=70.0))
    assert twice is not None
    assert twice.count(realtime.SECTION_HEADING) == 1
    assert twice.startswith("# R\n\n## 9. Media\n\nmedia\n\n## 10. Formats\n\nformats\n\n")
    assert twice.endswith("\n\n## Analysis\n\n- a\n")
    # A whole run splices only section 11 after rendering: section 9 of the same run stays as rendered.
    whole = realtime_section(report_text, {**realtime_results(), "media": {"not": "rendered again"}})
    assert whole is not None
    assert "## 9. Media\n\nmedia\n" in whole
    assert whole.count(realtime.SECTION_HEADING) == 1
