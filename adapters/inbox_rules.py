"""What every inbox adapter does the same way."""

from __future__ import annotations

from datetime import datetime, timedelta

KEEP_FINISHED = timedelta(days=2)
"""How long a handled update's id is kept (Telegram keeps an unconfirmed update for 24 hours)."""


def prune_before(now: datetime) -> str:
    """ISO time before which handled entries may be dropped."""
    return (now - KEEP_FINISHED).isoformat()
