"""The benchmark's own arithmetic and plumbing (its figures are reported, not asserted)."""

from __future__ import annotations

from imgen_tui.bench.scheduler_bench import latency_row, optimal_makespan


def test_optimal_makespan_is_exact_for_uniform_machines() -> None:
    assert optimal_makespan([1.0, 2.0], 3) == 2.0  # 2 jobs on the fast one, 1 on the slow
    assert optimal_makespan([1.0], 5) == 5.0
    assert optimal_makespan([1.0, 3.0], 4) == 3.0
    assert optimal_makespan([0.83, 1.1, 1.4, 3.0], 20) >= 20 / (
        1 / 0.83 + 1 / 1.1 + 1 / 1.4 + 1 / 3.0
    )


async def test_latency_run_completes_against_a_farm_in_another_process() -> None:
    row = await latency_row(2, 30)
    assert row.jobs == 30 and row.p50_ms >= 0 and row.p99_ms >= row.p50_ms and row.enqueue_ms > 0
