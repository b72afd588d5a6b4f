"""Spoken answers: with /voice on, each fresh answer is also sent as voice notes, made by the speech model.

The answer's visible text (its Markdown rendered, then stripped of markup) is spoken in parts of at most the speech
model's limit, cut at sentence ends; an answer that would take more than MAX_PARTS notes is sent as text only, with
a note saying why. Voice notes are OGG/Opus, the only format Telegram shows as a voice message. What was spoken is
recorded (AnswerSpoken), which is what the speech model bills.
"""

from __future__ import annotations

import structlog
from aiogram import Bot
from aiogram.types import BufferedInputFile, Message

from adapters.telegram import replies
from adapters.telegram.delivery import send_plain
from adapters.telegram.i18n import translated
from adapters.telegram.identity import thread_of_message
from adapters.telegram.render import markdown_to_telegram_html, visible_text
from domain.commands import SpeakAnswer
from domain.ports import ModelFailure, Speaker
from service.conversations import ConversationService, Request
from service.outcomes import Answered, Outcome

log = structlog.get_logger(__name__)

MAX_PARTS = 3
"""Most voice notes one answer is spoken in."""
_SENTENCE_ENDS = ".!?…。！？"
_WIDE_ENDS = "。！？"
"""Sentence ends of scripts that put no space after them."""


def speech_parts(text: str, limit: int, most: int = MAX_PARTS) -> list[str] | None:
    """The text in parts of at most `limit` characters, cut at sentence ends (else at white space, else anywhere);
    None when it takes more than `most` parts."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if len(parts) == most:
            return None
        if len(rest) <= limit:
            parts.append(rest)
            break
        cut = _cut_point(rest, limit)
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    return parts


def _cut_point(text: str, limit: int) -> int:
    """Where to end a part of at most `limit` characters: after the last sentence end or line break in its second
    half, else at the last white space, else at the limit."""
    ends = [
        at + 1
        for at, char in enumerate(text[:limit])
        if char == "\n" or (char in _SENTENCE_ENDS and (char in _WIDE_ENDS or text[at + 1 : at + 2].isspace()))
    ]
    if ends and ends[-1] > limit // 2:
        return ends[-1]
    spaces = [at for at, char in enumerate(text[: limit + 1]) if char.isspace() and at > 0]
    return spaces[-1] if spaces else limit


def spoken_text(answer: str) -> str:
    """What of a Markdown answer is read aloud: its visible text."""
    return visible_text(markdown_to_telegram_html(answer))


class Speech:
    """Speaks fresh answers in chats that asked for it."""

    def __init__(self, speaker: Speaker | None) -> None:
        self.speaker = speaker

    async def after(
        self, bot: Bot, message: Message, request: Request, service: ConversationService, outcome: Outcome | None
    ) -> None:
        """Send the answer as voice notes too, if it is a fresh answer and the chat has /voice on."""
        speaker = self.speaker
        if speaker is None or not isinstance(outcome, Answered) or outcome.replayed or outcome.delivered:
            return
        state = service.last_known_settings(request.stream)
        if state is None or not state.voice_replies:
            return
        text = spoken_text(outcome.text)
        parts = speech_parts(text, speaker.limit)
        thread = thread_of_message(message)
        if parts is None:
            await send_plain(bot, message.chat.id, translated(replies.VOICE_TOO_LONG), thread=thread)
            return
        sent = 0
        try:
            for part in parts:
                audio = await speaker.speak(part)
                voice = BufferedInputFile(audio, filename="answer.ogg")
                await bot.send_voice(
                    message.chat.id,
                    voice,
                    message_thread_id=thread,
                    reply_to_message_id=message.message_id,
                    allow_sending_without_reply=True,
                )
                sent += 1
        except ModelFailure as failure:
            log.warning("speech_failed", kind=failure.kind, message=failure.message)
            await send_plain(bot, message.chat.id, translated(replies.VOICE_FAILED), thread=thread)
        if sent:
            spoken = SpeakAnswer(
                question_version=outcome.question_version,
                model=speaker.model,
                voice=speaker.voice,
                characters=sum(len(part) for part in parts[:sent]),
                parts=sent,
                asker_id=request.sender.user_id,
            )
            await service.record_spoken(request.stream, spoken, f"{request.causation_id}/spoken")
