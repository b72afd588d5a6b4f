"""`convo store init` and `convo store copy` as a user runs them: SQLite -> PostgreSQL -> SQLite, and off Fauna."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.sqlite.store import SqliteEventStore
from domain.commands import Ask, GiveAnswer, Reset, Sender
from tests.contract.backends import scratch_database
from tests.doubles.fauna import FaunaDouble
from tests.e2e.harness import run_cli
from tests.strategies import run_script

ADA = Sender(user_id=7, username="ada", first_name="Ada", language_code="en")


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with scratch_database("convo_cli") as url:
        yield url


async def seed_sqlite(path) -> list:
    store = SqliteEventStore.from_url(f"sqlite:///{path}")
    await store.init_schema()
    for stream, user in (("7", 7), ("8", 8)):
        events = run_script(
            [
                Ask(sender=ADA, text="q1"),
                GiveAnswer(
                    question_version=2, text="a1", model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1
                ),
                Reset(sender=ADA),
                Ask(sender=ADA, text="q2"),
            ],
            Sender(user_id=user),
            stream,
        )
        for recorded in events:
            await store.import_recorded([recorded])
    streams = [[e async for e in store.read_forwards(s)] for s in ("7", "8")]
    await store.close()
    return streams


def cli_env(store: str, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVO_", "FAUNA_"))}
    return env | {"CONVO_STORE": store, "CONVO_LOG_FORMAT": "json"} | extra


async def test_init_is_idempotent_and_copy_round_trips_between_sqlite_and_postgres(tmp_path, pg_database):
    originals = await seed_sqlite(tmp_path / "a.db")
    for _ in range(2):
        init = await run_cli(cli_env(pg_database), tmp_path, "store", "init")
        assert init.returncode == 0, init.stderr
    first = await run_cli(cli_env(pg_database), tmp_path, "store", "copy", "sqlite:///a.db", pg_database)
    assert first.returncode == 0, first.stderr
    assert "copied 10 events in 2 streams" in first.stdout
    again = await run_cli(cli_env(pg_database), tmp_path, "store", "copy", "sqlite:///a.db", pg_database)
    assert "copied 0 events" in again.stdout
    back = await run_cli(cli_env(pg_database), tmp_path, "store", "copy", pg_database, "sqlite:///b.db")
    assert back.returncode == 0, back.stderr
    copy = SqliteEventStore.from_url(f"sqlite:///{tmp_path / 'b.db'}")
    await copy.init_schema()
    assert [[e async for e in copy.read_forwards(s)] for s in ("7", "8")] == originals
    await copy.close()
    assert "secret" not in first.stdout + first.stderr


async def test_copy_off_the_fauna_double(tmp_path):
    double = FaunaDouble().start()
    try:
        env = cli_env("fauna", FAUNA_SECRET=double.secret, FAUNA_ENDPOINT=double.endpoint)
        originals = await seed_sqlite(tmp_path / "a.db")
        assert (await run_cli(env, tmp_path, "store", "copy", "sqlite:///a.db", "fauna")).returncode == 0
        result = await run_cli(env, tmp_path, "store", "copy", "fauna", "sqlite:///c.db")
        assert result.returncode == 0, result.stderr
        assert "copied 10 events in 2 streams" in result.stdout
        assert double.secret not in result.stdout + result.stderr
    finally:
        double.stop()
    copy = SqliteEventStore.from_url(f"sqlite:///{tmp_path / 'c.db'}")
    await copy.init_schema()
    assert [[e async for e in copy.read_forwards(s)] for s in ("7", "8")] == originals
    await copy.close()


async def test_a_bad_store_url_is_one_clear_line(tmp_path):
    result = await run_cli(cli_env("mysql://nope"), tmp_path, "store", "init")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("convo: error:")
