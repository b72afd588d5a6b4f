"""`convo chat`: the same service in a terminal, for trying convo without Telegram.

Ctrl-C at the prompt ends the program at once (exit status 130, the shell's convention for SIGINT). Ctrl-C while an
answer streams stops that answer, as Telegram's Stop button does: what had arrived is recorded as a stopped answer,
shown marked `[stopped]`, and the prompt comes back; a second Ctrl-C before it does ends the program, and so does
Ctrl-C while a picture is being drawn (the image model cannot be stopped half-way).
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable

from domain.commands import Sender
from domain.errors import EmptyMessage
from domain.ports import StopSignal, StoreUnavailable, TextSoFar
from entrypoints.answer_line import STOPPED, AnswerLine
from entrypoints.attachments import AttachmentError, send_file
from entrypoints.terminal import LineReader, interrupt_stops
from service.conversations import ConversationService, Request
from service.outcomes import Answered, Drawn, Failed, Outcome

HELP = (
    "Commands: /chat, /image [prompt], /file PATH [question] (a picture, a sound or a document), /reset, "
    "/history, /help, /quit. Anything else is sent as a message."
)


class TerminalChat:
    """A read-eval-print loop over one `cli:<name>` stream."""

    def __init__(self, service: ConversationService, name: str | None = None) -> None:
        self._service = service
        self._name = name or getpass.getuser()
        self._stream = f"cli:{self._name}"
        self._turn = 0

    def _request(self) -> Request:
        self._turn += 1
        return Request(
            self._stream,
            f"cli:{self._name}:{self._turn}:{id(self)}",
            Sender(user_id=0, username=self._name, first_name=self._name),
        )

    async def run(self) -> None:
        """Read lines until /quit or end of input."""
        print(f"convo chat — stream {self._stream}. {HELP}")
        started = await self._service.start(self._request())
        print(f"[{started.mode} mode]")
        reader = LineReader(sys.stdout, sys.stdin.fileno(), sys.stdin.encoding or "utf-8")
        while True:
            try:
                line = await reader.read_line("you> ")
            except EOFError:
                print()
                return
            except asyncio.CancelledError:  # Ctrl-C: the line the terminal echoed ^C on ends before the shell's
                print()
                raise
            if line.strip() in ("/quit", "/exit"):
                return
            try:
                await self.handle(line)
            except EmptyMessage:
                print("(type a message, or /help)")
            except StoreUnavailable as error:
                print(f"(storage unavailable: {error})")

    async def handle(self, line: str) -> None:
        """One line of input."""
        command, _, rest = line.strip().partition(" ")
        if command == "/help":
            print(HELP)
        elif command == "/reset":
            await self._service.reset(self._request())
            print("(conversation reset)")
        elif command == "/chat":
            await self._service.select_mode(self._request(), "chat")
            print("(chat mode)")
        elif command == "/image" and not rest.strip():
            await self._service.select_mode(self._request(), "image")
            print("(image mode: type a prompt)")
        elif command == "/image":
            outcome = await self._service.request_image(self._request(), rest)
            self._show(outcome)
            await self._service.mark_delivered(self._stream, outcome)
        elif command == "/file":
            await self._send_file(rest)
        elif command == "/history":
            for turn in await self._service.history(self._stream):
                print(f"  you: {turn.question}\n  bot: {turn.answer}")
        else:
            await self._say(line)

    async def _send_file(self, rest: str) -> None:
        try:
            await self._answer(lambda grow, stop: send_file(self._service, self._request(), rest, grow, stop))
        except AttachmentError as error:
            print(f"({error})")

    async def _say(self, line: str) -> None:
        async def said(grow: TextSoFar, stop: StopSignal) -> tuple[str, Outcome]:
            return "", await self._service.say(self._request(), line, grow, stop)

        await self._answer(said)

    async def _answer(self, ask: Callable[[TextSoFar, StopSignal], Awaitable[tuple[str, Outcome]]]) -> None:
        """Ask, showing the answer as it streams; Ctrl-C meanwhile stops it."""
        line = AnswerLine(sys.stdout)
        stop = asyncio.Event()
        try:
            with interrupt_stops(stop):
                before, outcome = await ask(line.grow, stop)
        except BaseException:
            line.end()  # an error or a cancellation ends the line, and lets the held log records out
            raise
        if before and not line.written:
            print(before)
        if isinstance(outcome, Answered):
            line.end(outcome.text, stopped=outcome.stopped)
        else:
            line.end()
        if not (line.written and isinstance(outcome, Answered)):
            self._show(outcome)
        await self._service.mark_delivered(self._stream, outcome)

    @staticmethod
    def _show(outcome: Outcome) -> None:
        match outcome:
            case Answered(text=text, stopped=stopped):
                print(f"bot> {text}{STOPPED if stopped else ''}")
            case Drawn(image_ref=ref, data=data):
                where = ref if ref.startswith("http") else f"{len(data or b'')} bytes ({ref[:20]}…)"
                print(f"bot> [picture: {where}]")
            case Failed(kind=kind, message=message):
                print(f"bot> (failed: {kind}: {message})")
