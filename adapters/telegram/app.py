"""Assembling and running the bot: the aiogram Bot and Dispatcher, the command menu, polling or webhook.

The performance tweaks this assembly applies (pinned response models, a frozen start-up heap) live in `tuning`."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    ClientDecodeError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import BotCommand
from aiohttp import web
from pydantic import ValidationError

from adapters.metrics.registry import Metrics
from adapters.settings import ConfigError
from adapters.telegram import replies
from adapters.telegram.admins import Admins
from adapters.telegram.files import TelegramFiles
from adapters.telegram.handlers import (
    choices,
    commands,
    export,
    forget,
    language,
    media,
    messages,
    turns,
    usage,
    voice,
)
from adapters.telegram.handlers.choices import Choices
from adapters.telegram.handlers.media import MediaOptions
from adapters.telegram.i18n import ENGLISH, LANGUAGES, translated
from adapters.telegram.identity import causation_of, chat_of
from adapters.telegram.intake import Intake, Sharing
from adapters.telegram.live import LiveAnswers
from adapters.telegram.middlewares import (
    AccessControl,
    Addressing,
    ChatsLanguage,
    Flood,
    Requests,
    SendersLanguage,
    UpdateLog,
    flood_wait_on_arrival,
)
from adapters.telegram.patience import Patience
from adapters.telegram.polling import SafePolling
from adapters.telegram.ratelimit import RateLimiter
from adapters.telegram.settings import TelegramSettings
from adapters.telegram.speech import Speech
from adapters.telegram.streaming import StreamStyle
from adapters.telegram.tally import CountUpdate, not_counted
from adapters.telegram.tuning import pin_response_models, settle_heap
from adapters.telegram.webhook import build_webhook_app
from domain.ports import LeaseTaken, Speaker, StoreError
from service.conversations import ConversationService
from service.locks import StreamLocks
from service.recovery import recover_pending

log = structlog.get_logger(__name__)

CLAIM_STALE_AFTER = 20.0
"""Seconds after which a webhook worker's unrenewed claim on an update is taken to be a dead worker's."""
DRAIN_SECONDS = 20.0
"""How long a stopping bot waits for answers in flight; unfinished ones are recovered at the next start."""


def build_bot(settings: TelegramSettings) -> Bot:
    """The aiogram Bot, pointed at a self-hosted Bot API server when TELEGRAM_API_BASE is set."""
    pin_response_models()
    api = TelegramAPIServer.from_base(settings.api_base) if settings.api_base else None
    session = AiohttpSession(api=api) if api else AiohttpSession()
    session.middleware(Patience())
    return Bot(settings.token, session=session)


def build_dispatcher(
    service: ConversationService,
    settings: TelegramSettings,
    options: Choices | None = None,
    *,
    files: TelegramFiles | None = None,
    speaker: Speaker | None = None,
    media_options: MediaOptions | None = None,
    count_update: CountUpdate = not_counted,
) -> Dispatcher:
    """Routers and middlewares; the service and settings reach handlers by keyword injection. `files` reads what
    users send (None: nothing can be read), `speaker` speaks answers for /voice (None: nobody can), `count_update`
    counts each update handled by kind and outcome."""
    chat_locks = StreamLocks()
    limiter = RateLimiter(settings.rate_per_minute, settings.rate_burst)
    dispatcher = Dispatcher(
        disable_fsm=True,  # convo keeps no conversation state in aiogram: the event log is the state
        service=service,
        live=LiveAnswers(stream_style(settings)),
        choices=options or Choices(),
        admins=Admins(settings.admins),
        chat_locks=chat_locks,
        rate_limiter=limiter,
        files=files,
        speech=Speech(speaker),
        media=media_options or MediaOptions(),
    )
    access = AccessControl(settings.allowed_users, settings.allowed_chats)
    middlewares = (
        SendersLanguage(),
        UpdateLog(count_update),
        access,
        Addressing(),
        Flood(limiter),
        Requests(),
        ChatsLanguage(service),
    )
    for middleware in middlewares:
        dispatcher.update.outer_middleware(middleware)
    dispatcher.include_routers(
        choices.router,
        language.router,
        usage.router,
        voice.router,
        export.router,
        forget.router,
        turns.router,
        commands.router,
        media.router,
        messages.router,
    )
    return dispatcher


def stream_style(settings: TelegramSettings) -> StreamStyle:
    """How answers are shown while generated, from CONVO_STREAM, the intervals and CONVO_SHOW_REASONING."""
    return StreamStyle(
        mode=settings.stream,
        edit_interval=settings.edit_interval,
        group_interval=settings.group_edit_interval,
        show_reasoning=settings.show_reasoning == "collapsed",
    )


async def check_bot(bot: Bot, settings: TelegramSettings) -> str:
    """Fail with one clear line if Telegram is unreachable or rejects the token; the bot's @username otherwise."""
    where = settings.api_base or "https://api.telegram.org"
    try:
        me = await bot.get_me()
    except TelegramUnauthorizedError:
        raise ConfigError("Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized): check the token") from None
    except TelegramNetworkError as error:
        raise ConfigError(f"cannot reach the Telegram Bot API at {where}: {error.message}") from None
    except TelegramAPIError as error:
        raise ConfigError(f"the Telegram Bot API at {where} answered getMe with: {error.message}") from None
    except (ClientDecodeError, ValidationError):
        raise ConfigError(
            f"{where} did not answer like a Telegram Bot API: check TELEGRAM_API_BASE (it should be the server's "
            "root, e.g. http://localhost:8081)"
        ) from None
    return me.username or str(me.id)


async def run_bot(
    bot: Bot,
    dispatcher: Dispatcher,
    service: ConversationService,
    settings: TelegramSettings,
    webhook_url: str | None,
    metrics: Metrics | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM: take up what the inbox and the log hold unfinished, then poll or serve the
    webhook. A second poller of the same bot on the same store is refused with one line. The webhook server serves
    `metrics` at /metrics; they count the updates, and read how many this process holds."""
    username = await check_bot(bot, settings)
    menu = asyncio.create_task(_set_commands(bot))  # one call per language: serving need not wait for them
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    chat_locks: StreamLocks = dispatcher["chat_locks"]
    inbox = service.store.inbox(str(bot.id))
    arrival = flood_wait_on_arrival(dispatcher["rate_limiter"])
    allowed = dispatcher.resolve_used_update_types()
    count = metrics.count_update if metrics is not None else not_counted
    try:
        if webhook_url:
            sharing = Sharing(worker_name(), timedelta(seconds=max(CLAIM_STALE_AFTER, service.takeover_after)))
            intake = Intake(bot, dispatcher, inbox, chat_locks, arrival, sharing, count)
            _hold(metrics, intake)
            webhook = _serve_webhook(bot, intake, settings, webhook_url, allowed, stop, metrics)
            await _serve(intake, service, chat_locks, username, "webhook", webhook)
            return
        intake = Intake(bot, dispatcher, inbox, chat_locks, arrival, count=count)
        _hold(metrics, intake)
        polling = _serve_polling(bot, intake, allowed, stop)
        try:
            async with service.store.poller_lease(str(bot.id)):
                await _serve(intake, service, chat_locks, username, "polling", polling)
        except LeaseTaken:
            polling.close()
            raise ConfigError(
                f"another convo bot is already polling for @{username} on this store: stop it first "
                "(one poller per bot; several workers need --webhook-url)"
            ) from None
    finally:
        menu.cancel()


def _hold(metrics: Metrics | None, intake: Intake) -> None:
    """The updates-waiting gauge reads the intake's updates in flight."""
    if metrics is not None:
        metrics.hold(lambda: intake.in_flight)


async def _serve(
    intake: Intake,
    service: ConversationService,
    chat_locks: StreamLocks,
    username: str,
    mode: str,
    serving: Coroutine[Any, Any, None],
) -> None:
    """Resume the inbox, then recover the log's pending requests (behind the resumed updates of their chats); a
    request whose update the inbox still holds is the inbox's to finish (here, or by the worker that claimed it)."""
    owned: set[str] = set()
    try:
        owned = {causation_of(update_id) for update_id in await intake.resume()}
    except StoreError as error:
        log.error("inbox_resume_failed", error=str(error))
    recovery = asyncio.create_task(
        recover_pending(
            service,
            accept=lambda stream: chat_of(stream) is not None,
            hold=chat_locks.hold,
            owned=lambda pending: pending.causation_id in owned,
        )
    )
    settle_heap()
    log.info("bot_started", bot=username, mode=mode)
    try:
        await serving
    finally:
        recovery.cancel()
        await intake.drain(DRAIN_SECONDS)
        log.info("bot_stopped")


def commands_in(language: str) -> list[BotCommand]:
    """The command menu with its descriptions in `language`."""
    return [
        BotCommand(command=command, description=translated(description, language))
        for command, description in replies.COMMANDS
    ]


async def _set_commands(bot: Bot) -> None:
    """The command menu: English for every client, and each other language for clients set to it (Telegram shows a
    user the list of their `language_code`). A failure is one warning, and the rest is not tried: the bot works
    without a menu."""
    for spoken in LANGUAGES:
        try:
            code = None if spoken == ENGLISH else spoken
            await bot.set_my_commands(commands_in(spoken), language_code=code)
        except AiogramError as error:
            log.warning("set_my_commands_failed", language=spoken, error=str(error).splitlines()[0][:300])
            return


def worker_name() -> str:
    """This process's name in inbox claims: host, pid and a random part (pids repeat across hosts and restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


async def _serve_polling(bot: Bot, intake: Intake, allowed: list[str], stop: asyncio.Event) -> None:
    await bot.delete_webhook(drop_pending_updates=False)
    polling = SafePolling(bot, intake, allowed)
    runner = asyncio.create_task(polling.run())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    polling.stop()
    stopper.cancel()
    await runner


async def _set_webhook(bot: Bot, url: str, secret: str, allowed: list[str]) -> None:
    """setWebhook, waiting out Telegram's one-call-per-second limit (several workers start at once)."""
    for _ in range(5):
        try:
            await bot.set_webhook(url, secret_token=secret, allowed_updates=allowed)
            return
        except TelegramRetryAfter as flood:
            await asyncio.sleep(flood.retry_after)
    await bot.set_webhook(url, secret_token=secret, allowed_updates=allowed)


async def _serve_webhook(
    bot: Bot,
    intake: Intake,
    settings: TelegramSettings,
    url: str,
    allowed: list[str],
    stop: asyncio.Event,
    metrics: Metrics | None,
) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--webhook-url must be an https URL Telegram can reach, got {url!r}")
    path = parts.path or "/webhook"
    app = build_webhook_app(intake, path, settings.webhook_secret, metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    host, port = settings.webhook_listen
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {host}:{port} (CONVO_WEBHOOK_LISTEN): {error.strerror}") from None
    await _set_webhook(bot, url, settings.webhook_secret, allowed)
    log.info("webhook_listening", host=host, port=port, path=path)
    await stop.wait()
    await runner.cleanup()
