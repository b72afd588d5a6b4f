"""One streamed answer in `convo chat`: the `bot> ` line that grows as the model writes.

Two rules keep the terminal honest:
- Log records wait while the line is open (`logs_held`), and are written once it ends: a warning logged while the
  answer streams (a retry, say) comes after the answer, never inside it.
- The line only ever shows text the answer has. When the model's stream breaks and the model is asked again, the
  new answer arrives from its start: while it repeats what is shown, nothing is written; once it says something
  else, the shown text is marked as cut off, the held log records are written (they say why), and the new answer
  starts on a line of its own. So a retried answer never reads as the first part followed by the whole.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TextIO

from entrypoints.logs import logs_held

PREFIX = "bot> "
CUT_OFF = " [cut off: the model started this answer again]"
"""Ends the shown part of an answer the model started again."""
STOPPED = " [stopped]"
"""Ends an answer the user stopped with Ctrl-C."""


class AnswerLine:
    """The terminal line of one answer; `grow` is the TextSoFar the model streams to, `end` closes it."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._shown: str | None = None
        """What the open line shows of the answer; None while no line is open."""
        self._written = False
        self._held = ExitStack()

    @property
    def written(self) -> bool:
        """Whether any line of this answer was written."""
        return self._written

    async def grow(self, text: str) -> None:
        """The answer so far: the line shows what is new, or starts again if the answer did (see the module)."""
        self._show(text)

    def end(self, final: str | None = None, *, stopped: bool = False) -> None:
        """Close the line (if one is open): with the final text when the answer has one (a line that shows
        anything else is cut off and the final text shown whole), marked when the user stopped it; then the log
        records held back are written."""
        if self._shown is None:
            return
        if final is not None:
            self._show(final)
            if self._shown != final:  # the final answer is shorter than what a broken stream showed
                self._start_again(final)
        if stopped:
            self._write(STOPPED)
        self._close()

    def _show(self, text: str) -> None:
        if self._shown is None:
            self._open()
        shown = self._shown or ""
        if text.startswith(shown):
            self._write(text[len(shown) :])
            self._shown = text
        elif not shown.startswith(text):
            self._start_again(text)
        # else: a stream asked again repeats what is shown; nothing new to show yet

    def _start_again(self, text: str) -> None:
        self._write(CUT_OFF)
        self._close()
        self._open()
        self._write(text)
        self._shown = text

    def _open(self) -> None:
        self._held.enter_context(logs_held())
        self._write(PREFIX)
        self._shown = ""
        self._written = True

    def _close(self) -> None:
        self._write("\n")
        self._shown = None
        self._held.close()

    def _write(self, text: str) -> None:
        if text:
            self._out.write(text)
            self._out.flush()
