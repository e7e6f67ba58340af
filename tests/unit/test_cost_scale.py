"""bench/cost.py's scale model (issue 17, docs/SCALE.md): tiers, the month's volumes, hand-checked line items,
the configurations' latency goals, and the figures it reads from docs/PERFORMANCE.md."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from bench import cost

PERFORMANCE = cost.PERFORMANCE_REPORT


@pytest.fixture
def inputs() -> cost.ReportInputs:
    measured = cost.Measured(
        api_cpu_ms={"GET /photos": 9.0, "GET /photos/{id}": 1.0, "POST /photos": 1.4},
        api_calls={"GET /photos": 1, "GET /photos/{id}": 1, "POST /photos": 2},
        rru={"GET /photos": 2.0, "GET /photos/{id}": 1.0, "upload worker": 2.0},
        wru={"POST /photos": 11.0, "upload worker": 8.0},
        cold_start_ms=335.0,
        worker_cpu_ms=146.0,
        worker_calls=9,
        preview_bytes=107_008,
    )
    return cost.ReportInputs(
        measured,
        small_preview_bytes=9_830.4,
        large_preview_bytes=97_177.6,
        cdn_list_ratio=0.0625,
        presign_us=300.0,
        cdn_url_us=3.0,
        urls_per_photo_get=3,
    )


def test_tiers_bill_each_unit_at_its_own_tiers_price() -> None:
    tiers = cost.SCALE_PRICES["api_gateway_rest_tiers"]
    # 400M: 333M at $3.50 and 67M at $2.80 per million.
    assert cost.tiered(400e6, tiers) == pytest.approx(333 * 3.50 + 67 * 2.80)
    # 25B: all four tiers, 5B of them above 20B at $1.51.
    assert cost.tiered(25e9, tiers) == pytest.approx(333 * 3.50 + 667 * 2.80 + 19_000 * 2.38 + 5_000 * 1.51)
    assert cost.tiered(0, tiers) == 0


def test_a_negative_quantity_or_bounded_last_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        cost.tiered(-1, ((math.inf, 1.0),))
    with pytest.raises(ValueError, match="unbounded"):
        cost.tiered(10, ((5, 1.0),))


def test_the_months_volumes_come_from_the_peaks_and_peak_to_average() -> None:
    volumes = cost.month_volumes()
    seconds = 30 * 86400
    # 45,000 reads/s at the peak, 4x the mean; 5,000 uploads/s, 10x the mean.
    assert volumes == {"api_requests": pytest.approx(11_250 * seconds), "uploads": pytest.approx(500 * seconds)}
    with pytest.raises(ValueError, match="must include the uploads"):
        cost.month_volumes({**cost.SCALE_TARGET, "peak_api_requests_per_second": 10}, cost.SCALE_ASSUMPTIONS)


def test_hand_checked_line_items_at_the_target(inputs: cost.ReportInputs) -> None:
    seconds = 30 * 86400
    reads, uploads = 11_250 * seconds, 500 * seconds  # 29.16 billion and 1.296 billion
    items = cost.scale_cost(inputs, cost.ScaleConfig(dynamodb="provisioned"))
    over_20b = reads + uploads - 20e9
    assert items["API Gateway REST requests"] == pytest.approx(
        333 * 3.50 + 667 * 2.80 + 19_000 * 2.38 + over_20b / 1e6 * 1.51
    )
    # 19 WRU an upload, provisioned at 70% utilisation, $0.00065 per WCU-hour.
    assert items["DynamoDB writes (provisioned WCU)"] == pytest.approx(uploads * 19 / 3600 / 0.7 * 0.00065)
    assert "DynamoDB writes (WRU)" not in items
    # Connected tabs: the mean API rate / 0.1 request a second each, every minute of the month.
    connections = (reads + uploads) / seconds / 0.1
    assert items["WebSocket connection minutes"] == pytest.approx(connections * seconds / 60 * 0.25 / 1e6)
    on_demand = cost.scale_cost(inputs, cost.ScaleConfig())
    assert on_demand["DynamoDB writes (WRU)"] == pytest.approx(uploads * 19 * 0.625 / 1e6)


def test_cloudfront_urls_are_cached_by_browsers_and_cost_less_cpu(inputs: cost.ReportInputs) -> None:
    cdn = cost.measured_for(inputs, "cloudfront")
    assert cdn.api_cpu_ms["GET /photos"] == pytest.approx(9.0 * 0.0625)
    assert cdn.api_cpu_ms["GET /photos/{id}"] == pytest.approx(1.0 - 3 * 0.297)
    assert cost.measured_for(inputs, "s3") is inputs.measured
    reads = 1e6
    # Presigned URLs change on every request, so browsers fetch every preview again; CloudFront's do not.
    assert cost.preview_fetches(reads, "s3") == {"small": 6e6, "large": 4e5}
    assert cost.preview_fetches(reads, "cloudfront") == {"small": 3e6, "large": 2e5}
    with pytest.raises(ValueError, match="unknown preview delivery"):
        cost.measured_for(inputs, "ftp")


def test_an_unknown_capacity_mode_is_refused(inputs: cost.ReportInputs) -> None:
    with pytest.raises(ValueError, match="unknown DynamoDB capacity mode"):
        cost.scale_cost(inputs, cost.ScaleConfig(dynamodb="reserved"))


def test_the_cheapest_configuration_meets_every_goal_and_the_cold_start_binds(inputs: cost.ReportInputs) -> None:
    best = cost.cheapest_meeting_goals(inputs)
    assert all(cost.meets_goals(inputs, best).values())
    # 335 ms of INIT CPU at 256 MB's CPU share (1769/256) is 2.3 s, over 1.5 s; at 512 MB 1.16 s.
    assert cost.meets_goals(inputs, replace(best, api_memory_mb=256))["cold_ms"] is False
    assert best == cost.ScaleConfig(api_memory_mb=512, dynamodb="provisioned", previews="cloudfront")
    assert "the cold start goal binds: at 256 MB a cold start waits 2,315 ms" in cost.binding_goal(inputs, best)
    cheaper = [
        c
        for c in (
            cost.ScaleConfig(m, d, p)
            for m in (128, 256)
            for d in ("on-demand", "provisioned")
            for p in ("cloudfront", "s3")
        )
        if sum(cost.scale_cost(inputs, c).values()) < sum(cost.scale_cost(inputs, best).values())
    ]
    assert cheaper
    assert not any(all(cost.meets_goals(inputs, c).values()) for c in cheaper)


def test_peak_concurrency_is_arrivals_times_duration(inputs: cost.ReportInputs) -> None:
    busy = cost.peak_concurrency(inputs, cost.ScaleConfig(previews="s3"))
    ms = cost.api_request_ms(inputs.measured, 512)
    expected = (27_000 * ms["GET /photos"] + 18_000 * ms["GET /photos/{id}"] + 5_000 * ms["POST /photos"]) / 1000
    assert busy["api"] == pytest.approx(expected)
    assert busy["worker"] == pytest.approx(5_000 * cost.worker_ms(inputs.measured) / 1000)


def test_every_limit_names_its_source_and_the_defaults_are_the_documented_ones(inputs: cost.ReportInputs) -> None:
    found = {limit.name: limit for limit in cost.limits(inputs, cost.ScaleConfig())}
    assert all(limit.source and limit.change and limit.load > 0 for limit in found.values())
    account = found["API Gateway throttle per account and Region (REST + WebSocket + callbacks)"]
    assert account.default == 10_000
    assert account.load > 50_000  # the WebSocket frames and callbacks count against the same account throttle
    assert found["DynamoDB on-demand table write throughput (table + its GSIs share the account quota)"].load == (
        pytest.approx(5_000 * 19)
    )
    assert found["WebSocket new connections per account and Region"].default == 500


def test_report_figures_are_read_from_docs_performance() -> None:
    read = cost.report_inputs(PERFORMANCE.read_text())
    m = read.measured
    assert set(m.api_cpu_ms) == {"GET /photos", "GET /photos/{id}", "POST /photos"}
    assert m.worker_calls >= 1
    assert m.cold_start_ms > 0
    assert 0 < read.cdn_list_ratio < 1
    assert read.small_preview_bytes < read.large_preview_bytes
    # The figures rebuild section 6's own month: its Lambda, API Gateway and DynamoDB lines, to the cent.
    section_6 = PERFORMANCE.read_text().split("## 6. Cost model", 1)[1].split("\n## ", 1)[0]
    memory = cost.configured_memory_mb("api_handler")
    items = cost.monthly_cost(m, memory)
    for name in ("Lambda API (GB-s, incl. billed INIT)", "Lambda worker (GB-s)", "DynamoDB writes (WRU)"):
        assert f"| {name} | ${items[name]:,.2f} |" in section_6, name


def test_a_report_missing_a_section_or_figure_says_what_to_run() -> None:
    text = PERFORMANCE.read_text()
    without_media = text.replace("## 9. Media URLs", "## Media URLs")
    with pytest.raises(cost.ReportError, match=r"no section 9.*python -m bench"):
        cost.report_inputs(without_media)
    garbled = text.replace("cold-start CPU (", "cold-start CPU (about ")
    with pytest.raises(cost.ReportError, match="no cold-start or worker CPU"):
        cost.report_inputs(garbled)


def test_the_generated_block_is_replaced_between_its_marks() -> None:
    doc = f"intro\n{cost.BEGIN_MARK}\nold\n{cost.END_MARK}\nafter\n"
    assert cost.with_generated(doc, "new") == f"intro\n{cost.BEGIN_MARK}\nnew\n{cost.END_MARK}\nafter\n"
    with pytest.raises(cost.ReportError, match="no generated block"):
        cost.with_generated("no marks here", "new")


def test_docs_scale_holds_what_the_command_generates_now() -> None:
    # Rerun `python -m bench.cost --scale --write` after a bench run or an input change.
    doc = cost.SCALE_DOC.read_text()
    generated = cost.render_scale(cost.report_inputs(PERFORMANCE.read_text()))
    assert cost.with_generated(doc, generated) == doc


def test_the_command_fails_clearly_without_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main(["--scale", "--report", str(tmp_path / "missing.md")]) == 1
    assert "bench.cost: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cost.main([])
