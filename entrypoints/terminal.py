"""The keyboard side of `convo chat`: lines that Ctrl-C can interrupt, and Ctrl-C that stops an answer.

`input()` in a thread pool cannot be interrupted: Ctrl-C at the prompt used to wait for Enter (asyncio.Runner's
shutdown joins the pool's threads), then print two tracebacks. Here each read of standard input runs in a daemon
thread with `os.read`, which holds no lock of Python's: when Ctrl-C cancels the program, nothing waits for the read,
and the process ends at once. On a terminal the kernel still edits the line (backspace, Ctrl-U, Ctrl-W), as it did
for `input()`, which reads the same way when the readline module is not loaded.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import TextIO

CHUNK = 65536
"""Most bytes one read takes."""


class LineReader:
    """Lines of a file descriptor (standard input), read in a daemon thread so that waiting for one can be
    cancelled at once."""

    def __init__(self, out: TextIO, fd: int = 0, encoding: str = "utf-8") -> None:
        self._out = out
        self._fd = fd
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._buffer = ""
        self._ended = False
        self._pending: asyncio.Future[bytes] | None = None

    async def read_line(self, prompt: str) -> str:
        """Write `prompt`, then the next line without its line break; EOFError at the end of the input."""
        self._out.write(prompt)
        self._out.flush()
        while "\n" not in self._buffer:
            if self._ended:
                line, self._buffer = self._buffer, ""
                if not line:
                    raise EOFError
                return line
            chunk = await self._next_chunk()
            self._buffer += self._decoder.decode(chunk, final=not chunk)
            self._ended = not chunk
        line, _, self._buffer = self._buffer.partition("\n")
        return line.removesuffix("\r")

    async def _next_chunk(self) -> bytes:
        """The next bytes (empty at the end); a read cancelled while waiting is picked up by the next call."""
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.create_future()
            reader = threading.Thread(
                target=_read, args=(self._fd, loop, self._pending), name="convo-chat-stdin", daemon=True
            )
            reader.start()
        chunk = await asyncio.shield(self._pending)
        self._pending = None
        return chunk


def _read(fd: int, loop: asyncio.AbstractEventLoop, into: asyncio.Future[bytes]) -> None:
    """One read of `fd` in a thread, handed to the loop; a terminal that went away reads as the end."""
    try:
        chunk = os.read(fd, CHUNK)
    except OSError:
        chunk = b""

    def settle() -> None:
        if not into.done():
            into.set_result(chunk)

    with suppress(RuntimeError):  # the loop is closed: the program ended while this thread waited
        loop.call_soon_threadsafe(settle)


@contextmanager
def interrupt_stops(stop: asyncio.Event) -> Iterator[None]:
    """While inside, Ctrl-C (SIGINT) sets `stop` instead of ending the program, and a second Ctrl-C does what the
    first does outside (under asyncio.Runner: cancel the program). Only the main thread can catch signals:
    elsewhere this changes nothing."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    loop = asyncio.get_running_loop()
    pressed = False

    def interrupted(signum: int, frame: FrameType | None) -> None:
        nonlocal pressed
        if pressed and callable(previous):
            previous(signum, frame)
            return
        pressed = True
        loop.call_soon_threadsafe(stop.set)

    signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
