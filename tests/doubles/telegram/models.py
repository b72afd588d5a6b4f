"""Plain records used by the fake Telegram server and exposed to tests."""

from __future__ import annotations

import enum
import json
import time
from typing import Any, Final, Literal

import attrs

Entity = dict[str, Any]
JsonDict = dict[str, Any]


class _GeneralTopic(enum.Enum):
    GENERAL = "general"


GENERAL_TOPIC: Final = _GeneralTopic.GENERAL
"""A ``thread=`` filter meaning "outside every forum topic": the General topic of a forum (or a chat without
topics), whose messages carry no ``message_thread_id``.  ``thread=None`` means the whole chat."""

ThreadFilter = int | Literal[_GeneralTopic.GENERAL] | None


def in_thread(thread: int | None, wanted: ThreadFilter) -> bool:
    """True if a record in forum topic ``thread`` (None: General) passes the ``thread=`` filter ``wanted``."""
    if wanted is None:
        return True
    if wanted is GENERAL_TOPIC:
        return thread is None
    return thread == wanted


_EXTERNAL_REPLY_CONTENT = frozenset(
    {"animation", "audio", "document", "photo", "sticker", "video", "video_note", "voice", "contact", "location"}
    | {"venue", "poll", "dice", "game", "invoice", "story", "giveaway", "giveaway_winners", "paid_media", "checklist"}
)
"""Content fields ``ExternalReplyInfo`` repeats (the text of a message is only ever quoted)."""


def _drop_none(data: JsonDict) -> JsonDict:
    return {key: value for key, value in data.items() if value is not None}


@attrs.frozen
class User:
    """A Telegram user (or bot) that talks to the bot under test."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False
    is_premium: bool | None = None

    def to_api(self) -> JsonDict:
        """The Bot API ``User`` object."""
        return _drop_none(
            {
                "id": self.id,
                "is_bot": self.is_bot,
                "first_name": self.first_name,
                "last_name": self.last_name,
                "username": self.username,
                "language_code": self.language_code,
                "is_premium": self.is_premium,
            }
        )

    @property
    def private_chat(self) -> Chat:
        """The private chat between this user and the bot."""
        return Chat.private(self)


@attrs.frozen
class Chat:
    """A chat: ``private``, ``group``, ``supergroup`` or ``channel``."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    is_forum: bool | None = None
    """True for a supergroup with topics (``FakeTelegram.new_group(forum=True)``)."""

    @classmethod
    def private(cls, user: User) -> Chat:
        """The private chat with ``user`` (its id is the user id, as in Telegram)."""
        return cls(
            id=user.id,
            type="private",
            first_name=user.first_name,
            last_name=user.last_name,
            username=user.username,
        )

    @property
    def is_group(self) -> bool:
        """True for basic groups and supergroups."""
        return self.type in {"group", "supergroup"}

    @property
    def has_topics(self) -> bool:
        """True where forum topics may exist: a forum supergroup, or a private chat (topics in the chat with a bot,
        Bot API 9.3)."""
        return self.type == "private" or (self.type == "supergroup" and bool(self.is_forum))

    def to_api(self) -> JsonDict:
        """The Bot API ``Chat`` object."""
        return _drop_none(
            {
                "id": self.id,
                "type": self.type,
                "title": self.title,
                "username": self.username,
                "first_name": self.first_name,
                "last_name": self.last_name,
                "is_forum": self.is_forum,
            }
        )


@attrs.frozen
class UploadedFile:
    """A file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


@attrs.frozen
class MessageVersion:
    """One state of a message; ``StoredMessage.history[0]`` is the original."""

    text: str | None
    entities: tuple[Entity, ...]
    caption: str | None
    caption_entities: tuple[Entity, ...]
    reply_markup: JsonDict | None
    edit_date: int | None
    time: float


@attrs.define(eq=False)
class StoredMessage:
    """A message as the fake server stores it, with its full edit history."""

    chat: Chat
    message_id: int
    date: int
    sender: User | None
    sender_chat: Chat | None = None
    text: str | None = None
    entities: tuple[Entity, ...] = ()
    caption: str | None = None
    caption_entities: tuple[Entity, ...] = ()
    content: JsonDict = attrs.field(factory=dict)
    reply_markup: JsonDict | None = None
    reply_to: StoredMessage | None = None
    topic: ForumTopic | None = None
    """The forum topic the message is in; None in the General topic and in chats without topics."""
    reply_thread: int | None = None
    """In a supergroup without topics: the first message of the reply chain, which Telegram reports as
    ``message_thread_id`` (without ``is_topic_message``)."""
    edit_date: int | None = None
    deleted: bool = False
    from_bot: bool = False
    update_id: int | None = None
    upload: UploadedFile | None = None
    extra: JsonDict = attrs.field(factory=dict)
    history: list[MessageVersion] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        if not self.history:
            self.history.append(self.snapshot())

    @property
    def chat_id(self) -> int:
        """Id of the chat the message belongs to."""
        return self.chat.id

    @property
    def thread(self) -> int | None:
        """Id of the forum topic the message is in (None: General, or a chat without topics)."""
        return self.topic.message_thread_id if self.topic is not None else None

    @property
    def message_thread_id(self) -> int | None:
        """``message_thread_id`` as the Bot API shows it: the topic, or a reply thread of a plain supergroup."""
        return self.thread if self.topic is not None else self.reply_thread

    @property
    def is_edited(self) -> bool:
        """True once the message was edited at least once."""
        return len(self.history) > 1

    @property
    def texts(self) -> list[str | None]:
        """Every text the message had, oldest first."""
        return [version.text for version in self.history]

    def snapshot(self) -> MessageVersion:
        """The current state as a :class:`MessageVersion`."""
        return MessageVersion(
            text=self.text,
            entities=self.entities,
            caption=self.caption,
            caption_entities=self.caption_entities,
            reply_markup=self.reply_markup,
            edit_date=self.edit_date,
            time=time.time(),
        )

    @property
    def inline_keyboard(self) -> list[list[JsonDict]]:
        """Rows of inline buttons currently attached (empty if none)."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard")
        return rows if isinstance(rows, list) else []

    def buttons(self) -> list[JsonDict]:
        """All inline buttons, row by row."""
        return [button for row in self.inline_keyboard for button in row]

    def callback_data(self) -> list[str]:
        """``callback_data`` of every inline button."""
        return [button["callback_data"] for button in self.buttons() if "callback_data" in button]

    def to_api(self, *, with_reply: bool = True) -> JsonDict:
        """The Bot API ``Message`` object for the current state."""
        data: JsonDict = {"message_id": self.message_id}
        if self.sender is not None:
            data["from"] = self.sender.to_api()
        if self.sender_chat is not None:
            data["sender_chat"] = self.sender_chat.to_api()
        data["chat"] = self.chat.to_api()
        data["date"] = self.date
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.message_thread_id is not None:
            data["message_thread_id"] = self.message_thread_id
        replied = self.reply_to if self.reply_to is not None else self._implicit_reply()
        if with_reply and replied is not None:
            data["reply_to_message"] = replied.to_api(with_reply=False)
        data.update(self.extra)
        if self.text is not None:
            data["text"] = self.text
            if self.entities:
                data["entities"] = [dict(entity) for entity in self.entities]
        data.update(self.content)
        if self.caption:
            data["caption"] = self.caption
            if self.caption_entities:
                data["caption_entities"] = [dict(entity) for entity in self.caption_entities]
        if self.inline_keyboard:
            data["reply_markup"] = {"inline_keyboard": self.inline_keyboard}
        if self.topic is not None:
            data["is_topic_message"] = True
        return data

    def as_external_reply(self) -> JsonDict:
        """The ``ExternalReplyInfo`` a reply from another topic shows about this message."""
        origin: JsonDict = {"type": "user", "date": self.date}
        if self.sender is not None:
            origin["sender_user"] = self.sender.to_api()
        else:
            origin = {"type": "chat", "date": self.date, "sender_chat": (self.sender_chat or self.chat).to_api()}
        info: JsonDict = {"origin": origin, "chat": self.chat.to_api(), "message_id": self.message_id}
        info.update({key: value for key, value in self.content.items() if key in _EXTERNAL_REPLY_CONTENT})
        return info

    def _implicit_reply(self) -> StoredMessage | None:
        """In a forum supergroup, a message of a topic that answers nothing "replies" to the topic's creation."""
        if self.topic is None or self.chat.type != "supergroup":
            return None
        root = self.topic.root
        return root if root is not None and root.message_id < self.message_id else None


@attrs.define(eq=False)
class ForumTopic:
    """A forum topic made by ``FakeTelegram.create_topic``; its id is the id of its creation service message."""

    chat: Chat
    message_thread_id: int
    name: str
    icon_color: int
    creator: User | None
    """None when an anonymous administrator created it (the service message has no ``from``)."""
    root: StoredMessage | None = None
    """The ``forum_topic_created`` service message (``root.message_id == message_thread_id``)."""

    def to_api(self) -> JsonDict:
        """The Bot API ``ForumTopic`` object."""
        return {"message_thread_id": self.message_thread_id, "name": self.name, "icon_color": self.icon_color}


@attrs.define
class ApiCall:
    """One HTTP request the bot made, recorded in arrival order.

    ``params`` holds the raw string values (objects arrive JSON-encoded, as
    aiogram sends them); use :meth:`json` to decode one.  ``status`` stays 0
    while the call is still running (a long poll, for instance).
    """

    method: str
    params: dict[str, str]
    files: dict[str, UploadedFile]
    time: float
    wall_time: float
    status: int = 0
    response: JsonDict = attrs.field(factory=dict)

    @property
    def done(self) -> bool:
        """True once the server answered."""
        return self.status != 0

    @property
    def ok(self) -> bool:
        """True if the server answered ``ok: true``."""
        return bool(self.response.get("ok"))

    @property
    def result(self) -> Any:
        """``result`` of a successful call."""
        return self.response.get("result")

    @property
    def error_code(self) -> int | None:
        """``error_code`` of a failed call."""
        return self.response.get("error_code")

    @property
    def description(self) -> str | None:
        """``description`` of a failed call."""
        return self.response.get("description")

    def json(self, name: str, default: Any = None) -> Any:
        """Decode parameter ``name`` as JSON (falls back to the raw string)."""
        if name not in self.params:
            return default
        try:
            return json.loads(self.params[name])
        except ValueError:
            return self.params[name]


@attrs.frozen
class ChatActionRecord:
    """A successful ``sendChatAction``."""

    chat_id: int
    action: str
    time: float
    message_thread_id: int | None = None
    """The forum topic of the action (None: General, or a chat without topics)."""


@attrs.define
class CallbackQueryRecord:
    """A button press injected by the test, and how the bot answered it."""

    id: str
    user: User
    message: StoredMessage | None
    data: str | None
    time: float
    answer: CallbackAnswer | None = None


@attrs.frozen
class CallbackAnswer:
    """A successful ``answerCallbackQuery``."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int
    time: float


@attrs.frozen
class DraftRecord:
    """A successful ``sendMessageDraft``: an ephemeral preview, never a message.

    ``text`` and ``entities`` are what the user sees (markup parsed, trimmed);
    ``parse_mode`` is the raw parameter (None when absent).
    """

    chat_id: int
    draft_id: int
    text: str
    parse_mode: str | None
    can_stop: bool
    keep_on_stop: bool
    time: float
    entities: tuple[Entity, ...] = ()
    message_thread_id: int | None = None


@attrs.frozen
class ChatAdmin:
    """The creator or an administrator of a group or channel, set by the test side."""

    user: User
    creator: bool = False
    is_anonymous: bool = False
    custom_title: str | None = None
    rights: tuple[tuple[str, bool], ...] = ()
    """Overrides of the ``can_*`` fields of ``ChatMemberAdministrator``."""
