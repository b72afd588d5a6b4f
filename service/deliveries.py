"""Delivery as the log sees it: an outcome is owed until the front end has sent it, and then recorded as sent
(`ReplyDelivered`) or as refused for good (`DeliveryFailed`). The record is written only after the send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from domain.commands import FailDelivery, MarkDelivered
from service.outcomes import Answered, Outbox, Outcome, Undeliverable
from service.recording import record
from service.state_cache import StateCache


class Deliveries:
    """Sends owed outcomes and records what became of them."""

    def __init__(self, states: StateCache, outbox: Outbox | None) -> None:
        self._states = states
        self._outbox = outbox

    @property
    def outbox(self) -> Outbox | None:
        """Sends outcomes nobody is waiting for (recovered ones); None for a front end that shows them itself."""
        return self._outbox

    async def send(self, stream: str, outcome: Outcome, send: Callable[[], Awaitable[None]]) -> None:
        """Send an outcome the log says is owed, then record what became of it; nothing if it is not owed."""
        command = await _sent(outcome, send)
        if command is not None:
            await self.record(stream, command)

    async def send_through_outbox(self, stream: str, outcome: Outcome) -> None:
        """`send` through the outbox, for an outcome no handler is waiting to show."""
        outbox = self._outbox
        known = self._states.last_known(stream)
        language = known.language if known is not None else None
        await self.send(
            stream,
            outcome,
            lambda: outbox.deliver(stream, outcome, language) if outbox is not None else _shown_by_caller(),
        )

    async def record(self, stream: str, command: MarkDelivered | FailDelivery) -> None:
        """Record a delivery (once: a repeat decides nothing)."""
        await record(self._states, stream, command, f"delivered/{command.request_version}")


async def _sent(outcome: Outcome, send: Callable[[], Awaitable[None]]) -> MarkDelivered | FailDelivery | None:
    """Send an outcome the log says is owed; the command that records what became of it (None: nothing owed)."""
    if outcome.delivered:
        return None
    try:
        await send()
    except Undeliverable as refusal:
        return FailDelivery(request_version=request_version(outcome), reason=str(refusal))
    return MarkDelivered(request_version=request_version(outcome))


async def _shown_by_caller() -> None:
    """A front end without an outbox (the terminal chat) shows recovered outcomes itself."""


def request_version(outcome: Outcome) -> int:
    """The version of the request an outcome answers."""
    return outcome.question_version if isinstance(outcome, Answered) else outcome.request_version
