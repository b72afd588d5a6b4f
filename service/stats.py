"""`convo stats`, the pure part: how the bot is doing, folded from recorded events one at a time, and the
totals it shows.

The fold holds no event: counts, the sets of streams and askers, and the answer latencies as a count per distinct
millisecond value (exact percentiles; its size grows with the spread of latencies, never with the number of
answers). Usage is kept as quantities by (day, model, unit), so that the usage ledger's projection, which holds the
same quantities, can stand in for it. Nothing here reads a clock or a store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Literal, TypeAlias

import attrs

from domain.events import (
    AnswerFailed,
    AnswerGiven,
    ImageFailed,
    ImageGenerated,
    ImageRequested,
    QuestionAsked,
    RecordedEvent,
)
from domain.prices import PriceTable
from domain.usage import Billed, charge_of, cost, unpriced
from service.usage_report import UsageRow

UsageSource: TypeAlias = Literal["ledger", "scan"]
UsageKey: TypeAlias = tuple[str, str, str]
"""(UTC day `YYYY-MM-DD`, model, unit): one cell of usage."""


@attrs.define(kw_only=True)
class StatsTally:
    """What the events folded so far add up to (only events recorded on or after `since`, when given)."""

    since: date | None = None
    """First UTC day counted; None: every event."""
    streams: set[str] = attrs.Factory(set)
    """Streams with an event in the range."""
    askers: set[str] = attrs.Factory(set)
    """Who asked a question or for a picture: the sender id, else (events recorded before senders were) the
    stream, which for a private chat is its user's id."""
    questions: int = 0
    """QuestionAsked events."""
    image_requests: int = 0
    """ImageRequested events."""
    answers: int = 0
    """AnswerGiven events (stopped ones included)."""
    pictures: int = 0
    """ImageGenerated events."""
    answer_failures: Counter[str] = attrs.Factory(Counter)
    """AnswerFailed events by kind."""
    image_failures: Counter[str] = attrs.Factory(Counter)
    """ImageFailed events by kind."""
    latencies: Counter[int] = attrs.Factory(Counter)
    """How many answers took each latency (AnswerGiven.latency_ms)."""
    usage: Counter[UsageKey] = attrs.Factory(Counter)
    """Billed quantities by (day, model, unit), as domain.usage reads them from the outcomes."""
    first_day: str = ""
    """The earliest UTC day of an event in the range (empty: none yet)."""
    last_day: str = ""
    """The latest UTC day of an event in the range (empty: none yet)."""

    def add(self, recorded: RecordedEvent) -> None:
        """Count one event (nothing when it was recorded before `since`)."""
        day = recorded.recorded_at.date()
        if self.since is not None and day < self.since:
            return
        text = day.isoformat()
        self.first_day = min(self.first_day or text, text)
        self.last_day = max(self.last_day, text)
        self.streams.add(recorded.stream)
        event = recorded.event
        match event:
            case QuestionAsked() | ImageRequested():
                self.askers.add(recorded.stream if event.sender_id is None else str(event.sender_id))
                if isinstance(event, QuestionAsked):
                    self.questions += 1
                else:
                    self.image_requests += 1
            case AnswerGiven(latency_ms=latency):
                self.answers += 1
                self.latencies[latency] += 1
            case AnswerFailed(kind=kind):
                self.answer_failures[kind] += 1
            case ImageGenerated():
                self.pictures += 1
            case ImageFailed(kind=kind):
                self.image_failures[kind] += 1
            case _:
                pass
        charge = charge_of(recorded)
        if charge is not None:
            for line in charge.billed:
                self.usage[(charge.day, line.model, line.unit)] += line.quantity


def fold_stats(events: Iterable[RecordedEvent], tally: StatsTally) -> StatsTally:
    """`tally` with the events added, in order (a log folded page by page, in any pages, adds up the same)."""
    for recorded in events:
        tally.add(recorded)
    return tally


def percentile(latencies: Mapping[int, int], percent: int) -> int | None:
    """The nearest-rank percentile of values given as counts per value: the least value v such that at least
    `percent`% of all values are at most v; None when there are none."""
    total = sum(latencies.values())
    if total == 0:
        return None
    rank = -(-percent * total // 100)
    seen = 0
    for value in sorted(latencies):
        seen += latencies[value]
        if seen >= max(rank, 1):
            return value
    raise AssertionError("unreachable: the counts add up to the total")


@attrs.frozen(kw_only=True)
class Latency:
    """Answer latency in milliseconds, from AnswerGiven.latency_ms (nearest-rank percentiles)."""

    answers: int
    """How many answers were measured."""
    p50: int | None
    """The median; None without answers."""
    p95: int | None
    """95th percentile."""
    p99: int | None
    """99th percentile."""


@attrs.frozen(kw_only=True)
class UsageStats:
    """Tokens and cost by model and by day, priced with a table."""

    source: UsageSource
    """`ledger`: read from the usage ledger's projection, which held every charge in the log; `scan`: folded from
    the log in this run."""
    by_model: tuple[UsageRow, ...]
    """One row per model, most costly first."""
    by_day: tuple[UsageRow, ...]
    """One row per UTC day, in date order."""
    total: UsageRow
    """Everything in the range."""
    unpriced: tuple[str, ...]
    """Models used that the table has no price for (counted at 0)."""


@attrs.frozen(kw_only=True)
class Stats:
    """How the bot did over a range of days."""

    since: date | None
    """First UTC day counted, if limited."""
    streams: int
    """Streams with an event in the range."""
    active_users: int
    """Distinct askers of questions and pictures in the range."""
    questions: int
    """Questions asked."""
    image_requests: int
    """Pictures asked for."""
    answers: int
    """Answers given."""
    pictures: int
    """Pictures made."""
    answer_failures: tuple[tuple[str, int], ...]
    """Failed answers by kind, most frequent first."""
    image_failures: tuple[tuple[str, int], ...]
    """Failed pictures by kind, most frequent first."""
    latency: Latency
    """Answer latency percentiles."""
    usage: UsageStats
    """Tokens and cost."""


def usage_stats(quantities: Mapping[UsageKey, int], prices: PriceTable, source: UsageSource) -> UsageStats:
    """Rows by model and by day of quantities by (day, model, unit): each cell priced once, so the rows by model,
    the rows by day and the total add up to the same amounts."""
    by_model: dict[str, UsageRow] = {}
    by_day: dict[str, UsageRow] = {}
    total = UsageRow("total")
    billed = [Billed(model, unit, quantity) for (_, model, unit), quantity in quantities.items() if quantity]
    for (day, model, unit), quantity in sorted(quantities.items()):
        if not quantity:
            continue
        line = Billed(model, unit, quantity)
        amount = cost((line,), prices)
        by_model[model] = by_model.get(model, UsageRow(model)).plus(line, amount)
        by_day[day] = by_day.get(day, UsageRow(day)).plus(line, amount)
        total = total.plus(line, amount)
    return UsageStats(
        source=source,
        by_model=tuple(sorted(by_model.values(), key=lambda row: (-row.cost, row.key))),
        by_day=tuple(by_day[day] for day in sorted(by_day)),
        total=total,
        unpriced=tuple(sorted(unpriced(billed, prices))),
    )


def stats_of(tally: StatsTally, usage: UsageStats) -> Stats:
    """The totals of a folded tally, with its usage (or the ledger's) priced."""
    return Stats(
        since=tally.since,
        streams=len(tally.streams),
        active_users=len(tally.askers),
        questions=tally.questions,
        image_requests=tally.image_requests,
        answers=tally.answers,
        pictures=tally.pictures,
        answer_failures=_by_count(tally.answer_failures),
        image_failures=_by_count(tally.image_failures),
        latency=Latency(
            answers=tally.answers,
            p50=percentile(tally.latencies, 50),
            p95=percentile(tally.latencies, 95),
            p99=percentile(tally.latencies, 99),
        ),
        usage=usage,
    )


def _by_count(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
