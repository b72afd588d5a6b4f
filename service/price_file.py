"""The operator's prices (CONVO_PRICES, or `convo usage --prices FILE`): a TOML file of decimal strings in USD.

    [models."gpt-4o-mini"]            # chat: per 1M tokens
    input = "0.15"
    cached_input = "0.075"
    output = "0.60"
    [images."dall-e-3"]               # per picture, by size ("hd:" size for quality hd)
    "1024x1024" = "0.04"
    [audio."gpt-4o-mini-transcribe"]  # per minute of audio, or per 1M characters of speech
    per_minute = "0.003"

Its entries are added to the built-in table, replacing those of the same model.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from domain.prices import AudioPrice, ChatPrice, ImagePrice, PriceTable
from service.toml_file import read_toml


class PriceFileError(ValueError):
    """The price file cannot be used; the message says where and why, in one line."""


def load_price_file(path: Path, base: PriceTable | None = None) -> PriceTable:
    """`base` (the built-in table by default) with the file's entries added. Raises PriceFileError."""
    try:
        document = read_toml(path)
    except ValueError as error:
        raise PriceFileError(str(error)) from None
    unknown = sorted(set(document) - {"models", "images", "audio"})
    if unknown:
        raise PriceFileError(f"{path}: unknown table [{unknown[0]}] (expected models, images, audio)")
    own = PriceTable(
        chat={name: _chat(path, name, table) for name, table in _tables(path, document, "models").items()},
        images={name: _image(path, name, table) for name, table in _tables(path, document, "images").items()},
        audio={name: _audio(path, name, table) for name, table in _tables(path, document, "audio").items()},
    )
    return (base or PriceTable()).merged(own)


def _tables(path: Path, document: Mapping[str, object], kind: str) -> dict[str, Mapping[str, object]]:
    section = document.get(kind, {})
    if not isinstance(section, Mapping) or not all(isinstance(t, Mapping) for t in section.values()):
        raise PriceFileError(f'{path}: [{kind}] must hold one table per model, e.g. [{kind}."name"]')
    return dict(section)


def _chat(path: Path, name: str, table: Mapping[str, object]) -> ChatPrice:
    where = f'{path}: [models."{name}"]'
    _only(where, table, {"input", "cached_input", "output"})
    if "input" not in table or "output" not in table:
        raise PriceFileError(f"{where} needs input and output (USD per 1M tokens)")
    cached = table.get("cached_input")
    return ChatPrice(
        _amount(where, "input", table["input"]),
        _amount(where, "output", table["output"]),
        None if cached is None else _amount(where, "cached_input", cached),
    )


def _image(path: Path, name: str, table: Mapping[str, object]) -> ImagePrice:
    where = f'{path}: [images."{name}"]'
    return ImagePrice({size: _amount(where, size, value) for size, value in table.items()})


def _audio(path: Path, name: str, table: Mapping[str, object]) -> AudioPrice:
    where = f'{path}: [audio."{name}"]'
    _only(where, table, {"per_minute", "per_million_chars"})
    minute, chars = table.get("per_minute"), table.get("per_million_chars")
    return AudioPrice(
        None if minute is None else _amount(where, "per_minute", minute),
        None if chars is None else _amount(where, "per_million_chars", chars),
    )


def _only(where: str, table: Mapping[str, object], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PriceFileError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(sorted(allowed))})")


def _amount(where: str, key: str, value: object) -> Decimal:
    """A price as an exact decimal: a decimal string (or a whole number), never a float."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PriceFileError(f'{where}: {key} must be a decimal string in USD, e.g. "0.15" (not {value!r})')
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise PriceFileError(f"{where}: {key} = {value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise PriceFileError(f"{where}: {key} must be zero or more, got {value!r}")
    return amount
