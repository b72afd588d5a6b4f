"""Settings from the environment (and a `.env` file in the working directory), checked once at start-up.

Each reader raises ConfigError with one line naming the variable and what it should hold; secrets are never
echoed back. README's "Configuration" table lists every variable with its default.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import attrs
from dotenv import dotenv_values

from domain.prompt import DEFAULT_PERSONA, PromptPolicy

DEFAULT_STORE = "sqlite:///convo.db"
TOKEN_VARIABLES = ("TELEGRAM_BOT_TOKEN", "BOT_SECRET")
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line for the operator."""


def environment(cwd: Path | None = None) -> dict[str, str]:
    """The process environment over the values of `.env` in the working directory (the environment wins)."""
    dotenv = Path(cwd or Path.cwd()) / ".env"
    values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if dotenv.is_file() else {}
    return values | dict(os.environ)


def _value(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = _value(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


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


@attrs.frozen
class TelegramSettings:
    """How the bot reaches Telegram and whom it serves."""

    token: str = attrs.field(repr=False)
    """The bot token from @BotFather."""
    api_base: str | None
    """A self-hosted Bot API server's base URL, or None for api.telegram.org."""
    allowed_users: frozenset[int] | None
    """Telegram user ids allowed to talk to the bot; None lets everyone in."""
    rate_per_minute: float
    """Messages a user may send per minute on average."""
    rate_burst: int
    """Messages a user may send at once before the rate applies."""
    edit_interval: float
    """Seconds between edits of a streaming answer."""
    webhook_listen: tuple[str, int]
    """Host and port the webhook server listens on."""
    webhook_secret: str = attrs.field(repr=False)
    """The secret Telegram must send in X-Telegram-Bot-Api-Secret-Token."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TelegramSettings:
        """Read and check every Telegram setting."""
        token = next((v for name in TOKEN_VARIABLES if (v := _value(env, name))), None)
        if token is None:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set: put the token @BotFather gave you in it (or in .env)")
        if not _TOKEN.match(token):
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN does not look like a bot token (digits, a colon, then letters, digits, _ or -)"
            )
        return cls(
            token=token,
            api_base=_api_base(env),
            allowed_users=_allowed_users(env),
            rate_per_minute=_number(env, "CONVO_RATE_LIMIT", 30, minimum=0.1),
            rate_burst=int(_number(env, "CONVO_RATE_BURST", 12, minimum=1)),
            edit_interval=_number(env, "CONVO_STREAM_EDIT_INTERVAL", 1.2, minimum=0.2),
            webhook_listen=_listen(env),
            webhook_secret=_webhook_secret(env, token),
        )


def _api_base(env: Mapping[str, str]) -> str | None:
    base = _value(env, "TELEGRAM_API_BASE")
    if base is None:
        return None
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"TELEGRAM_API_BASE must be an http(s) URL such as http://localhost:8081, got {base!r}")
    return base.rstrip("/")


def _allowed_users(env: Mapping[str, str]) -> frozenset[int] | None:
    raw = _value(env, "CONVO_ALLOWED_USERS")
    if raw is None:
        return None
    ids = [part.strip() for part in re.split(r"[,\s]+", raw) if part.strip()]
    if not ids or not all(re.fullmatch(r"-?\d+", part) for part in ids):
        raise ConfigError("CONVO_ALLOWED_USERS must be Telegram user ids separated by commas, e.g. 12345,67890")
    return frozenset(int(part) for part in ids)


def _listen(env: Mapping[str, str]) -> tuple[str, int]:
    raw = _value(env, "CONVO_WEBHOOK_LISTEN") or "0.0.0.0:8080"
    host, _, port = raw.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"CONVO_WEBHOOK_LISTEN must be HOST:PORT such as 0.0.0.0:8080, got {raw!r}")
    return host or "0.0.0.0", int(port)


def _webhook_secret(env: Mapping[str, str], token: str) -> str:
    secret = _value(env, "CONVO_WEBHOOK_SECRET")
    if secret is None:
        return hashlib.sha256(b"convo-webhook:" + token.encode()).hexdigest()
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        raise ConfigError("CONVO_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    return secret


def fauna_secrets(env: Mapping[str, str]) -> list[str | None]:
    """Secrets the logs must never show, beyond the token and the API key."""
    return [_value(env, "FAUNA_SECRET"), _value(env, "FAUNA_SECRET_KEY"), _password_of(store_url(env))]


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
