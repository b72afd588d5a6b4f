"""`convo chat` on a pseudo-terminal of its own, typed at as a person would: the pty is its controlling terminal, so
the ^C byte makes the kernel send SIGINT, and stdout and stderr land on one screen in the order they were written."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import sys
import termios
from collections.abc import Mapping
from pathlib import Path

from tests.e2e.harness import API_KEY

CTRL_C = b"\x03"
ENTER = b"\r"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def chat_env(ai, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `convo chat` against the local OpenAI server, its store in `workdir`."""
    return {
        "PATH": "/usr/bin:/bin",
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": ai.base_url,
        "CONVO_STORE": f"sqlite:///{workdir}/convo.db",
        **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ},
        **extra,
    }


def _take_terminal() -> None:
    """In the child, before exec: make the pty (its stdin) the controlling terminal of its new session."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class TerminalSession:
    """One `convo` process on a pty; `screen` is everything it wrote, line ends as `\\n`, colours removed."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self._master = master
        self._raw = bytearray()
        self._changed = asyncio.Event()
        self._closed = False
        asyncio.get_running_loop().add_reader(master, self._take)

    @classmethod
    async def start(cls, env: Mapping[str, str], cwd: Path, *args: str) -> TerminalSession:
        """Start `python -m entrypoints.cli ARGS` on a new pty."""
        master, slave = pty.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "entrypoints.cli",
                *args,
                env=dict(env),
                cwd=cwd,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=_take_terminal,
            )
        finally:
            os.close(slave)
        return cls(process, master)

    def _take(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: every copy of the pty's other end is closed, the process has ended
            data = b""
        if not data:
            self._stop_reading()
        self._raw += data
        self._changed.set()

    def _stop_reading(self) -> None:
        if not self._closed:
            self._closed = True
            asyncio.get_running_loop().remove_reader(self._master)

    @property
    def screen(self) -> str:
        """What the terminal shows, as text."""
        return _ANSI.sub("", self._raw.decode(errors="replace")).replace("\r\n", "\n")

    def type(self, data: bytes) -> None:
        """Keys typed at the terminal."""
        os.write(self._master, data)

    async def expect(self, text: str, *, count: int = 1, within: float = 15.0) -> None:
        """Wait until `text` is on the screen `count` times."""
        async with asyncio.timeout(within):
            while self.screen.count(text) < count:
                if self._closed:
                    raise AssertionError(f"convo ended before {text!r} appeared {count} times:\n{self.screen}")
                self._changed.clear()
                await self._changed.wait()

    async def exit_status(self, *, within: float) -> int:
        """The process's exit status, which must come within `within` seconds; then what it wrote last."""
        async with asyncio.timeout(within):
            status = await self.process.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while not self._closed:
                    self._changed.clear()
                    await self._changed.wait()
        return status

    async def close(self) -> None:
        """Kill the process if it still runs, and close the pty."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._stop_reading()
        os.close(self._master)
