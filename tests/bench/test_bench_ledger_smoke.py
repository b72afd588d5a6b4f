"""`python -m bench.ledger` at a tiny size: it completes and prints the check's table and the catch-up rate."""

from __future__ import annotations

import pytest

from bench import ledger

pytestmark = pytest.mark.timeout(60)


def test_ledger_benchmark_prints_its_table_and_rate(capsys: pytest.CaptureFixture[str]) -> None:
    status = ledger.main(["--entries", "10,100", "--messages", "3", "--events", "400", "--repeats", "1"])

    out = capsys.readouterr().out
    assert status == 0
    rows = [line.split() for line in out.splitlines() if line.strip().split(" ")[0] in ("10", "100")]
    assert [row[0] for row in rows] == ["10", "100"]
    assert "target met" in out or "target MISSED" in out
    assert "catch-up of 400 events: median" in out
    assert "load average before" in out and "load average after" in out
