"""A per-user token bucket: bursts are fine, floods are slowed, and memory stays bounded."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

import attrs


@attrs.define
class _Bucket:
    tokens: float
    stamp: float
    warned: bool = False


class RateLimiter:
    """Allows `per_minute` messages a minute per key, with bursts up to `burst`."""

    def __init__(
        self, per_minute: float, burst: int, *, max_keys: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()

    def check(self, key: int) -> float:
        """0 if the key may go now (and spend a token); otherwise the seconds until it may."""
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * self._rate)
        bucket.stamp = now
        self._buckets[key] = bucket
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.warned = False
            return 0.0
        return (1 - bucket.tokens) / self._rate

    def first_refusal(self, key: int) -> bool:
        """True the first time a key is refused in a row, so a flood gets one reply, not fifty."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.warned:
            return False
        bucket.warned = True
        return True
