"""Putting answers, pictures and failures in front of the user, within Telegram's limits.

- The final answer is rendered to Telegram HTML from the model's Markdown and split under 4096 characters at
  paragraph or code-block boundaries; if Telegram still rejects the entities, the plain text is sent instead. A
  reasoning model's thoughts go above it in one expandable quote (when shown), and a stopped answer is marked so.
- Passing failures of final messages are waited out by the session's Patience middleware (patience.py). What is
  shown while an answer is generated (drafts, edited previews) lives in `streaming`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
)
from aiogram.types import BufferedInputFile, Message

from adapters.telegram import replies
from adapters.telegram.i18n import speaking, translated
from adapters.telegram.identity import chat_of, thread_of
from adapters.telegram.render import escape_text, markdown_to_telegram_html, split_html, split_message, utf16_len
from service.outcomes import Answered, Drawn, Failed, Outcome, Undeliverable

log = structlog.get_logger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
REASONING_LIMIT = 3000
"""Most characters of a reasoning quote, so that it and the answer's start fit the first message."""


async def _send_text(
    bot: Bot, chat_id: int, text: str, *, html: bool, reply_to: int | None, thread: int | None = None
) -> Message:
    """Send one message, in forum topic `thread` if given (passing failures are waited out by the session's
    Patience middleware)."""
    return await bot.send_message(
        chat_id,
        text,
        message_thread_id=thread,
        parse_mode=ParseMode.HTML if html else None,
        reply_to_message_id=reply_to,
        allow_sending_without_reply=True,
        disable_web_page_preview=True,
    )


class PreviewGone(Exception):
    """The message to edit is gone (the user deleted it) or can no longer be edited."""


async def edit_text(
    bot: Bot, chat_id: int, message_id: int, text: str, *, html: bool, request_timeout: int | None = None
) -> None:
    """Edit a message's text (`request_timeout`: seconds it may take, for previews that must not hold up)."""
    try:
        await bot.edit_message_text(
            text=text,
            chat_id=chat_id,
            message_id=message_id,
            parse_mode=ParseMode.HTML if html else None,
            disable_web_page_preview=True,
            request_timeout=request_timeout,
        )
    except TelegramBadRequest as error:
        if "message is not modified" in error.message:
            return
        if "message to edit not found" in error.message or "message can't be edited" in error.message:
            raise PreviewGone(error.message) from None
        raise


async def send_answer(
    bot: Bot,
    chat_id: int,
    markdown: str,
    *,
    first: int | None = None,
    reply_to: int | None = None,
    reasoning: str = "",
    stopped: bool = False,
    thread: int | None = None,
) -> None:
    """The final answer: HTML parts (editing message `first` into part one when given), or plain text if rejected.
    `reasoning` goes above it in an expandable quote; a `stopped` answer is marked as such."""
    if stopped:
        markdown = f"{markdown.rstrip()}\n\n{translated(replies.STOPPED_MARK)}"
    html = reasoning_quote(reasoning) + markdown_to_telegram_html(markdown)
    try:
        await _send_parts(bot, chat_id, split_html(html, TEXT_LIMIT), True, first, reply_to, thread)
    except TelegramBadRequest as error:
        if "can't parse entities" not in error.message and "must be non-empty" not in error.message:
            raise
        log.warning("html_rejected", reason=error.message)
        await _send_parts(bot, chat_id, split_message(markdown, TEXT_LIMIT), False, first, reply_to, thread)


def reasoning_quote(reasoning: str) -> str:
    """The thoughts as one expandable blockquote, cut to REASONING_LIMIT; nothing when there are none."""
    thought = reasoning.strip()
    if not thought:
        return ""
    return f"<blockquote expandable>{escape_text(cut(thought, REASONING_LIMIT))}</blockquote>\n"


async def _send_parts(
    bot: Bot,
    chat_id: int,
    parts: list[str],
    html: bool,
    first: int | None,
    reply_to: int | None,
    thread: int | None = None,
) -> None:
    parts = [part for part in parts if part.strip()] or ["…"]
    if first is not None:
        try:
            await edit_text(bot, chat_id, first, parts[0], html=html)
            parts = parts[1:]
        except PreviewGone:
            log.info("preview_gone", message_id=first)
    for part in parts:
        await _send_text(bot, chat_id, part, html=html, reply_to=reply_to, thread=thread)


async def send_plain(
    bot: Bot, chat_id: int, text: str, *, reply_to: int | None = None, thread: int | None = None
) -> None:
    """A short plain-text reply (help, errors, confirmations)."""
    for part in split_message(text, TEXT_LIMIT):
        await _send_text(bot, chat_id, part, html=False, reply_to=reply_to, thread=thread)


async def send_picture(
    bot: Bot, chat_id: int, drawn: Drawn, *, reply_to: int | None = None, thread: int | None = None
) -> None:
    """The picture as a photo, with the prompt as caption (cut to Telegram's caption limit)."""
    caption = cut(drawn.prompt, CAPTION_LIMIT)
    if drawn.data is not None:
        photo: BufferedInputFile | str = BufferedInputFile(drawn.data, filename="image.png")
    elif drawn.image_ref.startswith(("https://", "http://")):
        photo = drawn.image_ref
    else:
        await send_plain(bot, chat_id, translated(replies.IMAGE_SENT_EARLIER), reply_to=reply_to, thread=thread)
        return
    await bot.send_photo(
        chat_id,
        photo,
        caption=caption,
        message_thread_id=thread,
        reply_to_message_id=reply_to,
        allow_sending_without_reply=True,
    )


async def send_outcome(
    bot: Bot,
    chat_id: int,
    outcome: Outcome,
    *,
    reply_to: int | None = None,
    first: int | None = None,
    show_reasoning: bool = True,
    thread: int | None = None,
) -> None:
    """Whatever the outcome is, as the user should see it (an answer edited into message `first`, if given)."""
    match outcome:
        case Answered(text=text, reasoning=reasoning, stopped=stopped):
            shown = reasoning if show_reasoning else ""
            await send_answer(
                bot, chat_id, text, first=first, reply_to=reply_to, reasoning=shown, stopped=stopped, thread=thread
            )
        case Drawn():
            await send_picture(bot, chat_id, outcome, reply_to=reply_to, thread=thread)
        case Failed(kind=kind, retry_after=retry_after, request=request, reasoning=reasoning):
            text = replies.failure(kind, retry_after, image=request == "image", detail=outcome.message)
            if reasoning and show_reasoning:  # stopped while it only thought: what it thought, then the reply
                await send_answer(
                    bot, chat_id, text, first=first, reply_to=reply_to, reasoning=reasoning, thread=thread
                )
                return
            await send_plain(bot, chat_id, text, reply_to=reply_to, thread=thread)


def cut(text: str, limit: int) -> str:
    """The text, cut to `limit` UTF-16 units with an ellipsis if longer."""
    if utf16_len(text) <= limit:
        return text
    while utf16_len(text) > limit - 1:
        text = text[: max(0, len(text) - max(1, (utf16_len(text) - limit + 1) // 2))]
    return text + "…"


async def refusals_are_final(send: Callable[[], Awaitable[None]]) -> None:
    """Run `send`; Telegram's refusals that no retry can change (403 blocked or kicked, 400 chat not found or a
    request it will never accept, 404) become Undeliverable. Passing failures were already waited out."""
    try:
        await send()
    except (TelegramForbiddenError, TelegramBadRequest, TelegramNotFound) as refusal:
        log.warning("reply_undeliverable", reason=refusal.message)
        raise Undeliverable(refusal.message) from None


class TelegramOutbox:
    """Delivers results that finish after their update's handler is gone (requests recovered at start-up)."""

    def __init__(self, bot: Bot, show_reasoning: bool = True) -> None:
        self._bot = bot
        self._show_reasoning = show_reasoning

    async def deliver(self, stream: str, outcome: Outcome, language: str | None = None) -> None:
        """Send the outcome to the chat behind the stream (streams of other front ends are skipped), its own texts
        in the chat's chosen language (English when it chose none: whoever asked is not known here)."""
        chat_id = chat_of(stream)
        if chat_id is None:
            return
        thread = thread_of(stream)
        with speaking(language):
            await refusals_are_final(
                lambda: send_outcome(self._bot, chat_id, outcome, show_reasoning=self._show_reasoning, thread=thread)
            )
        log.info("recovered_outcome_delivered", stream=stream, outcome=type(outcome).__name__)
