"""What a SQL store does with what its probes found: pure functions, the same for every dialect.

An append probes (start of this causation's earlier batch or None, current version) and then returns the earlier
batch, refuses with ConcurrencyConflict, or inserts. An import probes the current version and then refuses or
inserts. When an insert meets a constraint violation anyway (a racing writer got there between probe and insert,
which PostgreSQL allows and SQLite's lock does not), the store probes again and decides what the violation meant.
"""

from __future__ import annotations

import attrs

from domain.ports import ConcurrencyConflict, StoreError

NO_END = 2**62
"""A version above every version a stream can reach; bounds that are larger (or missing) mean "no bound"."""


@attrs.frozen(kw_only=True)
class Probe:
    """What the store holds for one stream and causation id."""

    start: int | None
    """The version where the causation's earlier batch starts, or None."""
    current: int
    """The stream's current version."""


def append(stream: str, expected_version: int, probe: Probe) -> int | None:
    """The start of the earlier batch to return, or None to insert; ConcurrencyConflict if the version moved on."""
    if probe.start is not None:
        return probe.start
    if probe.current != expected_version:
        raise ConcurrencyConflict(stream, expected_version, probe.current)
    return None


def append_violated(stream: str, expected_version: int, probe: Probe) -> int:
    """After a violation: the start of the batch a racer recorded for this causation, else ConcurrencyConflict."""
    if probe.start is None:
        raise ConcurrencyConflict(stream, expected_version, probe.current)
    return probe.start


def continues(stream: str, expected: int, current: int) -> None:
    """An import that continues version `expected` goes ahead only if that is current, else ConcurrencyConflict."""
    if current != expected:
        raise ConcurrencyConflict(stream, expected, current)


def import_violated(stream: str, expected: int, current: int) -> StoreError | ValueError:
    """After a violation: a racer moved the stream on, or the import repeats a causation id of an earlier batch."""
    if current != expected:
        return ConcurrencyConflict(stream, expected, current)
    return ValueError(f"import into {stream!r} repeats a causation id of an earlier batch")


def bound(version: int) -> int:
    """A version bound the database can compare with: the same answer for any int, however large or negative."""
    return min(max(version, 0), NO_END)
