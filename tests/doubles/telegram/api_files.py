"""``getFile``: a file's ``File`` object (its download path), with the real server's refusals.

The bytes are served by ``FakeTelegram`` at ``GET /file/bot<token>/<file_path>``, where aiogram's
``TelegramAPIServer.from_base(base)`` downloads from.
"""

from __future__ import annotations

from typing import Any

from .errors import bad_request
from .files import MAX_DOWNLOAD_SIZE
from .params import Params
from .registry import api_method
from .state import BotState

UNAVAILABLE = "wrong file_id or the file is temporarily unavailable"


@api_method("getFile")
async def get_file(state: BotState, params: Params) -> Any:
    """The ``File`` (``file_id``, ``file_unique_id``, ``file_size``, ``file_path``) of a known file."""
    file_id = params.text("file_id").strip()
    if not file_id:
        raise bad_request("file_id not specified")
    stored = state.files.get(file_id)
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.size > MAX_DOWNLOAD_SIZE:
        raise bad_request("file is too big")
    if file_id in state.files.unavailable:
        raise bad_request(UNAVAILABLE)
    return stored.to_file()
