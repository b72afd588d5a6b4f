"""Tests of the fake Telegram Bot API server, driven by the real aiogram client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
import time
import zlib
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from aiohttp import web

from tests.doubles.telegram import SECRET_HEADER, FakeTelegram, FloodLimits, User, utf16_len

REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


def png_bytes(width: int, height: int) -> bytes:
    """A valid RGB PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\x10\x20\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def keyboard(*data: str) -> InlineKeyboardMarkup:
    """One row of callback buttons."""
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=item.title(), callback_data=item) for item in data]]
    )


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


class QuickCloseSession(AiohttpSession):
    """aiogram's session without the 0.25 s graceful-close pause (keeps the suite fast)."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    client = Bot(tg.token, session=QuickCloseSession(api=TelegramAPIServer.from_base(tg.api_base)))
    yield client
    await client.session.close()


@pytest.fixture
def alice(tg: FakeTelegram) -> User:
    return tg.register_user(tg.new_user("Alice", username="alice"))


async def expect_error(
    call: Awaitable[Any], description: str, kind: type[TelegramAPIError] = TelegramBadRequest
) -> None:
    """Await ``call`` and check it fails with exactly ``description``."""
    with pytest.raises(kind) as error:
        await call
    assert error.value.message == description


async def long_poll_waiting(tg: FakeTelegram) -> None:
    """Wait until a getUpdates is waiting at the server (its long poll has begun)."""
    await tg.wait_for(lambda: any(not call.done for call in tg.calls_to("getUpdates")))


async def raw_call(
    tg: FakeTelegram, method: str, *, token: str | None = None, http: str = "POST", **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """Call the fake over plain HTTP; returns status and decoded body."""
    url = f"{tg.api_base}/bot{token or tg.token}/{method}"
    async with aiohttp.ClientSession() as session, session.request(http, url, **kwargs) as response:
        return response.status, await response.json()


# --------------------------------------------------------------------------- transport


async def test_get_me_describes_the_bot(bot: Bot, tg: FakeTelegram) -> None:
    me = await bot.get_me()
    assert me.id == int(tg.token.split(":")[0])
    assert me.is_bot
    assert me.username == tg.bot_user.username


async def test_wrong_token_unknown_method_and_bad_path(tg: FakeTelegram) -> None:
    bad_token = tg.token.split(":")[0] + ":wrong"
    assert await raw_call(tg, "getMe", token=bad_token) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert await raw_call(tg, "noSuchMethod") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    status, body = await raw_call(tg, "GETME", http="GET")
    assert (status, body["ok"], body["result"]["is_bot"]) == (200, True, True)
    async with aiohttp.ClientSession() as session, session.get(f"{tg.api_base}/whatever") as response:
        assert response.status == 404


async def test_parameters_arrive_by_every_transport(tg: FakeTelegram, alice: User) -> None:
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    transports: list[dict[str, Any]] = [
        {"params": {"chat_id": alice.id, "text": "query"}},
        {"data": {"chat_id": str(alice.id), "text": "form", "reply_markup": json.dumps(markup)}},
        {"json": {"chat_id": alice.id, "text": "json", "reply_markup": markup}},
    ]
    multipart = aiohttp.FormData()
    multipart.add_field("chat_id", str(alice.id))
    multipart.add_field("text", "multipart")
    multipart.add_field("reply_markup", json.dumps(markup))
    multipart.add_field("unused_file", b"\x00\x01", filename="blob.bin")
    transports.append({"data": multipart})
    for kwargs in transports:
        status, body = await raw_call(tg, "sendMessage", **kwargs)
        assert status == 200, body
    texts = [message.text for message in tg.bot_messages(alice.id)]
    assert texts == ["query", "form", "json", "multipart"]
    assert [bool(message.inline_keyboard) for message in tg.bot_messages(alice.id)] == [
        False,
        True,
        True,
        True,
    ]
    assert tg.calls[-1].files["unused_file"].data == b"\x00\x01"


async def test_every_call_is_recorded_in_order(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    await bot.send_chat_action(alice.id, "typing")
    await bot.send_message(alice.id, "hi")
    assert [call.method for call in tg.calls] == ["sendChatAction", "sendMessage"]
    assert tg.calls[1].params == {"chat_id": str(alice.id), "text": "hi"}
    assert tg.calls[0].time <= tg.calls[1].time
    assert tg.calls[1].ok
    assert tg.chat_actions(alice.id)[0].action == "typing"
    with pytest.raises(TelegramBadRequest, match="wrong parameter action in request"):
        await bot.send_chat_action(alice.id, "dancing")


# --------------------------------------------------------------------------- messages


async def test_send_and_edit_round_trip_parse_into_aiogram_types(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    sent = await bot.send_message(alice.id, "Hello <b>world</b>", parse_mode="HTML", reply_markup=keyboard("yes"))
    assert isinstance(sent, Message)
    assert sent.text == "Hello world"
    assert sent.from_user is not None
    assert sent.from_user.id == tg.bot_user.id
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == [("bold", 6, 5)]
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "yes"

    second = await bot.send_message(alice.id, "again")
    assert second.message_id == sent.message_id + 1

    edited = await bot.edit_message_text("Bye", chat_id=alice.id, message_id=sent.message_id)
    assert isinstance(edited, Message)
    assert edited.text == "Bye"
    assert edited.edit_date is not None
    assert edited.reply_markup is None  # omitting reply_markup removes the keyboard, as on Telegram
    stored = tg.message(alice.id, sent.message_id)
    assert stored is not None
    assert stored.texts == ["Hello world", "Bye"]

    await bot.edit_message_reply_markup(chat_id=alice.id, message_id=sent.message_id, reply_markup=keyboard("a"))
    assert stored.callback_data() == ["a"]
    assert await bot.delete_message(alice.id, sent.message_id)
    assert [m.message_id for m in tg.bot_messages(alice.id)] == [second.message_id]
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(alice.id, sent.message_id)


async def test_text_length_is_counted_in_utf16_units_after_parsing(bot: Bot, alice: User) -> None:
    assert utf16_len("😀") == 2
    await bot.send_message(alice.id, "x" * 4096)
    await bot.send_message(alice.id, "😀" * 2048)
    await bot.send_message(alice.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    for too_long in ("x" * 4097, "😀" * 2048 + "x"):
        with pytest.raises(TelegramBadRequest) as error:
            await bot.send_message(alice.id, too_long)
        assert error.value.message == "Bad Request: message is too long"


@pytest.mark.parametrize(
    ("text", "parse_mode", "description"),
    [
        ("", None, "Bad Request: message text is empty"),
        ("   \n ", None, "Bad Request: message must be non-empty"),
        ("<b></b>", "HTML", "Bad Request: message must be non-empty"),
        ("hi", "Foo", "Bad Request: unsupported parse_mode"),
    ],
)
async def test_empty_text_and_bad_parse_mode(
    bot: Bot, alice: User, text: str, parse_mode: str | None, description: str
) -> None:
    with pytest.raises(TelegramBadRequest) as error:
        await bot.send_message(alice.id, text, parse_mode=parse_mode)
    assert error.value.message == description


@pytest.mark.parametrize(
    ("markup", "text", "entities"),
    [
        ("<b>bold</b> <strong>s</strong>", "bold s", [("bold", 0, 4), ("bold", 5, 1)]),
        (
            "<i>i</i><em>e</em><u>u</u><ins>n</ins>",
            "ieun",
            [("italic", 0, 1), ("italic", 1, 1), ("underline", 2, 1), ("underline", 3, 1)],
        ),
        (
            "<s>a</s><strike>b</strike><del>c</del>",
            "abc",
            [("strikethrough", 0, 1), ("strikethrough", 1, 1), ("strikethrough", 2, 1)],
        ),
        (
            '<span class="tg-spoiler">x</span><tg-spoiler>y</tg-spoiler>',
            "xy",
            [("spoiler", 0, 1), ("spoiler", 1, 1)],
        ),
        ('<a href="https://example.com/">link</a>', "link", [("text_link", 0, 4)]),
        ('<pre><code class="language-python">x = 1</code></pre>', "x = 1", [("pre", 0, 5)]),
        ("<code>a &lt; b &amp;&amp; c &gt; d &quot;</code>", 'a < b && c > d "', [("code", 0, 16)]),
        ("<blockquote expandable>quote</blockquote>", "quote", [("expandable_blockquote", 0, 5)]),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍", [("custom_emoji", 0, 2)]),
        ("Tom & Jerry &#128512; &#x41;", "Tom & Jerry 😀 A", []),
        ("😀<b>x</b>", "😀x", [("bold", 2, 1)]),
    ],
)
async def test_html_accepted(
    bot: Bot, alice: User, markup: str, text: str, entities: list[tuple[str, int, int]]
) -> None:
    sent = await bot.send_message(alice.id, markup, parse_mode="HTML")
    assert sent.text == text
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == entities


@pytest.mark.parametrize(
    ("markup", "reason"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("a <br> b", 'Unsupported start tag "br" at byte offset 2'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("é<b", "Unclosed start tag at byte offset 2"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<b>x</b   y", "Unclosed end tag at byte offset 4"),
    ],
)
async def test_html_rejected_with_real_reason(bot: Bot, alice: User, markup: str, reason: str) -> None:
    with pytest.raises(TelegramBadRequest) as error:
        await bot.send_message(alice.id, markup, parse_mode="HTML")
    assert error.value.message == f"Bad Request: can't parse entities: {reason}"


async def test_markdown_parse_modes_are_refused_as_not_implemented(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    """The bot sends HTML only; the fake does not guess at Markdown, it fails loudly."""
    for mode in ("MarkdownV2", "Markdown"):
        with pytest.raises(TelegramServerError, match="parses parse_mode=HTML only"):
            await bot.send_message(alice.id, "*bold*", parse_mode=mode)
    assert [type(error) for error in tg.internal_errors] == [NotImplementedError, NotImplementedError]
    assert tg.bot_messages(alice.id) == []


async def test_edit_errors_and_not_modified(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    sent = await bot.send_message(alice.id, "<b>same</b>", parse_mode="HTML", reply_markup=keyboard("k"))
    with pytest.raises(TelegramBadRequest) as error:
        await bot.edit_message_text(
            "<b>same</b>",
            chat_id=alice.id,
            message_id=sent.message_id,
            parse_mode="HTML",
            reply_markup=keyboard("k"),
        )
    assert error.value.message == NOT_MODIFIED
    with pytest.raises(TelegramBadRequest) as error:
        await bot.edit_message_reply_markup(chat_id=alice.id, message_id=sent.message_id, reply_markup=keyboard("k"))
    assert error.value.message == NOT_MODIFIED
    # Same text but different formatting is a modification.
    await bot.edit_message_text("same", chat_id=alice.id, message_id=sent.message_id, reply_markup=keyboard("k"))

    await expect_error(
        bot.edit_message_text("x", chat_id=alice.id, message_id=9999),
        "Bad Request: message to edit not found",
    )
    await expect_error(
        bot.edit_message_text("x", chat_id=424242, message_id=sent.message_id), "Bad Request: chat not found"
    )
    users_message = tg.send_text(alice, "mine")
    await expect_error(
        bot.edit_message_text("x", chat_id=alice.id, message_id=users_message.message_id),
        "Bad Request: message can't be edited",
    )


async def test_chats_are_known_only_after_an_update_or_registration(bot: Bot, tg: FakeTelegram) -> None:
    stranger = tg.new_user("Stranger")
    with pytest.raises(TelegramBadRequest) as error:
        await bot.send_message(stranger.id, "hi")
    assert error.value.message == "Bad Request: chat not found"
    tg.send_text(stranger, "hello bot")
    await bot.send_message(stranger.id, "hi")
    tg.block_bot(stranger)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(stranger.id, "still there?")
    robot = tg.new_user("Robot", is_bot=True)
    tg.send_text(robot, "beep")
    with pytest.raises(TelegramForbiddenError, match="bot can't send messages to bots"):
        await bot.send_message(robot.id, "hi")


async def test_replies_and_reply_parameters(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    question = tg.send_text(alice, "question?")
    answer = await bot.send_message(
        alice.id, "answer", reply_parameters=ReplyParameters(message_id=question.message_id)
    )
    assert answer.reply_to_message is not None
    assert answer.reply_to_message.text == "question?"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(alice.id, "x", reply_parameters=ReplyParameters(message_id=777))
    loose = ReplyParameters(message_id=777, allow_sending_without_reply=True)
    assert (await bot.send_message(alice.id, "x", reply_parameters=loose)).reply_to_message is None
    stored = tg.message(alice.id, answer.message_id)
    assert stored is not None
    reply = tg.reply(alice, stored, "thanks")
    update = Update.model_validate(tg.updates[-1])
    assert update.message is not None
    assert update.message.reply_to_message is not None
    assert update.message.reply_to_message.message_id == answer.message_id
    assert reply.reply_to is stored


async def test_send_photo_upload_url_and_file_id(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    uploaded = await bot.send_photo(
        alice.id, BufferedInputFile(png_bytes(640, 480), "pic.png"), caption="<i>cap</i>", parse_mode="HTML"
    )
    assert uploaded.photo is not None
    assert (uploaded.photo[-1].width, uploaded.photo[-1].height) == (640, 480)
    assert uploaded.caption == "cap"
    assert uploaded.caption_entities is not None
    stored = tg.photos(alice.id)[0]
    assert stored.upload is not None
    assert stored.upload.data.startswith(b"\x89PNG")

    again = await bot.send_photo(alice.id, uploaded.photo[-1].file_id)
    assert again.photo is not None
    assert again.photo[-1].file_id == uploaded.photo[-1].file_id
    by_url = await bot.send_photo(alice.id, "https://example.com/cat.jpg")
    assert by_url.photo
    assert len(tg.photos(alice.id)) == 3

    await expect_error(
        bot.send_photo(alice.id, uploaded.photo[-1].file_id, caption="x" * 1025),
        "Bad Request: message caption is too long",
    )
    await bot.send_photo(alice.id, uploaded.photo[-1].file_id, caption="<b>" + "x" * 1024 + "</b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="wrong file identifier/HTTP URL specified"):
        await bot.send_photo(alice.id, "not-a-file-id")
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(alice.id, BufferedInputFile(b"plain text", "x.png"))
    status, body = await raw_call(tg, "sendPhoto", data={"chat_id": str(alice.id)})
    assert (status, body["description"]) == (400, "Bad Request: there is no photo in the request")


# --------------------------------------------------------------------------- updates


async def test_unconfirmed_update_is_redelivered(bot: Bot, tg: FakeTelegram) -> None:
    user = tg.new_user("Bob")
    first = tg.send_text(user, "one")
    second = tg.send_text(user, "two")
    batch = await bot.get_updates(offset=0, timeout=0)
    assert [u.update_id for u in batch] == [first.update_id, second.update_id]
    # The client "crashed" before confirming: the same updates come again.
    again = await bot.get_updates(timeout=0)
    assert again[0].update_id == first.update_id
    assert tg.delivery_count(first.update_id) == 2
    assert second.update_id is not None
    confirmed = await bot.get_updates(offset=second.update_id, timeout=0)
    assert [u.update_id for u in confirmed] == [second.update_id]
    assert await bot.get_updates(offset=second.update_id + 1, timeout=0) == []
    assert tg.pending_updates == []


async def test_negative_offset_and_limit(bot: Bot, tg: FakeTelegram) -> None:
    user = tg.new_user("Carol")
    sent = [tg.send_text(user, str(number)) for number in range(5)]
    assert [u.message.text for u in await bot.get_updates(offset=-2, timeout=0) if u.message] == ["3", "4"]
    assert len(tg.pending_updates) == 2
    assert sent[-1].update_id is not None
    tg.send_text(user, "5")
    assert len(await bot.get_updates(offset=sent[-1].update_id, limit=1, timeout=0)) == 1


async def test_long_poll_returns_early_when_an_update_arrives(bot: Bot, tg: FakeTelegram) -> None:
    user = tg.new_user("Dave")
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await long_poll_waiting(tg)
    tg.send_text(user, "ping")
    updates = await asyncio.wait_for(poll, 5)  # the poll asked to wait 10 s: it ended because the update came
    assert updates[0].message is not None
    assert updates[0].message.text == "ping"


async def test_second_long_poll_terminates_the_first(bot: Bot, tg: FakeTelegram) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await long_poll_waiting(tg)
    second = asyncio.create_task(bot.get_updates(timeout=10))
    with pytest.raises(TelegramConflictError) as error:
        await asyncio.wait_for(first, 2)
    assert error.value.message == (
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
    )
    tg.send_text(tg.new_user("Eve"), "hello")
    assert len(await asyncio.wait_for(second, 2)) == 1


async def test_allowed_updates_filter_new_updates(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    tg.send_text(alice, "ignored")
    sent = await bot.send_message(alice.id, "pick", reply_markup=keyboard("go"))
    stored = tg.message(alice.id, sent.message_id)
    assert stored is not None
    tg.press_button(alice, stored, "go")
    updates = await bot.get_updates(timeout=0, allowed_updates=[])
    assert [u.event_type for u in updates] == ["callback_query"]


async def test_dispatcher_polling_end_to_end(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False))
    try:
        tg.send_text(alice, "hi")
        [reply] = await tg.wait_for_messages(alice.id, 1, timeout=5)
        assert reply.text == "echo: hi"
        await tg.wait_until_consumed(timeout=5)
    finally:
        await dispatcher.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(polling, 5)


async def test_injected_updates_parse_as_aiogram_updates(tg: FakeTelegram, alice: User) -> None:
    group = tg.new_group("Team")
    channel = tg.new_channel("News", username="news")
    helper_bot = tg.new_user("Helper", is_bot=True, username="helper_bot")
    first = tg.send_text(alice, "first")
    tg.send_command(alice, "start", "deep-link")
    tg.send_sticker(alice)
    tg.send_photo(alice, caption="look")
    tg.send_voice(alice)
    tg.send_document(alice)
    tg.send_location(alice)
    tg.send_contact(alice)
    tg.send_poll(alice)
    tg.mention_bot(alice, group, "what's up?")
    tg.send_text(helper_bot, "from a bot", group)
    tg.send_text(None, "anonymous admin", group)
    tg.post_to_channel(channel, "breaking")
    tg.edit_message(alice, first, "first, edited")
    raw = tg.push_update({"message": {"message_id": 99, "date": 0, "chat": {"id": -5, "type": "group", "title": "G"}}})

    updates = [Update.model_validate(update) for update in tg.updates]
    kinds = [update.event_type for update in updates]
    assert kinds.count("message") == 13
    assert "channel_post" in kinds
    assert "edited_message" in kinds
    messages = [u.message for u in updates if u.message]
    assert messages[1].entities is not None
    assert messages[1].entities[0].type == "bot_command"
    assert messages[2].sticker
    assert messages[3].photo
    assert messages[4].voice
    assert messages[5].document
    assert messages[6].location
    assert messages[7].contact
    assert messages[8].poll
    mention = messages[9]
    assert mention.chat.type == "supergroup"
    assert mention.entities
    assert mention.entities[0].type == "mention"
    assert messages[10].from_user is not None
    assert messages[10].from_user.is_bot
    assert messages[11].from_user is None
    assert messages[11].sender_chat is not None
    assert updates[-3].channel_post is not None
    assert updates[-3].channel_post.from_user is None
    assert updates[-2].edited_message is not None
    assert updates[-2].edited_message.edit_date
    assert raw["update_id"] == updates[-1].update_id
    assert -5 in tg.state.chats


async def test_callback_queries_and_answers(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    sent = await bot.send_message(alice.id, "choose", reply_markup=keyboard("red", "blue"))
    stored = tg.message(alice.id, sent.message_id)
    assert stored is not None
    with pytest.raises(ValueError, match="no live button"):
        tg.press_button(alice, stored, "green")
    query_id = tg.press_button(alice, sent, "blue")  # an aiogram Message works as well
    update = Update.model_validate(tg.updates[-1])
    assert update.callback_query is not None
    assert update.callback_query.data == "blue"
    assert update.callback_query.message is not None
    assert await bot.answer_callback_query(query_id, text="Blue it is")
    assert tg.callback_query(query_id).answer is not None
    assert tg.callback_answers[0].text == "Blue it is"
    with pytest.raises(TelegramBadRequest) as error:
        await bot.answer_callback_query(query_id)
    assert error.value.message == "Bad Request: query is too old and response timeout expired or query ID is invalid"


# --------------------------------------------------------------------------- flood control


async def test_flood_control_answers_429_with_retry_after(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    for number in range(tg.flood_limits.chat_burst):
        await bot.send_message(alice.id, f"burst {number}")
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(alice.id, "one too many")
    assert error.value.retry_after >= 1
    assert tg.calls[-1].description == f"Too Many Requests: retry after {error.value.retry_after}"
    assert tg.calls[-1].response["parameters"] == {"retry_after": error.value.retry_after}

    tg.set_flood_limits(group_per_minute=20, group_burst=2, chat_burst=100)
    group = tg.new_group()
    await bot.send_message(group.id, "1")
    await bot.send_message(group.id, "2")
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(group.id, "3")
    assert error.value.retry_after == 3  # 20 per minute: one slot every 3 s

    tg.disable_flood_control()
    for number in range(50):
        await bot.send_message(alice.id, f"free {number}")


async def test_injected_failures(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    tg.flood_next("sendMessage", retry_after=7)
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(alice.id, "x")
    assert error.value.retry_after == 7
    await bot.send_message(alice.id, "x")
    assert tg.flood_limits == FloodLimits()


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("commands", "description"),
    [
        ([{"command": "Start", "description": "go"}], "Bad Request: BOT_COMMAND_INVALID"),
        ([{"command": "do-it", "description": "go"}], "Bad Request: BOT_COMMAND_INVALID"),
        ([{"command": "a" * 33, "description": "go"}], "Bad Request: command length must not exceed 32"),
        ([{"command": "ok", "description": " "}], "Bad Request: command description must be non-empty"),
        (
            [{"command": "ok", "description": "d" * 257}],
            "Bad Request: command description length must not exceed 256",
        ),
        (
            [{"command": f"c{n}", "description": "d"} for n in range(101)],
            "Bad Request: BOT_COMMANDS_TOO_MUCH",
        ),
    ],
)
async def test_set_my_commands_rejects_invalid_lists(
    tg: FakeTelegram, commands: list[dict[str, str]], description: str
) -> None:
    status, body = await raw_call(tg, "setMyCommands", json={"commands": commands})
    assert (status, body["description"]) == (400, description)


async def test_set_and_get_my_commands(bot: Bot, tg: FakeTelegram) -> None:
    commands = [BotCommand(command=f"cmd_{n}", description="d" * 256) for n in range(100)]
    assert await bot.set_my_commands(commands)
    assert await bot.set_my_commands([BotCommand(command="hilfe", description="Hilfe")], language_code="de")
    assert len(await bot.get_my_commands()) == 100
    assert [c.command for c in await bot.get_my_commands(language_code="de")] == ["hilfe"]
    assert tg.commands(language_code="de") == [{"command": "hilfe", "description": "Hilfe"}]


# --------------------------------------------------------------------------- webhooks


@contextlib.asynccontextmanager
async def webhook_receiver(secret: str) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny bot-side webhook endpoint that checks the secret like aiogram does."""
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get(SECRET_HEADER) != secret:
            return web.Response(status=401)
        update = await request.json()
        received.append(update)
        if update.get("message", {}).get("text") == "reply inline":
            chat_id = update["message"]["chat"]["id"]
            return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "inline reply"})
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received
    finally:
        await runner.cleanup()


async def test_webhook_blocks_get_updates_and_delivers_with_secret(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await long_poll_waiting(tg)
    async with webhook_receiver("s3cr3t") as (url, received):
        assert await bot.set_webhook(url, secret_token="s3cr3t")
        with pytest.raises(TelegramConflictError, match="terminated by setWebhook request"):
            await asyncio.wait_for(poll, 2)
        with pytest.raises(TelegramConflictError) as error:
            await bot.get_updates()
        assert error.value.message == (
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first"
        )
        info = await bot.get_webhook_info()
        assert info.url == url

        tg.send_text(alice, "via webhook")
        await tg.wait_for(lambda: received)
        assert received[0]["message"]["text"] == "via webhook"
        await tg.wait_until_consumed()

        tg.send_text(alice, "reply inline")
        [reply] = await tg.wait_for_messages(alice.id, 1)
        assert reply.text == "inline reply"

        assert (
            await tg.deliver_webhook({"message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}})
            == 200
        )
        assert await tg.deliver_webhook({"update_id": 5, "message": {}}, secret="wrong") == 401
        assert await tg.deliver_webhook({"update_id": 6, "message": {}}, secret=None) == 401
        assert await bot.delete_webhook(drop_pending_updates=True)
    assert tg.pending_updates == []
    assert (await bot.get_webhook_info()).url == ""


async def test_webhook_failures_are_reported_and_retried(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    async with webhook_receiver("right") as (url, received):
        await bot.set_webhook(url, secret_token="wrong")  # the bot misconfigured its own secret
        tg.send_text(alice, "lost?")
        info = await tg.wait_for(lambda: tg.webhook.last_error_message)
        assert info == "Wrong response from the webhook: 401 Unauthorized"
        webhook_info = await bot.get_webhook_info()
        assert webhook_info.pending_update_count == 1
        assert webhook_info.last_error_message == info
        await asyncio.sleep(max(0.0, tg.state.next_webhook_set_time - time.monotonic()))  # one setWebhook a second
        await bot.set_webhook(url, secret_token="right")
        await tg.wait_for(lambda: received)
        assert received[0]["message"]["text"] == "lost?"


# --------------------------------------------------------------------------- standalone process


async def test_standalone_process_prints_base_url() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.doubles.telegram.cli",
        "--port",
        "0",
        "--token",
        "42:standalone",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        base = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
        assert base.startswith("http://127.0.0.1:")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{base}/bot42:standalone/getMe") as response,
        ):
            body = await response.json()
        assert body["result"]["id"] == 42
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def test_aiogram_method_objects_round_trip(bot: Bot, alice: User) -> None:
    message = await bot(SendMessage(chat_id=alice.id, text="via method object"))
    assert message.chat.id == alice.id


async def test_edit_caption_of_a_photo(bot: Bot, tg: FakeTelegram, alice: User) -> None:
    photo = await bot.send_photo(alice.id, "https://example.com/a.png", caption="old")
    edited = await bot.edit_message_caption(
        chat_id=alice.id, message_id=photo.message_id, caption="<b>new</b>", parse_mode="HTML"
    )
    assert isinstance(edited, Message)
    assert edited.caption == "new"
    await expect_error(
        bot.edit_message_text("text", chat_id=alice.id, message_id=photo.message_id),
        "Bad Request: there is no text in the message to edit",
    )
    await expect_error(
        bot.edit_message_caption(
            chat_id=alice.id, message_id=photo.message_id, caption="<b>new</b>", parse_mode="HTML"
        ),
        NOT_MODIFIED,
    )


async def test_control_endpoints_drive_a_standalone_server(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as session:
        payload = {"user_id": 555, "first_name": "Zed", "text": "/start"}
        async with session.post(f"{tg.api_base}/_fake/send_text", json=payload) as response:
            created = await response.json()
        status, body = await raw_call(tg, "sendMessage", json={"chat_id": 555, "text": "welcome"})
        assert status == 200
        async with session.get(f"{tg.api_base}/_fake/messages", params={"chat_id": "555"}) as response:
            history = await response.json()
    assert created["message_id"] == 1
    assert [item["text"] for item in history] == ["/start", "welcome"]
    assert body["result"]["message_id"] == 2
