"""The build step pyproject.toml cannot say: compile the gettext catalogues (`.po`) into the package (`.mo`).

Runs in every build, the editable install included, so the bot never needs Babel, a compiler or a download at run
time. Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools import setup
from setuptools.command.build_py import build_py

LOCALES = Path(__file__).parent / "adapters" / "telegram" / "locales"


def compile_catalogues(locales: Path = LOCALES) -> list[Path]:
    """Each `<language>/LC_MESSAGES/*.po` compiled to the `.mo` beside it; the `.mo` files written."""
    written = []
    for source in sorted(locales.glob("*/LC_MESSAGES/*.po")):
        with source.open("rb") as po:
            messages = read_po(po, locale=source.parts[-3])
        target = source.with_suffix(".mo")
        with target.open("wb") as mo:
            write_mo(mo, messages, use_fuzzy=False)
        written.append(target)
    return written


class BuildWithCatalogues(build_py):
    """build_py that compiles the catalogues first, so the package data it copies includes them."""

    def run(self) -> None:
        compile_catalogues()
        super().run()


setup(cmdclass={"build_py": BuildWithCatalogues})
