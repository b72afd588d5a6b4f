"""What only the PostgreSQL store promises: a schema several processes can create at once, a log the database keeps
whole when independent stores race (appends, and appends against deletes), and a pool that outlives its connections.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.postgres.store import PostgresEventStore
from domain.events import QuestionAsked, RecordedEvent, UserRegistered
from domain.ports import ConcurrencyConflict, InboxEntry, StoreUnavailable
from tests.contract.backends import fresh_schema, postgres_url, require_postgres

pytestmark = pytest.mark.postgres

QUESTIONS = [QuestionAsked(text="one"), QuestionAsked(text="two")]


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    require_postgres()
    async with fresh_schema() as name:
        yield name


def a_store(schema: str, **options: Any) -> PostgresEventStore:
    return PostgresEventStore(postgres_url(), schema=schema, **({"max_size": 4} | options))


async def read_all(iterator: AsyncIterator[RecordedEvent]) -> list[RecordedEvent]:
    return [event async for event in iterator]


async def admin(query: str, *parameters: object) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(postgres_url(), autocommit=True) as connection:
        cursor = await connection.execute(query, parameters)
        return await cursor.fetchall() if cursor.description else []


async def test_init_schema_is_idempotent(schema: str) -> None:
    store = a_store(schema)
    try:
        await store.init_schema()
        await store.append("s", QUESTIONS, 0, "c")
        await store.init_schema()
        await store.init_schema()
        assert await store.current_version("s") == 2
    finally:
        await store.close()


async def test_init_schema_runs_concurrently_from_many_processes(schema: str) -> None:
    stores = [a_store(schema, min_size=0, max_size=1) for _ in range(8)]
    try:
        await asyncio.gather(*(store.init_schema() for store in stores))
        await stores[3].append("s", QUESTIONS, 0, "c")
        assert await stores[5].current_version("s") == 2
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    tables = await admin("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", schema)
    assert tables == [("events",), ("inbox",), ("ledger",), ("ledger_checkpoint",)]


async def test_without_init_schema_the_store_says_what_to_do(schema: str) -> None:
    store = a_store(schema)
    try:
        with pytest.raises(StoreUnavailable, match="run init_schema"):
            await store.current_version("s")
    finally:
        await store.close()


async def test_two_independent_stores_race_on_one_stream(schema: str) -> None:
    stores = [a_store(schema), a_store(schema)]
    await stores[0].init_schema()

    async def appender(number: int) -> int:
        store, expected, conflicts = stores[number % 2], 0, 0
        while True:
            try:
                await store.append("race", [QuestionAsked(text=str(number))], expected, f"c{number}")
                return conflicts
            except ConcurrencyConflict:
                conflicts += 1
                expected = await store.current_version("race")

    try:
        conflicts = await asyncio.gather(*(appender(number) for number in range(50)))
        same = await asyncio.gather(*(stores[n % 2].append("one", QUESTIONS, 0, "same") for n in range(30)))
        recorded = await read_all(stores[1].read_forwards("race"))
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    assert [event.version for event in recorded] == list(range(1, 51))
    assert sum(1 for count in conflicts if count) == 49
    assert len(set(same)) == 1


async def test_appends_racing_deletes_never_leave_a_gap(schema: str) -> None:
    writer, deleter = a_store(schema), a_store(schema)
    await writer.init_schema()
    stop = asyncio.Event()

    async def keep_appending() -> int:
        appended = 0
        while not stop.is_set():
            expected = await writer.current_version("s")
            try:
                await writer.append("s", QUESTIONS, expected, uuid.uuid4().hex)
                appended += 1
            except ConcurrencyConflict:
                pass
        return appended

    async def keep_deleting() -> None:
        for _ in range(40):
            await deleter.delete_stream("s")
            await asyncio.sleep(0.003)
        stop.set()

    try:
        appended, _ = await asyncio.gather(asyncio.gather(*(keep_appending() for _ in range(4))), keep_deleting())
        recorded = await read_all(writer.read_forwards("s"))
    finally:
        await writer.close()
        await deleter.close()
    assert sum(appended) > 0
    assert [event.version for event in recorded] == list(range(1, len(recorded) + 1))


async def test_the_pool_recovers_at_once_after_all_its_connections_are_killed(schema: str) -> None:
    name = f"convo-test-{uuid.uuid4().hex[:12]}"
    store = a_store(schema, application_name=name, min_size=2, max_size=4)
    try:
        await store.init_schema()
        await asyncio.gather(*(store.append(f"s{n}", QUESTIONS, 0, "c1") for n in range(8)))
        killed = await admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", name)
        assert len(killed) >= 2
        assert all(ok for (ok,) in killed)

        started = time.monotonic()
        assert [event.version for event in await store.append("s0", QUESTIONS, 2, "c2")] == [3, 4]
        assert time.monotonic() - started < 1.0
        assert await asyncio.gather(*(store.current_version(f"s{n}") for n in range(8))) == [4] + [2] * 7
    finally:
        await store.close()


async def test_a_read_survives_its_connection_being_killed_between_pages(schema: str) -> None:
    name = f"convo-test-{uuid.uuid4().hex[:12]}"
    store = a_store(schema, application_name=name, max_size=1)
    await store.init_schema()
    reading = store.read_forwards("s")
    try:
        await store.append("s", [QuestionAsked(text=str(n)) for n in range(1, 1_201)], 0, "c1")
        first = await anext(reading)
        await admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", name)
        rest = await read_all(reading)
        assert [event.version for event in [first, *rest]] == list(range(1, 1_201))
        assert await store.current_version("s") == 1_200
    finally:
        await store.close()


async def test_an_unreachable_server_is_unavailable_without_leaking_the_password() -> None:
    store = PostgresEventStore("postgresql://convo:s3cret-pw@127.0.0.1:1/nowhere", timeout=1.0)
    try:
        for attempt in range(2):
            with pytest.raises(StoreUnavailable) as raised:
                await store.current_version("s")
            assert "s3cret-pw" not in str(raised.value), attempt
            assert "127.0.0.1:1/nowhere" in str(raised.value)
    finally:
        await store.close()


async def test_old_schema_rows_are_upcast_on_read(schema: str) -> None:
    store = a_store(schema)
    try:
        await store.init_schema()
        await admin(
            f'INSERT INTO "{schema}".events (stream, version, recorded_at, causation_id, causation_key, type, schema,'
            " data) VALUES ('s', 1, now(), 'c', 'c', 'UserRegistered', 1, %s::jsonb)",
            '{"user_id": 7, "username": null, "first_name": "Old"}',
        )
        (event,) = await read_all(store.read_forwards("s"))
        assert event.event == UserRegistered(user_id=7, username=None, first_name="Old", language_code=None)
    finally:
        await store.close()


async def test_the_database_refuses_a_gap_or_a_second_batch_for_one_causation(schema: str) -> None:
    store = a_store(schema)
    try:
        await store.init_schema()
        await store.append("s", QUESTIONS, 0, "c")
        insert = (
            f'INSERT INTO "{schema}".events (stream, version, recorded_at, causation_id, causation_key, type, schema,'
            " data) VALUES ('s', %s, now(), %s, %s, 'QuestionAsked', 1, '{\"text\": \"x\"}')"
        )
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            await admin(insert, 4, "d", "d")
        with pytest.raises(psycopg.errors.UniqueViolation):
            await admin(insert, 3, "c", "c")
        with pytest.raises(psycopg.errors.UniqueViolation):
            await admin(insert, 2, "d", "d")
    finally:
        await store.close()


def _heap_holds(schema: str, table: str, marker: bytes) -> bool:
    """Whether the table's heap file on disk holds the bytes (after a CHECKPOINT writes every page out)."""
    with psycopg.connect(postgres_url(), autocommit=True) as connection:
        connection.execute("CHECKPOINT")
        directory = connection.execute("SHOW data_directory").fetchone()
        path = connection.execute("SELECT pg_relation_filepath(%s)", (f"{schema}.{table}",)).fetchone()
    assert directory is not None and path is not None
    return marker in Path(directory[0], path[0]).read_bytes()


async def test_an_erased_stream_is_vacuumed_out_of_the_heap(schema: str) -> None:
    """DELETE leaves the rows' bytes in the heap file until VACUUM reclaims them: the erase vacuums."""
    marker = f"erase-me-{uuid.uuid4().hex}"
    store = a_store(schema)
    try:
        await store.init_schema()
        await store.append("gone", [QuestionAsked(text=f"{marker} {uuid.uuid4().hex}")], 0, "c1")
        await store.inbox("1").admit([InboxEntry(update_id=1, chat="gone", payload=f'{{"text": "{marker}"}}')])
        for number in range(20):
            await store.append(f"kept{number}", [QuestionAsked(text=uuid.uuid4().hex)], 0, f"k{number}")
        assert _heap_holds(schema, "events", marker.encode())
        assert _heap_holds(schema, "inbox", marker.encode())
        await store.delete_stream("gone")
        assert not _heap_holds(schema, "events", marker.encode())
        assert not _heap_holds(schema, "inbox", marker.encode())
        assert await store.current_version("kept3") == 1
    finally:
        await store.close()


async def test_a_locked_table_is_reported_after_the_statement_timeout_not_waited_on_forever(schema: str) -> None:
    store = a_store(schema, statement_timeout=0.5)
    try:
        await store.init_schema()
        async with await psycopg.AsyncConnection.connect(postgres_url()) as locker:
            await locker.execute(f'LOCK TABLE "{schema}".events IN EXCLUSIVE MODE')
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="statement timeout"):
                await store.append("s", QUESTIONS, 0, "c")
            assert time.monotonic() - started < 5
            await locker.rollback()
        assert await store.current_version("s") == 0
    finally:
        await store.close()


async def test_an_event_committed_after_a_later_transactions_is_not_skipped_by_a_catching_up_reader(
    schema: str,
) -> None:
    """Sequence numbers are taken at insert, not at commit: a transaction that inserts first and commits last
    must not have its event land behind a reader that already read past the other one."""
    store = a_store(schema)
    try:
        await store.init_schema()
        await store.append("early", [QuestionAsked(text="zero")], 0, "e0")
        start = [item async for item in store.read_all(None, 10)][-1].position
        async with await psycopg.AsyncConnection.connect(postgres_url()) as slow:
            table = f'"{schema}"."events"'
            await slow.execute(  # a writer that takes its transaction id and its position first, and waits
                f"INSERT INTO {table} (stream, version, recorded_at, causation_id, causation_key, type, schema, data) "
                "VALUES ('slow', 1, now(), 's1', 's1', 'QuestionAsked', 1, '{\"text\": \"slow\"}')"
            )
            await store.append("fast", [QuestionAsked(text="fast")], 0, "f1")  # commits first
            seen = [item async for item in store.read_all(start, 10)]
            await slow.commit()
        seen += [item async for item in store.read_all(seen[-1].position if seen else start, 10)]
        assert sorted(item.recorded.stream for item in seen) == ["fast", "slow"]
    finally:
        await store.close()
