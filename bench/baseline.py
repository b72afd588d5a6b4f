"""The baseline convo is measured against: the tutorial bot's handler, rebuilt on convo's own store and domain.

The tutorial (pyTelegramBotAPI + FaunaDB + gpt-3.5-turbo) handled one update at a time with blocking calls: on each
message it stored the question, read the user's whole history, built the prompt from all of it, called the model
and stored the answer. `TutorialBaseline` does the same steps in the same order against the same `EventStore`,
`ChatModel` and domain as convo, so a comparison measures the design, not the plumbing:

- it reads the WHOLE stream forwards (`read_forwards`, no limit) on every message, where convo reads a tail;
- it folds ALL of it twice, once for the decision (`domain.conversation.fold`) and once for the prompt
  (`domain.prompt.prompt_for`), where convo folds only the newest events;
- it awaits every step in sequence and `run_baseline_polling` handles one update at a time, which is what
  blocking calls amount to: nothing else runs while a message is being handled.

It keeps the domain's rules (valid events, the token budget), so its log is one convo could read; it takes no
locks and never retries a conflict, since the tutorial had neither.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from domain.commands import Ask, GiveAnswer, Sender
from domain.conversation import decide, fold
from domain.events import QuestionAsked, RecordedEvent
from domain.ports import ChatModel, EventStore
from domain.prompt import Message, PromptPolicy, prompt_for

INSTANT_ANSWER = "ok"
"""The answer recorded when the baseline runs without a model (to time the store and the fold alone)."""

POLL_TIMEOUT = 1
"""Seconds one getUpdates call may wait for an update."""


class TutorialBaseline:
    """The tutorial's message handler: whole history read and folded on every message, every step awaited."""

    def __init__(self, store: EventStore, model: ChatModel | None, policy: PromptPolicy) -> None:
        self.store = store
        self.model = model
        self.policy = policy

    async def handle_text(self, stream: str, sender: Sender, text: str, causation_id: str) -> str:
        """Answer one message: read all, fold all, store the question, prompt from all, ask, store the answer."""
        history = [recorded async for recorded in self.store.read_forwards(stream)]
        state = fold(history)
        asked = await self.store.append(
            stream, decide(state, Ask(sender=sender, text=text)), state.version, causation_id
        )
        history += asked
        question = _question(asked)
        prompt = prompt_for(history, question.version, self.policy)
        answer, model_name = await self._answer(prompt)
        give = GiveAnswer(
            question_version=question.version,
            text=answer,
            model=model_name,
            prompt_tokens=0,
            completion_tokens=0,
            latency_ms=0,
        )
        state = fold(asked, state)
        await self.store.append(stream, decide(state, give), state.version, f"{causation_id}/answer")
        return answer

    async def _answer(self, prompt: tuple[Message, ...]) -> tuple[str, str]:
        """The model's answer and name, or the instant answer when there is no model."""
        if self.model is None:
            return INSTANT_ANSWER, "none"
        completion = await self.model.answer(prompt)
        return completion.text, completion.model


def _question(batch: tuple[RecordedEvent, ...]) -> RecordedEvent:
    """The question in the batch an Ask recorded."""
    return next(recorded for recorded in batch if isinstance(recorded.event, QuestionAsked))


async def run_baseline_polling(bot_token: str, api_base: str, baseline: TutorialBaseline, stop_after: int) -> int:
    """The tutorial's `bot.polling()`: getUpdates, then handle each update in turn, one at a time, until done.

    Each text message is answered by awaiting `handle_text` and then `sendMessage` before the next update is even
    looked at; other updates are skipped. Returns how many messages were answered (`stop_after`).
    """
    url = f"{api_base.rstrip('/')}/bot{bot_token}/"
    answered, offset = 0, 0
    async with aiohttp.ClientSession() as session:
        while answered < stop_after:
            for update in await _call(session, url + "getUpdates", {"offset": offset, "timeout": POLL_TIMEOUT}):
                offset = update["update_id"] + 1
                if await _handle_update(session, url, baseline, update):
                    answered += 1
                    if answered >= stop_after:
                        break
        if offset:
            await _call(session, url + "getUpdates", {"offset": offset, "timeout": 0})
    return answered


async def _handle_update(
    session: aiohttp.ClientSession, url: str, baseline: TutorialBaseline, update: dict[str, Any]
) -> bool:
    """Answer one update if it is a text message from a user; True when it was answered."""
    message = update.get("message") or {}
    user, text = message.get("from"), message.get("text")
    if not user or not text:
        return False
    sender = Sender(
        user_id=user["id"],
        username=user.get("username"),
        first_name=user.get("first_name", ""),
        language_code=user.get("language_code"),
    )
    causation = f"tg:{update['update_id']}"
    answer = await baseline.handle_text(str(user["id"]), sender, text, causation)
    await _call(session, url + "sendMessage", {"chat_id": message["chat"]["id"], "text": answer})
    return True


async def _call(session: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> Any:
    """One Bot API call; its `result`, or RuntimeError with Telegram's description."""
    async with session.post(url, json=payload) as response:
        body = await response.json()
    if not body.get("ok"):
        raise RuntimeError(f"{url.rsplit('/', 1)[-1]} failed: {body.get('description')}")
    return body["result"]
