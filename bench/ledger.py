"""The usage ledger: the budget check's cost per message as the ledger grows, and the projection's catch-up rate.

    python -m bench.ledger [--entries 10,100000] [--messages 200] [--events 1000000] [--repeats 3]

1. Budget check. A SQLite store's ledger is pre-filled with N entries (other users' days and months), its
   checkpoint at the end of the log. Then, M times, one billed answer is appended and the budget check runs
   (`BudgetGuard.refusal`: catch up the projection by that one event, then read the asker's day and month, the
   chat's month and the bot's month and price them). Printed: the median and p90 per check in ms for each N, and
   check(N)/check(smallest N). Target: flat, within 1.5x from 10 to 100,000 entries.
2. Catch-up. A SQLite store holds E billed answers (written in bulk); a fresh projection folds them all. Printed:
   the events per second (median over the repeats, with the spread).
Each part prints the machine's load average before and after, and the CPU count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from adapters.sqlite.store import SqliteEventStore
from domain.events import AnswerGiven, QuestionAsked, RecordedEvent
from domain.prices import PriceTable
from domain.usage import LedgerKey
from service.budgets import BudgetGuard, BudgetLimits
from service.usage_projection import UsageProjection

TARGET = 1.5
"""Most a check may cost at the largest ledger relative to the smallest."""
MODEL = "gpt-4o-mini"
IMPORT_BATCH = 5_000


def answered(stream: str, version: int, user: int, at: datetime) -> list[RecordedEvent]:
    """A question and its billed answer, at versions `version` and `version + 1`."""
    asked = QuestionAsked(text="q", sender_id=user)
    answer = AnswerGiven(
        text="a",
        model=MODEL,
        prompt_tokens=1000,
        completion_tokens=500,
        latency_ms=1,
        question_version=version,
        asker_id=user,
    )
    return [
        RecordedEvent(stream=stream, version=version, recorded_at=at, causation_id=f"c{version}", event=asked),
        RecordedEvent(stream=stream, version=version + 1, recorded_at=at, causation_id=f"c{version}", event=answer),
    ]


async def check_cost(entries: int, messages: int, workdir: Path) -> list[float]:
    """Milliseconds per budget check, with `entries` ledger entries already there."""
    store = SqliteEventStore(workdir / f"ledger-{entries}.db")
    await store.init_schema()
    try:
        ledger = store.ledger()
        others = {
            LedgerKey("user", str(1000 + n), "day", f"2026-10-{n % 28 + 1:02d}", MODEL, "input"): 1000
            for n in range(entries)
        }
        await ledger.advance(None, "0", others)
        projection = UsageProjection(store, PriceTable())
        guard = BudgetGuard(
            projection,
            BudgetLimits(Decimal(100), Decimal(1000), Decimal(1000), Decimal(10_000)),
            lambda: datetime.now(UTC),
        )
        await projection.catch_up()
        timings = []
        for n in range(messages):
            for recorded in answered("7", 2 * n + 1, 7, datetime.now(UTC)):
                await store.import_recorded([recorded])
            started = time.perf_counter()
            refusal = await guard.refusal(7, "7")
            timings.append((time.perf_counter() - started) * 1000)
            assert refusal is None
        return timings
    finally:
        await store.close()


async def catch_up_rate(events: int, workdir: Path, repeat: int) -> float:
    """Events per second a fresh projection folds, over a log of `events` billed answers in 100 streams."""
    store = SqliteEventStore(workdir / f"catchup-{repeat}.db")
    await store.init_schema()
    try:
        at = datetime(2026, 11, 1, tzinfo=UTC)
        per_stream = events // 100 // 2
        for stream in range(100):
            batch: list[RecordedEvent] = []
            for n in range(per_stream):
                batch += answered(f"s{stream}", 2 * n + 1, stream, at + timedelta(seconds=n))
                if len(batch) >= IMPORT_BATCH:
                    await store.import_recorded(batch)
                    batch = []
            if batch:
                await store.import_recorded(batch)
        projection = UsageProjection(store, PriceTable())
        started = time.perf_counter()
        folded = await projection.catch_up()
        return folded / (time.perf_counter() - started)
    finally:
        await store.close()


def p90(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


async def run(args: argparse.Namespace) -> int:
    sizes = [int(size) for size in args.entries.split(",")]
    print(f"{os.cpu_count()} CPUs; load average before {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="convo-ledger-") as tmp:
        workdir = Path(tmp)
        for r in range(args.repeats):
            (workdir / f"r{r}").mkdir()
        print(f"{'entries':>8} {'check ms p50':>13} {'p90':>8} {'vs smallest':>12}")
        medians: list[float] = []
        for size in sizes:
            runs = [await check_cost(size, args.messages, workdir / f"r{r}") for r in range(args.repeats)]
            median = statistics.median(statistics.median(timings) for timings in runs)
            spread = statistics.median(p90(timings) for timings in runs)
            medians.append(median)
            print(f"{size:>8} {median:>13.3f} {spread:>8.3f} {median / medians[0]:>11.2f}x")
        verdict = "target met" if medians[-1] <= TARGET * medians[0] else "target MISSED"
        print(f"budget check at {sizes[-1]} entries: {medians[-1] / medians[0]:.2f}x of {sizes[0]} ({verdict})")
        rates = [await catch_up_rate(args.events, workdir, r) for r in range(args.repeats)]
        print(
            f"catch-up of {args.events} events: median {statistics.median(rates):,.0f} events/s "
            f"(runs {min(rates):,.0f}-{max(rates):,.0f})"
        )
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.splitlines()[0])
    parser.add_argument("--entries", default="10,100000", help="ledger sizes, comma-separated (default 10,100000)")
    parser.add_argument("--messages", type=int, default=200, help="checks timed per size and repeat")
    parser.add_argument("--events", type=int, default=1_000_000, help="events the projection catches up")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
