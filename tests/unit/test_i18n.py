"""The catalogues: every text of `replies` is in the template, translated in every shipped language with the same
placeholders and commands, compiled into the package, and said in English for anything else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from adapters.telegram import replies
from adapters.telegram.app import commands_in
from adapters.telegram.i18n import (
    ENGLISH,
    LANGUAGES,
    LOCALES,
    catalogue,
    language_of,
    speaking,
    supported,
    translated,
)

TRANSLATED = [language for language in LANGUAGES if language != ENGLISH]
PLACEHOLDER = re.compile(r"\{(\w*)\}")
COMMAND = re.compile(r"/[a-z]+")


def marked_texts() -> set[str]:
    """Every text `replies` marks with N_, as `pybabel extract -k N_` finds them."""
    path = Path(replies.__file__)
    found = extract_from_file("python", str(path), keywords={"N_": None})
    return {message for _, message, _, _ in found if isinstance(message, str)}


def source(language: str) -> dict[str, str]:
    with (LOCALES / language / "LC_MESSAGES" / "convo.po").open("rb") as po:
        return {m.id: m.string for m in read_po(po, locale=language) if isinstance(m.id, str) and m.id}  # type: ignore[misc]


def test_the_template_holds_exactly_the_marked_texts():
    """A text added to `replies` without refreshing the template (and so the catalogues) fails here."""
    with (LOCALES / "convo.pot").open("rb") as pot:
        template = {m.id for m in read_po(pot) if m.id}
    assert template == marked_texts()


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_is_translated_keeping_placeholders_lines_and_commands(language):
    translations = source(language)
    assert set(translations) == marked_texts()
    for english, said in translations.items():
        assert said, f"{language}: untranslated {english!r}"
        assert sorted(PLACEHOLDER.findall(said)) == sorted(PLACEHOLDER.findall(english)), (language, english)
        assert said.count("\n") == english.count("\n"), (language, english)
        for command in COMMAND.findall(english):
            assert command in said, (language, command, english)


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalogue_in_the_package_matches_its_source(language):
    """The build compiled the .po into the package: what the bot loads is what the translators wrote."""
    loaded = catalogue(language)
    assert type(loaded).__name__ == "GNUTranslations", f"{language}: no compiled catalogue; reinstall the package"
    for english, said in source(language).items():
        assert loaded.gettext(english) == said


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_help_lists_the_same_commands_in_the_same_order(language):
    def commands(text: str) -> list[str]:
        return [line.split()[0] for line in text.splitlines()[1:]]

    assert commands(translated(replies.HELP, language)) == commands(replies.HELP)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_command_menu_fits_telegrams_limits_in_every_language(language):
    menu = commands_in(language)
    assert [c.command for c in menu] == [command for command, _ in replies.COMMANDS]
    assert all(1 <= len(c.description) <= 256 for c in menu)
    assert all(re.fullmatch(r"[a-z0-9_]{1,32}", c.command) for c in menu)
    if language != ENGLISH:
        assert [c.description for c in menu] != [c.description for c in commands_in(ENGLISH)]


def test_every_persona_preset_title_is_marked_for_translation():
    from service.personas import BUILT_IN

    assert {preset.title for preset in BUILT_IN} <= set(replies.PRESET_TITLES)


@pytest.mark.parametrize(
    ("code", "language"),
    [("de", "de"), ("pt-BR", "pt"), ("uk_UA", "uk"), ("TR", "tr"), ("zh-hans", "en"), ("", "en"), (None, "en")],
)
def test_a_telegram_language_code_picks_the_shipped_language_or_english(code, language):
    assert language_of(code) == language


def test_a_typed_code_is_supported_only_when_the_bot_ships_it():
    assert supported("De") == "de"
    assert supported("pt-br") == "pt"
    assert supported("xx") is None
    assert supported("english") is None


def test_the_current_language_is_the_innermost_and_ends_with_its_block():
    with speaking("de"):
        german = translated(replies.NOTHING_RUNNING)
        with speaking("fr"):
            assert translated(replies.NOTHING_RUNNING) == translated(replies.NOTHING_RUNNING, "fr")
        assert translated(replies.NOTHING_RUNNING) == german != replies.NOTHING_RUNNING
    assert translated(replies.NOTHING_RUNNING) == replies.NOTHING_RUNNING


def test_a_text_no_catalogue_has_is_said_as_written():
    with speaking("de"):
        assert translated("Not a catalogued text {x}", x=1) == "Not a catalogued text 1"
