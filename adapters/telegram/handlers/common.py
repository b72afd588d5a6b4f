"""What every handler needs: answering live, delivering an outcome once, and outcome fields for the log line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiogram import Bot
from aiogram.types import Chat, Message, Update, User

from adapters.telegram.admins import Admins
from adapters.telegram.delivery import refusals_are_final
from adapters.telegram.intake import Preview
from adapters.telegram.live import Generate, LiveAnswers
from service.conversations import ConversationService, Request
from service.outcomes import Answered, Drawn, Failed, Outcome


def log_outcome(outcome: Outcome) -> None:
    """Adds the outcome's model, tokens and latency to the update's canonical log line."""
    match outcome:
        case Answered():
            structlog.contextvars.bind_contextvars(
                outcome="answered_again" if outcome.replayed else "answered",
                model=outcome.model,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                model_ms=outcome.latency_ms,
            )
        case Drawn():
            structlog.contextvars.bind_contextvars(outcome="drawn_again" if outcome.replayed else "drawn")
        case Failed():
            structlog.contextvars.bind_contextvars(outcome=f"failed_{outcome.kind}")


async def deliver(
    service: ConversationService, stream: str, outcome: Outcome, send: Callable[[], Awaitable[None]]
) -> None:
    """Send an outcome unless the log says the user has it already; then record whether it was sent."""
    if outcome.delivered:
        said("already_delivered")
        return
    await service.deliver(stream, outcome, lambda: refusals_are_final(send))


async def answer_live(
    message: Message,
    update: Update,
    request: Request,
    bot: Bot,
    service: ConversationService,
    live: LiveAnswers,
    generate: Generate,
    preview: Preview | None,
    *,
    drawing: bool = False,
) -> Outcome | None:
    """Run a use case that may answer, streamed live, and deliver its outcome once; None when it had none."""
    outcome, reply = await live.run(bot, message, update.update_id, generate, preview=preview, drawing=drawing)
    if outcome is None:
        return None
    log_outcome(outcome)
    await deliver(service, request.stream, outcome, lambda: reply.finish(outcome))
    return outcome


async def may_change(chat: Chat, user: User | None, bot: Bot, admins: Admins) -> bool:
    """Whether this user may change the chat's settings (anyone in a private chat, admins in groups); a refusal is
    noted on the log line."""
    allowed = user is not None and await admins.may_change(bot, chat, user.id)
    if not allowed:
        said("admins_only")
    return allowed


def said(outcome: str) -> None:
    """Records a simple outcome (e.g. `mode_chat`, `reset`) for the log line."""
    structlog.contextvars.bind_contextvars(outcome=outcome)
