"""bench/sweep.py keeps working: each purge call goes through botocore to its local server (no time is asserted)."""

from __future__ import annotations

from bench import sweep


def test_the_sweep_bench_makes_each_purge_call_through_botocore_to_its_local_server_and_reports_them() -> None:
    results = sweep.measure(calls=3, rounds=2, warm=1)
    assert len(results) == 2
    assert all(r.purge_cpu_us > 0 for r in results)
    assert all(r.floor_cpu_us > 0 for r in results)
    text = sweep.report(results)
    assert "One purge's four AWS calls" in text
    assert "purges/s of botocore alone" in text
