"""convo's Prometheus instruments, in a registry of their own that the composition root builds.

Most are fed from the events written (`observe`, called by `MeteredEventStore` for each batch it records): what the
model billed, and every failure recorded. Timings come from the port wrappers (`MeteredEventStore`,
`MeteredChatModel`); updates are counted by the Telegram intake and its canonical log line (`count_update`).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from domain.events import FAILURE_KINDS, AnswerFailed, AnswerGiven, Event, ImageFailed, TranscriptionFailed

MODEL_SECONDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
"""Buckets of a whole answer's time."""
FIRST_TOKEN_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Buckets of the time to an answer's first words."""
APPEND_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Buckets of one append to the event store (an embedded SQLite append takes about a millisecond)."""
REQUESTS = ("answer", "image", "transcription")
"""What a failure failed to make: the `request` label of `convo_failures_total`."""


class Metrics:
    """Every instrument, registered in `registry` (never in prometheus_client's global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        """What `/metrics` serves."""
        self.updates = Counter(
            "convo_updates",
            "Telegram updates by kind and outcome (an update the store could not record counts as retried, and "
            "again once handled).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        """Updates by kind (message, callback_query, ...) and outcome (answered, failed, ignored, ...)."""
        self.model_latency = Histogram(
            "convo_model_latency_seconds",
            "Seconds from sending a chat request to the last word of its answer (answers not stopped).",
            ["model"],
            buckets=MODEL_SECONDS,
            registry=self.registry,
        )
        """Whole answers' time, by the model that answered."""
        self.first_token = Histogram(
            "convo_model_first_token_seconds",
            "Seconds from sending a streamed chat request to the first words of its answer.",
            ["model"],
            buckets=FIRST_TOKEN_SECONDS,
            registry=self.registry,
        )
        """Time to first words, by the model that answered."""
        self.tokens = Counter(
            "convo_model_tokens",
            "Tokens the chat model's server billed, by model and kind (prompt or completion).",
            ["model", "kind"],
            registry=self.registry,
        )
        """Billed tokens, from the answers (and billed failures) recorded."""
        self.failures = Counter(
            "convo_failures",
            "Failures recorded, by what failed (answer, image, transcription) and kind (timeout, rate_limited, ...).",
            ["request", "kind"],
            registry=self.registry,
        )
        """Failures recorded, from the AnswerFailed, ImageFailed and TranscriptionFailed events written."""
        self.store_append = Histogram(
            "convo_store_append_seconds",
            "Seconds one append to the event store took, by store backend.",
            ["store"],
            buckets=APPEND_SECONDS,
            registry=self.registry,
        )
        """Append latency, by backend (sqlite, postgresql, fauna, memory)."""
        self.waiting = Gauge(
            "convo_updates_waiting",
            "Updates this process holds from the inbox: waiting for their chat's turn or being handled.",
            registry=self.registry,
        )
        """This process's backlog (see `hold`)."""
        for request in REQUESTS:  # every failure series exists from the start, so rate() sees the first one
            for kind in FAILURE_KINDS:
                self.failures.labels(request, kind)

    def count_update(self, kind: str, outcome: str) -> None:
        """One update of this kind ended with this outcome."""
        self.updates.labels(kind, outcome).inc()

    def hold(self, waiting: Callable[[], int]) -> None:
        """Read the updates waiting from `waiting` at each scrape."""
        self.waiting.set_function(waiting)

    def observe(self, event: Event) -> None:
        """Count what a newly written event says was billed or failed."""
        match event:
            case AnswerGiven():
                self._bill(event.model, event.prompt_tokens, event.completion_tokens)
            case AnswerFailed():
                self._bill(event.model, event.prompt_tokens, event.completion_tokens)
                self.failures.labels("answer", event.kind).inc()
            case ImageFailed():
                self.failures.labels("image", event.kind).inc()
            case TranscriptionFailed():
                self.failures.labels("transcription", event.kind).inc()

    def _bill(self, model: str, prompt: int, completion: int) -> None:
        if model:  # a failed call the server billed nothing for names no model
            self.tokens.labels(model, "prompt").inc(prompt)
            self.tokens.labels(model, "completion").inc(completion)
