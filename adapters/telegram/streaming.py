"""Showing an answer while it is generated: native drafts in private chats, throttled edits elsewhere, or nothing.

- Drafts (`sendMessageDraft`, Bot API 9.3+): one draft id per answer, with a Stop button, the first after
  FIRST_DRAFT_AFTER seconds (a quick answer is simply sent), then replaced at most every `edit_interval` seconds,
  and sent again unchanged after KEEPALIVE seconds (a draft left alone fades after 30 s). A draft is not a message:
  the final answer is sent as one. Where the Bot API refuses drafts (a 404 from a server without
  the method, a 400 for the chat), the answer falls back to edits, and the refusal is remembered.
- Edits: one message, edited at most every `edit_interval` seconds, as plain text; in groups no more often than
  every `group_interval` seconds (Telegram allows about 20 messages a minute per group). The first preview comes
  after one interval, so a quick answer is simply sent; the final edit comes as soon as the answer is complete.
- While a reasoning model only thinks, the preview says "thinking…".
Previews are best effort: a failed one is skipped and never stops the answer.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal, Protocol

import attrs
import structlog
from aiogram import Bot
from aiogram.exceptions import AiogramError, TelegramBadRequest, TelegramNotFound, TelegramRetryAfter
from aiogram.types import Chat

from adapters.telegram import replies
from adapters.telegram.delivery import TEXT_LIMIT, PreviewGone, cut, edit_text, send_outcome
from adapters.telegram.i18n import translated
from adapters.telegram.intake import Preview
from adapters.telegram.patience import best_effort
from adapters.telegram.render import utf16_len
from service.outcomes import Failed, Outcome

log = structlog.get_logger(__name__)

KEEPALIVE = 20.0
"""Seconds after which an unchanged draft is sent again, before Telegram lets it fade (30 s)."""
FIRST_DRAFT_AFTER = 0.4
"""Seconds before the first draft: an answer complete by then is simply sent, with no draft flashing past."""
HEARTBEAT = 0.25
"""How often a draft stream looks whether a draft is due though no new text came."""
PREVIEW_TIMEOUT = 5
"""Seconds a preview's Bot API call may take: previews are best effort, and must not hold up the answer."""
CURSOR = " ▌"


@attrs.frozen
class StreamStyle:
    """How answers are shown while they are generated (CONVO_STREAM and friends)."""

    mode: Literal["drafts", "edits", "off"] = "drafts"
    """Native drafts in private chats (edits elsewhere), edits everywhere, or nothing until the answer is done."""
    edit_interval: float = 1.2
    """Fewest seconds between two previews of one answer."""
    group_interval: float = 3.0
    """Fewest seconds between two streaming edits of one message in a group."""
    show_reasoning: bool = True
    """Whether a reasoning model's thoughts are shown above the answer."""


class DraftSupport:
    """Where the Bot API refused drafts, so that the bot does not ask again on every answer."""

    def __init__(self) -> None:
        self._nowhere = False
        self._chats: set[int] = set()

    def allowed(self, chat_id: int) -> bool:
        """Whether drafts are worth trying in this chat."""
        return not self._nowhere and chat_id not in self._chats

    def refused(self, chat_id: int, error: AiogramError) -> None:
        """Remember a refusal: of the method (a 404, or a 400 naming it) everywhere, of anything else in the chat."""
        message = str(getattr(error, "message", error)).lower()
        everywhere = isinstance(error, TelegramNotFound) or "method" in message
        if everywhere:
            self._nowhere = True
        else:
            self._chats.add(chat_id)
        log.info("drafts_refused", chat_id=None if everywhere else chat_id, reason=message[:200])


class LiveReply(Protocol):
    """What a handler streams an answer into, then finishes with the outcome."""

    async def update(self, text_so_far: str) -> None:
        """The whole answer so far (empty: the model thinks, with nothing to show yet)."""

    def alive(self) -> AbstractAsyncContextManager[None]:
        """Held while the answer is generated."""
        ...

    async def finish(self, outcome: Outcome) -> None:
        """Put the final outcome in front of the user."""


def draft_id_for(update_id: int) -> int:
    """A non-zero draft id, the same for every try of one update."""
    return update_id % (2**31 - 1) + 1


def live_reply(
    bot: Bot,
    chat: Chat,
    reply_to: int | None,
    style: StreamStyle,
    drafts: DraftSupport,
    *,
    draft_id: int,
    preview: Preview | None = None,
    thread: int | None = None,
) -> LiveReply:
    """The way this chat (or its forum topic `thread`) is shown an answer as it grows, by the style and what the
    Bot API allowed so far."""
    group = chat.type != "private"
    interval = math.inf if style.mode == "off" else style.edit_interval
    if group:
        interval = max(interval, style.group_interval)
    edits = EditedReply(bot, chat.id, reply_to, interval, preview, style.show_reasoning, thread)
    if style.mode == "drafts" and not group and drafts.allowed(chat.id):
        return DraftReply(bot, chat.id, reply_to, style, drafts, draft_id, edits, thread)
    return edits


def _preview_text(text_so_far: str, cursor: str = "") -> str:
    if not text_so_far.strip():
        return translated(replies.THINKING)
    return cut(text_so_far, TEXT_LIMIT - utf16_len(cursor)) + cursor


class DraftReply:
    """Streams an answer as a native draft with a Stop button; falls back to `edits` where drafts are refused.

    Drafts are sent from their own task, never from the model's stream: a slow or stalled Bot API call holds up
    nothing. While the answer is generated (`alive`), a heartbeat shows "thinking…" to a model that is silent at
    first (an o-series model reasoning), and sends the draft again before it fades.
    """

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        reply_to: int | None,
        style: StreamStyle,
        drafts: DraftSupport,
        draft_id: int,
        edits: EditedReply,
        thread: int | None = None,
    ) -> None:
        self._bot = bot
        self._thread = thread
        self._chat_id = chat_id
        self._reply_to = reply_to
        self._style = style
        self._drafts = drafts
        self._draft_id = draft_id
        self._edits = edits
        self._fallen_back = False
        self._latest = ""
        self._shown = ""
        self._next = time.monotonic() + min(FIRST_DRAFT_AFTER, style.edit_interval)
        self._sent_at = 0.0
        self._sending: asyncio.Task[None] | None = None

    async def update(self, text_so_far: str) -> None:
        """Take the answer so far; a draft of it goes out when one is due (without waiting for Telegram)."""
        self._latest = text_so_far
        if self._fallen_back:
            await self._edits.update(text_so_far)
        else:
            self._pump()

    @asynccontextmanager
    async def alive(self) -> AsyncIterator[None]:
        """While the answer is generated: the heartbeat; after it, no draft is sent any more."""
        beating = asyncio.create_task(self._beat())
        try:
            yield
        finally:
            beating.cancel()
            if self._sending is not None:
                self._sending.cancel()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            await self.update(self._latest)

    def _pump(self) -> None:
        """Start sending a draft if one is due and none is on its way."""
        if self._sending is not None and not self._sending.done():
            return
        now = time.monotonic()
        draft = _preview_text(self._latest)
        if now < self._next or (draft == self._shown and now - self._sent_at < KEEPALIVE):
            return
        self._next = now + self._style.edit_interval
        self._sending = asyncio.create_task(self._send(draft, now))

    async def _send(self, draft: str, now: float) -> None:
        try:
            with best_effort():
                await self._bot.send_message_draft(
                    self._chat_id,
                    self._draft_id,
                    message_thread_id=self._thread,
                    text=draft,
                    parse_mode=None,
                    can_stop=True,
                    request_timeout=PREVIEW_TIMEOUT,
                )
            self._shown, self._sent_at = draft, now
        except TelegramRetryAfter as flood:
            self._next = now + flood.retry_after
        except (TelegramNotFound, TelegramBadRequest) as refusal:
            self._drafts.refused(self._chat_id, refusal)
            self._fallen_back = True
        except AiogramError as error:
            log.debug("draft_skipped", reason=str(error).splitlines()[0][:200])

    async def finish(self, outcome: Outcome) -> None:
        """The final answer, sent as a message (a draft is only a preview and fades)."""
        if self._fallen_back:
            await self._edits.finish(outcome)
            return
        await send_outcome(
            self._bot,
            self._chat_id,
            outcome,
            reply_to=self._reply_to,
            show_reasoning=self._style.show_reasoning,
            thread=self._thread,
        )


class EditedReply:
    """Shows an answer while it is generated: one message, edited no more often than `interval` seconds.

    The first preview waits one interval too: an answer complete by then arrives as one message, with no preview
    to flicker past (and half the Bot API calls); a longer one is shown growing from then on. A preview is
    remembered (`preview.remember`) so that a process that dies mid-answer leaves nothing half-written: the next
    one edits it into the answer.
    """

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        reply_to: int | None,
        interval: float,
        preview: Preview | None = None,
        show_reasoning: bool = True,
        thread: int | None = None,
    ) -> None:
        self._bot = bot
        self._thread = thread
        self._chat_id = chat_id
        self._reply_to = reply_to
        self._interval = interval
        self._preview = preview
        self._show_reasoning = show_reasoning
        self._message_id: int | None = preview.message_id if preview is not None else None
        self._shown = ""
        self._last = time.monotonic()

    @property
    def message_id(self) -> int | None:
        """The message being edited, once one was sent."""
        return self._message_id

    @asynccontextmanager
    async def alive(self) -> AsyncIterator[None]:
        """Nothing to keep alive: an edited message stays."""
        yield

    async def update(self, text_so_far: str) -> None:
        """Called with the whole answer so far; shows it if enough time has passed since the last edit."""
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        preview = _preview_text(text_so_far, CURSOR)
        if preview == self._shown:
            return
        self._last = now
        try:
            with best_effort():
                if self._message_id is None:
                    sent = await self._bot.send_message(
                        self._chat_id,
                        preview,
                        message_thread_id=self._thread,
                        reply_to_message_id=self._reply_to,
                        allow_sending_without_reply=True,
                    )
                    self._message_id = sent.message_id
                    if self._preview is not None:
                        await self._preview.remember(sent.message_id)
                else:
                    await edit_text(
                        self._bot, self._chat_id, self._message_id, preview, html=False, request_timeout=PREVIEW_TIMEOUT
                    )
            self._shown = preview
        except TelegramRetryAfter as flood:
            self._last = now + flood.retry_after
        except PreviewGone:
            self._message_id = None
        except AiogramError as error:
            log.debug("stream_edit_skipped", reason=str(error).splitlines()[0][:200])

    async def finish(self, outcome: Outcome) -> None:
        """Replace the preview with the final answer, or with the failure reply."""
        thoughts = isinstance(outcome, Failed) and bool(outcome.reasoning) and self._show_reasoning
        if self._message_id is not None and isinstance(outcome, Failed) and not thoughts:
            text = replies.failure(outcome.kind, outcome.retry_after, detail=outcome.message)
            seen = self._shown.removesuffix(CURSOR).rstrip()
            # what the user watched grow stays on screen, marked as cut short
            if seen and seen != translated(replies.THINKING):
                text = cut(seen, TEXT_LIMIT - utf16_len(text) - 8) + "\n\n⚠️ " + text
            try:
                await edit_text(self._bot, self._chat_id, self._message_id, text, html=False)
                return
            except PreviewGone:
                pass
            await send_outcome(self._bot, self._chat_id, outcome, reply_to=self._reply_to, thread=self._thread)
            return
        await send_outcome(
            self._bot,
            self._chat_id,
            outcome,
            reply_to=self._reply_to,
            first=self._message_id,
            show_reasoning=self._show_reasoning,
            thread=self._thread,
        )
