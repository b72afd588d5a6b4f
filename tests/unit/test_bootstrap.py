"""The composition root: settings checked before anything is built, the outbox given at construction, secrets
handed to the redactor start-up made."""

from __future__ import annotations

import pytest

from adapters.settings import ConfigError
from adapters.telegram.delivery import TelegramOutbox
from entrypoints.bootstrap import build_bot, build_service
from entrypoints.logs import REDACTED, Redactor

TOKEN = "123456:ABC-def_ghi"
KEY = "sk-live-VerySecret987654321"


async def test_the_bot_is_built_with_its_outbox_and_its_secrets_redacted(tmp_path):
    env = {"BOT_SECRET": TOKEN, "OPENAI_SECRET_KEY": KEY, "CONVO_STORE": f"sqlite:///{tmp_path}/convo.db"}
    redactor = Redactor()
    app = await build_bot(env, redactor)
    try:
        assert isinstance(app.service.outbox, TelegramOutbox)
        assert app.service.outbox._bot is app.bot
        assert app.settings.token == TOKEN
        line = f"{TOKEN} {KEY} {app.settings.webhook_secret}"
        assert redactor.scrub(line) == f"{REDACTED} {REDACTED} {REDACTED}"
    finally:
        await app.close()


async def test_a_bad_setting_stops_the_bot_before_the_store_is_opened(tmp_path):
    env = {"BOT_SECRET": TOKEN, "CONVO_STORE": f"sqlite:///{tmp_path}/convo.db"}
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        await build_bot(env, Redactor())
    assert not (tmp_path / "convo.db").exists()


async def test_the_chat_service_has_no_outbox_and_redacts_the_key(tmp_path):
    redactor = Redactor()
    env = {"OPENAI_API_KEY": KEY, "CONVO_STORE": f"sqlite:///{tmp_path}/convo.db", "CONVO_RECOVERY_GRACE": "7"}
    service = await build_service(env, redactor=redactor)
    try:
        assert service.outbox is None
        assert service.takeover_after == 7
        assert redactor.scrub(KEY) == REDACTED
    finally:
        await service.close()
