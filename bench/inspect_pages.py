"""`convo inspect` on a long stream: one timeline page, read around the page only, against replaying the whole stream.

    python -m bench.inspect_pages [--events 100000] [--repeats 5]

A SQLite store in a scratch directory is filled with one stream of about N events (questions and answers decided
by the real domain, with the prompt settings recorded as the bot records them), then, side by side in one run:
(a) `service.inspection.timeline_page` for the newest page, a page in the middle and the first page, as the
inspector builds them; (b) reading the whole stream and folding its state, the least a page would cost if it
folded the log from the start (`convo replay`, which also rebuilds every prompt, costs far more: minutes here).
Printed: the median and the spread (min–max) in ms of each, the ratio of (b) to each page, and the load average
before and after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from adapters.sqlite.store import SqliteEventStore
from bench.history import seed_events
from domain.conversation import fold
from domain.events import PromptSettingsRecorded
from domain.prompt import ModelPrompts, PromptPolicy, estimate_tokens
from service.inspection import timeline_page
from service.replay import Folding

STREAM = "7"
SHAPING = PromptSettingsRecorded(persona="Be brief.", budget=3000, lookback=2000, model="seed")
BATCH = 5_000


async def timed(repeats: int, work: Callable[[], Awaitable[object]]) -> list[float]:
    """Milliseconds of each of `repeats` runs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(events: int, repeats: int, workdir: Path) -> dict[str, list[float]]:
    store = SqliteEventStore(str(workdir / "inspect.db"))
    await store.init_schema()
    try:
        seeded = seed_events(STREAM, events, shaping=SHAPING)
        for start in range(0, len(seeded), BATCH):
            await store.import_recorded(seeded[start : start + BATCH])
        newest = len(seeded)
        folding = Folding(ModelPrompts(PromptPolicy(budget=3000), estimate_tokens), lambda model: estimate_tokens)
        results: dict[str, list[float]] = {}
        for name, last in (("page: newest", newest), ("page: middle", newest // 2), ("page: first", 50)):

            def page(last: int = last) -> Awaitable[object]:
                return timeline_page(store, STREAM, folding, last=last)

            results[name] = await timed(repeats, page)

        async def whole() -> object:
            return fold([recorded async for recorded in store.read_forwards(STREAM)])

        results["whole fold"] = await timed(max(3, repeats // 2), whole)
        return results
    finally:
        await store.close()


def report(results: dict[str, list[float]], events: int, load: tuple[float, float]) -> None:
    whole = statistics.median(results["whole fold"])
    print(
        f"one stream of {events:,} events in SQLite; {os.cpu_count()} CPUs; load average {load[0]:.2f} → {load[1]:.2f}"
    )
    print(f"{'':16} {'median ms':>10} {'min–max ms':>18} {'whole/this':>11}")
    for name, times in results.items():
        median = statistics.median(times)
        spread = f"{min(times):.1f}–{max(times):.1f}"
        print(f"{name:16} {median:10.1f} {spread:>18} {whole / median:10.1f}x")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as workdir:
        results = asyncio.run(measure(args.events, args.repeats, Path(workdir)))
    report(results, args.events, (before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
