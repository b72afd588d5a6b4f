"""A Fauna (FQL v4) node for tests: an HTTP server in a thread that speaks the wire format of the functions the
Fauna event store uses, with Fauna's semantics (see `server`, `evaluator`, `database`)."""

from tests.doubles.fauna.server import DEFAULT_SECRET, FaunaDouble

__all__ = ["DEFAULT_SECRET", "FaunaDouble"]
