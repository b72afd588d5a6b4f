"""Settings: defaults, the tutorial's variable names, and one clear line for every bad value."""

from __future__ import annotations

import pytest

from adapters.settings import ConfigError
from adapters.telegram.settings import TelegramSettings
from entrypoints.config import environment, prompt_policy, recovery_grace, store_url

TOKEN = "123456:ABC-def_ghi"


def test_defaults_and_the_tutorials_token_name():
    settings = TelegramSettings.from_env({"BOT_SECRET": TOKEN})
    assert settings.token == TOKEN
    assert settings.allowed_users is None
    assert settings.webhook_listen == ("0.0.0.0", 8080)
    assert TOKEN not in repr(settings)
    assert settings.webhook_secret not in repr(settings)
    assert store_url({}) == "sqlite:///convo.db"
    assert prompt_policy({}).budget == 3072


def test_allowlist_and_webhook_settings_are_parsed():
    settings = TelegramSettings.from_env(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "CONVO_ALLOWED_USERS": "12, 34 56",
            "CONVO_WEBHOOK_LISTEN": "127.0.0.1:9000",
            "CONVO_WEBHOOK_SECRET": "s3cret_-",
        }
    )
    assert settings.allowed_users == frozenset({12, 34, 56})
    assert settings.webhook_listen == ("127.0.0.1", 9000)
    assert settings.webhook_secret == "s3cret_-"


def test_the_derived_webhook_secret_is_stable_and_not_the_token():
    first = TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}).webhook_secret
    assert first == TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}).webhook_secret
    assert TOKEN.split(":")[1] not in first


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, "TELEGRAM_BOT_TOKEN is not set"),
        ({"TELEGRAM_BOT_TOKEN": "not a token"}, "does not look like a bot token"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "CONVO_ALLOWED_USERS": "alice"}, "CONVO_ALLOWED_USERS"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "CONVO_RATE_LIMIT": "fast"}, "CONVO_RATE_LIMIT must be a number"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "CONVO_WEBHOOK_LISTEN": "nowhere"}, "CONVO_WEBHOOK_LISTEN"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "CONVO_WEBHOOK_SECRET": "has space"}, "CONVO_WEBHOOK_SECRET"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": "localhost:8081"}, "TELEGRAM_API_BASE"),
    ],
)
def test_bad_settings_name_the_variable_in_one_line(env, names):
    with pytest.raises(ConfigError, match=names) as raised:
        TelegramSettings.from_env(env)
    assert "\n" not in str(raised.value)
    assert "not a token" not in str(raised.value)


def test_recovery_grace_depends_on_the_store():
    assert recovery_grace({}, "sqlite:///convo.db") == 0
    assert recovery_grace({}, "postgresql://db") == 20
    assert recovery_grace({"CONVO_RECOVERY_GRACE": "3"}, "postgresql://db") == 3


def test_dotenv_values_yield_to_the_environment(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("CONVO_PERSONA=from dotenv\nCONVO_STORE=sqlite:///dot.db\n")
    monkeypatch.setenv("CONVO_STORE", "memory://")
    env = environment(tmp_path)
    assert env["CONVO_PERSONA"] == "from dotenv"
    assert env["CONVO_STORE"] == "memory://"
