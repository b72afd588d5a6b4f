"""``reply_markup`` decoding and the checks the real server applies to it."""

from __future__ import annotations

import json
from typing import Any

from .errors import bad_request
from .formatting import normalize_link
from .params import Params

_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_MAX_BUTTONS = 100
_BUTTON_PREFIX = "can't parse inline keyboard button: "


def parse_reply_markup(params: Params) -> dict[str, Any] | None:
    """Decode and validate ``reply_markup``; None when absent."""
    raw = params.optional("reply_markup")
    if raw is None:
        return None
    try:
        markup = json.loads(raw)
    except ValueError:
        raise bad_request("can't parse reply keyboard markup JSON object") from None
    if not isinstance(markup, dict):
        raise bad_request("object expected as reply markup")
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
    elif "keyboard" in markup:
        _check_reply_keyboard(markup["keyboard"])
    elif not ({"remove_keyboard", "force_reply"} & markup.keys()):
        raise bad_request('can\'t find field "inline_keyboard"')
    return markup


def inline_only(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """Edits accept only inline keyboards."""
    if markup is not None and "inline_keyboard" not in markup:
        raise bad_request("inline keyboard expected")
    return markup


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    total = 0
    for row in rows:
        if not isinstance(row, list):
            raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        for button in row:
            _check_inline_button(button)
            total += 1
    if total > _MAX_BUTTONS:
        raise bad_request("reply markup is too long")


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise bad_request(_BUTTON_PREFIX + "InlineKeyboardButton must be an Object")
    if "text" not in button:
        raise bad_request(_BUTTON_PREFIX + 'Can\'t find field "text"')
    if not isinstance(button["text"], str):
        raise bad_request(_BUTTON_PREFIX + 'Field "text" must be of type String')
    actions = [key for key in _BUTTON_ACTIONS if button.get(key) not in (None, "")]
    if not actions:
        raise bad_request(_BUTTON_PREFIX + "Text buttons are unallowed in the inline keyboard")
    if "callback_data" in actions:
        _check_callback_data(button["callback_data"])
    if "url" in actions:
        _check_button_url(button["url"])


def _check_callback_data(data: Any) -> None:
    if not isinstance(data, str):
        raise bad_request(_BUTTON_PREFIX + 'Field "callback_data" must be of type String')
    if len(data.encode("utf-8")) > 64:
        raise bad_request("BUTTON_DATA_INVALID")


def _check_button_url(url: Any) -> None:
    if not isinstance(url, str):
        raise bad_request(_BUTTON_PREFIX + 'Field "url" must be of type String')
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme and scheme not in {"http", "https", "tg", "ton"}:
        raise bad_request(f"inline keyboard button URL '{url}' is invalid: Unsupported URL protocol")
    if normalize_link(url) is None:
        raise bad_request("BUTTON_URL_INVALID")


def _check_reply_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
    for row in rows:
        for button in row:
            if isinstance(button, str):
                continue
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request('can\'t parse keyboard button: Field "text" must be of type String')
