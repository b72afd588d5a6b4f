"""Opening the configured store, and nothing else: `convo replay`, `convo store` and `convo forget` need only this,
so they start without importing the model SDK, aiogram or pydantic."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.stores import open_store
from domain.ports import EventStore
from entrypoints.config import ConfigError, store_url


async def open_configured_store(env: Mapping[str, str], url: str | None = None) -> EventStore:
    """The store CONVO_STORE (or `url`) names, with its schema ready; ConfigError for a bad URL."""
    try:
        store = open_store(url or store_url(env), env)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    await store.init_schema()
    return store
