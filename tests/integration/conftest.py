"""Fixtures shared by the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.doubles.fauna import FaunaDouble


@pytest.fixture
async def double() -> AsyncIterator[FaunaDouble]:
    """A running FQL v4 double, stopped afterwards."""
    running = FaunaDouble()
    await asyncio.to_thread(running.start)
    yield running
    await asyncio.to_thread(running.stop)
