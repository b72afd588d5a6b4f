"""Streaming and turn control end to end: native drafts and Stop, /cancel, /redo, /undo, edits, reasoning models.

Every test runs `convo bot` against the local Telegram and OpenAI servers, through the real aiogram and openai
clients, and checks what the user saw, what the model was asked, and what the log recorded.
"""

from __future__ import annotations

import itertools

from adapters.telegram import replies
from tests.doubles.openai_server import ReasonedAnswer
from tests.e2e.harness import (
    assert_log_clean,
    bot_env,
    replay_json,
    running_bot,
    texts,
    wait_for_text,
)

SLOW = " ".join(f"w{n:03d}" for n in range(300))
"""An answer long enough, at 50 ms a word, to be stopped part way (15 s in all)."""


def chat_messages(request) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in request.messages]


async def first_draft_with_text(tg, chat_id: int):
    return await tg.wait_for(lambda: next((d for d in tg.drafts(chat_id) if d.text.startswith("w0")), None))


async def test_a_private_answer_streams_as_drafts_with_stop_and_ends_as_one_message(tg, ai, tmp_path):
    words = [f"w{n:02d}" for n in range(30)]
    ai.set_answer(" ".join(words))
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "Take your time")
        await wait_for_text(tg, alice.id, words[-1], timeout=20)
        assert_log_clean(bot)
    drafts = [d for d in tg.drafts(alice.id) if d.text.startswith("w")]
    assert len(drafts) >= 2, drafts  # it grew in front of the user...
    assert all(len(a.text) < len(b.text) for a, b in itertools.pairwise(drafts))
    assert {d.draft_id for d in tg.drafts(alice.id)} != {0} and len({d.draft_id for d in drafts}) == 1
    assert all(d.can_stop for d in drafts)  # ...with a Stop button...
    [sent] = tg.bot_messages(alice.id)
    assert sent.texts == [" ".join(words)]  # ...and ended as one message, never edited
    assert not [call for call in tg.calls if call.method == "editMessageText"]


async def test_stop_cancels_the_model_stream_and_the_partial_answer_is_sent_recorded_and_remembered(tg, ai, tmp_path):
    ai.set_answer(SLOW)
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "Count slowly")
        draft = await first_draft_with_text(tg, alice.id)
        tg.stop_generation(alice, draft.draft_id)
        await ai.wait_for_disconnect(1, within=3)  # the model request was dropped at once
        shown = await wait_for_text(tg, alice.id, replies.STOPPED_MARK, timeout=10)
        tg.stop_generation(alice, draft.draft_id)  # a second press, for a finished answer: ignored quietly
        tg.stop_generation(alice, draft.draft_id + 1, strict=False)  # and one for an unknown draft
        ai.chunk_delay = 0
        ai.set_answer("fine")
        tg.send_text(alice, "And now?")
        await wait_for_text(tg, alice.id, "fine")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    partial = shown.removesuffix(replies.STOPPED_MARK).strip()
    assert partial and SLOW.startswith(partial) and len(partial) < len(SLOW)
    assert texts(tg, alice.id) == [shown, "fine"]
    assert ai.chat_requests[0].disconnected and not ai.chat_requests[1].disconnected
    events = (await replay_json(env, tmp_path, str(alice.id)))["events"]
    [stopped] = [e for e in events if e["type"] == "AnswerGiven" and e["data"]["stopped"]]
    assert stopped["data"]["text"] == partial  # the log says it was stopped, with what had arrived
    assert chat_messages(ai.chat_requests[1])[1:] == [
        ("user", "Count slowly"),
        ("assistant", partial),
        ("user", "And now?"),
    ]


async def test_cancel_stops_an_edited_stream_and_says_when_nothing_runs(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_STREAM="edits")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(alice, "cancel")
        await wait_for_text(tg, alice.id, replies.NOTHING_RUNNING)
        ai.set_answer(SLOW)
        ai.chunk_delay = 0.05
        tg.send_text(alice, "Count slowly")
        await wait_for_text(tg, alice.id, "w00", timeout=10)  # the edited preview
        tg.send_command(alice, "cancel")
        await ai.wait_for_disconnect(1, within=3)
        shown = await wait_for_text(tg, alice.id, replies.STOPPED_MARK, timeout=10)
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert texts(tg, alice.id) == [replies.NOTHING_RUNNING, shown]
    assert not tg.drafts(alice.id)


async def test_in_a_group_only_the_asker_or_an_admin_may_cancel_and_edits_keep_the_group_pace(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_GROUP_EDIT_INTERVAL="1.5")
    asker, other, admin = tg.new_user("Asker"), tg.new_user("Other"), tg.new_user("Admin")
    group = tg.new_group("Den")
    tg.make_admin(group, admin)
    ai.set_answer(SLOW)
    ai.chunk_delay = 0.05

    def edit_times() -> list[float]:
        return [c.time for c in tg.calls if c.method == "editMessageText" and c.params.get("chat_id") == str(group.id)]

    async with running_bot(env, tmp_path) as bot:
        tg.send_command(asker, "start", chat=group)
        tg.mention_bot(asker, group, "count slowly")
        await tg.wait_for(lambda: len(edit_times()) >= 3, timeout=15)
        tg.send_command(other, "cancel", chat=group)
        await wait_for_text(tg, group.id, replies.CANCEL_NOT_YOURS)
        assert not ai.chat_requests[0].disconnected
        tg.send_command(admin, "cancel", chat=group)
        await ai.wait_for_disconnect(1, within=3)
        await wait_for_text(tg, group.id, replies.STOPPED_MARK, timeout=10)
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert not tg.drafts(group.id)  # no drafts in groups: edits
    streaming = edit_times()[:-1]  # the final edit may come sooner
    assert len(streaming) >= 3
    assert all(b - a >= 1.5 - 0.05 for a, b in itertools.pairwise(streaming)), streaming


async def test_redo_asks_the_same_prompt_again_and_later_prompts_carry_the_new_answer(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_command(alice, "redo")
        await wait_for_text(tg, alice.id, replies.NOTHING_TO_REDO)
        ai.queue_answers("one", "two", "second two", "three")
        tg.send_text(alice, "first")
        await wait_for_text(tg, alice.id, "one")
        tg.send_text(alice, "second")
        await wait_for_text(tg, alice.id, "two")
        tg.send_command(alice, "redo")
        await wait_for_text(tg, alice.id, "second two")
        tg.send_text(alice, "third")
        await wait_for_text(tg, alice.id, "three")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    asked, redone, after = ai.chat_requests[1], ai.chat_requests[2], ai.chat_requests[3]
    assert chat_messages(redone) == chat_messages(asked)  # one new call, with the prompt the old answer had
    assert chat_messages(after)[1:] == [
        ("user", "first"),
        ("assistant", "one"),
        ("user", "second"),
        ("assistant", "second two"),
        ("user", "third"),
    ]
    events = (await replay_json(env, tmp_path, str(alice.id)))["events"]
    answers = {e["data"]["text"]: e["undone"] for e in events if e["type"] == "AnswerGiven"}
    assert answers == {"one": None, "two": "redo", "second two": None, "three": None}  # replay shows both
    assert [e["data"]["reason"] for e in events if e["type"] == "TurnUndone"] == ["redo"]


async def test_undo_takes_turns_back_newest_first_and_never_behind_a_reset(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        steps = [
            ("before reset", "echo: before reset"),
            ("/reset", replies.RESET_DONE),
            ("alpha", "echo: alpha"),
            ("beta", "echo: beta"),
            ("/undo", replies.UNDONE.format(question="beta")),
            ("/undo", replies.UNDONE.format(question="alpha")),
            ("/undo", replies.NOTHING_TO_UNDO),
            ("gamma", "echo: gamma"),
        ]
        for sent, expected in steps:
            count = len(tg.bot_messages(alice.id))
            if sent.startswith("/"):
                tg.send_command(alice, sent[1:])
            else:
                tg.send_text(alice, sent)
            await tg.wait_for(lambda c=count: len(tg.bot_messages(alice.id)) > c, timeout=10)
            assert texts(tg, alice.id)[-1] == expected
        assert_log_clean(bot)
    assert chat_messages(ai.chat_requests[-1])[1:] == [("user", "gamma")]  # undo-then-ask: no undone turn
    events = (await replay_json(env, tmp_path, str(alice.id)))["events"]
    undone = {e["data"]["text"]: e["undone"] for e in events if e["type"] == "QuestionAsked"}
    assert undone == {"before reset": None, "alpha": "undo", "beta": "undo", "gamma": None}


async def test_an_edited_last_question_is_asked_again_once(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "What is 2+2?")
        await wait_for_text(tg, alice.id, "echo: What is 2+2?")
        question = tg.send_text(alice, "What is 3+3?")
        await wait_for_text(tg, alice.id, "echo: What is 3+3?")
        tg.edit_message(alice, question, "What is 4+4?")
        await wait_for_text(tg, alice.id, "echo: What is 4+4?")
        edit = tg.state.queue.history[-1]
        assert "edited_message" in edit
        tg.state.queue.push(dict(edit))  # Telegram hands the same edit over again
        tg.send_text(alice, "and 5+5?")
        await wait_for_text(tg, alice.id, "echo: and 5+5?")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert len(ai.chat_requests) == 4  # the edit was asked once
    assert chat_messages(ai.chat_requests[2])[1:] == [
        ("user", "What is 2+2?"),
        ("assistant", "echo: What is 2+2?"),
        ("user", "What is 4+4?"),
    ]  # the old turn left the context
    assert [t for t in texts(tg, alice.id) if t.startswith("echo: What is 4+4?")] == ["echo: What is 4+4?"]


async def test_reasoning_never_reaches_a_prompt_and_shows_collapsed_above_the_answer(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    ai.chunk_delay = 0.05
    thought = "The user greets me. " * 10  # over a second of thinking first
    ai.queue_answers(
        f"<think>{thought}</think>Hello!",
        ReasonedAnswer("Two.", reasoning="One plus one is two."),
    )
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "hi")
        await wait_for_text(tg, alice.id, "Hello!")
        tg.send_text(alice, "1+1?")
        await wait_for_text(tg, alice.id, "Two.")
        tg.send_text(alice, "thanks")
        await wait_for_text(tg, alice.id, "echo: thanks")
        assert_log_clean(bot)
    assert chat_messages(ai.chat_requests[2])[1:] == [
        ("user", "hi"),
        ("assistant", "Hello!"),
        ("user", "1+1?"),
        ("assistant", "Two."),
        ("user", "thanks"),
    ]
    first, second = tg.bot_messages(alice.id)[:2]
    assert first.text.endswith("Hello!") and "think>" not in first.text
    quotes = [e for e in second.entities if e.get("type") == "expandable_blockquote"]
    assert len(quotes) == 1 and second.text.startswith("One plus one is two.")
    assert any(d.text == replies.THINKING for d in tg.drafts(alice.id))  # while it only thought
    events = (await replay_json(env, tmp_path, str(alice.id)))["events"]
    reasoning = [e["data"]["reasoning"] for e in events if e["type"] == "AnswerGiven"]
    assert reasoning == [thought.strip(), "One plus one is two.", ""]


async def test_a_server_without_drafts_is_asked_once_then_answers_stream_by_edits(tg, ai, tmp_path):
    tg.remove_method("sendMessageDraft")
    ai.set_answer(" ".join(f"w{n:02d}" for n in range(30)))
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "one")
        await wait_for_text(tg, alice.id, "w29", timeout=20)
        tg.send_text(alice, "two")
        await tg.wait_for(lambda: sum("w29" in t for t in texts(tg, alice.id)) == 2, timeout=20)
        assert_log_clean(bot)
    assert tg.removed_method_calls("sendMessageDraft") == 1  # the refusal was remembered
    assert any(call.method == "editMessageText" for call in tg.calls)  # the fallback: edited previews
