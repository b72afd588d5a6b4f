"""Markdown to Telegram HTML and splitting to Telegram's limit: examples per construct, and properties.

Every output is checked twice: by ``TelegramHtml`` below (``html.parser`` plus Telegram's tag, entity and
nesting rules) and by the fake Telegram server's parser, which mirrors the Bot API's error behaviour.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.telegram.render import (
    escape_attribute,
    escape_text,
    markdown_to_telegram_html,
    plain_fallback,
    split_html,
    split_message,
    utf16_len,
    visible_text,
)
from tests.doubles.telegram import parse_html

ALLOWED_TAGS = frozenset({"b", "i", "s", "u", "tg-spoiler", "a", "code", "pre", "blockquote"})
STYLE_TAGS = frozenset({"b", "i", "s", "u", "tg-spoiler"})
ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
LINK_SCHEMES = ("http:", "https:", "tg:", "mailto:")
LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.\-]+")


# -- the validator


class TelegramHtml(HTMLParser):
    """Parse HTML and fail on anything Telegram would reject or mis-nest; collects the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.chunks: list[str] = []
        self.pre_texts: list[str] = []
        self.pre_start = 0
        self.fresh_pre = False

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def handle_starttag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED_TAGS, f"tag <{tag}> is not allowed"
        assert "code" not in self.stack, f"<{tag}> inside <code>"
        assert "pre" not in self.stack or (tag == "code" and self.fresh_pre), f"<{tag}> inside <pre>"
        assert tag not in self.stack or tag not in STYLE_TAGS | {"a", "blockquote"}, f"<{tag}> inside itself"
        if tag in ("pre", "blockquote"):
            assert set(self.stack) <= {"blockquote"}, f"block <{tag}> inside {self.stack}"
        if tag == "code":
            assert "a" not in self.stack, "<code> inside a link"
        self.check_attributes(tag, dict(attrs_))
        self.fresh_pre = tag == "pre"
        if tag == "pre":
            self.pre_start = len(self.text)
        self.stack.append(tag)

    def check_attributes(self, tag: str, attributes: dict[str, str | None]) -> None:
        if tag == "a":
            assert list(attributes) == ["href"], attributes
            assert (attributes["href"] or "").lower().startswith(LINK_SCHEMES), attributes
        elif tag == "code" and self.stack[-1:] == ["pre"] and attributes:
            assert list(attributes) == ["class"], attributes
            assert LANGUAGE_CLASS.fullmatch(attributes["class"] or ""), attributes
        else:
            assert not attributes, f"<{tag}> with attributes {attributes}"

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1]}>"
        self.stack.pop()
        self.fresh_pre = False
        if tag == "pre":
            self.pre_texts.append(self.text[self.pre_start :])

    def handle_startendtag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        raise AssertionError(f"self-closing <{tag}/>")

    def handle_data(self, data: str) -> None:
        assert not set(data) & set("<>&"), f"unescaped text {data!r}"
        self.fresh_pre = False
        self.chunks.append(data)

    def handle_entityref(self, name: str) -> None:
        assert name in ENTITIES, f"entity &{name}; is not supported"
        self.fresh_pre = False
        self.chunks.append(ENTITIES[name])

    def handle_charref(self, name: str) -> None:
        raise AssertionError(f"numeric entity &#{name}; (never produced)")

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        raise AssertionError(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        raise AssertionError(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        raise AssertionError(f"declaration {data!r}")


def check_html(html: str) -> TelegramHtml:
    """Validate ``html`` as Telegram HTML; the fake server and ``visible_text`` must agree on its text."""
    checker = TelegramHtml()
    checker.feed(html)
    checker.close()
    assert not checker.stack, f"unclosed {checker.stack}"
    assert parse_html(html).text == checker.text
    assert visible_text(html) == checker.text
    return checker


def assert_parts_cover(whole: str, pieces: list[str]) -> list[int]:
    """The pieces appear in order in ``whole``, separated by nothing but whitespace; returns where each ends."""
    pos = 0
    ends = []
    for piece in pieces:
        run_end = pos
        while run_end < len(whole) and whole[run_end].isspace():
            run_end += 1
        found = next((index for index in range(pos, run_end + 1) if whole.startswith(piece, index)), None)
        assert found is not None, f"{piece[:40]!r} does not follow {whole[max(0, pos - 20) : pos]!r}"
        pos = found + len(piece)
        ends.append(pos)
    assert not whole[pos:].strip(), f"lost the tail {whole[pos:][:40]!r}"
    return ends


def check_parts(whole_visible: str, parts: list[str], limit: int, *, html: bool) -> list[TelegramHtml]:
    """Every part is valid, non-blank and within ``limit``; together they hold all the visible text."""
    checked = [check_html(part) if html else None for part in parts]
    texts = [checker.text if checker else part for checker, part in zip(checked, parts, strict=True)]
    for text in texts:
        assert text.strip(), "blank part"
        assert utf16_len(text) <= limit
    assert_parts_cover(whole_visible, texts)
    return [checker for checker in checked if checker]


def render(markdown: str) -> str:
    """Render and validate."""
    html = markdown_to_telegram_html(markdown)
    check_html(html)
    return html


# -- strategies

plain_words = st.builds(
    "{}{}".format, st.sampled_from("abcXYZé中😀"), st.text(alphabet="abcXYZ019<>&\"'é中😀", max_size=7)
)
"""Words with no Markdown meaning (but HTML-special and astral characters), each starting with a letter."""

plain_texts = st.lists(
    st.lists(st.lists(plain_words, min_size=1, max_size=6).map(" ".join), min_size=1, max_size=3).map("\n".join),
    min_size=1,
    max_size=4,
).map("\n\n".join)
"""Paragraphs of such words: their rendering shows them verbatim."""

fragments = st.sampled_from(
    [
        *["# ", "## ", "- ", "  - ", "    - ", "* ", "1. ", "3) ", "> ", "> > ", "```", "```py", "~~~", "    "],
        *["| a | b |", "|---|:-:|", "|--:|", "**", "*", "_", "__", "~~", "`", "``", "[", "](", ")", "![", "]"],
        *["\\", "<", ">", "&", "&amp;", "&#123;", "&nbsp;", "<script>", "</b>", "<b>", "<!-- x -->", '"', "'"],
        *['http://x.io/?a="1"&b=<2>', "javascript:alert(1)", "tg://user?id=1", "mailto:a@b.io", "ftp://x"],
        *["<a@b.io>", "<https://t.me>", "---", "  ", "\t", "😀", "👍🏽", "👨\u200d👩\u200d👧", "中文", "e\u0301"],
        *[".", "! ", "? ", "\u00a0", "[<https://t.me>](https://x.io)", "[`a`](tg://x)"],
    ]
)
"""Pieces of Markdown syntax and awkward characters."""

markdown_lines = st.lists(st.one_of(fragments, plain_words, st.just(" ")), max_size=12).map("".join)
"""One line of syntax-heavy Markdown."""

markdownish = st.lists(markdown_lines, max_size=40).map("\n".join)
"""Syntax-heavy Markdown documents."""

markdown_texts = st.one_of(st.text(), markdownish)
"""Anything a model could answer: arbitrary text or syntax-heavy Markdown."""

inline_kinds = st.sampled_from(["plain", "**", "*", "~~", "`", "link", "image"])
"""The inline constructs the structured strategy combines."""

limits = st.integers(min_value=2, max_value=120)
"""Small limits, so that short generated texts need many cuts."""


def inline_markdown(kind: str, word: str) -> str:
    """``word`` written as the inline construct ``kind``."""
    if kind == "link":
        return f"[{word}](https://example.org/{len(word)})"
    if kind == "image":
        return f"![{word}](https://example.org/{len(word)}.png)"
    return word if kind == "plain" else f"{kind}{word}{kind}"


# -- rendering: examples


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("# Title", "<b>Title</b>"),
        ("### Deep *title*", "<b>Deep <i>title</i></b>"),
        ("## **Bold** heading", "<b>Bold heading</b>"),
        ("**bold** *italic* _it_ ~~gone~~", "<b>bold</b> <i>italic</i> <i>it</i> <s>gone</s>"),
        ("***both***", "<i><b>both</b></i>"),
        ("`a < b && c > d`", "<code>a &lt; b &amp;&amp; c &gt; d</code>"),
        ("one\ntwo  \nthree", "one\ntwo\nthree"),
        ("first\n\n\n\nsecond", "first\n\nsecond"),
        ('a & b < c > d "q"', 'a &amp; b &lt; c &gt; d "q"'),
        ("&amp; &lt; &nbsp; &#65;", "&amp; &lt; \u00a0 A"),
        ("---", "———"),
        ("", ""),
        ("   \n\n  ", ""),
    ],
)
def test_inline_and_simple_blocks(markdown, html):
    assert render(markdown) == html


def test_fenced_code_keeps_its_text_escaped_and_its_language():
    markdown = '```python\nif a < b and c > d & "e":\n    pass\n```'
    assert render(markdown) == (
        '<pre><code class="language-python">if a &lt; b and c &gt; d &amp; "e":\n    pass</code></pre>'
    )


@pytest.mark.parametrize(
    ("info", "opening"),
    [
        ("", "<pre>"),
        ("c++", '<pre><code class="language-c++">'),
        ("py {linenos=true}", '<pre><code class="language-py">'),
        ('"><script>', "<pre>"),
    ],
)
def test_code_languages_are_taken_only_when_plausible(info, opening):
    assert render(f"```{info}\nx\n```").startswith(opening)


def test_indented_code_is_a_pre_block():
    assert render("text\n\n    <tag> & code\n") == "text\n\n<pre>&lt;tag&gt; &amp; code</pre>"


def test_links_keep_allowed_schemes_and_escape_their_address():
    html = render('[a "quoted" <label>](https://example.org/?q="x"&y=<1>) [me](tg://user?id=42) <mail@example.org>')
    assert html == (
        '<a href="https://example.org/?q=%22x%22&amp;y=%3C1%3E">a "quoted" &lt;label&gt;</a> '
        '<a href="tg://user?id=42">me</a> <a href="mailto:mail@example.org">mail@example.org</a>'
    )


@pytest.mark.parametrize(
    ("markdown", "visible"),
    [
        ("[click](javascript:alert(1))", "[click](javascript:alert(1))"),
        ("[click](ftp://example.org/file)", "click"),
        ("[click](/relative/path)", "click"),
        ("[click](data:text/html;base64,AAAA)", "[click](data:text/html;base64,AAAA)"),
        ("[](ftp://example.org)", "ftp://example.org"),
    ],
)
def test_links_with_other_schemes_are_plain_text(markdown, visible):
    html = render(markdown)
    assert "<a" not in html
    assert visible_text(html) == visible


def test_an_empty_link_label_shows_the_address():
    assert render("[](https://example.org)") == '<a href="https://example.org">https://example.org</a>'


def test_an_autolink_inside_a_link_is_not_a_second_link():
    assert render("[<https://a.io> or <me@a.io>](https://c.io)") == '<a href="https://c.io">https://a.io or me@a.io</a>'


def test_attribute_values_escape_quotes():
    assert escape_attribute('x" onclick="<&>') == "x&quot; onclick=&quot;&lt;&amp;&gt;"
    assert escape_text('"<&>') == '"&lt;&amp;&gt;'


def test_code_inside_a_link_loses_its_code_tag():
    assert render("[`x<y`](https://example.org)") == '<a href="https://example.org">x&lt;y</a>'


def test_images_become_links_and_images_in_links_their_alt_text():
    assert render("![a cat](https://example.org/cat.png)") == '<a href="https://example.org/cat.png">a cat</a>'
    assert render("![](https://example.org/cat.png)") == '<a href="https://example.org/cat.png">image</a>'
    assert render("[![cat](https://x.org/c.png)](https://x.org)") == '<a href="https://x.org">cat</a>'


def test_raw_html_is_shown_literally():
    markdown = "<script>alert('x')</script>\n\nHello <b onclick=\"x\">there</b> <!-- c -->"
    html = render(markdown)
    assert "<script" not in html
    assert "<b " not in html
    assert visible_text(html) == "<script>alert('x')</script>\n\nHello <b onclick=\"x\">there</b> <!-- c -->"


def test_nested_lists_are_indented_under_their_markers():
    markdown = "- one\n- two\n  - two.a **bold**\n    continued\n  - two.b\n    1. deep\n    2. deeper\n- three"
    assert render(markdown) == (
        "• one\n• two\n  • two.a <b>bold</b>\n    continued\n  • two.b\n    1. deep\n    2. deeper\n• three"
    )


def test_ordered_lists_keep_their_start_number():
    assert render("3. three\n4. four\n\n-\n") == "3. three\n4. four\n\n•"


def test_code_in_a_list_item_is_not_indented():
    assert render("- run:\n\n  ```sh\n  a\n    b\n  ```") == (
        '• run:\n  <pre><code class="language-sh">a\n  b</code></pre>'
    )


def test_blockquotes_render_and_nested_ones_are_flattened():
    assert render("> quoted **text**\n>\n> > inner\n\nafter") == (
        "<blockquote>quoted <b>text</b>\n\ninner</blockquote>\n\nafter"
    )


def test_tables_become_aligned_monospace_text():
    markdown = "| Name | Qty | Note |\n|:--|--:|:-:|\n| apple | 3 | <ok> |\n| **kiwi** | 12 | x |"
    assert render(markdown) == (
        "<pre>Name  | Qty | Note\n------+-----+-----\napple |   3 | &lt;ok&gt;\nkiwi  |  12 |  x</pre>"
    )


def test_lone_surrogates_are_replaced():
    assert render("a\ud800b") == "a\ufffdb"
    assert plain_fallback("**a**\udfff") == "**a**\ufffd"


def test_plain_fallback_is_the_text_as_is():
    text = "# Title\n\n**bold** <b>not html</b> & [link](https://x.org)"
    assert plain_fallback(text) == text


# -- rendering: properties


@given(markdown_texts)
def test_any_text_renders_to_valid_telegram_html(markdown):
    render(markdown)


@given(plain_texts)
def test_text_without_markdown_is_shown_verbatim(text):
    assert visible_text(render(text)) == text


@given(st.lists(st.tuples(inline_kinds, plain_words.filter(lambda word: word.strip("*_~`"))), min_size=1))
def test_inline_constructs_keep_their_words(segments):
    markdown = " ".join(inline_markdown(kind, word) for kind, word in segments)
    assert visible_text(render(markdown)) == " ".join(word for _, word in segments)


@given(st.text(st.characters(exclude_characters="`\r\0", exclude_categories=["Cs"])), st.sampled_from(["", "py"]))
def test_fenced_code_keeps_its_exact_text(code, language):
    html = render(f"```{language}\n{code}\n```")
    expected = code.rstrip("\n")
    assert visible_text(html) == (expected if expected.strip() else "")


# -- measuring


@pytest.mark.parametrize(
    ("text", "units"), [("", 0), ("abc", 3), ("é", 1), ("中文", 2), ("😀", 2), ("👍🏽", 4), ("a😀b", 4)]
)
def test_utf16_len_counts_code_units(text, units):
    assert utf16_len(text) == units


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<b>a</b> &lt;&gt;&amp;&quot;", 'a <>&"'),
        ('<a href="https://x.org/?a=1&amp;b=2">link</a>', "link"),
        ("&#128512; &#x41; &nbsp; & AT&T", "😀 A &nbsp; & AT&T"),
        ('<pre><code class="language-py">x</code></pre>', "x"),
    ],
)
def test_visible_text_decodes_like_telegram(html, text):
    assert visible_text(html) == text


# -- splitting: examples


def test_short_answers_are_one_part():
    assert split_message("hello") == ["hello"]
    assert split_html("<b>hello</b>") == ["<b>hello</b>"]
    assert split_message(" \n ") == []
    assert split_html("<b> </b>") == []


def test_limits_below_two_units_are_rejected():
    with pytest.raises(ValueError, match="at least 2"):
        split_message("abc", 1)
    with pytest.raises(ValueError, match="at least 2"):
        split_html("abc", 0)


def test_a_5000_character_answer_splits_at_a_paragraph():
    paragraphs = [f"Paragraph {n}: " + "word " * 95 + "end." for n in range(10)]
    html = render("\n\n".join(f"**{p[:9]}**{p[9:]}" for p in paragraphs))
    assert 4500 < len(visible_text(html)) < 5500
    parts = split_html(html)
    check_parts(visible_text(html), parts, 4096, html=True)
    assert len(parts) == 2
    assert visible_text(parts[0]).endswith("end.")
    assert parts[1].startswith("<b>Paragraph</b>")


def test_plain_text_splits_at_lines_then_sentences_then_words():
    assert split_message("first line\nsecond line", 15) == ["first line", "second line"]
    assert split_message("One two three. Four five.", 18) == ["One two three.", "Four five."]
    assert split_message("alpha beta gamma", 12) == ["alpha beta", "gamma"]
    assert split_message("abcdefghij", 4) == ["abcd", "efgh", "ij"]


def test_a_9000_character_code_block_is_split_into_valid_blocks():
    lines = [f"    value_{n:04d} = compute({n}) < limit & flag" for n in range(220)]
    code = "\n".join(lines)
    assert len(code) > 9000
    html = render(f"Here:\n\n```python\n{code}\n```\n\nDone.")
    parts = split_html(html)
    checkers = check_parts(visible_text(html), parts, 4096, html=True)
    assert len(parts) == 3
    opening = '<pre><code class="language-python">'
    assert all(opening in part and "</code></pre>" in part for part in parts)
    pieces = [text for checker in checkers for text in checker.pre_texts]
    assert [line for piece in pieces for line in piece.split("\n")] == lines  # no line cut, indentation kept


def test_a_code_block_that_fits_moves_whole_to_the_next_part():
    code = "\n".join(f"line {n}" for n in range(300))
    html = render("intro " * 300 + f"\n\n```\n{code}\n```")
    parts = split_html(html)
    check_parts(visible_text(html), parts, 4096, html=True)
    assert parts == [render("intro " * 300), f"<pre>{code}</pre>"]


def test_formatting_open_at_a_cut_is_closed_and_reopened():
    html = render("**" + " ".join(["bold words"] * 10) + "**")
    parts = split_html(html, 40)
    check_parts(visible_text(html), parts, 40, html=True)
    assert all(part.startswith("<b>") and part.endswith("</b>") for part in parts)


def test_astral_characters_count_twice_near_the_limit():
    text = "a" * 4095 + "😀" + "b"
    assert utf16_len(text) == 4098
    assert split_message(text) == ["a" * 4095, "😀b"]
    emoji = "😀" * 2048 + " " + "😀"
    assert split_message(emoji) == ["😀" * 2048, "😀"]
    assert [utf16_len(part) for part in split_html(render("😀" * 3000))] == [4096, 1904]


def test_hard_cuts_keep_emoji_sequences_and_accents_whole():
    family = "👨\u200d👩\u200d👧"
    assert split_message("x" * 6 + family, 10) == ["x" * 6, family]
    assert split_message("abcde\u0301f", 5) == ["abcd", "e\u0301f"]


# -- splitting: properties


@given(markdownish, limits)
def test_html_parts_are_valid_within_the_limit_and_keep_all_text(markdown, limit):
    html = render(markdown)
    parts = split_html(html, limit)
    checkers = check_parts(visible_text(html), parts, limit, html=True)
    fitting = [pre.strip() for pre in check_html(html).pre_texts if pre.strip() and utf16_len(pre) <= limit]
    pieces = {pre.strip() for checker in checkers for pre in checker.pre_texts}
    assert set(fitting) <= pieces, "a code block that fits was split"


@given(st.one_of(st.text(), markdownish), limits)
def test_plain_parts_are_non_blank_within_the_limit_and_keep_all_text(text, limit):
    check_parts(text, split_message(text, limit), limit, html=False)


@given(plain_texts, st.integers(min_value=20, max_value=80))
def test_plain_parts_end_at_a_boundary_when_there_is_one(text, limit):
    parts = split_message(text, limit)
    for part, end in zip(parts[:-1], assert_parts_cover(text, parts), strict=False):
        assert text[end].isspace() or len(part.split()) == 1, f"cut inside a word after {part!r}"
