"""Errors the domain raises; each names what is wrong so an adapter can turn it into a clear reply or log line."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises."""


class MalformedDocument(DomainError):
    """A stored document is not a valid event or envelope."""


class UnknownEventType(MalformedDocument):
    """A stored document names an event type this code does not know."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown event type {name!r}")
        self.name = name


class EmptyMessage(DomainError):
    """A question or image prompt with no visible text."""


class QuestionTooLong(DomainError):
    """The persona and the question alone do not fit the prompt's token budget."""

    def __init__(self, needed: int, budget: int) -> None:
        super().__init__(f"the question needs {needed} tokens with the persona; the budget is {budget}")
        self.needed = needed
        self.budget = budget


class NothingPending(DomainError):
    """An outcome was offered for a request that is not waiting for one."""
