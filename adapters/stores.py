"""Which event store a URL names: the one place that turns configuration into a store adapter.

Accepted forms: `memory://`, `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite://:memory:`,
`postgresql://...` or `postgres://...`, and `fauna` or `fauna://` (Fauna reads its settings from the environment).
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.ports import EventStore

ACCEPTED = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite://:memory:, "
    "postgresql://user[:password]@host[:port]/dbname[?schema=name] (or postgres://...), fauna (or fauna://)"
)

FAUNA_EXTRA_MISSING = "the Fauna store needs the faunadb driver, an optional extra: pip install 'convo[fauna]'"


def open_store(url: str, env: Mapping[str, str]) -> EventStore:
    """The event store `url` names, not yet connected; ValueError (one line, no secrets) for anything else.

    `env` is only read by stores configured from the environment (Fauna's endpoint and secret).
    """
    url = url.strip()
    scheme = url.partition(":")[0]
    try:
        if url == "memory://":
            from adapters.memory.store import MemoryEventStore

            return MemoryEventStore()
        if scheme == "sqlite":
            from adapters.sqlite.store import SqliteEventStore

            return SqliteEventStore.from_url(url)
        if scheme in ("postgresql", "postgres"):
            from adapters.postgres.store import PostgresEventStore

            return PostgresEventStore.from_url(url)
    except ValueError as error:
        raise ValueError(f"unusable event store URL: {error}; use one of: {ACCEPTED}") from None
    if url in ("fauna", "fauna://"):
        try:
            from adapters.fauna.store import FaunaEventStore
        except ModuleNotFoundError as missing:
            if missing.name != "faunadb":
                raise
            raise ValueError(FAUNA_EXTRA_MISSING) from None
        return FaunaEventStore.from_env(env)
    shown = f" scheme {scheme!r}" if "://" in url and scheme.isalnum() else ""
    raise ValueError(f"unknown event store URL{shown}; use one of: {ACCEPTED}")


def backend_of(url: str) -> str:
    """The store backend a URL names, for metrics labels: `memory`, `sqlite`, `postgresql` or `fauna`."""
    scheme = url.strip().partition(":")[0]
    return "postgresql" if scheme == "postgres" else scheme
