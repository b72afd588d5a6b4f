"""`convo replay`'s engine: the replay of a stream, its JSON document, its table and the list of streams."""

from __future__ import annotations

import asyncio
import io
import json
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from adapters.memory.store import MemoryEventStore
from domain.codec import SCHEMA_VERSIONS, event_from_document, event_to_document, parse_utc
from domain.commands import Ask, Command, GiveAnswer, RequestImage, Reset, SelectMode, SelectModel, Sender, Start
from domain.conversation import State, decide, fold
from domain.errors import DomainError
from domain.events import AnswerFailed, AnswerGiven, ConversationReset, QuestionAsked, RecordedEvent, TurnUndone
from domain.prompt import Message, ModelPrompts, PromptPolicy, estimate_tokens, prompt_for, shaped_policy
from entrypoints.replay import json_text, render_stream_list, render_table, replay_json, streams_json
from service.replay import PromptRecord, Replay, StreamNotFound, list_streams
from service.replay import Step as ReplayStep
from service.replay import replay_stream as replay
from tests.strategies import events, policies, streams


def nonempty(max_steps: int = 60, tagged: bool = False) -> st.SearchStrategy[list[RecordedEvent]]:
    """Valid streams with at least one event (a script the decider rejects entirely records nothing)."""
    return streams(max_steps, tagged).filter(bool)


ALICE = Sender(user_id=123456789, username="alice", first_name="Alice", language_code="en")
BOB = Sender(user_id=555, username=None, first_name="Bob", language_code=None)
POLICY = PromptPolicy()

Step = Command | Callable[[State], Command]


def answer(text: str) -> Callable[[State], Command]:
    """A script step: the chat model answers the pending question with `text`."""

    def give(state: State) -> Command:
        assert state.pending is not None
        return GiveAnswer(
            question_version=state.pending.version,
            text=text,
            model="gpt-3.5-turbo",
            prompt_tokens=12,
            completion_tokens=40,
            latency_ms=830,
        )

    return give


async def play(store: MemoryEventStore, stream: str, *steps: Step) -> None:
    """Append to `stream` what the real decider makes of each step, as the service would."""
    for step in steps:
        state = fold([recorded async for recorded in store.read_forwards(stream)])
        command = step(state) if callable(step) else step
        await store.append(stream, decide(state, command), state.version, f"tg:{state.version}")


def ticking_clock() -> Callable[[], datetime]:
    """A clock one second later at each reading."""
    moments = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n) for n in range(1, 10**6))
    return lambda: next(moments)


async def six_events() -> MemoryEventStore:
    """Registration, two answered questions and a reset in stream 123456789."""
    store = MemoryEventStore(now=ticking_clock())
    script = (
        Ask(sender=ALICE, text="What is the capital of France?"),
        answer("Paris."),
        Ask(sender=ALICE, text="And of Italy?"),
        answer("Rome."),
        Reset(sender=ALICE),
    )
    await play(store, "123456789", *script)
    return store


def read_all(store: MemoryEventStore, stream: str) -> list[RecordedEvent]:
    """Every event of a stream, oldest first."""

    async def collect() -> list[RecordedEvent]:
        return [recorded async for recorded in store.read_forwards(stream)]

    return asyncio.run(collect())


def stored(recorded: Sequence[RecordedEvent]) -> MemoryEventStore:
    """A memory store holding these recorded events verbatim."""
    store = MemoryEventStore()
    asyncio.run(store.import_recorded(recorded))
    return store


def replayed(recorded: Sequence[RecordedEvent], policy: PromptPolicy = POLICY, at: int | None = None) -> Replay:
    """The replay of a stream held in a memory store."""
    return asyncio.run(replay(stored(recorded), recorded[0].stream, ModelPrompts(policy, estimate_tokens), at))


def rendered(result: Replay, width: int = 120, full: bool = False, **options: Any) -> str:
    """The table as a console of that width prints it."""
    out = io.StringIO()
    render_table(result, Console(file=out, width=width, **options), full=full)
    return out.getvalue()


def built_in_pairs(result: Replay) -> list[tuple[PromptRecord | None, PromptRecord]]:
    """Each built prompt with the built prompt before it (None for the first)."""
    pairs: list[tuple[PromptRecord | None, PromptRecord]] = []
    previous = None
    for record in result.prompts:
        if record.error is None and record.failed is None:
            pairs.append((previous, record))
            previous = record
    return pairs


# --------------------------------------------------------------------------------------------------- JSON


def test_the_json_document_has_the_documented_shape() -> None:
    result = asyncio.run(replay(asyncio.run(six_events()), "123456789", ModelPrompts(POLICY, estimate_tokens)))
    document = json.loads(json_text(replay_json(result)))

    assert document["stream"] == "123456789"
    assert [event["version"] for event in document["events"]] == [1, 2, 3, 4, 5, 6]
    assert [event["type"] for event in document["events"]] == [
        "UserRegistered",
        "QuestionAsked",
        "AnswerGiven",
        "QuestionAsked",
        "AnswerGiven",
        "ConversationReset",
    ]
    assert document["events"][0]["recorded_at"] == "2026-01-01T00:00:01+00:00"
    assert document["events"][1]["data"] == {
        "text": "What is the capital of France?",
        "message_id": None,
        "sender_name": None,
        "sender_id": ALICE.user_id,
        "photos": [],
        "files": [],
    }
    assert document["events"][1]["state"] == {
        "mode": "chat",
        "pending": {"kind": "question", "version": 2, "text": "What is the capital of France?"},
        "undelivered": None,
    }
    persona = {"role": "system", "content": POLICY.persona}
    first, second = document["prompts"]
    assert (first["question_version"], first["answer_version"]) == (2, 3)
    assert first["messages"] == [persona, {"role": "user", "content": "What is the capital of France?"}]
    assert (second["question_version"], second["answer_version"]) == (4, 5)
    assert second["added"] == [
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]
    assert second["dropped"] == []


@given(nonempty())
def test_each_event_s_data_is_the_codec_s_and_loads_back(stream: list[RecordedEvent]) -> None:
    document = json.loads(json_text(replay_json(replayed(stream))))

    assert document["stream"] == stream[0].stream
    assert len(document["events"]) == len(stream)
    for item, recorded in zip(document["events"], stream, strict=True):
        assert item["version"] == recorded.version
        assert item["data"] == event_to_document(recorded.event)["data"]
        assert parse_utc(item["recorded_at"]) == recorded.recorded_at
        schema = SCHEMA_VERSIONS[item["type"]]
        assert event_from_document({"type": item["type"], "schema": schema, "data": item["data"]}) == recorded.event


# --------------------------------------------------------------------------------------------------- prompts


def prompt_or_error(
    stream: Sequence[RecordedEvent], question_version: int, policy: PromptPolicy
) -> tuple[tuple[Message, ...], str | None]:
    """What `prompt_for` folds over the whole stream so far (up to the outcome, last): the prompt, or no messages
    and why. Folded with the settings the stream recorded before the question and the budget recorded with the
    outcome; `policy` only where it recorded none."""
    shaping = fold([recorded for recorded in stream if recorded.version < question_version]).shaping
    if shaping is not None:
        outcome = stream[-1].event
        budget = outcome.prompt_budget if isinstance(outcome, AnswerGiven | AnswerFailed) else 0
        policy = shaped_policy(shaping, None, budget)
    try:
        return prompt_for(stream, question_version, policy), None
    except DomainError as error:
        return (), str(error)


@given(nonempty(tagged=True), policies)
def test_each_answer_s_prompt_is_the_one_prompt_for_folds(stream: list[RecordedEvent], policy: PromptPolicy) -> None:
    result = replayed(stream, policy)
    asked = {recorded.version for recorded in stream if isinstance(recorded.event, QuestionAsked)}
    outcomes = [
        (recorded.event.question_version, recorded.version)
        for recorded in stream
        if isinstance(recorded.event, AnswerGiven | AnswerFailed) and recorded.event.question_version in asked
    ]

    assert [(r.question_version, r.answer_version) for r in result.prompts] == outcomes
    for record in result.prompts:
        expected = prompt_or_error(stream[: record.answer_version], record.question_version, policy)
        assert (record.messages, record.error) == expected


@given(nonempty(), policies)
def test_the_diff_accounts_for_every_message(stream: list[RecordedEvent], policy: PromptPolicy) -> None:
    for previous, record in built_in_pairs(replayed(stream, policy)):
        kept = Counter(() if previous is None else previous.messages)
        kept.subtract(record.dropped)
        assert all(count >= 0 for count in kept.values())
        assert +kept + Counter(record.added) == Counter(record.messages)
        assert set(record.added) <= set(record.messages)


@given(nonempty(tagged=True), policies)
def test_a_reset_drops_every_turn_and_otherwise_the_oldest_drop_first(
    stream: list[RecordedEvent], policy: PromptPolicy
) -> None:
    for previous, record in built_in_pairs(replayed(stream, policy)):
        if previous is None:
            continue
        between = stream[previous.answer_version : record.question_version]
        first = 0 if record.messages[:1] != previous.messages[:1] else 1  # a new persona replaces the system message
        if any(isinstance(recorded.event, ConversationReset) for recorded in between):
            assert record.dropped == previous.messages[first:]
            assert record.added == record.messages[first:]
        elif any(isinstance(recorded.event, TurnUndone) for recorded in between):
            undone = {r.event.question_version for r in between if isinstance(r.event, TurnUndone)}
            asked = Counter(r.event.text for r in stream if isinstance(r.event, QuestionAsked))
            texts = {
                r.event.text
                for r in stream
                if r.version in undone and isinstance(r.event, QuestionAsked) and asked[r.event.text] == 1
            }
            assert texts.isdisjoint(m.content for m in record.messages[1:-1:2])  # an undone turn is never kept
        else:
            assert record.dropped[1 - first :] == previous.messages[1 : 1 + len(record.dropped) - (1 - first)]


def test_a_reset_drops_everything_but_the_persona() -> None:
    store = MemoryEventStore()
    script = (
        Ask(sender=ALICE, text="one"),
        answer("1"),
        Ask(sender=ALICE, text="two"),
        answer("2"),
        Reset(sender=ALICE),
        Ask(sender=ALICE, text="three"),
    )
    asyncio.run(play(store, "7", *script, answer("3")))
    last = asyncio.run(replay(store, "7", ModelPrompts(POLICY, estimate_tokens))).prompts[-1]

    assert last.dropped == (Message("user", "one"), Message("assistant", "1"), Message("user", "two"))
    assert last.added == (Message("user", "three"),)
    assert not last.persona_changed


def test_a_budget_overflow_drops_the_oldest_turn() -> None:
    # The persona costs 1 + 4 tokens, every other message here 2 + 4 ("q1" is a run with a digit): persona,
    # question and one turn fill a budget of 23 exactly.
    policy = PromptPolicy(persona="p", budget=23)
    store = MemoryEventStore()
    script = (
        Ask(sender=ALICE, text="q1"),
        answer("a1"),
        Ask(sender=ALICE, text="q2"),
        answer("a2"),
        Ask(sender=ALICE, text="q3"),
        answer("a3"),
    )
    asyncio.run(play(store, "7", *script))
    prompts = asyncio.run(replay(store, "7", ModelPrompts(policy, estimate_tokens))).prompts

    assert prompts[1].messages == (
        Message("system", "p"),
        Message("user", "q1"),
        Message("assistant", "a1"),
        Message("user", "q2"),
    )
    assert prompts[2].dropped == (Message("user", "q1"), Message("assistant", "a1"))
    assert prompts[2].added == (Message("assistant", "a2"), Message("user", "q3"))
    assert prompts[2].tokens == 23


@pytest.mark.parametrize("budget", [60, 3072])
def test_a_long_conversation_s_prompts_fold_the_whole_stream(budget: int) -> None:
    store = MemoryEventStore()
    script = [Reset(sender=ALICE)]
    for n in range(150):
        script += [Ask(sender=ALICE, text=f"question {n}"), answer(f"answer {n}")]
        script += (
            [RequestImage(sender=ALICE, prompt="a cat"), SelectMode(sender=ALICE, mode="chat")] if n % 7 == 0 else []
        )
    asyncio.run(play(store, "7", *script))
    stream = read_all(store, "7")
    policy = PromptPolicy(budget=budget, lookback=500)

    for record in replayed(stream, policy).prompts:
        assert record.messages == prompt_for(stream[: record.answer_version], record.question_version, policy)


def test_the_same_text_twice_is_still_told_apart() -> None:
    store = MemoryEventStore()
    asyncio.run(
        play(
            store,
            "7",
            Ask(sender=ALICE, text="hi"),
            answer("hello"),
            Reset(sender=ALICE),
            Ask(sender=ALICE, text="hi"),
            answer("x"),
        )
    )
    last = asyncio.run(replay(store, "7", ModelPrompts(POLICY, estimate_tokens))).prompts[-1]

    assert last.messages == (Message("system", POLICY.persona), Message("user", "hi"))
    assert last.dropped == (Message("user", "hi"),)
    assert last.added == (Message("user", "hi"),)


def test_a_question_too_long_for_the_budget_is_recorded_not_raised() -> None:
    store = MemoryEventStore()
    asyncio.run(play(store, "7", Ask(sender=ALICE, text="a rather long question " * 20), answer("ok")))
    result = asyncio.run(replay(store, "7", ModelPrompts(PromptPolicy(budget=30), estimate_tokens)))

    (record,) = result.prompts
    assert record.messages == ()
    assert record.error is not None
    assert "budget is 30" in record.error
    assert replay_json(result)["prompts"][0]["error"] == record.error
    assert "not built" in rendered(result)


# --------------------------------------------------------------------------------------------------- at


def test_at_cuts_the_replay_and_beyond_the_end_shows_everything() -> None:
    store = asyncio.run(six_events())
    cut = asyncio.run(replay(store, "123456789", ModelPrompts(POLICY, estimate_tokens), at=4))
    beyond = asyncio.run(replay(store, "123456789", ModelPrompts(POLICY, estimate_tokens), at=1000))

    assert [step.recorded.version for step in cut.steps] == [1, 2, 3, 4]
    assert cut.newest_version == 6
    assert [p["answer_version"] for p in replay_json(cut)["prompts"]] == [3]
    assert "v1–v4 of 6" in rendered(cut)
    assert len(beyond.steps) == 6


@given(nonempty(), st.data())
def test_a_cut_replay_is_the_start_of_the_whole_one(stream: list[RecordedEvent], data: st.DataObject) -> None:
    """Except that a turn undone after the cut is not undone yet at the cut."""
    at = data.draw(st.integers(min_value=1, max_value=len(stream) + 2))
    undone_by_then = {e.event.question_version for e in stream[:at] if isinstance(e.event, TurnUndone)}
    whole = [
        attrs.evolve(step, undone=step.undone if _turn(step) in undone_by_then else None)
        for step in replayed(stream).steps[:at]
    ]
    assert list(replayed(stream, at=at).steps) == whole


def _turn(step: ReplayStep) -> int:
    event = step.recorded.event
    return event.question_version if isinstance(event, AnswerGiven) else step.recorded.version


@pytest.mark.parametrize("at", [0, -1])
async def test_at_below_one_is_refused(at: int) -> None:
    with pytest.raises(ValueError, match="1 or more"):
        await replay(await six_events(), "123456789", ModelPrompts(POLICY, estimate_tokens), at=at)


@pytest.mark.parametrize("at", [None, 1])
async def test_a_stream_without_events_is_not_found(at: int | None) -> None:
    with pytest.raises(StreamNotFound) as raised:
        await replay(await six_events(), "123", ModelPrompts(POLICY, estimate_tokens), at=at)

    assert isinstance(raised.value, LookupError)
    assert str(raised.value) == "no events for stream '123' (convo replay --list shows the streams)"


# --------------------------------------------------------------------------------------------------- table


def test_the_table_shows_events_state_prompts_and_diffs() -> None:
    output = rendered(
        asyncio.run(replay(asyncio.run(six_events()), "123456789", ModelPrompts(POLICY, estimate_tokens)))
    )

    assert "stream '123456789' · 6 events" in output
    assert "2026-01-01T00:00:03Z" in output
    assert '123456789 @alice "Alice" en' in output
    assert "gpt-3.5-turbo 12+40 tok 830 ms → v2" in output
    assert "chat · awaits v2" in output
    assert "prompt for v4 (answered at v5)" in output
    assert "+ assistant: Paris." in output
    assert "\x1b" not in output


def test_long_texts_are_cut_unless_full_is_asked_for() -> None:
    store = MemoryEventStore()
    asyncio.run(play(store, "7", Ask(sender=ALICE, text="ü" * 20_000), answer("fine")))
    result = asyncio.run(replay(store, "7", ModelPrompts(PromptPolicy(budget=100_000), estimate_tokens)))

    short = rendered(result, width=160)
    assert "(20,000 chars)" in short
    assert "--full shows all" in short
    assert short.count("ü") < 2_000
    assert rendered(result, full=True).count("ü") >= 20_000


def test_control_and_bidi_characters_are_escaped() -> None:
    store = MemoryEventStore()
    asyncio.run(play(store, "7", Ask(sender=ALICE, text="red \x1b[31m\x07 \u202eevil\u2028end"), answer("ok")))
    output = rendered(asyncio.run(replay(store, "7", ModelPrompts(POLICY, estimate_tokens))), full=True)

    assert "\\x1b[31m\\x07" in output
    assert "\\u202eevil\\u2028end" in output
    assert not {"\x1b", "\x07", "\u202e", "\u2028"} & set(output)


def printable(output: str) -> bool:
    """No character a terminal would act on, apart from line ends."""
    return all(char == "\n" or unicodedata.category(char) not in ("Cc", "Cs", "Zl", "Zp") for char in output)


@given(nonempty(max_steps=30), st.booleans())
def test_the_table_renders_any_stream(stream: list[RecordedEvent], full: bool) -> None:
    output = rendered(replayed(stream), full=full)
    assert printable(output)
    assert f"{len(stream)} events" in output


def renumbered(items: list[Any]) -> list[RecordedEvent]:
    """Arbitrary events as one stream, versions from 1 (a stream the decider would never write)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        RecordedEvent(
            stream="x", version=n, recorded_at=start + timedelta(seconds=n), causation_id=f"c{n}", event=event
        )
        for n, event in enumerate(items, start=1)
    ]


@given(st.lists(events, min_size=1, max_size=12), policies)
def test_any_events_at_all_render_and_serialise(items: list[Any], policy: PromptPolicy) -> None:
    stream = renumbered(items)
    result = replayed(stream, policy)

    for record in result.prompts:
        expected = prompt_or_error(stream[: record.answer_version], record.question_version, policy)
        assert (record.messages, record.error) == expected
    assert printable(rendered(result, width=60))
    json.loads(json_text(replay_json(result)))


def test_a_terminal_gets_colours_and_narrow_terminals_still_work() -> None:
    store = MemoryEventStore()
    script = (Ask(sender=ALICE, text="שלום 😀 \u200f\u200b مرحبا"), answer("**bold** [red]x[/red] :smile:"))
    asyncio.run(
        play(store, "7", *script, SelectMode(sender=ALICE, mode="image"), RequestImage(sender=ALICE, prompt="a cat"))
    )
    result = asyncio.run(replay(store, "7", ModelPrompts(POLICY, estimate_tokens)))

    assert "\x1b[" in rendered(result, force_terminal=True, color_system="truecolor")
    assert "[red]x[/red] :smile:" in rendered(result, width=200)
    rendered(result, width=30)


def test_no_environment_value_is_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-print-me")
    result = asyncio.run(replay(asyncio.run(six_events()), "123456789", ModelPrompts(POLICY, estimate_tokens)))
    assert "sk-do-not-print-me" not in rendered(result, full=True) + json_text(replay_json(result))


# --------------------------------------------------------------------------------------------------- --list


async def test_list_streams_names_each_user_with_size_and_last_activity() -> None:
    store = MemoryEventStore(now=ticking_clock())
    await play(store, "123456789", Start(sender=ALICE), Ask(sender=ALICE, text="hi"), answer("hello"))
    await play(store, "555", Ask(sender=BOB, text="yo"))

    summaries = await list_streams(store)

    assert [(s.stream, s.events, s.user_id, s.username, s.first_name) for s in summaries] == [
        ("123456789", 3, 123456789, "alice", "Alice"),
        ("555", 2, 555, None, "Bob"),
    ]
    assert summaries[1].last_event_at == datetime(2026, 1, 1, 0, 0, 4, tzinfo=UTC)
    assert streams_json(summaries)["streams"][1] == {
        "stream": "555",
        "events": 2,
        "user_id": 555,
        "username": None,
        "first_name": "Bob",
        "last_event_at": "2026-01-01T00:00:04+00:00",
    }
    out = io.StringIO()
    render_stream_list(summaries, Console(file=out, width=120))
    output = out.getvalue()
    assert "@alice" in output
    assert "2026-01-01T00:00:04Z" in output


async def test_an_empty_store_lists_no_streams() -> None:
    assert await list_streams(MemoryEventStore()) == []
    out = io.StringIO()
    render_stream_list([], Console(file=out, width=80))
    assert "no streams" in out.getvalue()
    assert streams_json([]) == {"streams": []}


@given(nonempty(max_steps=5), st.text(min_size=1, max_size=30))
def test_any_stream_lists_and_renders(stream: list[RecordedEvent], name: str) -> None:
    renamed = [attrs.evolve(recorded, stream=name) for recorded in stream]
    summaries = asyncio.run(list_streams(stored(renamed)))

    assert [(s.stream, s.events, s.last_event_at) for s in summaries] == [(name, len(stream), stream[-1].recorded_at)]
    out = io.StringIO()
    render_stream_list(summaries, Console(file=out, width=80))
    assert printable(out.getvalue())
    assert json.loads(json_text(streams_json(summaries)))["streams"][0]["stream"] == name


# --------------------------------------------------------------------------------------------------- per model


async def test_each_prompt_is_folded_to_the_budget_of_the_model_picked_when_it_was_asked() -> None:
    """The chat picks a model with a small budget: later prompts keep fewer turns, and say which budget they had."""
    store = MemoryEventStore(now=ticking_clock())
    long_answer = "word " * 120
    script: list[Step] = []
    for n in range(3):
        script += [Ask(sender=ALICE, text=f"question {n}"), answer(long_answer)]
    script += [SelectModel(sender=ALICE, model="tiny"), Ask(sender=ALICE, text="and now?"), answer("ok")]
    await play(store, "7", *script)
    folding = ModelPrompts(PromptPolicy(budget=3000), estimate_tokens, budgets={"tiny": 100})

    prompts = (await replay(store, "7", folding)).prompts

    assert [record.budget for record in prompts] == [3000, 3000, 3000, 100]
    assert len(prompts[2].messages) == 6  # persona, two turns, the question
    assert len(prompts[3].messages) == 2  # the small budget keeps no turn
    assert all(record.tokens <= record.budget for record in prompts)
