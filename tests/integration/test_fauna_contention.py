"""Fauna's 409 `contended transaction`: the double answers it on demand, and the store, through the real driver,
sends a contended query again a few times before it reports StoreUnavailable (never a raw driver error)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.fauna.connection import CONTENDED_RETRIES
from adapters.fauna.driver import errors
from adapters.fauna.store import FaunaEventStore
from domain.events import QuestionAsked
from domain.ports import StoreUnavailable
from tests.doubles.fauna import FaunaDouble

CONTENDED = {
    "errors": [
        {
            "code": "contended transaction",
            "description": "Transaction was aborted due to detection of concurrent modification.",
        }
    ]
}


@pytest.fixture
async def store(double: FaunaDouble) -> AsyncIterator[FaunaEventStore]:
    opened = FaunaEventStore(double.secret, double.endpoint, timeout=5)
    await opened.init_schema()
    yield opened
    await opened.close()


def post(double: FaunaDouble, body: object) -> tuple[int, Any]:
    """POST a raw FQL expression; (status, parsed JSON answer)."""
    request = urllib.request.Request(double.endpoint + "/", data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {double.secret}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def note(text: str) -> dict[str, Any]:
    return {"create": {"collection": "notes"}, "params": {"object": {"data": {"object": {"text": text}}}}}


def count_notes() -> dict[str, Any]:
    return {"select": ["data"], "from": {"paginate": {"match": {"index": "all_notes"}}}}


async def test_the_double_answers_409_contended_to_the_next_writing_transactions_and_keeps_nothing(
    double: FaunaDouble,
) -> None:
    for query in (
        {"create_collection": {"object": {"name": "notes"}}},
        {"create_collection": {"object": {"name": "other"}}},
        {"create_index": {"object": {"name": "all_notes", "source": {"collection": "notes"}}}},
    ):
        assert post(double, query)[0] == 201
    double.contend(times=2, collection="notes")

    assert post(double, count_notes()) == (200, {"resource": []})  # a read never contends
    assert post(double, {"create": {"collection": "other"}, "params": {"object": {}}})[0] == 201  # not "notes"
    assert post(double, note("first try")) == (409, CONTENDED)
    assert post(double, note("second try")) == (409, CONTENDED)
    assert post(double, note("third try"))[0] == 201
    status, answer = post(double, count_notes())
    assert (status, len(answer["resource"]), double.contended) == (200, 1, 2)


async def test_an_append_gets_through_two_contended_attempts_and_is_written_once(
    double: FaunaDouble, store: FaunaEventStore
) -> None:
    double.contend(times=2, collection="events")

    recorded = await store.append("s", [QuestionAsked(text="hi")], 0, "c")

    assert double.contended == 2
    assert [event.version for event in recorded] == [1]
    assert [event.event async for event in store.read_forwards("s")] == [QuestionAsked(text="hi")]


async def test_persistent_contention_is_store_unavailable_and_writes_nothing(
    double: FaunaDouble, store: FaunaEventStore
) -> None:
    double.contend(times=CONTENDED_RETRIES + 5)

    with pytest.raises(StoreUnavailable, match="contended") as raised:
        await store.append("s", [QuestionAsked(text="hi")], 0, "c")

    assert not isinstance(raised.value, errors.FaunaError)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert double.contended == CONTENDED_RETRIES + 1
    assert await store.current_version("s") == 0
