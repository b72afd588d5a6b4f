"""`convo chat`'s line reader over a pipe, and the log handler that holds records while an answer streams."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os

import pytest

from entrypoints.answer_line import CUT_OFF, AnswerLine
from entrypoints.logs import HoldingHandler, logs_held
from entrypoints.terminal import LineReader


@pytest.fixture
def pipe():
    read, write = os.pipe()
    yield read, write
    os.close(read)
    with contextlib.suppress(OSError):  # the test may have closed it: the end of the input
        os.close(write)


async def test_lines_come_one_at_a_time_whatever_the_reads_deliver(pipe):
    read, write = pipe
    out = io.StringIO()
    reader = LineReader(out, read)
    os.write(write, b"first\nsecond\r\nthird, ")
    assert await reader.read_line("you> ") == "first"
    assert await reader.read_line("you> ") == "second"
    waiting = asyncio.ensure_future(reader.read_line("you> "))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    os.write(write, "ünïcode split: ".encode() + "é".encode()[:1])
    os.write(write, "é".encode()[1:] + b" end")
    os.close(write)
    assert await waiting == "third, ünïcode split: é end"  # the last line needs no line break
    with pytest.raises(EOFError):
        await reader.read_line("you> ")
    assert out.getvalue() == "you> " * 4


async def test_a_cancelled_wait_leaves_the_read_to_the_next_call(pipe):
    read, write = pipe
    reader = LineReader(io.StringIO(), read)
    waiting = asyncio.ensure_future(reader.read_line(""))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    os.write(write, b"kept\n")
    assert await asyncio.wait_for(reader.read_line(""), 5) == "kept"


def test_held_records_are_written_in_order_once_released():
    stream = io.StringIO()
    handler = HoldingHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.holding")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    try:
        logger.info("before")
        handler.hold()
        logger.info("during one")
        logger.info("during two")
        assert stream.getvalue() == "before\n"
        handler.resume()
        logger.info("after")
        assert stream.getvalue() == "before\nduring one\nduring two\nafter\n"
    finally:
        logger.removeHandler(handler)


async def test_an_open_answer_line_holds_the_root_loggers_records(monkeypatch):
    stream, out = io.StringIO(), io.StringIO()
    handler = HoldingHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    line = AnswerLine(out)
    await line.grow("Hello")
    logging.getLogger("tests.answer").warning("model_retry")
    assert stream.getvalue() == ""
    await line.grow("Hel")  # the stream asked again repeats what is shown: nothing more is written
    await line.grow("Hello, world")
    line.end("Hello, world")
    assert out.getvalue() == "bot> Hello, world\n"
    assert stream.getvalue() == "model_retry\n"
    with logs_held():
        logging.getLogger("tests.answer").warning("late")
    assert stream.getvalue() == "model_retry\nlate\n"


async def test_a_final_answer_shorter_than_the_broken_stream_is_shown_again_whole():
    out = io.StringIO()
    line = AnswerLine(out)
    await line.grow("The answer is long")
    line.end("The answer")
    assert out.getvalue() == f"bot> The answer is long{CUT_OFF}\nbot> The answer\n"
