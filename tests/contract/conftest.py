"""The `store` fixture: every contract test runs against each event store kind (see backends.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from domain.ports import EventStore
from tests.contract.backends import BACKENDS, CONFIGURABLE, open_backend


def _params(names: tuple[str, ...]) -> list[object]:
    return [pytest.param(name, marks=pytest.mark.postgres) if name == "postgres" else name for name in names]


@pytest.fixture(params=_params(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventStore]:
    """A fresh, empty store of each kind: memory, sqlite, postgres, fauna."""
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture(params=_params(CONFIGURABLE))
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each store kind whose constructor takes options (`now`, `page_size`)."""
    return str(request.param)
