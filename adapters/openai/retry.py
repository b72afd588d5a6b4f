"""Retrying a model call: a bounded number of attempts within a bounded total time, then a typed ModelFailure.

Waits between attempts are exponential backoff with full jitter (a uniform draw in [0, min(max_delay,
base_delay * 2**n))), unless the server said how long to wait (`retry-after-ms`, `retry-after`), which is honoured
as long as it fits in the time left; when it does not, the call fails at once with that wait as `retry_after`.
Only failures `errors.classify` calls retryable are retried (429 but not insufficient_quota, 5xx, 408/409,
timeouts, connection errors and cut streams, malformed bodies); everything else fails on the first attempt.
"""

from __future__ import annotations

import asyncio
import random as random_module
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import attrs
import structlog

from adapters.openai.errors import CallerError, Verdict, classify
from domain.ports import ModelFailure

T = TypeVar("T")

Attempt = Callable[[float], Awaitable[T]]
"""One try at the call; it gets the seconds left of the total budget and must not run longer."""

log = structlog.get_logger(__name__)


@attrs.frozen
class RetryPolicy:
    """How often and how long a model call is tried before it fails for good."""

    attempts: int = 4
    """Most attempts, the first included."""
    total_seconds: float = 60.0
    """Most seconds for all attempts and waits together."""
    base_delay: float = 0.5
    """Backoff ceiling before the first retry; it doubles for each further retry."""
    max_delay: float = 20.0
    """Most seconds of backoff between two attempts (a server's retry-after may ask for more)."""
    random: Callable[[], float] = attrs.field(default=random_module.random, repr=False, eq=False)
    """Uniform draws in [0, 1) for the jitter."""
    sleep: Callable[[float], Awaitable[None]] = attrs.field(default=asyncio.sleep, repr=False, eq=False)
    """Waits between attempts."""
    clock: Callable[[], float] = attrs.field(default=time.monotonic, repr=False, eq=False)
    """Monotonic seconds, for the total budget."""

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1 or not self.total_seconds > 0:
            raise ValueError("a retry policy needs at least one attempt and some time")
        if not (self.base_delay >= 0 and self.max_delay >= 0):
            raise ValueError("retry delays must not be negative")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry), with full jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return self.random() * ceiling

    def deadline(self) -> float:
        """The clock reading by which a call started now must be over."""
        return self.clock() + self.total_seconds

    async def call(
        self,
        attempt: Attempt[T],
        *,
        operation: str,
        secrets: Iterable[str] = (),
        deadline: float | None = None,
    ) -> T:
        """The first successful result of `attempt`; ModelFailure once no retry is allowed or left.

        `deadline` (from `self.deadline()`) lets several calls share one total budget. Exceptions the caller's
        callbacks raise (wrapped in CallerError) pass through unchanged.
        """
        secrets = tuple(secrets)
        end = self.deadline() if deadline is None else deadline
        for number in range(1, self.attempts + 1):
            left = end - self.clock()
            if left <= 0:
                raise ModelFailure("timeout", f"{operation}: no time left for attempt {number}")
            try:
                return await attempt(left)
            except CallerError as wrapped:
                raise wrapped.error from None
            except Exception as error:  # every failure is judged, then re-raised as a ModelFailure
                verdict = classify(error, secrets)
                wait = self._wait(verdict, number, end - self.clock())
                if wait is None:
                    # not chained: the client's exception holds the request (Authorization header included)
                    # and the server's raw message, which must not reach a traceback in a log
                    raise self._give_up(verdict, operation, number, error) from None
                log.warning(
                    "model_retry",
                    operation=operation,
                    attempt=number,
                    kind=verdict.kind,
                    reason=verdict.message,
                    wait_s=round(wait, 3),
                )
                await self.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _wait(self, verdict: Verdict, number: int, left: float) -> float | None:
        """Seconds to wait before the next attempt, or None to stop now."""
        if not verdict.retryable or number >= self.attempts:
            return None
        wait = verdict.retry_after if verdict.retry_after is not None else self.backoff(number)
        return wait if wait < left else None

    def _give_up(self, verdict: Verdict, operation: str, number: int, error: Exception) -> ModelFailure:
        log.warning(
            "model_failed",
            operation=operation,
            attempts=number,
            kind=verdict.kind,
            reason=verdict.message,
            error=type(error).__name__,
            retry_after=verdict.retry_after,
        )
        suffix = f" (after {number} attempts)" if number > 1 else ""
        return verdict.failure(suffix)
