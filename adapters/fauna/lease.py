"""The poller lease on Fauna: a document per bot in `leases` naming its holder and when it expires.

Taking, renewing and releasing are one FQL query (one transaction) each, and expiry is judged by the server's
clock (`Now()`), never this process's. A lease is free when it is absent, expired or already ours.

A process killed with SIGKILL cannot release its lease; it stays until it expires, one `ttl` after its last
renewal. So a poller that finds the lease held waits it out, but only once: if the holder lets it expire (it died),
the lease is taken over; if the holder renews it, or it would outlast one `ttl`, LeaseTaken. A restart right after
a SIGKILL therefore waits up to one `ttl` (15 s by default), and a second live poller is refused after about a
third of one (once it has seen the holder renew).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import structlog

from adapters.fauna import schema
from adapters.fauna.connection import error_code
from adapters.fauna.driver import errors, q
from domain.ports import LeaseTaken, StoreError, StoreUnavailable

log = structlog.get_logger(__name__)

LEASE_TTL = 15.0
"""Seconds a lease lasts unless renewed; it is renewed every third of that."""
SLACK = 0.05
"""Seconds added to a wait for a lease to expire, so that the next try finds it expired."""
RACES = 3
"""How often a take that lost the race to create the lease document is tried again."""

Query = Callable[[Callable[[], Any]], Awaitable[Any]]
"""Runs one FQL query off the event loop (`FaunaEventStore.query`)."""


def _lease_ref(bot: str) -> Any:
    """The bot's lease document, or null when there is none."""
    return q.select(["data", 0], q.paginate(q.match(q.index(schema.LEASES_BY_BOT), bot)), None)


def _take(bot: str, holder: str, ttl_ms: int) -> Any:
    """FQL: hold the lease until now + ttl if it is absent, expired or ours; else answer who holds it until when
    and the milliseconds left. Answers `{held: true}` or `{held: false, holder, expires, remaining_ms}`."""
    data = {"bot": bot, "holder": holder, "expires": q.time_add(q.now(), ttl_ms, "milliseconds")}
    write = q.do(q.update(q.var("ref"), {"data": data}), {"held": True})
    current = q.select(["data", "holder"], q.var("lease"))
    expires = q.select(["data", "expires"], q.var("lease"))
    in_the_way = {
        "held": False,
        "holder": current,
        "expires": expires,
        "remaining_ms": q.time_diff(q.now(), expires, "milliseconds"),
    }
    return q.let(
        {"ref": _lease_ref(bot)},
        q.if_(
            q.equals(q.var("ref"), None),
            q.do(q.create(q.collection(schema.LEASES), {"data": data}), {"held": True}),
            q.let(
                {"lease": q.get(q.var("ref"))},
                q.if_(q.equals(current, holder), write, q.if_(q.lt(q.now(), expires), in_the_way, write)),
            ),
        ),
    )


def _release(bot: str, holder: str) -> Any:
    """FQL: delete the bot's lease if it is still ours; answers whether it was."""
    return q.let(
        {"ref": _lease_ref(bot)},
        q.if_(
            q.equals(q.var("ref"), None),
            False,
            q.if_(
                q.equals(q.select(["data", "holder"], q.get(q.var("ref"))), holder),
                q.do(q.delete(q.var("ref")), True),
                False,
            ),
        ),
    )


@attrs.frozen
class Holding:
    """Someone else's live lease, as one take attempt found it."""

    holder: str
    """Who holds it (host:pid:random)."""
    expires: Any
    """When it expires (a Fauna time), by the server's clock; it changes when the holder renews."""
    remaining: float
    """Seconds until it expires, by the server's clock."""


class FaunaLease:
    """One bot's poller lease, for one holder (made unique per instance)."""

    def __init__(self, query: Query, bot: str, *, where: str, ttl: float = LEASE_TTL) -> None:
        """`where` names the store in messages (`Fauna at <endpoint>`); `ttl` is the lease's life in seconds."""
        if ttl <= 0:
            raise ValueError(f"the lease ttl must be positive, got {ttl}")
        self._query = query
        self._bot = bot
        self._where = where
        self._ttl = ttl
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Take the lease (see `take`), renew it in the background while the body runs, release it after."""
        await self.take()
        renewal = asyncio.create_task(self.keep(), name=f"fauna-lease-{self._bot}")
        try:
            yield
        finally:
            renewal.cancel()
            await asyncio.wait([renewal])
            await self.release()
            if not renewal.cancelled():
                renewal.result()  # a renewal that crashed (a bug) is raised here rather than lost

    async def take(self) -> None:
        """Hold the lease, waiting out someone else's once if it expires within one ttl without being renewed.

        LeaseTaken when its holder renews it, or it would outlast one ttl; StoreUnavailable if Fauna fails.
        """
        first = await self.try_take()
        if first is None:
            return
        if first.remaining > self._ttl:
            raise self._taken(first)
        log.info("fauna_poller_lease_waiting", bot=self._bot, holder=first.holder, expires_in=round(first.remaining, 3))
        found: Holding | None = first
        while found is not None:
            if (found.holder, found.expires) != (first.holder, first.expires):
                raise self._taken(found)
            await asyncio.sleep(min(found.remaining, self._ttl / 3) + SLACK)
            found = await self.try_take()

    async def try_take(self) -> Holding | None:
        """One attempt: None once the lease is ours (taken or renewed), else the live lease in the way."""
        build = partial(_take, self._bot, self.holder, max(1, round(self._ttl * 1000)))
        for _ in range(RACES):
            try:
                answer = await self._query(build)
            except errors.BadRequest as error:
                if error_code(error) != "instance not unique":
                    raise
                continue  # another process created the document first: the next attempt reads it
            if answer["held"]:
                return None
            return Holding(answer["holder"], answer["expires"], answer["remaining_ms"] / 1000)
        raise StoreUnavailable(f"{self._where} kept refusing the lease document of bot {self._bot}")

    async def keep(self) -> None:
        """Renew the lease every third of its ttl, until cancelled.

        A failed renewal is logged (`fauna_poller_lease_renewal_failed`) and tried again at the next turn. A lease
        found taken by another process (this one could not renew it in time) is logged once as an error
        (`fauna_poller_lease_lost`), and this process goes on serving: Telegram answers one long poll of a bot at a
        time and the inbox keeps an update from being answered twice, so the cost is wasted polls, while stopping
        could leave the bot unserved. Each later turn tries to take the lease back (`fauna_poller_lease_regained`).
        """
        lost = False
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                found = await self.try_take()
            except StoreError as error:
                log.warning("fauna_poller_lease_renewal_failed", bot=self._bot, error=str(error))
                continue
            if found is not None and not lost:
                log.error("fauna_poller_lease_lost", bot=self._bot, holder=self.holder, taken_by=found.holder)
            elif found is None and lost:
                log.info("fauna_poller_lease_regained", bot=self._bot, holder=self.holder)
            lost = found is not None

    async def release(self) -> None:
        """Delete the lease if it is still ours; best effort (a failure is logged, and the lease then expires)."""
        try:
            await self._query(partial(_release, self._bot, self.holder))
        except StoreError as error:
            log.warning("fauna_poller_lease_not_released", bot=self._bot, error=str(error))

    def _taken(self, found: Holding) -> LeaseTaken:
        return LeaseTaken(f"{self._where}: another process polls for this bot (lease held by {found.holder})")
