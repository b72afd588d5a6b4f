"""The SQL core's pure parts: its decisions, version bounds, and the tables and statements it renders per dialect."""

from __future__ import annotations

import re
import sqlite3

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.sql import decisions
from adapters.sql.decisions import NO_END, Probe
from adapters.sql.schema import POSTGRES, SQLITE, events_table, inbox_table
from adapters.sql.statements import Statements, render
from domain.ports import ConcurrencyConflict


def test_an_append_returns_the_earlier_batch_else_conflicts_else_inserts() -> None:
    assert decisions.append("s", 9, Probe(start=3, current=5)) == 3
    assert decisions.append("s", 5, Probe(start=None, current=5)) is None
    with pytest.raises(ConcurrencyConflict) as raised:
        decisions.append("s", 4, Probe(start=None, current=5))
    assert (raised.value.stream, raised.value.expected, raised.value.actual) == ("s", 4, 5)


def test_after_a_violation_an_append_returns_the_racers_batch_or_conflicts() -> None:
    assert decisions.append_violated("s", 5, Probe(start=6, current=7)) == 6
    with pytest.raises(ConcurrencyConflict):
        decisions.append_violated("s", 5, Probe(start=None, current=5))


def test_an_import_continues_the_current_version_only() -> None:
    decisions.continues("s", 3, 3)
    with pytest.raises(ConcurrencyConflict):
        decisions.continues("s", 3, 4)
    assert isinstance(decisions.import_violated("s", 3, 4), ConcurrencyConflict)
    assert isinstance(decisions.import_violated("s", 3, 3), ValueError)


@given(bound=st.integers(), version=st.integers(min_value=1, max_value=NO_END - 1))
def test_a_bounded_version_selects_what_the_bound_selects(bound: int, version: int) -> None:
    assert -(2**63) <= decisions.bound(bound) < 2**63
    assert (version >= decisions.bound(bound)) == (version >= bound)
    assert (version < decisions.bound(bound)) == (version < bound)


def statements(dialect: str) -> dict[str, str]:
    rendered = render(SQLITE, "events", "inbox") if dialect == "sqlite" else render(POSTGRES, '"s"."events"', "inbox")
    return attrs.asdict(rendered)


def test_every_sqlite_statement_compiles_against_the_sqlite_tables() -> None:
    connection = sqlite3.connect(":memory:")
    for statement in (*events_table(SQLITE, "events"), inbox_table(SQLITE, "inbox")):
        connection.execute(statement)
    for statement in statements("sqlite").values():
        connection.execute(f"EXPLAIN {statement}", dict.fromkeys(re.findall(r":(\w+)", statement)))


def test_postgresql_statements_take_pyformat_parameters_and_keep_their_casts() -> None:
    sqlite = statements("sqlite")
    for name, statement in statements("postgres").items():
        assert re.search(r"(?<!:):\w", statement) is None, name
        taken = set(re.findall(r"%\((\w+)\)s", statement))
        if name == "read_all":  # SQLite's position is one number; PostgreSQL's also names a transaction
            assert taken == set(re.findall(r"(?<!:):(\w+)", sqlite[name])) | {"xact"}, name
        else:
            assert taken == set(re.findall(r"(?<!:):(\w+)", sqlite[name])), name
    assert "::int[]" in statements("postgres")["insert"]
    assert set(attrs.fields_dict(Statements)) == set(sqlite)


def test_each_dialect_spells_the_tables_its_own_way() -> None:
    sqlite, postgres = "\n".join(events_table(SQLITE, "e")), "\n".join(events_table(POSTGRES, "e"))
    assert 'COLLATE "C"' in postgres and "JSONB" in postgres and "REFERENCES e" in postgres
    assert "previous" not in sqlite and "COLLATE" not in sqlite
    assert "BIGINT" in inbox_table(POSTGRES, "i") and "TIMESTAMPTZ" in inbox_table(POSTGRES, "i")
