"""The text of a document a user sends: text files of any common kind and the text layer of PDFs.

`read_text` turns a file's bytes into the text put to the model, or says with `Unreadable` why it cannot;
`fit_text` cuts that text to a token budget.
"""

from __future__ import annotations

import codecs
import io
from pathlib import PurePosixPath
from typing import Literal, TypeAlias

MAX_TEXT_BYTES = 1_000_000
"""Most text a document may hold, in bytes of UTF-8."""
MAX_PDF_PAGES = 2_000
"""Most pages of a PDF that are read."""
READABLE = "text files (.txt, .md, .csv, .json, source code…) and PDFs"
"""What the bot reads, for its reply to other files."""

Reason: TypeAlias = Literal["kind", "encoding", "too_much", "no_text", "broken"]
Unit: TypeAlias = Literal["bytes", "pages"]

TEXT_SUFFIXES = frozenset(
    {".txt", ".md", ".markdown", ".rst", ".tex", ".log", ".html", ".htm", ".xml", ".css", ".scss"}
    | {".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".sql", ".sh"}
    | {".py", ".js", ".ts", ".tsx", ".jsx", ".vue", ".java", ".kt", ".scala", ".clj", ".c", ".h", ".cpp", ".hpp"}
    | {".cs", ".go", ".rs", ".rb", ".php", ".swift", ".lua", ".r", ".m", ".pl", ".hs", ".ex", ".exs", ".dart"}
)
"""Names ending so are read as text whatever type they were sent with (a TypeScript file often comes as video)."""
TEXT_TYPES = frozenset(
    {"application/json", "application/x-ndjson", "application/jsonl", "application/csv", "application/sql"}
    | {"application/xml", "application/yaml", "application/x-yaml", "application/toml", "application/x-toml"}
    | {"application/javascript", "application/x-javascript", "application/ecmascript", "application/typescript"}
    | {"application/x-sh", "application/x-shellscript", "application/x-sql", "application/x-tex", "application/x-latex"}
    | {"application/x-python", "application/x-perl", "application/x-ruby", "application/x-httpd-php"}
)
"""Media types other than ``text/*`` read as text; so is any ``application/…+json`` or ``application/…+xml``."""
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
"""Media types read as PDF."""

_SNIFF_BYTES = 8192
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class Unreadable(Exception):
    """A document whose text cannot be read; the message says why, for a log."""

    reason: Reason
    """Why: `kind` (not a kind of file read), `encoding` (text in an encoding not recognised), `too_much` (over a
    limit), `no_text` (empty, or a PDF without a text layer), `broken` (a damaged or password-protected PDF)."""
    limit: int | None
    """The limit passed, for `too_much` (None otherwise)."""
    unit: Unit | None
    """What `limit` counts: bytes of UTF-8 text, or pages of a PDF (None without a limit)."""

    def __init__(self, reason: Reason, message: str, *, limit: int | None = None, unit: Unit | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.limit = limit
        self.unit = unit


def read_text(name: str, mime_type: str | None, data: bytes) -> str:
    """The text of a document named `name`, sent as `mime_type`: line breaks as ``\\n``, no white space at its end.

    Raises `Unreadable` when it is not a text file or a PDF, or has no text, or too much of it.
    """
    kind = _kind(name, mime_type, data)
    if kind == "pdf":
        text = _pdf_text(name, data)
    elif kind == "text":
        text = _decoded(name, data)
    else:
        raise Unreadable("kind", f"{name!r} ({mime_type or 'no type'}) is not a text file or a PDF")
    text = text.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    if not text.strip():
        raise Unreadable("no_text", f"{name!r} holds no text")
    if _utf8_size(text) > MAX_TEXT_BYTES:
        raise _too_much(name)
    return text


def _kind(name: str, mime_type: str | None, data: bytes) -> Literal["text", "pdf", "other"]:
    suffix = PurePosixPath(name).suffix.lower()
    media = (mime_type or "").split(";")[0].strip().lower()
    if data.startswith(b"%PDF-") or suffix == ".pdf" or media in PDF_TYPES:
        return "pdf"
    if suffix in TEXT_SUFFIXES or media.startswith("text/") or media in TEXT_TYPES:
        return "text"
    if media.startswith("application/") and media.endswith(("+json", "+xml")):
        return "text"
    return "other"


def _decoded(name: str, data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as error:
                raise Unreadable("encoding", f"{name!r} is not valid {encoding} after its byte-order mark") from error
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise Unreadable("kind", f"{name!r} holds binary data, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _detected(name, data)


def _detected(name: str, data: bytes) -> str:
    try:
        import charset_normalizer
    except ImportError:
        raise Unreadable("encoding", f"{name!r} is not UTF-8 and no encoding detector is installed") from None
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise Unreadable("encoding", f"{name!r} is in an encoding that was not recognised")
    return str(best)


def _pdf_text(name: str, data: bytes) -> str:
    from pypdf import PdfReader  # here: a tenth of a second of the bot's start-up, and most chats send no PDF

    # pypdf raises all kinds of errors on damaged input, not only its own PdfError: each means a broken file.
    try:
        reader = PdfReader(io.BytesIO(data))
        opened = not reader.is_encrypted or bool(reader.decrypt(""))
        pages = len(reader.pages) if opened else 0
    except Exception as error:
        raise Unreadable("broken", f"{name!r} is not a PDF that can be opened: {error}") from error
    if not opened:
        raise Unreadable("broken", f"{name!r} is a PDF locked with a password")
    if pages > MAX_PDF_PAGES:
        raise Unreadable("too_much", f"{name!r} has {pages} pages", limit=MAX_PDF_PAGES, unit="pages")
    texts: list[str] = []
    size = 0
    for number in range(pages):
        try:
            text = (reader.pages[number].extract_text() or "").rstrip()
        except Exception as error:
            raise Unreadable("broken", f"page {number + 1} of {name!r} cannot be read: {error}") from error
        if text.strip():
            size += _utf8_size(text) + 2 * bool(texts)
            texts.append(text)
            if size > MAX_TEXT_BYTES:
                raise _too_much(name)
    if not texts:
        raise Unreadable("no_text", f"{name!r} has no text layer (a scan?)")
    return "\n\n".join(texts)


def _too_much(name: str) -> Unreadable:
    return Unreadable(
        "too_much", f"{name!r} holds over {MAX_TEXT_BYTES} bytes of text", limit=MAX_TEXT_BYTES, unit="bytes"
    )


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))
