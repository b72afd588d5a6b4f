"""The Fauna double, driven by the real faunadb client, against Fauna v4's documented behaviour.

The examples follow Fauna's v4 docs (the `Letters` collection of the pagination tutorial, unique indexes, Abort,
Let/Select/Map); where the docs state a rule (null fields are not stored, an index holds no entry for a document
whose terms are all null, after cursors are inclusive and before cursors exclusive), a test states it too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from adapters.fauna import schema
from adapters.fauna.driver import FaunaTime, Ref, SetRef, errors, make_client, q
from adapters.fauna.store import FaunaEventStore
from domain.events import ConversationReset, QuestionAsked, RecordedEvent
from domain.ports import ConcurrencyConflict, StoreUnavailable
from tests.doubles.fauna import FaunaDouble


@pytest.fixture
def double() -> Iterator[FaunaDouble]:
    with FaunaDouble() as running:
        yield running


def client_for(double: FaunaDouble, secret: str | None = None) -> Any:
    host, port = double.endpoint.removeprefix("http://").split(":")
    return make_client(secret or double.secret, "http", host, int(port), timeout=10, pool_size=4)


@pytest.fixture
def client(double: FaunaDouble) -> Any:
    return client_for(double)


@pytest.fixture
def letters(client: Any) -> list[Ref]:
    """The pagination tutorial's `Letters`: one document per letter, and an index sorted by letter."""
    client.query(q.create_collection({"name": "Letters"}))
    client.query(
        q.create_index(
            {
                "name": "letters_by_letter",
                "source": q.collection("Letters"),
                "values": [{"field": ["data", "letter"]}, {"field": ["ref"]}],
            }
        )
    )
    client.query(q.create_index({"name": "all_letters", "source": q.collection("Letters")}))
    created = client.query(
        [q.create(q.collection("Letters"), {"data": {"letter": letter}}) for letter in string.ascii_uppercase]
    )
    return [document["ref"] for document in created]


def raw(double: FaunaDouble, body: object, authorization: str | None = None) -> tuple[int, dict[str, Any]]:
    """POST a raw JSON body, as the wire carries it; (status, parsed JSON)."""
    request = urllib.request.Request(double.endpoint + "/", data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", authorization or f"Bearer {double.secret}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def only_error(raised: pytest.ExceptionInfo[Any]) -> Any:
    assert len(raised.value.errors) == 1
    return raised.value.errors[0]


# Authentication and the wire


def test_the_driver_sends_its_secret_as_a_bearer_token_and_a_wrong_one_is_unauthorized(double: FaunaDouble) -> None:
    assert client_for(double).query(q.equals(1, 1)) is True

    with pytest.raises(errors.Unauthorized):
        client_for(double, secret="not-the-secret").query(q.equals(1, 1))
    assert raw(double, True, authorization="Bearer nope") == (
        401,
        {"errors": [{"code": "unauthorized", "description": "Unauthorized"}]},
    )


def test_basic_auth_with_the_secret_as_user_is_accepted(double: FaunaDouble) -> None:
    basic = "Basic " + base64.b64encode(f"{double.secret}:".encode()).decode()

    assert raw(double, {"equals": [1, 1]}, authorization=basic) == (200, {"resource": True})


def test_errors_come_back_in_faunas_error_json(double: FaunaDouble) -> None:
    assert raw(double, {"foo": "bar"}) == (
        400,
        {
            "errors": [
                {
                    "position": [],
                    "code": "invalid expression",
                    "description": "No form/function found, or invalid argument keys: { foo }.",
                }
            ]
        },
    )
    status, body = raw(double, {"let": [{"x": 1}], "in": {"var": "y"}})
    assert (status, body["errors"][0]["code"], body["errors"][0]["position"]) == (400, "unbound variable", ["in"])
    status, body = raw(double, {"select": ["a"], "from": {"object": {}}})
    assert (status, body["errors"][0]["code"]) == (404, "value not found")
    status, body = raw(double, {"add": [1, "two"]})
    assert (status, body["errors"][0]["code"], body["errors"][0]["position"]) == (400, "invalid argument", ["add", 1])
    status, body = raw(double, {"paginate": {"match": {"index": "missing"}}})
    assert (status, body["errors"][0]["code"], body["errors"][0]["position"]) == (400, "invalid ref", ["paginate"])


def test_typed_values_round_trip(double: FaunaDouble, client: Any) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    answer = client.query(
        {
            "time": moment,
            "date": date(2026, 1, 2),
            "bytes": b"\x00\xff",
            "ref": Ref("123", Ref("Letters", Ref("collections"))),
            "escaped": {"@note": "an @-key makes Fauna wrap the object in @obj"},
            "nested": [None, True, 1.5, "ü😀"],
        }
    )

    assert answer["time"] == FaunaTime(moment)
    assert answer["time"].to_datetime() == moment
    assert answer["date"] == date(2026, 1, 2)
    assert answer["bytes"] == bytearray(b"\x00\xff")
    assert answer["ref"] == Ref("123", Ref("Letters", Ref("collections")))
    assert answer["escaped"] == {"@note": "an @-key makes Fauna wrap the object in @obj"}
    assert raw(double, {"object": {"@x": 1}}) == (200, {"resource": {"@obj": {"@x": 1}}})
    assert answer["nested"] == [None, True, 1.5, "ü😀"]


# Schema


def test_collections_and_indexes_are_created_once_and_read_back(client: Any) -> None:
    created = client.query(q.create_collection({"name": "widgets"}))
    assert created["ref"] == Ref("widgets", Ref("collections"))
    with pytest.raises(errors.BadRequest) as raised:
        client.query(q.create_collection({"name": "widgets"}))
    assert only_error(raised).code == "instance already exists"

    definition = {
        "name": "widgets_by_n",
        "source": q.collection("widgets"),
        "terms": [{"field": ["data", "n"]}],
        "unique": True,
    }
    client.query(q.create_index(definition))
    index = client.query(q.get(q.index("widgets_by_n")))

    assert index["ref"] == Ref("widgets_by_n", Ref("indexes"))
    assert index["source"] == Ref("widgets", Ref("collections"))
    assert (index["active"], index["unique"], index["terms"]) == (True, True, [{"field": ["data", "n"]}])
    assert client.query([q.exists(q.index("widgets_by_n")), q.exists(q.collection("gadgets"))]) == [True, False]


def test_a_collection_keeps_30_days_of_history_unless_told(double: FaunaDouble, client: Any) -> None:
    client.query(q.create_collection({"name": "kept"}))
    client.query(q.create_collection({"name": "forgotten", "history_days": 0}))
    assert double.database.collections["kept"]["history_days"] == 30
    assert double.database.collections["forgotten"]["history_days"] == 0


def test_an_index_may_not_share_a_transaction_with_its_collection(client: Any) -> None:
    with pytest.raises(errors.BadRequest) as raised:
        client.query(
            q.do(
                q.create_collection({"name": "fresh"}),
                q.create_index({"name": "fresh_all", "source": q.collection("fresh")}),
            )
        )

    assert only_error(raised).code == "invalid argument"
    assert client.query(q.exists(q.collection("fresh"))) is False


def test_a_large_collections_index_reports_inactive_while_it_builds() -> None:
    with FaunaDouble(index_build_seconds=30) as double:
        client = client_for(double)
        client.query(q.create_collection({"name": "big"}))
        client.query([q.create(q.collection("big"), {"data": {"n": n}}) for n in range(129)])
        client.query([q.create_collection({"name": "small"})])
        client.query(q.create_index({"name": "big_by_n", "source": q.collection("big")}))
        client.query(q.create_index({"name": "small_all", "source": q.collection("small")}))

        assert client.query(q.select("active", q.get(q.index("big_by_n")))) is False
        assert client.query(q.select("active", q.get(q.index("small_all")))) is True


# Documents


def test_documents_are_created_read_and_deleted(client: Any) -> None:
    client.query(q.create_collection({"name": "notes"}))
    created = client.query(q.create(q.collection("notes"), {"data": {"text": "hello"}}))

    assert set(created) == {"ref", "ts", "data"}
    assert created["ref"].collection() == Ref("notes", Ref("collections"))
    assert client.query(q.get(created["ref"])) == created
    assert client.query(q.delete(created["ref"])) == created
    assert client.query(q.exists(created["ref"])) is False
    with pytest.raises(errors.NotFound) as raised:
        client.query(q.get(created["ref"]))
    assert only_error(raised).code == "instance not found"


def test_update_merges_objects_removes_nulled_fields_and_reindexes(client: Any) -> None:
    client.query(q.create_collection({"name": "notes"}))
    client.query(
        q.create_index({"name": "notes_open", "source": q.collection("notes"), "terms": [{"field": ["data", "open"]}]})
    )
    ref = client.query(
        q.create(q.collection("notes"), {"data": {"text": "hi", "open": "yes", "meta": {"a": 1, "b": 2}}})
    )["ref"]
    assert client.query(q.paginate(q.match(q.index("notes_open"), "yes")))["data"] == [ref]
    updated = client.query(q.update(ref, {"data": {"open": None, "meta": {"b": None, "c": 3}, "n": 1}}))
    assert updated["data"] == {"text": "hi", "meta": {"a": 1, "c": 3}, "n": 1}
    assert client.query(q.get(ref))["data"] == updated["data"]
    assert client.query(q.paginate(q.match(q.index("notes_open"), "yes")))["data"] == []


def test_lt_orders_numbers_and_strings(client: Any) -> None:
    assert client.query([q.lt(1, 2, 3), q.lt(2, 2), q.lt("2026-01-01", "2026-01-02"), q.lt("b", "a")]) == [
        True,
        False,
        True,
        False,
    ]


def test_null_fields_are_not_stored(client: Any) -> None:
    client.query(q.create_collection({"name": "notes"}))
    created = client.query(
        q.create(q.collection("notes"), {"data": {"kept": 1, "gone": None, "inner": {"gone": None, "x": [None]}}})
    )

    assert created["data"] == {"kept": 1, "inner": {"x": [None]}}


# Match and Paginate


def test_paginate_defaults_to_64_and_honours_size(client: Any, letters: list[Ref]) -> None:
    client.query([q.create(q.collection("Letters"), {"data": {"letter": f"Z{n:02}"}}) for n in range(50)])
    everything = q.match(q.index("all_letters"))

    first = client.query(q.paginate(everything))
    assert len(first["data"]) == 64
    assert "before" not in first
    assert first["after"] == [client.query(q.paginate(everything, size=65))["data"][64]]

    page = client.query(q.paginate(everything, size=5))
    assert page["data"] == letters[:5]
    assert page["after"] == [letters[5]]


def test_after_cursors_are_inclusive_and_before_cursors_exclusive(client: Any, letters: list[Ref]) -> None:
    by_letter = q.match(q.index("letters_by_letter"))

    page = client.query(q.paginate(by_letter, size=3, after=["F"]))
    assert page["data"] == [["F", letters[5]], ["G", letters[6]], ["H", letters[7]]]
    assert page["before"] == ["F", letters[5]]
    assert page["after"] == ["I", letters[8]]

    previous = client.query(q.paginate(by_letter, size=3, before=page["before"]))
    assert [letter for letter, _ in previous["data"]] == ["C", "D", "E"]
    assert previous["before"] == ["C", letters[2]]
    assert previous["after"] == ["F", letters[5]]

    following = client.query(q.paginate(by_letter, size=3, after=page["after"]))
    assert [letter for letter, _ in following["data"]] == ["I", "J", "K"]


def test_paging_both_ways_covers_the_set_in_order(client: Any, letters: list[Ref]) -> None:
    by_letter = q.match(q.index("letters_by_letter"))
    seen, cursor = [], ["A"]
    while cursor is not None:
        page = client.query(q.paginate(by_letter, size=4, after=cursor))
        seen += [letter for letter, _ in page["data"]]
        cursor = page.get("after")
    assert seen == list(string.ascii_uppercase)

    seen, cursor = [], ["ZZZ"]
    while cursor is not None:
        page = client.query(q.paginate(by_letter, size=4, before=cursor))
        seen += [letter for letter, _ in reversed(page["data"])]
        cursor = page.get("before")
    assert seen == list(reversed(string.ascii_uppercase))


def test_match_partitions_by_terms(client: Any) -> None:
    client.query(q.create_collection({"name": "cities"}))
    client.query(
        q.create_index(
            {
                "name": "cities_by_state",
                "source": q.collection("cities"),
                "terms": [{"field": ["data", "state"]}],
                "values": [{"field": ["data", "population"]}, {"field": ["data", "name"]}],
            }
        )
    )
    cities = [("Boise", "Idaho", 240380), ("Pittsburgh", "PA", 302971), ("Scranton", "PA", 76328)]
    client.query(
        [q.create(q.collection("cities"), {"data": {"name": n, "state": s, "population": p}}) for n, s, p in cities]
    )

    assert client.query(q.paginate(q.match(q.index("cities_by_state"), "PA"))) == {
        "data": [[76328, "Scranton"], [302971, "Pittsburgh"]]
    }
    assert client.query(q.paginate(q.match(q.index("cities_by_state"), "Ohio"))) == {"data": []}
    assert client.query(q.match(q.index("cities_by_state"), "PA")) == SetRef(
        {"match": Ref("cities_by_state", Ref("indexes")), "terms": "PA"}
    )


def test_map_and_lambda_over_a_page_keep_its_cursors(client: Any, letters: list[Ref]) -> None:
    page = client.query(
        q.map_(
            q.lambda_(["letter", "ref"], q.select(["data", "letter"], q.get(q.var("ref")))),
            q.paginate(q.match(q.index("letters_by_letter")), size=2, after=["X"]),
        )
    )

    assert page == {"before": ["X", letters[23]], "data": ["X", "Y"], "after": ["Z", letters[25]]}


# Unique indexes


def test_a_unique_index_rejects_a_second_document(client: Any) -> None:
    client.query(q.create_collection({"name": "users"}))
    client.query(
        q.create_index(
            {
                "name": "users_by_email",
                "source": q.collection("users"),
                "terms": [{"field": ["data", "email"]}],
                "unique": True,
            }
        )
    )
    client.query(q.create(q.collection("users"), {"data": {"email": "a@example.com"}}))

    with pytest.raises(errors.BadRequest) as raised:
        client.query(q.let({"x": 1}, q.create(q.collection("users"), {"data": {"email": "a@example.com"}})))

    error = only_error(raised)
    assert (error.code, error.description, error.position) == ("instance not unique", "document is not unique.", ["in"])
    client.query(q.create(q.collection("users"), {"data": {"name": "no email"}}))
    client.query(q.create(q.collection("users"), {"data": {"name": "no email either"}}))


def test_uniqueness_is_over_terms_and_values_combined(client: Any) -> None:
    client.query(q.create_collection({"name": "events"}))
    client.query(
        q.create_index(
            {
                "name": "one_start_per_key",
                "source": q.collection("events"),
                "terms": [{"field": ["data", "key"]}],
                "values": [{"field": ["data", "stream"]}],
                "unique": True,
            }
        )
    )

    def create(**data: object) -> Any:
        return q.create(q.collection("events"), {"data": data})

    client.query([create(key="k", stream="a"), create(key="k", stream="b"), create(stream="a"), create(stream="a")])

    with pytest.raises(errors.BadRequest) as raised:
        client.query(create(key="k", stream="a"))
    assert only_error(raised).code == "instance not unique"


# Basic forms, Abort, transactions


def test_let_if_select_equals_concat(client: Any) -> None:
    answer = client.query(
        q.let(
            {"a": {"b": [10, 20]}, "c": q.select(["b", 1], q.var("a"))},
            q.if_(
                q.equals(q.var("c"), 20),
                q.concat(["c is ", q.to_string(q.var("c"))]),
                "no",
            ),
        )
    )

    assert answer == "c is 20"
    assert client.query(q.select(["missing"], {"a": 1}, "fallback")) == "fallback"
    assert client.query(q.equals(True, 1)) is False
    assert client.query([q.is_empty([]), q.is_nonempty([1])]) == [True, True]


def test_abort_answers_transaction_aborted_with_its_message_and_position(client: Any) -> None:
    with pytest.raises(errors.BadRequest) as raised:
        client.query(q.if_(False, "fine", q.abort("conflict:7")))

    error = only_error(raised)
    assert (error.code, error.description, error.position) == ("transaction aborted", "conflict:7", ["else"])


def test_a_failed_query_writes_nothing(client: Any) -> None:
    client.query(q.create_collection({"name": "notes"}))
    client.query(q.create_index({"name": "all_notes", "source": q.collection("notes")}))

    with pytest.raises(errors.BadRequest):
        client.query(q.do(q.create(q.collection("notes"), {"data": {"n": 1}}), q.abort("changed my mind")))

    assert client.query(q.paginate(q.match(q.index("all_notes")))) == {"data": []}


def test_queries_run_one_at_a_time(double: FaunaDouble, client: Any) -> None:
    client.query(q.create_collection({"name": "log"}))
    client.query(
        q.create_index(
            {
                "name": "log_by_n",
                "source": q.collection("log"),
                "values": [{"field": ["data", "n"]}],
            }
        )
    )
    client.query(
        q.create_index(
            {"name": "log_unique_n", "source": q.collection("log"), "terms": [{"field": ["data", "n"]}], "unique": True}
        )
    )
    next_entry = q.let(
        {"head": q.select(["data", 0], q.paginate(q.match(q.index("log_by_n")), size=1, before=[10**9]), 0)},
        q.create(q.collection("log"), {"data": {"n": q.add(q.var("head"), 1)}}),
    )
    problems: list[Exception] = []

    def writer() -> None:
        own = client_for(double)
        for _ in range(10):
            try:
                own.query(next_entry)
            except Exception as error:
                problems.append(error)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert problems == []
    assert client.query(q.paginate(q.match(q.index("log_by_n")), size=100))["data"] == list(range(1, 81))


def test_fail_next_answers_with_the_given_error(double: FaunaDouble, client: Any) -> None:
    double.fail_next("unavailable", "on vacation")
    with pytest.raises(errors.UnavailableError):
        client.query(q.equals(1, 1))
    assert client.query(q.equals(1, 1)) is True


def test_what_the_double_knowingly_does_not_do_is_refused(client: Any, letters: list[Ref]) -> None:
    for unsupported in (
        q.paginate(q.match(q.index("all_letters")), ts=1),
        q.create_index(
            {"name": "x", "source": q.collection("Letters"), "values": [{"field": ["ref"], "reverse": True}]}
        ),
    ):
        with pytest.raises(errors.BadRequest) as raised:
            client.query(unsupported)
        assert "double" in only_error(raised).description


# The Fauna event store against the double's faults (what the contract suite cannot provoke)

SECRET = "fnA-very-secret-key"


@pytest.fixture
async def served() -> AsyncIterator[FaunaDouble]:
    double = FaunaDouble(SECRET)
    await asyncio.to_thread(double.start)
    yield double
    await asyncio.to_thread(double.stop)


@pytest.fixture
async def store(served: FaunaDouble) -> AsyncIterator[FaunaEventStore]:
    opened = FaunaEventStore(SECRET, served.endpoint, timeout=5)
    await opened.init_schema()
    yield opened
    await opened.close()


def test_from_env_reads_the_secret_and_the_endpoint() -> None:
    store = FaunaEventStore.from_env({"FAUNA_SECRET": SECRET, "FAUNA_ENDPOINT": "http://localhost:8443"})
    assert store.endpoint == "http://localhost:8443"
    assert FaunaEventStore.from_env({"FAUNA_SECRET_KEY": SECRET}).endpoint == "https://db.fauna.com:443"
    assert SECRET not in repr(store.__dict__)


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({}, "FAUNA_SECRET is not set"),
        ({"FAUNA_SECRET": "  "}, "FAUNA_SECRET is not set"),
        ({"FAUNA_SECRET": SECRET, "FAUNA_ENDPOINT": "localhost:8443"}, "FAUNA_ENDPOINT must look like"),
        ({"FAUNA_SECRET": SECRET, "FAUNA_ENDPOINT": "http://user:pw@localhost"}, "must not contain credentials"),
        ({"FAUNA_SECRET": SECRET, "FAUNA_ENDPOINT": "http://localhost:99999"}, "invalid port"),
    ],
)
def test_from_env_refuses_a_bad_configuration_in_one_line(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as raised:
        FaunaEventStore.from_env(env)
    message = str(raised.value)
    assert "\n" not in message
    assert SECRET not in message
    assert "pw" not in message


async def test_a_rejected_secret_is_unavailable_without_the_secret(served: FaunaDouble) -> None:
    store = FaunaEventStore("fnA-wrong-secret", served.endpoint)
    try:
        with pytest.raises(StoreUnavailable, match="rejected the secret") as raised:
            await store.current_version("s")
    finally:
        await store.close()
    assert "fnA-wrong-secret" not in str(raised.value)


async def test_an_unreachable_node_is_unavailable() -> None:
    double = FaunaDouble(SECRET).start()
    endpoint = double.endpoint
    double.stop()
    store = FaunaEventStore(SECRET, endpoint, timeout=2)
    try:
        with pytest.raises(StoreUnavailable, match="cannot reach Fauna") as raised:
            await store.append("s", [QuestionAsked(text="hi")], 0, "c")
    finally:
        await store.close()
    assert SECRET not in str(raised.value)


async def test_a_missing_schema_says_to_run_store_init(served: FaunaDouble) -> None:
    store = FaunaEventStore(SECRET, served.endpoint)
    try:
        with pytest.raises(StoreUnavailable, match="convo store init"):
            await store.current_version("s")
    finally:
        await store.close()


async def test_unavailable_and_internal_errors_are_unavailable(served: FaunaDouble, store: FaunaEventStore) -> None:
    for code in ("unavailable", "internal server error"):
        served.fail_next(code, "try later")
        with pytest.raises(StoreUnavailable, match=code):
            await store.append("s", [QuestionAsked(text="hi")], 0, "c")
    assert await store.current_version("s") == 0


async def test_a_contended_transaction_is_sent_again(served: FaunaDouble, store: FaunaEventStore) -> None:
    served.fail_next("contended transaction", "Transaction was aborted due to detection of concurrent modification.")
    recorded = await store.append("s", [QuestionAsked(text="hi")], 0, "c")
    assert [event.version for event in recorded] == [1]

    served.fail_next("contended transaction", "again", times=10)
    with pytest.raises(StoreUnavailable, match="contended"):
        await store.append("s", [QuestionAsked(text="hi")], 1, "d")


async def test_losing_a_unique_race_reports_the_winner_or_a_conflict(
    served: FaunaDouble, store: FaunaEventStore
) -> None:
    winner = await store.append("s", [QuestionAsked(text="first")], 0, "tg:1")

    served.fail_next("instance not unique", "document is not unique.")
    assert await store.append("s", [QuestionAsked(text="retry")], 0, "tg:1") == winner

    served.fail_next("instance not unique", "document is not unique.")
    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append("s", [QuestionAsked(text="late")], 0, "tg:2")
    assert (raised.value.expected, raised.value.actual) == (0, 1)


async def test_an_import_that_repeats_a_causation_writes_nothing(store: FaunaEventStore) -> None:
    def history(first: int, *causations: str) -> list[RecordedEvent]:
        moment = datetime(2001, 1, 1, tzinfo=UTC)
        return [
            RecordedEvent(stream="s", version=v, recorded_at=moment, causation_id=c, event=QuestionAsked(text=c))
            for v, c in enumerate(causations, first)
        ]

    await store.import_recorded(history(1, "a", "b"))

    with pytest.raises(ValueError, match="repeats a causation id"):
        await store.import_recorded(history(3, "a"))
    with pytest.raises(ValueError, match="repeats causation id 'x'"):
        await store.import_recorded(history(3, "x", "y", "x"))
    with pytest.raises(ConcurrencyConflict):
        await store.import_recorded(history(2, "x", "y", "x"))
    await store.import_recorded(history(3, "b"))
    assert [event.version async for event in store.read_forwards("s")] == [1, 2, 3]
    assert await store.append("s", [], 0, "b") == tuple(history(2, "b", "b"))


async def test_init_schema_is_idempotent_and_waits_for_index_builds() -> None:
    double = FaunaDouble(SECRET, index_build_seconds=0.5).start()
    try:
        client = client_for(double)
        client.query(q.create_collection({"name": "events"}))
        client.query([q.create(q.collection("events"), {"data": {"n": n}}) for n in range(200)])
        store = FaunaEventStore(SECRET, double.endpoint)
        try:
            started = time.monotonic()
            await store.init_schema()
            assert time.monotonic() - started >= 0.4
            await store.init_schema()
            assert all(client.query(q.select("active", q.get(q.index(spec.name)))) for spec in schema.INDEXES)
        finally:
            await store.close()
    finally:
        double.stop()


async def test_init_schema_refuses_an_index_with_another_definition(served: FaunaDouble) -> None:
    client = client_for(served)
    client.query(q.create_collection({"name": "events"}))
    client.query(q.create_index({"name": "events_by_stream", "source": q.collection("events")}))
    store = FaunaEventStore(SECRET, served.endpoint)
    try:
        with pytest.raises(StoreUnavailable, match="events_by_stream"):
            await store.init_schema()
    finally:
        await store.close()


async def test_the_driver_never_runs_on_the_event_loop(store: FaunaEventStore) -> None:
    client = store._connection._client
    threads: list[str] = []
    original = client.query

    def recording(expression: Any, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(expression, *args, **kwargs)

    client.query = recording
    await store.append("s", [QuestionAsked(text="hi")], 0, "c")
    [event async for event in store.read_forwards("s")]
    [event async for event in store.read_backwards("s")]
    [name async for name in store.list_streams()]
    await store.delete_stream("s")

    assert threads
    assert all(name.startswith("fauna") for name in threads)


async def test_a_closed_store_refuses_work(store: FaunaEventStore) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.current_version("s")


def test_no_command_prints_the_fql_v4_deprecation_warning() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import adapters.fauna.store"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert "decommissioning" not in result.stderr
    assert result.stderr == ""


async def test_small_pages_and_an_injected_clock(served: FaunaDouble) -> None:
    start = datetime(2030, 1, 2, 3, 4, 5, 678_901, tzinfo=timezone(timedelta(hours=2)))
    ticks = iter(range(1000))
    store = FaunaEventStore(SECRET, served.endpoint, page_size=3, now=lambda: start + timedelta(seconds=next(ticks)))
    try:
        await store.init_schema()
        recorded = await store.append("s", [QuestionAsked(text=str(n)) for n in range(1, 12)], 0, "c")
        for name in ("b", "a", "c", "e", "d"):
            await store.append(name, [ConversationReset()], 0, "c")

        assert [event.recorded_at for event in recorded] == [start.astimezone(UTC)] * 11
        assert all(event.recorded_at.tzinfo == UTC for event in recorded)
        assert [event async for event in store.read_forwards("s")] == list(recorded)
        assert [e.version async for e in store.read_backwards("s", before=11, limit=7)] == list(range(10, 3, -1))
        assert [e.version async for e in store.read_forwards("s", from_version=2, limit=8)] == list(range(2, 10))
        assert [name async for name in store.list_streams()] == ["a", "b", "c", "d", "e", "s"]
        await store.delete_stream("s")
        assert [name async for name in store.list_streams()] == ["a", "b", "c", "d", "e"]
    finally:
        await store.close()


# Limits Fauna enforces, and the two honesty fixes


def test_a_document_over_8_mb_is_refused_and_nothing_is_written(client: Any) -> None:
    client.query(q.create_collection({"name": "blobs"}))
    with pytest.raises(errors.BadRequest) as raised:
        client.query(q.create(q.collection("blobs"), {"data": {"text": "x" * (8 * 1024 * 1024 + 1)}}))
    assert only_error(raised).code == "invalid argument"
    client.query(q.create_index({"name": "all_blobs", "source": q.collection("blobs")}))
    assert client.query(q.paginate(q.match(q.index("all_blobs"))))["data"] == []


def test_a_transaction_writing_over_16_mb_is_refused_whole(client: Any) -> None:
    client.query(q.create_collection({"name": "blobs"}))
    client.query(q.create_index({"name": "all_blobs", "source": q.collection("blobs")}))
    five_mb = "y" * (5 * 1024 * 1024)
    with pytest.raises(errors.BadRequest):
        client.query([q.create(q.collection("blobs"), {"data": {"text": five_mb}}) for _ in range(4)])
    assert client.query(q.paginate(q.match(q.index("all_blobs"))))["data"] == []


def test_a_document_whose_term_is_over_32_kb_is_left_out_of_that_index(client: Any) -> None:
    client.query(q.create_collection({"name": "notes"}))
    client.query(
        q.create_index({"name": "notes_by_key", "source": q.collection("notes"), "terms": [{"field": ["data", "key"]}]})
    )
    huge = "k" * (33 * 1024)
    ref = client.query(q.create(q.collection("notes"), {"data": {"key": huge}}))["ref"]
    assert client.query(q.exists(ref)) is True
    assert client.query(q.paginate(q.match(q.index("notes_by_key"), huge)))["data"] == []


def test_an_answer_that_cannot_be_sent_as_utf8_is_still_sent_and_the_write_is_kept_once(client: Any) -> None:
    """A lone surrogate in a stored string used to fail the answer after the write was committed."""
    client.query(q.create_collection({"name": "notes"}))
    created = client.query(q.create(q.collection("notes"), {"data": {"text": "lone \udc80"}}))
    assert client.query(q.get(created["ref"]))["data"]["text"] == "lone \udc80"


def test_a_ping_with_a_body_leaves_the_kept_alive_connection_usable(double: FaunaDouble) -> None:
    with socket.create_connection(("127.0.0.1", int(double.endpoint.rsplit(":", 1)[1]))) as connection:
        ping = b"GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        again = b"GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        connection.sendall(ping + again)
        received = b""
        connection.settimeout(5)
        while received.count(b"Scope write is OK") < 2:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.count(b"HTTP/1.1 200") == 2, received
