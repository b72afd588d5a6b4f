"""The two tables of a SQL store, stated once and rendered for each dialect.

    CREATE TABLE events (
        stream        TEXT NOT NULL,        -- COLLATE "C" in PostgreSQL: code point order, as every store sorts
        version       INTEGER NOT NULL CHECK (version >= 1),
        previous      INTEGER GENERATED ALWAYS AS (NULLIF(version - 1, 0)) STORED,      -- PostgreSQL only
        recorded_at   TIME NOT NULL,        -- TEXT (ISO 8601 UTC, as the codec writes it) / TIMESTAMPTZ
        causation_id  TEXT NOT NULL,
        causation_key TEXT CHECK (causation_key IS NULL OR causation_key = causation_id),
        type          TEXT NOT NULL,
        schema        INTEGER NOT NULL,
        data          DOCUMENT NOT NULL,    -- the event document's "data": JSON as TEXT / JSONB
        PRIMARY KEY (stream, version),
        FOREIGN KEY (stream, previous) REFERENCES events (stream, version) ON DELETE CASCADE      -- PostgreSQL only
    );
    CREATE UNIQUE INDEX events_causation ON events (stream, causation_key) WHERE causation_key IS NOT NULL;
    CREATE INDEX events_previous ON events (stream, previous);                                   -- PostgreSQL only

    CREATE TABLE inbox (
        bot         TEXT NOT NULL,          -- which bot (its numeric id): update ids are per bot
        update_id   BIG NOT NULL,           -- INTEGER / BIGINT
        chat        TEXT,                   -- the stream it belongs to
        admitted_at TIME NOT NULL,
        payload     TEXT,                   -- the update's JSON; NULL once handled (or erased)
        preview     BIG,                    -- the message shown while answering it
        claimed_by  TEXT,                   -- the worker handling it (webhook workers sharing a store)
        claimed_at  TIME,
        PRIMARY KEY (bot, update_id)
    );

The database, not a lock in some process, keeps every stream's log whole:
- the primary key lets one writer only take a version, so of two racing appends one fails with a violation;
- `causation_key` is set on the first event of each batch only (the events of one append share its causation id),
  and its partial unique index lets a stream record each causation id's batch once;
- in PostgreSQL, where several processes write at once, the foreign key makes each version need its predecessor,
  so a stream's versions are always exactly 1..n: an append racing a `delete_stream` fails (its predecessor is
  gone) or is deleted with the rest (by the cascade, which `events_previous` keeps cheap). SQLite needs no such
  key: every write holds its single write lock from the first read (`BEGIN IMMEDIATE`).
An append checks causation and version and inserts in one transaction; when the insert meets a violation anyway it
rolls back and checks again (see `decisions`).
"""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class Dialect:
    """What one SQL engine spells differently; every difference between the SQL stores' tables is one field."""

    name: str
    """The engine, for messages."""
    key: str
    """The type of `stream`, which orders streams by code point."""
    time: str
    """The type of a moment."""
    document: str
    """The type of an event's data."""
    big: str
    """The type of a 64-bit integer (Telegram's ids)."""
    chained: bool
    """Whether each version references its predecessor (the `previous` column, its key and its index)."""
    arrays: bool
    """Whether many rows are inserted as one statement over arrays (else once per row)."""

    @property
    def text_times(self) -> bool:
        """Whether moments are held as ISO 8601 text."""
        return self.time == "TEXT"

    @property
    def json_text(self) -> bool:
        """Whether event data comes back as JSON text (rather than parsed by the driver)."""
        return self.document == "TEXT"


SQLITE = Dialect(name="SQLite", key="TEXT", time="TEXT", document="TEXT", big="INTEGER", chained=False, arrays=False)
POSTGRES = Dialect(
    name="PostgreSQL",
    key='TEXT COLLATE "C"',
    time="TIMESTAMPTZ",
    document="JSONB",
    big="BIGINT",
    chained=True,
    arrays=True,
)

_EVENTS = """
CREATE TABLE IF NOT EXISTS {events} (
    stream        {key} NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 1),{previous}
    recorded_at   {time} NOT NULL,
    causation_id  TEXT NOT NULL,
    causation_key TEXT CHECK (causation_key IS NULL OR causation_key = causation_id),
    type          TEXT NOT NULL,
    schema        INTEGER NOT NULL,
    data          {document} NOT NULL,{position}
    PRIMARY KEY (stream, version){chain}
)
"""
_PREVIOUS = "\n    previous      INTEGER GENERATED ALWAYS AS (NULLIF(version - 1, 0)) STORED,"
_CHAIN = ",\n    FOREIGN KEY (stream, previous) REFERENCES {events} (stream, version) ON DELETE CASCADE"
_CAUSATION_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS events_causation ON {events} (stream, causation_key) "
    "WHERE causation_key IS NOT NULL"
)
_PREVIOUS_INDEX = "CREATE INDEX IF NOT EXISTS events_previous ON {events} (stream, previous)"
_INBOX = """
CREATE TABLE IF NOT EXISTS {inbox} (
    bot         TEXT NOT NULL,
    update_id   {big} NOT NULL,
    chat        TEXT,
    admitted_at {time} NOT NULL,
    payload     TEXT,
    preview     {big},
    claimed_by  TEXT,
    claimed_at  {time},
    PRIMARY KEY (bot, update_id)
)
"""


def events_table(dialect: Dialect, events: str) -> tuple[str, ...]:
    """The statements that create the events table and its indexes (`events`: the table's quoted name)."""
    table = _EVENTS.format(
        events=events,
        key=dialect.key,
        time=dialect.time,
        document=dialect.document,
        previous=_PREVIOUS if dialect.chained else "",
        position="" if dialect.chained else "\n    position      INTEGER,",
        chain=_CHAIN.format(events=events) if dialect.chained else "",
    )
    indexes = (_CAUSATION_INDEX, _PREVIOUS_INDEX) if dialect.chained else (_CAUSATION_INDEX,)
    return (table, *(index.format(events=events) for index in indexes))


_SQLITE_ORDER = (
    "CREATE TABLE IF NOT EXISTS {counter} (last INTEGER NOT NULL)",
    # One row, ever: an aggregate always yields a row, so the guard must stand outside it (it once stood inside, and
    # every start added a row; the DELETE folds those extra rows into the highest one).
    "INSERT INTO {counter} SELECT COALESCE((SELECT MAX(position) FROM {events}), 0)"
    " WHERE NOT EXISTS (SELECT 1 FROM {counter})",
    "DELETE FROM {counter} WHERE rowid <> (SELECT rowid FROM {counter} ORDER BY last DESC LIMIT 1)",
    """CREATE TRIGGER IF NOT EXISTS {events_name}_position AFTER INSERT ON {events} WHEN NEW.position IS NULL
    BEGIN
        UPDATE {counter} SET last = last + 1;
        UPDATE {events} SET position = (SELECT last FROM {counter}) WHERE rowid = NEW.rowid;
    END""",
    "CREATE UNIQUE INDEX IF NOT EXISTS {events_name}_global ON {events} (position)",
)
_POSTGRES_ORDER = (
    "ALTER TABLE {events} ADD COLUMN IF NOT EXISTS position BIGINT GENERATED ALWAYS AS IDENTITY",
    "ALTER TABLE {events} ADD COLUMN IF NOT EXISTS xact xid8 NOT NULL DEFAULT pg_current_xact_id()",
    "CREATE INDEX IF NOT EXISTS events_global ON {events} (xact, position)",
)


def global_order(dialect: Dialect, events: str, counter: str) -> tuple[str, ...]:
    """The statements that give every event its place in the global order (`EventStore.read_all`), idempotent, for
    a new table and for one made before positions existed (`counter`: SQLite's table of the last position).

    SQLite: `position` from a counter a trigger advances in each insert's transaction, so positions follow commit
    order (SQLite has one writer) and an erased stream's are never given again (its rowids would be).
    PostgreSQL: `position` from a sequence, which does not follow commit order, so each row also keeps the id of
    the transaction that wrote it (`xact`); readers take rows in (xact, position) order and only those of
    transactions older than every transaction still running, so none can commit later into a place already read.
    A transaction's id is taken at its first write, after the stream's previous version was visible to it, so a
    stream's versions follow its transactions' order."""
    if dialect.chained:
        return tuple(statement.format(events=events) for statement in _POSTGRES_ORDER)
    name = events.strip('"')
    return tuple(statement.format(events=events, events_name=name, counter=counter) for statement in _SQLITE_ORDER)


def inbox_table(dialect: Dialect, inbox: str) -> str:
    """The statement that creates the inbox table (`inbox`: the table's quoted name)."""
    return _INBOX.format(inbox=inbox, big=dialect.big, time=dialect.time)
