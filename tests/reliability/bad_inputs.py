"""The bad-input corpus as data: what a user (or Telegram) sends, and what the bot must do about it.

Each `BadInput` names one kind of bad input, how to inject it into the fake Telegram server (a small function of a
`Scene`: a fresh user and a fresh group, so expectations stay independent), and the expected behaviour: a `reply`
containing a substring, or `silent` with the rule of README.md ("Rules for everything else") that makes it so.
`records` says whether the chat's stream may hold events afterwards (False: the stream must not exist).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs

from adapters.telegram import replies
from tests.doubles.openai_server import FakeOpenAI
from tests.doubles.telegram import Chat, FakeTelegram, User

MAX_TEXT = 4096
"""Telegram's limit for one message, in UTF-16 code units."""
FLOOD_SIZE = 50

EVERY_PLANE = "".join(
    [
        "BMP:é€中",  # plane 0
        "SMP:😀𝄞𐍈",  # plane 1 (emoji, musical symbols, Gothic)
        "SIP:𠀀𪚥",  # plane 2 (CJK extension B)
        "TIP:𰀀",  # plane 3 (CJK extension G)
        "SSP:\U000e0041\U000e0001",  # plane 14 (tag characters)
        "PUA:\U000f0000\U0010fffd",  # planes 15 and 16 (private use)
    ]
)
RTL = "RTL: \u202eolleh\u202c שלום עולם مرحبا بالعالم \u200fend"
ZERO_WIDTH = "ZW:he\u200bll\u200co\u200d w\u2060or\ufeffld\u200e!"
ZERO_WIDTH_ONLY = "\u200b\u200c\u200d\u2060\ufeff"
COMBINING = "ZALGO:Z\u0351\u0364\u0300a\u036b\u0310\u0346l\u0357\u0306g\u0313\u0314o\u0489"
EMOJI_SEQUENCES = "EMOJI:👩🏽‍💻👨‍👩‍👧‍👦🏳️‍🌈🇺🇦1️⃣"
CONTROL_CHARS = "CTRL:a\x07b\x1b[31mred\x1b[0m\x08c\x7fd\r\ne"
BAD_MARKDOWN = "MDMARK **bold _italic `code [link](http://x *unclosed __under ~~strike ||spoiler ```"
BAD_HTML = (
    "HTMLMARK <b>unclosed <i>nest</b></i> a < b && c > d <script>alert(1)</script> <a href='javascript:x'>&bogus;"
)
BAD_MARKDOWN_V2 = "MDV2MARK 1. a-b_c*d[e]f(g)h~i`j>k#l+m=n|o{p}q.r!s\\"


def long_text() -> str:
    """Exactly 4096 characters (one word, so the echo answer stays within the model's max tokens)."""
    head = "LONGMARK"
    return head + "x" * (MAX_TEXT - len(head))


def huge_args(command: str) -> str:
    """A command with about 4000 characters of arguments."""
    return f"/{command} " + "arg " * 990


@attrs.define
class Scene:
    """Where one input happens: the fake servers, a fresh user and a fresh group (registered, not yet used)."""

    tg: FakeTelegram
    ai: FakeOpenAI
    user: User
    group: Chat
    queries: list[str] = attrs.field(factory=list)
    """Callback query ids the input pressed (their answers count as replies)."""

    @property
    def bot_username(self) -> str:
        return self.tg.state.bot_user.username or ""

    def old_bot_message(self, chat: Chat | None = None) -> Any:
        """A message the bot sent earlier (e.g. before a deploy), to press forged buttons on."""
        return self.tg.state.new_bot_message(chat or self.user.private_chat, text="an old message")


Inject = Callable[[Scene], int]
"""Injects the input; returns the chat id where a reply (or the silence) is observed."""


@attrs.frozen
class BadInput:
    """One kind of bad input and the behaviour README.md promises for it."""

    name: str
    inject: Inject
    reply: str | None = None
    """A substring of one of the bot's messages (or callback answers) in the watched chat."""
    silent: str | None = None
    """The documented rule under which the bot says nothing."""
    records: bool = False
    """Whether the watched chat's stream may hold events afterwards (False: no stream at all)."""
    solo: bool = False
    """Injected alone (it arms a one-shot fault on the model, or it is the flood)."""

    def __attrs_post_init__(self) -> None:
        assert (self.reply is None) != (self.silent is None), self.name


def _text(text: str) -> Inject:
    def inject(scene: Scene) -> int:
        scene.tg.send_text(scene.user, text)
        return scene.user.id

    return inject


def _raw_message(scene: Scene, **fields: Any) -> dict[str, Any]:
    return {
        "message_id": 90_000 + scene.user.id % 1000,
        "date": int(time.time()),
        "chat": scene.user.private_chat.to_api(),
        "from": scene.user.to_api(),
        **fields,
    }


def _forged_entities(scene: Scene) -> int:
    """Entities that point past the end of the text, as a broken client might send."""
    message = _raw_message(scene, text="ENTMARK hi", entities=[{"type": "bot_command", "offset": 5, "length": 500}])
    scene.tg.push_update({"message": message})
    return scene.user.id


def _edited_unknown(scene: Scene) -> int:
    """An edit of a message the bot never saw (raw `edited_message`)."""
    message = _raw_message(scene, text="edited text", edit_date=int(time.time()))
    scene.tg.push_update({"edited_message": message})
    return scene.user.id


def _edited_in_group(scene: Scene) -> int:
    sent = scene.tg.send_text(scene.user, "chatting in the group", scene.group)
    scene.tg.edit_message(scene.user, sent, f"@{scene.bot_username} now addressed by an edit")
    return scene.group.id


def _help_to_this_bot(scene: Scene) -> int:
    scene.tg.send_text(scene.user, f"/help@{scene.bot_username} " + "please " * 600)
    return scene.user.id


def _forged_button(data: Callable[[Scene], str]) -> Inject:
    def inject(scene: Scene) -> int:
        scene.queries.append(scene.tg.press_button(scene.user, scene.old_bot_message(), data(scene), strict=False))
        return scene.user.id

    return inject


def _forged_button_in_group(scene: Scene) -> int:
    target = scene.old_bot_message(scene.group)
    scene.queries.append(scene.tg.press_button(scene.user, target, f"forget:yes:{scene.group.id}", strict=False))
    return scene.group.id


def _from_bot(scene: Scene) -> int:
    robot = scene.tg.new_user("Robot", username=f"robot{scene.user.id}_bot", is_bot=True)
    scene.tg.send_text(robot, "I am a bot, answer me")
    return robot.id


def _from_bot_in_group(scene: Scene) -> int:
    robot = scene.tg.new_user("Robot", username=f"robot{scene.user.id}_bot", is_bot=True)
    scene.tg.send_text(robot, f"@{scene.bot_username} bots talking to bots", scene.group)
    return scene.group.id


def _no_sender(scene: Scene) -> int:
    scene.tg.send_text(None, f"@{scene.bot_username} anonymous admin asks", scene.group)
    return scene.group.id


def _channel_post(scene: Scene) -> int:
    channel = scene.tg.new_channel(f"News {scene.user.id}")
    scene.tg.post_to_channel(channel, f"@{scene.bot_username} /start hello channel")
    return channel.id


def _edited_channel_post(scene: Scene) -> int:
    channel = scene.tg.new_channel(f"News {scene.user.id}")
    post = scene.tg.post_to_channel(channel, "first version")
    scene.tg.edit_message(None, post, "second version")
    return channel.id


def _in_group(text: str) -> Inject:
    def inject(scene: Scene) -> int:
        scene.tg.send_text(scene.user, text, scene.group)
        return scene.group.id

    return inject


def _sticker_in_group(scene: Scene) -> int:
    scene.tg.send_sticker(scene.user, chat=scene.group)
    return scene.group.id


def _reply_to_someone_else(scene: Scene) -> int:
    other = scene.tg.new_user("Other")
    theirs = scene.tg.send_text(other, "a message by someone else", scene.group)
    scene.tg.send_text(scene.user, "a reply to them, not to the bot", scene.group, reply_to=theirs)
    return scene.group.id


def _mention(text: str) -> Inject:
    def inject(scene: Scene) -> int:
        scene.tg.mention_bot(scene.user, scene.group, text)
        return scene.group.id

    return inject


def _content(send: Callable[[FakeTelegram, User], object]) -> Inject:
    def inject(scene: Scene) -> int:
        send(scene.tg, scene.user)
        return scene.user.id

    return inject


def _refused_image(scene: Scene) -> int:
    scene.ai.fail_next("content_policy", endpoint="images")
    scene.tg.send_command(scene.user, "image", "something the model refuses")
    return scene.user.id


def _refused_question(scene: Scene) -> int:
    scene.ai.fail_next("refusal", refusal="I can't help with that.")
    scene.tg.send_text(scene.user, "a question the model refuses")
    return scene.user.id


def _flood(scene: Scene) -> int:
    for index in range(FLOOD_SIZE):
        scene.tg.send_text(scene.user, f"flood {index:02d}")
    return scene.user.id


NOT_TEXT = replies.NOT_TEXT
ANSWERED = "echo: "
"""The local OpenAI server's answer starts so: the input was asked as a question."""

# The silent rules, as README.md ("Rules for everything else" and "Using it") states them.
OTHER_BOT = "commands for other bots (/start@otherbot) are ignored silently"
CHANNEL_POST = "channel posts are ignored silently"
FROM_BOT = "updates from bots are ignored silently"
NO_SENDER = "updates without a sender are ignored silently"
NOT_ADDRESSED = "in groups the bot answers only when addressed (a command, an @mention, or a reply to it)"
EDIT_IN_GROUP = "edited messages are not answered again (only private chats are told)"

CORPUS: tuple[BadInput, ...] = (
    # --- text that is empty, huge or strange
    BadInput("empty text", _text(""), reply=NOT_TEXT),  # Telegram sends no `text` field for "": not text
    BadInput("whitespace-only text", _text(" \t\n\u00a0\u3000 \n"), reply=replies.EMPTY),
    BadInput("zero-width-only text", _text(ZERO_WIDTH_ONLY), reply=replies.EMPTY),
    BadInput("4096-character message", _text(long_text()), reply="LONGMARKxxxx", records=True),
    BadInput("every Unicode plane", _text(EVERY_PLANE), reply=ANSWERED + EVERY_PLANE, records=True),
    BadInput("RTL and bidi overrides", _text(RTL), reply=ANSWERED + RTL, records=True),
    BadInput("zero-width characters inside words", _text(ZERO_WIDTH), reply=ANSWERED + ZERO_WIDTH, records=True),
    BadInput("combining marks (zalgo)", _text(COMBINING), reply=ANSWERED + COMBINING, records=True),
    BadInput("emoji ZWJ sequences and flags", _text(EMOJI_SEQUENCES), reply=ANSWERED + EMOJI_SEQUENCES, records=True),
    BadInput("control characters", _text(CONTROL_CHARS), reply="CTRL:", records=True),
    BadInput("Markdown Telegram rejects", _text(BAD_MARKDOWN), reply="MDMARK", records=True),
    BadInput("HTML Telegram rejects", _text(BAD_HTML), reply="<script>alert(1)</script>", records=True),
    BadInput("MarkdownV2 reserved characters", _text(BAD_MARKDOWN_V2), reply="MDV2MARK", records=True),
    BadInput("entities past the end of the text", _forged_entities, reply="ENTMARK", records=True),
    # --- things that look like commands
    BadInput("/imagefoo", _text("/imagefoo a fox"), reply=replies.UNKNOWN_COMMAND.format(command="/imagefoo")),
    BadInput("/start@otherbot", _text("/start@otherbot"), silent=OTHER_BOT),
    BadInput("/image@otherbot with a prompt", _text("/image@otherbot a fox"), silent=OTHER_BOT),
    BadInput("a lone slash", _text("/"), reply="/help"),
    BadInput("double slash is text", _text("//not a command"), reply=ANSWERED + "//not a command", records=True),
    BadInput("unknown command with a huge argument", _text(huge_args("foo")), reply="command /foo"),
    BadInput("/reset with a huge argument", _text(huge_args("reset")), reply=replies.RESET_DONE, records=True),
    BadInput("/start with a huge payload", _text(huge_args("start")), reply="Hello, Alice", records=True),
    BadInput("/chat with a huge argument", _text(huge_args("chat")), reply=replies.CHAT_MODE, records=True),
    BadInput("/help@thisbot with a huge argument", _help_to_this_bot, reply="/reset"),
    # --- not text
    BadInput("sticker", _content(lambda tg, u: tg.send_sticker(u)), reply=NOT_TEXT),
    # --- media: read, or refused saying what the bot reads
    BadInput(
        "photo", _content(lambda tg, u: tg.send_photo(u)), reply=ANSWERED + "What is in this picture?", records=True
    ),
    BadInput(
        "photo with a caption",
        _content(lambda tg, u: tg.send_photo(u, caption="what is this?")),
        reply=ANSWERED + "what is this?",
        records=True,
    ),
    BadInput("voice", _content(lambda tg, u: tg.send_voice(u)), reply=ANSWERED + "transcript of", records=True),
    BadInput("voice over 20 MB", _content(lambda tg, u: tg.send_voice(u, size=25_000_000)), reply="at most 20 MB"),
    BadInput(
        "an archive",
        _content(lambda tg, u: tg.send_document(u, "a.zip", "application/zip", data=b"PK\x03\x04" + bytes(64))),
        reply="I can't read this kind of file",
    ),
    BadInput(
        "binary bytes named .txt",
        _content(lambda tg, u: tg.send_document(u, "notes.txt", "text/plain", data=bytes(range(256)) * 4)),
        reply="I can't read this kind of file",
    ),
    BadInput(
        "a PDF that is not one",
        _content(lambda tg, u: tg.send_document(u, "report.pdf", "application/pdf", data=b"%PDF-1.4 garbage")),
        reply="I couldn't open that file",
    ),
    BadInput(
        "an empty text file",
        _content(lambda tg, u: tg.send_document(u, "empty.txt", "text/plain", data=b"")),
        reply="I found no text in that file",
    ),
    BadInput("location", _content(lambda tg, u: tg.send_location(u)), reply=NOT_TEXT),
    BadInput("contact", _content(lambda tg, u: tg.send_contact(u)), reply=NOT_TEXT),
    BadInput("poll", _content(lambda tg, u: tg.send_poll(u)), reply=NOT_TEXT),
    BadInput("dice", _content(lambda tg, u: tg.send_content(u, {"dice": {"emoji": "🎲", "value": 6}})), reply=NOT_TEXT),
    # --- edits, buttons, channels, bots, anonymous senders
    BadInput("edited message (private)", _edited_unknown, reply=replies.EDITED),
    BadInput("edited message (group)", _edited_in_group, silent=EDIT_IN_GROUP),
    BadInput(
        "callback query forging another user's /forget",
        _forged_button(lambda s: f"forget:yes:{s.user.id + 1}"),
        reply=replies.STALE_BUTTON,
    ),
    BadInput(
        "callback query forging one's own /forget on an answer",
        _forged_button(lambda s: f"forget:yes:{s.user.id}"),
        reply=replies.STALE_BUTTON,
    ),
    BadInput(
        "callback query with a forged answer",
        _forged_button(lambda s: f"forget:now:{s.user.id}"),
        reply=replies.STALE_BUTTON,
    ),
    BadInput("callback query with garbage data", _forged_button(lambda s: "\x00💣" * 21), reply=replies.STALE_BUTTON),
    BadInput("callback query erasing a group", _forged_button_in_group, reply=replies.STALE_BUTTON),
    BadInput("update from a bot", _from_bot, silent=FROM_BOT),
    BadInput("bot mentioning this bot in a group", _from_bot_in_group, silent=FROM_BOT),
    BadInput("group message without a from user", _no_sender, silent=NO_SENDER),
    BadInput("channel post", _channel_post, silent=CHANNEL_POST),
    BadInput("edited channel post", _edited_channel_post, silent=CHANNEL_POST),
    # --- groups
    BadInput("group message not addressed to the bot", _in_group("just chatting"), silent=NOT_ADDRESSED),
    BadInput("group sticker", _sticker_in_group, silent=NOT_ADDRESSED),
    BadInput("group /start@otherbot", _in_group("/start@otherbot hi"), silent=OTHER_BOT),
    BadInput("group reply to another user", _reply_to_someone_else, silent=NOT_ADDRESSED),
    BadInput("group mention with nothing else", _mention("   "), reply=replies.EMPTY),
    BadInput(
        "group mention with a question", _mention("a fox?"), reply=ANSWERED + "Alice: a fox?", records=True
    ),  # a group question is put to the model with its asker's name
    # --- the model says no, and floods
    BadInput(
        "image prompt the model refuses",
        _refused_image,
        reply=replies.failure("content_refused", image=True),
        records=True,
        solo=True,
    ),
    BadInput(
        "question the model refuses",
        _refused_question,
        reply=replies.failure("content_refused"),
        records=True,
        solo=True,
    ),
    BadInput("50 messages in one second", _flood, reply="too fast", records=True, solo=True),
)
"""Every kind of bad input; test_bad_input.py feeds them all to one bot process."""

assert len({item.name for item in CORPUS}) == len(CORPUS)
