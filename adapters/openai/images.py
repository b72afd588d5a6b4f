"""The image model port over the OpenAI Images API (`POST /images/generations`).

The picture always comes back with its bytes: a `url` answer is downloaded at once (pre-signed URLs expire within
the hour and may not be reachable from Telegram's side), without the API key, within the same retry budget; a
`b64_json` answer is decoded. `Picture.ref` is the URL, or `sha256:<hex>` of the bytes for inline answers.
`response_format` is never sent to `gpt-image-*` models, which reject it and always answer in base64.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from typing import Literal

import httpx2
from openai import AsyncOpenAI, omit
from openai.types import Image, ImagesResponse

from adapters.openai.errors import IncompleteAnswer
from adapters.openai.retry import RetryPolicy
from domain.ports import ModelFailure, Picture

MAX_IMAGE_BYTES = 32 * 1024 * 1024
"""Most bytes accepted from an image URL."""


def sha256_ref(data: bytes) -> str:
    """The `sha256:<hex>` reference of inline image bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def takes_response_format(model: str) -> bool:
    """Whether the model accepts `response_format` (GPT image models reject it)."""
    return not model.startswith("gpt-image")


class OpenAIImageModel:
    """An ImageModel backed by `client.images.generate` (the client is built with `max_retries=0`)."""

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str = "dall-e-2",
        size: str = "1024x1024",
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        response_format: Literal["url", "b64_json"] = "url",
        http: httpx2.AsyncClient | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._size = size
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._response_format = response_format
        self._http = http

    @property
    def name(self) -> str:
        """The configured model name."""
        return self._model

    async def close(self) -> None:
        """Close the HTTP client (shared with the chat model, if built together)."""
        await self._client.close()

    async def draw(self, prompt: str) -> Picture:
        """One picture for the prompt, bytes included. Raises ModelFailure."""
        deadline = self._retry.deadline()
        secrets = self._secrets()
        image, data = await self._retry.call(
            lambda left: self._generate(prompt, left), operation="image", secrets=secrets, deadline=deadline
        )
        if data is not None:
            return Picture(sha256_ref(data), self._model, image.revised_prompt, data, size=self._size)
        url = image.url or ""
        data = await self._retry.call(
            lambda left: self._download(url, left), operation="image_download", secrets=secrets, deadline=deadline
        )
        return Picture(url, self._model, image.revised_prompt, data, size=self._size)

    def _secrets(self) -> tuple[str, ...]:
        key = getattr(self._client, "api_key", None)
        return (key,) if isinstance(key, str) else ()

    async def _generate(self, prompt: str, left: float) -> tuple[Image, bytes | None]:
        """One generation: the image, with its bytes when they came inline."""
        budget = min(self._timeout, left)
        async with asyncio.timeout(budget):
            response: ImagesResponse = await self._client.images.generate(
                model=self._model,
                prompt=prompt,
                n=1,
                size=self._size,
                response_format=self._response_format if takes_response_format(self._model) else omit,
                timeout=budget,
            )
        image = response.data[0] if response.data else None
        if image is not None and image.b64_json:
            return image, _decode(image.b64_json)
        if image is None or not image.url:
            raise IncompleteAnswer("the image server sent no image")
        if not image.url.startswith(("https://", "http://")):
            raise ModelFailure("upstream", "the image server sent an unusable image URL")
        return image, None

    async def _download(self, url: str, left: float) -> bytes:
        """The bytes behind an image URL, fetched without any credentials."""
        budget = min(self._timeout, left)
        async with asyncio.timeout(budget):
            if self._http is not None:
                return await _fetch(self._http, url, httpx2.Timeout(budget))
            async with httpx2.AsyncClient(follow_redirects=True) as http:
                return await _fetch(http, url, httpx2.Timeout(budget))


async def _fetch(http: httpx2.AsyncClient, url: str, limits: httpx2.Timeout) -> bytes:
    """The bytes at `url` (no credentials sent), at most MAX_IMAGE_BYTES of them."""
    async with http.stream("GET", url, timeout=limits) as response:
        response.raise_for_status()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_IMAGE_BYTES:
                raise ModelFailure("upstream", f"the image is larger than {MAX_IMAGE_BYTES} bytes")
            chunks.append(chunk)
    if not size:
        raise IncompleteAnswer("the image URL gave no bytes")
    return b"".join(chunks)


def _decode(b64: str) -> bytes:
    """Inline image bytes; a broken encoding is a malformed answer, worth another attempt."""
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise IncompleteAnswer("the image server sent undecodable image data") from error
    if not data:
        raise IncompleteAnswer("the image server sent an empty image")
    return data
