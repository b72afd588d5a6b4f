"""Markdown, as models write it, to Telegram's HTML subset, walking markdown-it-py's syntax tree.

Every piece of text is escaped; tags are only ever emitted in pairs by the functions below, and they follow
Telegram's nesting rules: nothing inside ``<code>``/``<pre>`` (except ``<pre><code class>``), no ``<code>`` or
link inside a link, no blockquote inside a blockquote, no style tag reopened inside itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

import attrs
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from .markup import escape_attribute, escape_text, scrub
from .table import plain_inline, table_text

LINK_SCHEMES = frozenset({"http", "https", "tg", "mailto"})
BULLET = "• "
RULE = "———"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.\-]{1,32}")
_HTML_TOKEN = re.compile(r"<[^>]*>|[^<]+")
_STYLE_TAGS = {"strong": "b", "em": "i", "s": "s"}


@attrs.frozen
class _Context:
    """What encloses the node being rendered, so that no forbidden nesting is produced."""

    styles: frozenset[str] = frozenset()
    """Style tags (``b``, ``i``, ``s``) already open."""
    in_link: bool = False
    """Inside ``<a>``: no nested links, no ``<code>``."""
    in_quote: bool = False
    """Inside ``<blockquote>``: Telegram cannot nest blockquotes."""


_Renderer = Callable[[SyntaxTreeNode, _Context], str]


def markdown_to_telegram_html(text: str) -> str:
    """Render Markdown as Telegram HTML (``parse_mode=HTML``); valid for any input string."""
    root = SyntaxTreeNode(_parser().parse(scrub(text)))
    return _blocks(root.children, _Context(), "\n\n")


def plain_fallback(markdown: str) -> str:
    """What to send without ``parse_mode`` when Telegram rejects the HTML: the model's text as is.

    Only lone surrogates are replaced, because no Telegram request can carry them.
    """
    return scrub(markdown)


@functools.cache
def _parser() -> MarkdownIt:
    """CommonMark with GFM tables and strikethrough; raw HTML disabled, so it stays literal text."""
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


# -- blocks


def _blocks(nodes: Sequence[SyntaxTreeNode], ctx: _Context, separator: str) -> str:
    """Render block nodes and join the non-empty ones with ``separator``."""
    rendered = (_block(node, ctx) for node in nodes)
    return separator.join(part for part in rendered if part)


def _block(node: SyntaxTreeNode, ctx: _Context) -> str:
    """Render one block node (unknown kinds: their children, or their content as text)."""
    renderer = _BLOCK_RENDERERS.get(node.type)
    if renderer is not None:
        return renderer(node, ctx)
    if node.children:
        return _blocks(node.children, ctx, "\n\n")
    return escape_text(node.content.strip("\n"))


def _paragraph(node: SyntaxTreeNode, ctx: _Context) -> str:
    """A paragraph: its inline content."""
    return _inline_content(node, ctx)


def _heading(node: SyntaxTreeNode, ctx: _Context) -> str:
    """A heading of any level: bold text."""
    return _styled("b", _inline_nodes(node), ctx)


def _fence(node: SyntaxTreeNode, ctx: _Context) -> str:
    """A fenced or indented code block: ``<pre>``, with the language class when one is given."""
    return code_block(node.content, node.info)


def _rule(node: SyntaxTreeNode, ctx: _Context) -> str:
    """A thematic break: a short line of dashes."""
    return RULE


def _quote(node: SyntaxTreeNode, ctx: _Context) -> str:
    """A blockquote; a quote inside a quote is flattened into its parent."""
    if ctx.in_quote:
        return _blocks(node.children, ctx, "\n\n")
    return _wrap("blockquote", _blocks(node.children, attrs.evolve(ctx, in_quote=True), "\n\n"))


def _table(node: SyntaxTreeNode, ctx: _Context) -> str:
    """A table: aligned monospace text in ``<pre>``."""
    return _wrap("pre", escape_text(table_text(node)))


def _list(node: SyntaxTreeNode, ctx: _Context) -> str:
    """A bullet or ordered list: one item per line, nested content indented under its marker."""
    first = int(node.attrs.get("start", 1))
    ordered = node.type == "ordered_list"
    items = (
        _list_item(item, f"{first + index}. " if ordered else BULLET, ctx) for index, item in enumerate(node.children)
    )
    return "\n".join(items)


def _list_item(item: SyntaxTreeNode, marker: str, ctx: _Context) -> str:
    """One list item: the marker, then its blocks, continuation lines indented to the marker's width."""
    body = _blocks(item.children, ctx, "\n")
    if not body:
        return marker.rstrip()
    return marker + indent_lines(body, " " * len(marker))


def code_block(code: str, info: str) -> str:
    """``<pre>`` (or ``<pre><code class="language-x">``) holding ``code`` escaped; empty for blank code."""
    code = code.rstrip("\n")
    if not code.strip():
        return ""
    language = _language(info)
    if language is None:
        return f"<pre>{escape_text(code)}</pre>"
    return f'<pre><code class="language-{escape_attribute(language)}">{escape_text(code)}</code></pre>'


def indent_lines(html: str, indent: str) -> str:
    """Insert ``indent`` after every line break of ``html`` that is not inside a ``<pre>`` block."""
    out: list[str] = []
    pre_depth = 0
    for token in _HTML_TOKEN.findall(html):
        if token.startswith("<"):
            pre_depth += _pre_step(token)
            out.append(token)
        else:
            out.append(token if pre_depth else token.replace("\n", "\n" + indent))
    return "".join(out)


def _pre_step(tag: str) -> int:
    """+1 for ``<pre>``, -1 for ``</pre>``, 0 for any other tag."""
    if tag == "</pre>":
        return -1
    return 1 if tag == "<pre>" else 0


def _language(info: str) -> str | None:
    """The code language named by a fence's info string, if it is a plausible language name."""
    words = info.split()
    if words and _LANGUAGE.fullmatch(words[0]):
        return words[0]
    return None


# -- inline


def _inline_nodes(node: SyntaxTreeNode) -> list[SyntaxTreeNode]:
    """The inline nodes held by a block (a paragraph or heading has one ``inline`` child)."""
    return [child for inline in node.children for child in inline.children]


def _inline_content(node: SyntaxTreeNode, ctx: _Context) -> str:
    """Render the inline content of a block node."""
    return _inlines(_inline_nodes(node), ctx)


def _inlines(nodes: Sequence[SyntaxTreeNode], ctx: _Context) -> str:
    """Render a run of inline nodes."""
    return "".join(_inline(node, ctx) for node in nodes)


def _inline(node: SyntaxTreeNode, ctx: _Context) -> str:
    """Render one inline node (unknown kinds: their children, or their content as text)."""
    if node.type in ("softbreak", "hardbreak"):
        return "\n"
    if node.type in _STYLE_TAGS:
        return _styled(_STYLE_TAGS[node.type], node.children, ctx)
    renderer = _INLINE_RENDERERS.get(node.type)
    if renderer is not None:
        return renderer(node, ctx)
    if node.children:
        return _inlines(node.children, ctx)
    return escape_text(node.content)


def _styled(tag: str, children: Sequence[SyntaxTreeNode], ctx: _Context) -> str:
    """Wrap rendered children in a style tag, unless that style is already open."""
    if tag in ctx.styles:
        return _inlines(children, ctx)
    return _wrap(tag, _inlines(children, attrs.evolve(ctx, styles=ctx.styles | {tag})))


def _code_span(node: SyntaxTreeNode, ctx: _Context) -> str:
    """Inline code; plain text inside a link, where Telegram allows no ``<code>``."""
    text = escape_text(node.content)
    return text if ctx.in_link else _wrap("code", text)


def _link(node: SyntaxTreeNode, ctx: _Context) -> str:
    """A link with an allowed scheme; otherwise (or inside another link) just its text."""
    href = str(node.attrs.get("href", ""))
    label = _inlines(node.children, attrs.evolve(ctx, in_link=True))
    if ctx.in_link or not allowed_url(href):
        return label or escape_text(href)
    return _anchor(href, label or escape_text(href))


def _image(node: SyntaxTreeNode, ctx: _Context) -> str:
    """An image becomes a link to it, labelled with its alt text."""
    src = str(node.attrs.get("src", ""))
    alt = escape_text(plain_inline(node.children))
    if ctx.in_link or not allowed_url(src):
        return alt
    return _anchor(src, alt or "image")


def allowed_url(url: str) -> bool:
    """True when ``url`` has a scheme Telegram links may use here (http, https, tg, mailto)."""
    match = _SCHEME.match(url)
    return match is not None and match.group(1).lower() in LINK_SCHEMES


def _anchor(href: str, label: str) -> str:
    """``<a href="...">label</a>`` with the address escaped for the attribute."""
    return f'<a href="{escape_attribute(href)}">{label}</a>'


def _wrap(tag: str, inner: str) -> str:
    """``<tag>inner</tag>``, or nothing when ``inner`` is empty (Telegram drops empty entities)."""
    return f"<{tag}>{inner}</{tag}>" if inner else ""


_BLOCK_RENDERERS: dict[str, _Renderer] = {
    "paragraph": _paragraph,
    "heading": _heading,
    "fence": _fence,
    "code_block": _fence,
    "hr": _rule,
    "blockquote": _quote,
    "table": _table,
    "bullet_list": _list,
    "ordered_list": _list,
}
_INLINE_RENDERERS: dict[str, _Renderer] = {
    "code_inline": _code_span,
    "link": _link,
    "image": _image,
}
