"""Attacks on the promises of README "Streaming and turn control", end to end.

Each test runs `convo bot` against the local Telegram and OpenAI servers, does what a demanding user or operator
would do at an awkward moment, and checks the promise it names in its docstring.
"""

from __future__ import annotations

import asyncio
import time

from adapters.telegram import replies
from tests.doubles.openai_server import ReasonedAnswer
from tests.e2e.harness import (
    assert_log_clean,
    bot_env,
    replay_json,
    run_cli,
    running_bot,
    texts,
    wait_for_text,
)
from tests.e2e.test_turn_control import SLOW, chat_messages, first_draft_with_text
from tests.e2e.test_webhook import SECRET, free_port


def last_user_text(request) -> str:
    return request.messages[-1]["content"]


async def test_redo_after_a_failed_question_asks_that_question_again(tg, ai, tmp_path):
    """/redo "answers the last question again": when the last question failed, it is that one that is asked
    again, not an older answered one (whose good answer must not be thrown away)."""
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "first")
        await wait_for_text(tg, alice.id, "echo: first")
        ai.fail_next("invalid_api_key")
        tg.send_text(alice, "second")
        await wait_for_text(tg, alice.id, "misconfigured")
        tg.send_command(alice, "redo")
        await tg.wait_for(lambda: len(ai.chat_requests) == 3, timeout=15)
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert last_user_text(ai.chat_requests[2]) == "second", chat_messages(ai.chat_requests[2])
    events = (await replay_json(env, tmp_path, str(alice.id)))["events"]
    assert [e["data"]["reason"] for e in events if e["type"] == "TurnUndone"] == []  # "first" keeps its answer


async def test_a_model_thinking_silently_shows_thinking_with_a_stop_button(tg, ai, tmp_path):
    """README: "While the model only thinks, the preview says 'thinking…'" (o-series models send nothing while they
    reason): the private chat gets a "thinking…" draft with Stop, rather than nothing the user could stop."""
    ai.delay = 4.0  # the model reasons silently before its first chunk
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "Think hard")
        await ai.wait_for_in_flight(1, within=10)
        shown = await asyncio.wait_for(
            tg.wait_for(lambda: next((d for d in tg.drafts(alice.id) if d.can_stop), None), timeout=3.5), 4
        )
        assert shown.text == replies.THINKING
        await wait_for_text(tg, alice.id, "echo: Think hard", timeout=15)
        assert_log_clean(bot)


async def test_stop_while_the_model_only_reasons_keeps_what_it_thought(tg, ai, tmp_path):
    """Stop "drops the model request at once; what had arrived is sent marked ⏹ Stopped., recorded": pressed on
    the "thinking…" draft, the request is dropped, the user is told, and the reasoning that had arrived is not
    silently thrown away (reasoning is "recorded with the answer (replay shows them)")."""
    thought = " ".join(f"t{n:03d}" for n in range(200))
    ai.set_answer(ReasonedAnswer("The answer.", reasoning=thought))
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "Ponder")
        draft = await tg.wait_for(lambda: next((d for d in tg.drafts(alice.id) if d.text == replies.THINKING), None))
        await asyncio.sleep(1.0)  # some reasoning arrives
        tg.stop_generation(alice, draft.draft_id)
        await ai.wait_for_disconnect(1, within=3)
        await tg.wait_for(lambda: len(tg.bot_messages(alice.id)) == 1, timeout=10)
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    [shown] = texts(tg, alice.id)
    assert "⏹ Stopped" in shown and "The answer." not in shown
    events = (await replay_json(env, tmp_path, str(alice.id)))["events"]
    outcome = next(e for e in events if e["type"] in ("AnswerGiven", "AnswerFailed"))
    assert outcome["data"].get("reasoning", "").startswith("t000"), outcome  # what it thought is kept


async def test_a_stalled_draft_call_does_not_hold_the_answer_back(tg, ai, tmp_path):
    """streaming.py: "Previews are best effort": a sendMessageDraft that hangs (a slow Bot API) must not hold the
    answer back; a three-second answer still arrives within seconds, not after the preview call times out."""
    ai.set_answer(" ".join(f"w{n:02d}" for n in range(20)))
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.stall_next("sendMessageDraft", seconds=40)
        started = time.monotonic()
        tg.send_text(alice, "Quick one")
        await wait_for_text(tg, alice.id, "w19", timeout=50)
        took = time.monotonic() - started
        assert_log_clean(bot)
    assert took < 10, f"the answer waited {took:.0f} s behind a stalled preview"


async def test_redo_right_after_a_stop_asks_the_same_prompt_and_replay_shows_both(tg, ai, tmp_path):
    """/redo after Stop: the same prompt again; replay marks the stopped answer undone by the redo, with its stopped
    flag, and shows the new one (table and --json)."""
    ai.set_answer(lambda request: SLOW if request.last_user_text == "Count" else f"echo: {request.last_user_text}")
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "hi")
        await wait_for_text(tg, alice.id, "echo: hi")
        tg.send_text(alice, "Count")
        draft = await first_draft_with_text(tg, alice.id)
        tg.stop_generation(alice, draft.draft_id)
        await wait_for_text(tg, alice.id, replies.STOPPED_MARK, timeout=10)
        ai.set_answer("counted")
        tg.send_command(alice, "redo")
        await wait_for_text(tg, alice.id, "counted")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert chat_messages(ai.chat_requests[2]) == chat_messages(ai.chat_requests[1])
    events = (await replay_json(env, tmp_path, str(alice.id)))["events"]
    answers = [(e["data"]["stopped"], e["undone"]) for e in events if e["type"] == "AnswerGiven"]
    assert answers == [(False, None), (True, "redo"), (False, None)]
    table = await run_cli(env, tmp_path, "replay", str(alice.id))
    assert table.returncode == 0, table.stderr
    assert "stopped" in table.stdout and "undone: redo" in table.stdout


async def test_in_a_group_an_edit_of_the_latest_mention_is_asked_again_once_and_older_ones_are_not(tg, ai, tmp_path):
    """Editing your latest question (here a group @mention) asks it again once, the old turn leaving the context;
    an edit of an older question asks nothing and, in a group, says nothing."""
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    asker = tg.new_user("Asker")
    group = tg.new_group("Den")
    async with running_bot(env, tmp_path) as bot:
        older = tg.mention_bot(asker, group, "what is 1+1")
        await wait_for_text(tg, group.id, "echo: Asker: what is 1+1")
        latest = tg.mention_bot(asker, group, "what is 2+2")
        await wait_for_text(tg, group.id, "echo: Asker: what is 2+2")
        tg.edit_message(asker, latest, f"@{tg.bot_user.username} what is 3+3")
        await wait_for_text(tg, group.id, "echo: Asker: what is 3+3")
        tg.edit_message(asker, older, f"@{tg.bot_user.username} what is 9+9")
        tg.mention_bot(asker, group, "and 4+4")
        await wait_for_text(tg, group.id, "echo: Asker: and 4+4")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    asked = ["what is 1+1", "what is 2+2", "what is 3+3", "and 4+4"]
    assert [last_user_text(r) for r in ai.chat_requests] == [f"Asker: {question}" for question in asked]
    assert chat_messages(ai.chat_requests[3])[1:] == [
        ("user", "Asker: what is 1+1"),
        ("assistant", "echo: Asker: what is 1+1"),
        ("user", "Asker: what is 3+3"),
        ("assistant", "echo: Asker: what is 3+3"),
        ("user", "Asker: and 4+4"),
    ]
    assert texts(tg, group.id) == [
        "echo: Asker: what is 1+1",
        "echo: Asker: what is 2+2",
        "echo: Asker: what is 3+3",
        "echo: Asker: and 4+4",
    ]


async def test_a_long_reasoning_full_of_markup_characters_is_shown_quoted_and_accepted(tg, ai, tmp_path):
    """Reasoning with `<`, `&` and `>` longer than a message, above an answer longer than a message: every part is
    accepted as HTML (no plain-text fallback), the thoughts sit in one expandable quote, and none of it reaches the
    next prompt."""
    thought = " ".join(f"if a<b && c>d then <think>{n}</think> &amp;" for n in range(200))
    answer = "\n\n".join(f"Paragraph {n}: " + "x < y & z > w. " * 12 for n in range(30))
    ai.queue_answers(ReasonedAnswer(answer, reasoning=thought))
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_MAX_TOKENS="none")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "Explain")
        await wait_for_text(tg, alice.id, "Paragraph 29")
        tg.send_text(alice, "thanks")
        await wait_for_text(tg, alice.id, "echo: thanks")
        assert_log_clean(bot)
        assert not [line for line in bot.log_lines() if line.get("event") == "html_rejected"]
    sent = tg.bot_messages(alice.id)[:-1]
    assert len(sent) >= 2 and all(len(m.text) <= 4096 for m in sent)
    quotes = [e for m in sent for e in m.entities if e.get("type") == "expandable_blockquote"]
    assert len(quotes) == 1
    assert sent[0].text.startswith("if a<b && c>d then <think>0</think> &amp;")
    assert "Paragraph 0: x < y & z > w." in "".join(m.text for m in sent)
    assert chat_messages(ai.chat_requests[1])[1:] == [("user", "Explain"), ("assistant", answer), ("user", "thanks")]


async def test_hidden_reasoning_shows_none_of_the_thoughts(tg, ai, tmp_path):
    """CONVO_SHOW_REASONING=hidden: neither a `<think>` block nor reasoning fields are shown, yet replay has them."""
    ai.queue_answers("<think>secret plan</think>Visible.", ReasonedAnswer("Also visible.", reasoning="more secrets"))
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_SHOW_REASONING="hidden")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "one")
        await wait_for_text(tg, alice.id, "Visible.")
        tg.send_text(alice, "two")
        await wait_for_text(tg, alice.id, "Also visible.")
        assert_log_clean(bot)
    assert texts(tg, alice.id) == ["Visible.", "Also visible."]
    assert not any("secret" in d.text for d in tg.drafts(alice.id))
    events = (await replay_json(env, tmp_path, str(alice.id)))["events"]
    assert [e["data"]["reasoning"] for e in events if e["type"] == "AnswerGiven"] == ["secret plan", "more secrets"]


async def test_with_streaming_off_cancel_still_drops_the_request(tg, ai, tmp_path):
    """CONVO_STREAM=off asks for whole answers and shows nothing meanwhile, but /cancel still drops the request at
    once and says the answer was stopped; the next question is answered normally."""
    ai.delay = 6.0  # a whole answer that takes a while
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_STREAM="off", CONVO_MODEL_TIMEOUT="20")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "Take your time")
        await ai.wait_for_in_flight(1, within=10)
        cancelled = time.monotonic()
        tg.send_command(alice, "cancel")
        await wait_for_text(tg, alice.id, "⏹ Stopped", timeout=10)
        assert time.monotonic() - cancelled < 2.5  # at once, not when the whole answer came
        await ai.wait_for_disconnect(1, within=6)  # the fake notices the closed connection once its delay is over
        ai.delay = 0
        tg.send_text(alice, "again")
        await wait_for_text(tg, alice.id, "echo: again")
        assert_log_clean(bot)
    assert texts(tg, alice.id) == [replies.failure("stopped"), "echo: again"]
    assert tg.drafts(alice.id) == [] and not [c for c in tg.calls if c.method == "editMessageText"]
    assert chat_messages(ai.chat_requests[1])[1:] == [("user", "again")]


async def test_a_draft_refused_for_one_chat_falls_back_there_only_and_is_not_asked_again(tg, ai, tmp_path):
    """A 400 from sendMessageDraft for a chat: that answer goes on as edits, the chat is not asked for drafts again,
    and other private chats keep their drafts."""
    ai.set_answer(" ".join(f"w{n:02d}" for n in range(30)))
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice, bob = tg.new_user("Alice"), tg.new_user("Bob")
    async with running_bot(env, tmp_path) as bot:
        tg.fail_next("sendMessageDraft", error_code=400, description="Bad Request: TEXTDRAFT_PEER_INVALID")
        tg.send_text(alice, "one")
        await wait_for_text(tg, alice.id, "w29", timeout=20)
        tg.send_text(alice, "two")
        await tg.wait_for(lambda: sum("w29" in t for t in texts(tg, alice.id)) == 2, timeout=20)
        tg.send_text(bob, "three")
        await wait_for_text(tg, bob.id, "w29", timeout=20)
        assert_log_clean(bot)
    alice_drafts = [c for c in tg.calls if c.method == "sendMessageDraft" and c.params.get("chat_id") == str(alice.id)]
    assert len(alice_drafts) == 1  # the refusal, remembered
    assert any(c.method == "editMessageText" and c.params.get("chat_id") == str(alice.id) for c in tg.calls)
    assert len([d for d in tg.drafts(bob.id) if d.text.startswith("w")]) >= 2


async def test_undo_sent_while_an_answer_streams_undoes_that_answer_once_it_is_done(tg, ai, tmp_path):
    """/undo arriving mid-answer waits for the answer (it is not lost, nor applied to the turn before), then takes
    that newest turn out of later prompts."""
    ai.set_answer(
        lambda request: SLOW[:399] if request.last_user_text == "Count" else f"echo: {request.last_user_text}"
    )
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "hi")
        await wait_for_text(tg, alice.id, "echo: hi")
        tg.send_text(alice, "Count")
        await first_draft_with_text(tg, alice.id)
        tg.send_command(alice, "undo")
        await wait_for_text(tg, alice.id, replies.UNDONE.format(question="Count"), timeout=20)
        tg.send_text(alice, "next")
        await wait_for_text(tg, alice.id, "echo: next")
        assert_log_clean(bot)
    assert not ai.chat_requests[1].disconnected
    assert texts(tg, alice.id)[1] == SLOW[:399]
    assert chat_messages(ai.chat_requests[2])[1:] == [("user", "hi"), ("assistant", "echo: hi"), ("user", "next")]


async def test_an_edit_of_a_question_that_failed_asks_the_new_text(tg, ai, tmp_path):
    """Editing your latest question asks it again even when it had failed: the new text is asked once, after the
    turns before it, and the failed question stays out of the prompt."""
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "first")
        await wait_for_text(tg, alice.id, "echo: first")
        ai.fail_next("invalid_api_key")
        question = tg.send_text(alice, "secnod")
        await wait_for_text(tg, alice.id, "misconfigured")
        tg.edit_message(alice, question, "second")
        await wait_for_text(tg, alice.id, "echo: second")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    assert len(ai.chat_requests) == 3
    assert chat_messages(ai.chat_requests[2])[1:] == [
        ("user", "first"),
        ("assistant", "echo: first"),
        ("user", "second"),
    ]


async def test_cancel_sent_twice_quickly_stops_once_and_later_questions_are_answered(tg, ai, tmp_path):
    """Two quick /cancel: one stopped answer, sent once; the second /cancel is ignored or says nothing runs; the next
    question is answered in full."""
    ai.set_answer(lambda request: SLOW if request.last_user_text == "Count" else f"echo: {request.last_user_text}")
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "Count")
        await first_draft_with_text(tg, alice.id)
        tg.send_command(alice, "cancel")
        tg.send_command(alice, "cancel")
        await wait_for_text(tg, alice.id, replies.STOPPED_MARK, timeout=10)
        tg.send_text(alice, "after")
        await wait_for_text(tg, alice.id, "echo: after")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot)
    shown = texts(tg, alice.id)
    assert [t for t in shown if replies.STOPPED_MARK in t] == [shown[0]]
    assert set(shown[1:-1]) <= {replies.NOTHING_RUNNING} and shown[-1] == "echo: after"
    assert len(ai.chat_requests) == 2


async def test_stop_works_in_webhook_mode(tg, ai, tmp_path):
    """Stop in webhook mode (one worker): the request is dropped at once and the partial answer is sent, marked."""
    port = free_port()
    ai.set_answer(SLOW)
    ai.chunk_delay = 0.05
    env = bot_env(
        tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_WEBHOOK_LISTEN=f"127.0.0.1:{port}", CONVO_WEBHOOK_SECRET=SECRET
    )
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path, "--webhook-url", f"http://127.0.0.1:{port}/hook") as bot:
        await tg.wait_for(lambda: tg.webhook.active, timeout=20)
        tg.send_text(alice, "Count slowly")
        draft = await first_draft_with_text(tg, alice.id)
        tg.stop_generation(alice, draft.draft_id)
        await ai.wait_for_disconnect(1, within=3)
        shown = await wait_for_text(tg, alice.id, replies.STOPPED_MARK, timeout=10)
        assert_log_clean(bot, SECRET)
    partial = shown.removesuffix(replies.STOPPED_MARK).strip()
    assert partial and SLOW.startswith(partial) and len(partial) < len(SLOW)
