"""The poller lease contract: every store that can be shared by processes (sqlite, postgres, fauna) keeps one poller
per bot, hands the lease on once it is released, and does not lock a restarted poller out for long after its holder
was killed. The memory store is left out: it lives in one process and grants the lease always.

Each test opens the store twice, as two processes would (two lock files, two connections, two lease holders).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from domain.ports import EventStore, LeaseTaken
from tests.contract.backends import fresh_schema, postgres_url, require_postgres
from tests.contract.lease_holder import Spec, build
from tests.doubles.fauna import FaunaDouble

LEASE_TTL = 1.0
"""The Fauna lease's ttl in these tests (seconds): a dead holder is waited out for at most this long."""
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "fauna"])
async def spec(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Spec]:
    """Where a fresh store of each shareable kind lives, as `lease_holder.build` takes it."""
    if request.param == "sqlite":
        yield {"kind": "sqlite", "path": str(tmp_path / "events.db")}
    elif request.param == "postgres":
        require_postgres()
        async with fresh_schema() as schema:
            yield {"kind": "postgres", "url": postgres_url(), "schema": schema}
    else:
        double = FaunaDouble()
        await asyncio.to_thread(double.start)
        try:
            yield {"kind": "fauna", "secret": double.secret, "endpoint": double.endpoint, "lease_ttl": LEASE_TTL}
        finally:
            await asyncio.to_thread(double.stop)


@asynccontextmanager
async def opened(spec: Spec) -> AsyncIterator[EventStore]:
    store = build(spec)
    try:
        await store.init_schema()
        yield store
    finally:
        await store.close()


@pytest.fixture
def child() -> Iterator[list[asyncio.subprocess.Process]]:
    """Processes a test starts; any still running at the end is killed."""
    started: list[asyncio.subprocess.Process] = []
    yield started
    for process in started:
        if process.returncode is None:
            process.kill()


async def test_the_lease_is_exclusive_per_bot_until_released(spec: Spec) -> None:
    async with opened(spec) as first, opened(spec) as second:
        async with first.poller_lease("1"):
            with pytest.raises(LeaseTaken, match="another process"):
                async with second.poller_lease("1"):
                    pass
            async with second.poller_lease("2"):
                pass
        async with second.poller_lease("1"):
            with pytest.raises(LeaseTaken):
                async with first.poller_lease("1"):
                    pass


async def test_the_lease_of_a_holder_killed_with_sigkill_is_taken_over_within_one_ttl(
    spec: Spec, child: list[asyncio.subprocess.Process]
) -> None:
    async with opened(spec) as store:
        holder = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.contract.lease_holder", json.dumps(spec), "1",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        child.append(holder)
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 60) == b"held\n"
        with pytest.raises(LeaseTaken):  # alive, it keeps the lease
            async with store.poller_lease("1"):
                pass

        holder.kill()
        await holder.wait()
        started = time.monotonic()
        async with store.poller_lease("1"):
            waited = time.monotonic() - started

    assert waited < LEASE_TTL + 1.0
