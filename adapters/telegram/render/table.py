"""GFM tables as aligned monospace text (Telegram has no tables; a ``<pre>`` block keeps the columns)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from markdown_it.tree import SyntaxTreeNode

_ZERO_WIDTH_CATEGORIES = frozenset({"Mn", "Me", "Cf"})


def plain_inline(nodes: Sequence[SyntaxTreeNode]) -> str:
    """The text of inline nodes without any formatting (breaks become spaces)."""
    parts: list[str] = []
    for node in nodes:
        if node.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif node.children:
            parts.append(plain_inline(node.children))
        else:
            parts.append(node.content)
    return "".join(parts)


def table_text(table: SyntaxTreeNode) -> str:
    """Lay a ``table`` node out as lines of padded cells, the header underlined."""
    rows, aligns = _rows_and_aligns(table)
    if not rows:
        return ""
    columns = max(len(row) for row in rows)
    rows = [row + [""] * (columns - len(row)) for row in rows]
    aligns += [""] * (columns - len(aligns))
    widths = [max(1, *(display_width(row[col]) for row in rows)) for col in range(columns)]
    lines = [_line(row, widths, aligns) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def display_width(text: str) -> int:
    """Monospace columns ``text`` takes: wide East Asian characters count 2, combining marks 0."""
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    """Columns one character takes in a monospace font."""
    if unicodedata.combining(char) or unicodedata.category(char) in _ZERO_WIDTH_CATEGORIES:
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _rows_and_aligns(table: SyntaxTreeNode) -> tuple[list[list[str]], list[str]]:
    """Cell texts per row (header first) and the alignment of each column of the first row."""
    rows: list[list[str]] = []
    aligns: list[str] = []
    for section in table.children:
        for row in section.children:
            cells = [plain_inline(_inline_children(cell)).strip() for cell in row.children]
            if not rows:
                aligns = [_alignment(cell) for cell in row.children]
            rows.append(cells)
    return rows, aligns


def _inline_children(cell: SyntaxTreeNode) -> list[SyntaxTreeNode]:
    """The inline nodes inside a table cell."""
    return [node for inline in cell.children for node in inline.children]


def _alignment(cell: SyntaxTreeNode) -> str:
    """``left``, ``right``, ``center`` or empty, from the cell's ``text-align`` style."""
    style = str(cell.attrs.get("style", ""))
    return style.removeprefix("text-align:") if style.startswith("text-align:") else ""


def _line(cells: Sequence[str], widths: Sequence[int], aligns: Sequence[str]) -> str:
    """One table row: cells padded to their column width and joined by `` | ``."""
    padded = (_pad(cell, width, align) for cell, width, align in zip(cells, widths, aligns, strict=True))
    return " | ".join(padded).rstrip()


def _pad(text: str, width: int, align: str) -> str:
    """Pad ``text`` with spaces to ``width`` columns, honouring the column alignment."""
    gap = width - display_width(text)
    if align == "right":
        return " " * gap + text
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap
