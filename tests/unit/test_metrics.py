"""The metrics' port wrappers and outcome classes, on real stores and a real registry."""

from __future__ import annotations

import pytest

from adapters.memory.store import MemoryEventStore
from adapters.metrics.registry import Metrics
from adapters.metrics.store import MeteredEventStore
from adapters.stores import backend_of
from adapters.telegram.tally import outcome_class
from domain.events import AnswerFailed, AnswerGiven, QuestionAsked


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_an_append_repeated_under_its_causation_id_is_timed_again_but_counted_once():
    metrics = Metrics()
    store = MeteredEventStore(MemoryEventStore(), metrics, "memory")
    await store.append("7", [QuestionAsked(text="q", message_id=1)], 0, "tg:1")
    failed = AnswerFailed(kind="timeout", message="slow", question_version=1, model="m", prompt_tokens=9)
    await store.append("7", [failed], 1, "tg:1/outcome")
    # tried again after a lost reply, from the stream read again: the store answers with the batch it holds
    await store.append("7", [failed], 2, "tg:1/outcome")
    assert sample(metrics, "convo_failures_total", request="answer", kind="timeout") == 1
    assert sample(metrics, "convo_model_tokens_total", model="m", kind="prompt") == 9
    assert sample(metrics, "convo_store_append_seconds_count", store="memory") == 3


async def test_answers_count_their_billed_tokens_by_model():
    metrics = Metrics()
    store = MeteredEventStore(MemoryEventStore(), metrics, "memory")
    given = AnswerGiven(text="a", model="m", prompt_tokens=12, completion_tokens=5, latency_ms=10, question_version=1)
    await store.append("7", [QuestionAsked(text="q", message_id=1), given], 0, "tg:1")
    assert sample(metrics, "convo_model_tokens_total", model="m", kind="prompt") == 12
    assert sample(metrics, "convo_model_tokens_total", model="m", kind="completion") == 5
    assert sample(metrics, "convo_failures_total", request="answer", kind="timeout") == 0


@pytest.mark.parametrize(
    ("outcome", "counted"),
    [
        ("answered", "answered"),
        ("drawn", "answered"),
        ("answered_again", "replayed"),
        ("already_delivered", "replayed"),
        ("failed_timeout", "failed"),
        ("not_heard_upstream", "failed"),
        ("internal_error", "failed"),
        ("store_unavailable", "retried"),
        ("ignored", "ignored"),
        ("ignored_not_addressed", "ignored"),
        ("edited_ignored", "ignored"),
        ("denied", "refused"),
        ("throttled", "refused"),
        ("forget_refused", "refused"),
        ("vision_declined", "refused"),
        ("persona_selected", "handled"),
        ("registered", "handled"),
    ],
)
def test_each_log_outcome_is_counted_in_its_class(outcome, counted):
    assert outcome_class(outcome) == counted


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("sqlite:///convo.db", "sqlite"),
        ("postgresql://convo@db/convo", "postgresql"),
        ("postgres://convo@db/convo", "postgresql"),
        ("fauna", "fauna"),
        ("fauna://", "fauna"),
        ("memory://", "memory"),
    ],
)
def test_appends_are_labelled_with_the_store_backend(url, backend):
    assert backend_of(url) == backend
