"""The one error type of configuration: start-up turns it into one line on stderr (exit 2).

It lives apart from the settings models (`adapters.env_settings`) so that the store commands, which read their few
settings without pydantic, can raise and catch it too.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line for the operator, naming the setting."""
