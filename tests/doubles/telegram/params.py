"""Request parameter decoding, as the real Bot API server does it.

Every parameter ends up as a string (objects arrive JSON-encoded inside form
fields, exactly how aiogram sends them; a JSON body's nested objects are
re-encoded), so handlers read all transports the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
from aiohttp import web

from .errors import ApiError, bad_request
from .models import UploadedFile

_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
_LEADING_INT = re.compile(r"^\s*([+-]?\d+)")


def _as_param(value: Any) -> str | None:
    """Flatten one JSON body value into the string form the server works with."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@attrs.define
class Params:
    """Decoded request parameters plus uploaded files."""

    values: dict[str, str] = attrs.field(factory=dict)
    files: dict[str, UploadedFile] = attrs.field(factory=dict)

    def has(self, name: str) -> bool:
        """True if the parameter is present and non-empty."""
        return bool(self.values.get(name))

    def text(self, name: str, default: str = "") -> str:
        """The raw string value (``default`` when absent)."""
        return self.values.get(name, default)

    def optional(self, name: str) -> str | None:
        """The raw value, or ``None`` when absent or empty."""
        return self.values.get(name) or None

    def integer(self, name: str, default: int = 0, *, low: int | None = None, high: int | None = None) -> int:
        """An integer like the server's ``get_integer_arg``: garbage reads as 0, then clamps."""
        raw = self.values.get(name, "")
        if not raw:
            return default
        match = _LEADING_INT.match(raw)
        value = int(match.group(1)) if match else 0
        if low is not None:
            value = max(low, value)
        if high is not None:
            value = min(high, value)
        return value

    def flag(self, name: str) -> bool:
        """A boolean: ``true`` or ``1`` (case-insensitive) mean yes."""
        return self.values.get(name, "").strip().lower() in {"true", "1"}

    def json(self, name: str, error: str) -> Any:
        """Decode a JSON-encoded parameter; ``None`` when absent, ``Bad Request: <error>`` when invalid."""
        raw = self.values.get(name)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise bad_request(error) from None

    def file(self, name: str) -> UploadedFile | None:
        """The uploaded file for ``name``, directly or through ``attach://<part>``."""
        if name in self.files:
            return self.files[name]
        raw = self.values.get(name, "")
        if raw.startswith("attach://"):
            return self.files.get(raw[len("attach://") :])
        return None


async def read_params(request: web.Request) -> Params:
    """Merge query-string and body parameters of any supported encoding."""
    params = Params(values=dict(request.query))
    if not request.body_exists:
        return params
    if request.content_type == "application/json":
        await _read_json_body(request, params)
    elif request.content_type in _FORM_TYPES:
        await _read_form_body(request, params)
    return params


async def _read_json_body(request: web.Request, params: Params) -> None:
    try:
        body = json.loads(await request.text() or "{}")
    except ValueError:
        raise bad_request("can't parse JSON encoded request") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Bad Request: JSON object expected as request body")
    for key, value in body.items():
        flat = _as_param(value)
        if flat is not None:
            params.values[str(key)] = flat


async def _read_form_body(request: web.Request, params: Params) -> None:
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params.files[key] = UploadedFile(
                field=key,
                filename=value.filename,
                content_type=value.content_type,
                data=value.file.read(),
            )
        elif isinstance(value, bytes | bytearray):
            params.values[key] = bytes(value).decode("utf-8", "replace")
        else:
            params.values[key] = str(value)
