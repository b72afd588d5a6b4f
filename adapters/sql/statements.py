"""Every statement of the SQL stores, written once with `:name` parameters and rendered per dialect, and the steps
a store's scripts ask a connection to run.

A script (see `store`) is a generator: it yields steps and is sent what each returns, so the same logic runs on
SQLite's thread and on a PostgreSQL connection of the pool; each dialect only executes the steps.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Generator, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

import attrs

from adapters.sql.schema import Dialect

T = TypeVar("T")

Parameters: TypeAlias = Mapping[str, Any]


@attrs.frozen
class Rows:
    """Run a query; the script is sent its rows (a list of tuples)."""

    statement: str
    parameters: Parameters


@attrs.frozen
class Change:
    """Run a statement that changes rows; the script is sent how many it changed."""

    statement: str
    parameters: Parameters


@attrs.frozen
class Insert:
    """Insert rows (each a mapping of column to value), one statement per row or one over arrays; sent None."""

    statement: str
    rows: Sequence[Parameters]


Step: TypeAlias = Rows | Change | Insert
Script: TypeAlias = Generator[Step, Any, T]


class Mode(enum.Enum):
    """How a script's changes are to be committed."""

    READ = "read"
    """Reads only: no transaction."""
    WRITE = "write"
    """One change: in a transaction only where writes share one (SQLite's group commit)."""
    ATOMIC = "atomic"
    """Several changes, all or none: in a transaction, which SQLite shares with the writes queued with it."""
    ALONE = "alone"
    """Several changes, all or none, in a transaction of their own."""


_EVENT_COLUMNS = (
    ("stream", "text"),
    ("version", "int"),
    ("recorded_at", "timestamptz"),
    ("causation_id", "text"),
    ("causation_key", "text"),
    ("type", "text"),
    ("schema", "int"),
    ("data", "jsonb"),
)
"""The columns an append or import writes, each with its PostgreSQL type (of the arrays `unnest` reads)."""
_INBOX_COLUMNS = (
    ("bot", "text"),
    ("update_id", "bigint"),
    ("chat", "text"),
    ("admitted_at", "timestamptz"),
    ("payload", "text"),
)
"""The columns an admission writes, likewise."""
_READ = "version, recorded_at, causation_id, type, schema, data"
_PARAMETER = re.compile(r"(?<!:):(\w+)")


@attrs.frozen(kw_only=True)
class Statements:
    """The statements of one store, in its dialect, over its tables."""

    probe: str
    """(start of the batch of :causation or NULL, current version) of :stream."""
    batch: str
    """The events of :stream from :start up to the next batch's start (or :no_end)."""
    forwards: str
    """At most :size events of :stream from version :start up."""
    backwards: str
    """At most :size events of :stream below version :below, newest first."""
    version: str
    """The current version of :stream."""
    import_probe: str
    """(current version, causation id of the last event) of :stream."""
    insert: str
    """Insert events (the `Insert` step)."""
    read_all: str
    """(position text, stream, then the columns `rows.recorded` reads) of at most :size events of every stream after
    the position (:xact, :position), in the global order (see `schema.global_order`)."""
    first_streams: str
    """At most :size stream names from :after (inclusive) up."""
    next_streams: str
    """At most :size stream names above :after."""
    delete: str
    """Delete the events of :stream."""
    erase_inbox: str
    """Drop the text of the inbox entries of :chat."""
    prune: str
    """Drop the handled entries of :bot admitted before :before."""
    admit: str
    """Insert inbox entries that are new (the `Insert` step)."""
    unhandled: str
    """Which of :ids are unhandled in the inbox of :bot."""
    unfinished: str
    """The unhandled entries of :bot (of :chat unless it is NULL), oldest update first."""
    claim: str
    """Give :worker the entry :update_id of :bot at :now unless another's claim is newer than :stale."""
    preview: str
    """Note the :preview of the entry :update_id of :bot."""
    finish: str
    """Drop the text and claim of the entry :update_id of :bot."""


def render(dialect: Dialect, events: str, inbox: str) -> Statements:
    """The statements over tables `events` and `inbox` (quoted names), with the dialect's parameter style."""
    texts = {
        "probe": f"""
            SELECT (SELECT version FROM {events} WHERE stream = :stream AND causation_key = :causation),
                   (SELECT COALESCE(MAX(version), 0) FROM {events} WHERE stream = :stream)
            """,
        "batch": f"""
            SELECT {_READ} FROM {events}
            WHERE stream = :stream AND version >= :start AND version < COALESCE(
                (SELECT version FROM {events}
                 WHERE stream = :stream AND version > :start AND causation_key IS NOT NULL ORDER BY version LIMIT 1),
                :no_end)
            ORDER BY version
            """,
        "forwards": f"SELECT {_READ} FROM {events} WHERE stream = :stream AND version >= :start "
        "ORDER BY version LIMIT :size",
        "backwards": f"SELECT {_READ} FROM {events} WHERE stream = :stream AND version < :below "
        "ORDER BY version DESC LIMIT :size",
        "version": f"SELECT COALESCE(MAX(version), 0) FROM {events} WHERE stream = :stream",
        "import_probe": f"""
            SELECT COALESCE(MAX(version), 0),
                   (SELECT causation_id FROM {events} WHERE stream = :stream ORDER BY version DESC LIMIT 1)
            FROM {events} WHERE stream = :stream
            """,
        "insert": _insert(dialect, events, _EVENT_COLUMNS, ""),
        "read_all": _read_all(dialect, events),
        "first_streams": _streams(events, ">="),
        "next_streams": _streams(events, ">"),
        "delete": f"DELETE FROM {events} WHERE stream = :stream",
        "erase_inbox": f"UPDATE {inbox} SET payload = NULL, preview = NULL WHERE chat = :chat",
        "prune": f"DELETE FROM {inbox} WHERE bot = :bot AND payload IS NULL AND admitted_at < :before",
        "admit": _insert(dialect, inbox, _INBOX_COLUMNS, " ON CONFLICT DO NOTHING"),
        "unhandled": f"SELECT update_id FROM {inbox} WHERE bot = :bot AND payload IS NOT NULL AND update_id "
        + ("= ANY(:ids)" if dialect.arrays else "IN (SELECT value FROM json_each(:ids))"),
        "unfinished": f"""
            SELECT update_id, chat, payload, preview, admitted_at FROM {inbox}
            WHERE bot = :bot AND payload IS NOT NULL AND (CAST(:chat AS TEXT) IS NULL OR chat = :chat)
            ORDER BY update_id
            """,
        "claim": f"""
            UPDATE {inbox} SET claimed_by = :worker, claimed_at = :now
            WHERE bot = :bot AND update_id = :update_id AND payload IS NOT NULL
              AND (claimed_by IS NULL OR claimed_by = :worker OR claimed_at < :stale)
            """,
        "preview": f"UPDATE {inbox} SET preview = :preview WHERE bot = :bot AND update_id = :update_id",
        "finish": f"UPDATE {inbox} SET payload = NULL, preview = NULL, claimed_by = NULL "
        "WHERE bot = :bot AND update_id = :update_id",
    }
    if dialect.arrays:
        texts = {name: _PARAMETER.sub(r"%(\1)s", text) for name, text in texts.items()}
    return Statements(**texts)


def in_dialect(dialect: Dialect, text: str) -> str:
    """A statement written with `:name` parameters, in the dialect's parameter style."""
    return _PARAMETER.sub(r"%(\1)s", text) if dialect.arrays else text


def _insert(dialect: Dialect, table: str, columns: tuple[tuple[str, str], ...], tail: str) -> str:
    """Insert one row per parameter mapping (SQLite), or rows from one array per column (PostgreSQL)."""
    names = ", ".join(name for name, _ in columns)
    if not dialect.arrays:
        return f"INSERT INTO {table} ({names}) VALUES ({', '.join(f':{name}' for name, _ in columns)}){tail}"
    arrays = ", ".join(f":{name}::{'text' if kind == 'jsonb' else kind}[]" for name, kind in columns)
    values = ", ".join(f"{name}::jsonb" if kind == "jsonb" else name for name, kind in columns)
    return f"INSERT INTO {table} ({names}) SELECT {values} FROM unnest({arrays}) AS batch({names}){tail}"


def _read_all(dialect: Dialect, events: str) -> str:
    if not dialect.chained:
        return (
            f"SELECT CAST(position AS TEXT), stream, {_READ} FROM {events} WHERE position > :position "
            "ORDER BY position LIMIT :size"
        )
    return f"""
        SELECT xact::text || ':' || position, stream, {_READ} FROM {events}
        WHERE (xact, position) > (CAST(:xact AS xid8), :position)
          AND xact < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY xact, position LIMIT :size
        """


def _streams(events: str, first: str) -> str:
    """One loose index scan: each name is the least above the one before, found through the primary key."""
    return f"""
        WITH RECURSIVE names(stream, n) AS (
            SELECT MIN(stream), 1 FROM {events} WHERE stream {first} :after
            UNION ALL
            SELECT (SELECT MIN(e.stream) FROM {events} AS e WHERE e.stream > names.stream), n + 1
            FROM names WHERE names.stream IS NOT NULL AND n < :size
        )
        SELECT stream FROM names WHERE stream IS NOT NULL
        """
