"""Content parts of chat messages (text and images) as the fake OpenAI server checks and bills them.

A message ``content`` may be an array of parts: ``{"type": "text", "text": ...}`` and, in ``user`` messages,
``{"type": "image_url", "image_url": {"url": ..., "detail": "auto" | "low" | "high"}}`` where the URL is
``https://...`` (never fetched) or ``data:image/(png|jpeg|gif|webp);base64,...`` (decoded and sniffed).
Bad parts get the API's 400 bodies (wording taken from real answers where one could be found):

* unknown ``type`` -> ``Invalid value: 'image'. Supported values are: ...`` (``param`` ``messages[i].content[j]
  .type``, ``code`` ``invalid_value``); ``image_url`` given as a string -> ``invalid_type``;
* an image in a ``system`` / ``assistant`` / ``tool`` message -> ``Invalid 'messages[i]'. Image URLs are only
  allowed for messages with role 'user', but this message with role 'assistant' contains an image URL.``;
* a URL neither ``http(s)`` nor ``data:`` -> ``Expected a valid URL, but got a value with an invalid format``;
  a non-image MIME type or empty data -> ``Expected a base64-encoded data URL with an image MIME type ...``;
  bad base64 -> ``Invalid base64 image_url.`` (``invalid_base64``); bytes that are not PNG, JPEG, GIF or WebP,
  or over 20 MB -> ``You uploaded an unsupported image ...`` (``invalid_image_format``).

:meth:`VisionMixin.refuse_images` makes a model answer an image part the way a text-only model does:
``Invalid content type. image_url is only supported by certain models.`` with ``param``
``messages.[i].content.[j].type`` (sic, dots included).

Billing: an image costs what OpenAI documents for gpt-4o: ``detail: "low"`` 85 tokens; otherwise the image
is fitted into 2048x2048, then its shorter side scaled down to 768, and it costs 85 + 170 per 512-pixel tile.
An ``https`` image, whose size the fake does not know, counts as 1024x1024 (765 tokens).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from tests.doubles.media_samples import image_format, image_size
from tests.doubles.openai_wire import ApiError, JSONDict, invalid_type, invalid_value, missing_param

IMAGE_DETAILS: Final = ("auto", "low", "high")
IMAGE_FORMATS: Final = ("png", "jpeg", "gif", "webp")
MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
URL_IMAGE_SIZE: Final = (1024, 1024)
"""Dimensions assumed for an image given by ``https`` URL (the fake never downloads it)."""
PART_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
}
"""Content part types per role (other roles take ``text`` only)."""
_DATA_URL: Final = re.compile(r"^data:(?P<mime>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<payload>.*)$", re.DOTALL)
_EXAMPLE_DATA_URL: Final = "'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='"
REFUSAL_MESSAGE: Final = "Invalid content type. image_url is only supported by certain models."


@dataclass(frozen=True)
class ImagePart:
    """One ``image_url`` part of a chat request, decoded when it is a data URL."""

    message_index: int
    part_index: int
    url: str
    detail: str
    data: bytes | None
    """The image bytes of a ``data:`` URL; None for an ``https`` URL."""
    media_type: str | None

    @property
    def size(self) -> tuple[int, int]:
        """Width and height (``URL_IMAGE_SIZE`` for an ``https`` image)."""
        found = image_size(self.data) if self.data else None
        return found or URL_IMAGE_SIZE

    @property
    def tokens(self) -> int:
        """Prompt tokens the image is billed (see the module docstring)."""
        return image_tokens_for(*self.size, detail=self.detail)


def image_tokens_for(width: int, height: int, *, detail: str = "auto") -> int:
    """OpenAI's documented image cost: 85 for ``low``, else 85 + 170 per 512-px tile after scaling."""
    if detail == "low":
        return 85
    fit = min(1.0, 2048 / max(width, height, 1))
    shrink = min(1.0, 768 / max(min(width, height) * fit, 1))
    scale = fit * shrink
    return 85 + 170 * math.ceil(width * scale / 512) * math.ceil(height * scale / 512)


# --------------------------------------------------------------------------------------------- reading parts


def image_parts(source: Any) -> list[ImagePart]:
    """The image parts of a chat request (a ``RecordedRequest`` or its ``messages`` list), in order."""
    messages = getattr(source, "messages", source)
    found: list[ImagePart] = []
    for message_index, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        for part_index, part in enumerate(content if isinstance(content, list) else []):
            image = part.get("image_url") if isinstance(part, dict) and part.get("type") == "image_url" else None
            if isinstance(image, dict) and isinstance(image.get("url"), str):
                found.append(_image_part(message_index, part_index, image))
    return found


def _image_part(message_index: int, part_index: int, image: JSONDict) -> ImagePart:
    url: str = image["url"]
    match = _DATA_URL.match(url)
    data = media_type = None
    if match is not None:
        media_type = match["mime"] or None
        try:
            data = base64.b64decode(match["payload"], validate=True)
        except (binascii.Error, ValueError):
            data = None
    return ImagePart(message_index, part_index, url, str(image.get("detail") or "auto"), data, media_type)


def image_tokens(content: object) -> int:
    """Prompt tokens of the images in one message ``content`` (0 for a string)."""
    return sum(part.tokens for part in image_parts([{"content": content}]))


def count_images(messages: Iterable[object]) -> int:
    """How many image parts a list of messages holds."""
    return len(image_parts(list(messages)))


# --------------------------------------------------------------------------------------------- validation


def check_content_parts(param: str, role: str, content: list[Any]) -> ApiError | None:
    """Check the parts of ``messages[i].content`` (``param`` is ``messages[i]``); return the first error."""
    allowed = PART_TYPES.get(role, ("text",))
    for index, part in enumerate(content):
        where = f"{param}.content[{index}]"
        if not isinstance(part, dict):
            return invalid_type(where, "an object", part)
        kind = part.get("type")
        if kind is None:
            return missing_param(f"{where}.type")
        if kind == "image_url" and role != "user":
            message = (
                f"Invalid '{param}'. Image URLs are only allowed for messages with role 'user', "
                f"but this message with role '{role}' contains an image URL."
            )
            return ApiError(400, message, param=param, code="invalid_value")
        if kind not in allowed:
            return invalid_value(f"{where}.type", kind, allowed)
        error = _check_text(where, part) if kind == "text" else None
        error = error or (_check_image(where, part) if kind == "image_url" else None)
        if error:
            return error
    return None


def _check_text(where: str, part: JSONDict) -> ApiError | None:
    if part.get("text") is None:
        return missing_param(f"{where}.text")
    if not isinstance(part["text"], str):
        return invalid_type(f"{where}.text", "a string", part["text"])
    return None


def _check_image(where: str, part: JSONDict) -> ApiError | None:
    image = part.get("image_url")
    if image is None:
        return missing_param(f"{where}.image_url")
    if not isinstance(image, dict):
        return invalid_type(f"{where}.image_url", "an object", image)
    url = image.get("url")
    if url is None:
        return missing_param(f"{where}.image_url.url")
    if not isinstance(url, str):
        return invalid_type(f"{where}.image_url.url", "a string", url)
    detail = image.get("detail")
    if detail is not None and detail not in IMAGE_DETAILS:
        return invalid_value(f"{where}.image_url.detail", detail, IMAGE_DETAILS)
    if re.match(r"^https?://\S+$", url, re.IGNORECASE):
        return None
    if not url.startswith("data:"):
        message = f"Invalid '{where}.image_url.url'. Expected a valid URL, but got a value with an invalid format."
        return ApiError(400, message, param=f"{where}.image_url.url", code="invalid_value")
    return _check_data_url(where, url)


def _check_data_url(where: str, url: str) -> ApiError | None:
    match = _DATA_URL.match(url)
    if match is None or ";base64" not in match["params"]:
        return ApiError(400, "Invalid base64 image_url.", param=None, code="invalid_base64")
    expected = f"Expected a base64-encoded data URL with an image MIME type (e.g. {_EXAMPLE_DATA_URL})"
    if not match["mime"].lower().startswith("image/"):
        message = f"Invalid '{where}.image_url.url'. {expected}, but got unsupported MIME type '{match['mime']}'."
        return ApiError(400, message, param=f"{where}.image_url.url", code="invalid_value")
    if not match["payload"]:
        message = f"Invalid '{where}.image_url'. {expected}, but got empty base64-encoded bytes."
        return ApiError(400, message, param=f"{where}.image_url.url", code="invalid_value")
    try:
        data = base64.b64decode(match["payload"], validate=True)
    except (binascii.Error, ValueError):
        return ApiError(400, "Invalid base64 image_url.", param=None, code="invalid_base64")
    if len(data) > MAX_IMAGE_BYTES or image_format(data) not in IMAGE_FORMATS:
        limit = "is below 20 MB in size and " if len(data) > MAX_IMAGE_BYTES else ""
        message = (
            f"You uploaded an unsupported image. Please make sure your image {limit}has of one the following "
            f"formats: {list(IMAGE_FORMATS)}."
        )
        return ApiError(400, message, param=None, code="invalid_image_format")
    return None


# --------------------------------------------------------------------------------------------- the mixin


class VisionMixin:
    """Image switches and readers of :class:`~tests.doubles.openai_server.FakeOpenAI`."""

    def _init_vision(self) -> None:
        self._text_only_models: set[str] = set()

    def refuse_images(self, *models: str) -> None:
        """Make these models refuse image parts like a text-only model (400 ``Invalid content type...``)."""
        self._text_only_models.update(models)

    def accept_images(self, *models: str) -> None:
        """Undo :meth:`refuse_images` for these models (all of them without arguments)."""
        if models:
            self._text_only_models.difference_update(models)
        else:
            self._text_only_models.clear()

    def _image_refusal(self, body: JSONDict) -> ApiError | None:
        """The 400 a text-only model answers to the first image part of ``body``, if any."""
        if body.get("model") not in self._text_only_models:
            return None
        for part in image_parts(body.get("messages")):
            param = f"messages.[{part.message_index}].content.[{part.part_index}].type"
            return ApiError(400, REFUSAL_MESSAGE, param=param, code=None)
        return None
