"""The model server's own token count of a prompt, where it has one: llama.cpp's and vLLM's `POST /tokenize`.

Both serve it beside `/v1`, at the server's root. One request body speaks to both: vLLM counts `messages` through
the model's chat template and answers `{"count": n}`; llama.cpp tokenizes `content` and answers `{"tokens": [...]}`,
to which the template's few tokens per message are added. A server without the endpoint (OpenAI's, Ollama's) is
asked once: after a 404 (or an answer of another shape) the meter says nothing again and the estimate stands alone.
Any other failure (a timeout, a 5xx) leaves that one prompt to the estimate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import openai
import structlog
from openai import AsyncOpenAI

from domain.prompt import Message

log = structlog.get_logger(__name__)

_ABSENT = frozenset({404, 405, 501})
"""Statuses that say the server has no such endpoint."""

TEMPLATE_TOKENS = 4
"""Tokens a chat template adds around each message (role markers, separators), as OpenAI's cookbook counts them."""


def tokenize_url(base_url: str) -> str:
    """`/tokenize` at the server's root: `http://host:8080/v1` -> `http://host:8080/tokenize`."""
    root = base_url.rstrip("/")
    root = root.removesuffix("/v1")
    return f"{root}/tokenize"


class ServerTokenizer:
    """A PromptMeter over the model server's `/tokenize`; quiet for good once the server shows it has none."""

    def __init__(self, client: AsyncOpenAI, model: str, timeout: float = 5.0) -> None:
        self._client = client
        self._model = model
        self._timeout = timeout
        self._url = tokenize_url(str(client.base_url))
        self._available = True

    async def measure(self, prompt: Sequence[Message]) -> int | None:
        """The prompt's tokens as the server counts them; None when it cannot say."""
        if not self._available:
            return None
        messages = [{"role": message.role, "content": message.content} for message in prompt]
        content = "\n".join(message.content for message in prompt)
        body = {"model": self._model, "messages": messages, "content": content, "add_special": True}
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._client.post(self._url, body=body, cast_to=object)
        except openai.APIStatusError as error:
            if error.status_code in _ABSENT:
                self._available = False
                log.info("model_tokenizer_unavailable", url=self._url, status=error.status_code)
            else:
                log.warning("model_tokenizer_failed", url=self._url, status=error.status_code)
            return None
        except Exception as error:  # a timeout or a cut connection: the estimate stands for this prompt
            log.warning("model_tokenizer_failed", url=self._url, reason=type(error).__name__)
            return None
        counted = _count(answer, len(prompt))
        if counted is None:
            self._available = False
            log.info("model_tokenizer_unavailable", url=self._url, reason="unrecognised answer")
        return counted


def _count(answer: Any, messages: int) -> int | None:
    if not isinstance(answer, dict):
        return None
    count = answer.get("count")
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    tokens = answer.get("tokens")
    if isinstance(tokens, list):
        return len(tokens) + TEMPLATE_TOKENS * messages
    return None
