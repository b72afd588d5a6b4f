"""The bot's own texts in its users' languages, from gettext catalogues compiled into the package at build time.

The language of an update is its chat's choice (`/language`, a LanguageSelected event) or else the sender's
Telegram `language_code`; `speaking` makes it current for the code handling the update, and `translated` says a
text of `replies` in it. A language without a catalogue, and any text a catalogue lacks, is said in English. The
model's answers are never translated.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

DOMAIN = "convo"
LOCALES = Path(__file__).parent / "locales"
"""`<language>/LC_MESSAGES/convo.po` sources and the `.mo` files the build compiles next to them."""
ENGLISH = "en"
NATIVE_NAMES = {
    "en": "English",
    "es": "Español",
    "de": "Deutsch",
    "fr": "Français",
    "pt": "Português",
    "ru": "Русский",
    "uk": "Українська",
    "it": "Italiano",
    "tr": "Türkçe",
}
"""Every language the bot ships texts in, by its code, named as its speakers name it."""
LANGUAGES = tuple(NATIVE_NAMES)

_current: ContextVar[str] = ContextVar("convo_language", default=ENGLISH)


def N_(text: str) -> str:
    """Marks a text for the catalogues; it is translated where it is said (`translated`)."""
    return text


def language_of(code: str | None) -> str:
    """The shipped language for an IETF tag (`pt-BR` → `pt`, `de` → `de`), English for any other."""
    primary = (code or "").replace("_", "-").split("-")[0].strip().lower()
    return primary if primary in NATIVE_NAMES else ENGLISH


def supported(code: str) -> str | None:
    """The shipped language a user typed (`DE`, `pt-br`), or None if the bot has no texts in it."""
    primary = code.replace("_", "-").split("-")[0].strip().lower()
    return primary if primary in NATIVE_NAMES else None


@contextmanager
def speaking(code: str | None) -> Iterator[str]:
    """Make the language for `code` current for the texts said inside; yields the language."""
    token = _current.set(language_of(code))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def current_language() -> str:
    """The language texts are said in right now."""
    return _current.get()


def translated(text: str, language: str | None = None, /, **values: object) -> str:
    """A text of `replies` in `language` (by default the current one), its {placeholders} filled with `values`."""
    said = catalogue(language or _current.get()).gettext(text)
    return said.format(**values) if values else said


@functools.cache
def catalogue(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of a language; English (the message ids themselves) when there is none."""
    if language == ENGLISH:
        return gettext.NullTranslations()
    try:
        return gettext.translation(DOMAIN, LOCALES, languages=[language])
    except OSError:
        log.warning("catalogue_missing", language=language, hint="reinstall the package: the build compiles them")
        return gettext.NullTranslations()
