"""Spending caps, checked before each model call: a request is refused once the spending already recorded in the
period has reached the budget, so a call that starts below it may pass it by at most its own cost (and, across
workers, by the calls in flight when it was crossed). Days and months are UTC."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs

from service.usage_projection import UsageProjection
from service.usage_report import chat_of_stream

_REFUSAL = re.compile(r"^(user_day|user_month|chat_month|total_month) budget of (\S+) USD reached; resets (.+ UTC)$")


@attrs.frozen
class BudgetLimits:
    """The caps in USD (None: no cap), and the users the user caps do not apply to (the bot's operators)."""

    user_day: Decimal | None = None
    """What one user may spend in a UTC day, across every chat."""
    user_month: Decimal | None = None
    """What one user may spend in a UTC month."""
    chat_month: Decimal | None = None
    """What one chat (all its users and topics) may spend in a UTC month."""
    total_month: Decimal | None = None
    """What the whole bot may spend in a UTC month."""
    exempt: frozenset[int] = frozenset()
    """Users the user caps do not apply to."""

    @property
    def any(self) -> bool:
        """Whether any cap is set (without one, nothing is checked or read)."""
        return any(cap is not None for cap in (self.user_day, self.user_month, self.chat_month, self.total_month))


@attrs.frozen
class Refusal:
    """A request refused: which budget it met, and when that budget starts over."""

    budget: str
    """`user_day`, `user_month`, `chat_month` or `total_month`."""
    limit: Decimal
    """The cap, in USD."""
    resets: datetime
    """When the period ends (UTC)."""

    @property
    def message(self) -> str:
        """The refusal as the log records it (`parse_refusal` reads it back)."""
        return f"{self.budget} budget of {self.limit} USD reached; resets {self.resets:%Y-%m-%d %H:%M} UTC"


def parse_refusal(message: str) -> tuple[str, str, str] | None:
    """(budget, limit, resets) from a recorded refusal's message; None for any other message."""
    found = _REFUSAL.match(message)
    return None if found is None else (found[1], found[2], found[3])


class BudgetGuard:
    """Decides, from the ledger projection brought up to date, whether a request may call a model."""

    def __init__(self, projection: UsageProjection, limits: BudgetLimits, now: Callable[[], datetime]) -> None:
        self._projection = projection
        self._limits = limits
        self._now = now

    async def refusal(self, asker: int | None, stream: str) -> Refusal | None:
        """The first budget the asker, their chat or the bot has used up, if any."""
        limits = self._limits
        if not limits.any:
            return None
        await self._projection.catch_up()
        now = self._now().astimezone(UTC)
        day, month = now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")
        tomorrow = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
        checks: list[tuple[str, str, str, str, Decimal | None, datetime]] = []
        if asker is not None and asker not in limits.exempt:
            checks += [
                ("user", str(asker), "day", day, limits.user_day, tomorrow),
                ("user", str(asker), "month", month, limits.user_month, next_month),
            ]
        checks += [
            ("chat", chat_of_stream(stream), "month", month, limits.chat_month, next_month),
            ("total", "", "month", month, limits.total_month, next_month),
        ]
        for scope, holder, period, when, limit, resets in checks:
            if limit is not None and await self._projection.spent(scope, holder, period, when) >= limit:
                return Refusal(f"{scope}_{period}", limit, resets)
        return None


TOKEN_UNITS = ("input", "cached_input", "output")


@attrs.frozen
class Spending:
    """Tokens and USD of one holder in one period, and the cap on it (if any)."""

    tokens: int
    """Prompt and completion tokens."""
    cost: Decimal
    """USD, exact."""
    limit: Decimal | None = None
    """The cap in USD, if there is one for this holder."""

    @property
    def left(self) -> Decimal | None:
        """What is left under the cap (never below 0); None without a cap."""
        return None if self.limit is None else max(Decimal(0), self.limit - self.cost)


@attrs.frozen
class UsageSummary:
    """What `/usage` shows: the user today and this month, and their chat this month."""

    user_day: Spending
    """The user, today (UTC)."""
    user_month: Spending
    """The user, this month."""
    chat_month: Spending
    """The chat, this month."""


async def usage_summary(
    projection: UsageProjection, limits: BudgetLimits, user: int, stream: str, now: datetime
) -> UsageSummary:
    """The user's and their chat's spending as of now, the ledger brought up to date first."""
    await projection.catch_up()
    moment = now.astimezone(UTC)
    day, month = moment.strftime("%Y-%m-%d"), moment.strftime("%Y-%m")
    capped = user not in limits.exempt

    async def spending(scope: str, holder: str, period: str, when: str, limit: Decimal | None) -> Spending:
        quantities = await projection.quantities(scope, holder, period, when)
        tokens = sum(quantity for (_, unit), quantity in quantities.items() if unit in TOKEN_UNITS)
        return Spending(tokens, projection.priced(quantities), limit)

    return UsageSummary(
        await spending("user", str(user), "day", day, limits.user_day if capped else None),
        await spending("user", str(user), "month", month, limits.user_month if capped else None),
        await spending("chat", chat_of_stream(stream), "month", month, limits.chat_month),
    )
