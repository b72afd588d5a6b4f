"""Test helpers that make users act: they build real-looking updates and queue them."""

from __future__ import annotations

import itertools
import time
from typing import Any, Protocol

from .formatting import detect_entities
from .models import CallbackQueryRecord, Chat, ChatAdmin, ForumTopic, StoredMessage, User
from .state import GENERAL_FORUM_TOPIC_ID, BotState

TOPIC_ICON_COLORS = frozenset({0x6FB9F0, 0xFFD67E, 0xCB86DB, 0x8EEE98, 0xFF93B2, 0xFB6F5F})
"""The ``icon_color`` values Telegram allows for a new topic."""


class _AiogramLikeChat(Protocol):
    id: int


class _AiogramLikeMessage(Protocol):
    """Anything shaped like ``aiogram.types.Message`` (``chat.id`` + ``message_id``)."""

    @property
    def chat(self) -> _AiogramLikeChat: ...

    @property
    def message_id(self) -> int: ...


MessageRef = StoredMessage | _AiogramLikeMessage | int


class UpdateInjector:
    """Mixin of :class:`FakeTelegram` with every "a user does X" helper."""

    state: BotState

    def _init_injector(self) -> None:
        self._user_ids = itertools.count(100_001)
        self._group_ids = itertools.count(1)
        self._query_ids = itertools.count(4_200_000_000_000_000_001)

    # ------------------------------------------------------------------ people and chats
    def new_user(
        self,
        first_name: str = "Alice",
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
        is_bot: bool = False,
        is_premium: bool | None = None,
        user_id: int | None = None,
    ) -> User:
        """A fresh user with a unique id (not yet known to the bot)."""
        return User(
            id=user_id if user_id is not None else next(self._user_ids),
            first_name=first_name,
            username=username,
            last_name=last_name,
            language_code=language_code,
            is_bot=is_bot,
            is_premium=is_premium,
        )

    def new_group(
        self,
        title: str = "Test group",
        *,
        supergroup: bool = True,
        username: str | None = None,
        chat_id: int | None = None,
        forum: bool = False,
    ) -> Chat:
        """A group (supergroup by default) the bot is a member of; registered at once.

        ``forum=True`` makes a supergroup with topics (``is_forum: true``); add topics with :meth:`create_topic`.
        """
        if forum and not supergroup:
            raise ValueError("only a supergroup can be a forum")
        number = next(self._group_ids)
        default_id = -1_001_000_000_000 - number if supergroup else -100_000 - number
        chat = Chat(
            id=chat_id if chat_id is not None else default_id,
            type="supergroup" if supergroup else "group",
            title=title,
            username=username,
            is_forum=True if forum else None,
        )
        self.register_chat(chat)
        return chat

    def create_topic(self, chat: Chat, name: str, *, creator: User | None = None, icon_color: int = 0x6FB9F0) -> int:
        """A forum topic ``name`` is created in ``chat``; returns its ``message_thread_id``.

        The id is that of the topic's ``forum_topic_created`` service message, so ids grow with the chat's
        messages (never 1 in a supergroup: that is the General topic).  ``chat`` is a forum supergroup or a private
        chat (topics in the chat with a bot, Bot API 9.3).  The creator is ``creator``, by default an anonymous
        administrator of a group (no ``from``) or the user of a private chat; its service message is queued as a
        ``message`` update, unless ``creator`` is the bot itself (``tg.bot_user``, as after ``createForumTopic``).
        """
        if not chat.has_topics:
            raise ValueError(f"chat {chat.id} ({chat.type}) has no topics; make a forum with new_group(forum=True)")
        if not 1 <= len(name) <= 128:
            raise ValueError("a topic name has 1-128 characters")
        if icon_color not in TOPIC_ICON_COLORS:
            raise ValueError(f"icon_color must be one of {sorted(TOPIC_ICON_COLORS)}")
        if creator is None and chat.type == "private":
            creator = self.state.users.get(chat.id) or User(
                id=chat.id, first_name=chat.first_name or "User", username=chat.username, last_name=chat.last_name
            )
        by_bot = creator is not None and creator.id == self.state.bot_user.id
        if creator is not None and not by_bot:
            self.state.remember_user(creator, private_chat=chat.type == "private")
        self.state.remember_chat(chat)
        thread = self.state.next_message_id(chat.id)
        if thread == GENERAL_FORUM_TOPIC_ID and chat.type == "supergroup":
            thread = self.state.next_message_id(chat.id)
        topic = ForumTopic(chat=chat, message_thread_id=thread, name=name, icon_color=icon_color, creator=creator)
        topic.root = StoredMessage(
            chat=chat,
            message_id=thread,
            date=int(time.time()),
            sender=creator,
            sender_chat=chat if creator is None else None,
            content={"forum_topic_created": {"name": name, "icon_color": icon_color}},
            topic=topic,
        )
        self.state.topics.setdefault(chat.id, {})[thread] = topic
        self.state.store(topic.root)
        if by_bot:
            self.state.notify()
        else:
            self._queue_message("message", topic.root)
        return thread

    def new_channel(
        self, title: str = "Test channel", *, username: str | None = None, chat_id: int | None = None
    ) -> Chat:
        """A channel where the bot is an administrator; registered at once."""
        default_id = -1_002_000_000_000 - next(self._group_ids)
        chat = Chat(id=chat_id if chat_id is not None else default_id, type="channel", title=title, username=username)
        self.register_chat(chat)
        return chat

    def register_user(self, user: User) -> User:
        """Make the private chat with ``user`` known without sending an update."""
        self.state.remember_user(user)
        return user

    def register_chat(self, chat: Chat) -> Chat:
        """Make ``chat`` known without sending an update."""
        self.state.remember_chat(chat)
        return chat

    def block_bot(self, user: User) -> None:
        """``user`` blocks the bot: sends to them fail with 403."""
        self.state.blocked.add(user.id)

    def unblock_bot(self, user: User) -> None:
        """Undo :meth:`block_bot`."""
        self.state.blocked.discard(user.id)

    def make_admin(
        self,
        chat: Chat,
        user: User,
        *,
        creator: bool = False,
        is_anonymous: bool = False,
        custom_title: str | None = None,
        **rights: bool,
    ) -> None:
        """``user`` becomes the creator (``creator=True``) or an administrator of a group or channel.

        ``rights`` override ``can_*`` fields of ``ChatMemberAdministrator`` (e.g. ``can_promote_members=True``).
        The user and the chat become known to the bot; a chat has one creator, so a new one replaces the old.
        """
        if chat.type == "private":
            raise ValueError("a private chat has no administrators")
        if creator and rights:
            raise ValueError("the creator has every right; rights apply to administrators only")
        self.state.remember_user(user, private_chat=False)
        self.state.remember_chat(chat)
        admins = self.state.admins.setdefault(chat.id, {})
        if creator:
            for user_id in [uid for uid, admin in admins.items() if admin.creator]:
                del admins[user_id]
        admins[user.id] = ChatAdmin(
            user=user,
            creator=creator,
            is_anonymous=is_anonymous,
            custom_title=custom_title,
            rights=tuple(sorted(rights.items())),
        )

    def remove_admin(self, chat: Chat, user: User) -> None:
        """``user`` is a plain member of ``chat`` again."""
        self.state.admins.get(chat.id, {}).pop(user.id, None)

    # ------------------------------------------------------------------ raw updates
    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update dict (``update_id`` assigned if missing); chats in it become known."""
        payload = next((value for key, value in update.items() if key != "update_id"), None)
        if isinstance(payload, dict):
            self._learn_from_payload(payload)
        queued = self.state.queue.push(update)
        self.state.notify()
        return queued

    def _learn_from_payload(self, payload: dict[str, Any]) -> None:
        message = payload.get("message", payload)
        chat = message.get("chat") if isinstance(message, dict) else None
        if isinstance(chat, dict) and "id" in chat and "type" in chat:
            known = {key: chat.get(key) for key in ("title", "username", "first_name", "last_name", "is_forum")}
            self.state.remember_chat(Chat(id=chat["id"], type=chat["type"], **known))
        sender = payload.get("from")
        if isinstance(sender, dict) and {"id", "first_name"} <= sender.keys():
            self.state.users.setdefault(
                sender["id"],
                User(
                    id=sender["id"],
                    first_name=sender["first_name"],
                    username=sender.get("username"),
                    is_bot=bool(sender.get("is_bot")),
                ),
            )

    def _queue_message(self, kind: str, message: StoredMessage) -> StoredMessage:
        update = self.state.queue.push({kind: message.to_api()})
        message.update_id = update["update_id"]
        self.state.notify()
        return message

    def _incoming(
        self,
        user: User | None,
        chat: Chat | None,
        kind: str = "message",
        *,
        thread: int | None = None,
        reply_to: StoredMessage | None = None,
        **fields: Any,
    ) -> StoredMessage:
        """Store a message written by ``user`` (or anonymously by ``chat``) in topic ``thread`` and queue its update."""
        if chat is None:
            if user is None:
                raise ValueError("a message needs a user or a chat")
            chat = user.private_chat
        fields.update(self._placement(chat, thread, reply_to))
        if user is not None:
            self.state.remember_user(user, private_chat=chat.type == "private")
        self.state.remember_chat(chat)
        message = StoredMessage(
            chat=chat,
            message_id=self.state.next_message_id(chat.id),
            date=int(time.time()),
            sender=user,
            sender_chat=chat if user is None else None,
            **fields,
        )
        self.state.store(message)
        return self._queue_message(kind, message)

    def _placement(self, chat: Chat, thread: int | None, reply_to: StoredMessage | None) -> dict[str, Any]:
        """Topic and reply fields of a user's message; a reply goes to the topic of the message it answers."""
        topic: ForumTopic | None = None
        if thread is not None:
            if not chat.has_topics:
                raise ValueError(f"chat {chat.id} ({chat.type}) has no topics; make a forum with new_group(forum=True)")
            topic = self.state.find_topic(chat, thread)
            if topic is None:
                raise ValueError(
                    f"chat {chat.id} has no topic {thread}; topics: {sorted(self.state.topics.get(chat.id, {}))}"
                )
            if reply_to is not None and reply_to.chat_id == chat.id and reply_to.topic is not topic:
                raise ValueError(
                    f"message {reply_to.message_id} is in topic {reply_to.thread}, not {thread}: a reply lands in the "
                    "topic of the message it answers"
                )
        return self.state.placement(chat, topic, reply_to, explicit=topic is not None)

    # ------------------------------------------------------------------ text
    def send_text(
        self,
        user: User | None,
        text: str,
        chat: Chat | None = None,
        *,
        entities: list[dict[str, Any]] | None = None,
        reply_to: StoredMessage | None = None,
        thread: int | None = None,
    ) -> StoredMessage:
        """``user`` writes ``text`` (in their private chat unless ``chat`` is given).

        ``user=None`` writes anonymously on behalf of ``chat`` (no ``from``).
        Commands, mentions, hashtags and URLs get entities like in real clients.
        ``thread`` is a topic of ``chat`` (:meth:`create_topic`; None: the General topic); a reply goes to the
        topic of the message it answers.  A topic a chat does not have raises ValueError.
        """
        found = entities if entities is not None else detect_entities(text)
        return self._incoming(user, chat, text=text, entities=tuple(found), reply_to=reply_to, thread=thread)

    def send_command(
        self,
        user: User,
        command: str,
        args: str = "",
        chat: Chat | None = None,
        *,
        mention_bot: bool = False,
        thread: int | None = None,
    ) -> StoredMessage:
        """``user`` sends ``/command args`` (``/command@bot`` with ``mention_bot``), in forum topic ``thread``."""
        text = "/" + command.lstrip("/")
        if mention_bot:
            text += f"@{self.state.bot_user.username}"
        if args:
            text += f" {args}"
        return self.send_text(user, text, chat, thread=thread)

    def reply(self, user: User, to: MessageRef, text: str) -> StoredMessage:
        """``user`` replies with ``text`` to message ``to`` (usually one of the bot's), in the topic of ``to``."""
        target = self.resolve_message(to, user)
        return self.send_text(user, text, target.chat, reply_to=target)

    def resolve_message(self, ref: MessageRef, user: User | None = None) -> StoredMessage:
        """Accept a :class:`StoredMessage`, an aiogram ``Message`` or a message id in ``user``'s chat."""
        if isinstance(ref, StoredMessage):
            return ref
        if isinstance(ref, int):
            if user is None:
                raise ValueError("a bare message id needs the user whose private chat it is in")
            chat_id, message_id = user.id, ref
        else:
            chat_id, message_id = ref.chat.id, ref.message_id
        found = self.state.messages.get(chat_id, {}).get(message_id)
        if found is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        return found

    def mention_bot(self, user: User, chat: Chat, text: str, *, thread: int | None = None) -> StoredMessage:
        """``user`` writes ``@bot_username text`` in a group (in forum topic ``thread``)."""
        return self.send_text(user, f"@{self.state.bot_user.username} {text}", chat, thread=thread)

    def post_to_channel(self, channel: Chat, text: str) -> StoredMessage:
        """A ``channel_post`` (no ``from``, ``sender_chat`` = the channel)."""
        return self._incoming(None, channel, "channel_post", text=text, entities=tuple(detect_entities(text)))

    def edit_message(self, user: User | None, message: MessageRef, text: str) -> StoredMessage:
        """The author edits ``message``: queues ``edited_message`` (or ``edited_channel_post``).

        The message keeps its topic (``message_thread_id``), as in Telegram.
        """
        message = self.resolve_message(message, user)
        if message.sender != user and not (user is None and message.sender is None):
            raise ValueError("only the author can edit a message")
        message.text = text
        message.entities = tuple(detect_entities(text))
        message.edit_date = int(time.time())
        message.history.append(message.snapshot())
        kind = "edited_channel_post" if message.chat.type == "channel" else "edited_message"
        return self._queue_message(kind, message)

    # ------------------------------------------------------------------ buttons
    def press_button(self, user: User, message: MessageRef, data: str, *, strict: bool = True) -> str:
        """``user`` presses the inline button with ``callback_data == data``; returns the query id.

        With ``strict`` (default) the button must exist on the message's current keyboard.
        """
        message = self.resolve_message(message, user)
        if strict and (message.deleted or data not in message.callback_data()):
            raise ValueError(
                f"message {message.message_id} has no live button with callback_data={data!r}; "
                f"available: {message.callback_data()}"
            )
        query_id = str(next(self._query_ids))
        self.state.callback_queries[query_id] = CallbackQueryRecord(
            id=query_id, user=user, message=message, data=data, time=time.monotonic()
        )
        self.state.remember_user(user, private_chat=message.chat.type == "private")
        update = {
            "callback_query": {
                "id": query_id,
                "from": user.to_api(),
                "message": message.to_api(),
                "chat_instance": str(abs(hash((message.chat_id, self.state.bot_user.id))) % 10**19),
                "data": data,
            }
        }
        self.state.queue.push(update)
        self.state.notify()
        return query_id

    # ------------------------------------------------------------------ message drafts
    def stop_generation(
        self,
        user_or_chat: User | Chat | int,
        draft_id: int,
        *,
        strict: bool = True,
        message_thread_id: int | None = None,
    ) -> dict[str, Any]:
        """The user presses Stop on draft ``draft_id``: queues a ``stopped_message_generation`` update.

        With ``strict`` (default) the chat must have received that draft with ``can_stop=true``, so a test
        notices a bot that never offered Stop.  ``message_thread_id`` defaults to the draft's thread.
        Returns the queued update.
        """
        chat = self._draft_chat(user_or_chat)
        offered = [
            draft
            for draft in self.state.drafts
            if draft.chat_id == chat.id and draft.draft_id == draft_id and draft.can_stop
        ]
        if strict and not offered:
            shown = sorted({(d.draft_id, d.can_stop) for d in self.state.drafts if d.chat_id == chat.id})
            raise ValueError(
                f"chat {chat.id} never received draft {draft_id} with can_stop=true; drafts (id, can_stop): {shown}"
            )
        if message_thread_id is None and offered:
            message_thread_id = offered[-1].message_thread_id
        payload: dict[str, Any] = {"chat": chat.to_api(), "draft_id": draft_id}
        if message_thread_id is not None:
            payload["message_thread_id"] = message_thread_id
        update = self.state.queue.push({"stopped_message_generation": payload})
        self.state.notify()
        return update

    def _draft_chat(self, user_or_chat: User | Chat | int) -> Chat:
        if isinstance(user_or_chat, User):
            self.state.remember_user(user_or_chat)
            return self.state.chats[user_or_chat.id]
        if isinstance(user_or_chat, Chat):
            return user_or_chat
        known = self.state.chats.get(user_or_chat)
        if known is None:
            raise LookupError(f"chat {user_or_chat} is unknown to the bot")
        return known

    # ------------------------------------------------------------------ media and other content
    def send_content(
        self,
        user: User | None,
        content: dict[str, Any],
        chat: Chat | None = None,
        *,
        caption: str | None = None,
        thread: int | None = None,
    ) -> StoredMessage:
        """A non-text message with arbitrary Bot API ``content`` fields (in forum topic ``thread``)."""
        entities = tuple(detect_entities(caption)) if caption else ()
        return self._incoming(user, chat, content=content, caption=caption, caption_entities=entities, thread=thread)

    def send_location(
        self,
        user: User,
        latitude: float = 52.52,
        longitude: float = 13.405,
        chat: Chat | None = None,
        *,
        thread: int | None = None,
    ) -> StoredMessage:
        """A shared location."""
        location = {"latitude": latitude, "longitude": longitude}
        return self.send_content(user, {"location": location}, chat, thread=thread)

    def send_contact(
        self,
        user: User,
        phone_number: str = "+15550100",
        first_name: str = "Bob",
        chat: Chat | None = None,
        *,
        thread: int | None = None,
    ) -> StoredMessage:
        """A shared contact."""
        contact = {"phone_number": phone_number, "first_name": first_name}
        return self.send_content(user, {"contact": contact}, chat, thread=thread)

    def send_poll(
        self,
        user: User,
        question: str = "Tea or coffee?",
        options: tuple[str, ...] = ("Tea", "Coffee"),
        chat: Chat | None = None,
        *,
        thread: int | None = None,
    ) -> StoredMessage:
        """A regular anonymous poll."""
        poll = {
            "id": str(next(self._query_ids)),
            "question": question,
            "options": [
                {"persistent_id": str(index), "text": option, "voter_count": 0} for index, option in enumerate(options)
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }
        return self.send_content(user, {"poll": poll}, chat, thread=thread)
