"""Everything the fake server remembers about its one bot."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs

from .errors import ApiError, bad_request, chat_not_found, forbidden
from .files import FileStore
from .flood import FloodControl, FloodLimits
from .models import (
    ApiCall,
    CallbackAnswer,
    CallbackQueryRecord,
    Chat,
    ChatActionRecord,
    ChatAdmin,
    DraftRecord,
    ForumTopic,
    StoredMessage,
    User,
)
from .params import Params
from .updates import DEFAULT_ALLOWED_UPDATES, UpdateQueue

DEFAULT_TOKEN = "123456789:AAFakeTelegramTokenForConvoTests_0123"
THREAD_NOT_FOUND = "message thread not found"
GENERAL_FORUM_TOPIC_ID = 1
"""tdlib's id of the General topic: the Bot API never shows it, and refuses it as ``message_thread_id``."""


@attrs.define
class ServerConfig:
    """Knobs of the fake server (all settable through ``FakeTelegram(...)``).

    ``api_quirks`` reproduces small server behaviours: a ``getUpdates`` repeated
    with the same offset within 3 s waits at least 3 s, within 0.5 s returns at
    most one update, and ``setWebhook`` with a URL is allowed once per second.
    """

    token: str = DEFAULT_TOKEN
    host: str = "127.0.0.1"
    port: int = 0
    bot_first_name: str = "Convo Test Bot"
    bot_username: str = "convo_test_bot"
    flood: FloodLimits = attrs.field(factory=FloodLimits)
    api_quirks: bool = True
    strict_webhook_url: bool = False
    auto_webhook: bool = True
    webhook_retry_delay: float = 0.2
    webhook_timeout: float = 10.0
    callback_query_ttl: float | None = 15.0
    first_update_id: int = 700_000_001
    long_poll_max_timeout: int = 50
    long_poll_batch_delay: float = 0.002
    max_text_length: int = 4096
    max_caption_length: int = 1024


@attrs.define
class WebhookState:
    """What ``setWebhook`` configured, plus delivery errors for ``getWebhookInfo``."""

    url: str = ""
    secret_token: str = ""
    max_connections: int = 40
    ip_address: str = "127.0.0.1"
    allowed_updates: frozenset[str] = DEFAULT_ALLOWED_UPDATES
    last_error_date: int | None = None
    last_error_message: str | None = None
    deliveries: int = 0

    @property
    def active(self) -> bool:
        """True while a webhook URL is set."""
        return bool(self.url)


@attrs.define
class InjectedFailure:
    """A canned error returned instead of running a method (test fault injection)."""

    method: str | None
    error: ApiError
    remaining: int


class BotState:
    """Chats, messages, updates and records of one bot, shared by all handlers."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        bot_id = int(config.token.split(":", 1)[0])
        self.bot_user = User(
            id=bot_id,
            first_name=config.bot_first_name,
            username=config.bot_username,
            language_code=None,
            is_bot=True,
        )
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.blocked: set[int] = set()
        self.messages: dict[int, dict[int, StoredMessage]] = {}
        self.topics: dict[int, dict[int, ForumTopic]] = {}
        """chat id -> message_thread_id -> forum topic (made with ``FakeTelegram.create_topic``)."""
        self._last_message_id: dict[int, int] = {}
        self.queue = UpdateQueue(config.first_update_id)
        self.files = FileStore()
        self.photo_sets: dict[str, list[dict[str, Any]]] = {}
        self.broken_urls: set[str] = set()
        self.flood = FloodControl(config.flood)
        self.webhook = WebhookState()
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self.callback_answers: list[CallbackAnswer] = []
        self.chat_actions: list[ChatActionRecord] = []
        self.drafts: list[DraftRecord] = []
        self.admins: dict[int, dict[int, ChatAdmin]] = {}
        """chat id -> user id -> creator/administrator (set with ``FakeTelegram.make_admin``)."""
        self.removed_methods: dict[str, int] = {}
        """lower-case method name -> calls answered 404 since ``FakeTelegram.remove_method``."""
        self.calls: list[ApiCall] = []
        self.failures: list[InjectedFailure] = []
        self.html_failures: list[list[Any]] = []
        self.previous_poll: tuple[int, float] | None = None
        self.next_webhook_set_time = 0.0
        self.changed = asyncio.Event()

    # -- change notification
    def notify(self) -> None:
        """Wake everything waiting in ``FakeTelegram.wait_for``."""
        self.changed.set()
        self.changed = asyncio.Event()

    # -- chats and users
    def remember_user(self, user: User, *, private_chat: bool = True) -> None:
        """Make ``user`` (and, by default, the private chat with it) known to the bot."""
        self.users[user.id] = user
        if private_chat:
            self.chats.setdefault(user.id, user.private_chat)

    def remember_chat(self, chat: Chat) -> None:
        """Make ``chat`` known: the bot may now send to it."""
        self.chats[chat.id] = chat

    def resolve_chat(self, params: Params, name: str = "chat_id") -> Chat:
        """The chat named by ``chat_id`` (an id or ``@username``) or the real error."""
        raw = params.text(name).strip()
        if not raw:
            raise bad_request("chat_id is empty")
        if raw.startswith("@"):
            wanted = raw[1:].lower()
            for chat in self.chats.values():
                if chat.type != "private" and (chat.username or "").lower() == wanted:
                    return chat
            raise chat_not_found()
        try:
            chat_id = int(raw)
        except ValueError:
            raise chat_not_found() from None
        known = self.chats.get(chat_id)
        if known is None:
            raise chat_not_found()
        return known

    def check_can_send(self, chat: Chat) -> None:
        """Refuse like Telegram when the peer blocked the bot or is itself a bot."""
        if chat.type != "private":
            return
        user = self.users.get(chat.id)
        if user is not None and user.is_bot:
            raise forbidden("bot can't send messages to bots")
        if chat.id in self.blocked:
            raise forbidden("bot was blocked by the user")

    # -- forum topics
    def find_topic(self, chat: Chat, thread: int) -> ForumTopic | None:
        """The forum topic ``thread`` of ``chat``, or None."""
        return self.topics.get(chat.id, {}).get(thread)

    def requested_topic(self, chat: Chat, params: Params) -> ForumTopic | None:
        """The topic named by ``message_thread_id``, checked like the server's ``check_message_topic``.

        Absent, zero or negative means none.  In a forum supergroup or a private chat the topic must exist (the
        General topic, id 1, cannot be named); elsewhere the parameter is ignored, as the server does.
        """
        thread = params.integer("message_thread_id")
        if thread <= 0 or not chat.has_topics:
            return None
        topic = self.find_topic(chat, thread) if thread != GENERAL_FORUM_TOPIC_ID or chat.type == "private" else None
        if topic is None:
            raise bad_request(THREAD_NOT_FOUND)
        return topic

    def placement(
        self, chat: Chat, topic: ForumTopic | None, reply_to: StoredMessage | None, *, explicit: bool
    ) -> dict[str, Any]:
        """``topic``, ``reply_thread`` and reply fields of a new message in ``chat`` answering ``reply_to``.

        A reply lands in the topic of the message it answers unless a topic is ``explicit``: a reply to a message of
        another topic is then an ``external_reply`` (and the message, in a forum, implicitly answers its topic's
        creation).  In a supergroup without topics a reply belongs to the thread of its reply chain's first message.
        """
        fields: dict[str, Any] = {"topic": topic, "reply_to": reply_to}
        if reply_to is None or reply_to.chat_id != chat.id:
            return fields
        if not explicit:
            fields["topic"] = reply_to.topic
        elif reply_to.topic is not topic:
            fields["reply_to"] = None
            fields["extra"] = {"external_reply": reply_to.as_external_reply()}
        if chat.type == "supergroup" and not chat.is_forum:
            fields["reply_thread"] = reply_to.reply_thread or reply_to.message_id
        return fields

    # -- messages
    def next_message_id(self, chat_id: int) -> int:
        """Message ids grow per chat, shared by the bot's and the users' messages."""
        value = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = value
        return value

    def store(self, message: StoredMessage) -> StoredMessage:
        """Keep ``message`` in its chat."""
        self.messages.setdefault(message.chat_id, {})[message.message_id] = message
        return message

    def find_message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """A live (not deleted) message, or None."""
        message = self.messages.get(chat_id, {}).get(message_id)
        if message is None or message.deleted:
            return None
        return message

    def chat_messages(self, chat_id: int) -> list[StoredMessage]:
        """All messages of a chat, deleted ones included, by message id (ids only grow)."""
        return list(self.messages.get(chat_id, {}).values())

    def new_bot_message(self, chat: Chat, **fields: Any) -> StoredMessage:
        """Create and store a message sent by the bot."""
        message = StoredMessage(
            chat=chat,
            message_id=self.next_message_id(chat.id),
            date=int(time.time()),
            sender=self.bot_user if chat.type != "channel" else None,
            sender_chat=chat if chat.type == "channel" else None,
            from_bot=True,
            **fields,
        )
        return self.store(message)

    # -- fault injection
    def take_html_failure(self, method: str) -> tuple[int | None, float]:
        """The HTTP status of the next injected HTML error page for ``method`` (lower-case), if any, and the
        seconds to stall before it."""
        for failure in self.html_failures:
            if failure[0] is None or failure[0] == method:
                failure[2] -= 1
                if failure[2] <= 0:
                    self.html_failures.remove(failure)
                return int(failure[1]), float(failure[3]) if len(failure) > 3 else 0.0
        return None, 0.0

    def take_failure(self, method: str) -> ApiError | None:
        """Pop the next injected failure matching ``method`` (lower-case), if any."""
        for failure in self.failures:
            if failure.method is None or failure.method == method:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self.failures.remove(failure)
                return failure.error
        return None
