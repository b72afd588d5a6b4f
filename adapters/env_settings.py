"""The base of every settings model: pydantic-settings fields read from one environment mapping, one line per mistake.

Each concern (Telegram, the model, Fauna, the prompt) declares its variables as fields of an `EnvSettings` subclass
with `setting(...)`: the variable's name (older spellings after it, as `AliasChoices`), its default, its bounds.
Secrets are `SecretStr`. `from_env(env)` reads the given mapping and nothing else: surrounding blanks are removed and
a blank value counts as unset. A missing or malformed value raises ConfigError with one line that names the variable
and never shows a secret.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self, get_args

import annotated_types
from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticUndefined
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from adapters.settings import ConfigError


def _whole(value: object) -> object:
    """Whole-number settings have always taken a decimal and dropped its fraction (`12.5` counts as 12)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if math.isfinite(number) else value
    return value


Whole = Annotated[int, BeforeValidator(_whole)]
"""A whole number given in any decimal notation."""

_STREAM_BOOLEANS = dict.fromkeys(("true", "1", "yes", "on"), "drafts") | dict.fromkeys(("false", "0", "no"), "off")


def _stream_mode(value: object) -> object:
    """CONVO_STREAM was a boolean before it named a mode: `true` still means the default, `false` means off."""
    return _STREAM_BOOLEANS.get(value.lower(), value) if isinstance(value, str) else value


StreamMode = Annotated[Literal["drafts", "edits", "off"], BeforeValidator(_stream_mode)]
"""How an answer is shown while it is generated (CONVO_STREAM)."""


def _host_port(value: object) -> object:
    """`HOST:PORT` (`:PORT` listens on every interface) as a (host, port) pair."""
    if not isinstance(value, str):
        return value
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT such as 0.0.0.0:8080, got {value!r}")
    return host or "0.0.0.0", int(port)


HostPort = Annotated[tuple[str, int], NoDecode, BeforeValidator(_host_port)]
"""Where a server listens: a host and a port, given as `HOST:PORT`."""


def setting(*names: str, default: Any = PydanticUndefined, unset: str | None = None, **bounds: Any) -> Any:
    """A field read from the variable `names[0]` (or, failing that, from the older spellings after it).

    `unset` tells the operator how to set a required variable; `bounds` are pydantic's (`gt`, `ge`, ...).
    """
    alias = names[0] if len(names) == 1 else AliasChoices(*names)
    return Field(default, validation_alias=alias, description=unset, **bounds)


class _Given(EnvSettingsSource):
    """The environment mapping given to `from_env` (the entrypoint lays `.env` under the process environment)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls, case_sensitive=True)
        self.env_vars = {name: value.strip() for name, value in env.items() if value.strip()}


class EnvSettings(BaseSettings):
    """A concern's settings; build it with `from_env(env)`, or with field names as keywords (tests)."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True, validate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments only: the environment comes in through `from_env`, never behind the caller's back."""
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """The settings in `env`; ConfigError names the first bad variable (in field order)."""
        given = _Given(cls, env)
        try:
            return cls(**given())
        except ValidationError as error:
            raise ConfigError(cls._sentence(error.errors()[0], given.env_vars)) from None

    def secrets(self) -> list[str]:
        """Every secret these settings hold, for the log redactor."""
        values = (getattr(self, name) for name in type(self).model_fields)
        return [value.get_secret_value() for value in values if isinstance(value, SecretStr)]

    @classmethod
    def _sentence(cls, error: ErrorDetails, given: Mapping[str, str | None]) -> str:
        """One line for the first error: the variable's name, what is wrong, and (unless secret) the value given."""
        field = _field(cls.model_fields, str(error["loc"][0]) if error["loc"] else "")
        if field is None:
            return f"bad setting: {error['msg']}"
        names = _variables(field)
        if error["type"] == "missing":
            return f"{names[0]} is not set: {field.description}"
        if error["type"] == "value_error" and "error" in error.get("ctx", {}):
            return f"{names[0]} {error['ctx']['error']}"
        text = next((given[name] for name in names if given.get(name) is not None), error["input"])
        shown = "" if _holds(field, SecretStr) else f", got {text!r}"
        return f"{names[0]} must be {_expected(field, error)}{shown}"


def _field(fields: Mapping[str, FieldInfo], key: str) -> FieldInfo | None:
    """The field an error location names: pydantic reports a variable's name, or the field's own."""
    return next((field for name, field in fields.items() if key == name or key in _variables(field)), None)


def _variables(field: FieldInfo) -> list[str]:
    """The variable's name, then its older spellings."""
    alias = field.validation_alias
    return [str(choice) for choice in alias.choices] if isinstance(alias, AliasChoices) else [str(alias)]


def _holds(field: FieldInfo, kind: type) -> bool:
    return field.annotation is kind or kind in get_args(field.annotation)


def _expected(field: FieldInfo, error: ErrorDetails) -> str:
    """What the variable must hold, in words: 'true or false', 'a whole number above 0', ..."""
    if _holds(field, bool):
        return "true or false"
    if not (_holds(field, int) or _holds(field, float)):
        return str(error["msg"]).removeprefix("Input should be ")
    words = "a whole number" if _holds(field, int) else "a number"
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Gt):
            words += f" above {bound.gt:g}"
        elif isinstance(bound, annotated_types.Ge):
            words += f" of at least {bound.ge:g}"
    return words
