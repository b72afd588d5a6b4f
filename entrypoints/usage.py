"""Rendering `convo usage`: a rich table on a terminal, plain aligned text otherwise, or one JSON document."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from domain.prices import usd
from service.usage_report import UsageReport, UsageRow

COLUMNS = ("input tokens", "cached input", "output tokens", "images", "cost (USD)")


def report_json(report: UsageReport) -> dict[str, Any]:
    """The report as one JSON-compatible document; amounts are exact decimal strings in USD."""
    return {
        "by": report.by,
        "since": None if report.since is None else report.since.isoformat(),
        "until": None if report.until is None else report.until.isoformat(),
        "currency": "USD",
        "rows": [row_json(row) for row in report.rows],
        "total": row_json(report.total),
        "unpriced_models": list(report.unpriced),
    }


def render_report(report: UsageReport, console: Console, terminal: bool) -> None:
    """The rows and the total, as a table on a terminal, else as plain text; then a note of unpriced models."""
    rows = [(row.key, *row_cells(row)) for row in report.rows]
    total = ("total", *row_cells(report.total))
    if terminal:
        table = Table(title=_title(report), show_footer=True)
        table.add_column(report.by, footer=total[0])
        for index, name in enumerate(COLUMNS, start=1):
            table.add_column(name, justify="right", footer=total[index])
        for cells in rows:
            table.add_row(*cells)
        console.print(table)
    else:
        lines = [(report.by, *COLUMNS), *rows, total]
        widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
        print(_title(report))
        for line in lines:
            paired = zip(line, widths, strict=True)
            print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(paired)))
    if report.unpriced:
        print(f"no price for {', '.join(report.unpriced)}: counted at 0 (add them to CONVO_PRICES)")


def _title(report: UsageReport) -> str:
    since = report.since.isoformat() if report.since else "the start"
    until = report.until.isoformat() if report.until else "today"
    return f"usage by {report.by}, {since} to {until} (UTC)"


def row_cells(row: UsageRow) -> tuple[str, ...]:
    """A row's numbers as the table shows them (COLUMNS)."""
    return (
        str(row.input_tokens),
        str(row.cached_input_tokens),
        str(row.output_tokens),
        str(row.images),
        usd(row.cost),
    )


def row_json(row: UsageRow) -> dict[str, Any]:
    """A row as JSON: counts as numbers, the cost as an exact decimal string in USD."""
    return {
        "key": row.key,
        "input_tokens": row.input_tokens,
        "cached_input_tokens": row.cached_input_tokens,
        "output_tokens": row.output_tokens,
        "images": row.images,
        "cost_usd": usd(row.cost),
    }
