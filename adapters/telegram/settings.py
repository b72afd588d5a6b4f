"""The bot's Telegram settings: token, API server, access, rate limits, streaming and webhook."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from adapters.settings import ConfigError
from adapters.settings import number as _number
from adapters.settings import value as _value

TOKEN_VARIABLES = ("TELEGRAM_BOT_TOKEN", "BOT_SECRET")
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


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
