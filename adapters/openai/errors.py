"""What went wrong with a model call, in the domain's words: a FailureKind, a short message, whether to retry.

`classify` is the one place that reads the openai client's exceptions (and the download client's, for images).
Messages are built here from status codes and error codes, with at most a trimmed sentence of the server's own
message, always passed through `scrub`, so no API key or Authorization header can reach an event or a log line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import attrs
import httpx2
import openai

from domain.events import FailureKind
from domain.ports import Completion, ModelFailure

CONTENT_CODES = frozenset(
    {"content_policy_violation", "content_filter", "invalid_prompt", "moderation_blocked", "responsible_ai_policy"}
)
"""Error codes that mean the prompt (or the answer) was refused on content grounds."""

_CONTEXT = re.compile(
    r"context[ _](length|size|window)|maximum context|too many tokens|prompt'? is too long|exceeds? the .*context"
    r"|maximum length is",
    re.IGNORECASE,
)
_NO_VISION = re.compile(
    r"image_url is only supported|image input is not supported|not a multimodal model|does not support (image|vision)"
    r"|(vision|image input|multimodal)( is)? not (supported|enabled)|mmproj",
    re.IGNORECASE,
)
"""How servers refuse a picture sent to a model that cannot see: OpenAI, llama.cpp, vLLM, Ollama."""
_SAFETY = re.compile(r"safety system|content (management )?policy|content filter", re.IGNORECASE)
_SECRET_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_*\-]{3,}"),
    re.compile(r"(?i)\bbearer\s+\S+"),
    re.compile(r"(?i)(authorization|api[-_ ]?key)(\s*[:=]\s*)\S+"),
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_MIN_SECRET_LENGTH = 6
_DETAIL_LENGTH = 160


class IncompleteAnswer(Exception):
    """A 200 answer that cannot be used as it is (a stream that ended early, no choices, no image): retry."""


class CallerError(Exception):
    """Wraps an exception raised by the caller's own callback, so that it passes through retries untouched."""

    def __init__(self, error: Exception) -> None:
        super().__init__(type(error).__name__)
        self.error = error


@attrs.frozen
class Verdict:
    """How one failed attempt is judged."""

    kind: FailureKind
    """The failure kind it would be reported as."""
    message: str
    """Short, human and secret-free."""
    retryable: bool
    """Whether another attempt may succeed."""
    retry_after: float | None = None
    """Seconds the server asked us to wait, if it said."""
    billed: Completion | None = None
    """What the server billed for the attempt, if it said (a refused answer)."""

    def failure(self, suffix: str = "") -> ModelFailure:
        """The ModelFailure this verdict becomes when no attempt is left."""
        return ModelFailure(self.kind, self.message + suffix, self.retry_after, self.billed)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secrets, anything shaped like `sk-...`, bearer tokens or Authorization values."""
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, "***")
    text = _SECRET_PATTERNS[0].sub("sk-***", text)
    text = _SECRET_PATTERNS[1].sub("Bearer ***", text)
    return _SECRET_PATTERNS[2].sub(r"\1\2***", text)


def detail(text: str | None, secrets: Iterable[str] = ()) -> str:
    """The server's message made fit for ours: scrubbed, on one line, cut short; '' for HTML or nothing."""
    if not text or text.lstrip().startswith("<"):
        return ""
    line = " ".join(scrub(text, secrets).split())
    return line if len(line) <= _DETAIL_LENGTH else line[: _DETAIL_LENGTH - 1].rstrip() + "…"


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait before retrying, from `retry-after-ms`, `retry-after` (seconds or HTTP date), or, for an
    exhausted limit, `x-ratelimit-reset-<limit>`; None when the headers do not say."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    milliseconds = _number(lowered.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    header = lowered.get("retry-after")
    if header:
        seconds = _number(header)
        return seconds if seconds is not None else _seconds_until(header, now)
    for limit in ("requests", "tokens"):
        if lowered.get(f"x-ratelimit-remaining-{limit}") == "0":
            reset = parse_duration(lowered.get(f"x-ratelimit-reset-{limit}", ""))
            if reset is not None:
                return reset
    return None


def parse_duration(text: str) -> float | None:
    """Seconds in a duration like the rate-limit headers write them (`6ms`, `1.5s`, `1m30s`, `2h`); None if not."""
    text = text.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None


def _seconds_until(http_date: str, now: datetime | None) -> float | None:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def classify(error: BaseException, secrets: Iterable[str] = ()) -> Verdict:
    """Judge one failed attempt: its kind, a safe message, whether to retry and how long the server asked."""
    secrets = tuple(secrets)
    if isinstance(error, ModelFailure):
        message = scrub(error.message, secrets)
        return Verdict(error.kind, message, retryable=False, retry_after=error.retry_after, billed=error.billed)
    if isinstance(error, openai.APIStatusError):
        return _status_verdict(error, secrets)
    if _refused(error):  # the SDK's aiohttp transport reports a refused connection as a timeout
        return Verdict("upstream", "the model server refused the connection (is it running at OPENAI_BASE_URL?)", True)
    if isinstance(error, openai.APITimeoutError | TimeoutError | httpx2.TimeoutException):
        return Verdict("timeout", "the model server did not answer in time", retryable=True)
    if isinstance(error, openai.APIConnectionError | httpx2.TransportError):
        return Verdict("upstream", "the connection to the model server failed or was cut", retryable=True)
    if isinstance(error, openai.APIResponseValidationError | json.JSONDecodeError | UnicodeDecodeError):
        return Verdict("upstream", "the model server sent a malformed response", retryable=True)
    if isinstance(error, IncompleteAnswer):
        return Verdict("upstream", detail(str(error), secrets) or "incomplete answer", retryable=True)
    if isinstance(error, openai.ContentFilterFinishReasonError):
        return Verdict("content_refused", "the answer was stopped by the content filter", retryable=False)
    if isinstance(error, openai.APIError):
        return _stream_error_verdict(error, secrets)
    if isinstance(error, httpx2.HTTPStatusError):
        return _download_verdict(error.response.status_code)
    return Verdict("upstream", f"unexpected {type(error).__name__} while calling the model", retryable=False)


def _refused(error: BaseException) -> bool:
    """Whether a refused connection is behind the error, however the client wrapped it."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def model_failure(error: BaseException, secrets: Iterable[str] = ()) -> ModelFailure:
    """The ModelFailure one failure maps to, retries aside."""
    return classify(error, secrets).failure()


def _body_fields(error: openai.APIError) -> tuple[str, str, str]:
    """(code, type, message) of an error body, '' where absent."""
    body = error.body if isinstance(error.body, dict) else {}
    message = body.get("message") if isinstance(body.get("message"), str) else None
    if message is None and not isinstance(error, openai.APIStatusError):
        message = error.message
    return str(error.code or ""), str(error.type or ""), message or ""


def _refusal_or_context(code: str, kind: str, message: str, secrets: tuple[str, ...]) -> Verdict | None:
    """The content and context verdicts, which look the same on a 400 and in a mid-stream error."""
    said = detail(message, secrets)
    if code in CONTENT_CODES or _SAFETY.search(message):
        return Verdict("content_refused", f"refused on content grounds ({code or 'policy'}): {said}", False)
    if code == "context_length_exceeded" or "context" in kind or _CONTEXT.search(message):
        return Verdict("context_too_long", f"the prompt is too long for the model: {said}", False)
    return None


def _status_verdict(error: openai.APIStatusError, secrets: tuple[str, ...]) -> Verdict:
    status = error.status_code
    code, kind, message = _body_fields(error)
    said = detail(message, secrets)
    suffix = f": {said}" if said else ""
    if status == 429:
        if code == "insufficient_quota" or kind == "insufficient_quota":
            return Verdict("auth", f"insufficient_quota: the account has no credit left (429){suffix}", False)
        wait = retry_after(error.response.headers)
        return Verdict("rate_limited", f"rate limited by the model server (429){suffix}", True, wait)
    if status == 401:
        return Verdict("auth", f"the API key was rejected (401 {code or 'unauthorized'})", False)
    if status == 403:
        return Verdict("auth", f"permission denied (403 {code or 'forbidden'}){suffix}", False)
    if status == 404:
        if code == "model_not_found" or "model" in message.lower():
            return Verdict("auth", f"model not found (404): check the model name{suffix}", False)
        missing = f"the model server has no such endpoint (404): check OPENAI_BASE_URL{suffix}"
        return Verdict("unsupported", missing, False)
    if status in (400, 422, 500) and _NO_VISION.search(message):
        return Verdict("no_vision", f"the model cannot take pictures ({status}){suffix}", False)
    if status in (400, 413, 422):
        refused = _refusal_or_context(code, kind, message, secrets)
        if refused is not None:
            return refused
    if status == 408:
        return Verdict("timeout", "the model server timed out the request (408)", True)
    if status == 409 or status >= 500:
        return Verdict("upstream", f"model server error ({status}){suffix}", True, retry_after(error.response.headers))
    return Verdict("upstream", f"request rejected ({status} {code or kind or 'error'}){suffix}", False)


def _stream_error_verdict(error: openai.APIError, secrets: tuple[str, ...]) -> Verdict:
    """An `error` event in the middle of a stream: as its code says, else a server error worth retrying."""
    code, kind, message = _body_fields(error)
    refused = _refusal_or_context(code, kind, message, secrets)
    if refused is not None:
        return refused
    said = detail(message, secrets)
    return Verdict("upstream", "the model server failed mid-answer" + (f": {said}" if said else ""), True)


def _download_verdict(status: int) -> Verdict:
    """A failed download of a generated image from its URL."""
    retryable = status == 429 or status >= 500
    return Verdict("upstream", f"the image could not be downloaded ({status})", retryable)
