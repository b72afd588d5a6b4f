"""What a unit of model usage costs, in exact decimal USD: a built-in table, overridable by the operator.

Chat models are priced per 1M tokens (input, cached input, output), image models per picture by size (a `hd:`
prefix for quality hd), audio models per minute (transcription) or per 1M characters (speech). Each built-in entry
says the date it was taken from OpenAI's public price list. A model the table does not know costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TypeVar

import attrs

MILLION = Decimal(1_000_000)
_Price = TypeVar("_Price")


@attrs.frozen
class ChatPrice:
    """USD per 1M tokens."""

    input: Decimal
    """Prompt tokens not served from the cache."""
    output: Decimal
    """Completion tokens (a reasoning model's thinking included, as billed)."""
    cached_input: Decimal | None = None
    """Prompt tokens served from the cache; None: billed as input."""
    taken_on: str = ""
    """When the price was read from the public price list (YYYY-MM-DD); empty for the operator's."""


@attrs.frozen
class AudioPrice:
    """USD per minute of audio transcribed, or per 1M characters spoken."""

    per_minute: Decimal | None = None
    """Transcription."""
    per_million_chars: Decimal | None = None
    """Speech."""
    taken_on: str = ""
    """When the price was read from the public price list (YYYY-MM-DD); empty for the operator's."""


@attrs.frozen
class ImagePrice:
    """USD per picture, by size (`1024x1024`) and quality (`hd:1024x1024`)."""

    by_size: Mapping[str, Decimal]
    """Price per picture for each size (and `hd:` size)."""
    taken_on: str = ""
    """When the price was read from the public price list (YYYY-MM-DD); empty for the operator's."""


def _chat(input_: str, output: str, cached: str | None, taken_on: str) -> ChatPrice:
    return ChatPrice(Decimal(input_), Decimal(output), None if cached is None else Decimal(cached), taken_on)


BUILT_IN_CHAT: Mapping[str, ChatPrice] = {
    "gpt-5": _chat("1.25", "10.00", "0.125", "2025-08-07"),
    "gpt-5-mini": _chat("0.25", "2.00", "0.025", "2025-08-07"),
    "gpt-5-nano": _chat("0.05", "0.40", "0.005", "2025-08-07"),
    "gpt-4.1": _chat("2.00", "8.00", "0.50", "2025-04-14"),
    "gpt-4.1-mini": _chat("0.40", "1.60", "0.10", "2025-04-14"),
    "gpt-4.1-nano": _chat("0.10", "0.40", "0.025", "2025-04-14"),
    "gpt-4o": _chat("2.50", "10.00", "1.25", "2024-10-01"),
    "gpt-4o-mini": _chat("0.15", "0.60", "0.075", "2024-10-01"),
    "o3": _chat("2.00", "8.00", "0.50", "2025-06-10"),
    "o4-mini": _chat("1.10", "4.40", "0.275", "2025-04-16"),
    "o3-mini": _chat("1.10", "4.40", "0.55", "2025-01-31"),
    "o1": _chat("15.00", "60.00", "7.50", "2024-12-17"),
    "gpt-4-turbo": _chat("10.00", "30.00", None, "2024-04-09"),
    "gpt-4": _chat("30.00", "60.00", None, "2023-06-13"),
    "gpt-3.5-turbo": _chat("0.50", "1.50", None, "2024-01-25"),
}
BUILT_IN_IMAGES: Mapping[str, ImagePrice] = {
    "dall-e-3": ImagePrice(
        {
            "1024x1024": Decimal("0.040"),
            "1024x1792": Decimal("0.080"),
            "1792x1024": Decimal("0.080"),
            "hd:1024x1024": Decimal("0.080"),
            "hd:1024x1792": Decimal("0.120"),
            "hd:1792x1024": Decimal("0.120"),
        },
        "2023-11-06",
    ),
    "dall-e-2": ImagePrice(
        {"1024x1024": Decimal("0.020"), "512x512": Decimal("0.018"), "256x256": Decimal("0.016")}, "2023-11-06"
    ),
}
BUILT_IN_AUDIO: Mapping[str, AudioPrice] = {
    "whisper-1": AudioPrice(per_minute=Decimal("0.006"), taken_on="2023-03-01"),
    "gpt-4o-transcribe": AudioPrice(per_minute=Decimal("0.006"), taken_on="2025-03-20"),
    "gpt-4o-mini-transcribe": AudioPrice(per_minute=Decimal("0.003"), taken_on="2025-03-20"),
    "tts-1": AudioPrice(per_million_chars=Decimal("15.00"), taken_on="2023-11-06"),
    "tts-1-hd": AudioPrice(per_million_chars=Decimal("30.00"), taken_on="2023-11-06"),
}


@attrs.frozen
class PriceTable:
    """Prices by model name; a dated model name (`gpt-4o-mini-2024-07-18`) takes its family's price."""

    chat: Mapping[str, ChatPrice] = BUILT_IN_CHAT
    """Chat models."""
    images: Mapping[str, ImagePrice] = BUILT_IN_IMAGES
    """Image models."""
    audio: Mapping[str, AudioPrice] = BUILT_IN_AUDIO
    """Transcription and speech models."""

    def cost(self, model: str, unit: str, quantity: int) -> Decimal | None:
        """USD for `quantity` units (`input`, `cached_input`, `output` tokens; `image:<size>` pictures;
        `audio_second`; `speech_char`) of `model`; None when the table has no price for it. Exact, except that a
        per-minute price is divided by 60 (to 28 significant digits)."""
        if unit in ("input", "cached_input", "output"):
            chat = _find(self.chat, model)
            if chat is None:
                return None
            cached = chat.input if chat.cached_input is None else chat.cached_input
            per_million = {"input": chat.input, "output": chat.output, "cached_input": cached}[unit]
            return quantity * per_million / MILLION
        if unit.startswith("image:"):
            image = _find(self.images, model)
            price = None if image is None else image.by_size.get(unit.removeprefix("image:"))
            return None if price is None else quantity * price
        audio = _find(self.audio, model)
        if audio is None:
            return None
        if unit == "audio_second" and audio.per_minute is not None:
            return quantity * audio.per_minute / 60
        if unit == "speech_char" and audio.per_million_chars is not None:
            return quantity * audio.per_million_chars / MILLION
        return None

    def merged(self, other: PriceTable) -> PriceTable:
        """This table with `other`'s entries added, replacing any of the same model."""
        return PriceTable({**self.chat, **other.chat}, {**self.images, **other.images}, {**self.audio, **other.audio})


def _find(table: Mapping[str, _Price], model: str) -> _Price | None:
    """The entry of `model`, or of the longest name it extends with a dash (`gpt-4o-mini-2024-07-18`)."""
    if model in table:
        return table[model]
    family = max((name for name in table if model.startswith(name + "-")), key=len, default=None)
    return None if family is None else table[family]


def usd(amount: Decimal) -> str:
    """An exact amount written out in full, never in exponent form, without trailing zeros (`0.0025`, `3`)."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
