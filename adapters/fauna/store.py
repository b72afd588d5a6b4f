"""The event store on Fauna (FQL v4, e.g. a self-hosted Fauna node): `FaunaEventStore`.

Every append is one FQL query, so one Fauna transaction: find the causation's batch (and return it), else check the
stream's head version, else create the batch. Reads page through the `events_by_stream` index with cursors and an
explicit page size in both directions. The schema is described in `adapters.fauna.schema`; the poller lease in
`adapters.fauna.lease`; the usage ledger's projection in `adapters.fauna.ledger`.

The global order (`read_all`) is that of the `events_in_order` index: by `ts`, the commit time of the transaction
that wrote the event, then by stream and version. Fauna is strictly serializable and every read sees a snapshot, at
some time T, that holds exactly the transactions with `ts` <= T; so an event a reader has not seen yet has a larger
`ts` than every event it has seen, and takes its place after them. A position, `<ts>|<version>|<stream>`, names one
place in that order; it is never reused because `ts` only grows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from functools import partial
from typing import Any

from adapters.fauna import inbox as inbox_queries
from adapters.fauna import queries, schema
from adapters.fauna.connection import (
    DEFAULT_ENDPOINT,
    Connection,
    Endpoint,
    error_code,
    error_description,
    secret_from_env,
)
from adapters.fauna.documents import event_fields, recorded_fields, recorded_from_fields
from adapters.fauna.driver import errors
from adapters.fauna.inbox import FaunaInbox
from adapters.fauna.lease import LEASE_TTL, FaunaLease
from adapters.fauna.ledger import FaunaLedger
from adapters.store_rules import (
    PAGE_SIZE,
    batch_starts,
    check_import,
    check_limit,
    check_page_size,
    recording_time,
    utc_now,
)
from domain.events import Event, RecordedEvent
from domain.ports import ConcurrencyConflict, Positioned, StoreError, StoreUnavailable

TERM_LIMIT = 32 * 1024 - 64
"""Bytes of a stream name or causation id Fauna can index (an index term holds 32 KiB; a little is kept spare)."""


class FaunaEventStore:
    """An EventStore whose streams are documents of one Fauna collection (see `adapters.fauna.schema`)."""

    def __init__(
        self,
        secret: str,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        now: Callable[[], datetime] = utc_now,
        page_size: int = PAGE_SIZE,
        timeout: float = 30.0,
        workers: int = 8,
        schema_wait: float = 120.0,
        lease_ttl: float = LEASE_TTL,
    ) -> None:
        """Connect lazily to the Fauna node at `endpoint` with a key's `secret` (no I/O happens here).

        `now` stamps recorded_at; `page_size` is how many events or stream names one read query fetches;
        `timeout` bounds each HTTP request; `workers` is the size of the thread pool running driver calls;
        `schema_wait` is how long `init_schema` waits for Fauna to finish building indexes; `lease_ttl` is how many
        seconds a poller lease outlives its holder's last renewal.
        """
        if not secret:
            raise ValueError("a Fauna secret is required")
        self._connection = Connection(secret, Endpoint.parse(endpoint), timeout=timeout, workers=workers)
        self._now = now
        self._page_size = check_page_size(page_size)
        self._schema_wait = schema_wait
        self._lease_ttl = lease_ttl

    @classmethod
    def from_env(cls, env: Mapping[str, str], **options: Any) -> FaunaEventStore:
        """A store configured by FAUNA_SECRET (or FAUNA_SECRET_KEY) and FAUNA_ENDPOINT (default Fauna's cloud).

        ValueError with one clear line when the secret is missing or the endpoint malformed.
        """
        secret = secret_from_env(env)
        endpoint = env.get("FAUNA_ENDPOINT", "").strip() or DEFAULT_ENDPOINT
        return cls(secret, endpoint, **options)

    @property
    def endpoint(self) -> str:
        """The node this store talks to, as scheme://host:port."""
        return str(self._connection.endpoint)

    async def init_schema(self) -> None:
        """Create the collections, then the indexes, if missing; wait until Fauna has built the indexes; finish
        any erase a failure left in progress.

        StoreUnavailable if an index of the same name exists with another definition, or if building takes
        longer than `schema_wait` seconds.
        """
        await self._connection.query(schema.create_collection)
        await self._connection.query(schema.create_indexes)
        deadline = time.monotonic() + self._schema_wait
        while True:
            found = await self._connection.query(schema.read_indexes)
            wrong = schema.mismatches(found)
            if wrong:
                raise StoreUnavailable(
                    f"Fauna at {self.endpoint} has index(es) {', '.join(wrong)} with another definition than "
                    "this version of convo needs; drop them (or use a fresh database) and run `convo store init`"
                )
            building = schema.inactive(found)
            if not building:
                break
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"Fauna at {self.endpoint} is still building index(es) {', '.join(building)} after "
                    f"{self._schema_wait:.0f}s; run `convo store init` again later"
                )
            await asyncio.sleep(0.2)
        for stream in await self._connection.query(queries.erases_in_progress):
            await self.delete_stream(stream)

    async def append(
        self, stream: str, events: Sequence[Event], expected_version: int, causation_id: str
    ) -> tuple[RecordedEvent, ...]:
        """Record a batch in one transaction, or return the batch this causation already recorded.

        See EventStore.append. A racing writer that wins a unique index shows up as `instance not unique`; the
        causation is then looked up again (it may be this very batch, written by a retry) before reporting
        ConcurrencyConflict.
        """
        if not events:
            return await self._batch(stream, causation_id)
        self._check_terms(stream, causation_id)
        moment = recording_time(self._now)
        documents = [
            event_fields(stream, expected_version + offset, moment, causation_id, event, starts_batch=offset == 1)
            for offset, event in enumerate(events, start=1)
        ]
        try:
            answer = await self._connection.query(
                partial(queries.append, stream, causation_id, expected_version, documents)
            )
        except errors.BadRequest as error:
            if error_code(error) == "transaction aborted":
                raise self._aborted(error, stream, expected_version) from None
            earlier = await self._batch(stream, causation_id)
            if earlier:
                return earlier
            raise ConcurrencyConflict(stream, expected_version, await self.current_version(stream)) from None
        return tuple(recorded_from_fields(fields) for fields in answer["events"])

    async def read_forwards(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events from `from_version` up, oldest first, at most `limit` of them, a page per query."""
        check_limit(limit)
        remaining = limit
        cursor: Any = [from_version]
        while cursor is not None and (remaining is None or remaining > 0):
            size = self._page_size if remaining is None else min(self._page_size, remaining)
            page = await self._connection.query(partial(queries.page_forwards, stream, cursor, size))
            for fields in page["data"]:
                yield recorded_from_fields(fields)
            if remaining is not None:
                remaining -= len(page["data"])
            cursor = page.get("after")

    async def read_backwards(
        self, stream: str, before: int | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events below version `before` (or from the end), newest first, at most `limit` of them."""
        check_limit(limit)
        remaining = limit
        cursor: Any = [queries.END if before is None else before]
        while cursor is not None and (remaining is None or remaining > 0):
            size = self._page_size if remaining is None else min(self._page_size, remaining)
            page = await self._connection.query(partial(queries.page_backwards, stream, cursor, size))
            for fields in reversed(page["data"]):
                yield recorded_from_fields(fields)
            if remaining is not None:
                remaining -= len(page["data"])
            cursor = page.get("before")

    async def current_version(self, stream: str) -> int:
        """The newest version of a stream; 0 when it has no events."""
        version = await self._connection.query(partial(queries.head, stream))
        return int(version)

    async def list_streams(self) -> AsyncIterator[str]:
        """Every stream that has events, sorted by name as the index sorts strings, a page per query."""
        cursor: Any = None
        while True:
            page = await self._connection.query(partial(queries.stream_names, cursor, self._page_size))
            for name in page["data"]:
                yield name
            cursor = page.get("after")
            if cursor is None:
                return

    async def read_all(self, after: str | None = None, limit: int = 100) -> AsyncIterator[Positioned]:
        """At most `limit` events of every stream after position `after` (or from the first), in the global order
        (see the module docstring), a page per query. ValueError for a position this store did not make."""
        check_limit(limit)
        remaining = limit
        cursor: Any = None if after is None else _cursor_after(after)
        while remaining > 0:
            page = await self._connection.query(partial(queries.page_in_order, cursor, min(self._page_size, remaining)))
            for ts, fields in page["data"]:
                recorded = recorded_from_fields(fields)
                yield Positioned(_position(ts, recorded), recorded)
            remaining -= len(page["data"])
            cursor = page.get("after")
            if cursor is None:
                return

    async def delete_stream(self, stream: str) -> None:
        """Delete every document of the stream, a page per transaction (one for most streams), until none is left.
        An erase that fails midway is recorded as in progress and finished by the next `init_schema`."""
        await self._connection.query(partial(inbox_queries.erase_chat, stream))
        while await self._connection.query(partial(queries.delete_page, stream, self._page_size)) is not None:
            pass

    def _check_terms(self, *terms: str) -> None:
        """Refuse a stream name or causation id Fauna would leave out of its index (over 32 KiB as a term): the
        write would succeed and never be found again."""
        if any(len(term.encode("utf-8", "surrogatepass")) > TERM_LIMIT for term in terms):
            raise StoreUnavailable(
                f"Fauna at {self.endpoint} cannot index a stream name or causation id over {TERM_LIMIT} bytes; "
                "nothing was written"
            )

    async def import_recorded(self, events: Sequence[RecordedEvent]) -> None:
        """Write recorded events verbatim in one transaction; they must continue their stream with no gap.

        ConcurrencyConflict if they do not continue it; ValueError if a batch start repeats a causation id the
        stream (or the import itself) already has. Nothing is written in either case.
        """
        if not events:
            return
        stream = check_import(events)
        causation_ids = [event.causation_id for event in events]
        self._check_terms(stream, *causation_ids)
        starts = [True, *batch_starts(causation_ids[0], causation_ids[1:])]
        documents = [recorded_fields(event, starts_batch=start) for event, start in zip(events, starts, strict=True)]
        expected = events[0].version - 1
        repeated = _repeated(causation_ids, starts)
        try:
            await self._connection.query(
                partial(queries.import_recorded, stream, events[0].version, causation_ids[0], documents, repeated)
            )
        except errors.BadRequest as error:
            if error_code(error) == "transaction aborted":
                raise self._aborted(error, stream, expected) from None
            # instance not unique: a batch start repeats a causation id of the stream, unless a writer got in first
            actual = await self.current_version(stream)
            if actual != expected:
                raise ConcurrencyConflict(stream, expected, actual) from None
            raise ValueError(f"import into {stream!r} repeats a causation id of the stream in a new batch") from None

    async def close(self) -> None:
        """Close the HTTP connections and stop the driver's threads."""
        await self._connection.close()

    @property
    def clock(self) -> Callable[[], datetime]:
        """The store's clock."""
        return self._now

    def inbox(self, bot: str) -> FaunaInbox:
        """The inbox of one bot, in this database's `inbox` collection."""
        return FaunaInbox(self, bot)

    def ledger(self) -> FaunaLedger:
        """The usage ledger's projection, in this database's `ledger` and `ledger_checkpoint` collections."""
        return FaunaLedger(self)

    async def query(self, build: Callable[[], Any]) -> Any:
        """One FQL query (for the inbox, the ledger and the lease); failures become StoreUnavailable."""
        return await self._connection.query(build)

    def poller_lease(self, bot: str) -> AbstractAsyncContextManager[None]:
        """A lease document renewed while held (see `adapters.fauna.lease`). LeaseTaken while another live process
        holds it; a holder that died is waited out, for up to `lease_ttl` seconds."""
        return FaunaLease(self.query, bot, where=f"Fauna at {self.endpoint}", ttl=self._lease_ttl).held()

    async def _batch(self, stream: str, causation_id: str) -> tuple[RecordedEvent, ...]:
        found = await self._connection.query(partial(queries.batch, stream, causation_id))
        return tuple(recorded_from_fields(fields) for fields in found)

    def _aborted(self, error: Exception, stream: str, expected: int) -> StoreError | ValueError:
        """The port's error for one of our Aborts (`conflict:<head>` or `causation:<id>`)."""
        reason = error_description(error)
        if reason.startswith(queries.CONFLICT):
            return ConcurrencyConflict(stream, expected, int(reason.removeprefix(queries.CONFLICT)))
        if reason.startswith(queries.CAUSATION):
            causation_id = reason.removeprefix(queries.CAUSATION)
            return ValueError(f"import into {stream!r} repeats causation id {causation_id!r} in a new batch")
        return StoreUnavailable(f"Fauna at {self.endpoint} aborted the transaction: {reason}")


def _position(ts: int, recorded: RecordedEvent) -> str:
    """The position of an event written at `ts`: `<ts>|<version>|<stream>` (the stream last, as it may hold `|`)."""
    return f"{ts}|{recorded.version}|{recorded.stream}"


def _cursor_after(position: str) -> list[Any]:
    """The `events_in_order` cursor of the first place after `position`: a Paginate cursor is inclusive and compares
    as a prefix of `[ts, stream, version, ref]`, so the next version of the same stream at the same `ts` is the
    least one above it."""
    parts = position.split("|", 2)
    if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts[:2]) or not parts[2]:
        raise ValueError(f"{position!r} is not a position of a Fauna event store")
    ts, version, stream = parts
    return [int(ts), stream, int(version) + 1]


def _repeated(causation_ids: Sequence[str], starts: Sequence[bool]) -> str | None:
    """The first causation id that starts a second batch within one import, if any."""
    seen: set[str] = set()
    for causation_id, start in zip(causation_ids, starts, strict=True):
        if start and causation_id in seen:
            return causation_id
        seen.add(causation_id)
    return None
