"""When a group message is for the bot: a command, an @mention of it, or a reply to one of its messages."""

from __future__ import annotations

from aiogram.types import Message, User


def addressed_text(message: Message, me: User) -> str | None:
    """The message's text with the bot's mention removed if it is addressed to the bot; otherwise None."""
    text = message.text or message.caption or ""
    entities = message.entities or message.caption_entities or []
    username = (me.username or "").lower()
    for entity in entities:
        part = entity.extract_from(text)
        if entity.type == "bot_command" and entity.offset == 0:
            _, _, target = part.partition("@")
            return text if not target or target.lower() == username else None
        if entity.type == "mention" and part[1:].lower() == username:
            return text.replace(part, "", 1).strip()
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        return text
    return None
