"""Tests of the fake's forum topics (``is_forum``, ``message_thread_id``, ``is_topic_message``), driven by aiogram."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import (
    BufferedInputFile,
    ExternalReplyInfo,
    MessageOriginUser,
    ReplyParameters,
    Update,
)

from tests.doubles.telegram import GENERAL_TOPIC, Chat, FakeTelegram, ForumTopic, User
from tests.doubles.test_telegram_server import QuickCloseSession, expect_error, keyboard, png_bytes, raw_call

THREAD_NOT_FOUND = "Bad Request: message thread not found"


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    client = Bot(tg.token, session=QuickCloseSession(api=TelegramAPIServer.from_base(tg.api_base)))
    yield client
    await client.session.close()


@pytest.fixture
def alice(tg: FakeTelegram) -> User:
    return tg.register_user(tg.new_user("Alice", username="alice"))


@pytest.fixture
def forum(tg: FakeTelegram) -> Chat:
    return tg.new_group("Forum", forum=True)


def last_update(tg: FakeTelegram) -> Update:
    return Update.model_validate(tg.updates[-1])


# --------------------------------------------------------------------------- chats and topics


async def test_a_forum_is_a_supergroup_with_is_forum(bot: Bot, tg: FakeTelegram, forum: Chat) -> None:
    assert (forum.type, forum.is_forum, forum.to_api()["is_forum"]) == ("supergroup", True, True)
    full = await bot.get_chat(forum.id)
    assert full.is_forum is True
    plain = tg.new_group()
    assert "is_forum" not in plain.to_api()
    assert (await bot.get_chat(plain.id)).is_forum is None
    with pytest.raises(ValueError, match="only a supergroup can be a forum"):
        tg.new_group(supergroup=False, forum=True)


async def test_create_topic_queues_its_service_message(bot: Bot, tg: FakeTelegram, forum: Chat, alice: User) -> None:
    first = tg.create_topic(forum, "Ideas")
    second = tg.create_topic(forum, "Bugs", creator=alice, icon_color=0xFB6F5F)
    assert 1 < first < second  # id 1 is the General topic's; ids grow with the chat's messages
    assert [(topic.message_thread_id, topic.name, topic.creator) for topic in tg.topics(forum)] == [
        (first, "Ideas", None),
        (second, "Bugs", alice),
    ]
    [ideas, _] = tg.topics(forum.id)
    assert isinstance(ideas, ForumTopic)
    assert ideas.to_api() == {"message_thread_id": first, "name": "Ideas", "icon_color": 0x6FB9F0}
    assert ideas.root is tg.message(forum.id, first)

    created = [update.message for update in await bot.get_updates(timeout=0)]
    assert [message.message_id for message in created if message] == [first, second]
    anonymous, by_alice = (message for message in created if message)
    assert anonymous.forum_topic_created is not None
    assert (anonymous.forum_topic_created.name, anonymous.forum_topic_created.icon_color) == ("Ideas", 0x6FB9F0)
    assert (anonymous.message_thread_id, anonymous.is_topic_message, anonymous.reply_to_message) == (first, True, None)
    assert anonymous.from_user is None
    assert anonymous.sender_chat is not None
    assert anonymous.sender_chat.id == forum.id
    assert anonymous.chat.is_forum is True
    assert by_alice.from_user is not None
    assert by_alice.from_user.id == alice.id
    assert (by_alice.message_thread_id, by_alice.forum_topic_created.name) == (second, "Bugs")


async def test_create_topic_refusals(tg: FakeTelegram, forum: Chat) -> None:
    for chat in (tg.new_group(), tg.new_group(supergroup=False), tg.new_channel()):
        with pytest.raises(ValueError, match="has no topics"):
            tg.create_topic(chat, "x")
    with pytest.raises(ValueError, match="1-128 characters"):
        tg.create_topic(forum, "")
    with pytest.raises(ValueError, match="1-128 characters"):
        tg.create_topic(forum, "x" * 129)
    with pytest.raises(ValueError, match="icon_color"):
        tg.create_topic(forum, "x", icon_color=0x123456)
    assert tg.topics(forum) == []
    assert tg.updates == []


async def test_a_topic_the_bot_created_queues_nothing_and_is_its_own(
    bot: Bot, tg: FakeTelegram, forum: Chat, alice: User
) -> None:
    topic = tg.create_topic(forum, "Bot's corner", creator=tg.bot_user)
    assert tg.updates == []  # a bot never receives its own messages
    assert tg.bot_messages(forum.id) == []  # a service message, not something the bot sent
    tg.send_text(alice, "hello", forum, thread=topic)
    [update] = await bot.get_updates(timeout=0)
    message = update.message
    assert message is not None
    # Telegram's quirk: in a topic, a message that answers nothing "replies" to the topic's creation, here the bot's
    assert message.reply_to_message is not None
    assert message.reply_to_message.from_user is not None
    assert message.reply_to_message.from_user.id == tg.bot_user.id
    assert message.reply_to_message.forum_topic_created is not None
    assert tg.message(forum.id, message.message_id).reply_to is None  # no explicit reply is recorded


# --------------------------------------------------------------------------- what users send


async def test_user_messages_in_a_topic_and_in_general(bot: Bot, tg: FakeTelegram, forum: Chat, alice: User) -> None:
    topic = tg.create_topic(forum, "Ideas")
    in_topic = tg.send_text(alice, "in a topic", forum, thread=topic)
    in_general = tg.send_text(alice, "in General", forum)
    assert (in_topic.thread, in_topic.message_thread_id, in_general.thread) == (topic, topic, None)
    raw = tg.updates[-2]["message"]
    assert (raw["message_thread_id"], raw["is_topic_message"]) == (topic, True)
    assert raw["reply_to_message"]["message_id"] == topic
    assert "message_thread_id" not in tg.updates[-1]["message"]
    assert "is_topic_message" not in tg.updates[-1]["message"]
    assert "reply_to_message" not in tg.updates[-1]["message"]

    _, topic_update, general_update = await bot.get_updates(timeout=0)
    assert topic_update.message is not None
    assert general_update.message is not None
    assert (topic_update.message.message_thread_id, topic_update.message.is_topic_message) == (topic, True)
    assert topic_update.message.reply_to_message is not None
    assert topic_update.message.reply_to_message.forum_topic_created is not None
    assert topic_update.message.reply_to_message.is_topic_message is True
    assert (general_update.message.message_thread_id, general_update.message.is_topic_message) == (None, None)
    assert [m.text for m in tg.messages(forum.id, thread=topic)] == [None, "in a topic"]  # the creation, then text
    assert [m.text for m in tg.messages(forum.id, thread=GENERAL_TOPIC)] == ["in General"]


async def test_every_inject_helper_takes_a_thread(tg: FakeTelegram, forum: Chat, alice: User) -> None:
    topic = tg.create_topic(forum, "Everything")
    sent = [
        tg.send_command(alice, "help", chat=forum, thread=topic),
        tg.mention_bot(alice, forum, "hi", thread=topic),
        tg.send_text(None, "anonymous", forum, thread=topic),
        tg.send_photo(alice, "cap", forum, thread=topic),
        tg.send_sticker(alice, chat=forum, thread=topic),
        tg.send_voice(alice, chat=forum, thread=topic),
        tg.send_document(alice, chat=forum, thread=topic),
        tg.send_location(alice, chat=forum, thread=topic),
        tg.send_contact(alice, chat=forum, thread=topic),
        tg.send_poll(alice, chat=forum, thread=topic),
        tg.send_content(alice, {"dice": {"emoji": "🎲", "value": 3}}, forum, thread=topic),
    ]
    assert {message.thread for message in sent} == {topic}
    for update in tg.updates[-len(sent) :]:
        message = Update.model_validate(update).message
        assert message is not None
        assert (message.message_thread_id, message.is_topic_message) == (topic, True)


async def test_thread_refusals_on_the_test_side(tg: FakeTelegram, forum: Chat, alice: User) -> None:
    topic = tg.create_topic(forum, "Ideas")
    other = tg.create_topic(forum, "Other")
    plain = tg.new_group()
    with pytest.raises(ValueError, match="has no topics"):
        tg.send_text(alice, "x", plain, thread=topic)
    with pytest.raises(ValueError, match="has no topics"):
        tg.send_photo(alice, chat=tg.new_channel(), thread=topic)
    with pytest.raises(ValueError, match=rf"has no topic 999; topics: \[{topic}, {other}\]"):
        tg.send_text(alice, "x", forum, thread=999)
    with pytest.raises(ValueError, match="has no topic 1;"):
        tg.send_command(alice, "start", chat=forum, thread=1)  # General has no thread id
    with pytest.raises(ValueError, match="has no topic"):
        tg.send_text(alice, "x", thread=topic)  # the private chat has no such topic
    question = tg.send_text(alice, "question", forum, thread=topic)
    with pytest.raises(ValueError, match="a reply lands in the topic of the message it answers"):
        tg.send_text(alice, "x", forum, reply_to=question, thread=other)
    assert len(tg.updates) == 3  # two creations and the question


async def test_user_replies_and_edits_stay_in_the_topic(bot: Bot, tg: FakeTelegram, forum: Chat, alice: User) -> None:
    topic = tg.create_topic(forum, "Ideas")
    answer = await bot.send_message(forum.id, "answer", message_thread_id=topic)
    reply = tg.reply(alice, answer, "thanks")
    assert (reply.thread, reply.reply_to) == (topic, tg.message(forum.id, answer.message_id))
    message = last_update(tg).message
    assert message is not None
    assert (message.message_thread_id, message.is_topic_message) == (topic, True)
    assert message.reply_to_message is not None
    assert message.reply_to_message.message_id == answer.message_id  # the explicit reply, not the topic's creation

    tg.edit_message(alice, reply, "thanks!")
    edited = last_update(tg).edited_message
    assert edited is not None
    assert (edited.text, edited.message_thread_id, edited.is_topic_message) == ("thanks!", topic, True)
    assert tg.send_text(alice, "same topic", forum, reply_to=reply, thread=topic).thread == topic


# --------------------------------------------------------------------------- what the bot sends


async def test_the_bot_sends_into_a_topic(bot: Bot, tg: FakeTelegram, forum: Chat) -> None:
    topic = tg.create_topic(forum, "Ideas")
    sent = await bot.send_message(forum.id, "x", message_thread_id=topic, reply_markup=keyboard("ok"))
    assert (sent.message_thread_id, sent.is_topic_message) == (topic, True)
    assert sent.reply_to_message is not None  # the implicit reply to the topic's creation, as Telegram returns it
    assert sent.reply_to_message.message_id == topic
    assert sent.reply_to_message.forum_topic_created is not None
    assert sent.reply_to_message.forum_topic_created.name == "Ideas"
    stored = tg.message(forum.id, sent.message_id)
    assert stored is not None
    assert (stored.thread, stored.reply_to) == (topic, None)
    general = await bot.send_message(forum.id, "y")
    assert (general.message_thread_id, general.is_topic_message, general.reply_to_message) == (None, None, None)

    photo = await bot.send_photo(
        forum.id, BufferedInputFile(png_bytes(8, 8), "p.png"), caption="pic", message_thread_id=topic
    )
    assert (photo.message_thread_id, photo.is_topic_message) == (topic, True)
    assert [m.message_id for m in tg.photos(forum.id, thread=topic)] == [photo.message_id]

    query_id = tg.press_button(tg.new_user("Bob"), stored, "ok")
    callback = last_update(tg).callback_query
    assert callback is not None
    assert callback.id == query_id
    assert callback.message is not None
    assert callback.message.message_thread_id == topic

    edited = await bot.edit_message_text("x2", chat_id=forum.id, message_id=sent.message_id)
    assert not isinstance(edited, bool)
    assert (edited.message_thread_id, edited.is_topic_message) == (topic, True)


async def test_bot_messages_filter_by_topic(bot: Bot, tg: FakeTelegram, forum: Chat) -> None:
    ideas, bugs = tg.create_topic(forum, "Ideas"), tg.create_topic(forum, "Bugs")
    await bot.send_message(forum.id, "general")
    await bot.send_message(forum.id, "idea", message_thread_id=ideas)
    await bot.send_message(forum.id, "bug", message_thread_id=bugs)
    await bot.send_message(forum.id, "idea 2", message_thread_id=ideas)

    assert [m.text for m in tg.bot_messages(forum.id)] == ["general", "idea", "bug", "idea 2"]
    assert [m.text for m in tg.bot_messages(forum.id, thread=ideas)] == ["idea", "idea 2"]
    assert [m.text for m in tg.bot_messages(forum.id, thread=GENERAL_TOPIC)] == ["general"]
    assert [m.text for m in tg.bot_messages(thread=bugs)] == ["bug"]
    last = tg.last_bot_message(forum.id, thread=ideas)
    assert last is not None
    assert last.text == "idea 2"
    assert tg.last_bot_message(forum.id, thread=999) is None
    assert [m.text for m in await tg.wait_for_messages(forum.id, 1, thread=bugs)] == ["bug"]
    with pytest.raises(TimeoutError):
        await tg.wait_for_messages(forum.id, 2, timeout=0.05, thread=bugs)


async def test_unknown_threads_are_refused(bot: Bot, tg: FakeTelegram, forum: Chat, alice: User) -> None:
    topic = tg.create_topic(forum, "Ideas")
    await expect_error(bot.send_message(forum.id, "x", message_thread_id=999), THREAD_NOT_FOUND)
    await expect_error(bot.send_message(forum.id, "x", message_thread_id=1), THREAD_NOT_FOUND)  # General's own id
    await expect_error(bot.send_message(alice.id, "x", message_thread_id=topic), THREAD_NOT_FOUND)  # no such topic
    photo = BufferedInputFile(png_bytes(8, 8), "p.png")
    await expect_error(bot.send_photo(forum.id, photo, message_thread_id=999), THREAD_NOT_FOUND)
    await expect_error(bot.send_chat_action(forum.id, "typing", message_thread_id=999), THREAD_NOT_FOUND)
    await expect_error(bot.send_message_draft(alice.id, draft_id=1, text="x", message_thread_id=999), THREAD_NOT_FOUND)
    assert tg.bot_messages() == []
    assert tg.chat_actions() == []
    assert tg.drafts() == []
    # the chat is checked first, the text before both
    await expect_error(bot.send_message(424242, "x", message_thread_id=999), "Bad Request: chat not found")
    status, body = await raw_call(tg, "sendMessage", json={"chat_id": forum.id, "text": "", "message_thread_id": 9})
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")


async def test_message_thread_id_is_ignored_where_there_are_no_topics(bot: Bot, tg: FakeTelegram) -> None:
    plain, basic, channel = tg.new_group(), tg.new_group(supergroup=False), tg.new_channel()
    for chat in (plain, basic, channel):
        sent = await bot.send_message(chat.id, "x", message_thread_id=77)
        assert (sent.message_thread_id, sent.is_topic_message) == (None, None)
        assert await bot.send_chat_action(chat.id, "typing", message_thread_id=77)
    assert [record.message_thread_id for record in tg.chat_actions()] == [None] * 3
    forum = tg.new_group(forum=True)
    for value in ("0", "-5", "abc"):  # none, as the server reads them
        status, body = await raw_call(
            tg, "sendMessage", data={"chat_id": forum.id, "text": "x", "message_thread_id": value}
        )
        assert status == 200
        assert "message_thread_id" not in body["result"]


async def test_chat_actions_record_their_topic(bot: Bot, tg: FakeTelegram, forum: Chat) -> None:
    topic = tg.create_topic(forum, "Ideas")
    assert await bot.send_chat_action(forum.id, "typing", message_thread_id=topic)
    assert await bot.send_chat_action(forum.id, "upload_photo")
    assert [(r.action, r.message_thread_id) for r in tg.chat_actions(forum.id)] == [
        ("typing", topic),
        ("upload_photo", None),
    ]
    assert [r.action for r in tg.chat_actions(forum.id, thread=topic)] == ["typing"]
    assert [r.action for r in tg.chat_actions(thread=GENERAL_TOPIC)] == ["upload_photo"]


async def test_a_reply_lands_in_the_topic_of_the_message_it_answers(
    bot: Bot, tg: FakeTelegram, forum: Chat, alice: User
) -> None:
    topic = tg.create_topic(forum, "Ideas")
    question = tg.send_text(alice, "question?", forum, thread=topic)
    by_parameters = await bot.send_message(
        forum.id, "answer", reply_parameters=ReplyParameters(message_id=question.message_id)
    )
    by_legacy_id = await bot.send_message(forum.id, "again", reply_to_message_id=question.message_id)
    for answer in (by_parameters, by_legacy_id):
        assert (answer.message_thread_id, answer.is_topic_message) == (topic, True)
        assert answer.reply_to_message is not None
        assert answer.reply_to_message.message_id == question.message_id
    assert [m.text for m in tg.bot_messages(forum.id, thread=topic)] == ["answer", "again"]
    same = await bot.send_message(
        forum.id, "same", message_thread_id=topic, reply_parameters=ReplyParameters(message_id=question.message_id)
    )
    assert same.reply_to_message is not None
    assert same.reply_to_message.message_id == question.message_id

    in_general = tg.send_text(alice, "general question", forum)
    answer = await bot.send_message(forum.id, "general answer", reply_to_message_id=in_general.message_id)
    assert (answer.message_thread_id, answer.is_topic_message) == (None, None)


async def test_a_reply_into_another_topic_is_an_external_reply(
    bot: Bot, tg: FakeTelegram, forum: Chat, alice: User
) -> None:
    ideas, bugs = tg.create_topic(forum, "Ideas"), tg.create_topic(forum, "Bugs")
    question = tg.send_photo(alice, "see", forum, thread=ideas)
    moved = await bot.send_message(
        forum.id, "moved", message_thread_id=bugs, reply_parameters=ReplyParameters(message_id=question.message_id)
    )
    assert moved.message_thread_id == bugs
    assert moved.reply_to_message is not None
    assert moved.reply_to_message.message_id == bugs  # only the topic's creation
    external = moved.external_reply
    assert isinstance(external, ExternalReplyInfo)
    assert isinstance(external.origin, MessageOriginUser)
    assert external.origin.sender_user.id == alice.id
    assert external.chat is not None
    assert (external.chat.id, external.message_id) == (forum.id, question.message_id)
    assert external.photo is not None
    stored = tg.message(forum.id, moved.message_id)
    assert stored is not None
    assert (stored.thread, stored.reply_to) == (bugs, None)


async def test_reply_threads_of_a_supergroup_without_topics(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    group = tg.new_group()
    root = tg.send_text(alice, "root", group)
    answer = await bot.send_message(group.id, "answer", reply_to_message_id=root.message_id)
    # Telegram reports the reply chain's first message as message_thread_id, without is_topic_message
    assert (answer.message_thread_id, answer.is_topic_message) == (root.message_id, None)
    follow_up = tg.reply(alice, answer, "more")
    assert (follow_up.message_thread_id, follow_up.thread) == (root.message_id, None)
    message = last_update(tg).message
    assert message is not None
    assert (message.message_thread_id, message.is_topic_message) == (root.message_id, None)
    assert "message_thread_id" not in tg.updates[0]["message"]  # the root itself is in no thread
    assert [m.text for m in tg.bot_messages(group.id, thread=GENERAL_TOPIC)] == ["answer"]  # no topic

    basic = tg.new_group(supergroup=False)
    question = tg.send_text(alice, "q", basic)
    reply = await bot.send_message(basic.id, "a", reply_to_message_id=question.message_id)
    assert reply.message_thread_id is None  # basic groups have no threads


async def test_the_creation_of_a_topic_cannot_be_deleted(bot: Bot, tg: FakeTelegram, forum: Chat, alice: User) -> None:
    topic = tg.create_topic(forum, "Ideas")
    await expect_error(bot.delete_message(forum.id, topic), "Bad Request: message can't be deleted")
    inside = tg.send_text(alice, "x", forum, thread=topic)
    assert await bot.delete_message(forum.id, inside.message_id)


async def test_forum_topic_management_methods_are_not_emulated(tg: FakeTelegram, forum: Chat) -> None:
    status, body = await raw_call(tg, "createForumTopic", json={"chat_id": forum.id, "name": "x"})
    assert (status, body["description"]) == (
        501,
        "Not Implemented: createForumTopic is not emulated by the fake server",
    )


async def test_a_pushed_forum_chat_is_remembered_as_a_forum(bot: Bot, tg: FakeTelegram) -> None:
    chat = {"id": -1009, "type": "supergroup", "title": "Pushed", "is_forum": True}
    tg.push_update({"message": {"message_id": 1, "date": 0, "chat": chat, "text": "hi"}})
    assert tg.state.chats[-1009].is_forum is True
    topic = tg.create_topic(tg.state.chats[-1009], "Later")
    assert (await bot.send_message(-1009, "x", message_thread_id=topic)).is_topic_message


async def test_the_control_route_sends_into_a_topic(tg: FakeTelegram, forum: Chat) -> None:
    topic = tg.create_topic(forum, "Ideas")
    payload = {"user_id": 555, "first_name": "Al", "text": "hi", "chat_id": forum.id, "thread": topic}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{tg.api_base}/_fake/send_text", json=payload) as reply,
    ):
        assert reply.status == 200
    assert (tg.updates[-1]["message"]["message_thread_id"], tg.updates[-1]["message"]["is_topic_message"]) == (
        topic,
        True,
    )


# --------------------------------------------------------------------------- topics in a private chat


async def test_topics_in_a_private_chat(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    topic = tg.create_topic(alice.private_chat, "Travel")  # by the user, as a bot may allow
    [created] = await bot.get_updates(timeout=0)
    assert created.message is not None
    assert created.message.from_user is not None
    assert (created.message.from_user.id, created.message.message_thread_id) == (alice.id, topic)

    tg.send_text(alice, "plan a trip", thread=topic)
    message = last_update(tg).message
    assert message is not None
    assert (message.message_thread_id, message.is_topic_message) == (topic, True)
    assert message.reply_to_message is None  # the implicit reply to the creation is a supergroup's quirk only

    sent = await bot.send_message(alice.id, "sure", message_thread_id=topic)
    assert (sent.message_thread_id, sent.is_topic_message, sent.reply_to_message) == (topic, True, None)
    assert await bot.send_message_draft(alice.id, draft_id=5, text="thinking", message_thread_id=topic, can_stop=True)
    assert await bot.send_message_draft(alice.id, draft_id=6, text="elsewhere")
    assert [d.draft_id for d in tg.drafts(alice, thread=topic)] == [5]
    assert [d.draft_id for d in tg.drafts(alice, thread=GENERAL_TOPIC)] == [6]
    assert tg.stop_generation(alice, 5)["stopped_message_generation"]["message_thread_id"] == topic
