"""Every text the bot says, in one place: short, human, and saying what to do next."""

from __future__ import annotations

import math

from domain.events import FailureKind, Mode

WELCOME = (
    "Hello{name}! I'm a chat bot backed by an AI model.\n\n"
    "Just send me a message and I'll answer. Commands:\n"
    "/chat – chat mode (the default): your messages are questions\n"
    "/image – image mode: your messages are picture prompts; or /image <prompt> for one picture\n"
    "/cancel – stop the answer being written\n"
    "/redo – answer your last question again\n"
    "/undo – take back your last question and its answer\n"
    "/persona – who the assistant is here, or /persona <your own instructions>\n"
    "/model – which AI model answers here\n"
    "/reset – start the conversation over\n"
    "/forget – erase everything I stored about you\n"
    "/help – this help"
)
WELCOME_BACK = "Welcome back{name}! You're in {mode} mode. Send a message, or /help for the commands."
HELP = WELCOME.split("\n\n", 1)[1]
CHAT_MODE = "Chat mode: send me a question."
IMAGE_MODE = "Image mode: describe the picture you want, e.g. “a red fox in the snow, watercolor”."
RESET_DONE = "Done — the conversation starts over. Earlier messages won't be used as context."
FORGET_CONFIRM = "Erase everything I stored about this chat? This cannot be undone."
FORGET_DONE = "Erased. Everything I stored about this chat is gone."
FORGET_CANCELLED = "Nothing was erased."
FORGET_BUTTON_YES = "Yes, erase it"
FORGET_BUTTON_NO = "Cancel"
STALE_BUTTON = "This button is no longer valid."
EMPTY = "Send me some text — for example a question, or /image a red fox in the snow."
NOT_TEXT = "I can only read text. Send your question as a text message, or /image <prompt> for a picture."
EDITED = "I only re-answer an edit of your latest question — send the corrected text as a new message."
NOTHING_RUNNING = "Nothing is being answered right now."
CANCEL_NOT_YOURS = "Only the person who asked, or an admin of this chat, can stop this answer."
NOTHING_TO_UNDO = "There is nothing to undo since the conversation started (or since the last /reset)."
UNDONE = (
    "Removed your question “{question}” and its answer: I won't use them as context. "
    "/undo again removes the one before."
)
NOTHING_TO_REDO = "There is no answer to redo since the conversation started (or since the last /reset)."
STOPPED_MARK = "⏹ Stopped."
PERSONAS = (
    "Persona now: {current}. Pick one below, or send /persona followed by your own instructions for the assistant "
    "(/persona default goes back to the default)."
)
PERSONA_DEFAULT_TITLE = "Default"
PERSONA_SET = "Persona: {title}. It shapes every answer from now on (a /reset keeps it)."
PERSONA_DEFAULT = "Back to the default persona."
PERSONA_CUSTOM = "Done: your instructions are the assistant's persona in this chat from now on."
PERSONA_TOO_LONG = "That persona is too long: at most {limit} characters, please."
MODELS = "Model now: {current}. Pick one below, or send /model <name>."
MODEL_SET = "Model: {model}. It answers from now on."
MODEL_UNKNOWN = "I can't use the model {model}. Pick one of: {models}."
ADMINS_ONLY = "Only this chat's admins can change that."
THINKING = "thinking…"
UNKNOWN_COMMAND = "I don't know the command {command}. Send /help to see what I can do."
NOT_ALLOWED = "Sorry, this bot is private."
TOO_FAST = "You're sending messages too fast. Please wait {seconds} s and try again."
STORE_DOWN = (
    "I got your message, but my storage is unavailable right now. I'll answer it as soon as it's back — "
    "no need to send it again."
)
INTERNAL = "Something went wrong on my side. Please try again."
IMAGE_SENT_EARLIER = "I already sent that picture earlier."

_FAILURES: dict[FailureKind, str] = {
    "rate_limited": "The AI model is busy right now (rate limited). Please try again in {seconds} s.",
    "timeout": "The AI model took too long to answer. Please try again.",
    "content_refused": "The AI model refused this request under its content policy. Try rephrasing it.",
    "context_too_long": "That message is too long for me to handle. Please send a shorter one (or /reset).",
    "auth": "The bot can't reach its AI model: its access is misconfigured. The operator has to fix it.",
    "upstream": "The AI model is unreachable right now. Please try again in a minute.",
    "unsupported": "The bot's AI server doesn't offer this (it has no such endpoint). The operator has to set it up.",
    "abandoned": "That request was interrupted before it finished. Please send it again.",
    "stopped": "⏹ Stopped before the answer began.",
}


def failure(kind: FailureKind, retry_after: float | None = None, *, image: bool = False) -> str:
    """The reply for a failed request."""
    text = _FAILURES[kind].format(seconds=math.ceil(retry_after or 20))
    if image and kind == "content_refused":
        return "The image model refused this prompt under its content policy. Try describing it differently."
    return text


def mode_name(mode: Mode) -> str:
    """The mode as users read it."""
    return {"chat": "chat", "image": "image"}[mode]


def greeting_name(first_name: str | None) -> str:
    """`, Ada` or nothing."""
    return f", {first_name}" if first_name else ""
