"""Overhead: what convo itself costs per update, with a model that answers at once.

`python -m bench.overhead [--updates 5000] [--rate 100] [--latency-updates 1000] [--store sqlite|postgres]`
`python -m bench.overhead --one-user 300 --runs 3`: only the one-user mode (3, below).

1. Throughput: `--updates` questions from `--updates / 10` users are queued at once; updates per second from the
   queueing to the last reply reaching the fake Telegram server. Target: at least 500/s.
2. Added latency at a steady `--rate` updates/s: each update is queued on schedule (one user every time, users in
   rotation) and timed from the getUpdates response that hands it to the bot to the bot's first sendMessage for it
   reaching the fake. The fake model answers at once, so this is convo's own latency (plus two local HTTP round
   trips to the fakes). Target: p99 under 10 ms. The same figures counted from the update being queued (which adds
   the fake server's deliberate 2 ms batching delay of a woken long poll) are printed too.

3. One user, in sequence (`--one-user N`): one user asks N questions, each once the previous reply arrived, and each
   is timed from its hand-over to the bot's first message for it; convo and the baseline alternate run by run.
   Targets: convo's p50 at most the baseline's, its p99 at most 1.5x the baseline's.

The baseline (`bench.baseline`, one update at a time, calling the same instant fake model through the same OpenAI
adapter, without streaming) is measured the same way in the same run, on a smaller sample for throughput. convo
runs as a `convo bot` subprocess; the baseline runs in this process. Telegram flood control is disabled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from bench.baseline import run_baseline_polling
from bench.concurrency import (
    all_answered,
    baseline_for,
    cpu_seconds,
    fakes,
    fmt_row,
    last_reply_time,
    load_rig,
    make_users,
    queue_questions,
    wait_until,
)
from tests.doubles.telegram import FakeTelegram, User

MESSAGES_PER_USER = 10
"""Throughput phase: questions per user (under the default per-user burst of 12, so nothing is throttled)."""
LATENCY_USERS = 200
"""Steady-load phase: most users in rotation (each sends one message every LATENCY_USERS / rate seconds)."""
BASELINE_THROUGHPUT_UPDATES = 500
ONE_USER_RATE = "1000000"
ONE_USER_BURST = "1000000"
"""The one-user mode lifts the bot's per-user flood limit: it measures latency, not the limiter."""
TARGET_RATE = 500.0
TARGET_P99_MS = 10.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value at `fraction` (0..1) of the sorted values, nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


# ---------------------------------------------------------------------------------------------- throughput


async def convo_throughput(updates: int, store: str) -> tuple[float, float]:
    """Updates per second convo answers when `updates` questions are queued at once, and bot CPU ms per update."""
    async with load_rig(store) as rig:
        users = max(1, updates // MESSAGES_PER_USER)
        cpu_before = cpu_seconds(rig.bot.process.pid)
        expected = queue_questions(rig.tg, make_users(rig.tg, users), MESSAGES_PER_USER)
        started = time.monotonic()
        await wait_until(lambda: all_answered(rig.tg, expected), 60 + updates * 0.05, interval=0.1)
        total = users * MESSAGES_PER_USER
        cpu_ms = (cpu_seconds(rig.bot.process.pid) - cpu_before) * 1000 / total
        return total / (last_reply_time(rig.tg) - started), cpu_ms


async def baseline_throughput(updates: int, store: str) -> float:
    """Updates per second of the sequential baseline (same instant fake model) on `updates` queued questions."""
    with tempfile.TemporaryDirectory(prefix="convo-bench-base-") as tmp:
        async with fakes(0.0) as (tg, ai), baseline_for(ai, Path(tmp), store) as baseline:
            users = max(1, updates // MESSAGES_PER_USER)
            queue_questions(tg, make_users(tg, users), MESSAGES_PER_USER)
            total = users * MESSAGES_PER_USER
            started = time.monotonic()
            await asyncio.wait_for(run_baseline_polling(tg.token, tg.api_base, baseline, total), 600)
            return total / (last_reply_time(tg) - started)


# ---------------------------------------------------------------------------------------------- latency


@attrs.frozen
class Injected:
    """One steady-phase update: its chat, its id, and when it was queued at the fake server."""

    chat_id: int
    update_id: int
    queued: float


@attrs.frozen
class Latencies:
    """Milliseconds to each update's first reply, counted from two starting points."""

    from_queued: list[float]
    """From the update being queued at the fake server (includes the server's own batching delay)."""
    from_handed_over: list[float]
    """From the getUpdates response that carried it to the bot: what the bot itself adds."""


async def inject_steadily(tg: FakeTelegram, users: Sequence[User], count: int, rate: float) -> list[Injected]:
    """Queue `count` messages at `rate`/s on schedule, users in rotation."""
    injected: list[Injected] = []
    start = time.monotonic()
    for index in range(count):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        user = users[index % len(users)]
        tg.send_text(user, f"steady question {index}")
        injected.append(Injected(user.id, int(tg.updates[-1]["update_id"]), time.monotonic()))
    return injected


def first_replies(tg: FakeTelegram, since: int) -> dict[int, list[float]]:
    """Per chat, arrival times of the bot's successful sendMessage calls among `calls[since:]`, in order."""
    found: dict[int, list[float]] = {}
    for call in tg.calls[since:]:
        if call.method.lower() == "sendmessage" and call.ok:
            found.setdefault(int(call.params["chat_id"]), []).append(call.time)
    return found


def latencies(tg: FakeTelegram, injected: Sequence[Injected], replies: dict[int, list[float]]) -> Latencies:
    """Each update's latency to the bot's first message for it (k-th update of a chat, k-th reply)."""
    seen: dict[int, int] = {}
    queued, handed = [], []
    for update in injected:
        index = seen.get(update.chat_id, 0)
        seen[update.chat_id] = index + 1
        reply = replies[update.chat_id][index]
        queued.append((reply - update.queued) * 1000)
        handed.append((reply - (tg.handed_over_at(update.update_id) or update.queued)) * 1000)
    return Latencies(queued, handed)


async def steady_latency(tg: FakeTelegram, users: Sequence[User], count: int, rate: float) -> Latencies:
    """Inject at a steady rate, wait for every reply, return the latencies."""
    since = len(tg.calls)
    injected = await inject_steadily(tg, users, count, rate)

    def answered() -> bool:
        replies = first_replies(tg, since)
        return sum(len(times) for times in replies.values()) >= count

    await wait_until(answered, 60, interval=0.1)
    return latencies(tg, injected, first_replies(tg, since))


async def warm_up(tg: FakeTelegram, users: Sequence[User]) -> None:
    """Each user's first message (registration), so the steady phase measures ordinary questions."""
    expected = queue_questions(tg, users, 1)
    await wait_until(lambda: all_answered(tg, expected), 120, interval=0.05)


async def convo_latency(count: int, rate: float, store: str) -> Latencies:
    """Per-update latency of convo at a steady rate."""
    async with load_rig(store) as rig:
        users = make_users(rig.tg, min(LATENCY_USERS, count))
        await warm_up(rig.tg, users)
        return await steady_latency(rig.tg, users, count, rate)


async def baseline_latency(count: int, rate: float, store: str) -> Latencies:
    """Per-update latency of the sequential baseline (same instant fake model) at the same steady rate."""
    with tempfile.TemporaryDirectory(prefix="convo-bench-base-") as tmp:
        async with fakes(0.0) as (tg, ai), baseline_for(ai, Path(tmp), store) as baseline:
            users = make_users(tg, min(LATENCY_USERS, count))
            queue_questions(tg, users, 1)
            polling = asyncio.create_task(run_baseline_polling(tg.token, tg.api_base, baseline, len(users) + count))
            try:
                await wait_until(lambda: len(tg.calls_to("sendMessage")) >= len(users), 120)
                return await steady_latency(tg, users, count, rate)
            finally:
                await asyncio.wait_for(polling, 30)


# ---------------------------------------------------------------------------------------------- one user


async def one_user_latencies(tg: FakeTelegram, user: User, count: int) -> list[float]:
    """One user asking `count` questions one after another, each sent once the previous reply arrived: ms from
    the getUpdates response that hands the question over to the bot's first message for it."""
    found: list[float] = []
    for index in range(count):
        since = len(tg.calls)
        tg.send_text(user, f"sequential question {index}")
        update_id = int(tg.updates[-1]["update_id"])

        def replied(since: int = since) -> bool:
            return bool(first_replies(tg, since).get(user.id))

        await wait_until(replied, 30, interval=0.0005)
        reply = first_replies(tg, since)[user.id][0]
        found.append((reply - (tg.handed_over_at(update_id) or reply)) * 1000)
    return found


async def convo_one_user(count: int, store: str) -> list[float]:
    """convo's added latency for one user asking in sequence (after a registering first message)."""
    async with load_rig(store, CONVO_RATE_LIMIT=ONE_USER_RATE, CONVO_RATE_BURST=ONE_USER_BURST) as rig:
        [user] = make_users(rig.tg, 1)
        await warm_up(rig.tg, [user])
        return await one_user_latencies(rig.tg, user, count)


async def baseline_one_user(count: int, store: str) -> list[float]:
    """The tutorial-shaped baseline's latency for one user asking in sequence."""
    with tempfile.TemporaryDirectory(prefix="convo-bench-base-") as tmp:
        async with fakes(0.0) as (tg, ai), baseline_for(ai, Path(tmp), store) as baseline:
            [user] = make_users(tg, 1)
            queue_questions(tg, [user], 1)
            polling = asyncio.create_task(run_baseline_polling(tg.token, tg.api_base, baseline, 1 + count))
            try:
                await wait_until(lambda: len(tg.calls_to("sendMessage")) >= 1, 60)
                return await one_user_latencies(tg, user, count)
            finally:
                await asyncio.wait_for(polling, 30)


async def measure_one_user(args: argparse.Namespace) -> dict[str, Any]:
    """The one-user sequential mode, convo and the baseline interleaved, `runs` times each."""
    load_before = os.getloadavg()[0]
    convo: list[tuple[float, float]] = []
    base: list[tuple[float, float]] = []
    for _ in range(args.runs):
        for into, run in ((convo, convo_one_user), (base, baseline_one_user)):
            times = await run(args.one_user, args.store)
            into.append((percentile(times, 0.5), percentile(times, 0.99)))
    return {"convo": convo, "baseline": base, "load_1min": (load_before, os.getloadavg()[0]), "args": args}


def report_one_user(result: dict[str, Any]) -> None:
    """Print the one-user table: medians over runs, each run's figures, ratios and the targets."""
    args = result["args"]
    before, after = result["load_1min"]
    print(
        f"overhead, one user: {args.one_user} questions in sequence, instant model, store {args.store}, "
        f"{args.runs} run(s) interleaved; {os.cpu_count()} CPUs, load {before:.2f} before, {after:.2f} after"
    )
    medians = {}
    for name in ("convo", "baseline"):
        runs = result[name]
        p50, p99 = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        medians[name] = (p50, p99)
        each = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in runs)
        print(fmt_row(f"{name} p50 / p99 (ms), median of runs", f"{p50:.1f} / {p99:.1f}") + f"  runs: {each}")
    (c50, c99), (b50, b99) = medians["convo"], medians["baseline"]
    print(
        fmt_row("convo / baseline p50 (x)", f"{c50 / b50:.2f}")
        + ("  target <= 1: met" if c50 <= b50 else "  target <= 1: MISSED")
    )
    print(
        fmt_row("convo / baseline p99 (x)", f"{c99 / b99:.2f}")
        + ("  target <= 1.5: met" if c99 <= 1.5 * b99 else "  target <= 1.5: MISSED")
    )


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=5000, help="throughput phase: questions queued at once")
    parser.add_argument("--rate", type=float, default=100.0, help="steady phase: updates per second")
    parser.add_argument("--latency-updates", type=int, default=1000, help="steady phase: how many updates")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--runs", type=int, default=1, help="repeat and report medians")
    parser.add_argument(
        "--one-user",
        type=int,
        metavar="N",
        help="only the one-user mode: N questions in sequence, against the baseline",
    )
    return parser.parse_args(argv)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Both phases for convo and the baseline, `runs` times; medians."""
    base_updates = min(args.updates, BASELINE_THROUGHPUT_UPDATES)
    rates, cpus, base_rates, p50s, p99s, base_p50s, base_p99s = [], [], [], [], [], [], []
    queued_p50s, queued_p99s, base_queued_p99s = [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(args.runs):
        rate, cpu = await convo_throughput(args.updates, args.store)
        rates.append(rate)
        cpus.append(cpu)
        base_rates.append(await baseline_throughput(base_updates, args.store))
        convo = await convo_latency(args.latency_updates, args.rate, args.store)
        base = await baseline_latency(args.latency_updates, args.rate, args.store)
        p50s.append(percentile(convo.from_handed_over, 0.5))
        p99s.append(percentile(convo.from_handed_over, 0.99))
        base_p50s.append(percentile(base.from_handed_over, 0.5))
        base_p99s.append(percentile(base.from_handed_over, 0.99))
        queued_p50s.append(percentile(convo.from_queued, 0.5))
        queued_p99s.append(percentile(convo.from_queued, 0.99))
        base_queued_p99s.append(percentile(base.from_queued, 0.99))
    rate, p99, base_rate = statistics.median(rates), statistics.median(p99s), statistics.median(base_rates)
    return {
        "updates": args.updates,
        "rate": args.rate,
        "latency_updates": args.latency_updates,
        "store": args.store,
        "runs": args.runs,
        "throughputs": rates,
        "bot_cpu_ms_per_update": statistics.median(cpus),
        "throughput": rate,
        "baseline_throughput": base_rate,
        "baseline_updates": base_updates,
        "throughput_ratio": rate / base_rate,
        "p50_ms": statistics.median(p50s),
        "p99_ms": p99,
        "p99s_ms": p99s,
        "baseline_p50_ms": statistics.median(base_p50s),
        "baseline_p99_ms": statistics.median(base_p99s),
        "queued_p50_ms": statistics.median(queued_p50s),
        "queued_p99_ms": statistics.median(queued_p99s),
        "queued_p99s_ms": queued_p99s,
        "baseline_queued_p99_ms": statistics.median(base_queued_p99s),
        "load_1min": (load_before, os.getloadavg()[0]),
        "cpus": os.cpu_count(),
        "throughput_target_met": rate >= TARGET_RATE,
        "latency_target_met": p99 < TARGET_P99_MS,
    }


def report(result: dict[str, Any]) -> None:
    """Print the result table."""
    print(
        f"overhead: instant model, store {result['store']}, medians of {result['runs']} run(s); "
        "Telegram flood control disabled"
    )
    before, after = result["load_1min"]
    print(f"machine: {result['cpus']} CPUs, 1-minute load {before:.2f} before and {after:.2f} after the runs")
    print(fmt_row("measure", "value"))
    print(fmt_row("-" * 52, "-" * 22))
    print(fmt_row(f"convo throughput, {result['updates']} updates (upd/s)", f"{result['throughput']:.0f}"))
    print(fmt_row("convo throughput of each run (upd/s)", " ".join(f"{r:.0f}" for r in result["throughputs"])))
    print(fmt_row("convo bot process CPU per update (ms)", f"{result['bot_cpu_ms_per_update']:.2f}"))
    print(
        fmt_row(
            f"baseline throughput, {result['baseline_updates']} updates (upd/s)", f"{result['baseline_throughput']:.0f}"
        )
    )
    print(fmt_row("throughput convo / baseline (x)", f"{result['throughput_ratio']:.2f}"))
    print(fmt_row(f"target >= {TARGET_RATE:.0f} upd/s", "met" if result["throughput_target_met"] else "MISSED"))
    steady = f"{result['latency_updates']} updates at {result['rate']:.0f}/s"
    print(fmt_row(f"convo added latency p50 (ms), {steady}", f"{result['p50_ms']:.1f}"))
    print(fmt_row("convo added latency p99 (ms)", f"{result['p99_ms']:.1f}"))
    print(fmt_row("convo added latency p99 of each run (ms)", " ".join(f"{v:.1f}" for v in result["p99s_ms"])))
    print(
        fmt_row(
            "baseline latency p50 / p99 (ms), same load",
            f"{result['baseline_p50_ms']:.1f} / {result['baseline_p99_ms']:.1f}",
        )
    )
    print(
        fmt_row(
            "from queued at the server: convo p50 / p99 (ms)",
            f"{result['queued_p50_ms']:.1f} / {result['queued_p99_ms']:.1f}",
        )
    )
    print(fmt_row("from queued at the server: baseline p99 (ms)", f"{result['baseline_queued_p99_ms']:.1f}"))
    print(fmt_row(f"target p99 < {TARGET_P99_MS:.0f} ms", "met" if result["latency_target_met"] else "MISSED"))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, return the figures."""
    args = parse_args(argv)
    if args.one_user:
        one_user = asyncio.run(measure_one_user(args))
        report_one_user(one_user)
        return one_user
    result = asyncio.run(measure(args))
    report(result)
    return result


if __name__ == "__main__":
    main()
