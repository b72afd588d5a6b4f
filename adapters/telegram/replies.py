"""Every text the bot says, in one place: short, human, and saying what to do next.

Each text is an English gettext message id, marked with `N_` so `pybabel extract -k N_` finds it; `i18n.translated`
says it in the language of the update being handled. Placeholders are `str.format` names, the same in every
language.
"""

from __future__ import annotations

import math

from adapters.telegram.i18n import N_, translated
from domain.events import FailureKind, Mode
from service.budgets import parse_refusal

WELCOME = N_("Hello{name}! I'm a chat bot backed by an AI model.")
HELP = N_(
    "Send me a message, a voice message, a photo or a document, and I'll answer. Commands:\n"
    "/chat – chat mode (the default): your messages are questions\n"
    "/image – image mode: your messages are picture prompts; or /image <prompt> for one picture\n"
    "/cancel – stop the answer being written\n"
    "/redo – answer your last question again\n"
    "/undo – take back your last question and its answer\n"
    "/persona – who the assistant is here, or /persona <your own instructions>\n"
    "/model – which AI model answers here\n"
    "/language – the language of my messages here\n"
    "/usage – what you have used, and what is left of your budget\n"
    "/voice – answers as voice messages too: /voice on or /voice off\n"
    "/reset – start the conversation over\n"
    "/export – send you everything I stored about this chat, as files\n"
    "/forget – erase everything I stored about you\n"
    "/help – this help"
)
WELCOME_BACK = N_("Welcome back{name}! You're in {mode} mode. Send a message, or /help for the commands.")
CHAT_MODE = N_("Chat mode: send me a question.")
IMAGE_MODE = N_("Image mode: describe the picture you want, e.g. “a red fox in the snow, watercolor”.")
RESET_DONE = N_("Done — the conversation starts over. Earlier messages won't be used as context.")
FORGET_CONFIRM = N_("Erase everything I stored about this chat? This cannot be undone.")
FORGET_DONE = N_("Erased. Everything I stored about this chat is gone.")
FORGET_CANCELLED = N_("Nothing was erased.")
FORGET_BUTTON_YES = N_("Yes, erase it")
FORGET_BUTTON_NO = N_("Cancel")
EXPORT_CAPTION = N_("Everything I stored about this chat: {events} events, as data (.jsonl) and as a transcript (.md).")
EXPORT_EMPTY = N_("I have stored nothing about this chat yet.")
EXPORT_TOO_BIG = N_(
    "This chat's history is too big to send: a bot can send files of at most {limit} MB. The bot's operator can "
    "export it with convo export."
)
EXPORT_ADMINS_ONLY = N_("Only this chat's admins can export it.")
STALE_BUTTON = N_("This button is no longer valid.")
EMPTY = N_("Send me some text — for example a question, or /image a red fox in the snow.")
NOT_TEXT = N_(
    "I can't read this kind of message. I read text, voice messages, photos, text files and PDFs. "
    "Send your question as one of those, or /image <prompt> for a picture."
)
TOO_BIG = N_("That file is too big: bots can download files of at most 20 MB.")
FILE_GONE = N_("I couldn't download that file from Telegram. Please send it again.")
TRANSCRIPT = N_("🎤 “{text}”")
NOT_HEARD = N_("I couldn't transcribe that voice message, so I didn't answer it. Please try again, or type it.")
HEARD_NOTHING = N_("I couldn't make out any words in that voice message.")
NO_TRANSCRIPTION = N_(
    "I can't transcribe voice messages here: the bot's AI server has no transcription endpoint. Please type it."
)
PHOTO_QUESTION = N_("What is in this picture?")
FILE_QUESTION = N_("Please read this file and tell me what it says, briefly.")
VISION_OFF = N_("Pictures are turned off for this bot. Please describe it in text.")
NO_VISION = N_("The model {model} can't see pictures. Please ask in text, or pick another model with /model.")
NOT_READABLE = N_(
    "I can't read this kind of file. I read text files (.txt, .md, .csv, .json, source code), PDFs, photos and "
    "voice messages."
)
FILE_NO_TEXT = N_("I found no text in that file (a scanned PDF has none).")
FILE_TOO_MUCH = N_("That file holds more than {limit} of text, more than I read. Please send a part of it.")
FILE_ENCODING = N_("I couldn't tell how that file's text is encoded. Please send it as UTF-8.")
FILE_BROKEN = N_("I couldn't open that file: it may be damaged or protected by a password.")
FILE_NO_ROOM = N_(
    "That file doesn't fit: this chat's prompt budget is {budget} tokens. Ask a shorter question, /reset, or pick "
    "a model with a larger budget."
)
FILE_CUT = N_(
    "✂️ Only the first {percent} percent of {name} fits this chat's prompt budget of {budget} tokens; I left the "
    "rest out and told the AI so."
)
VOICE_ON = N_("🔊 From now on I also send each answer here as a voice message.")
VOICE_OFF = N_("🔇 From now on my answers here are text only.")
VOICE_USAGE = N_("Voice answers are {state} here. Send /voice on or /voice off.")
VOICE_STATE_ON = N_("on")
VOICE_STATE_OFF = N_("off")
VOICE_TOO_LONG = N_("This answer is too long to speak, so it comes as text only.")
VOICE_FAILED = N_("I couldn't make a voice message of this answer; the text above is complete.")
EDITED = N_("I only re-answer an edit of your latest question — send the corrected text as a new message.")
NOTHING_RUNNING = N_("Nothing is being answered right now.")
CANCEL_NOT_YOURS = N_("Only the person who asked, or an admin of this chat, can stop this answer.")
NOTHING_TO_UNDO = N_("There is nothing to undo since the conversation started (or since the last /reset).")
UNDONE = N_(
    "Removed your question “{question}” and its answer: I won't use them as context. "
    "/undo again removes the one before."
)
NOTHING_TO_REDO = N_("There is no answer to redo since the conversation started (or since the last /reset).")
STOPPED_MARK = N_("⏹ Stopped.")
PERSONAS = N_(
    "Persona now: {current}. Pick one below, or send /persona followed by your own instructions for the assistant "
    "(/persona default goes back to the default)."
)
PERSONA_DEFAULT_TITLE = N_("Default")
PRESET_TITLES = (N_("Assistant"), N_("Concise"), N_("Translator"), N_("Tutor"), N_("Coder"))
"""The built-in personas' titles (service.personas), so the buttons show them translated."""
PERSONA_SET = N_("Persona: {title}. It shapes every answer from now on (a /reset keeps it).")
PERSONA_DEFAULT = N_("Back to the default persona.")
PERSONA_CUSTOM = N_("Done: your instructions are the assistant's persona in this chat from now on.")
PERSONA_TOO_LONG = N_("That persona is too long: at most {limit} characters, please.")
MODELS = N_("Model now: {current}. Pick one below, or send /model <name>.")
MODEL_SET = N_("Model: {model}. It answers from now on.")
MODEL_UNKNOWN = N_("I can't use the model {model}. Pick one of: {models}.")
LANGUAGES = N_(
    "Language now: {current}. Pick one below, or send /language <code> "
    "(/language auto follows each person's Telegram language). My texts change; the AI's answers do not."
)
LANGUAGE_AUTO_TITLE = N_("Automatic")
LANGUAGE_SET = N_("Done: my messages here are in {language} from now on.")
LANGUAGE_AUTO = N_("Done: I follow each person's Telegram language again.")
LANGUAGE_UNKNOWN = N_("I don't have texts in {code}. Pick one of: {codes}.")
USAGE_TITLE = N_("Your usage (days and months in UTC):")
USAGE_DAY = N_("Today: {tokens} tokens, {cost} USD.")
USAGE_MONTH = N_("This month: {tokens} tokens, {cost} USD.")
USAGE_CHAT = N_("This chat this month: {tokens} tokens, {cost} USD.")
USAGE_LEFT = N_("Left of the budget: {left} of {limit} USD.")
ADMINS_ONLY = N_("Only this chat's admins can change that.")
THINKING = N_("thinking…")
UNKNOWN_COMMAND = N_("I don't know the command {command}. Send /help to see what I can do.")
NOT_ALLOWED = N_("Sorry, this bot is private.")
TOO_FAST = N_("You're sending messages too fast. Please wait {seconds} s and try again.")
STORE_DOWN = N_(
    "I got your message, but my storage is unavailable right now. I'll answer it as soon as it's back — "
    "no need to send it again."
)
INTERNAL = N_("Something went wrong on my side. Please try again.")
IMAGE_SENT_EARLIER = N_("I already sent that picture earlier.")
IMAGE_REFUSED = N_("The image model refused this prompt under its content policy. Try describing it differently.")

_FAILURES: dict[FailureKind, str] = {
    "rate_limited": N_("The AI model is busy right now (rate limited). Please try again in {seconds} s."),
    "timeout": N_("The AI model took too long to answer. Please try again."),
    "content_refused": N_("The AI model refused this request under its content policy. Try rephrasing it."),
    "context_too_long": N_("That message is too long for me to handle. Please send a shorter one (or /reset)."),
    "auth": N_("The bot can't reach its AI model: its access is misconfigured. The operator has to fix it."),
    "upstream": N_("The AI model is unreachable right now. Please try again in a minute."),
    "unsupported": N_(
        "The bot's AI server doesn't offer this (it has no such endpoint). The operator has to set it up."
    ),
    "abandoned": N_("That request was interrupted before it finished. Please send it again."),
    "stopped": N_("⏹ Stopped before the answer began."),
    "over_budget": N_("A spending budget is used up, so I can't ask the AI model now. Please try again later."),
    "no_vision": N_("This AI model can't see pictures. Please ask in text, or pick another model with /model."),
}
_OVER_BUDGET = {
    "user_day": N_("You've used up your daily budget ({limit} USD). It starts over at {resets}."),
    "user_month": N_("You've used up your monthly budget ({limit} USD). It starts over on {resets}."),
    "chat_month": N_("This chat has used up its monthly budget ({limit} USD). It starts over on {resets}."),
    "total_month": N_("The bot has used up its monthly budget ({limit} USD). It starts over on {resets}."),
}
_MODES: dict[Mode, str] = {"chat": N_("chat"), "image": N_("image")}

COMMANDS = (
    ("start", N_("Start and see how to use the bot")),
    ("chat", N_("Chat mode: your messages are questions")),
    ("image", N_("Image mode, or /image <prompt> for one picture")),
    ("cancel", N_("Stop the answer being written")),
    ("redo", N_("Answer my last question again")),
    ("undo", N_("Take back my last question and its answer")),
    ("persona", N_("Who the assistant is in this chat")),
    ("model", N_("Which AI model answers in this chat")),
    ("language", N_("The language of the bot's messages here")),
    ("usage", N_("What I have used, and what is left of my budget")),
    ("voice", N_("Answers as voice messages too: on or off")),
    ("reset", N_("Start the conversation over")),
    ("help", N_("What I can do")),
    ("export", N_("Download everything stored about this chat")),
    ("forget", N_("Erase everything stored about you")),
)
"""The command menu: each command and its description (registered per language with setMyCommands)."""


def failure(kind: FailureKind, retry_after: float | None = None, *, image: bool = False, detail: str = "") -> str:
    """The reply for a failed request, in the current language (`detail`: the recorded failure message)."""
    if image and kind == "content_refused":
        return translated(IMAGE_REFUSED)
    refused = parse_refusal(detail) if kind == "over_budget" else None
    if refused is not None:
        budget, limit, resets = refused
        return translated(_OVER_BUDGET[budget], limit=limit, resets=resets)
    return translated(_FAILURES[kind], seconds=math.ceil(retry_after or 20))


def welcome(first_name: str | None) -> str:
    """The first greeting, with the commands, in the current language."""
    return translated(WELCOME, name=greeting_name(first_name)) + "\n\n" + translated(HELP)


def welcome_back(first_name: str | None, mode: Mode) -> str:
    """The greeting for a user who started before, in the current language."""
    return translated(WELCOME_BACK, name=greeting_name(first_name), mode=translated(_MODES[mode]))


def greeting_name(first_name: str | None) -> str:
    """`, Ada` or nothing."""
    return f", {first_name}" if first_name else ""
