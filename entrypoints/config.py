"""What every command reads first: the environment (with `.env`), and the store and logging settings.

These few are read here without pydantic: the store commands (`convo replay`, `convo store`, `convo forget`) need
nothing else, and importing pydantic-settings would add about 0.1 s to `convo replay --list` (0.22 s without it).
The rule is the settings models' (`adapters.env_settings`): surrounding blanks are removed, a blank value is unset.
Every other setting is in a pydantic-settings model; entrypoints/settings.py lists them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs
from dotenv import dotenv_values

from adapters.settings import ConfigError

if TYPE_CHECKING:
    from domain.prompt import PromptPolicy

__all__ = ["CommonSettings", "ConfigError", "environment", "prompt_policy", "store_url"]

DEFAULT_STORE = "sqlite:///convo.db"
FAUNA_SECRETS = ("FAUNA_SECRET", "FAUNA_SECRET_KEY")
"""Read by the Fauna store (adapters/fauna/connection.py); here only to keep them out of every log."""


def environment(cwd: Path | None = None) -> dict[str, str]:
    """The process environment over the values of `.env` in the working directory (the environment wins)."""
    dotenv = Path(cwd or Path.cwd()) / ".env"
    values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if dotenv.is_file() else {}
    return values | dict(os.environ)


def _value(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def store_url(env: Mapping[str, str]) -> str:
    """CONVO_STORE, or the embedded default."""
    return _value(env, "CONVO_STORE") or DEFAULT_STORE


@attrs.frozen
class CommonSettings:
    """The store and logging: what every command reads."""

    store: str
    """The event store's URL (CONVO_STORE)."""
    log_level: str | None
    """CONVO_LOG_LEVEL, a level name of the logging module; None for the command's own default."""
    log_format: str
    """CONVO_LOG_FORMAT: auto (JSON lines unless stderr is a TTY), json or console."""
    secrets: tuple[str, ...] = attrs.field(repr=False)
    """The store URL's password and the Fauna secrets, which no log line may show."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CommonSettings:
        """Read them; ConfigError for a log level the logging module does not know."""
        level = _value(env, "CONVO_LOG_LEVEL")
        if level is not None and level.upper() not in logging.getLevelNamesMapping():
            raise ConfigError(f"CONVO_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}")
        store = store_url(env)
        secrets = [_password_of(store), *(_value(env, name) for name in FAUNA_SECRETS)]
        return cls(
            store=store,
            log_level=level,
            log_format=_value(env, "CONVO_LOG_FORMAT") or "auto",
            secrets=tuple(secret for secret in secrets if secret),
        )


def prompt_policy(env: Mapping[str, str]) -> PromptPolicy:
    """The prompt policy `env` describes (imports pydantic: not for the store commands' start-up path)."""
    from entrypoints.settings import PromptSettings

    return PromptSettings.from_env(env).policy()


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
