"""Per-chat settings and group use, end to end: personas and models (chosen by command or button, kept across a
restart), admin rights in groups, the asker's name in group prompts, and the group allowlist."""

from __future__ import annotations

from adapters.telegram import replies
from domain.prompt import DEFAULT_PERSONA
from service.personas import BUILT_IN
from tests.e2e.harness import (
    assert_log_clean,
    bot_env,
    event_types,
    replay_list,
    running_bot,
    texts,
    wait_for_text,
)

CONCISE = next(persona for persona in BUILT_IN if persona.name == "concise")


def system_of(request) -> str:
    return request.messages[0]["content"]


async def test_personas_and_models_change_what_the_model_receives_and_survive_a_restart(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_MODELS="gpt-4o-mini,gpt-4o")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(alice, "persona", "concise")
        await wait_for_text(tg, alice.id, replies.PERSONA_SET.format(title=CONCISE.title))
        tg.send_command(alice, "model", "gpt-4o")
        await wait_for_text(tg, alice.id, replies.MODEL_SET.format(model="gpt-4o"))
        tg.send_command(alice, "model", "gpt-5-imaginary")
        await wait_for_text(tg, alice.id, "I can't use the model gpt-5-imaginary")
        tg.send_text(alice, "one")
        await wait_for_text(tg, alice.id, "echo: one")
        assert_log_clean(bot)
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(alice, "reset")  # a reset keeps the persona and the model
        await wait_for_text(tg, alice.id, replies.RESET_DONE)
        tg.send_text(alice, "two")
        await wait_for_text(tg, alice.id, "echo: two")
        tg.send_command(alice, "persona", "Answer like a pirate.")
        await wait_for_text(tg, alice.id, replies.PERSONA_CUSTOM)
        tg.send_text(alice, "three")
        await wait_for_text(tg, alice.id, "echo: three")
        tg.send_command(alice, "persona")
        listing = await wait_for_text(tg, alice.id, "Persona now: custom")
        menu = next(m for m in tg.bot_messages(alice.id) if m.text == listing)
        tg.press_button(alice, menu, "persona:default")
        await wait_for_text(tg, alice.id, "Persona now: default")
        tg.send_command(alice, "model")
        models = await wait_for_text(tg, alice.id, "Model now: gpt-4o.")
        tg.press_button(alice, next(m for m in tg.bot_messages(alice.id) if m.text == models), "model:0")
        await wait_for_text(tg, alice.id, "Model now: gpt-4o-mini.")
        tg.send_text(alice, "four")
        await wait_for_text(tg, alice.id, "echo: four")
        assert_log_clean(bot)
    one, two, three, four = ai.chat_requests
    assert system_of(one) == system_of(two) == CONCISE.prompt
    assert (one.model, two.model, three.model, four.model) == ("gpt-4o", "gpt-4o", "gpt-4o", "gpt-4o-mini")
    assert system_of(three) == "Answer like a pirate."
    assert system_of(four) == DEFAULT_PERSONA
    types = await event_types(env, tmp_path, str(alice.id))
    assert types.count("PersonaSelected") == 3 and types.count("ModelSelected") == 2


async def test_in_a_group_only_admins_reset_forget_or_change_the_persona(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    member, admin = tg.new_user("Mia"), tg.new_user("Ada")
    group = tg.new_group("Club")
    tg.make_admin(group, admin)
    async with running_bot(env, tmp_path) as bot:
        tg.mention_bot(member, group, "hello there")
        await wait_for_text(tg, group.id, "echo: Mia: hello there")
        before = await event_types(env, tmp_path, str(group.id))
        for command, args in (("forget", ""), ("reset", ""), ("persona", "concise")):
            count = len(tg.bot_messages(group.id))
            tg.send_command(member, command, args, group)
            await tg.wait_for(lambda c=count: len(tg.bot_messages(group.id)) > c)
            assert texts(tg, group.id)[-1] == replies.ADMINS_ONLY
        tg.send_command(member, "persona", chat=group)  # anyone may list them
        listing = await wait_for_text(tg, group.id, "Persona now: default")
        menu = next(m for m in tg.bot_messages(group.id) if m.text == listing)
        query = tg.press_button(member, menu, "persona:concise")  # ...but not pick one
        refusal = await tg.wait_for(
            lambda: next((a for a in tg.callback_answers if a.callback_query_id == query), None)
        )
        assert refusal.text == replies.ADMINS_ONLY
        await tg.wait_until_consumed(timeout=10)
        assert await event_types(env, tmp_path, str(group.id)) == before  # nothing was recorded
        tg.send_command(admin, "forget", chat=group)
        await wait_for_text(tg, group.id, replies.FORGET_CONFIRM)
        confirm = next(m for m in tg.bot_messages(group.id) if m.text == replies.FORGET_CONFIRM)
        yes = next(data for data in confirm.callback_data() if data.startswith("forget:yes"))
        tg.press_button(member, confirm, yes)  # the button is the asking admin's alone
        await tg.wait_until_consumed(timeout=10)
        assert await replay_list(env, tmp_path) == [str(group.id)]
        tg.press_button(admin, confirm, yes)
        await wait_for_text(tg, group.id, replies.FORGET_DONE)
        assert_log_clean(bot)
    assert await replay_list(env, tmp_path) == []


async def test_two_speakers_in_a_group_appear_by_name_and_a_private_prompt_has_no_names(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    ann, bob = tg.new_user("Ann", last_name="Lee"), tg.new_user("Bob")
    group = tg.new_group("Pair")
    async with running_bot(env, tmp_path) as bot:
        tg.mention_bot(ann, group, "I like tea")
        await wait_for_text(tg, group.id, "echo: Ann Lee: I like tea")
        tg.mention_bot(bob, group, "what does Ann like?")
        await wait_for_text(tg, group.id, "echo: Bob: what does Ann like?")
        tg.send_text(ann, "just me")
        await wait_for_text(tg, ann.id, "echo: just me")
        assert_log_clean(bot)
    assert [m["content"] for m in ai.chat_requests[1].messages[1:]] == [
        "Ann Lee: I like tea",
        "echo: Ann Lee: I like tea",
        "Bob: what does Ann like?",
    ]
    assert ai.chat_requests[2].messages[-1]["content"] == "just me"


async def test_only_allowed_groups_are_served_and_their_members_need_no_user_allowlist(tg, ai, tmp_path):
    owner, guest = tg.new_user("Owner"), tg.new_user("Guest")
    served, other = tg.new_group("Served"), tg.new_group("Other")
    env = bot_env(
        tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_ALLOWED_USERS=str(owner.id), CONVO_ALLOWED_CHATS=str(served.id)
    )
    async with running_bot(env, tmp_path) as bot:
        tg.mention_bot(guest, served, "hi from a member")
        await wait_for_text(tg, served.id, "echo: Guest: hi from a member")
        tg.mention_bot(owner, other, "hi from elsewhere")
        tg.send_text(guest, "hi in private")
        await wait_for_text(tg, guest.id, replies.NOT_ALLOWED)
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert texts(tg, other.id) == []
    assert await replay_list(env, tmp_path) == [str(served.id)]


async def test_two_topics_are_two_streams_and_each_reply_carries_its_topic(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    ann = tg.new_user("Ann")
    forum = tg.new_group("Forum", forum=True)
    tg.make_admin(forum, ann)
    cooking, travel = tg.create_topic(forum, "Cooking", creator=ann), tg.create_topic(forum, "Travel", creator=ann)
    async with running_bot(env, tmp_path) as bot:
        tg.mention_bot(ann, forum, "pasta tips?", thread=cooking)
        await wait_for_text(tg, forum.id, "echo: Ann: pasta tips?")
        tg.mention_bot(ann, forum, "where to go?", thread=travel)
        await wait_for_text(tg, forum.id, "echo: Ann: where to go?")
        tg.send_command(ann, "persona", "concise", forum, thread=travel)
        await wait_for_text(tg, forum.id, replies.PERSONA_SET.format(title=CONCISE.title))
        tg.mention_bot(ann, forum, "and in winter?", thread=travel)
        await wait_for_text(tg, forum.id, "echo: Ann: and in winter?")
        tg.mention_bot(ann, forum, "and sauces?", thread=cooking)
        await wait_for_text(tg, forum.id, "echo: Ann: and sauces?")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert [m.text for m in tg.bot_messages(forum.id, thread=cooking)] == [
        "echo: Ann: pasta tips?",
        "echo: Ann: and sauces?",
    ]
    assert texts_in(tg, forum.id, travel) == [
        "echo: Ann: where to go?",
        replies.PERSONA_SET.format(title=CONCISE.title),
        "echo: Ann: and in winter?",
    ]
    assert sorted(await replay_list(env, tmp_path)) == sorted([f"{forum.id}:{cooking}", f"{forum.id}:{travel}"])
    sauces, winter = ai.chat_requests[3], ai.chat_requests[2]
    assert [m["content"] for m in sauces.messages[1:]] == [
        "Ann: pasta tips?",
        "echo: Ann: pasta tips?",
        "Ann: and sauces?",
    ]
    assert system_of(winter) == CONCISE.prompt and system_of(sauces) == DEFAULT_PERSONA  # each topic its own


def texts_in(tg, chat_id: int, thread: int) -> list[str]:
    return [m.text or "" for m in tg.bot_messages(chat_id, thread=thread)]
