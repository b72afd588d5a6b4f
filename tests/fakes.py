"""In-process fakes of the model ports (`domain.ports.ChatModel`, `ImageModel`) for the use-case tests.

As cosmicpython's `FakeRepository` stands in for its repository: each fake implements its port with the least
behaviour a use case can be tested against, scripted by the test and recording every call. The OpenAI adapters
are tested against the local OpenAI HTTP server instead (tests/unit/test_openai_adapter.py), which e2e and crash
tests use too.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from domain.events import FAILURE_KINDS, FailureKind
from domain.ports import Completion, ModelFailure, Picture, StopSignal, TextSoFar
from domain.prompt import Message

if TYPE_CHECKING:
    from domain.ports import ChatModel, ImageModel

_WORD = re.compile(r"\S+\s*")


def count_tokens(prompt: Sequence[Message]) -> int:
    """The fake chat model's own count of a prompt: its words, plus 4 for each message."""
    return sum(4 + len(message.content.split()) for message in prompt)


def _failure(kind: FailureKind, retry_after: float | None) -> ModelFailure:
    if kind not in FAILURE_KINDS:
        raise ValueError(f"{kind!r} is none of {FAILURE_KINDS}")
    return ModelFailure(kind, f"the fake model failed: {kind}", retry_after=retry_after)


class FakeChatModel:
    """A chat model that answers `echo: <last user message>` unless scripted otherwise.

    Scripted answers and failures are taken in order, one per call. A prompt longer than `window` tokens (by
    `count_tokens`) fails with `context_too_long`, as a model server's window does. `hold()` keeps every call
    waiting until `release()`, so a test can see how many are at the model at once.
    """

    def __init__(self, name: str = "fake-chat") -> None:
        self.name = name
        self.window: int | None = None
        """Most prompt tokens (by `count_tokens`) a call may have; None: any."""
        self.prompts: list[tuple[Message, ...]] = []
        """Every prompt the model was asked, in order (failed calls included)."""
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False
        self._script: deque[str | ModelFailure] = deque()
        self._always: ModelFailure | None = None
        self._open = asyncio.Event()
        self._open.set()
        self._arrived = asyncio.Event()

    def answer_with(self, *answers: str) -> None:
        """The next calls answer these texts, in order (then the echo again)."""
        self._script.extend(answers)

    def fail_next(self, kind: FailureKind, *, retry_after: float | None = None, times: int = 1) -> None:
        """The next `times` calls raise ModelFailure of this kind."""
        self._script.extend(_failure(kind, retry_after) for _ in range(times))

    def refuse_billed(self, prompt_tokens: int, completion_tokens: int) -> None:
        """The next call is refused (content_refused) after the server billed these tokens."""
        billed = Completion("", self.name, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        self._script.append(ModelFailure("content_refused", "refused", billed=billed))

    def fail_always(self, kind: FailureKind, *, retry_after: float | None = None) -> None:
        """Every call from now on raises ModelFailure of this kind."""
        self._always = _failure(kind, retry_after)

    def hold(self) -> None:
        """Calls wait at the model until `release()`."""
        self._open.clear()

    def release(self) -> None:
        """Let held and later calls through."""
        self._open.set()

    async def wait_for_in_flight(self, count: int, within: float = 5.0) -> None:
        """Wait until `count` calls are at the model at once (TimeoutError after `within` seconds)."""
        async with asyncio.timeout(within):
            while self.in_flight < count:
                self._arrived.clear()
                await self._arrived.wait()

    async def answer(
        self,
        prompt: Sequence[Message],
        on_text: TextSoFar | None = None,
        stop: StopSignal | None = None,
        model: str | None = None,
    ) -> Completion:
        """The scripted answer, or the echo; streamed word by word through `on_text` when given. Once `stop` is
        set (checked before each word), the words so far are the answer, marked stopped."""
        prompt = tuple(prompt)
        self.prompts.append(prompt)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._arrived.set()
        try:
            await self._open.wait()
            tokens = count_tokens(prompt)
            if self.window is not None and tokens > self.window:
                raise ModelFailure("context_too_long", f"{tokens} prompt tokens, the window is {self.window}")
            scripted = self._script.popleft() if self._script else self._always
            if isinstance(scripted, ModelFailure):
                raise scripted
            user = [message.content for message in prompt if message.role == "user"]
            text = scripted if scripted is not None else f"echo: {user[-1] if user else ''}"
            pieces = _WORD.findall(text)
            for end in range(1, len(pieces) + 1):
                if stop is not None and stop.is_set():
                    said = "".join(pieces[: end - 1])
                    return Completion(said, model or self.name, tokens, len(said.split()), stopped=True)
                if on_text is not None:
                    await on_text("".join(pieces[:end]))
                    await asyncio.sleep(0)
            return Completion(text, model or self.name, prompt_tokens=tokens, completion_tokens=len(text.split()))
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        self.closed = True


class FakeImageModel:
    """An image model that draws a few bytes naming the prompt, unless a failure is scripted."""

    def __init__(self, name: str = "fake-image") -> None:
        self.name = name
        self.prompts: list[str] = []
        """Every prompt the model was asked, in order (failed calls included)."""
        self.closed = False
        self._failures: deque[ModelFailure] = deque()

    def fail_next(self, kind: FailureKind, *, retry_after: float | None = None, times: int = 1) -> None:
        """The next `times` calls raise ModelFailure of this kind."""
        self._failures.extend(_failure(kind, retry_after) for _ in range(times))

    async def draw(self, prompt: str) -> Picture:
        self.prompts.append(prompt)
        if self._failures:
            raise self._failures.popleft()
        data = f"a picture of {prompt}".encode()
        return Picture(f"sha256:{hashlib.sha256(data).hexdigest()}", self.name, revised_prompt=None, data=data)

    async def close(self) -> None:
        self.closed = True


if TYPE_CHECKING:  # each fake implements its port
    _chat: ChatModel = FakeChatModel()
    _images: ImageModel = FakeImageModel()
