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


def test_inspect_pages_benchmark_prints_each_page_and_the_whole_fold(capsys: pytest.CaptureFixture[str]) -> None:
    """A small stream, one repeat: a row for each page and for the whole fold, with its ratio."""
    from bench import inspect_pages

    inspect_pages.main(["--events", "400", "--repeats", "1"])

    out = capsys.readouterr().out
    assert "one stream of 400 events" in out
    for row in ("page: newest", "page: middle", "page: first", "whole fold"):
        assert row in out
