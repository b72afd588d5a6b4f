"""Wire-format primitives shared by the modules of the fake OpenAI server.

Error bodies (``{"error": {"message", "type", "param", "code"}}`` and the API's wording of its validation
messages), compact JSON, and the deterministic token count every fake endpoint bills with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from aiohttp import web

JSONDict: TypeAlias = dict[str, Any]

TOKEN_RE: Final = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Count "tokens" deterministically: every word and every punctuation mark is one."""
    return len(TOKEN_RE.findall(text))


def json_type_name(value: object) -> str:
    """Name a JSON value's type the way the API's validation messages do."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def quote_values(values: Iterable[str]) -> str:
    """Format ``['a', 'b', 'c']`` as ``'a', 'b', and 'c'``."""
    quoted = [f"'{value}'" for value in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def go_duration(seconds: float) -> str:
    """Format a duration like the ``x-ratelimit-reset-*`` headers do (``"6ms"``, ``"1m30s"``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:g}s"
    return f"{int(minutes)}m{text}" if minutes else text


def mask_key(key: str) -> str:
    """Mask an API key like the 401 message does (``sk-ab****wxyz``)."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def dumps(payload: object) -> str:
    """Serialise compactly, as the API does."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiError:
    """An error answer: HTTP status, the ``error`` object and extra headers."""

    status: int
    message: str
    type: str | None = "invalid_request_error"
    param: str | None = None
    code: str | int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> JSONDict:
        """Return the ``{"error": {...}}`` body."""
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return {"error": {**error, **self.extra}}

    def response(self) -> web.Response:
        """Build the aiohttp response."""
        return web.Response(
            status=self.status,
            text=dumps(self.body()),
            content_type="application/json",
            headers=dict(self.headers),
        )


def missing_param(param: str) -> ApiError:
    """400 for a missing required parameter."""
    return ApiError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def invalid_type(param: str, expected: str, value: object) -> ApiError:
    """400 for a parameter of the wrong JSON type."""
    message = f"Invalid type for '{param}': expected {expected}, but got {json_type_name(value)} instead."
    return ApiError(400, message, param=param, code="invalid_type")


def invalid_value(param: str, value: object, allowed: Iterable[str]) -> ApiError:
    """400 for a value outside an enumeration."""
    message = f"Invalid value: '{value}'. Supported values are: {quote_values(allowed)}."
    return ApiError(400, message, param=param, code="invalid_value")


def below_minimum(param: str, value: int, minimum: int) -> ApiError:
    """400 for an integer below its minimum."""
    message = f"Invalid '{param}': integer below minimum value. Expected a value >= {minimum}, but got {value} instead."
    return ApiError(400, message, param=param, code="integer_below_min_value")


def invalid_json_error() -> ApiError:
    """400 for a body that is not JSON."""
    return ApiError(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
        "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
        "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
        "help center at help.openai.com.)",
    )


def missing_key_error() -> ApiError:
    """401 without an ``Authorization`` header."""
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
        "username) if you're accessing the API from your browser and are prompted for a username and "
        "password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
    )


def invalid_key_error(key: str) -> ApiError:
    """401 for a wrong key."""
    message = (
        f"Incorrect API key provided: {mask_key(key)}. "
        "You can find your API key at https://platform.openai.com/account/api-keys."
    )
    return ApiError(401, message, code="invalid_api_key")
