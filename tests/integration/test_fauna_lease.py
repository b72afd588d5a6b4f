"""The Fauna poller lease beyond the contract (tests/contract/test_poller_lease_contract.py): expiry by the server's
clock, waiting out a dead holder, renewal, losing the lease, releasing only one's own; and the double's time
functions the lease relies on (Now, TimeAdd, TimeDiff), against Fauna v4's documented semantics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.fauna import schema
from adapters.fauna.driver import FaunaTime, errors, make_client, q
from adapters.fauna.lease import FaunaLease, Holding
from adapters.fauna.store import FaunaEventStore
from domain.ports import LeaseTaken
from tests.doubles.fauna import FaunaDouble

TTL = 0.6


@pytest.fixture
async def store(double: FaunaDouble) -> AsyncIterator[FaunaEventStore]:
    opened = FaunaEventStore(double.secret, double.endpoint, timeout=5, lease_ttl=TTL)
    await opened.init_schema()
    yield opened
    await opened.close()


def lease(store: FaunaEventStore, ttl: float = TTL, bot: str = "1") -> FaunaLease:
    """Another would-be holder of the store's lease of `bot` (as a second process would be)."""
    return FaunaLease(store.query, bot, where="Fauna", ttl=ttl)


def lease_documents(double: FaunaDouble) -> list[dict[str, Any]]:
    return [document.data for document in double.database.documents[schema.LEASES].values()]


async def logged(logs: list[dict[str, Any]], event: str, within: float = 5.0) -> None:
    """Wait until `event` is among the captured log entries."""
    async with asyncio.timeout(within):
        while True:
            if event in [entry["event"] for entry in logs]:
                return
            await asyncio.sleep(0.01)


async def renewal_turns(double: FaunaDouble, turns: int, within: float = 5.0) -> None:
    """Wait until the lease has queried Fauna `turns` more times (one query a renewal turn): the turn before the
    last has then finished, logging included."""
    wanted = double.queries + turns
    async with asyncio.timeout(within):
        while True:
            if double.queries >= wanted:
                return
            await asyncio.sleep(0.01)


def lease_ref(bot: str) -> Any:
    return q.select(["data", 0], q.paginate(q.match(q.index(schema.LEASES_BY_BOT), bot)))


def set_holder(bot: str, holder: str) -> Any:
    """FQL: give the bot's lease to `holder` for an hour (an intruder the holder did not expect)."""
    return q.update(lease_ref(bot), {"data": {"holder": holder, "expires": q.time_add(q.now(), 1, "hour")}})


def drop_lease(bot: str) -> Any:
    """FQL: delete the bot's lease, whoever holds it."""
    return q.delete(lease_ref(bot))


# The double's time functions


@pytest.fixture
def client(double: FaunaDouble) -> Iterator[Any]:
    host, port = double.endpoint.removeprefix("http://").split(":")
    opened = make_client(double.secret, "http", host, int(port), timeout=10, pool_size=2)
    yield opened
    opened.session.close()


def test_now_is_the_transaction_time_at_every_call_of_one_query(client: Any) -> None:
    before = datetime.now(UTC)
    first, second = client.query([q.now(), q.now()])
    later = client.query(q.now())

    assert isinstance(first, FaunaTime)
    assert first == second
    assert before - timedelta(seconds=1) < first.to_datetime() < later.to_datetime()


def test_time_add_and_time_diff_count_units_between_timestamps(client: Any) -> None:
    start, finish = FaunaTime("1970-01-01T00:00:00Z"), FaunaTime("2020-07-06T12:34:56.789Z")
    elapsed = datetime(2020, 7, 6, 12, 34, 56, 789_000, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    units = ("days", "half days", "hours", "minute", "seconds", "milliseconds", "microseconds")
    lengths = [timedelta(hours=hours) for hours in (24, 12, 1)]
    lengths += [timedelta(minutes=1), timedelta(seconds=1), timedelta(milliseconds=1), timedelta(microseconds=1)]

    assert client.query([q.time_diff(start, finish, unit) for unit in units]) == [elapsed // n for n in lengths]
    assert client.query(q.time_diff(start, finish, "nanoseconds")) == elapsed // timedelta(microseconds=1) * 1000
    assert client.query(q.time_diff(finish, start, "days")) == -(elapsed // timedelta(days=1))
    assert client.query(q.time_add(start, 1500, "milliseconds")) == FaunaTime("1970-01-01T00:00:01.500000Z")
    assert client.query(q.time_add(finish, -2, "half days")) == FaunaTime("2020-07-05T12:34:56.789000Z")
    assert client.query(q.lt(q.now(), q.time_add(q.now(), 1, "microsecond"))) is True
    for wrong in (q.time_add(start, 1, "fortnights"), q.time_add(start, 1.5, "seconds"), q.time_diff(1, 2, "days")):
        with pytest.raises(errors.BadRequest):
            client.query(wrong)


# The lease


async def test_the_collection_keeps_no_history_and_the_lease_is_gone_after_release(
    double: FaunaDouble, store: FaunaEventStore
) -> None:
    async with store.poller_lease("1"):
        [held] = lease_documents(double)
        assert held["bot"] == "1"
    assert lease_documents(double) == []
    assert double.database.collections[schema.LEASES]["history_days"] == 0


async def test_renewal_keeps_the_lease_past_its_ttl(store: FaunaEventStore) -> None:
    async with store.poller_lease("1"):
        await asyncio.sleep(TTL * 2)
        found = await lease(store).try_take()
    assert isinstance(found, Holding)
    assert 0 < found.remaining <= TTL


async def test_a_dead_holders_lease_is_waited_out_then_taken_over(store: FaunaEventStore) -> None:
    assert await lease(store).try_take() is None  # then its holder dies: no renewal, no release
    started = time.monotonic()
    with capture_logs() as logs:
        async with store.poller_lease("1"):
            waited = time.monotonic() - started
    assert 0.2 < waited < TTL + 0.5
    assert [entry["event"] for entry in logs] == ["fauna_poller_lease_waiting"]


async def test_a_lease_that_would_outlast_one_ttl_is_refused_at_once(store: FaunaEventStore) -> None:
    longer = lease(store, ttl=30)
    assert await longer.try_take() is None
    with (
        capture_logs() as logs,
        pytest.raises(LeaseTaken, match=f"^Fauna at {store.endpoint}: another process polls for this bot") as taken,
    ):
        async with store.poller_lease("1"):
            pass
    assert logs == []  # refused at its first look, without waiting
    assert longer.holder in str(taken.value)
    assert "\n" not in str(taken.value)


async def test_a_release_leaves_a_lease_that_is_no_longer_ones_own(double: FaunaDouble, store: FaunaEventStore) -> None:
    early = lease(store, ttl=0.1)
    assert await early.try_take() is None
    await asyncio.sleep(0.2)
    late = lease(store)
    assert await late.try_take() is None  # expired: taken over

    await early.release()

    [kept] = lease_documents(double)
    assert kept["holder"] == late.holder


async def test_a_lost_lease_is_logged_once_then_regained_and_the_holder_serves_on(
    double: FaunaDouble, store: FaunaEventStore
) -> None:
    with capture_logs() as logs:
        async with store.poller_lease("1"):
            await store.query(partial(set_holder, "1", "intruder"))
            await logged(logs, "fauna_poller_lease_lost")
            await renewal_turns(double, 2)  # a later renewal finds it taken too, and says nothing more
            lost = [entry for entry in logs if entry["event"] == "fauna_poller_lease_lost"]
            assert [(e["log_level"], e["taken_by"]) for e in lost] == [("error", "intruder")]
            await store.query(partial(drop_lease, "1"))  # the intruder left
            await logged(logs, "fauna_poller_lease_regained")
    assert lease_documents(double) == []


async def test_the_intruders_lease_survives_the_holders_exit(double: FaunaDouble, store: FaunaEventStore) -> None:
    async with store.poller_lease("1"):
        await store.query(partial(set_holder, "1", "intruder"))
    assert [document["holder"] for document in lease_documents(double)] == ["intruder"]


async def test_a_failed_renewal_is_logged_and_the_next_one_renews(double: FaunaDouble, store: FaunaEventStore) -> None:
    with capture_logs() as logs:
        async with store.poller_lease("1"):
            double.fail_next("unavailable", "on a break")
            await logged(logs, "fauna_poller_lease_renewal_failed")
            [before] = lease_documents(double)
            await renewal_turns(double, 2)
            [after] = lease_documents(double)
            assert after["holder"] == before["holder"]
            assert after["expires"].moment > before["expires"].moment  # renewed by the next turn
            assert isinstance(await lease(store).try_take(), Holding)
    events = [entry["event"] for entry in logs]
    assert events == ["fauna_poller_lease_renewal_failed"]


async def test_taking_the_lease_gets_through_contention(double: FaunaDouble, store: FaunaEventStore) -> None:
    double.contend(times=2, collection=schema.LEASES)
    async with store.poller_lease("1"):
        assert double.contended == 2
        assert len(lease_documents(double)) == 1
