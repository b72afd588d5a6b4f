"""Rendering `convo stats`: rich tables on a terminal, plain aligned text otherwise, or one JSON document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from entrypoints.usage import COLUMNS, row_cells, row_json
from service.stats import Stats, UsageStats
from service.usage_report import UsageRow

SOURCES = {
    "ledger": "tokens and cost from the usage ledger (its projection holds every charge in the log)",
    "scan": "tokens and cost from a full scan of the log",
}


def stats_json(stats: Stats) -> dict[str, Any]:
    """The stats as one JSON-compatible document; amounts are exact decimal strings in USD."""
    latency = stats.latency
    usage = stats.usage
    return {
        "since": None if stats.since is None else stats.since.isoformat(),
        "streams": stats.streams,
        "active_users": stats.active_users,
        "questions": stats.questions,
        "image_requests": stats.image_requests,
        "answers": stats.answers,
        "pictures": stats.pictures,
        "failures": {"answers": dict(stats.answer_failures), "images": dict(stats.image_failures)},
        "answer_latency_ms": {"answers": latency.answers, "p50": latency.p50, "p95": latency.p95, "p99": latency.p99},
        "usage": {
            "source": usage.source,
            "currency": "USD",
            "by_model": [row_json(row) for row in usage.by_model],
            "by_day": [row_json(row) for row in usage.by_day],
            "total": row_json(usage.total),
            "unpriced_models": list(usage.unpriced),
        },
    }


def render_stats(stats: Stats, console: Console, terminal: bool) -> None:
    """The counts, then tokens and cost by model and by day, as tables on a terminal, else as plain text; then
    where tokens and cost were read from, and a note of unpriced models."""
    since = stats.since.isoformat() if stats.since else "the start"
    _table(f"stats since {since} (UTC)", ("", "count"), _counts(stats), None, console, terminal)
    usage = stats.usage
    for by, rows in (("model", usage.by_model), ("day", usage.by_day)):
        _table(f"tokens and cost by {by}", (by, *COLUMNS), _usage_rows(rows), _usage_total(usage), console, terminal)
    print(SOURCES[usage.source])
    if usage.unpriced:
        print(f"no price for {', '.join(usage.unpriced)}: counted at 0 (add them to CONVO_PRICES)")


def _counts(stats: Stats) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("streams", str(stats.streams)),
        ("active users", str(stats.active_users)),
        ("questions", str(stats.questions)),
        ("image requests", str(stats.image_requests)),
        ("answers", str(stats.answers)),
        ("pictures", str(stats.pictures)),
        ("failed answers", str(sum(count for _, count in stats.answer_failures))),
        *((f"failed answers: {kind}", str(count)) for kind, count in stats.answer_failures),
        ("failed pictures", str(sum(count for _, count in stats.image_failures))),
        *((f"failed pictures: {kind}", str(count)) for kind, count in stats.image_failures),
    ]
    latency = stats.latency
    for name, value in (("p50", latency.p50), ("p95", latency.p95), ("p99", latency.p99)):
        rows.append((f"answer latency {name} (ms)", "-" if value is None else str(value)))
    return rows


def _usage_rows(rows: Sequence[UsageRow]) -> list[tuple[str, ...]]:
    return [(row.key, *row_cells(row)) for row in rows]


def _usage_total(usage: UsageStats) -> tuple[str, ...]:
    return ("total", *row_cells(usage.total))


def _table(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    footer: Sequence[str] | None,
    console: Console,
    terminal: bool,
) -> None:
    """One table: rich on a terminal, else a title line and columns aligned with spaces (the first to the left)."""
    if terminal:
        table = Table(title=title, show_footer=footer is not None)
        for index, name in enumerate(header):
            table.add_column(name, justify="left" if index == 0 else "right", footer=footer[index] if footer else "")
        for cells in rows:
            table.add_row(*cells)
        console.print(table)
        return
    lines = [tuple(header), *(tuple(cells) for cells in rows), *([tuple(footer)] if footer else [])]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(title)
    for line in lines:
        aligned = (
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        print("  ".join(aligned).rstrip())
    print()
