"""Flood control modelled on the limits Telegram documents in its bot FAQ.

Telegram asks bots to stay under about one message per second in a chat,
20 messages per minute in a group and about 30 messages per second overall,
and answers excess with ``429 Too Many Requests: retry after N``.  The real
server tolerates short bursts, so every limit here is a token bucket: it holds
``burst`` tokens, refills at the sustained rate, and a request that finds an
empty bucket is refused with ``retry_after`` = seconds until a token is back
(rounded up, at least 1), without consuming anything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs

from .errors import too_many_requests
from .models import Chat


@attrs.define
class FloodLimits:
    """Flood-control settings; ``FloodLimits()`` is the default used by the fake server.

    Defaults: 1 message/s per chat with a burst of 10, 20 messages/min per
    group with a burst of 20, 30 messages/s globally with a burst of 30.
    Sends always count; edits count too unless ``count_edits`` is False;
    ``sendMessageDraft`` previews count only with ``count_drafts``.
    """

    enabled: bool = True
    chat_per_second: float = 1.0
    chat_burst: int = 10
    group_per_minute: float = 20.0
    group_burst: int = 20
    global_per_second: float = 30.0
    global_burst: int = 30
    count_edits: bool = True
    count_drafts: bool = False

    @classmethod
    def disabled(cls) -> FloodLimits:
        """No flood control at all (benchmarks)."""
        return cls(enabled=False)

    @classmethod
    def strict(cls) -> FloodLimits:
        """Telegram's numbers with no burst allowance: the 2nd message in a second fails."""
        return cls(chat_burst=1, group_burst=1, global_burst=1)


class TokenBucket:
    """Classic token bucket: ``capacity`` tokens, ``rate`` tokens per second."""

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self.rate = rate
        self.capacity = max(1, capacity)
        self.tokens = float(self.capacity)
        self.updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.capacity), self.tokens + elapsed * self.rate)
        self.updated = now

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 if one is available now)."""
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        if self.rate <= 0:
            return math.inf
        return (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        """Consume one token (call :meth:`wait_time` first)."""
        self._refill(now)
        self.tokens -= 1.0


class FloodControl:
    """Per-chat, per-group and global buckets; raises the real 429 error when exceeded."""

    def __init__(self, limits: FloodLimits | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or FloodLimits()
        self.clock = clock
        self._buckets: dict[tuple[str, int], TokenBucket] = {}

    def configure(self, limits: FloodLimits) -> None:
        """Replace the limits and forget all bucket state."""
        self.limits = limits
        self.reset()

    def reset(self) -> None:
        """Refill every bucket."""
        self._buckets.clear()

    def _bucket(self, scope: str, key: int, rate: float, burst: int, now: float) -> TokenBucket:
        bucket = self._buckets.get((scope, key))
        if bucket is None or bucket.rate != rate or bucket.capacity != max(1, burst):
            bucket = TokenBucket(rate, burst, now)
            self._buckets[(scope, key)] = bucket
        return bucket

    def _buckets_for(self, chat: Chat, now: float) -> list[TokenBucket]:
        limits = self.limits
        buckets = [
            self._bucket("global", 0, limits.global_per_second, limits.global_burst, now),
            self._bucket("chat", chat.id, limits.chat_per_second, limits.chat_burst, now),
        ]
        if chat.is_group:
            buckets.append(self._bucket("group", chat.id, limits.group_per_minute / 60.0, limits.group_burst, now))
        return buckets

    def check(self, chat: Chat, *, is_edit: bool = False, is_draft: bool = False) -> None:
        """Account one outgoing message (or edit, or draft) to ``chat`` or raise ``429 retry after N``."""
        if not self.limits.enabled or (is_edit and not self.limits.count_edits):
            return
        if is_draft and not self.limits.count_drafts:
            return
        now = self.clock()
        buckets = self._buckets_for(chat, now)
        wait = max(bucket.wait_time(now) for bucket in buckets)
        if wait > 0:
            raise too_many_requests(math.ceil(wait) if math.isfinite(wait) else 3600)
        for bucket in buckets:
            bucket.take(now)
