"""Who may change a chat (admins, remembered a minute), and the persona catalogue (presets and the TOML file)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import GetChatMember
from aiogram.types import Chat

from adapters.settings import ConfigError
from adapters.telegram.admins import Admins
from entrypoints.settings import PersonaSettings
from service.personas import BUILT_IN, PersonaFileError, load_personas

GROUP = Chat(id=-100, type="supergroup", title="g")
PRIVATE = Chat(id=5, type="private", first_name="A")


class MemberStatuses:
    """Answers getChatMember from a table, counting the calls (a stand-in for the Bot API, not for Admins)."""

    def __init__(self, statuses: dict[int, str]) -> None:
        self.statuses = statuses
        self.calls = 0

    async def get_chat_member(self, chat_id: int, user_id: int) -> SimpleNamespace:
        self.calls += 1
        if user_id not in self.statuses:
            raise TelegramBadRequest(GetChatMember(chat_id=chat_id, user_id=user_id), "Bad Request: user not found")
        return SimpleNamespace(status=self.statuses[user_id])


async def test_admins_are_the_groups_administrators_and_the_operators_and_asked_once_a_minute():
    bot = MemberStatuses({1: "creator", 2: "administrator", 3: "member"})
    admins = Admins(operators=frozenset({9}))
    assert [await admins.may_change(bot, GROUP, user) for user in (1, 2, 3, 4)] == [True, True, False, False]  # type: ignore[arg-type]
    assert await admins.may_change(bot, GROUP, 9) and await admins.may_change(bot, PRIVATE, 3)  # type: ignore[arg-type]
    calls = bot.calls
    assert await admins.may_change(bot, GROUP, 2) and not await admins.may_change(bot, GROUP, 3)  # type: ignore[arg-type]
    assert bot.calls == calls  # remembered
    forgetful = Admins(ttl=0.0)
    await forgetful.may_change(bot, GROUP, 2)  # type: ignore[arg-type]
    await forgetful.may_change(bot, GROUP, 2)  # type: ignore[arg-type]
    assert bot.calls == calls + 2


def test_the_operators_personas_join_the_built_in_ones_and_may_replace_one(tmp_path: Path):
    path = tmp_path / "personas.toml"
    path.write_text('[pirate]\ntitle = "Pirate"\nprompt = "Talk like a pirate."\n[concise]\nprompt = "Short."\n')
    personas = load_personas(path, 100)
    assert [p.name for p in personas.presets] == [p.name for p in BUILT_IN] + ["pirate"]
    assert personas.find("PIRATE") is not None and personas.find("concise").prompt == "Short."  # type: ignore[union-attr]
    assert personas.find("nobody") is None


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[pirate]\ntitle = 'x'\n", "needs a non-empty prompt"),
        ("['Bad Name']\nprompt = 'x'\n", "a name is"),
        ("[default]\nprompt = 'x'\n", "not default or custom"),
        ("pirate = 'x'\n", "must be a table"),
        ("[pirate\n", "not valid TOML"),
    ],
)
def test_a_bad_personas_file_is_one_clear_line(tmp_path: Path, text: str, complaint: str):
    path = tmp_path / "personas.toml"
    path.write_text(text)
    with pytest.raises(PersonaFileError, match=complaint):
        load_personas(path, 100)
    with pytest.raises(ConfigError) as raised:
        PersonaSettings.from_env({"CONVO_PERSONAS": str(path)}).personas()
    assert "\n" not in str(raised.value) and "CONVO_PERSONAS" in str(raised.value)


def test_a_missing_personas_file_is_named():
    with pytest.raises(ConfigError, match=r"cannot read /nonexistent/p\.toml"):
        PersonaSettings.from_env({"CONVO_PERSONAS": "/nonexistent/p.toml"}).personas()
