"""Command line entry point: run the fake server as a standalone process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from .flood import FloodLimits
from .server import FakeTelegram
from .state import DEFAULT_TOKEN


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m tests.doubles.telegram.cli``."""
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API server for tests and benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the only bot token accepted")
    parser.add_argument("--bot-username", default="convo_test_bot")
    parser.add_argument("--no-flood-control", action="store_true", help="disable 429 flood limits")
    parser.add_argument("--no-quirks", action="store_true", help="disable getUpdates/setWebhook pacing quirks")
    return parser


async def serve(args: argparse.Namespace) -> None:
    """Start the server, print its base URL on one line, run until SIGINT/SIGTERM."""
    flood = FloodLimits.disabled() if args.no_flood_control else FloodLimits()
    tg = FakeTelegram(
        args.token,
        host=args.host,
        port=args.port,
        bot_username=args.bot_username,
        flood=flood,
        api_quirks=not args.no_quirks,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with tg:
        print(tg.api_base, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` and serve."""
    asyncio.run(serve(build_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
