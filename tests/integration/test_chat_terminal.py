"""`convo chat` typed at on a real (pseudo-)terminal, against the local OpenAI server: Ctrl-C at the prompt and
during an answer, log lines while an answer streams, and an answer whose stream broke and was asked again."""

from __future__ import annotations

from pathlib import Path

from entrypoints.answer_line import CUT_OFF, STOPPED
from tests.e2e.harness import replay_json, store_env
from tests.integration.pty_session import CTRL_C, ENTER, TerminalSession, chat_env

PROMPT = "you> "
QUESTION = "one two three four five six seven eight nine ten"


async def started(ai, workdir: Path) -> TerminalSession:
    session = await TerminalSession.start(chat_env(ai, workdir), workdir, "chat", "--user", "tester")
    await session.expect(PROMPT)
    return session


def lines_of(screen: str) -> list[str]:
    return screen.split("\n")


def index_of(lines: list[str], text: str) -> int:
    found = [number for number, line in enumerate(lines) if text in line]
    assert len(found) == 1, (text, lines)
    return found[0]


async def test_ctrl_c_at_the_prompt_ends_convo_chat_at_once_without_a_traceback(ai, tmp_path):
    session = await started(ai, tmp_path)
    try:
        session.type(b"half a line")  # typed but not sent: Ctrl-C still ends the wait at once
        await session.expect("half a line")
        session.type(CTRL_C)
        assert await session.exit_status(within=2.0) == 130
        assert "Traceback" not in session.screen and "Error" not in session.screen, session.screen
        assert ai.chat_requests == []
    finally:
        await session.close()


async def test_ctrl_c_while_an_answer_streams_stops_it_and_the_prompt_comes_back(ai, tmp_path):
    words = [f"word{number}" for number in range(400)]
    ai.set_answer(" ".join(words))
    ai.chunk_delay = 0.05
    session = await started(ai, tmp_path)
    try:
        session.type(b"tell me everything" + ENTER)
        await session.expect("bot> word0 word1 word2")
        session.type(CTRL_C)
        await session.expect(STOPPED)
        await session.expect(PROMPT, count=2, within=2.0)
        await ai.wait_for_disconnect(1)  # the model request was dropped, not read to its end
        shown = next(line for line in lines_of(session.screen) if line.startswith("bot> "))
        assert shown.endswith(STOPPED) and "word399" not in shown
        session.type(CTRL_C)
        assert await session.exit_status(within=2.0) == 130
        assert "Traceback" not in session.screen, session.screen
    finally:
        await session.close()
    document = await replay_json(store_env(tmp_path), tmp_path, "cli:tester")
    answers = [event for event in document["events"] if event["type"] == "AnswerGiven"]
    assert len(answers) == 1 and answers[0]["data"]["stopped"] is True
    # the terminal itself echoes the key as ^C where the cursor was
    assert shown.removeprefix("bot> ").removesuffix(STOPPED).replace("^C", "") == answers[0]["data"]["text"]


async def test_a_warning_logged_while_an_answer_streams_is_written_after_the_answer_line(ai, tmp_path):
    ai.chunk_delay = 0.02
    ai.fail_next("cut", after_chunks=5)  # the first stream breaks after four words; the retry is logged
    session = await started(ai, tmp_path)
    try:
        session.type(QUESTION.encode() + ENTER)
        await session.expect(PROMPT, count=2)
        screen = session.screen
        lines = lines_of(screen)
        answer = index_of(lines, f"bot> echo: {QUESTION}")
        assert lines[answer].endswith(f"bot> echo: {QUESTION}"), lines[answer]
        assert index_of(lines, "model_retry") > answer
        assert screen.count("bot> ") == 1 and CUT_OFF not in screen, screen  # one answer, shown once
        assert len(ai.chat_requests) == 2
    finally:
        await session.close()


async def test_a_retried_stream_that_says_something_else_marks_what_was_shown_as_cut_off(ai, tmp_path):
    ai.chunk_delay = 0.02
    ai.queue_answers("alpha beta gamma delta epsilon", "omega psi chi")
    ai.fail_next("cut", after_chunks=4)  # "alpha beta gamma", then the connection drops
    session = await started(ai, tmp_path)
    try:
        session.type(b"greek letters please" + ENTER)
        await session.expect(PROMPT, count=2)
        lines = lines_of(session.screen)
        cut = index_of(lines, f"bot> alpha beta gamma{CUT_OFF}")
        retry = index_of(lines, "model_retry")
        answer = index_of(lines, "bot> omega psi chi")
        assert cut < retry < answer, lines
        assert lines[answer].endswith("bot> omega psi chi")
        assert "delta" not in session.screen
    finally:
        await session.close()


async def test_a_question_typed_then_end_of_input_still_exits_0(ai, tmp_path):
    session = await started(ai, tmp_path)
    try:
        session.type(b"hello there" + ENTER)
        await session.expect("bot> echo: hello there")
        await session.expect(PROMPT, count=2)
        session.type(b"\x04")  # Ctrl-D at the start of a line: the end of the input
        assert await session.exit_status(within=2.0) == 0
        assert "Traceback" not in session.screen
    finally:
        await session.close()
