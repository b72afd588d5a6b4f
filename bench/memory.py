"""Memory: resident memory of a `convo bot` process as distinct users pile up.

`python -m bench.memory [--users 10000] [--store sqlite|postgres]`

Each user has a short conversation (/start, then one question, answered at once by the fake model). The bot's
VmRSS (from /proc/<pid>/status) is read when idle after start-up (the baseline) and after 10%, 50% and 100% of the
users (1k, 5k and 10k by default). Target: no growth with the number of users beyond a small bounded cache, read
here as under 1 MiB per 1,000 users between the middle and the last checkpoint. Telegram flood control is disabled.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.concurrency import LoadRig, fmt_row, load_rig, make_users, wait_until
from tests.doubles.telegram import FakeTelegram, User

BATCH = 250
"""Users whose conversations are queued together (kept small so the fake's queue stays short)."""
SETTLE_SECONDS = 1.0
"""Pause before reading RSS, so the last replies' buffers are released."""
TARGET_KIB_PER_1K = 1024.0


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def checkpoints(users: int) -> list[int]:
    """User counts at which RSS is read: 10%, 50% and 100%."""
    return sorted({max(1, users // 10), max(1, users // 2), users})


def converse(tg: FakeTelegram, users: Sequence[User]) -> int:
    """Queue /start and one question for each user; the number of bot messages that will result."""
    for user in users:
        tg.send_command(user, "start")
        tg.send_text(user, f"what is {user.id}?")
    return 2 * len(users)


def answered(tg: FakeTelegram, users: Sequence[User]) -> bool:
    """True once each user has the /start reply and the final answer to the question."""
    return all(
        len(texts := [m.text or "" for m in tg.bot_messages(user.id)]) >= 2 and texts[-1].startswith("echo:")
        for user in users
    )


async def grow_to(rig: LoadRig, done: int, target: int) -> None:
    """Have users number `done` to `target` (exclusive) converse, a batch at a time."""
    while done < target:
        batch = make_users(rig.tg, min(BATCH, target - done))
        converse(rig.tg, batch)
        await wait_until(lambda batch=batch: answered(rig.tg, batch), 120, interval=0.05)  # type: ignore[misc]
        done += len(batch)


async def measure(users: int, store: str) -> dict[str, Any]:
    """RSS at idle and at each checkpoint."""
    async with load_rig(store) as rig:
        pid = rig.bot.process.pid
        await asyncio.sleep(SETTLE_SECONDS)
        points = [(0, rss_kib(pid))]
        done = 0
        for target in checkpoints(users):
            await grow_to(rig, done, target)
            done = target
            await asyncio.sleep(SETTLE_SECONDS)
            points.append((target, rss_kib(pid)))
    return summarise(users, store, points)


def summarise(users: int, store: str, points: list[tuple[int, int]]) -> dict[str, Any]:
    """Growth per 1,000 users over the whole run and over the last half."""
    (first_n, first_kib), (mid_n, mid_kib), (last_n, last_kib) = points[1], points[-2], points[-1]
    overall = (last_kib - first_kib) * 1000 / max(1, last_n - first_n)
    late = (last_kib - mid_kib) * 1000 / max(1, last_n - mid_n)
    return {
        "users": users,
        "store": store,
        "points": points,
        "idle_kib": points[0][1],
        "growth_kib_per_1k": overall,
        "late_growth_kib_per_1k": late,
        "growth_over_idle_kib": last_kib - points[0][1],
        "target_met": late < TARGET_KIB_PER_1K,
    }


def report(result: dict[str, Any]) -> None:
    """Print the result table."""
    print(
        f"memory: RSS of the convo bot process, /start + 1 question per user, store {result['store']}; "
        "Telegram flood control disabled"
    )
    print(fmt_row("users", "VmRSS (MiB)"))
    print(fmt_row("-" * 52, "-" * 22))
    for count, kib in result["points"]:
        print(fmt_row(f"{count}" + (" (idle, baseline)" if count == 0 else ""), f"{kib / 1024:.1f}"))
    print(fmt_row("growth over idle at the end (MiB)", f"{result['growth_over_idle_kib'] / 1024:.1f}"))
    print(fmt_row("growth per 1k users, first to last (KiB)", f"{result['growth_kib_per_1k']:.0f}"))
    print(fmt_row("growth per 1k users, middle to last (KiB)", f"{result['late_growth_kib_per_1k']:.0f}"))
    verdict = "met" if result["target_met"] else "MISSED"
    print(fmt_row(f"target < {TARGET_KIB_PER_1K:.0f} KiB per 1k users (late)", verdict))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, return the figures."""
    args = parse_args(argv)
    result = asyncio.run(measure(args.users, args.store))
    report(result)
    return result


if __name__ == "__main__":
    main()
