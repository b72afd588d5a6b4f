"""Test-wide settings: hypothesis profiles (CI runs 200+ examples per property)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.doubles.openai_server import FakeOpenAI
from tests.doubles.telegram import FakeTelegram

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile(
    "mutation",
    max_examples=200,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """A local Telegram Bot API server (tests/doubles/telegram)."""
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def ai() -> AsyncIterator[FakeOpenAI]:
    """A local OpenAI API server (tests/doubles/openai_server.py) that accepts any key."""
    async with FakeOpenAI(api_key=None) as server:
        yield server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start `convo bot` are marked e2e (tests/e2e, tests/reliability)."""
    for item in items:
        if any(part in str(item.fspath) for part in ("tests/e2e/", "tests/reliability/")):
            item.add_marker(pytest.mark.e2e)
