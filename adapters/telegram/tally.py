"""What the updates metric counts: each update's kind, and its outcome in a few classes.

The canonical log line (`middlewares.UpdateLog`) names an update's outcome in detail (`answered`, `failed_timeout`,
`persona_selected`, `throttled`, ...); the metric counts it in one of the classes `outcome_class` returns. The
intake adds the two outcomes that never reach the dispatcher: `duplicate` (an update this process, or another
webhook worker, holds or has handled already) and `poison` (one aiogram cannot parse).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram.types import Update
from aiogram.types.update import UpdateTypeLookupError

CountUpdate = Callable[[str, str], None]
"""Counts one update by kind and outcome class (`Metrics.count_update`)."""

_ANSWERED = frozenset({"answered", "drawn"})
_REPLAYED = frozenset({"answered_again", "drawn_again", "already_delivered"})
_REFUSED = frozenset({"denied", "group_not_allowed", "throttled", "admins_only"})
_FAILED = frozenset({"internal_error", "telegram_error"})


def not_counted(kind: str, outcome: str) -> None:
    """Counts nothing (a bot built without metrics)."""


def update_kind(update: Update) -> str:
    """What kind of update this is (`message`, `callback_query`, ...; `unknown` for a kind aiogram does not know)."""
    try:
        return update.event_type
    except UpdateTypeLookupError:
        return "unknown"


def raw_kind(raw: Any) -> str:
    """The kind of an update that could not be parsed: its field naming a kind aiogram knows, else `unknown`."""
    kinds = [key for key in raw if key != "update_id" and key in Update.model_fields] if isinstance(raw, dict) else []
    return kinds[0] if kinds else "unknown"


def outcome_class(outcome: str) -> str:
    """The class of a canonical log line's outcome:
    - `answered`: the model answered or drew;
    - `replayed`: a redelivered request got the outcome the log holds, with no model call;
    - `failed`: the model's call, a transcription or the handler failed (the user is told);
    - `retried`: the store could not record it; it is handled again (and counted again) later;
    - `ignored`: nothing to do (not addressed to the bot, from a bot, a stale button, ...);
    - `refused`: not allowed, throttled, or declined (a file too big, pictures off, ...);
    - `handled`: anything else (commands and settings)."""
    if outcome in _ANSWERED:
        return "answered"
    if outcome in _REPLAYED:
        return "replayed"
    if outcome in _FAILED or outcome.startswith(("failed_", "not_heard_")):
        return "failed"
    if outcome == "store_unavailable":
        return "retried"
    if outcome.startswith("ignored") or outcome.endswith("_ignored"):
        return "ignored"
    if outcome in _REFUSED or outcome.endswith(("_refused", "_declined")) or outcome == "too_big":
        return "refused"
    return "handled"
