"""Building `convo inspect`'s Inspector from the environment: the store, the prompt folding and prices `convo
replay` uses, the persona presets, and the chat model for "ask again" (built when first asked, closed at the end)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from domain.ports import ChatModel
from entrypoints.inspect import Inspector
from service.replay import Folding
from service.stream_list import StreamUsage


async def build_inspector(env: Mapping[str, str]) -> tuple[Inspector, Callable[[], Awaitable[None]]]:
    """The inspector and what closes it."""
    from adapters.openai.settings import ModelChoice, OpenAISettings, build_models
    from adapters.openai.tokens import model_prompts, token_counter
    from entrypoints.settings import PersonaSettings, PromptSettings, price_table
    from entrypoints.stores import open_configured_store

    prompts = model_prompts(ModelChoice.from_env(env), PromptSettings.from_env(env).policy())
    prices = price_table(env)
    personas = PersonaSettings.from_env(env).personas()
    store = await open_configured_store(env)
    models: list[ChatModel] = []

    def chat() -> ChatModel:
        if not models:
            models.append(build_models(OpenAISettings.from_env(env))[0])
        return models[0]

    def persona_of(text: str) -> str:
        preset = personas.find(text)
        return preset.prompt if preset is not None and preset.prompt is not None else text

    async def close() -> None:
        for model in models:
            await model.close()
        await store.close()

    inspector = Inspector(store, Folding(prompts, token_counter), prices, StreamUsage(store, prices), persona_of, chat)
    return inspector, close
