"""Rendering `convo replay USER --what-if`: per question, the prompt as recorded and under the other settings (the
turns that drop out, the tokens), and with `--ask` the old and the new answer side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from domain.prices import usd
from entrypoints.replay import clip, safe
from service.what_if import Alternative, Answer, WhatIf


def what_if_json(
    stream: str, change: WhatIf, alternatives: Sequence[Alternative], answers: Sequence[tuple[Answer, Answer]]
) -> dict[str, Any]:
    """One document shaped like `convo replay --json`: `"prompts"` hold the new `"messages"` as {"role", "content"}
    lists; with `--ask` each also holds `"old_answer"` and `"new_answer"`."""
    prompts = []
    for index, alternative in enumerate(alternatives):
        entry: dict[str, Any] = {
            "question_version": alternative.question_version,
            "answer_version": alternative.outcome.version,
            "messages": [{"role": m.role, "content": m.content} for m in alternative.new_messages],
            "tokens": alternative.new_tokens,
            "budget": alternative.new_budget,
            "error": alternative.new_error,
            "dropped_turns": list(alternative.dropped_turns),
            "added_turns": list(alternative.added_turns),
            "recorded": {
                "messages": [{"role": m.role, "content": m.content} for m in alternative.old.messages],
                "tokens": alternative.old.tokens,
                "budget": alternative.old.budget,
                "verification": alternative.old.verification,
            },
        }
        if answers:
            old, new = answers[index]
            entry["old_answer"], entry["new_answer"] = _answer_json(old), _answer_json(new)
        prompts.append(entry)
    settings = {"persona": change.persona, "model": change.model, "budget": change.budget}
    return {"stream": stream, "what_if": settings, "prompts": prompts}


def _answer_json(answer: Answer) -> dict[str, Any]:
    return {
        "text": answer.text,
        "model": answer.model,
        "prompt_tokens": answer.prompt_tokens or None,
        "completion_tokens": answer.completion_tokens,
        "latency_ms": answer.latency_ms,
        "cost_usd": str(answer.cost),
        "failure": answer.failure,
    }


def render_what_if(
    alternatives: Sequence[Alternative], answers: Sequence[tuple[Answer, Answer]], console: Console
) -> None:
    """A table of the questions: the turns kept and the tokens, as recorded and under the other settings; with
    `--ask`, the old and the new answer."""
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    table.add_column("v", justify="right", no_wrap=True)
    table.add_column("as recorded", ratio=1, overflow="fold")
    table.add_column("what if", ratio=1, overflow="fold")
    for index, alternative in enumerate(alternatives):
        old, new = alternative.old, alternative
        before = Text(f"{(len(old.messages) - 2) // 2} turns, {old.tokens}/{old.budget} tokens ({old.verification})")
        if new.new_error is not None:
            after = Text(f"not built: {safe(new.new_error)}", style="red")
        else:
            after = Text(f"{(len(new.new_messages) - 2) // 2} turns, {new.new_tokens}/{new.new_budget} tokens")
        if new.dropped_turns:
            after.append("\ndrops the turns of " + ", ".join(f"v{v}" for v in new.dropped_turns), style="yellow")
        if new.added_turns:
            after.append("\nkeeps also " + ", ".join(f"v{v}" for v in new.added_turns), style="green")
        if answers:
            recorded_answer, new_answer = answers[index]
            before.append("\n").append_text(_answer_text(recorded_answer))
            after.append("\n").append_text(_answer_text(new_answer))
        table.add_row(str(alternative.question_version), before, after)
    console.print(table)


def _answer_text(answer: Answer) -> Text:
    tokens = f"{answer.prompt_tokens}+{answer.completion_tokens} tok" if answer.prompt_tokens else "tokens unknown"
    head = Text(f"{clip(answer.model, 32)} · {tokens} · {answer.latency_ms} ms · {usd(answer.cost)} USD", style="dim")
    body = Text(f"\n{answer.failure}", style="red") if answer.failure else Text("\n" + clip(answer.text, 600))
    return head + body
