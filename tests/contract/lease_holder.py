"""Stores for the poller lease contract, built from a JSON-able spec so that another process can open the same one.

`python -m tests.contract.lease_holder SPEC BOT` opens the store SPEC describes, takes the poller lease of BOT,
prints `held` and waits to be killed: the stand-in for a `convo bot` that dies holding its lease.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from adapters.fauna.store import FaunaEventStore
from adapters.postgres.store import PostgresEventStore
from adapters.sqlite.store import SqliteEventStore
from domain.ports import EventStore

Spec = dict[str, Any]
"""`{"kind": "sqlite", "path"}`, `{"kind": "postgres", "url", "schema"}` or
`{"kind": "fauna", "secret", "endpoint", "lease_ttl"}`."""


def build(spec: Spec) -> EventStore:
    """A new store object on the storage the spec names (nothing is opened yet)."""
    if spec["kind"] == "sqlite":
        return SqliteEventStore(spec["path"])
    if spec["kind"] == "postgres":
        return PostgresEventStore(spec["url"], schema=spec["schema"], max_size=2)
    if spec["kind"] == "fauna":
        return FaunaEventStore(spec["secret"], spec["endpoint"], lease_ttl=spec["lease_ttl"])
    raise ValueError(f"unknown store kind {spec['kind']!r}")


async def hold(spec: Spec, bot: str) -> None:
    """Take the lease, say so, and wait forever."""
    store = build(spec)
    async with store.poller_lease(bot):
        print("held", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(hold(json.loads(sys.argv[1]), sys.argv[2]))
