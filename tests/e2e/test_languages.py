"""The bot's own texts in its users' languages, end to end: each sender's Telegram language, a chat's /language
choice (kept across a restart, admins only in groups), the command menu per language, and answers never translated."""

from __future__ import annotations

from adapters.telegram import replies
from adapters.telegram.i18n import translated
from tests.e2e.harness import (
    assert_log_clean,
    bot_env,
    event_types,
    replay_list,
    running_bot,
    texts,
    wait_for_text,
)


def help_in(language: str) -> str:
    return translated(replies.HELP, language)


async def test_a_german_user_gets_german_help_and_the_menu_has_german_descriptions(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    hans = tg.new_user("Hans", language_code="de")
    joana = tg.new_user("Joana", language_code="pt-br")
    alice = tg.new_user("Alice", language_code="en")
    mei = tg.new_user("Mei", language_code="zh-hans")  # no texts in Chinese: English
    async with running_bot(env, tmp_path) as bot:
        for user in (hans, joana, alice, mei):
            tg.send_command(user, "help")
        await wait_for_text(tg, hans.id, help_in("de"))
        await wait_for_text(tg, joana.id, help_in("pt"))
        await wait_for_text(tg, alice.id, replies.HELP)
        await wait_for_text(tg, mei.id, replies.HELP)
        tg.send_command(hans, "start")
        welcome = await wait_for_text(tg, hans.id, translated(replies.WELCOME, "de", name=", Hans"))
        tg.send_text(hans, "Wie spät ist es?")
        await wait_for_text(tg, hans.id, "echo: Wie spät ist es?")  # the model's answer is not translated
        tg.send_command(hans, "frobnicate")
        await wait_for_text(tg, hans.id, translated(replies.UNKNOWN_COMMAND, "de", command="/frobnicate"))
        await tg.wait_for(lambda: tg.commands(language_code="tr"), timeout=10)
        assert_log_clean(bot)
    assert welcome.startswith("Hallo, Hans!") and welcome.endswith(help_in("de"))
    assert "Schick mir" in help_in("de") and help_in("de") != replies.HELP
    english = {c["command"]: c["description"] for c in tg.commands()}
    german = {c["command"]: c["description"] for c in tg.commands(language_code="de")}
    assert english["help"] == "What I can do"
    assert german.keys() == english.keys() and "language" in german
    assert german["help"] == translated("What I can do", "de") != english["help"]


async def test_a_chats_language_outranks_the_senders_survives_a_restart_and_auto_goes_back(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice", language_code="en")
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(alice, "language", "uk")
        await wait_for_text(tg, alice.id, translated(replies.LANGUAGE_SET, "uk", language="Українська"))
        tg.send_command(alice, "language", "klingon")
        codes = "en, es, de, fr, pt, ru, uk, it, tr, auto"
        await wait_for_text(tg, alice.id, translated(replies.LANGUAGE_UNKNOWN, "uk", code="klingon", codes=codes))
        assert_log_clean(bot)
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(alice, "help")
        await wait_for_text(tg, alice.id, help_in("uk"))
        tg.send_command(alice, "language")
        listing = await wait_for_text(tg, alice.id, translated(replies.LANGUAGES, "uk", current="Українська"))
        menu = next(m for m in tg.bot_messages(alice.id) if m.text == listing)
        tg.press_button(alice, menu, "language:auto")
        await wait_for_text(tg, alice.id, replies.LANGUAGES.format(current="Automatic"))
        tg.send_command(alice, "help")
        await tg.wait_for(lambda: texts(tg, alice.id)[-1] == replies.HELP, timeout=10)
        assert_log_clean(bot)
    types = await event_types(env, tmp_path, str(alice.id))
    assert types.count("LanguageSelected") == 2


async def test_in_a_group_only_admins_choose_the_language_and_everyone_then_reads_it(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    member, admin = tg.new_user("Mia", language_code="de"), tg.new_user("Ada", language_code="en")
    group = tg.new_group("Club")
    tg.make_admin(group, admin)
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(member, "help", chat=group)
        await wait_for_text(tg, group.id, help_in("de"))  # each sender's own language
        tg.send_command(member, "language", "fr", group)
        await wait_for_text(tg, group.id, translated(replies.ADMINS_ONLY, "de"))
        await tg.wait_until_consumed(timeout=10)
        assert str(group.id) not in await replay_list(env, tmp_path)  # the refusal recorded nothing
        tg.send_command(admin, "language", "fr", group)
        await wait_for_text(tg, group.id, translated(replies.LANGUAGE_SET, "fr", language="Français"))
        tg.send_command(member, "help", chat=group)
        await tg.wait_for(lambda: texts(tg, group.id)[-1] == help_in("fr"), timeout=10)
        tg.mention_bot(member, group, "bonjour")
        await wait_for_text(tg, group.id, "echo: Mia: bonjour")
        assert_log_clean(bot)
