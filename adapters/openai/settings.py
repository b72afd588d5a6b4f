"""Model settings read from the environment, and the one place the OpenAI client and both models are built.

| variable                    | default        | meaning                                                    |
| --------------------------- | -------------- | ---------------------------------------------------------- |
| `OPENAI_API_KEY`            | required       | API key (`OPENAI_SECRET_KEY` is accepted too); local       |
|                             |                | OpenAI-compatible servers accept any non-empty value       |
| `OPENAI_BASE_URL`           | OpenAI         | e.g. `http://localhost:11434/v1` for Ollama                |
| `CONVO_CHAT_MODEL`          | gpt-3.5-turbo  | any name the server knows                                  |
| `CONVO_IMAGE_MODEL`         | dall-e-2       |                                                            |
| `CONVO_IMAGE_SIZE`          | 1024x1024      | `WIDTHxHEIGHT` or `auto`                                   |
| `CONVO_MAX_TOKENS`          | 1024           | answer limit; `none` sends no limit                        |
| `CONVO_MODEL_TIMEOUT`       | 60             | seconds per attempt (for a stream: most seconds of silence)|
| `CONVO_MODEL_RETRIES`       | 4              | attempts per call, the first included                      |
| `CONVO_MODEL_RETRY_SECONDS` | 90             | most seconds for all attempts of one call                  |
| `CONVO_STREAM`              | true           | stream answers as they are written                         |

Empty values count as unset. A bad value raises ValueError with one line naming the variable (and never the key).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

import attrs
from openai import AsyncOpenAI, DefaultAioHttpClient

from adapters.openai.chat import OpenAIChatModel
from adapters.openai.images import OpenAIImageModel
from adapters.openai.retry import RetryPolicy

OPENAI_URL = "https://api.openai.com/v1"
KEY_VARIABLES = ("OPENAI_API_KEY", "OPENAI_SECRET_KEY")
_SIZE = re.compile(r"^(auto|[1-9]\d{1,4}x[1-9]\d{1,4})$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
N = TypeVar("N", int, float)


def _redact_url(url: str | None) -> str:
    """A base URL for repr, without any user:password part."""
    if url is None:
        return "None"
    parts = urlsplit(url)
    if parts.username or parts.password:
        return repr(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl())
    return repr(url)


@attrs.frozen
class OpenAISettings:
    """How to reach the models and how patiently."""

    api_key: str = attrs.field(repr=False)
    """The API key; never shown by repr."""
    base_url: str | None = attrs.field(default=None, repr=_redact_url)
    """The API's base URL; None for OpenAI's."""
    chat_model: str = "gpt-3.5-turbo"
    """Model for answers."""
    image_model: str = "dall-e-2"
    """Model for pictures."""
    image_size: str = "1024x1024"
    """Picture size, `WIDTHxHEIGHT` or `auto`."""
    max_tokens: int | None = 1024
    """Most tokens per answer; None sends no limit."""
    timeout: float = 60.0
    """Seconds per attempt (for a stream: the longest silence)."""
    retries: int = 4
    """Attempts per call, the first included."""
    retry_seconds: float = 90.0
    """Most seconds for all attempts of one call."""
    stream: bool = True
    """Whether answers are streamed."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OpenAISettings:
        """Settings from environment variables (see the module docstring); ValueError names a bad variable."""
        values = {name: value.strip() for name, value in env.items() if value.strip()}
        key = next((values[name] for name in KEY_VARIABLES if name in values), None)
        if key is None:
            raise ValueError(
                "OPENAI_API_KEY is not set: give it your API key (OPENAI_SECRET_KEY also works); "
                "local OpenAI-compatible servers accept any non-empty value"
            )
        if any(character.isspace() for character in key):
            raise ValueError("OPENAI_API_KEY must not contain spaces or line breaks")
        base_url = values.get("OPENAI_BASE_URL")
        if base_url is not None and urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError("OPENAI_BASE_URL must be an http:// or https:// URL, such as http://localhost:11434/v1")
        size = values.get("CONVO_IMAGE_SIZE", "1024x1024")
        if not _SIZE.match(size):
            raise ValueError(f"CONVO_IMAGE_SIZE must be WIDTHxHEIGHT (such as 1024x1024) or auto, not {size!r}")
        return cls(
            api_key=key,
            base_url=base_url,
            chat_model=values.get("CONVO_CHAT_MODEL", "gpt-3.5-turbo"),
            image_model=values.get("CONVO_IMAGE_MODEL", "dall-e-2"),
            image_size=size,
            max_tokens=_max_tokens(values),
            timeout=_positive(values, "CONVO_MODEL_TIMEOUT", float, 60.0),
            retries=_positive(values, "CONVO_MODEL_RETRIES", int, 4),
            retry_seconds=_positive(values, "CONVO_MODEL_RETRY_SECONDS", float, 90.0),
            stream=_flag(values, "CONVO_STREAM", True),
        )

    def retry_policy(self) -> RetryPolicy:
        """The retry policy these settings describe (backoff timings are the policy's defaults)."""
        return RetryPolicy(attempts=self.retries, total_seconds=self.retry_seconds)


def _positive(values: Mapping[str, str], name: str, kind: Callable[[str], N], default: N) -> N:
    text = values.get(name)
    if text is None:
        return default
    what = "a whole number" if kind is int else "a number"
    try:
        number = kind(text)
    except ValueError:
        raise ValueError(f"{name} must be {what} above 0, not {text!r}") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{name} must be {what} above 0, not {text!r}")
    return number


def _max_tokens(values: Mapping[str, str]) -> int | None:
    if values.get("CONVO_MAX_TOKENS", "").lower() == "none":
        return None
    return _positive(values, "CONVO_MAX_TOKENS", int, 1024)


def _flag(values: Mapping[str, str], name: str, default: bool) -> bool:
    text = values.get(name)
    if text is None:
        return default
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, not {text!r}")


def build_client(settings: OpenAISettings) -> AsyncOpenAI:
    """The one OpenAI client: retries are ours (`max_retries=0`), the timeout is per attempt.

    It sends over aiohttp (the SDK's own `DefaultAioHttpClient`; aiohttp is already here for aiogram): half the
    CPU of the default transport per streamed answer, whose pool probes every idle connection on each request.
    """
    return AsyncOpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url or OPENAI_URL,
        max_retries=0,
        timeout=settings.timeout,
        http_client=DefaultAioHttpClient(timeout=settings.timeout),
    )


def build_models(settings: OpenAISettings) -> tuple[OpenAIChatModel, OpenAIImageModel]:
    """The chat and image models, sharing one client (and so one connection pool)."""
    client = build_client(settings)
    retry = settings.retry_policy()
    chat = OpenAIChatModel(
        client,
        model=settings.chat_model,
        max_tokens=settings.max_tokens,
        timeout=settings.timeout,
        retry=retry,
        stream=settings.stream,
    )
    images = OpenAIImageModel(
        client, model=settings.image_model, size=settings.image_size, timeout=settings.timeout, retry=retry
    )
    return chat, images
