"""Plain messages: text by the chat's mode, and a clear rule for everything that is not text."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import Message, Update

from adapters.telegram import replies
from adapters.telegram.delivery import send_plain
from adapters.telegram.handlers.common import answer_live, said
from adapters.telegram.i18n import translated
from adapters.telegram.identity import thread_of_message
from adapters.telegram.intake import Preview
from adapters.telegram.live import LiveAnswers
from adapters.telegram.speech import Speech
from domain.conversation import has_visible_text
from service.conversations import ConversationService, Request

router = Router(name=__name__)


@router.message(F.text)
async def text(
    message: Message,
    event_update: Update,
    request: Request,
    bot: Bot,
    service: ConversationService,
    live: LiveAnswers,
    speech: Speech,
    preview: Preview | None = None,
    addressed_text: str | None = None,
) -> None:
    """A question in chat mode (streamed back), a picture prompt in image mode."""
    content = addressed_text if addressed_text is not None else message.text or ""
    if not has_visible_text(content):
        said("empty")
        await send_plain(bot, message.chat.id, translated(replies.EMPTY), thread=thread_of_message(message))
        return
    # The service decides by the mode it reads under the chat's turn; the mode it last saw only picks the
    # indicator shown meanwhile (read only for a chat it has not seen: a stale guess costs just the indicator).
    mode = service.last_known_mode(request.stream) or await service.mode(request.stream)
    outcome = await answer_live(
        message,
        event_update,
        request,
        bot,
        service,
        live,
        lambda on_text, stop: service.say(request, content, on_text, stop),
        preview,
        drawing=mode == "image",
    )
    await speech.after(bot, message, request, service, outcome)


@router.message()
async def not_text(message: Message, bot: Bot) -> None:
    """Stickers, videos, locations, contacts, polls...: say what the bot understands."""
    said("not_text")
    await send_plain(bot, message.chat.id, translated(replies.NOT_TEXT), thread=thread_of_message(message))
