"""The benchmark's pure helpers and its event builder, so `make bench` cannot rot unnoticed. No timing here:
every figure the bench reports is measured by `make bench`, never asserted by a test."""

from __future__ import annotations

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


def warm_settings() -> Any:
    from bench.__main__ import QUICK

    return QUICK
