"""A local fake of the Telegram Bot API server, driven by the real aiogram client in tests and benchmarks.

Quick reference (all waits are ``async``; everything else is synchronous)::

    async with FakeTelegram(token=..., flood=FloodLimits(...), ...) as tg:
        tg.api_base                      # give to the bot as TELEGRAM_API_BASE
        alice = tg.new_user("Alice", username="alice")   # not yet known to the bot
        tg.register_user(alice) / tg.register_chat(chat) / tg.new_group() / tg.new_channel()
        forum = tg.new_group(forum=True); t = tg.create_topic(forum, "Ideas", creator=None)  # -> message_thread_id
        tg.send_text(alice, "hi", chat=None, thread=None) -> StoredMessage  # queues an update; send_* take thread=
        tg.send_command(alice, "start", "args") / tg.reply(alice, bot_msg, "text")     # reply: in bot_msg's topic
        tg.mention_bot(alice, group, "text", thread=t) / tg.post_to_channel(channel, "text")
        tg.send_sticker / send_location / send_contact / send_poll
        tg.send_voice(alice, 3, data=None, size=None) / send_audio / send_video_note / send_document(alice,
        #   "a.pdf", "application/pdf", data=b"...", size=25_000_000)  # real bytes (made up when data=None)
        tg.send_photo(alice, "cap", width=, height=, data=None, media_group_id=None) / send_album(alice, 3, "cap")
        tg.file(file_id) / file_bytes(file_id) / file_url(file_id) / downloads(file_id) -> int  # GET /file/bot…
        tg.expire_file(file_id) / restore_file(file_id)   # getFile: "wrong file_id or the file is temporarily …"
        tg.voices(chat_id)      # sendVoice messages; .upload holds the uploaded bytes (sendAudio/sendDocument too)
        tg.documents(chat_id)   # sendDocument messages; an upload over 50 MB is refused (413 Request Entity Too Large)
        tg.send_content(alice, {...}) / edit_message(alice, msg, "new")
        tg.send_text(None, "anonymous", group)      # an update without "from"
        tg.press_button(alice, bot_msg, "data") -> callback query id
        tg.drafts(chat=None, draft_id=None) -> [DraftRecord]    # sendMessageDraft previews (no messages)
        tg.stop_generation(alice, draft_id, strict=True) -> update   # the user presses Stop on a draft
        tg.make_admin(group, alice, creator=False, **rights) / remove_admin(group, alice)  # getChatMember
        tg.remove_method("sendMessageDraft") / restore_method(...) / removed_method_calls(...)  # older server
        tg.push_update({...}) -> the queued update (update_id assigned)
        tg.calls / calls_to("sendMessage") / messages(chat_id) / bot_messages(chat_id, thread=t)
        #   thread= (messages, bot_messages, last_bot_message, photos, wait_for_messages, chat_actions, drafts):
        #   None = the whole chat, an id = that topic, GENERAL_TOPIC = in no topic (a forum's General topic)
        tg.topics(chat) -> [ForumTopic] / message.thread (topic id or None) / message.message_thread_id
        tg.message(chat_id, id).history / chat_actions() / photos() / commands()
        tg.callback_answers / callback_query(id) / updates / pending_updates / webhook
        await tg.wait_for(lambda: ..., timeout=5) / wait_for_messages(chat_id, count, timeout)
        await tg.wait_for_call("sendMessage") / wait_until_consumed()
        await tg.deliver_webhook(update=None, secret=...)  # -> HTTP status
        tg.set_flood_limits(chat_burst=1) / disable_flood_control() / flood_next() / fail_next()

Standalone: ``python -m tests.doubles.telegram.cli --port 8081 --token 123:abc`` prints its base URL on one line
once it listens (for manual tries; the ``/_fake`` routes of ``control.py`` drive it).
"""

from __future__ import annotations

from .errors import ApiError
from .flood import FloodLimits
from .formatting import FormattedText, parse_html, utf16_len
from .models import (
    GENERAL_TOPIC,
    ApiCall,
    CallbackAnswer,
    CallbackQueryRecord,
    Chat,
    ChatActionRecord,
    ChatAdmin,
    DraftRecord,
    ForumTopic,
    MessageVersion,
    StoredMessage,
    UploadedFile,
    User,
)
from .server import FakeTelegram
from .state import DEFAULT_TOKEN, ServerConfig, WebhookState
from .webhook import SECRET_HEADER

__all__ = [
    "DEFAULT_TOKEN",
    "GENERAL_TOPIC",
    "SECRET_HEADER",
    "ApiCall",
    "ApiError",
    "CallbackAnswer",
    "CallbackQueryRecord",
    "Chat",
    "ChatActionRecord",
    "ChatAdmin",
    "DraftRecord",
    "FakeTelegram",
    "FloodLimits",
    "FormattedText",
    "ForumTopic",
    "MessageVersion",
    "ServerConfig",
    "StoredMessage",
    "UploadedFile",
    "User",
    "WebhookState",
    "parse_html",
    "utf16_len",
]
