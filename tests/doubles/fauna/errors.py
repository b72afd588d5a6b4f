"""The error a query answers with, in Fauna's error JSON."""

from __future__ import annotations

from typing import Any

STATUS = {
    "unauthorized": 401,
    "permission denied": 403,
    "instance not found": 404,
    "value not found": 404,
    "contended transaction": 409,
    "internal server error": 500,
    "unavailable": 503,
}
"""HTTP status per error code; every other code (invalid ref, instance not unique, transaction aborted, ...) is 400."""

CONTENDED = {
    "errors": [
        {
            "code": "contended transaction",
            "description": "Transaction was aborted due to detection of concurrent modification.",
        }
    ]
}
"""Fauna's answer (409) to a transaction that lost a race with a concurrent one; nothing of it was kept."""


class QueryError(Exception):
    """A Fauna error: code, description, and the position (path into the query) of the failing expression."""

    def __init__(self, code: str, description: str, position: list[Any] | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.position = position

    @property
    def status(self) -> int:
        """The HTTP status Fauna answers this error with."""
        return STATUS.get(self.code, 400)

    def at(self, position: list[Any]) -> QueryError:
        """This error located at `position`, unless it already has a position."""
        if self.position is None:
            self.position = list(position)
        return self

    def body(self) -> dict[str, Any]:
        """`{"errors": [{"position", "code", "description"}]}` as Fauna sends it."""
        return {"errors": [{"position": self.position or [], "code": self.code, "description": self.description}]}
