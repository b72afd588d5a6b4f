"""The FQL v4 queries of the event store, as driver expressions. Each function returns one query (one transaction).

Head of a stream: the last entry of `events_by_stream` for it, read as the one-entry page before a cursor beyond
every version (cursors compare as prefixes, so `[END]` sorts after every `[version, ref]` entry).

Aborts carry a machine-readable reason: `conflict:<head version>` or `causation:<causation id>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.fauna import schema
from adapters.fauna.driver import q

END = 2**63 - 1
"""A version beyond every real one (Fauna's largest integer): the cursor `before: [END]` reads from the end."""

BATCH_LIMIT = 100_000
"""Most events one causation batch is read back with (Fauna's largest page)."""

CONFLICT = "conflict:"
CAUSATION = "causation:"


def _stream_set(stream: str) -> Any:
    return q.match(q.index(schema.BY_STREAM), stream)


def _documents(page: Any) -> Any:
    """The page of [version, ref] entries mapped to each document's `data`."""
    return q.map_(q.lambda_(["version", "ref"], q.select(["data"], q.get(q.var("ref")))), page)


def _last_entry(stream: str) -> Any:
    return q.paginate(_stream_set(stream), size=1, before=[END])


def _head(last: Any) -> Any:
    """The version of the last entry of a page like `_last_entry`'s, 0 when it is empty."""
    return q.select(["data", 0, 0], last, 0)


def _conflict(head: Any) -> Any:
    return q.abort(q.concat([CONFLICT, q.to_string(head)]))


def _batch(stream: str, causation_id: str) -> Any:
    """The documents the causation id recorded in the stream, oldest first."""
    return q.select(
        ["data"],
        _documents(q.paginate(q.match(q.index(schema.BY_CAUSATION), [stream, causation_id]), size=BATCH_LIMIT)),
    )


def _create_all(documents: Any) -> Any:
    """Create one event document per element of `documents`; the created documents' `data`."""
    return q.map_(
        q.lambda_("fields", q.select(["data"], q.create(q.collection(schema.COLLECTION), {"data": q.var("fields")}))),
        documents,
    )


def append(stream: str, causation_id: str, expected_version: int, documents: Sequence[dict[str, Any]]) -> Any:
    """Return the causation's batch if the stream has it; else, at `expected_version`, create `documents`.

    Answers `{recorded: false, events: [...]}` (the earlier batch) or `{recorded: true, events: [...]}` (the new
    one); aborts with `conflict:<head>` when the stream is at another version.
    """
    return q.let(
        {"earlier": _batch(stream, causation_id)},
        q.if_(
            q.is_nonempty(q.var("earlier")),
            {"recorded": False, "events": q.var("earlier")},
            q.let(
                {"head": _head(_last_entry(stream))},
                q.if_(
                    q.equals(q.var("head"), expected_version),
                    {"recorded": True, "events": _create_all(list(documents))},
                    _conflict(q.var("head")),
                ),
            ),
        ),
    )


def batch(stream: str, causation_id: str) -> Any:
    """The documents a causation id recorded in a stream, oldest first (empty if none)."""
    return _batch(stream, causation_id)


def import_recorded(
    stream: str,
    first_version: int,
    first_causation_id: str,
    documents: Sequence[dict[str, Any]],
    repeated_causation: str | None,
) -> Any:
    """Create verbatim `documents` continuing the stream at `first_version`, all or nothing; answers their count.

    The first document's `causation_key` is decided here, against the stream's head event: it starts a batch
    unless the head event has the same causation id (an import that split a batch across calls). A batch start
    whose causation id the stream already has fails on `events_unique_causation` (`instance not unique`). After
    the version check (which comes first), `repeated_causation`, a repeat within the documents themselves found by
    the caller, aborts with `causation:<id>`.
    """
    first = {name: value for name, value in documents[0].items() if name != "causation_key"}
    first["causation_key"] = q.if_(q.equals(q.var("head_causation"), first_causation_id), None, first_causation_id)
    write = (
        q.abort(CAUSATION + repeated_causation)
        if repeated_causation is not None
        else q.do(_create_all([first, *documents[1:]]), len(documents))
    )
    return q.let(
        {
            "last": _last_entry(stream),
            "head": _head(q.var("last")),
            "head_causation": q.if_(
                q.equals(q.var("head"), 0),
                None,
                q.select(["data", "causation_id"], q.get(q.select(["data", 0, 1], q.var("last")))),
            ),
        },
        q.if_(q.equals(q.var("head"), first_version - 1), write, _conflict(q.var("head"))),
    )


def head(stream: str) -> Any:
    """The stream's newest version, 0 when it has none."""
    return _head(_last_entry(stream))


def page_forwards(stream: str, after: Any, size: int) -> Any:
    """A page of documents of the stream from cursor `after` (inclusive) up."""
    return _documents(q.paginate(_stream_set(stream), size=size, after=after))


def page_backwards(stream: str, before: Any, size: int) -> Any:
    """A page of documents of the stream just below cursor `before` (exclusive), in ascending order."""
    return _documents(q.paginate(_stream_set(stream), size=size, before=before))


def stream_names(after: Any, size: int) -> Any:
    """A page of stream names (the streams' first events), from cursor `after` or from the start."""
    first_events = q.match(q.index(schema.BY_VERSION), 1)
    if after is None:
        return q.paginate(first_events, size=size)
    return q.paginate(first_events, size=size, after=after)


def page_in_order(after: Any, size: int) -> Any:
    """A page of `[ts, data]` of every stream's events in the global order (`events_in_order`), from cursor `after`
    (inclusive; a prefix of `[ts, stream, version, ref]`) or from the start; the page and the documents are read in
    one snapshot."""
    everything = q.match(q.index(schema.IN_ORDER))
    page = q.paginate(everything, size=size) if after is None else q.paginate(everything, size=size, after=after)
    return q.map_(
        q.lambda_(["ts", "stream", "version", "ref"], [q.var("ts"), q.select(["data"], q.get(q.var("ref")))]),
        page,
    )


def _erasure_marks(stream: str) -> Any:
    return q.paginate(q.match(q.index(schema.ERASURES_BY_STREAM), stream), size=BATCH_LIMIT)


def delete_page(stream: str, size: int) -> Any:
    """Delete the stream's first `size` documents in one transaction; answers the cursor after them (null when
    none is left). The first page that leaves some behind records the erase as in progress; the last one clears
    that record, so a failure between pages is finished by `erases_in_progress` at the next start."""
    marks = _erasure_marks(stream)
    return q.let(
        {"page": q.paginate(_stream_set(stream), size=size)},
        q.do(
            q.foreach(q.lambda_(["version", "ref"], q.delete(q.var("ref"))), q.var("page")),
            q.if_(
                q.equals(q.select(["after"], q.var("page"), None), None),
                q.foreach(q.lambda_("ref", q.delete(q.var("ref"))), marks),
                q.if_(
                    q.is_empty(marks),
                    q.create(q.collection(schema.ERASURES), {"data": {"stream": stream}}),
                    None,
                ),
            ),
            q.select(["after"], q.var("page"), None),
        ),
    )


def erases_in_progress() -> Any:
    """The streams whose erase was left unfinished."""
    return q.select(["data"], q.paginate(q.match(q.index(schema.ERASURES_ALL)), size=BATCH_LIMIT))
