"""``getChatMember`` and ``getChatAdministrators``.

Who administers a chat is set from the test side (``FakeTelegram.make_admin``);
every other user known to the bot counts as a plain member.  In a channel the
bot itself is an administrator (``new_channel`` says so); elsewhere it is a
member unless made an administrator.  Banned, restricted and left members are
not emulated.
"""

from __future__ import annotations

from typing import Any

from .errors import bad_request
from .models import Chat, ChatAdmin, User
from .params import Params
from .registry import api_method
from .state import BotState

USER_NOT_FOUND = "user not found"
INVALID_USER_ID = "invalid user_id specified"
PRIVATE_CHAT_ADMINS = "there are no administrators in the private chat"

# Rights of an administrator who was promoted with the defaults of the Telegram apps.
_COMMON_RIGHTS = {
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_send_welcome_messages": False,
}
_GROUP_RIGHTS = {"can_pin_messages": True, "can_manage_topics": False}
_CHANNEL_RIGHTS = {"can_post_messages": True, "can_edit_messages": True, "can_manage_direct_messages": False}


def admin_to_api(chat: Chat, admin: ChatAdmin) -> dict[str, Any]:
    """``ChatMemberOwner`` or ``ChatMemberAdministrator`` with every field the Bot API requires."""
    if admin.creator:
        data: dict[str, Any] = {"status": "creator", "user": admin.user.to_api(), "is_anonymous": admin.is_anonymous}
    else:
        extra = _CHANNEL_RIGHTS if chat.type == "channel" else _GROUP_RIGHTS
        data = {
            "status": "administrator",
            "user": admin.user.to_api(),
            "can_be_edited": False,
            "is_anonymous": admin.is_anonymous,
            **_COMMON_RIGHTS,
            **extra,
            **dict(admin.rights),
        }
    if admin.custom_title:
        data["custom_title"] = admin.custom_title
    return data


def chat_admins(state: BotState, chat: Chat) -> list[ChatAdmin]:
    """The creator first, then the administrators in promotion order (the bot included in channels)."""
    admins = dict(state.admins.get(chat.id, {}))
    if chat.type == "channel":
        admins.setdefault(state.bot_user.id, ChatAdmin(user=state.bot_user))
    return sorted(admins.values(), key=lambda admin: not admin.creator)


def member_user(state: BotState, chat: Chat, user_id: int) -> User:
    """The user a ``getChatMember`` asks about, or ``user not found``."""
    if user_id == state.bot_user.id:
        return state.bot_user
    user = state.users.get(user_id)
    if user is None or (chat.type == "private" and user_id != chat.id):
        raise bad_request(USER_NOT_FOUND)
    return user


@api_method("getChatMember")
async def get_chat_member(state: BotState, params: Params) -> Any:
    """The ``ChatMember`` of a known user in a known chat."""
    chat = state.resolve_chat(params)
    user_id = params.integer("user_id")
    if user_id <= 0:
        raise bad_request(INVALID_USER_ID)
    user = member_user(state, chat, user_id)
    for admin in chat_admins(state, chat) if chat.type != "private" else ():
        if admin.user.id == user.id:
            return admin_to_api(chat, admin)
    return {"status": "member", "user": user.to_api()}


@api_method("getChatAdministrators")
async def get_chat_administrators(state: BotState, params: Params) -> Any:
    """Creator and administrators of a group or channel, bots left out as on Telegram."""
    chat = state.resolve_chat(params)
    if chat.type == "private":
        raise bad_request(PRIVATE_CHAT_ADMINS)
    return [admin_to_api(chat, admin) for admin in chat_admins(state, chat) if not admin.user.is_bot]
