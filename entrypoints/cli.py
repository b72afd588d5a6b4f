"""The `convo` command: bot, chat, replay, inspect, usage, stats, store init/copy, export, import, forget.

Bad configuration ends the command with one line on stderr (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from rich.console import Console

from domain.ports import StoreUnavailable
from entrypoints.config import CommonSettings, ConfigError, environment, store_url
from entrypoints.logs import Redactor, configure_logging

if TYPE_CHECKING:
    from domain.ports import EventStore
    from domain.prompt import ModelPrompts


SETTINGS_EPILOG = (
    "Settings come from environment variables, or from a .env file in the working directory (the environment wins "
    "over it); README.md's Configuration section lists them."
)
"""The end of every --help: where `entrypoints.config.environment` reads the settings from."""


class _Version(argparse.Action):
    """`--version`: print `convo <version>` and exit 0; the version is looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from entrypoints.version import package_version

        print(f"convo {package_version()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convo", description="Event-sourced Telegram conversation bot.", epilog=SETTINGS_EPILOG
    )
    parser.add_argument("--version", action=_Version, help="print convo's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_SettingsParser)

    bot = commands.add_parser("bot", help="run the Telegram bot (long polling, or a webhook server)")
    bot.add_argument("--webhook-url", metavar="URL", help="serve a webhook at this public https URL instead of polling")

    chat = commands.add_parser("chat", help="talk to the bot in this terminal")
    chat.add_argument("--user", help="name of the terminal conversation (default: your login name)")

    replay = commands.add_parser("replay", help="replay a user's event log for debugging")
    replay.add_argument("user", nargs="?", help="the user's Telegram id (the stream), e.g. 123456789")
    replay.add_argument("--list", action="store_true", help="list the streams instead")
    replay.add_argument("--at", type=int, metavar="VERSION", help="stop at this version")
    replay.add_argument("--json", action="store_true", help="print one JSON document")
    replay.add_argument("--full", action="store_true", help="print long texts in full")
    replay.add_argument(
        "--what-if", action="store_true", help="fold every recorded prompt again under other settings (read only)"
    )
    replay.add_argument("--persona", metavar="TEXT|NAME", help="with --what-if: a persona's name, or a system prompt")
    replay.add_argument("--model", metavar="M", help="with --what-if: another model (its tokenizer; asked with --ask)")
    replay.add_argument("--budget", type=int, metavar="TOKENS", help="with --what-if: another prompt budget")
    replay.add_argument(
        "--ask", action="store_true", help="with --what-if: put the questions to the model again (nothing recorded)"
    )

    inspect = commands.add_parser(
        "inspect", help="the log in a browser: streams, timelines, prompts and diffs (read only)"
    )
    inspect.add_argument(
        "--listen",
        default="127.0.0.1:8089",
        metavar="HOST:PORT",
        help="address to serve on (default 127.0.0.1:8089; any other than loopback needs CONVO_INSPECT_TOKEN)",
    )

    store = commands.add_parser("store", help="event store administration")
    store_commands = store.add_subparsers(
        dest="store_command", required=True, metavar="ACTION", parser_class=_SettingsParser
    )
    store_commands.add_parser("init", help="create the store's schema (idempotent)")
    copy = store_commands.add_parser("copy", help="copy every stream from SRC to DST (resumable, idempotent)")
    copy.add_argument("src", help="source store URL (e.g. fauna, sqlite:///convo.db)")
    copy.add_argument("dst", help="destination store URL (e.g. postgresql://user@host/db)")

    usage = commands.add_parser("usage", help="what the models cost: tokens and USD by user, chat, model or day")
    usage.add_argument("--by", choices=("user", "chat", "model", "day"), default="user", help="group by (default user)")
    usage.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="first day counted (UTC)")
    usage.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="last day counted (UTC)")
    usage.add_argument(
        "--prices", metavar="FILE", help="price with this TOML file instead of CONVO_PRICES (writes nothing)"
    )
    usage.add_argument("--json", action="store_true", help="print one JSON document")
    usage.add_argument("--top", type=_positive, metavar="N", help="only the N most costly rows")

    export = commands.add_parser("export", help="write a user's stream as JSON lines (to import) or Markdown")
    export.add_argument("user", help="the user's Telegram id (the stream)")
    export.add_argument("--format", choices=("jsonl", "md"), default="jsonl", help="JSON lines (default) or Markdown")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")

    restore = commands.add_parser("import", help="restore a JSON-lines export into the store (idempotent)")
    restore.add_argument("file", help="a file `convo export` wrote")
    restore.add_argument("--as", dest="as_user", metavar="USER", help="import it as this stream instead of its own")

    stats = commands.add_parser(
        "stats", help="how the bot is doing: users, questions, failures, latency, tokens and cost by model and day"
    )
    stats.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="first day counted (UTC)")
    stats.add_argument("--json", action="store_true", help="print one JSON document")

    forget = commands.add_parser("forget", help="erase a user's stream from the store")
    forget.add_argument("user", help="the user's Telegram id (the stream)")
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


class _SettingsParser(argparse.ArgumentParser):
    """A subcommand's parser, whose --help ends by saying where the settings come from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("epilog", SETTINGS_EPILOG)
        super().__init__(*args, **kwargs)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of 1 or more: {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `convo` console script."""
    args = _parser().parse_args(argv)
    env = environment()
    redactor = Redactor()
    try:
        common = CommonSettings.from_env(env)
        redactor.add(common.secrets)
        quiet = "INFO" if args.command == "bot" else "WARNING"
        configure_logging(redactor, common.log_level or quiet, common.log_format)
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            return runner.run(_COMMANDS[args.command](args, env, redactor))
    except ConfigError as error:
        print(f"convo: error: {redactor.scrub(str(error))}", file=sys.stderr)
        return 2
    except StoreUnavailable as error:
        print(f"convo: store unavailable: {redactor.scrub(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (about 15% less CPU per update), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _bot(args: argparse.Namespace, env: Mapping[str, str], redactor: Redactor) -> int:
    from adapters.telegram.app import run_bot  # first: aiogram is imported with its types built on first use
    from entrypoints.bootstrap import build_bot

    from aiogram.exceptions import TelegramUnauthorizedError  # isort: skip

    app = await build_bot(env, redactor)
    try:
        async with app.metrics_server():
            await run_bot(app.bot, app.dispatcher, app.service, app.settings, args.webhook_url, app.metrics)
    except TelegramUnauthorizedError:
        raise ConfigError("Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized): was the token revoked?") from None
    finally:
        await app.close()
    return 0


async def _what_if(
    args: argparse.Namespace, env: Mapping[str, str], store: EventStore, prompts: ModelPrompts, console: Console
) -> int:
    """`convo replay USER --what-if`: the recorded prompts folded again under other settings, read only."""
    from adapters.openai.tokens import token_counter
    from entrypoints import what_if as rendering
    from entrypoints.replay import json_text
    from entrypoints.settings import PersonaSettings, price_table
    from service.replay import StreamNotFound
    from service.what_if import WhatIf, ask_again, recorded_answer, what_if

    if args.budget is not None and args.budget < 1:
        raise ConfigError("--budget must be 1 or more tokens")
    preset = PersonaSettings.from_env(env).personas().find(args.persona) if args.persona else None
    change = WhatIf(persona=preset.prompt if preset is not None else args.persona, model=args.model, budget=args.budget)
    try:
        alternatives = await what_if(store, args.user, prompts, change, question=args.at, counter_for=token_counter)
    except StreamNotFound as missing:
        print(f"convo: {missing.args[0] if missing.args else missing}", file=sys.stderr)
        return 1
    answers = []
    if args.ask:
        from adapters.openai.settings import OpenAISettings, build_models

        chat, _ = build_models(OpenAISettings.from_env(env))
        prices = price_table(env)
        try:
            for alternative in alternatives:
                new = await ask_again(alternative, chat, prices)
                answers.append((recorded_answer(alternative, prices), new))
        finally:
            await chat.close()
    if args.json:
        print(json_text(rendering.what_if_json(args.user, change, alternatives, answers)))
    else:
        rendering.render_what_if(alternatives, answers, console)
    return 0


def _columns(env: Mapping[str, str]) -> int:
    """The width of output that is not a terminal: COLUMNS when set, else 160."""
    columns = env.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 40 else 160


async def _chat(args: argparse.Namespace, env: Mapping[str, str], redactor: Redactor) -> int:
    from entrypoints.bootstrap import build_service
    from entrypoints.chat import TerminalChat

    service = await build_service(env, redactor=redactor)
    try:
        await TerminalChat(service, args.user).run()
    finally:
        await service.close()
    return 0


async def _replay(args: argparse.Namespace, env: Mapping[str, str], redactor: Redactor) -> int:
    from entrypoints import replay
    from entrypoints.stores import open_configured_store
    from service.replay import StreamNotFound, list_streams, replay_stream

    if not args.list and not args.user:
        raise ConfigError("convo replay needs a USER (a Telegram id), or --list to see the streams")
    if args.at is not None and args.at < 1:
        raise ConfigError("--at must be a version of 1 or more")
    store = await open_configured_store(env)
    console = Console() if sys.stdout.isatty() else Console(width=_columns(env))
    try:
        if args.list:
            summaries = await list_streams(store)
            if args.json:
                print(replay.json_text(replay.streams_json(summaries)))
            else:
                replay.render_stream_list(summaries, console)
            return 0
        from adapters.openai.settings import ModelChoice
        from adapters.openai.tokens import model_prompts, token_counter
        from entrypoints.settings import PromptSettings

        prompts = model_prompts(ModelChoice.from_env(env), PromptSettings.from_env(env).policy())
        if args.what_if:
            return await _what_if(args, env, store, prompts, console)
        try:
            result = await replay_stream(store, args.user, prompts, at=args.at, counter_for=token_counter)
        except StreamNotFound as missing:
            print(f"convo: {missing.args[0] if missing.args else missing}", file=sys.stderr)
            return 1
        if args.json:
            print(replay.json_text(replay.replay_json(result)))
        else:
            replay.render_table(result, console, full=args.full)
        return 0
    finally:
        await store.close()


async def _inspect(args: argparse.Namespace, env: Mapping[str, str], redactor: Redactor) -> int:
    from entrypoints.inspect import TOKEN_SETTING, build_app, check_exposure, parse_listen, serve
    from entrypoints.inspect_setup import build_inspector

    listen = parse_listen(args.listen)
    token = env.get(TOKEN_SETTING, "").strip() or None
    check_exposure(listen, token)
    if token:
        redactor.add([token])
    inspector, close = await build_inspector(env)
    try:
        started = "convo inspect: serving {} (read only; Ctrl-C stops)"
        await serve(build_app(inspector, token), listen, lambda url: print(started.format(url), flush=True))
    finally:
        await close()
    return 0


async def _store(args: argparse.Namespace, env: Mapping[str, str], redactor: Redactor) -> int:
    from entrypoints.stores import open_configured_store

    if args.store_command == "init":
        store = await open_configured_store(env)
        await store.close()
        print(f"schema ready in {redactor.scrub(store_url(env))}")
        return 0
    return await _copy(args.src, args.dst, env)


async def _copy(src_url: str, dst_url: str, env: Mapping[str, str]) -> int:
    from rich.progress import Progress

    from entrypoints.stores import open_configured_store
    from service.store_copy import copy_store

    src = await open_configured_store(env, src_url)
    dst = await open_configured_store(env, dst_url)
    try:
        with Progress(transient=False) as progress:
            task = progress.add_task("copying", total=None)

            def advance(stream: str, copied: int) -> None:
                progress.update(task, advance=copied, description=f"stream {stream}")

            report = await copy_store(src, dst, advance)
        print(
            f"copied {report.events_copied} events in {report.streams_copied} streams "
            f"({report.streams_seen} streams checked)"
        )
    finally:
        await src.close()
        await dst.close()
    return 0


async def _usage(args: argparse.Namespace, env: Mapping[str, str], redactor: Redactor) -> int:
    from entrypoints import usage
    from entrypoints.settings import price_table
    from entrypoints.stores import open_configured_store
    from service.usage_report import usage_report

    if args.since and args.until and args.since > args.until:
        raise ConfigError("--since must not be after --until")
    prices = price_table(env, args.prices)
    store = await open_configured_store(env)
    try:
        report = await usage_report(store, prices, args.by, args.since, args.until, args.top)
    finally:
        await store.close()
    if args.json:
        print(json.dumps(usage.report_json(report), ensure_ascii=False, indent=2))
    else:
        usage.render_report(report, Console(), sys.stdout.isatty())
    return 0


async def _export(args: argparse.Namespace, env: Mapping[str, str], redactor: Redactor) -> int:
    from entrypoints.export import export_stream

    return await export_stream(env, args.user, args.format, args.output)


async def _import(args: argparse.Namespace, env: Mapping[str, str], redactor: Redactor) -> int:
    from entrypoints.export import import_file

    return await import_file(env, args.file, args.as_user)


async def _stats(args: argparse.Namespace, env: Mapping[str, str], redactor: Redactor) -> int:
    from entrypoints import stats
    from entrypoints.settings import price_table
    from entrypoints.stores import open_configured_store
    from service.stats_report import stats_report

    prices = price_table(env)
    store = await open_configured_store(env)
    try:
        if sys.stderr.isatty():
            from rich.progress import Progress

            from service.stats_report import log_size

            with Progress(console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task("reading the log", total=await log_size(store))
                result = await stats_report(store, prices, args.since, lambda events: progress.advance(task, events))
        else:
            result = await stats_report(store, prices, args.since)
    finally:
        await store.close()
    if args.json:
        print(json.dumps(stats.stats_json(result), ensure_ascii=False, indent=2))
    else:
        stats.render_stats(result, Console(), sys.stdout.isatty())
    return 0


async def _forget(args: argparse.Namespace, env: Mapping[str, str], redactor: Redactor) -> int:
    from entrypoints.stores import open_configured_store

    store = await open_configured_store(env)
    try:
        version = await store.current_version(args.user)
        if version == 0:
            print(f"convo: no events for stream {args.user!r}", file=sys.stderr)
            return 1
        if not args.yes:
            answer = await asyncio.to_thread(input, f"Erase all {version} events of stream {args.user}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing erased")
                return 1
        await store.delete_stream(args.user)
        print(f"erased stream {args.user} ({version} events)")
        return 0
    finally:
        await store.close()


_COMMANDS: dict[str, Callable[[argparse.Namespace, Mapping[str, str], Redactor], Coroutine[Any, Any, int]]] = {
    "bot": _bot,
    "chat": _chat,
    "replay": _replay,
    "inspect": _inspect,
    "store": _store,
    "export": _export,
    "import": _import,
    "forget": _forget,
    "usage": _usage,
    "stats": _stats,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
