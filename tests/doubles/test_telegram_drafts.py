"""Tests of the fake's message drafts (``sendMessageDraft``, Stop), removed methods and chat members."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    ChatMemberAdministrator,
    ChatMemberMember,
    ChatMemberOwner,
    MessageEntity,
    MessageGenerationStopped,
    Update,
)
from aiohttp import web

from tests.doubles.telegram import SECRET_HEADER, DraftRecord, FakeTelegram, User
from tests.doubles.test_telegram_server import QuickCloseSession, expect_error, raw_call

NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    client = Bot(tg.token, session=QuickCloseSession(api=TelegramAPIServer.from_base(tg.api_base)))
    yield client
    await client.session.close()


@pytest.fixture
def alice(tg: FakeTelegram) -> User:
    return tg.register_user(tg.new_user("Alice", username="alice"))


# --------------------------------------------------------------------------- sendMessageDraft


async def test_a_draft_is_recorded_and_creates_no_message(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    assert await bot.send_message_draft(alice.id, draft_id=7, text="hi", can_stop=True) is True
    assert await bot.send_message_draft(alice.id, draft_id=7, text="Hi <b>there</b>", parse_mode="HTML") is True
    [first, second] = tg.drafts(alice.id)
    assert isinstance(first, DraftRecord)
    assert (first.chat_id, first.draft_id, first.text, first.parse_mode) == (alice.id, 7, "hi", None)
    assert (first.can_stop, first.keep_on_stop, first.message_thread_id) == (True, False, None)
    assert (second.text, second.parse_mode, second.can_stop) == ("Hi there", "HTML", False)
    assert second.entities == ({"type": "bold", "offset": 3, "length": 5},)
    assert first.time <= second.time
    assert tg.messages(alice.id) == []
    assert tg.bot_messages() == []
    sent = await bot.send_message(alice.id, "final")
    assert sent.message_id == 1  # drafts consumed no message id


async def test_draft_options_and_the_thinking_placeholder(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    topic = tg.create_topic(alice.private_chat, "Questions", creator=tg.bot_user)
    assert await bot.send_message_draft(alice.id, draft_id=-3)  # no text: a "Thinking…" placeholder
    assert await bot.send_message_draft(alice.id, draft_id=-3, text="  ", keep_on_stop=True, message_thread_id=topic)
    entities = [MessageEntity(type="italic", offset=0, length=4)]
    assert await bot.send_message_draft(alice.id, draft_id=9, text="slow", entities=entities, can_stop=True)
    assert await bot.send_message_draft(alice.id, draft_id=9, text="x" * 4096)
    assert await bot.send_message_draft(alice.id, draft_id=9, text="<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    placeholder, blank, italic, *_ = tg.drafts(alice)
    assert (placeholder.text, blank.text, blank.keep_on_stop, blank.message_thread_id) == ("", "", True, topic)
    assert italic.entities == ({"type": "italic", "offset": 0, "length": 4},)
    assert [record.draft_id for record in tg.drafts(draft_id=9)] == [9, 9, 9]
    assert tg.drafts(424242) == []


async def test_draft_errors(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    group, channel = tg.new_group(), tg.new_channel()
    basic = tg.new_group("Basic", supergroup=False)
    for chat in (group, channel, basic):
        await expect_error(bot.send_message_draft(chat.id, draft_id=1, text="x"), "Bad Request: TEXTDRAFT_PEER_INVALID")
    await expect_error(bot.send_message_draft(alice.id, draft_id=0, text="x"), "Bad Request: DRAFT_ID_INVALID")
    await expect_error(bot.send_message_draft(424242, draft_id=1, text="x"), "Bad Request: chat not found")
    await expect_error(
        bot.send_message_draft(alice.id, draft_id=1, text="<b>bold", parse_mode="HTML"),
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
    )
    await expect_error(
        bot.send_message_draft(alice.id, draft_id=1, text="x" * 4097), "Bad Request: message is too long"
    )
    await expect_error(
        bot.send_message_draft(alice.id, draft_id=1, text="x", parse_mode="Foo"), "Bad Request: unsupported parse_mode"
    )
    tg.block_bot(alice)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message_draft(alice.id, draft_id=1, text="x")
    assert tg.drafts() == []
    assert [call.status for call in tg.calls_to("sendMessageDraft")] == [400] * 8 + [403]


async def test_draft_status_for_a_missing_draft_id(tg: FakeTelegram, alice: User) -> None:
    status, body = await raw_call(tg, "sendMessageDraft", json={"chat_id": alice.id, "text": "x"})
    assert (status, body["description"]) == (400, "Bad Request: DRAFT_ID_INVALID")


async def test_injected_faults_apply_to_drafts(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    tg.flood_next("sendMessageDraft", retry_after=4)
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message_draft(alice.id, draft_id=1, text="x")
    assert error.value.retry_after == 4
    tg.fail_next("sendMessageDraft", error_code=400, description="Bad Request: TEXTDRAFT_PEER_INVALID")
    await expect_error(bot.send_message_draft(alice.id, draft_id=1, text="x"), "Bad Request: TEXTDRAFT_PEER_INVALID")
    assert await bot.send_message_draft(alice.id, draft_id=1, text="x")
    assert len(tg.drafts(alice)) == 1


async def test_drafts_count_for_flood_control_only_when_asked(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    tg.set_flood_limits(chat_burst=2)
    for number in range(10):
        assert await bot.send_message_draft(alice.id, draft_id=1, text=f"part {number}")
    await bot.send_message(alice.id, "one")  # drafts took no tokens
    tg.set_flood_limits(count_drafts=True)
    await bot.send_message_draft(alice.id, draft_id=1, text="a")
    await bot.send_message_draft(alice.id, draft_id=1, text="b")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message_draft(alice.id, draft_id=1, text="c")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(alice.id, "drafts and messages share the chat's bucket")


# --------------------------------------------------------------------------- an older server without the method


async def test_a_removed_method_is_answered_like_an_unknown_one(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    tg.remove_method("sendMessageDraft")
    assert tg.removed_method_calls("sendMessageDraft") == 0
    assert await raw_call(tg, "sendMessageDraft", json={"chat_id": alice.id, "draft_id": 1}) == (404, NOT_FOUND)
    assert await raw_call(tg, "noSuchMethod") == (404, NOT_FOUND)
    tg.fail_next("sendMessageDraft", error_code=500)  # the method does not exist: nothing of it runs
    with pytest.raises(TelegramNotFound) as error:
        await bot.send_message_draft(alice.id, draft_id=1, text="hi")
    assert error.value.message == "Not Found"
    assert tg.removed_method_calls("SENDMESSAGEDRAFT") == 2
    assert tg.drafts() == []
    await bot.send_message(alice.id, "other methods still work")

    tg.remove_method("sendmessagedraft")  # again: the count is kept
    assert tg.removed_method_calls("sendMessageDraft") == 2
    tg.restore_method("sendMessageDraft")
    with pytest.raises(ValueError, match="was not removed"):
        tg.removed_method_calls("sendMessageDraft")
    with pytest.raises(TelegramServerError):  # the injected failure was still waiting for a real call
        await bot.send_message_draft(alice.id, draft_id=1, text="hi")
    assert await bot.send_message_draft(alice.id, draft_id=1, text="hi")
    with pytest.raises(ValueError, match="not a method the fake emulates"):
        tg.remove_method("sendMessageDrafts")


async def test_removing_a_method_affects_one_server_only(tg: FakeTelegram, alice: User) -> None:
    tg.remove_method("sendMessageDraft")
    async with FakeTelegram() as other:
        other.register_user(alice)
        status, body = await raw_call(other, "sendMessageDraft", json={"chat_id": alice.id, "draft_id": 1})
        assert (status, body) == (200, {"ok": True, "result": True})
    assert tg.removed_method_calls("sendMessageDraft") == 0


# --------------------------------------------------------------------------- Stop


async def test_stop_generation_queues_an_update_aiogram_parses(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    topic = tg.create_topic(alice.private_chat, "Questions", creator=tg.bot_user)  # the bot's own: no update
    await bot.send_message_draft(alice.id, draft_id=7, text="thinking", can_stop=True, message_thread_id=topic)
    queued = tg.stop_generation(alice, 7)
    assert queued["stopped_message_generation"] == {
        "chat": alice.private_chat.to_api(),
        "draft_id": 7,
        "message_thread_id": topic,
    }
    [update] = await bot.get_updates(timeout=0)
    assert update.event_type == "stopped_message_generation"
    stopped = update.stopped_message_generation
    assert isinstance(stopped, MessageGenerationStopped)
    assert (stopped.chat.id, stopped.chat.type, stopped.draft_id, stopped.message_thread_id) == (
        alice.id,
        "private",
        7,
        topic,
    )
    assert tg.stop_generation(alice.id, 7, message_thread_id=4)["stopped_message_generation"]["message_thread_id"] == 4


async def test_stop_generation_is_strict_about_an_offered_stop_button(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    with pytest.raises(ValueError, match="never received draft 7 with can_stop=true"):
        tg.stop_generation(alice, 7)
    await bot.send_message_draft(alice.id, draft_id=7, text="no stop button")
    await bot.send_message_draft(alice.id, draft_id=8, text="other draft", can_stop=True)
    with pytest.raises(ValueError, match=r"drafts \(id, can_stop\): \[\(7, False\), \(8, True\)\]"):
        tg.stop_generation(alice, 7)
    assert tg.pending_updates == []
    loose = tg.stop_generation(alice, 7, strict=False)
    assert Update.model_validate(loose).stopped_message_generation is not None
    stranger = tg.new_user("Stranger")
    tg.stop_generation(stranger, 1, strict=False)  # the user becomes known, like any injected update
    assert stranger.id in tg.state.chats
    with pytest.raises(LookupError):
        tg.stop_generation(424242, 1, strict=False)


async def test_allowed_updates_know_stopped_message_generation(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    tg.config.api_quirks = False  # repeated polls with one offset would wait 3 s each
    await bot.send_message_draft(alice.id, draft_id=1, text="x", can_stop=True)
    await bot.get_updates(timeout=0, allowed_updates=["message"])
    tg.stop_generation(alice, 1)
    assert tg.pending_updates == []
    await bot.get_updates(timeout=0, allowed_updates=["message", "stopped_message_generation"])
    tg.stop_generation(alice, 1)
    await bot.get_updates(timeout=0, allowed_updates=[])  # back to the default, which includes it
    tg.stop_generation(alice, 1)
    assert [u.event_type for u in await bot.get_updates(timeout=0)] == ["stopped_message_generation"] * 2
    assert tg.state.queue.dropped == [tg.updates[0]]


async def test_a_dispatcher_handler_receives_the_stop(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    dispatcher = Dispatcher()
    stopped: list[MessageGenerationStopped] = []

    @dispatcher.stopped_message_generation()
    async def on_stop(event: MessageGenerationStopped) -> None:
        stopped.append(event)

    await bot.send_message_draft(alice.id, draft_id=5, text="long answer", can_stop=True)
    used = dispatcher.resolve_used_update_types()
    assert "stopped_message_generation" in used
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False, allowed_updates=used)
    )
    try:
        await tg.wait_for(lambda: any(not call.done for call in tg.calls_to("getUpdates")))
        tg.stop_generation(alice, 5)
        await tg.wait_for(lambda: stopped)
        assert stopped[0].draft_id == 5
    finally:
        await dispatcher.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(polling, 5)


async def test_the_stop_reaches_a_webhook(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        assert request.headers.get(SECRET_HEADER) == "s"
        received.append(await request.json())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/hook", secret_token="s")
        await bot.send_message_draft(alice.id, draft_id=2, text="x", can_stop=True)
        update = tg.stop_generation(alice, 2)
        await tg.wait_until_consumed()
        assert received == [update]
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


# --------------------------------------------------------------------------- chat members


async def test_get_chat_member_statuses(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    group = tg.new_group("Team")
    owner, admin = tg.new_user("Olga"), tg.new_user("Adam")
    tg.make_admin(group, owner, creator=True, custom_title="boss")
    tg.make_admin(group, admin, can_promote_members=True)

    creator = await bot.get_chat_member(group.id, owner.id)
    assert isinstance(creator, ChatMemberOwner)
    assert (creator.status, creator.user.id, creator.is_anonymous, creator.custom_title) == (
        "creator",
        owner.id,
        False,
        "boss",
    )
    promoted = await bot.get_chat_member(group.id, admin.id)
    assert isinstance(promoted, ChatMemberAdministrator)
    assert (promoted.user.first_name, promoted.can_promote_members, promoted.can_delete_messages) == (
        "Adam",
        True,
        True,
    )
    assert promoted.can_pin_messages is True
    assert promoted.can_post_messages is None
    member = await bot.get_chat_member(group.id, alice.id)
    assert isinstance(member, ChatMemberMember)
    assert member.user.id == alice.id
    itself = await bot.get_chat_member(group.id, tg.bot_user.id)
    assert isinstance(itself, ChatMemberMember)
    assert itself.user.is_bot

    tg.make_admin(group, tg.bot_user)
    assert isinstance(await bot.get_chat_member(group.id, tg.bot_user.id), ChatMemberAdministrator)
    tg.remove_admin(group, admin)
    assert isinstance(await bot.get_chat_member(group.id, admin.id), ChatMemberMember)
    tg.make_admin(group, alice, creator=True)  # a chat has one creator
    assert isinstance(await bot.get_chat_member(group.id, alice.id), ChatMemberOwner)
    assert isinstance(await bot.get_chat_member(group.id, owner.id), ChatMemberMember)


async def test_get_chat_member_errors_and_private_chats(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    group = tg.new_group()
    await expect_error(bot.get_chat_member(group.id, tg.new_user("Nobody").id), "Bad Request: user not found")
    await expect_error(bot.get_chat_member(424242, alice.id), "Bad Request: chat not found")
    status, body = await raw_call(tg, "getChatMember", json={"chat_id": group.id, "user_id": "x"})
    assert (status, body["description"]) == (400, "Bad Request: invalid user_id specified")

    assert isinstance(await bot.get_chat_member(alice.id, alice.id), ChatMemberMember)
    assert isinstance(await bot.get_chat_member(alice.id, tg.bot_user.id), ChatMemberMember)
    bob = tg.register_user(tg.new_user("Bob"))
    await expect_error(bot.get_chat_member(alice.id, bob.id), "Bad Request: user not found")
    with pytest.raises(ValueError, match="no administrators"):
        tg.make_admin(alice.private_chat, alice)
    with pytest.raises(ValueError, match="administrators only"):
        tg.make_admin(group, alice, creator=True, can_promote_members=True)


async def test_channels_and_get_chat_administrators(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    channel = tg.new_channel("News")
    itself = await bot.get_chat_member(channel.id, tg.bot_user.id)
    assert isinstance(itself, ChatMemberAdministrator)
    assert (itself.can_post_messages, itself.can_edit_messages, itself.can_pin_messages) == (True, True, None)
    assert await bot.get_chat_administrators(channel.id) == []  # bots are left out

    group = tg.new_group()
    owner, helper = tg.new_user("Olga"), tg.new_user("Helper", is_bot=True)
    tg.make_admin(group, alice)
    tg.make_admin(group, helper)
    tg.make_admin(group, owner, creator=True, is_anonymous=True)
    admins = await bot.get_chat_administrators(group.id)
    assert [(type(member), member.user.id) for member in admins] == [
        (ChatMemberOwner, owner.id),
        (ChatMemberAdministrator, alice.id),
    ]
    assert isinstance(admins[0], ChatMemberOwner)
    assert admins[0].is_anonymous
    await expect_error(
        bot.get_chat_administrators(alice.id), "Bad Request: there are no administrators in the private chat"
    )
    await expect_error(bot.get_chat_administrators(424242), "Bad Request: chat not found")
