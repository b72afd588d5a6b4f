"""The ledger: what each model call billed, whom it is charged to, and what it cost, folded from the events.

Usage is what the server billed, recorded with the outcome (an answer's tokens, a picture's size and quality); a
price table turns it into money, so the same log can be priced again with another table. Charges go to the user
who asked (recorded on the question), to their chat, and to the bot's total, by UTC day and month.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal

import attrs

from domain.events import (
    AnswerFailed,
    AnswerGiven,
    AnswerSpoken,
    Event,
    ImageGenerated,
    RecordedEvent,
    VoiceTranscribed,
)
from domain.prices import PriceTable

UNITS = ("input", "cached_input", "output", "image", "audio_second", "speech_char")
"""The kinds of usage a server bills (an image unit is `image:<size>`, `image:hd:<size>` for quality hd)."""


@attrs.frozen
class Billed:
    """A quantity of one unit of one model, billed by one call."""

    model: str
    """The model the server says it billed (or the one asked for)."""
    unit: str
    """`input`, `cached_input`, `output` tokens; `image:<size>` pictures; `audio_second`; `speech_char`."""
    quantity: int
    """How many."""


@attrs.frozen
class Charge:
    """What one call billed, and to whom and when it is charged."""

    stream: str
    """The stream whose request made the call."""
    version: int
    """The version of the outcome that recorded the usage."""
    user_id: int | None
    """Who asked (None when the request did not record it: charged to the chat and the total only)."""
    at: datetime
    """When the outcome was recorded (UTC)."""
    billed: tuple[Billed, ...]
    """What the server billed."""

    @property
    def day(self) -> str:
        """The UTC day charged, `YYYY-MM-DD`."""
        return self.at.strftime("%Y-%m-%d")

    @property
    def month(self) -> str:
        """The UTC month charged, `YYYY-MM`."""
        return self.at.strftime("%Y-%m")


def billed_by(event: Event) -> tuple[Billed, ...]:
    """What the server billed for the outcome an event records (nothing for other events, and no zero lines)."""
    match event:
        case AnswerGiven(model=model) | AnswerFailed(model=model) if model:
            cached = min(event.cached_tokens, event.prompt_tokens)
            lines = (
                Billed(model, "input", event.prompt_tokens - cached),
                Billed(model, "cached_input", cached),
                Billed(model, "output", event.completion_tokens),
            )
            return tuple(line for line in lines if line.quantity > 0)
        case ImageGenerated(model=model, size=size, quality=quality, count=count) if count > 0:
            unit = f"image:{size}" if quality in ("", "standard", "auto") else f"image:{quality}:{size}"
            return (Billed(model, unit, count),)
        case VoiceTranscribed(model=model, duration_s=seconds) if seconds > 0:
            return (Billed(model, "audio_second", seconds),)
        case AnswerSpoken(model=model, characters=characters) if characters > 0:
            return (Billed(model, "speech_char", characters),)
        case _:
            return ()


def charge_of(recorded: RecordedEvent) -> Charge | None:
    """The charge an event records (an outcome the server billed), charged to its request's asker; else None."""
    billed = billed_by(recorded.event)
    if not billed:
        return None
    event = recorded.event
    asker = event.sender_id if isinstance(event, VoiceTranscribed) else getattr(event, "asker_id", None)
    return Charge(recorded.stream, recorded.version, asker, recorded.recorded_at, billed)


def cost(billed: Iterable[Billed], prices: PriceTable) -> Decimal:
    """What billed usage costs by a price table, in exact USD (a model without a price costs nothing)."""
    total = Decimal(0)
    for line in billed:
        price = prices.cost(line.model, line.unit, line.quantity)
        if price is not None:
            total += price
    return total


def unpriced(billed: Iterable[Billed], prices: PriceTable) -> set[str]:
    """The models of billed usage the table has no price for (each is charged nothing)."""
    return {line.model for line in billed if prices.cost(line.model, line.unit, line.quantity) is None}


SCOPES = ("user", "chat", "total")
"""Whom usage is charged to: the asker, their chat, and the bot as a whole."""
PERIODS = ("day", "month")
"""UTC days (`YYYY-MM-DD`) and months (`YYYY-MM`)."""


@attrs.frozen(order=True)
class LedgerKey:
    """One line of the ledger: a quantity of one unit of one model, charged to one scope in one period."""

    scope: str
    """`user`, `chat` or `total`."""
    holder: str
    """The user id or chat id charged (empty for the total)."""
    period: str
    """`day` or `month`."""
    when: str
    """The day (`YYYY-MM-DD`) or month (`YYYY-MM`)."""
    model: str
    """The model billed."""
    unit: str
    """The unit billed (see UNITS)."""


def ledger_lines(charge: Charge, chat: str) -> Iterable[tuple[LedgerKey, int]]:
    """The ledger lines a charge adds to (`chat`: the chat of the charge's stream)."""
    holders = [("chat", chat), ("total", "")]
    if charge.user_id is not None:
        holders.insert(0, ("user", str(charge.user_id)))
    for scope, holder in holders:
        for period, when in (("day", charge.day), ("month", charge.month)):
            for line in charge.billed:
                yield LedgerKey(scope, holder, period, when, line.model, line.unit), line.quantity


def fold_ledger(
    events: Iterable[RecordedEvent], chat_of: Callable[[str], str], ledger: Mapping[LedgerKey, int] | None = None
) -> dict[LedgerKey, int]:
    """The ledger after the events (any order, any slice of the log: each adds what it billed, whatever came
    before), starting from `ledger`."""
    totals = dict(ledger or {})
    for recorded in events:
        charge = charge_of(recorded)
        if charge is None:
            continue
        for key, quantity in ledger_lines(charge, chat_of(recorded.stream)):
            totals[key] = totals.get(key, 0) + quantity
    return totals


def spent(
    ledger: Mapping[LedgerKey, int], prices: PriceTable, scope: str, holder: str, period: str, when: str
) -> Decimal:
    """What one holder spent in one period, by a price table."""
    billed = (
        Billed(key.model, key.unit, quantity)
        for key, quantity in ledger.items()
        if (key.scope, key.holder, key.period, key.when) == (scope, holder, period, when)
    )
    return cost(billed, prices)
