"""The personas a chat may choose: a few built in, plus the operator's own (CONVO_PERSONAS, a TOML file).

A chat's choice is recorded as a PersonaSelected event carrying the system prompt itself, so the log says exactly
what each later prompt opened with, whatever the catalogue says later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from domain.prompt import DEFAULT_PERSONA
from service.toml_file import read_toml

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
DEFAULT = "default"
"""The name that goes back to the operator's persona (CONVO_PERSONA)."""
CUSTOM = "custom"
"""The name recorded for a system prompt a chat wrote itself."""


@attrs.frozen
class Persona:
    """A preset system prompt."""

    name: str
    """What `/persona NAME` takes."""
    title: str
    """What the button says."""
    prompt: str
    """The system message."""


BUILT_IN = (
    Persona("assistant", "Assistant", DEFAULT_PERSONA),
    Persona("concise", "Concise", "You are a precise assistant. Answer in as few words as the question allows."),
    Persona(
        "translator",
        "Translator",
        "You are a translator. Translate each message into English; if it is in English, into Spanish. Reply with "
        "the translation only.",
    ),
    Persona(
        "tutor",
        "Tutor",
        "You are a patient tutor. Explain step by step, check understanding with a short question, and never just "
        "give away the answer to an exercise.",
    ),
    Persona(
        "coder",
        "Coder",
        "You are a senior software engineer. Answer with working code first, in fenced blocks, then a short "
        "explanation.",
    ),
)


class PersonaFileError(ValueError):
    """CONVO_PERSONAS names a file that cannot be used; the message says why, in one line."""


@attrs.frozen
class Personas:
    """The catalogue a chat chooses from."""

    presets: tuple[Persona, ...] = BUILT_IN
    """Built-in presets, then the operator's (one of theirs replaces a built-in of the same name)."""
    max_chars: int = 2000
    """Longest system prompt a chat may write itself."""

    def find(self, name: str) -> Persona | None:
        """The preset of that name (any case), if there is one."""
        return next((preset for preset in self.presets if preset.name == name.lower()), None)


def load_personas(path: Path | None, max_chars: int) -> Personas:
    """The built-in presets plus those in the TOML file at `path`: one table per persona,
    `[name]` with `title` and `prompt`. Raises PersonaFileError."""
    if path is None:
        return Personas(BUILT_IN, max_chars)
    try:
        document = read_toml(path)
    except ValueError as error:
        raise PersonaFileError(f"CONVO_PERSONAS: {error}") from None
    own = [_persona(name, table, path) for name, table in document.items()]
    return Personas(_merged(BUILT_IN, own), max_chars)


def _persona(name: str, table: object, path: Path) -> Persona:
    where = f"CONVO_PERSONAS: {path}: [{name}]"
    if not NAME.match(name) or name in (DEFAULT, CUSTOM):
        raise PersonaFileError(
            f"{where}: a name is 1-32 of a-z, 0-9, _ and -, starting with a letter, not default or custom"
        )
    if not isinstance(table, Mapping):
        raise PersonaFileError(f"{where} must be a table with title and prompt")
    prompt, title = table.get("prompt"), table.get("title", name.title())
    if not isinstance(prompt, str) or not prompt.strip():
        raise PersonaFileError(f"{where} needs a non-empty prompt")
    if not isinstance(title, str) or not title.strip():
        raise PersonaFileError(f"{where}: title must be text")
    return Persona(name, title.strip()[:64], prompt.strip())


def _merged(built_in: Iterable[Persona], own: Iterable[Persona]) -> tuple[Persona, ...]:
    mine = {persona.name: persona for persona in own}
    return tuple(mine.pop(persona.name, persona) for persona in built_in) + tuple(mine.values())
