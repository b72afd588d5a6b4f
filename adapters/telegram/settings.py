"""The bot's Telegram settings: token, API server, access, rate limits, streaming and webhook."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator
from pydantic_settings import NoDecode

from adapters.env_settings import EnvSettings, HostPort, StreamMode, Whole, setting

_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


class TelegramSettings(EnvSettings):
    """How the bot reaches Telegram and whom it serves."""

    bot_token: SecretStr = setting(
        "TELEGRAM_BOT_TOKEN", "BOT_SECRET", unset="put the token @BotFather gave you in it (or in .env)"
    )
    """The bot token from @BotFather (`token` hands it out)."""
    api_base: str | None = setting("TELEGRAM_API_BASE", default=None)
    """A self-hosted Bot API server's base URL, or None for api.telegram.org."""
    allowed_users: Annotated[frozenset[int] | None, NoDecode] = setting("CONVO_ALLOWED_USERS", default=None)
    """Telegram user ids allowed to talk to the bot; None lets everyone in."""
    allowed_chats: Annotated[frozenset[int] | None, NoDecode] = setting("CONVO_ALLOWED_CHATS", default=None)
    """Group chat ids the bot serves (their members need not be in CONVO_ALLOWED_USERS); None: any group."""
    admins: Annotated[frozenset[int], NoDecode] = setting("CONVO_ADMINS", default=frozenset())
    """Telegram user ids of the bot's operators: admins in every chat."""
    rate_per_minute: float = setting("CONVO_RATE_LIMIT", default=30.0, ge=0.1)
    """Messages a user may send per minute on average."""
    rate_burst: Whole = setting("CONVO_RATE_BURST", default=12, ge=1)
    """Messages a user may send at once before the rate applies."""
    edit_interval: float = setting("CONVO_STREAM_EDIT_INTERVAL", default=1.2, ge=0.2)
    """Seconds between edits of a streaming answer (and between its drafts)."""
    stream: StreamMode = setting("CONVO_STREAM", default="drafts")
    """How an answer is shown while it is generated: native drafts in private chats (edits where drafts are not
    allowed), edits of one message everywhere, or not at all."""
    group_edit_interval: float = setting("CONVO_GROUP_EDIT_INTERVAL", default=3.0, ge=0.0)
    """Fewest seconds between two streaming edits of one message in a group (Telegram allows about 20 messages a
    minute per group)."""
    show_reasoning: Literal["hidden", "collapsed"] = setting("CONVO_SHOW_REASONING", default="collapsed")
    """Whether a reasoning model's thoughts are shown above its answer, in one expandable quote."""
    webhook_listen: HostPort = setting("CONVO_WEBHOOK_LISTEN", default=("0.0.0.0", 8080))
    """Host and port the webhook server listens on."""
    webhook_key: SecretStr | None = setting("CONVO_WEBHOOK_SECRET", default=None)
    """The webhook secret if one is set (`webhook_secret` derives one from the token otherwise)."""

    @property
    def token(self) -> str:
        """The bot token, for the Bot API client."""
        return self.bot_token.get_secret_value()

    @property
    def webhook_secret(self) -> str:
        """The secret Telegram must send in X-Telegram-Bot-Api-Secret-Token."""
        if self.webhook_key is not None:
            return self.webhook_key.get_secret_value()
        return hashlib.sha256(b"convo-webhook:" + self.token.encode()).hexdigest()

    def secrets(self) -> list[str]:
        """The token and the webhook secret, derived or not."""
        return [self.token, self.webhook_secret]

    @field_validator("bot_token")
    @classmethod
    def _token(cls, token: SecretStr) -> SecretStr:
        if not _TOKEN.match(token.get_secret_value()):
            raise ValueError("does not look like a bot token (digits, a colon, then letters, digits, _ or -)")
        return token

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, base: str | None) -> str | None:
        if base is None:
            return None
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL such as http://localhost:8081, got {base!r}")
        return base.rstrip("/")

    @field_validator("allowed_users", "allowed_chats", "admins", mode="before")
    @classmethod
    def _ids(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        ids = [part for part in re.split(r"[,\s]+", raw) if part]
        if not ids or not all(re.fullmatch(r"-?\d+", part) for part in ids):
            raise ValueError("must be Telegram ids separated by commas, e.g. 12345,-100987654321")
        return frozenset(int(part) for part in ids)

    @field_validator("webhook_key")
    @classmethod
    def _webhook_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", key.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return key
