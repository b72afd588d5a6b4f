"""The Telegram adapter (aiogram 3). aiogram is imported here first, with its Bot API types built on first use
(`lazy_types`), so every module of the adapter starts fast."""

from adapters.telegram.lazy_types import import_aiogram

import_aiogram()
