"""An answer generated in front of the user: shown as it grows, stoppable, then finished with its outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender

from adapters.telegram.generations import Generations
from adapters.telegram.identity import thread_of_message
from adapters.telegram.intake import Preview
from adapters.telegram.streaming import DraftSupport, LiveReply, StreamStyle, draft_id_for, live_reply
from domain.ports import StopSignal, TextSoFar
from service.outcomes import Outcome

INDICATOR_AFTER = 0.25
"""Seconds before "typing…" (or "sending photo…") is shown: a reply quicker than that needs no indicator."""

Generate = Callable[[TextSoFar, StopSignal], Awaitable[Outcome | None]]
"""A use case that makes an outcome, streaming its text and stopping when told."""


class LiveAnswers:
    """Runs use cases whose answer the user watches: the preview, the Stop button and /cancel, the indicator."""

    def __init__(self, style: StreamStyle, drafts: DraftSupport | None = None) -> None:
        self.style = style
        self.drafts = drafts or DraftSupport()
        self.generations = Generations()

    async def run(
        self,
        bot: Bot,
        message: Message,
        update_id: int,
        generate: Generate,
        *,
        preview: Preview | None = None,
        drawing: bool = False,
    ) -> tuple[Outcome | None, LiveReply]:
        """The outcome `generate` makes (None: it had nothing to do), and the reply that must finish it."""
        draft_id = draft_id_for(update_id)
        thread = thread_of_message(message)
        reply = live_reply(
            bot,
            message.chat,
            message.message_id,
            self.style,
            self.drafts,
            draft_id=draft_id,
            preview=preview,
            thread=thread,
        )
        asker = message.from_user.id if message.from_user is not None else 0
        indicator = ChatActionSender.upload_photo if drawing else ChatActionSender.typing
        shown = indicator(chat_id=message.chat.id, bot=bot, initial_sleep=INDICATOR_AFTER, message_thread_id=thread)
        with self.generations.running((message.chat.id, thread), draft_id, asker) as stop:
            async with shown, reply.alive():
                outcome = await generate(reply.update, stop)
        return outcome, reply
