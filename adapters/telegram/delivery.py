"""Putting answers, pictures and failures in front of the user, within Telegram's limits.

- While an answer streams in, one message is edited at most every `edit_interval` seconds, as plain text (the
  first preview comes after one interval, so a quick answer is simply sent).
- The final answer is rendered to Telegram HTML from the model's Markdown and split under 4096 characters at
  paragraph or code-block boundaries; if Telegram still rejects the entities, the plain text is sent instead.
- Passing failures of final messages are waited out by the session's Patience middleware (patience.py);
  previews are best effort. A deleted preview means the answer is sent as a new message.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    AiogramError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.types import BufferedInputFile, Message

from adapters.telegram import replies
from adapters.telegram.identity import chat_of
from adapters.telegram.intake import Preview
from adapters.telegram.patience import best_effort
from adapters.telegram.render import markdown_to_telegram_html, split_html, split_message, utf16_len
from service.outcomes import Answered, Drawn, Failed, Outcome, Undeliverable

log = structlog.get_logger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


async def _send_text(bot: Bot, chat_id: int, text: str, *, html: bool, reply_to: int | None) -> Message:
    """Send one message (passing failures are waited out by the session's Patience middleware)."""
    return await bot.send_message(
        chat_id,
        text,
        parse_mode=ParseMode.HTML if html else None,
        reply_to_message_id=reply_to,
        allow_sending_without_reply=True,
        disable_web_page_preview=True,
    )


class PreviewGone(Exception):
    """The message to edit is gone (the user deleted it) or can no longer be edited."""


async def _edit_text(bot: Bot, chat_id: int, message_id: int, text: str, *, html: bool) -> None:
    try:
        await bot.edit_message_text(
            text=text,
            chat_id=chat_id,
            message_id=message_id,
            parse_mode=ParseMode.HTML if html else None,
            disable_web_page_preview=True,
        )
    except TelegramBadRequest as error:
        if "message is not modified" in error.message:
            return
        if "message to edit not found" in error.message or "message can't be edited" in error.message:
            raise PreviewGone(error.message) from None
        raise


async def send_answer(
    bot: Bot, chat_id: int, markdown: str, *, first: int | None = None, reply_to: int | None = None
) -> None:
    """The final answer: HTML parts (editing message `first` into part one when given), or plain text if rejected."""
    try:
        await _send_parts(
            bot, chat_id, split_html(markdown_to_telegram_html(markdown), TEXT_LIMIT), True, first, reply_to
        )
    except TelegramBadRequest as error:
        if "can't parse entities" not in error.message and "must be non-empty" not in error.message:
            raise
        log.warning("html_rejected", reason=error.message)
        await _send_parts(bot, chat_id, split_message(markdown, TEXT_LIMIT), False, first, reply_to)


async def _send_parts(
    bot: Bot, chat_id: int, parts: list[str], html: bool, first: int | None, reply_to: int | None
) -> None:
    parts = [part for part in parts if part.strip()] or ["…"]
    if first is not None:
        try:
            await _edit_text(bot, chat_id, first, parts[0], html=html)
            parts = parts[1:]
        except PreviewGone:
            log.info("preview_gone", message_id=first)
    for part in parts:
        await _send_text(bot, chat_id, part, html=html, reply_to=reply_to)


async def send_plain(bot: Bot, chat_id: int, text: str, *, reply_to: int | None = None) -> None:
    """A short plain-text reply (help, errors, confirmations)."""
    for part in split_message(text, TEXT_LIMIT):
        await _send_text(bot, chat_id, part, html=False, reply_to=reply_to)


async def send_picture(bot: Bot, chat_id: int, drawn: Drawn, *, reply_to: int | None = None) -> None:
    """The picture as a photo, with the prompt as caption (cut to Telegram's caption limit)."""
    caption = _cut(drawn.prompt, CAPTION_LIMIT)
    if drawn.data is not None:
        photo: BufferedInputFile | str = BufferedInputFile(drawn.data, filename="image.png")
    elif drawn.image_ref.startswith(("https://", "http://")):
        photo = drawn.image_ref
    else:
        await send_plain(bot, chat_id, replies.IMAGE_SENT_EARLIER, reply_to=reply_to)
        return
    await bot.send_photo(
        chat_id, photo, caption=caption, reply_to_message_id=reply_to, allow_sending_without_reply=True
    )


async def send_outcome(bot: Bot, chat_id: int, outcome: Outcome, *, reply_to: int | None = None) -> None:
    """Whatever the outcome is, as the user should see it."""
    match outcome:
        case Answered(text=text):
            await send_answer(bot, chat_id, text, reply_to=reply_to)
        case Drawn():
            await send_picture(bot, chat_id, outcome, reply_to=reply_to)
        case Failed(kind=kind, retry_after=retry_after, request=request):
            await send_plain(
                bot, chat_id, replies.failure(kind, retry_after, image=request == "image"), reply_to=reply_to
            )


def _cut(text: str, limit: int) -> str:
    if utf16_len(text) <= limit:
        return text
    while utf16_len(text) > limit - 1:
        text = text[: max(0, len(text) - max(1, (utf16_len(text) - limit + 1) // 2))]
    return text + "…"


class StreamingReply:
    """Shows an answer while it is generated: one message, edited no more often than `interval` seconds.

    The first preview waits one interval too: an answer complete by then arrives as one message, with no preview
    to flicker past (and half the Bot API calls); a longer one is shown growing from then on. Previews are best
    effort: a failed one is skipped and never stops the answer. A preview is remembered (`preview.remember`) so
    that a process that dies mid-answer leaves nothing half-written: the next one edits it into the answer.
    """

    def __init__(
        self, bot: Bot, chat_id: int, reply_to: int | None, interval: float, preview: Preview | None = None
    ) -> None:
        self._bot = bot
        self._chat_id = chat_id
        self._reply_to = reply_to
        self._interval = interval
        self._preview = preview
        self._message_id: int | None = preview.message_id if preview is not None else None
        self._shown = ""
        self._last = time.monotonic()

    @property
    def message_id(self) -> int | None:
        """The message being edited, once one was sent."""
        return self._message_id

    async def update(self, text_so_far: str) -> None:
        """Called with the whole answer so far; shows it if enough time has passed since the last edit."""
        now = time.monotonic()
        if now - self._last < self._interval or not text_so_far.strip():
            return
        preview = _cut(text_so_far, TEXT_LIMIT - 2) + " ▌"
        if preview == self._shown:
            return
        self._last = now
        try:
            with best_effort():
                if self._message_id is None:
                    sent = await self._bot.send_message(
                        self._chat_id, preview, reply_to_message_id=self._reply_to, allow_sending_without_reply=True
                    )
                    self._message_id = sent.message_id
                    if self._preview is not None:
                        await self._preview.remember(sent.message_id)
                else:
                    await _edit_text(self._bot, self._chat_id, self._message_id, preview, html=False)
            self._shown = preview
        except TelegramRetryAfter as flood:
            self._last = now + flood.retry_after
        except PreviewGone:
            self._message_id = None
        except AiogramError as error:
            log.debug("stream_edit_skipped", reason=str(error).splitlines()[0][:200])

    async def finish(self, outcome: Outcome) -> None:
        """Replace the preview with the final answer, or with the failure reply."""
        if isinstance(outcome, Answered):
            await send_answer(self._bot, self._chat_id, outcome.text, first=self._message_id, reply_to=self._reply_to)
            return
        if self._message_id is not None and isinstance(outcome, Failed):
            text = replies.failure(outcome.kind, outcome.retry_after)
            seen = self._shown.removesuffix(" ▌").rstrip()
            if seen:  # what the user watched grow stays on screen, marked as cut short
                text = _cut(seen, TEXT_LIMIT - utf16_len(text) - 8) + "\n\n⚠️ " + text
            try:
                await _edit_text(self._bot, self._chat_id, self._message_id, text, html=False)
                return
            except PreviewGone:
                pass
        await send_outcome(self._bot, self._chat_id, outcome, reply_to=self._reply_to)


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

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def deliver(self, stream: str, outcome: Outcome) -> None:
        """Send the outcome to the chat behind the stream (streams of other front ends are skipped)."""
        chat_id = chat_of(stream)
        if chat_id is None:
            return
        await refusals_are_final(lambda: send_outcome(self._bot, chat_id, outcome))
        log.info("recovered_outcome_delivered", stream=stream, outcome=type(outcome).__name__)
