"""Another worker's unfinished request: left to it while it may still be at work, finished here after that.

A request pending longer than `takeover_after` (or one this process itself gave up) is taken to be a dead
worker's: its outcome is made (or read from the log) and delivered through the outbox. Before recording a new
request, a stream waits until no other update's request is unfinished, so each chat's requests stay in order.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime

from domain.conversation import Pending, State
from service.answering import Answering
from service.deliveries import Deliveries
from service.loading import find_event
from service.outcomes import Outcome
from service.queries import unfinished
from service.state_cache import StateCache

FINISHED_MEMORY = 10_000
"""Updates this process remembers having finished (a bounded cache, not state)."""
POLL_SECONDS = 0.25
"""How often to look again at a request another worker may still be answering."""


class Takeover:
    """Waits for, or finishes, requests other workers left unfinished."""

    def __init__(
        self,
        states: StateCache,
        answering: Answering,
        deliveries: Deliveries,
        *,
        takeover_after: float,
        now: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._states = states
        self._answering = answering
        self._deliveries = deliveries
        self.takeover_after = takeover_after
        self._now = now
        self._sleep = sleep
        self._finished_here: OrderedDict[str, None] = OrderedDict()

    def finished_here(self, causation_id: str) -> None:
        """Remember (boundedly) that this process is done with an update, so its leftovers need no grace."""
        self._finished_here[causation_id] = None
        self._finished_here.move_to_end(causation_id)
        while len(self._finished_here) > FINISHED_MEMORY:
            self._finished_here.popitem(last=False)

    async def state_when_free(self, stream: str, causation_id: str) -> State:
        """The state once no other update's request is unfinished: waits for a live worker, finishes a dead one's."""
        while True:
            state = await self._states.load(stream)
            left = unfinished(state)
            if left is None or left.causation_id == causation_id:
                return state
            wait = self._grace_left(left)
            if wait > 0:
                await self._sleep(min(wait, POLL_SECONDS))
            else:
                await self.finish(stream, left)

    async def finish_when_due(self, stream: str) -> Outcome | None:
        """Wait out the grace of the stream's unfinished request, then finish it; None if nothing is unfinished."""
        state = await self._states.load(stream)
        while (left := unfinished(state)) is not None and self._grace_left(left) > 0:
            await self._sleep(min(self._grace_left(left), POLL_SECONDS * 4))
            state = await self._states.load(stream)
        left = unfinished(state)
        return None if left is None else await self.finish(stream, left)

    async def finish(self, stream: str, left: Pending) -> Outcome | None:
        """Make (or read) the outcome of an unfinished request and deliver it through the outbox."""
        asked = await find_event(self._states.store, stream, left.version)
        if asked is None:
            return None
        outcome = await self._answering.outcome(asked, None)
        await self._deliveries.send_through_outbox(stream, outcome)
        return outcome

    def _grace_left(self, left: Pending) -> float:
        """Seconds to leave a request to the worker that may still be on it; none if this process gave it up."""
        if left.causation_id in self._finished_here:
            return 0.0
        age = (self._now() - left.recorded_at).total_seconds()
        return self.takeover_after - age
