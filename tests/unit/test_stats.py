"""Properties of `convo stats`'s fold: the nearest-rank percentile is the brute-force one; folding a log in any
pages gives the stats of the whole, which are the counts a direct reading of the events gives."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import attrs
from hypothesis import given
from hypothesis import strategies as st

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
from domain.usage import charge_of, cost
from service.stats import StatsTally, fold_stats, percentile, stats_of, usage_stats
from tests.strategies import streams

latencies = st.lists(st.integers(min_value=0, max_value=120_000), max_size=300)
percents = st.integers(min_value=1, max_value=100)


def brute_percentile(values: list[int], percent: int) -> int | None:
    """The least recorded value v such that at least `percent`% of the values are at most v."""
    candidates = [v for v in values if 100 * sum(1 for x in values if x <= v) >= percent * len(values)]
    return min(candidates) if candidates else None


@given(latencies, percents)
def test_the_percentile_is_the_brute_force_nearest_rank(values, percent):
    assert percentile(Counter(values), percent) == brute_percentile(values, percent)


def test_percentiles_of_known_values():
    values = Counter(range(1, 101))
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50, 95, 99, 100]
    assert percentile(Counter([7]), 99) == 7
    assert percentile(Counter(), 50) is None


@st.composite
def logs(draw: st.DrawFn) -> list[RecordedEvent]:
    """Several streams interleaved as a store's global order could hold them, on several days, with varied
    answer latencies."""
    parts = draw(st.lists(streams(max_steps=12), min_size=1, max_size=3))
    queues = [[attrs.evolve(item, stream=f"s{index}") for item in part] for index, part in enumerate(parts)]
    merged: list[RecordedEvent] = []
    while any(queues):
        queue = draw(st.sampled_from([queue for queue in queues if queue]))
        item = queue.pop(0)
        later = item.recorded_at + timedelta(days=draw(st.integers(0, 3)))
        if isinstance(item.event, AnswerGiven):
            item = attrs.evolve(item, event=attrs.evolve(item.event, latency_ms=draw(st.integers(0, 5_000))))
        merged.append(attrs.evolve(item, recorded_at=later))
    return merged


@given(logs(), st.data())
def test_folding_the_log_in_any_pages_gives_the_stats_of_the_whole(log, data):
    since = data.draw(st.none() | st.dates(date(2025, 12, 31), date(2026, 1, 5)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(log)), max_size=6)))
    tally = StatsTally(since=since)
    for start, end in zip([0, *cuts], [*cuts, len(log)], strict=True):
        fold_stats(log[start:end], tally)
    whole = fold_stats(log, StatsTally(since=since))
    assert tally == whole
    assert stats_of(tally, usage_stats(tally.usage, PriceTable(), "scan")) == stats_of(
        whole, usage_stats(whole.usage, PriceTable(), "scan")
    )


@given(logs(), st.none() | st.dates(date(2025, 12, 31), date(2026, 1, 5)))
def test_the_stats_are_the_counts_of_the_events_in_the_range(log, since):
    kept = [item for item in log if since is None or item.recorded_at.date() >= since]
    events = [item.event for item in kept]
    stats = stats_of(fold_stats(log, StatsTally(since=since)), usage_stats({}, PriceTable(), "scan"))
    assert stats.streams == len({item.stream for item in kept})
    askers = {e.sender_id for e in events if isinstance(e, QuestionAsked | ImageRequested)}
    assert stats.active_users == len(askers)
    assert stats.questions == sum(isinstance(e, QuestionAsked) for e in events)
    assert stats.image_requests == sum(isinstance(e, ImageRequested) for e in events)
    assert stats.answers == sum(isinstance(e, AnswerGiven) for e in events)
    assert stats.pictures == sum(isinstance(e, ImageGenerated) for e in events)
    assert dict(stats.answer_failures) == Counter(e.kind for e in events if isinstance(e, AnswerFailed))
    assert dict(stats.image_failures) == Counter(e.kind for e in events if isinstance(e, ImageFailed))
    answered = [e.latency_ms for e in events if isinstance(e, AnswerGiven)]
    assert (stats.latency.p50, stats.latency.p95, stats.latency.p99) == tuple(
        brute_percentile(answered, p) for p in (50, 95, 99)
    )


@given(logs())
def test_usage_by_model_by_day_and_in_total_is_the_billed_usage_priced(log):
    tally = fold_stats(log, StatsTally())
    usage = usage_stats(tally.usage, PriceTable(), "scan")
    charges = [charge for charge in map(charge_of, log) if charge is not None]
    expected = sum((cost(charge.billed, PriceTable()) for charge in charges), Decimal(0))
    assert usage.total.cost == expected
    assert sum((row.cost for row in usage.by_model), Decimal(0)) == expected
    assert sum((row.cost for row in usage.by_day), Decimal(0)) == expected
    output = sum(line.quantity for charge in charges for line in charge.billed if line.unit == "output")
    assert usage.total.output_tokens == output == sum(row.output_tokens for row in usage.by_day)
    assert [row.key for row in usage.by_day] == sorted({charge.day for charge in charges})
