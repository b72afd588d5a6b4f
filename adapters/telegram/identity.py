"""Telegram ids to the core's names: streams per chat, senders per user, causation per update."""

from __future__ import annotations

from aiogram.types import CallbackQuery, Chat, Message, User

from domain.commands import Sender
from service.conversations import Request


def stream_of(chat: Chat, thread: int | None = None) -> str:
    """One stream per chat, and one per forum topic (`<chat>:<thread>`; the General topic is the chat's own). A
    private chat's id is its user's id, so users are keyed by id, never by username."""
    return str(chat.id) if thread is None else f"{chat.id}:{thread}"


def thread_of_message(message: Message) -> int | None:
    """The forum topic a message is in (None for the General topic and for chats without topics)."""
    return message.message_thread_id if message.is_topic_message else None


def stream_of_message(message: Message) -> str:
    """The stream of the chat, or of the topic, a message is in."""
    return stream_of(message.chat, thread_of_message(message))


def chat_of(stream: str) -> int | None:
    """The Telegram chat behind a stream, or None for streams of other front ends (e.g. `cli:...`)."""
    try:
        return int(stream.partition(":")[0])
    except ValueError:
        return None


def thread_of(stream: str) -> int | None:
    """The forum topic behind a stream, if it is a topic's."""
    _, _, thread = stream.partition(":")
    return int(thread) if thread.isdigit() else None


def sender_of(user: User) -> Sender:
    """The core's view of a Telegram user."""
    return Sender(user_id=user.id, username=user.username, first_name=user.first_name, language_code=user.language_code)


def causation_of(update_id: int) -> str:
    """The causation id of everything one update makes happen."""
    return f"tg:{update_id}"


def request_for(message: Message, update_id: int) -> Request:
    """The use-case request of a user's message: this chat's stream, this update's causation, this user."""
    assert message.from_user is not None
    user = message.from_user
    name = None if message.chat.type == "private" else display_name(user)
    return Request(stream_of_message(message), causation_of(update_id), sender_of(user), message.message_id, name)


def request_for_button(query: CallbackQuery, message: Message) -> Request:
    """The use-case request of a button press on one of the bot's messages: that message's stream, the presser."""
    return Request(stream_of_message(message), f"tg:cb:{query.id}", sender_of(query.from_user))


def display_name(user: User) -> str:
    """A user's name as Telegram shows it in a group: first and last name."""
    return " ".join(part for part in (user.first_name, user.last_name) if part) or str(user.id)
