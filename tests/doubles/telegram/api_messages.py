"""Message methods: send, edit, delete, chat actions and photos.

Checks run in the order the real server applies them: text and markup are
parsed first, then the chat is looked up, then ``message_thread_id``, then
tdlib's local limits (empty / too long), then server-side flood control.

Forum topics: ``message_thread_id`` puts a message in a topic of a forum
supergroup (or of a private chat); an unknown topic, or the General topic's id
1, is refused with ``message thread not found``, and in chats without topics
the parameter is ignored, as the server does.  A reply without
``message_thread_id`` lands in the topic of the message it answers; a reply to
a message of another topic becomes an ``external_reply``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from .errors import NOT_MODIFIED, ApiError, bad_request
from .files import default_image_size, image_size
from .formatting import FormattedText, finalize, parse_text
from .markup import inline_only, parse_reply_markup
from .models import Chat, ChatActionRecord, StoredMessage, UploadedFile
from .params import Params
from .registry import api_method
from .state import BotState

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
        "record_audio",
        "upload_audio",
    }
)


# --------------------------------------------------------------------------- helpers


def formatted_input(params: Params, text_key: str, entities_key: str) -> FormattedText:
    """Apply ``parse_mode`` / explicit entities to a text parameter."""
    entities = params.json(entities_key, "can't parse entities JSON object")
    if entities is not None and not isinstance(entities, list):
        raise bad_request("can't parse entities JSON object")
    return parse_text(params.text(text_key), params.optional("parse_mode"), entities)


def final_text(state: BotState, formatted: FormattedText) -> FormattedText:
    """Trimmed text with detected entities; enforces the 1..4096 UTF-16 unit rule."""
    final = finalize(formatted)
    if not final.text:
        raise bad_request("message must be non-empty")
    if final.utf16_length > state.config.max_text_length:
        raise bad_request("message is too long")
    return final


def final_caption(state: BotState, formatted: FormattedText) -> FormattedText:
    """Trimmed caption with detected entities; at most 1024 UTF-16 units."""
    final = finalize(formatted)
    if final.utf16_length > state.config.max_caption_length:
        raise bad_request("message caption is too long")
    return final


def reply_target(state: BotState, chat: Chat, params: Params) -> StoredMessage | None:
    """The message to reply to (``reply_parameters`` or legacy ``reply_to_message_id``)."""
    reply = params.json("reply_parameters", "can't parse reply parameters JSON object")
    if reply is not None:
        if not isinstance(reply, dict):
            raise bad_request("object expected as reply parameters")
        message_id = reply.get("message_id")
        allow_missing = bool(reply.get("allow_sending_without_reply"))
        if reply.get("chat_id") not in (None, chat.id, str(chat.id)):
            chat = state.resolve_chat(Params(values={"chat_id": str(reply["chat_id"])}))
    else:
        message_id = params.integer("reply_to_message_id")
        allow_missing = params.flag("allow_sending_without_reply")
    if not message_id:
        return None
    target = state.find_message(chat.id, int(message_id))
    if target is None and not allow_missing:
        raise bad_request("message to be replied not found")
    return target


def editable_message(state: BotState, params: Params) -> StoredMessage:
    """The bot message an ``editMessage*`` call targets, or the real error."""
    if params.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    message_id = params.integer("message_id")
    if not params.has("chat_id") or message_id <= 0:
        raise bad_request("message identifier is not specified")
    chat = state.resolve_chat(params)
    message = state.find_message(chat.id, message_id)
    if message is None:
        raise bad_request("message to edit not found")
    if not message.from_bot:
        raise bad_request("message can't be edited")
    return message


def inline_view(markup: dict[str, Any] | None) -> list[Any] | None:
    """The part of a markup that is visible on a message (its inline keyboard)."""
    rows = (markup or {}).get("inline_keyboard")
    return rows or None


def apply_edit(state: BotState, message: StoredMessage, *, mark_edited: bool = True, **fields: Any) -> None:
    """Change ``message`` and append the new version to its history."""
    for name, value in fields.items():
        setattr(message, name, value)
    if mark_edited:
        message.edit_date = int(time.time())
    message.history.append(message.snapshot())
    state.notify()


# --------------------------------------------------------------------------- send / edit text


@api_method("sendMessage")
async def send_message(state: BotState, params: Params) -> Any:
    """Send a text message."""
    if not params.text("text"):
        raise bad_request("message text is empty")
    formatted = formatted_input(params, "text", "entities")
    markup = parse_reply_markup(params)
    chat = state.resolve_chat(params)
    topic = state.requested_topic(chat, params)
    state.check_can_send(chat)
    target = reply_target(state, chat, params)
    final = final_text(state, formatted)
    state.flood.check(chat)
    message = state.new_bot_message(
        chat,
        text=final.text,
        entities=final.entities,
        reply_markup=markup,
        **state.placement(chat, topic, target, explicit=topic is not None),
    )
    state.notify()
    return message.to_api()


@api_method("editMessageText")
async def edit_message_text(state: BotState, params: Params) -> Any:
    """Edit the text (and inline keyboard) of a bot message."""
    if not params.text("text"):
        raise bad_request("message text is empty")
    formatted = formatted_input(params, "text", "entities")
    markup = inline_only(parse_reply_markup(params))
    message = editable_message(state, params)
    if message.text is None:
        raise bad_request("there is no text in the message to edit")
    final = final_text(state, formatted)
    unchanged = (final.text, list(final.entities), inline_view(markup)) == (
        message.text,
        list(message.entities),
        inline_view(message.reply_markup),
    )
    state.flood.check(message.chat, is_edit=True)
    if unchanged:
        raise ApiError(400, NOT_MODIFIED)
    apply_edit(state, message, text=final.text, entities=final.entities, reply_markup=markup)
    return message.to_api()


@api_method("editMessageCaption")
async def edit_message_caption(state: BotState, params: Params) -> Any:
    """Edit the caption (and inline keyboard) of a bot media message."""
    formatted = formatted_input(params, "caption", "caption_entities")
    markup = inline_only(parse_reply_markup(params))
    message = editable_message(state, params)
    if message.text is not None:
        raise bad_request("there is no caption in the message to edit")
    final = final_caption(state, formatted)
    unchanged = (final.text, list(final.entities), inline_view(markup)) == (
        message.caption or "",
        list(message.caption_entities),
        inline_view(message.reply_markup),
    )
    state.flood.check(message.chat, is_edit=True)
    if unchanged:
        raise ApiError(400, NOT_MODIFIED)
    apply_edit(state, message, caption=final.text or None, caption_entities=final.entities, reply_markup=markup)
    return message.to_api()


@api_method("editMessageReplyMarkup")
async def edit_message_reply_markup(state: BotState, params: Params) -> Any:
    """Replace (or remove) the inline keyboard of a bot message."""
    markup = inline_only(parse_reply_markup(params))
    message = editable_message(state, params)
    state.flood.check(message.chat, is_edit=True)
    if inline_view(markup) == inline_view(message.reply_markup):
        raise ApiError(400, NOT_MODIFIED)
    apply_edit(state, message, mark_edited=False, reply_markup=markup)
    return message.to_api()


@api_method("deleteMessage")
async def delete_message(state: BotState, params: Params) -> Any:
    """Delete a message (the bot's or, in a private chat, the user's)."""
    chat = state.resolve_chat(params)
    message = state.find_message(chat.id, params.integer("message_id"))
    if message is None:
        raise bad_request("message to delete not found")
    if "forum_topic_created" in message.content:
        raise bad_request("message can't be deleted")
    message.deleted = True
    state.notify()
    return True


@api_method("sendChatAction")
async def send_chat_action(state: BotState, params: Params) -> Any:
    """Record a chat action such as ``typing``."""
    action = params.text("action").strip().lower()
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat = state.resolve_chat(params)
    topic = state.requested_topic(chat, params)
    state.check_can_send(chat)
    thread = topic.message_thread_id if topic is not None else None
    state.chat_actions.append(
        ChatActionRecord(chat_id=chat.id, action=action, time=time.monotonic(), message_thread_id=thread)
    )
    state.notify()
    return True


# --------------------------------------------------------------------------- photos


def _remember_photo(state: BotState, sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for size in sizes:
        state.photo_sets[size["file_id"]] = sizes
    return sizes


def _uploaded_photo(state: BotState, upload: UploadedFile) -> list[dict[str, Any]]:
    if not upload.data:
        raise bad_request("file must be non-empty")
    dimensions = image_size(upload.data)
    if dimensions is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    return _remember_photo(state, state.files.photo(*dimensions, data=upload.data))


def _referenced_photo(state: BotState, reference: str) -> list[dict[str, Any]]:
    if reference in state.photo_sets:
        return state.photo_sets[reference]
    if re.match(r"^https?://\S+$", reference, re.IGNORECASE):
        if reference in state.broken_urls:
            raise bad_request("failed to get HTTP URL content")
        sizes = state.files.photo(*default_image_size(), source=reference)
        return _remember_photo(state, sizes)
    raise bad_request("wrong file identifier/HTTP URL specified")


@api_method("sendPhoto")
async def send_photo(state: BotState, params: Params) -> Any:
    """Send a photo given as an upload, a URL or a known ``file_id``."""
    upload = params.file("photo")
    reference = params.text("photo").strip()
    if upload is None and (not reference or reference.startswith("attach://")):
        raise bad_request("there is no photo in the request")
    formatted = formatted_input(params, "caption", "caption_entities")
    markup = parse_reply_markup(params)
    chat = state.resolve_chat(params)
    topic = state.requested_topic(chat, params)
    state.check_can_send(chat)
    target = reply_target(state, chat, params)
    caption = final_caption(state, formatted)
    sizes = _uploaded_photo(state, upload) if upload is not None else _referenced_photo(state, reference)
    state.flood.check(chat)
    message = state.new_bot_message(
        chat,
        caption=caption.text or None,
        caption_entities=caption.entities,
        content={"photo": sizes},
        reply_markup=markup,
        upload=upload,
        **state.placement(chat, topic, target, explicit=topic is not None),
    )
    state.notify()
    return message.to_api()
