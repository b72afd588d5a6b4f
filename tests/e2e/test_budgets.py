"""Spending caps end to end: with every answer billed 1000 prompt and 500 completion tokens and a daily budget of
two and a half answers, questions 1-3 are answered and question 4 is refused before any model call, after a
restart too; the bot's operators are exempt from the user caps; /usage shows what was used and what is left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.harness import assert_log_clean, bot_env, event_types, running_bot, wait_for_text

MODEL = "gpt-3.5-turbo"
PRICES = f'[models."{MODEL}"]\ninput = "1"\noutput = "2"\n'
"""1000 prompt tokens cost 0.001 USD and 500 completion tokens 0.001 USD: 0.002 USD an answer."""


def billed_env(tg, ai, tmp_path, **caps: str) -> dict[str, str]:
    """A bot whose every answer is billed 1000 prompt and 500 completion tokens, at PRICES, under `caps`."""
    (tmp_path / "prices.toml").write_text(PRICES)
    ai.set_billing(1000, 500)
    prices = str(tmp_path / "prices.toml")
    return bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_CHAT_MODEL=MODEL, CONVO_PRICES=prices, **caps)


async def test_a_user_over_the_daily_budget_is_refused_without_a_model_call_even_after_a_restart(tg, ai, tmp_path):
    alice, operator = tg.new_user("Alice"), tg.new_user("Olga")
    env = billed_env(tg, ai, tmp_path, CONVO_BUDGET_USER_DAY="0.005", CONVO_ADMINS=str(operator.id))
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d 00:00 UTC")
    refusal = f"You've used up your daily budget (0.005 USD). It starts over at {tomorrow}."
    async with running_bot(env, tmp_path) as bot:
        for n in (1, 2, 3):
            tg.send_text(alice, f"question {n}")
            await wait_for_text(tg, alice.id, f"echo: question {n}")
        tg.send_text(alice, "question 4")
        await wait_for_text(tg, alice.id, refusal)
        assert len(ai.chat_requests) == 3
        assert_log_clean(bot)
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "question 5")
        await tg.wait_for(lambda: [m.text for m in tg.bot_messages(alice.id)].count(refusal) == 2, timeout=15)
        tg.send_text(operator, "I run this bot")
        await wait_for_text(tg, operator.id, "echo: I run this bot")
        assert len(ai.chat_requests) == 4
        tg.send_command(alice, "usage")
        shown = await wait_for_text(tg, alice.id, "Your usage")
        assert "Today: 4500 tokens, 0.006 USD. Left of the budget: 0 of 0.005 USD." in shown.splitlines()
        assert "This month: 4500 tokens, 0.006 USD." in shown.splitlines()  # no monthly cap: nothing left to say
        assert_log_clean(bot)
    types = await event_types(env, tmp_path, str(alice.id))
    assert types.count("AnswerGiven") == 3 and types.count("AnswerFailed") == 2


async def test_in_a_group_usage_shows_the_chats_month_to_its_admins_only(tg, ai, tmp_path):
    member, admin = tg.new_user("Mia"), tg.new_user("Ada")
    group = tg.new_group("Club")
    tg.make_admin(group, admin)
    env = billed_env(tg, ai, tmp_path, CONVO_BUDGET_CHAT_MONTH="1")
    async with running_bot(env, tmp_path) as bot:
        tg.mention_bot(member, group, "hello")
        await wait_for_text(tg, group.id, "echo: Mia: hello")
        tg.send_command(member, "usage", chat=group)
        members = await wait_for_text(tg, group.id, "Your usage")
        tg.send_command(admin, "usage", chat=group)
        await tg.wait_for(lambda: sum("Your usage" in (m.text or "") for m in tg.bot_messages(group.id)) == 2)
        admins = [m.text for m in tg.bot_messages(group.id) if "Your usage" in (m.text or "")][-1]
        assert_log_clean(bot)
    assert "This chat" not in members and "Today: 1500 tokens, 0.002 USD." in members
    assert "This chat this month: 1500 tokens, 0.002 USD. Left of the budget: 0.998 of 1 USD." in admins
    assert "Today: 0 tokens, 0 USD." in admins
