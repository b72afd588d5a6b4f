"""The composition root: the one place that builds concrete adapters and wires them into the service.

The settings are read and checked before anything is built, and every secret in them goes to the log redactor
start-up made. The bot's outbox is the service's from its construction on. The bot's metrics are built here too:
its store and chat model are wrapped in the port decorators that feed them (adapters/metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING

import attrs

from adapters.openai.settings import build_audio, build_models
from adapters.openai.tokens import model_prompts
from adapters.stores import backend_of
from adapters.telegram.settings import TelegramSettings
from domain.ports import ChatModel, EventStore, Speaker
from domain.prompt import estimate_tokens
from entrypoints.config import store_url
from entrypoints.logs import Redactor
from entrypoints.settings import ServiceSettings
from entrypoints.stores import open_configured_store
from service.conversations import ConversationService
from service.outcomes import Outbox

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher

    from adapters.metrics.registry import Metrics


async def build_service(
    env: Mapping[str, str], outbox: Outbox | None = None, *, redactor: Redactor | None = None
) -> ConversationService:
    """Store, models and prompt policy from the environment, wired into the conversation service."""
    settings = ServiceSettings.from_env(env)
    if redactor is not None:
        redactor.add(settings.model.secrets())
    service, _ = await _service(settings, env, outbox)
    return service


async def _service(
    settings: ServiceSettings,
    env: Mapping[str, str],
    outbox: Outbox | None,
    exempt: frozenset[int] = frozenset(),
    metrics: Metrics | None = None,
) -> tuple[ConversationService, Speaker]:
    """The service, and the speaker of spoken answers on the same model server (the front end speaks them); with
    `metrics`, its store and chat model feed them."""
    store: EventStore = await open_configured_store(env)
    chat, images = build_models(settings.model)
    transcriber, speaker = build_audio(settings.model, chat.client)
    prompts = model_prompts(settings.model, settings.prompt.policy())
    exact = prompts.count is not estimate_tokens or settings.model.base_url is None  # OpenAI's own API: no /tokenize
    meter = None if exact else chat.server_tokenizer()
    answering: ChatModel = chat
    if metrics is not None:
        from adapters.metrics.chat import MeteredChatModel
        from adapters.metrics.store import MeteredEventStore

        store = MeteredEventStore(store, metrics, backend_of(store_url(env)))
        answering = MeteredChatModel(chat, metrics)
    service = ConversationService(
        store,
        answering,
        images,
        prompts.policy,
        prompts.count,
        outbox=outbox,
        meter=meter,
        counters=prompts.counters,
        budgets=prompts.budgets,
        spending=settings.budgets.limits(exempt),
        prices=settings.prices,
        transcriber=transcriber,
        vision=settings.media.vision_policy(),
        takeover_after=settings.recovery.takeover_after(store_url(env)),
    )
    return service, speaker


@attrs.frozen
class TelegramBot:
    """The bot, assembled: the Bot API client, the dispatcher and the service whose outbox is that client."""

    bot: Bot
    """aiogram's Bot API client."""
    dispatcher: Dispatcher
    """Routers and middlewares, with the service injected."""
    service: ConversationService
    """The conversation service."""
    settings: TelegramSettings
    """Telegram's settings."""
    metrics: Metrics
    """The bot's Prometheus metrics."""
    metrics_listen: tuple[str, int] | None
    """Where a server of the metrics of its own listens (CONVO_METRICS_LISTEN); None: none."""

    def metrics_server(self) -> AbstractAsyncContextManager[None]:
        """Serves the metrics on `metrics_listen` while it is entered (nothing when that is None)."""
        if self.metrics_listen is None:
            return nullcontext()
        from adapters.metrics.http import serving_metrics

        return serving_metrics(self.metrics, *self.metrics_listen)

    async def close(self) -> None:
        """Close the Bot API session and the service's store."""
        try:
            await self.bot.session.close()
        finally:
            await self.service.close()


async def build_bot(env: Mapping[str, str], redactor: Redactor) -> TelegramBot:
    """Every part of `convo bot`, from the environment; ConfigError names the first bad setting."""
    from adapters.metrics.registry import Metrics
    from adapters.metrics.settings import MetricsSettings
    from adapters.telegram.app import build_bot as bot_api_client
    from adapters.telegram.app import build_dispatcher
    from adapters.telegram.delivery import TelegramOutbox
    from adapters.telegram.files import TelegramFiles
    from adapters.telegram.handlers.choices import Choices
    from adapters.telegram.handlers.media import MediaOptions

    telegram = TelegramSettings.from_env(env)
    settings = ServiceSettings.from_env(env)
    listen = MetricsSettings.from_env(env).listen
    redactor.add([*telegram.secrets(), *settings.model.secrets()])
    metrics = Metrics()
    bot = bot_api_client(telegram)
    try:
        outbox = TelegramOutbox(bot, telegram.show_reasoning == "collapsed")
        service, speaker = await _service(settings, env, outbox, exempt=telegram.admins, metrics=metrics)
    except BaseException:
        await bot.session.close()
        raise
    choices = Choices(settings.personas, settings.model.models)
    files = TelegramFiles(bot)
    service.pictures.attach(files)
    media = MediaOptions(max_side=settings.media.vision_max_side)
    dispatcher = build_dispatcher(
        service, telegram, choices, files=files, speaker=speaker, media_options=media, count_update=metrics.count_update
    )
    return TelegramBot(bot, dispatcher, service, telegram, metrics, listen)
