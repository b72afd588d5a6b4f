"""Reading a sent document's text, and cutting it to a token budget."""

from __future__ import annotations

import io
import math
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter

from adapters import documents
from adapters.documents import MAX_TEXT_BYTES, Unreadable, read_text
from domain.prompt import estimate_tokens
from service.documents import fit_text
from tests.doubles.media_samples import pdf

RUSSIAN = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 20


def refusal(name: str, mime_type: str | None, data: bytes) -> Unreadable:
    with pytest.raises(Unreadable) as caught:
        read_text(name, mime_type, data)
    return caught.value


def pdf_of(*pages: bytes, password: str | None = None) -> bytes:
    """A PDF of the pages of the given one-page PDFs, locked with `password` when given."""
    writer = PdfWriter()
    for page in pages:
        writer.add_page(PdfReader(io.BytesIO(page)).pages[0])
    if password is not None:
        writer.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        RUSSIAN.encode("utf-8"),
        b"\xef\xbb\xbf" + RUSSIAN.encode("utf-8"),
        RUSSIAN.encode("utf-16"),
        RUSSIAN.encode("utf-16-be").join([b"\xfe\xff", b""]),
        RUSSIAN.encode("utf-32"),
    ],
    ids=["utf-8", "utf-8 with BOM", "utf-16 LE", "utf-16 BE", "utf-32"],
)
def test_text_is_decoded_from_utf8_or_a_byte_order_mark(data: bytes) -> None:
    assert read_text("notes.txt", "text/plain", data) == RUSSIAN.rstrip()


def test_text_in_another_encoding_is_detected() -> None:
    assert read_text("notes.txt", "text/plain", RUSSIAN.encode("cp1251")) == RUSSIAN.rstrip()


def test_text_in_another_encoding_is_refused_without_a_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "charset_normalizer", None)
    assert refusal("notes.txt", None, RUSSIAN.encode("cp1251")).reason == "encoding"


def test_bytes_that_break_their_byte_order_mark_are_refused() -> None:
    assert refusal("notes.txt", None, b"\xef\xbb\xbfok \xff\xfe").reason == "encoding"


@pytest.mark.parametrize(
    ("name", "mime_type"),
    [
        ("main.rs", None),
        ("app.ts", "video/mp2t"),
        ("Script.PY", "application/octet-stream"),
        ("notes", "text/plain"),
        ("page", "text/html; charset=utf-8"),
        ("data", "application/json"),
        ("graph", "application/ld+json"),
    ],
)
def test_source_code_and_text_types_are_read_by_name_or_type(name: str, mime_type: str | None) -> None:
    assert read_text(name, mime_type, b'fn main() { println!("hi"); }\n') == 'fn main() { println!("hi"); }'


def test_line_breaks_become_newlines_and_the_end_is_trimmed() -> None:
    assert read_text("a.md", None, b"  one\r\ntwo\rthree\n \t\n\n") == "  one\ntwo\nthree"


@pytest.mark.parametrize("data", [b"", b" \r\n\t\n", b"\xef\xbb\xbf"])
def test_a_file_without_text_is_refused(data: bytes) -> None:
    assert refusal("empty.txt", "text/plain", data).reason == "no_text"


def test_binary_data_posing_as_text_is_refused() -> None:
    assert refusal("secret.txt", "text/plain", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256))).reason == "kind"


@pytest.mark.parametrize(
    ("name", "mime_type", "data"),
    [
        (
            "report.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            b"PK\x03\x04\x14\x00",
        ),
        ("sheet.xlsx", None, b"PK\x03\x04\x14\x00"),
        ("photo.png", "image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
        ("tool.exe", "application/octet-stream", b"MZ\x90\x00"),
        ("noname", None, b"plain words"),
    ],
)
def test_other_kinds_of_file_are_refused(name: str, mime_type: str | None, data: bytes) -> None:
    refused = refusal(name, mime_type, data)
    assert (refused.reason, refused.limit) == ("kind", None)


def test_text_over_the_limit_is_refused_with_the_limit() -> None:
    assert read_text("big.txt", None, b"a" * MAX_TEXT_BYTES) == "a" * MAX_TEXT_BYTES
    refused = refusal("big.txt", None, b"a" * (MAX_TEXT_BYTES + 1))
    assert (refused.reason, refused.limit, refused.unit) == ("too_much", MAX_TEXT_BYTES, "bytes")
    assert str(MAX_TEXT_BYTES) in str(refused)


def test_the_limit_counts_bytes_of_utf8_not_characters() -> None:
    text = "я" * (MAX_TEXT_BYTES // 2 + 1)
    assert refusal("big.txt", None, text.encode("utf-16")).reason == "too_much"


@pytest.mark.parametrize(
    ("name", "mime_type"), [("paper.pdf", None), ("paper", "application/pdf"), ("paper.bin", None)]
)
def test_a_pdfs_text_layer_is_read(name: str, mime_type: str | None) -> None:
    assert read_text(name, mime_type, pdf("Hello from page one")) == "Hello from page one"


def test_a_pdfs_pages_are_joined_with_a_blank_line() -> None:
    document = pdf_of(pdf("First page"), blank_pdf(), pdf("Second page"))
    assert read_text("paper.pdf", "application/pdf", document) == "First page\n\nSecond page"


def test_a_pdf_without_a_text_layer_is_refused() -> None:
    assert refusal("scan.pdf", "application/pdf", blank_pdf()).reason == "no_text"


@pytest.mark.parametrize("data", [b"this is not a PDF at all", b"%PDF-1.4\n garbage", bytes(range(256)) * 4])
def test_a_broken_pdf_is_refused(data: bytes) -> None:
    assert refusal("paper.pdf", "application/pdf", data).reason == "broken"


def test_a_pdf_locked_with_a_password_is_refused_and_one_with_an_empty_password_read() -> None:
    assert refusal("locked.pdf", None, pdf_of(pdf("Secret"), password="secret")).reason == "broken"
    assert read_text("open.pdf", None, pdf_of(pdf("Open"), password="")) == "Open"


def test_a_pdf_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "MAX_TEXT_BYTES", 20)
    document = pdf_of(pdf("Twelve chars"), pdf("Twelve chars"))
    refused = refusal("long.pdf", None, document)
    assert (refused.reason, refused.limit, refused.unit) == ("too_much", 20, "bytes")


def test_a_pdf_with_too_many_pages_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "MAX_PDF_PAGES", 1)
    refused = refusal("long.pdf", None, pdf_of(pdf("One"), pdf("Two")))
    assert (refused.reason, refused.limit, refused.unit) == ("too_much", 1, "pages")


texts = st.text(alphabet=st.sampled_from("ab cd\nёж😀1.")) | st.text()


@given(texts, st.integers(min_value=-3, max_value=300))
def test_fit_text_keeps_the_longest_prefix_that_fits(text: str, tokens: int) -> None:
    kept, dropped = fit_text(text, tokens, estimate_tokens)
    assert text.startswith(kept)
    assert dropped == len(text) - len(kept)
    assert estimate_tokens(kept) <= max(tokens, 0)
    if tokens > 0 and estimate_tokens(text) <= tokens:
        assert (kept, dropped) == (text, 0)


def utf16_units(text: str) -> str:
    """The text with each character beyond the BMP written as a surrogate pair."""
    data = text.encode("utf-16-le")
    return "".join(chr(int.from_bytes(data[at : at + 2], "little")) for at in range(0, len(data), 2))


@given(st.text(alphabet=st.sampled_from("a b😀🎉")).map(utf16_units), st.integers(min_value=1, max_value=40))
def test_fit_text_never_cuts_a_surrogate_pair(text: str, tokens: int) -> None:
    kept, _ = fit_text(text, tokens, len)
    assert len(kept) <= tokens
    assert not kept.endswith(tuple(map(chr, range(0xD800, 0xDC00))))


@given(st.text(min_size=1, max_size=5000))
def test_fit_text_counts_a_logarithmic_number_of_times(text: str) -> None:
    calls = []

    def count(part: str) -> int:
        calls.append(part)
        return len(part)

    fit_text(text, len(text) // 3, count)
    assert len(calls) <= math.ceil(math.log2(len(text) + 1)) + 3


def test_fit_text_cuts_at_a_line_break_or_space_near_the_end() -> None:
    text = "first line\n" + "word " * 30
    assert fit_text(text, 100, len) == ("first line\n" + "word " * 17 + "word", len(text) - 100)
    assert fit_text("x" * 95 + "\n" + "y" * 50, 100, len) == ("x" * 95, 51)
    assert fit_text("x" * 80 + "\n" + "y" * 50, 100, len) == ("x" * 80 + "\n" + "y" * 19, 31)


def test_fit_text_with_no_budget_keeps_nothing() -> None:
    assert fit_text("anything", 0, len) == ("", 8)
    assert fit_text("", 10, len) == ("", 0)
