"""structlog for everything: JSON lines when stderr is not a TTY, readable lines when it is.

Standard-library loggers (aiogram, aiohttp, httpx, openai) go through the same processors, so every line looks
alike, and every line passes through a redactor that blanks any configured secret wherever it appears.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
import structlog.dev
import structlog.tracebacks
from structlog.typing import EventDict, Processor

REDACTED = "[redacted]"


class Redactor:
    """Replaces every known secret in every string of a log line; start-up makes one and tells it each secret."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secrets: Iterable[str | None]) -> None:
        """Remember secrets (empty and very short values are ignored: they would blank ordinary words)."""
        for secret in secrets:
            if secret and len(secret) >= 6 and secret not in self._secrets:
                self._secrets.append(secret)

    def scrub(self, value: Any) -> Any:
        """The value with secrets blanked, recursing into containers."""
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(item) for item in value)
        return value

    def __call__(self, logger: Any, name: str, event_dict: EventDict) -> EventDict:
        return {key: self.scrub(value) for key, value in event_dict.items()}


class HoldingHandler(logging.StreamHandler[TextIO]):
    """A stream handler that can hold its records back, formatted when they happen, and write them later: the
    terminal chat holds them while an answer streams, so that no log line lands in the middle of it."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._held: list[str] | None = None

    def hold(self) -> None:
        """Keep records back from now on (holding again changes nothing)."""
        self.acquire()
        try:
            if self._held is None:
                self._held = []
        finally:
            self.release()

    def resume(self) -> None:
        """Write the records held back, in order, then write records as they come again."""
        self.acquire()
        try:
            held, self._held = self._held or [], None
            for line in held:
                self.stream.write(line + self.terminator)
            if held:
                self.flush()
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record, or keep it (formatted now, with its own time and context) while held."""
        if self._held is None:
            super().emit(record)
            return
        try:
            self._held.append(self.format(record))
        except Exception:  # the logging module's own convention: report it, never raise from a log call
            self.handleError(record)


@contextmanager
def logs_held() -> Iterator[None]:
    """While inside, the root logger's holding handlers keep records back; they write them on the way out."""
    handlers = [handler for handler in logging.getLogger().handlers if isinstance(handler, HoldingHandler)]
    for handler in handlers:
        handler.hold()
    try:
        yield
    finally:
        for handler in handlers:
            handler.resume()


def configure_logging(redactor: Redactor, level: str = "INFO", fmt: str = "auto") -> None:
    """Set up structlog and route the standard library through it, every line through `redactor`; `fmt` is auto,
    json or console."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    # Tracebacks carry no local variables: they would put user text (and anything else in scope) in the log.
    without_locals = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    tail: list[Processor] = [structlog.processors.ExceptionRenderer(without_locals)] if use_json else []
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, redactor, renderer],
    )
    handler = HoldingHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiogram.event", "httpx", "httpx2", "httpcore", "openai", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # The pool retries a dead server quietly; the store reports the failure once, as StoreUnavailable.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
