"""What every inbox adapter does the same way."""

from __future__ import annotations

from datetime import timedelta

KEEP_FINISHED = timedelta(days=2)
"""How long a handled update's id is kept (Telegram keeps an unconfirmed update for 24 hours)."""
