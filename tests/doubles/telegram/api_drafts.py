"""``sendMessageDraft`` (Bot API 9.3+): streaming an ephemeral preview of a message being generated.

A draft is no message: it gets no ``message_id`` and never enters the chat
history; the fake only records it (``FakeTelegram.drafts``).  Checks run in the
order of ``sendMessage``: text and markup first, then the chat, then tdlib's
length limit, then the server's own refusals (peer type, topic, draft id), then
flood control (which counts drafts only with ``FloodLimits(count_drafts=True)``).
``message_thread_id`` must name a topic of the private chat
(``FakeTelegram.create_topic``), else ``message thread not found``.
"""

from __future__ import annotations

import time
from typing import Any

from .api_messages import formatted_input
from .errors import bad_request
from .formatting import FormattedText, finalize
from .models import DraftRecord
from .params import Params
from .registry import api_method
from .state import BotState

PEER_INVALID = "TEXTDRAFT_PEER_INVALID"
DRAFT_ID_INVALID = "DRAFT_ID_INVALID"


def draft_text(state: BotState, formatted: FormattedText) -> FormattedText:
    """Trimmed text with detected entities; 0..4096 UTF-16 units (empty shows a "Thinking…" placeholder)."""
    final = finalize(formatted)
    if final.utf16_length > state.config.max_text_length:
        raise bad_request("message is too long")
    return final


@api_method("sendMessageDraft")
async def send_message_draft(state: BotState, params: Params) -> Any:
    """Record a draft shown in a private chat; returns ``true``."""
    formatted = formatted_input(params, "text", "entities")
    chat = state.resolve_chat(params)
    state.check_can_send(chat)
    final = draft_text(state, formatted)
    if chat.type != "private":
        raise bad_request(PEER_INVALID)
    topic = state.requested_topic(chat, params)
    draft_id = params.integer("draft_id")
    if draft_id == 0:
        raise bad_request(DRAFT_ID_INVALID)
    state.flood.check(chat, is_draft=True)
    state.drafts.append(
        DraftRecord(
            chat_id=chat.id,
            draft_id=draft_id,
            text=final.text,
            parse_mode=params.optional("parse_mode"),
            can_stop=params.flag("can_stop"),
            keep_on_stop=params.flag("keep_on_stop"),
            time=time.monotonic(),
            entities=final.entities,
            message_thread_id=topic.message_thread_id if topic is not None else None,
        )
    )
    state.notify()
    return True
