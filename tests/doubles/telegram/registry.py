"""Registry of emulated Bot API methods (names are case-insensitive, as on the real server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from .params import Params
from .state import BotState


@attrs.frozen
class Reply:
    """A successful result plus the optional ``description`` some methods return."""

    result: Any
    description: str | None = None


Handler = Callable[[BotState, Params], Awaitable[Any]]

METHODS: dict[str, tuple[str, Handler]] = {}

# Real methods this fake does not emulate: answered with 501 so a test notices
# instead of getting a misleading 404.
UNEMULATED = frozenset(
    name.lower()
    for name in (
        "sendAnimation",
        "sendDice",
        "sendSticker",
        "sendVideo",
        "sendVideoNote",
        "sendLocation",
        "sendVenue",
        "sendContact",
        "sendPoll",
        "stopPoll",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
        "sendMediaGroup",
        "setMessageReaction",
        "editMessageMedia",
        "editMessageLiveLocation",
        "stopMessageLiveLocation",
        "deleteMessages",
        "getChatMemberCount",
        "leaveChat",
        "pinChatMessage",
        "unpinChatMessage",
        "unpinAllChatMessages",
        "answerInlineQuery",
        "setChatMenuButton",
        "getChatMenuButton",
        "setMyName",
        "getMyName",
        "setMyDescription",
        "getMyDescription",
        "setMyShortDescription",
        "getMyShortDescription",
        "getUserProfilePhotos",
        "banChatMember",
        "unbanChatMember",
        "restrictChatMember",
        "promoteChatMember",
        "exportChatInviteLink",
        "createChatInviteLink",
        "sendInvoice",
        "answerPreCheckoutQuery",
        "answerShippingQuery",
        "sendGame",
        "createForumTopic",
        "editForumTopic",
        "closeForumTopic",
        "reopenForumTopic",
        "deleteForumTopic",
        "unpinAllForumTopicMessages",
        "getForumTopicIconStickers",
        "editGeneralForumTopic",
        "closeGeneralForumTopic",
        "reopenGeneralForumTopic",
        "hideGeneralForumTopic",
        "unhideGeneralForumTopic",
        "unpinAllGeneralForumTopicMessages",
    )
)


def api_method(name: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the implementation of Bot API method ``name``."""

    def register(handler: Handler) -> Handler:
        METHODS[name.lower()] = (name, handler)
        return handler

    return register
