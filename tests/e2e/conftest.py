"""Fixtures for end-to-end runs: the local servers and a work directory for the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.doubles.openai_server import FakeOpenAI
from tests.doubles.telegram_server import FakeTelegram


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def ai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=None) as server:
        yield server


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
