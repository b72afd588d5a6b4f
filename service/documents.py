"""Documents put to the model: their text cut to what the chat's prompt budget leaves, never silently.

A document's text goes ahead of its question in the prompt. What the budget leaves after the persona, the question
and the document's frame is the document's room; text beyond it is cut at a line break or a space and the cut is
recorded (FileText.dropped_chars), so the model is told and replay shows it. A room too small to be useful is
refused with the budget named.
"""

from __future__ import annotations

from collections.abc import Callable

from domain.events import FileText
from domain.prompt import document_block

MIN_FILE_TOKENS = 64
"""Fewer tokens left for a document than this, and it is refused rather than cut to nearly nothing."""


class FileDoesNotFit(Exception):
    """Too little of the prompt budget is left for a document."""

    def __init__(self, budget: int) -> None:
        super().__init__(f"the prompt budget of {budget} tokens leaves no room for the file")
        self.budget = budget


def fitted(file: FileText, room: int, budget: int, count: Callable[[str], int]) -> FileText:
    """The document with its text cut to `room` tokens (its frame and the cut note included). Raises
    FileDoesNotFit."""
    frame = count(document_block(FileText(name=file.name, mime_type="", size=0, sha256="", text="", dropped_chars=1)))
    if room - frame < MIN_FILE_TOKENS:
        raise FileDoesNotFit(budget)
    kept, dropped = fit_text(file.text, room - frame, count)
    return FileText(
        name=file.name, mime_type=file.mime_type, size=file.size, sha256=file.sha256, text=kept, dropped_chars=dropped
    )


def fit_text(text: str, tokens: int, count: Callable[[str], int]) -> tuple[str, int]:
    """The longest prefix of `text` that `count` makes at most `tokens`, and how many characters were left out.

    The prefix ends at a line break, else at a space, when there is one in its last tenth; it never ends between
    the halves of a surrogate pair. `count` is called O(log len(text)) times and should not fall as text grows.
    """
    if tokens <= 0:
        return "", len(text)
    if count(text) <= tokens:
        return text, 0
    fits, over = 0, len(text)
    while over - fits > 1:
        middle = (fits + over) // 2
        if count(text[:middle]) <= tokens:
            fits = middle
        else:
            over = middle
    cut = fits - 1 if _splits_pair(text, fits) else fits
    tidy = _break_before(text, cut)
    if tidy < cut and count(text[:tidy]) <= tokens:
        cut = tidy
    elif cut < fits and count(text[:cut]) > tokens:
        cut = 0
    return text[:cut], len(text) - cut


def _splits_pair(text: str, cut: int) -> bool:
    return 0 < cut < len(text) and "\ud800" <= text[cut - 1] <= "\udbff" and "\udc00" <= text[cut] <= "\udfff"


def _break_before(text: str, cut: int) -> int:
    start = cut - cut // 10
    for separator in ("\n", " "):
        found = text.rfind(separator, start, cut + 1)
        if found > 0:
            return found
    return cut
