"""What every handler needs: delivering an outcome once, and outcome fields for the log line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from adapters.telegram.delivery import refusals_are_final
from service.conversations import ConversationService
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


def said(outcome: str) -> None:
    """Records a simple outcome (e.g. `mode_chat`, `reset`) for the log line."""
    structlog.contextvars.bind_contextvars(outcome=outcome)
