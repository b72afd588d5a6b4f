"""Fresh, isolated event stores of every kind for the contract tests, and the rules for an absent backend.

PostgreSQL: `CONVO_TEST_POSTGRES` (default postgresql://postgres@127.0.0.1:5432/test); each store gets a schema of
its own, dropped afterwards. When the server cannot be reached the test fails if `CI` is set and is skipped (with
the reason) otherwise. Fauna: `tests/contract/fauna_store.py` provides `fauna_store()`; if it cannot be imported the
test fails, never skips.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from adapters.memory.store import MemoryEventStore
from adapters.postgres.store import PostgresEventStore
from adapters.sqlite.store import SqliteEventStore
from domain.ports import EventStore

BACKENDS = ("memory", "sqlite", "postgres", "fauna")
CONFIGURABLE = ("memory", "sqlite", "postgres")
"""Backends whose constructor takes `now` and `page_size` (the Fauna fixture builds its own store)."""


def postgres_url() -> str:
    """The PostgreSQL server the tests use."""
    return os.environ.get("CONVO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def _postgres_problem() -> str | None:
    try:
        where = conninfo_to_dict(postgres_url())
    except psycopg.Error:
        return "CONVO_TEST_POSTGRES is not a valid PostgreSQL URL"
    try:
        with psycopg.connect(postgres_url(), connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        host = f"{where.get('host', 'localhost')}:{where.get('port', 5432)}"
        return f"PostgreSQL at {host} (CONVO_TEST_POSTGRES) is unreachable: {first_line}"
    return None


def require_postgres() -> None:
    """Fail (in CI) or skip (elsewhere) unless the test PostgreSQL server answers."""
    problem = _postgres_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{problem}; CI must run the PostgreSQL tests", pytrace=False)
    pytest.skip(problem)


@contextlib.contextmanager
def scratch_database(prefix: str, before_drop: Callable[[], None] | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database `<prefix>_<random>` on the test server (URL yielded), dropped WITH (FORCE) after.

    Fails in CI (skips elsewhere) when the server is unreachable. `before_drop` runs first at the end, e.g. to
    wait for a server a test restarted.
    """
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_url = postgres_url()
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        if before_drop is not None:
            before_drop()
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fauna_factory() -> Callable[[], contextlib.AbstractAsyncContextManager[Any]]:
    """`fauna_store` from tests/contract/fauna_store.py; fails the test (never skips) when it is missing."""
    try:
        from tests.contract.fauna_store import fauna_store
    except ImportError as error:
        problem = str(error)
    else:
        return fauna_store
    pytest.fail(
        f"the fauna fixture is missing: tests/contract/fauna_store.py must provide fauna_store() ({problem})",
        pytrace=False,
    )


def require(name: str) -> None:
    """Fail or skip now, before any store is built, when backend `name` cannot run (see the module doc)."""
    if name == "postgres":
        require_postgres()
    elif name == "fauna":
        fauna_factory()


@contextlib.asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A schema name nobody uses, dropped (with everything in it) afterwards."""
    schema = f"convo_test_{uuid.uuid4().hex[:16]}"
    try:
        yield schema
    finally:
        async with await psycopg.AsyncConnection.connect(postgres_url(), autocommit=True) as connection:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.asynccontextmanager
async def open_backend(name: str, directory: Path | None = None, **options: Any) -> AsyncIterator[EventStore]:
    """A fresh, empty store of kind `name`, closed (and its data removed) on exit.

    `options` (`now`, `page_size`) go to the store's constructor; only CONFIGURABLE backends accept them.
    """
    if name == "memory":
        options.pop("page_size", None)  # it holds lists: there is nothing to page
        yield MemoryEventStore(**options)
    elif name == "sqlite":
        own = directory is None
        folder = Path(tempfile.mkdtemp(prefix="convo-sqlite-")) if directory is None else directory
        store = SqliteEventStore(folder / f"events-{uuid.uuid4().hex[:8]}.db", **options)
        try:
            await store.init_schema()
            yield store
        finally:
            await store.close()
            if own:
                shutil.rmtree(folder, ignore_errors=True)
    elif name == "postgres":
        require_postgres()
        async with fresh_schema() as schema:
            shared = PostgresEventStore(postgres_url(), schema=schema, max_size=5, **options)
            try:
                await shared.init_schema()
                yield shared
            finally:
                await shared.close()
    elif name == "fauna":
        if options:
            raise ValueError(f"the fauna fixture takes no options, got {sorted(options)}")
        async with fauna_factory()() as store:
            yield store
    else:
        raise ValueError(f"unknown backend {name!r}")


def a_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that reads `start`, then one second later at each call."""
    ticks = iter(range(10**9))
    return lambda: start + timedelta(seconds=next(ticks))
