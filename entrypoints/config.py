"""Settings from the environment (and a `.env` file in the working directory), checked once at start-up.

Each reader raises ConfigError with one line naming the variable and what it should hold; secrets are never
echoed back. README's "Configuration" table lists every variable with its default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from adapters.settings import ConfigError
from adapters.settings import number as _number
from adapters.settings import value as _value
from adapters.telegram.settings import TelegramSettings
from domain.prompt import DEFAULT_PERSONA, PromptPolicy

__all__ = ["ConfigError", "TelegramSettings", "environment", "fauna_secrets", "prompt_policy", "store_url"]

DEFAULT_STORE = "sqlite:///convo.db"


def environment(cwd: Path | None = None) -> dict[str, str]:
    """The process environment over the values of `.env` in the working directory (the environment wins)."""
    dotenv = Path(cwd or Path.cwd()) / ".env"
    values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if dotenv.is_file() else {}
    return values | dict(os.environ)


def store_url(env: Mapping[str, str]) -> str:
    """CONVO_STORE, or the embedded default."""
    return _value(env, "CONVO_STORE") or DEFAULT_STORE


def prompt_policy(env: Mapping[str, str]) -> PromptPolicy:
    """CONVO_PERSONA, CONVO_PROMPT_BUDGET, CONVO_PROMPT_LOOKBACK."""
    return PromptPolicy(
        persona=_value(env, "CONVO_PERSONA") or DEFAULT_PERSONA,
        budget=int(_number(env, "CONVO_PROMPT_BUDGET", 3072, minimum=64)),
        lookback=int(_number(env, "CONVO_PROMPT_LOOKBACK", 2000, minimum=2)),
    )


def recovery_grace(env: Mapping[str, str], store: str) -> float:
    """CONVO_RECOVERY_GRACE: how long another worker may be answering before this one takes a request over.

    The embedded store serves one process, so anything pending at start-up is left by a dead one (0 s). A shared
    store may have live workers: 20 s by default.
    """
    default = 0.0 if store.startswith(("sqlite:", "memory:")) else 20.0
    return _number(env, "CONVO_RECOVERY_GRACE", default)


def fauna_secrets(env: Mapping[str, str]) -> list[str | None]:
    """Secrets the logs must never show, beyond the token and the API key."""
    return [_value(env, "FAUNA_SECRET"), _value(env, "FAUNA_SECRET_KEY"), _password_of(store_url(env))]


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
