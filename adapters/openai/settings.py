"""Model settings read from the environment, and the one place the OpenAI client and the models are built.

| variable                    | default        | meaning                                                    |
| --------------------------- | -------------- | ---------------------------------------------------------- |
| `OPENAI_API_KEY`            | required       | API key (`OPENAI_SECRET_KEY` is accepted too); local       |
|                             |                | OpenAI-compatible servers accept any non-empty value       |
| `OPENAI_BASE_URL`           | OpenAI         | e.g. `http://localhost:11434/v1` for Ollama                |
| `CONVO_CHAT_MODEL`          | gpt-3.5-turbo  | any name the server knows                                  |
| `CONVO_MODELS`              | the chat model | comma-separated models a chat may pick, the default first  |
| `CONVO_IMAGE_MODEL`         | dall-e-2       |                                                            |
| `CONVO_IMAGE_SIZE`          | 1024x1024      | `WIDTHxHEIGHT` or `auto`                                   |
| `CONVO_TRANSCRIBE_MODEL`    | gpt-4o-mini-   | speech to text (`whisper-1`, or a local server's model)    |
|                             | transcribe     |                                                            |
| `CONVO_SPEECH_MODEL`        | gpt-4o-mini-   | text to speech (`tts-1`, or a local server's model)        |
|                             | tts            |                                                            |
| `CONVO_SPEECH_VOICE`        | alloy          | one word: a voice the speech server knows                  |
| `CONVO_MAX_TOKENS`          | 1024           | answer limit; `none` sends no limit                        |
| `CONVO_MODEL_TIMEOUT`       | 60             | seconds per attempt (for a stream: most seconds of silence)|
| `CONVO_MODEL_RETRIES`       | 4              | attempts per call, the first included                      |
| `CONVO_MODEL_RETRY_SECONDS` | 90             | most seconds for all attempts of one call                  |
| `CONVO_STREAM`              | drafts         | `off` asks the model for whole answers (no streaming)      |

Empty values count as unset. A bad value raises ConfigError (a ValueError) with one line naming the variable, never
the key. Reading the settings imports no SDK: `convo replay` reads `ModelChoice` to count prompts as the bot does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator
from pydantic_settings import NoDecode

from adapters.env_settings import EnvSettings, StreamMode, setting

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from adapters.openai.audio import OpenAISpeaker, OpenAITranscriber
    from adapters.openai.chat import OpenAIChatModel
    from adapters.openai.images import OpenAIImageModel
    from adapters.openai.retry import RetryPolicy

OPENAI_URL = "https://api.openai.com/v1"
_SIZE = re.compile(r"^(auto|[1-9]\d{1,4}x[1-9]\d{1,4})$")


def _redact_url(url: str | None) -> str | None:
    """A base URL for repr, without any user:password part."""
    parts = urlsplit(url or "")
    if parts.username or parts.password:
        return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
    return url


class ModelChoice(EnvSettings):
    """Which chat model answers; prompts are counted in its tokens."""

    chat_model: str = setting("CONVO_CHAT_MODEL", default="gpt-3.5-turbo")
    """Model for answers, unless CONVO_MODELS names others."""
    model_list: Annotated[tuple[tuple[str, int | None], ...] | None, NoDecode] = setting("CONVO_MODELS", default=None)
    """The chat models a chat may pick (`/model`), the default first, each with its own prompt budget if it was
    given one (`name=tokens`); None for CONVO_CHAT_MODEL alone."""

    @property
    def models(self) -> tuple[str, ...]:
        """The chat models a chat may pick, the default first."""
        return tuple(name for name, _ in self.model_list) if self.model_list else (self.chat_model,)

    @property
    def budgets(self) -> dict[str, int]:
        """The prompt budgets the models were given in CONVO_MODELS (the others use CONVO_PROMPT_BUDGET)."""
        return {name: budget for name, budget in self.model_list or () if budget is not None}

    @property
    def default_model(self) -> str:
        """The model that answers chats that picked none."""
        return self.models[0]

    @field_validator("model_list", mode="before")
    @classmethod
    def _model_list(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        entries = [_model_entry(entry.strip()) for entry in raw.split(",") if entry.strip()]
        if not entries or any(entry is None for entry in entries):
            raise ValueError(
                "must be model names separated by commas, each optionally with its prompt budget in tokens "
                "(at least 64), e.g. gpt-4o-mini,gpt-4o=30000"
            )
        return tuple({entry[0]: entry for entry in entries if entry is not None}.values())


def _model_entry(entry: str) -> tuple[str, int | None] | None:
    """`name` or `name=budget` from CONVO_MODELS; None when it is neither."""
    name, sep, budget = entry.partition("=")
    name = name.strip()
    if not name or len(name) > 64 or any(char.isspace() for char in name):
        return None
    if not sep:
        return name, None
    budget = budget.strip()
    return (name, int(budget)) if budget.isdigit() and int(budget) >= 64 else None


class OpenAISettings(ModelChoice):
    """How to reach the models and how patiently."""

    api_key: SecretStr = setting(
        "OPENAI_API_KEY",
        "OPENAI_SECRET_KEY",
        unset="give it your API key (OPENAI_SECRET_KEY also works); "
        "local OpenAI-compatible servers accept any non-empty value",
    )
    """The API key."""
    base_url: str | None = setting("OPENAI_BASE_URL", default=None)
    """The API's base URL; None for OpenAI's."""
    image_model: str = setting("CONVO_IMAGE_MODEL", default="dall-e-2")
    """Model for pictures."""
    image_size: str = setting("CONVO_IMAGE_SIZE", default="1024x1024")
    """Picture size, `WIDTHxHEIGHT` or `auto`."""
    transcribe_model: str = setting("CONVO_TRANSCRIBE_MODEL", default="gpt-4o-mini-transcribe")
    """Model that makes voice notes into text."""
    speech_model: str = setting("CONVO_SPEECH_MODEL", default="gpt-4o-mini-tts")
    """Model that reads answers aloud."""
    speech_voice: str = setting("CONVO_SPEECH_VOICE", default="alloy")
    """The voice answers are read in."""
    max_tokens: int | None = setting("CONVO_MAX_TOKENS", default=1024, gt=0)
    """Most tokens per answer; None sends no limit."""
    timeout: float = setting("CONVO_MODEL_TIMEOUT", default=60.0, gt=0, allow_inf_nan=False)
    """Seconds per attempt (for a stream: the longest silence)."""
    retries: int = setting("CONVO_MODEL_RETRIES", default=4, gt=0)
    """Attempts per call, the first included."""
    retry_seconds: float = setting("CONVO_MODEL_RETRY_SECONDS", default=90.0, gt=0, allow_inf_nan=False)
    """Most seconds for all attempts of one call."""
    stream: StreamMode = setting("CONVO_STREAM", default="drafts")
    """How answers are shown as they grow; the model streams them unless this is `off`."""

    @field_validator("api_key")
    @classmethod
    def _one_word(cls, key: SecretStr) -> SecretStr:
        if any(character.isspace() for character in key.get_secret_value()):
            raise ValueError("must not contain spaces or line breaks")
        return key

    @field_validator("transcribe_model", "speech_model", "speech_voice")
    @classmethod
    def _word(cls, name: str) -> str:
        if not name or any(character.isspace() for character in name):
            raise ValueError(f"must be one word (a name the model server knows), not {name!r}")
        return name

    @field_validator("base_url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL, such as http://localhost:11434/v1")
        return url

    @field_validator("image_size")
    @classmethod
    def _size(cls, size: str) -> str:
        if not _SIZE.match(size):
            raise ValueError(f"must be WIDTHxHEIGHT (such as 1024x1024) or auto, not {size!r}")
        return size

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _no_limit(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.lower() == "none" else value

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, _redact_url(value) if name == "base_url" else value

    def retry_policy(self) -> RetryPolicy:
        """The retry policy these settings describe (backoff timings are the policy's defaults)."""
        from adapters.openai.retry import RetryPolicy

        return RetryPolicy(attempts=self.retries, total_seconds=self.retry_seconds)


def build_client(settings: OpenAISettings) -> AsyncOpenAI:
    """The one OpenAI client: retries are ours (`max_retries=0`), the timeout is per attempt.

    It sends over aiohttp (the SDK's own `DefaultAioHttpClient`; aiohttp is already here for aiogram): half the
    CPU of the default transport per streamed answer, whose pool probes every idle connection on each request.
    """
    from openai import AsyncOpenAI, DefaultAioHttpClient

    return AsyncOpenAI(
        api_key=settings.api_key.get_secret_value(),
        base_url=settings.base_url or OPENAI_URL,
        max_retries=0,
        timeout=settings.timeout,
        http_client=DefaultAioHttpClient(timeout=settings.timeout),
    )


def build_models(settings: OpenAISettings) -> tuple[OpenAIChatModel, OpenAIImageModel]:
    """The chat and image models, sharing one client (and so one connection pool)."""
    from adapters.openai.chat import OpenAIChatModel
    from adapters.openai.images import OpenAIImageModel

    client = build_client(settings)
    retry = settings.retry_policy()
    chat = OpenAIChatModel(
        client,
        model=settings.default_model,
        max_tokens=settings.max_tokens,
        timeout=settings.timeout,
        retry=retry,
        stream=settings.stream != "off",
    )
    images = OpenAIImageModel(
        client, model=settings.image_model, size=settings.image_size, timeout=settings.timeout, retry=retry
    )
    return chat, images


def build_audio(settings: OpenAISettings, client: AsyncOpenAI) -> tuple[OpenAITranscriber, OpenAISpeaker]:
    """The transcriber and the speaker on an OpenAI client (`build_client`; share the models' to share one
    connection pool), with the models' timeout and retry policy."""
    from adapters.openai.audio import OpenAISpeaker, OpenAITranscriber

    retry = settings.retry_policy()
    transcriber = OpenAITranscriber(client, model=settings.transcribe_model, timeout=settings.timeout, retry=retry)
    speaker = OpenAISpeaker(
        client, model=settings.speech_model, voice=settings.speech_voice, timeout=settings.timeout, retry=retry
    )
    return transcriber, speaker
