"""Reading settings from an environment mapping: one clear line for anything missing or malformed."""

from __future__ import annotations

from collections.abc import Mapping


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line for the operator."""


def value(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value with surrounding blanks removed, or None when unset or blank."""
    raw = env.get(name, "").strip()
    return raw or None


def number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    """A numeric variable, its default when unset; ConfigError when not a number or below `minimum`."""
    raw = value(env, name)
    if raw is None:
        return default
    try:
        parsed = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if parsed < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return parsed
