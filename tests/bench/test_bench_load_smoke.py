"""The load benchmarks (`bench.concurrency`, `bench.overhead`, `bench.memory`) at a tiny size: they complete and
print their tables. No timing is asserted: these runs only prove the benchmarks still work."""

from __future__ import annotations

import pytest

from bench import concurrency, memory, overhead

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_concurrency_benchmark_answers_every_user_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    """3 users x 2 messages with a short model delay: every reply arrives, in order, and the ratio is printed."""
    result = concurrency.main(
        ["--users", "3", "--messages", "2", "--model-delay", "0.1", "--baseline-users", "2", "--baseline-messages", "1"]
    )

    out = capsys.readouterr().out
    assert result["replies"] == result["expected_replies"] == 6
    assert result["users_in_order"] == 3
    assert result["baseline_users_in_order"] == 2
    assert result["ratio"] > 0
    assert "EXTRAPOLATED" in out
    assert "speed-up convo vs baseline" in out


def test_overhead_benchmark_reports_throughput_and_latency(capsys: pytest.CaptureFixture[str]) -> None:
    """20 updates at once, then 10 at a steady rate: both phases report figures for convo and the baseline."""
    result = overhead.main(["--updates", "20", "--latency-updates", "10", "--rate", "50"])

    out = capsys.readouterr().out
    assert result["throughput"] > 0
    assert result["baseline_throughput"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert "convo added latency p99 (ms)" in out
    assert "throughput convo / baseline" in out


def test_overhead_one_user_mode_times_convo_and_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    """Three questions in sequence: each run gives a p50 and a p99 for both, and the table prints both targets."""
    result = overhead.main(["--one-user", "3", "--runs", "1"])

    assert len(result["convo"]) == len(result["baseline"]) == 1
    assert all(0 < p50 <= p99 for p50, p99 in result["convo"] + result["baseline"])
    out = capsys.readouterr().out
    assert "target <= 1:" in out and "target <= 1.5:" in out


def test_memory_benchmark_reads_rss_at_each_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    """50 users: RSS is read at idle and after 5, 25 and 50 users."""
    result = memory.main(["--users", "50"])

    out = capsys.readouterr().out
    assert [count for count, _ in result["points"]] == [0, 5, 25, 50]
    assert all(kib > 0 for _, kib in result["points"])
    assert "growth per 1k users" in out
