"""The Inbox contract: every store's inbox (memory, sqlite, postgres, fauna) must pass every test here."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import attrs

from domain.events import QuestionAsked
from domain.ports import EventStore, InboxEntry

HOSTILE = "RTL שלום 😀 astral 𝕳 controls \x01\x7f NUL-escaped \\u0000 quotes \"' lone \udc80 surrogate"


def entry(update_id: int, chat: str | None = "100", text: str = "hello") -> InboxEntry:
    payload = json.dumps({"update_id": update_id, "message": {"text": text}})
    return InboxEntry(update_id=update_id, chat=chat, payload=payload)


async def test_admitted_entries_are_unfinished_in_update_order(store: EventStore) -> None:
    inbox = store.inbox("1")
    assert await inbox.admit([entry(7), entry(5, chat=None), entry(6, text=HOSTILE)]) == {5, 6, 7}
    unfinished = await inbox.unfinished()
    assert [e.update_id for e in unfinished] == [5, 6, 7]
    assert attrs.evolve(unfinished[0], admitted_at=None) == entry(5, chat=None)
    assert all(e.admitted_at is not None and e.admitted_at.tzinfo is not None for e in unfinished)
    assert [e.update_id for e in await inbox.unfinished("100")] == [6, 7]
    assert json.loads(unfinished[1].payload)["message"]["text"] == HOSTILE


async def test_admitting_again_keeps_the_first_and_reports_only_what_is_unhandled(store: EventStore) -> None:
    inbox = store.inbox("1")
    await inbox.admit([entry(1, text="first"), entry(2)])
    await inbox.finish(2)
    assert await inbox.admit([entry(1, text="again"), entry(2), entry(3)]) == {1, 3}
    unfinished = await inbox.unfinished()
    assert [(e.update_id, json.loads(e.payload)["message"]["text"]) for e in unfinished] == [(1, "first"), (3, "hello")]


async def test_a_finished_update_is_not_admitted_again(store: EventStore) -> None:
    inbox = store.inbox("1")
    await inbox.admit([entry(9)])
    await inbox.finish(9)
    assert await inbox.admit([entry(9)]) == frozenset()
    assert await inbox.unfinished() == []


async def test_a_preview_is_remembered_until_the_update_is_finished(store: EventStore) -> None:
    inbox = store.inbox("1")
    await inbox.admit([entry(1), entry(2)])
    await inbox.note_preview(1, 555)
    assert [(e.update_id, e.preview) for e in await inbox.unfinished()] == [(1, 555), (2, None)]
    await inbox.finish(1)
    await inbox.note_preview(1, 556)  # too late: nothing to remember it for
    assert [(e.update_id, e.preview) for e in await inbox.unfinished()] == [(2, None)]


async def test_each_bot_has_its_own_inbox(store: EventStore) -> None:
    await store.inbox("1").admit([entry(1, text="for bot one")])
    assert await store.inbox("2").admit([entry(1, text="for bot two")]) == {1}
    await store.inbox("2").finish(1)
    assert [e.update_id for e in await store.inbox("1").unfinished()] == [1]
    assert await store.inbox("2").unfinished() == []


async def test_erasing_a_stream_erases_its_inbox_text(store: EventStore) -> None:
    inbox = store.inbox("1")
    await store.append("100", [QuestionAsked(text="secret")], 0, "tg:1")
    await inbox.admit([entry(1, chat="100"), entry(2, chat="200"), entry(3, chat="100")])
    await store.delete_stream("100")
    assert [e.update_id for e in await inbox.unfinished()] == [2]
    assert await inbox.admit([entry(1, chat="100")]) == frozenset()


async def test_concurrent_admissions_of_one_update_keep_one_entry(store: EventStore) -> None:
    inbox = store.inbox("1")
    results = await asyncio.gather(*(inbox.admit([entry(4)]) for _ in range(5)))
    assert all(result == {4} for result in results)  # unhandled for everyone: the caller decides who handles it
    assert [e.update_id for e in await inbox.unfinished()] == [4]


async def test_one_worker_at_a_time_holds_a_claim_until_it_goes_stale_or_the_entry_is_finished(
    store: EventStore,
) -> None:
    inbox = store.inbox("1")
    await inbox.admit([entry(1), entry(2)])
    stale = timedelta(seconds=30)
    assert await inbox.claim(1, "a", stale)
    assert await inbox.claim(1, "a", stale)  # renewed
    assert not await inbox.claim(1, "b", stale)
    assert await inbox.claim(1, "b", timedelta(0))  # a's claim is stale for b's patience
    assert not await inbox.claim(1, "a", stale)
    assert await inbox.claim(2, "a", stale)
    await inbox.finish(1)
    assert not await inbox.claim(1, "b", stale)
    assert not await inbox.claim(3, "a", stale)
