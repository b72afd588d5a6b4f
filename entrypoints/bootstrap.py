"""The composition root: the one place that builds concrete adapters and wires them into the service."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.openai.settings import OpenAISettings, build_models
from adapters.openai.tokens import token_counter
from domain.prompt import estimate_tokens
from entrypoints.config import ConfigError, prompt_policy, recovery_grace, store_url
from entrypoints.logs import redactor
from entrypoints.stores import open_configured_store
from service.conversations import ConversationService
from service.outcomes import Outbox


def model_settings(env: Mapping[str, str]) -> OpenAISettings:
    """The OpenAI settings; ConfigError names a bad variable."""
    try:
        settings = OpenAISettings.from_env(env)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    redactor.add([settings.api_key])
    return settings


async def build_service(env: Mapping[str, str], outbox: Outbox | None = None) -> ConversationService:
    """Store, models and prompt policy from the environment, wired into the conversation service."""
    settings = model_settings(env)
    policy = prompt_policy(env)
    store = await open_configured_store(env)
    chat, images = build_models(settings)
    count = token_counter(settings.chat_model)
    exact = count is not estimate_tokens or settings.base_url is None  # OpenAI's own API has no /tokenize
    return ConversationService(
        store,
        chat,
        images,
        policy,
        count,
        outbox=outbox,
        meter=None if exact else chat.server_tokenizer(),
        takeover_after=recovery_grace(env, store_url(env)),
    )
