"""open_store: which store each URL names, and one clear, secret-free line for anything else."""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from pathlib import Path

import pytest

from adapters.memory.store import MemoryEventStore
from adapters.postgres.store import PostgresEventStore
from adapters.sqlite.store import SqliteEventStore
from adapters.stores import open_store


def test_memory() -> None:
    assert isinstance(open_store("memory://", {}), MemoryEventStore)


@pytest.mark.parametrize(
    ("url", "path", "read_only"),
    [
        ("sqlite:///convo.db", "convo.db", False),
        ("sqlite:///data/convo.db", "data/convo.db", False),
        ("sqlite:////var/lib/convo/convo.db", "/var/lib/convo/convo.db", False),
        ("sqlite:////var/lib/convo/convo.db?mode=ro", "/var/lib/convo/convo.db", True),
        ("sqlite://:memory:", ":memory:", False),
        ("sqlite:///:memory:", ":memory:", False),
        ("  sqlite:///convo.db\n", "convo.db", False),
    ],
)
async def test_sqlite(url: str, path: str, read_only: bool) -> None:
    store = open_store(url, {})
    assert isinstance(store, SqliteEventStore)
    assert (store.path, store.read_only) == (path, read_only)
    await store.close()


async def test_sqlite_does_not_touch_the_disk_until_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///later/convo.db", {})
    assert not (tmp_path / "later").exists()
    await store.close()


@pytest.mark.parametrize(
    ("url", "schema"),
    [
        ("postgresql://convo:pw@db.internal:5433/convo", "public"),
        ("postgres://convo@db.internal/convo?schema=bot", "bot"),
        ("postgresql:///convo?host=/run/postgresql&schema=a%20b", "a b"),
    ],
)
async def test_postgres(url: str, schema: str) -> None:
    store = open_store(url, {})
    assert isinstance(store, PostgresEventStore)
    assert store.schema == schema
    await store.close()


def test_fauna_is_built_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Mapping[str, str]] = []

    class FakeFaunaEventStore:
        @classmethod
        def from_env(cls, env: Mapping[str, str]) -> FakeFaunaEventStore:
            built.append(env)
            return cls()

    module = types.ModuleType("adapters.fauna.store")
    module.FaunaEventStore = FakeFaunaEventStore  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "adapters.fauna.store", module)
    env = {"FAUNA_SECRET": "x"}

    assert isinstance(open_store("fauna", env), FakeFaunaEventStore)
    assert isinstance(open_store("fauna://", env), FakeFaunaEventStore)
    assert built == [env, env]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "convo.db",
        "memory",
        "memory://x",
        "mysql://root:s3cret@localhost/convo",
        "sqlite:",
        "sqlite:/convo.db",
        "sqlite://",
        "sqlite:///",
        "sqlite://host/convo.db",
        "sqlite:///convo.db?journal=off",
        "postgresql://convo:s3cret@db:notaport/convo",
        "postgresql://convo:s3cret@[::1/convo",
        "postgresql://convo:s3cret@db/convo?schema=",
        "postgresql://convo:s3cret@db/convo?schema=a&schema=b",
        "postgresql://convo:s3cret@db/convo?nonsense=1",
        "fauna://db.fauna.com",
        "https://s3cret@example.org",
    ],
)
def test_anything_else_is_one_clear_line_without_secrets(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///") as raised:
        open_store(url, {})

    message = str(raised.value)
    assert "\n" not in message
    assert "s3cret" not in message
    assert raised.value.__cause__ is None or "s3cret" not in str(raised.value.__cause__)


def test_fauna_without_its_optional_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [module for module in sys.modules if module.startswith(("faunadb", "adapters.fauna"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "faunadb", None)  # as if `pip install convo` without the [fauna] extra
    with pytest.raises(ValueError, match=r"pip install 'convo\[fauna\]'") as raised:
        open_store("fauna", {"FAUNA_SECRET": "fnSecret"})
    assert "\n" not in str(raised.value)
