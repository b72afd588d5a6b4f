"""Settings: defaults, the tutorial's variable names, and one clear line for every bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.fauna.connection import FaunaSecret, secret_from_env
from adapters.openai.settings import ModelChoice, OpenAISettings
from adapters.settings import ConfigError
from adapters.telegram.settings import TelegramSettings
from entrypoints.config import CommonSettings, environment, prompt_policy, store_url
from entrypoints.settings import PromptSettings, RecoverySettings, ServiceSettings

TOKEN = "123456:ABC-def_ghi"
KEY = "sk-live-VerySecret987654321"


def test_defaults_and_the_tutorials_token_name():
    settings = TelegramSettings.from_env({"BOT_SECRET": TOKEN})
    assert settings.token == TOKEN
    assert isinstance(settings.bot_token, SecretStr)
    assert settings.allowed_users is None
    assert settings.webhook_listen == ("0.0.0.0", 8080)
    assert (settings.rate_per_minute, settings.rate_burst, settings.edit_interval) == (30, 12, 1.2)
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
            "TELEGRAM_API_BASE": "http://localhost:8081/",
        }
    )
    assert settings.allowed_users == frozenset({12, 34, 56})
    assert settings.webhook_listen == ("127.0.0.1", 9000)
    assert settings.webhook_secret == "s3cret_-"
    assert settings.api_base == "http://localhost:8081"
    assert settings.secrets() == [TOKEN, "s3cret_-"]


def test_the_derived_webhook_secret_is_stable_and_not_the_token():
    first = TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}).webhook_secret
    assert first == TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}).webhook_secret
    assert TOKEN.split(":")[1] not in first


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, "TELEGRAM_BOT_TOKEN is not set"),
        ({"TELEGRAM_BOT_TOKEN": "not a token"}, "does not look like a bot token"),
        ({"BOT_SECRET": "not a token"}, "TELEGRAM_BOT_TOKEN does not look like a bot token"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "CONVO_ALLOWED_USERS": "alice"}, "CONVO_ALLOWED_USERS"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "CONVO_RATE_LIMIT": "fast"}, "CONVO_RATE_LIMIT must be a number"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "CONVO_RATE_LIMIT": "0.05"}, "CONVO_RATE_LIMIT .* at least 0.1, got '0.05'"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "CONVO_RATE_BURST": "0.5"}, "CONVO_RATE_BURST .* at least 1, got '0.5'"),
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
    assert "has space" not in str(raised.value)


def test_every_tutorial_name_is_accepted_and_the_new_name_wins():
    assert OpenAISettings.from_env({"OPENAI_SECRET_KEY": KEY}).api_key.get_secret_value() == KEY
    both = {"OPENAI_API_KEY": KEY, "OPENAI_SECRET_KEY": "other"}
    assert OpenAISettings.from_env(both).api_key.get_secret_value() == KEY
    assert FaunaSecret.from_env({"FAUNA_SECRET_KEY": "fnTutorial"}).secret.get_secret_value() == "fnTutorial"
    assert secret_from_env({"FAUNA_SECRET": "fnNew", "FAUNA_SECRET_KEY": "fnOld"}) == "fnNew"
    assert TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, "BOT_SECRET": "1:other"}).token == TOKEN


def test_blank_values_count_as_unset_and_blanks_around_a_value_are_dropped():
    assert TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": "  ", "BOT_SECRET": f" {TOKEN}\n"}).token == TOKEN
    settings = TelegramSettings.from_env({"BOT_SECRET": TOKEN, "CONVO_RATE_LIMIT": "", "CONVO_WEBHOOK_SECRET": " "})
    assert settings.rate_per_minute == 30
    assert settings.webhook_secret != ""
    assert PromptSettings.from_env({"CONVO_PERSONA": "   "}).persona == PromptSettings().persona
    assert store_url({"CONVO_STORE": " "}) == "sqlite:///convo.db"
    with pytest.raises(ConfigError, match="FAUNA_SECRET is not set"):
        secret_from_env({"FAUNA_SECRET": " ", "FAUNA_SECRET_KEY": ""})


def test_whole_numbers_drop_a_fraction_as_they_always_did():
    policy = PromptSettings.from_env({"CONVO_PROMPT_BUDGET": "100.9", "CONVO_PROMPT_LOOKBACK": "1e3"}).policy()
    assert (policy.budget, policy.lookback) == (100, 1000)
    with pytest.raises(ConfigError, match="CONVO_PROMPT_BUDGET must be a whole number of at least 64, got 'lots'"):
        PromptSettings.from_env({"CONVO_PROMPT_BUDGET": "lots"})
    with pytest.raises(ConfigError, match=r"CONVO_PROMPT_LOOKBACK .* got 'inf'"):
        PromptSettings.from_env({"CONVO_PROMPT_LOOKBACK": "inf"})


def test_a_secret_is_never_echoed_by_an_error():
    for env in ({"OPENAI_API_KEY": "sk-abc def"}, {"OPENAI_API_KEY": KEY, "CONVO_STREAM": KEY}):
        with pytest.raises(ConfigError) as raised:
            OpenAISettings.from_env(env)
        assert "abc" not in str(raised.value)
        assert KEY not in str(raised.value) or "CONVO_STREAM" in str(raised.value)
    with pytest.raises(ConfigError, match="CONVO_WEBHOOK_SECRET") as raised:
        TelegramSettings.from_env({"BOT_SECRET": TOKEN, "CONVO_WEBHOOK_SECRET": "sec ret"})
    assert "sec ret" not in str(raised.value)


def test_keyword_construction_never_reads_the_process_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVO_CHAT_MODEL", "from-the-environment")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CONVO_IMAGE_MODEL=from-dotenv\n")
    settings = OpenAISettings(api_key=SecretStr(KEY))
    assert (settings.chat_model, settings.image_model) == ("gpt-3.5-turbo", "dall-e-2")
    assert OpenAISettings.from_env({"OPENAI_API_KEY": KEY}).chat_model == "gpt-3.5-turbo"


def test_the_chat_models_default_is_stated_once():
    assert ModelChoice.from_env({}).chat_model == OpenAISettings.from_env({"OPENAI_API_KEY": KEY}).chat_model
    assert ModelChoice.from_env({"CONVO_CHAT_MODEL": "llama3.1:8b"}).chat_model == "llama3.1:8b"


def test_recovery_grace_depends_on_the_store():
    assert RecoverySettings.from_env({}).takeover_after("sqlite:///convo.db") == 0
    assert RecoverySettings.from_env({}).takeover_after("postgresql://db") == 20
    assert RecoverySettings.from_env({"CONVO_RECOVERY_GRACE": "3"}).takeover_after("postgresql://db") == 3
    with pytest.raises(ConfigError, match="CONVO_RECOVERY_GRACE must be a number of at least 0, got '-1'"):
        RecoverySettings.from_env({"CONVO_RECOVERY_GRACE": "-1"})


def test_the_service_settings_report_the_model_before_the_prompt():
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        ServiceSettings.from_env({"CONVO_PROMPT_BUDGET": "lots"})
    settings = ServiceSettings.from_env({"OPENAI_API_KEY": KEY, "CONVO_PERSONA": "a pirate"})
    assert settings.prompt.policy().persona == "a pirate"
    assert settings.model.secrets() == [KEY]
    assert KEY not in repr(settings)


def test_common_settings_hold_the_store_logging_and_the_secrets_to_redact():
    common = CommonSettings.from_env(
        {
            "CONVO_STORE": "postgresql://convo:pg-password@db/convo",
            "FAUNA_SECRET": "fnOne",
            "FAUNA_SECRET_KEY": "fnTwo",
            "CONVO_LOG_LEVEL": "debug",
        }
    )
    assert common.store == "postgresql://convo:pg-password@db/convo"
    assert (common.log_level, common.log_format) == ("debug", "auto")
    assert set(common.secrets) == {"pg-password", "fnOne", "fnTwo"}
    assert "fnOne" not in repr(common)
    assert CommonSettings.from_env({"CONVO_LOG_LEVEL": " ", "CONVO_LOG_FORMAT": ""}).log_level is None
    with pytest.raises(ConfigError, match="CONVO_LOG_LEVEL must be DEBUG, INFO") as raised:
        CommonSettings.from_env({"CONVO_LOG_LEVEL": "loud"})
    assert "\n" not in str(raised.value)


def test_dotenv_values_yield_to_the_environment(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("CONVO_PERSONA=from dotenv\nCONVO_STORE=sqlite:///dot.db\n")
    monkeypatch.setenv("CONVO_STORE", "memory://")
    env = environment(tmp_path)
    assert env["CONVO_PERSONA"] == "from dotenv"
    assert env["CONVO_STORE"] == "memory://"
    assert PromptSettings.from_env(env).persona == "from dotenv"


def test_the_store_commands_import_neither_pydantic_nor_the_sdks(tmp_path: Path):
    probe = (
        "import sys; from entrypoints.cli import main; code = main(['replay', '--list']); "
        "print(code, sorted(m for m in ('pydantic', 'pydantic_settings', 'openai', 'aiogram') if m in sys.modules))"
    )
    env = {**os.environ, "CONVO_STORE": f"sqlite:///{tmp_path}/convo.db"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stdout + result.stderr
