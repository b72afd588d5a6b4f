"""Bot-level methods: getMe, commands, callback answers, getChat, close/logOut."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from .errors import QUERY_TOO_OLD, ApiError, bad_request
from .formatting import utf16_len
from .models import CallbackAnswer
from .params import Params
from .registry import api_method
from .state import BotState

_COMMAND_NAME = re.compile(r"^[a-z0-9_]+$")
_LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")
_SCOPE_TYPES = {
    "default": (),
    "all_private_chats": (),
    "all_group_chats": (),
    "all_chat_administrators": (),
    "chat": ("chat_id",),
    "chat_administrators": ("chat_id",),
    "chat_member": ("chat_id", "user_id"),
}
MAX_COMMANDS = 100
MAX_COMMAND_LENGTH = 32
MAX_DESCRIPTION_LENGTH = 256
MAX_CALLBACK_TEXT = 200


@api_method("getMe")
async def get_me(state: BotState, params: Params) -> Any:
    """The bot's own ``User`` object."""
    return {
        **state.bot_user.to_api(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@api_method("getChat")
async def get_chat(state: BotState, params: Params) -> Any:
    """A ``ChatFullInfo`` for a known chat."""
    chat = state.resolve_chat(params)
    gift_types = dict.fromkeys(
        ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription", "gifts_from_channels"),
        False,
    )
    extra = {"accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gift_types}
    return {**chat.to_api(), **extra}


@api_method("close")
async def close(state: BotState, params: Params) -> Any:
    """Accepted and ignored."""
    return True


@api_method("logOut")
async def log_out(state: BotState, params: Params) -> Any:
    """Accepted and ignored."""
    return True


# --------------------------------------------------------------------------- commands


def scope_key(state: BotState, params: Params) -> str:
    """Normalized ``BotCommandScope`` + validation of its chat/user ids."""
    scope = params.json("scope", "can't parse BotCommandScope JSON object")
    if scope is None:
        return json.dumps({"type": "default"})
    if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES:
        raise bad_request("unsupported bot command scope type")
    fields = _SCOPE_TYPES[scope["type"]]
    normalized = {"type": scope["type"]}
    for field in fields:
        if field == "chat_id":
            chat = state.resolve_chat(Params(values={"chat_id": str(scope.get("chat_id", ""))}))
            normalized["chat_id"] = chat.id
        else:
            normalized[field] = scope.get(field)
    return json.dumps(normalized, sort_keys=True)


def language_code(params: Params) -> str:
    """``language_code``: empty or a two-letter ISO 639-1 code."""
    code = params.text("language_code").strip()
    if code and not _LANGUAGE_CODE.match(code):
        raise bad_request("invalid language code specified")
    return code


def _clean_command(raw: Any) -> dict[str, str]:
    """tdlib's per-command checks (trim, optional leading '/', lengths)."""
    if not isinstance(raw, dict):
        raise bad_request("can't parse BotCommand: expected an Object")
    for field in ("command", "description"):
        if not isinstance(raw.get(field), str):
            raise bad_request(f'can\'t parse BotCommand: Field "{field}" must be of type String')
    command = raw["command"].strip()
    command = command.removeprefix("/")
    if not command:
        raise bad_request("command must be non-empty")
    if len(command) > MAX_COMMAND_LENGTH:
        raise bad_request(f"command length must not exceed {MAX_COMMAND_LENGTH}")
    description = raw["description"].strip()
    if not description:
        raise bad_request("command description must be non-empty")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise bad_request(f"command description length must not exceed {MAX_DESCRIPTION_LENGTH}")
    return {"command": command, "description": description}


def parse_commands(params: Params) -> list[dict[str, str]]:
    """Validate ``commands`` like tdlib, then like the Telegram server."""
    if not params.has("commands"):
        raise bad_request('parameter "commands" is required')
    raw = params.json("commands", "can't parse commands JSON object")
    if not isinstance(raw, list):
        raise bad_request('field "commands" must be an Array')
    commands = [_clean_command(item) for item in raw]
    if len(commands) > MAX_COMMANDS:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    if any(not _COMMAND_NAME.match(item["command"]) for item in commands):
        raise bad_request("BOT_COMMAND_INVALID")
    return commands


@api_method("setMyCommands")
async def set_my_commands(state: BotState, params: Params) -> Any:
    """Store the command list for a scope and language (an empty list deletes it)."""
    commands = parse_commands(params)
    key = (scope_key(state, params), language_code(params))
    if commands:
        state.commands[key] = commands
    else:
        state.commands.pop(key, None)
    state.notify()
    return True


@api_method("getMyCommands")
async def get_my_commands(state: BotState, params: Params) -> Any:
    """The list stored for exactly that scope and language (no fallback)."""
    key = (scope_key(state, params), language_code(params))
    return [dict(item) for item in state.commands.get(key, [])]


@api_method("deleteMyCommands")
async def delete_my_commands(state: BotState, params: Params) -> Any:
    """Forget the list of a scope and language."""
    state.commands.pop((scope_key(state, params), language_code(params)), None)
    state.notify()
    return True


# --------------------------------------------------------------------------- callback queries


@api_method("answerCallbackQuery")
async def answer_callback_query(state: BotState, params: Params) -> Any:
    """Answer a button press injected with ``FakeTelegram.press_button``."""
    query_id = params.text("callback_query_id")
    record = state.callback_queries.get(query_id)
    ttl = state.config.callback_query_ttl
    expired = record is not None and ttl is not None and time.monotonic() - record.time > ttl
    if record is None or record.answer is not None or expired:
        raise ApiError(400, QUERY_TOO_OLD)
    text = params.optional("text")
    if text is not None and utf16_len(text) > MAX_CALLBACK_TEXT:
        raise bad_request("MESSAGE_TOO_LONG")
    answer = CallbackAnswer(
        callback_query_id=query_id,
        text=text,
        show_alert=params.flag("show_alert"),
        url=params.optional("url"),
        cache_time=params.integer("cache_time"),
        time=time.monotonic(),
    )
    record.answer = answer
    state.callback_answers.append(answer)
    state.notify()
    return True
