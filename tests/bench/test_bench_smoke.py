"""`python -m bench.history` at a tiny size: it completes on SQLite and PostgreSQL and prints its table."""

from __future__ import annotations

import pytest

from bench import history
from tests.contract.backends import postgres_url, require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]


def test_history_benchmark_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Both stores, two sizes, one run of three messages: exit 0, a row per store and size, a verdict per store."""
    require_postgres()
    argv = ["--sizes", "10,100", "--stores", "sqlite,postgres", "--repeats", "1", "--messages", "3"]

    status = history.main([*argv, "--postgres", postgres_url()])

    out = capsys.readouterr().out
    assert status == 0
    rows = [line.split() for line in out.splitlines() if line.startswith(("sqlite ", "postgres "))]
    assert [(row[0], row[1]) for row in rows] == [
        ("sqlite", "10"),
        ("sqlite", "100"),
        ("postgres", "10"),
        ("postgres", "100"),
    ]
    assert "convo ms" in out
    assert out.count("target met") + out.count("target MISSED") == 2
