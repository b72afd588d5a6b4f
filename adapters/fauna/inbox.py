"""The inbox of one bot in Fauna, one document per update (schema: adapters/fauna/schema.py).

Each operation is one FQL query, so one transaction. A handled update keeps its document without `payload` and
`open` (so a redelivery is recognised); times are ISO 8601 UTC strings, which order as the times do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from adapters.fauna import schema
from adapters.fauna.driver import q
from adapters.store_rules import recording_time
from domain.codec import parse_utc
from domain.ports import InboxEntry

if TYPE_CHECKING:
    from adapters.fauna.store import FaunaEventStore

PAGE = 100_000
"""Most unhandled updates read at once (Fauna's largest page)."""


def _ref_of(bot: str, update_id: int) -> Any:
    """The document's ref, or null when there is none."""
    return q.select(["data", 0], q.paginate(q.match(q.index(schema.INBOX_BY_UPDATE), [bot, update_id])), None)


def _admit(bot: str, now: str, entries: Sequence[InboxEntry]) -> Any:
    """Create the missing documents; answer, per entry, whether it is unhandled."""
    return [
        q.let(
            {"ref": _ref_of(bot, entry.update_id)},
            q.if_(
                q.equals(q.var("ref"), None),
                q.do(
                    q.create(
                        q.collection(schema.INBOX),
                        {
                            "data": {
                                "bot": bot,
                                "update_id": entry.update_id,
                                "chat": entry.chat,
                                "admitted_at": now,
                                "payload": entry.payload,
                                "open": bot,
                            }
                        },
                    ),
                    True,
                ),
                q.equals(q.select(["data", "open"], q.get(q.var("ref")), None), bot),
            ),
        )
        for entry in entries
    ]


def _unfinished(bot: str) -> Any:
    return q.map_(
        q.lambda_(["update_id", "ref"], q.select(["data"], q.get(q.var("ref")))),
        q.paginate(q.match(q.index(schema.INBOX_OPEN), bot), size=PAGE),
    )


def _change(bot: str, update_id: int, fields: dict[str, Any]) -> Any:
    """Update an unhandled document's fields; nothing for a handled or unknown one."""
    return q.let(
        {"ref": _ref_of(bot, update_id)},
        q.if_(
            q.equals(q.var("ref"), None),
            None,
            q.if_(
                q.equals(q.select(["data", "open"], q.get(q.var("ref")), None), bot),
                q.do(q.update(q.var("ref"), {"data": fields}), None),
                None,
            ),
        ),
    )


def _claim(bot: str, update_id: int, worker: str, now: str, stale_before: str) -> Any:
    """Claim an unhandled document unless another worker's claim is fresh; answer whether it was claimed."""
    take = q.do(q.update(q.var("ref"), {"data": {"claimed_by": worker, "claimed_at": now}}), True)
    holder = q.select(["data", "claimed_by"], q.var("document"), None)
    stale = q.lt(q.select(["data", "claimed_at"], q.var("document"), ""), stale_before)
    return q.let(
        {"ref": _ref_of(bot, update_id)},
        q.if_(
            q.equals(q.var("ref"), None),
            False,
            q.let(
                {"document": q.get(q.var("ref"))},
                q.if_(
                    q.equals(q.select(["data", "open"], q.var("document"), None), bot),
                    q.if_(
                        q.equals(holder, None),
                        take,
                        q.if_(
                            q.equals(holder, worker),
                            take,
                            q.if_(stale, take, False),
                        ),
                    ),
                    False,
                ),
            ),
        ),
    )


def erase_chat(chat: str) -> Any:
    """FQL: drop the text of a chat's entries (of every bot)."""
    return q.foreach(
        q.lambda_("ref", q.update(q.var("ref"), {"data": {"payload": None, "preview": None, "open": None}})),
        q.paginate(q.match(q.index(schema.INBOX_BY_CHAT), chat), size=PAGE),
    )


class FaunaInbox:
    """An Inbox in the Fauna store's `inbox` collection."""

    def __init__(self, store: FaunaEventStore, bot: str) -> None:
        self._store = store
        self._bot = bot

    async def admit(self, entries: Sequence[InboxEntry]) -> frozenset[int]:
        """Create the entries that are new, in one transaction; the ids still unhandled (see Inbox.admit)."""
        if not entries:
            return frozenset()
        now = recording_time(self._store.clock).isoformat()
        flags = await self._store.query(partial(_admit, self._bot, now, list(entries)))
        return frozenset(entry.update_id for entry, unhandled in zip(entries, flags, strict=True) if unhandled)

    async def unfinished(self, chat: str | None = None) -> list[InboxEntry]:
        """Unhandled entries (of one chat, when given), oldest update first."""
        page = await self._store.query(partial(_unfinished, self._bot))
        return [
            InboxEntry(
                update_id=data["update_id"],
                chat=data.get("chat"),
                payload=data["payload"],
                preview=data.get("preview"),
                admitted_at=parse_utc(data["admitted_at"]),
            )
            for data in page["data"]
            if chat is None or data.get("chat") == chat
        ]

    async def claim(self, update_id: int, worker: str, stale_after: timedelta) -> bool:
        """Take or renew the right to handle an unhandled entry (see Inbox.claim)."""
        now = recording_time(self._store.clock)
        build = partial(_claim, self._bot, update_id, worker, now.isoformat(), (now - stale_after).isoformat())
        return bool(await self._store.query(build))

    async def note_preview(self, update_id: int, message_id: int) -> None:
        """Remember the preview of an unhandled entry."""
        await self._store.query(partial(_change, self._bot, update_id, {"preview": message_id}))

    async def finish(self, update_id: int) -> None:
        """Drop the entry's text, keep its id."""
        fields = {"payload": None, "preview": None, "open": None, "claimed_by": None, "claimed_at": None}
        await self._store.query(partial(_change, self._bot, update_id, fields))

    async def erase_chat(self, chat: str) -> None:
        """Drop the text of the chat's entries (of every bot)."""
        await self._store.query(partial(erase_chat, chat))
