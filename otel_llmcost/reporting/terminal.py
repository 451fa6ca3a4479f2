"""Reports as terminal tables (rich), JSON or CSV, for the CLI.

Stored values are attacker-controlled (an attribute value comes from whoever called the
app), so nothing stored reaches a terminal as-is: :func:`safe` makes a rich ``Text``
(never parsed as markup, so ``[bold]`` or ``[link=...]`` shows as written) with control
characters as visible escapes, for every table cell, title and column and for error
messages that quote stored values or paths. JSON and CSV are data and
keep every value exactly: JSON escapes control characters itself, and CSV written to
a terminal (not to a pipe or file) gets its control characters made visible.
A CSV cell that starts with ``=``, ``+``, ``-`` or ``@`` is left as it is (a negative
number starts with ``-``; prefixing would change the data): see docs/cli.md.

``otel-llmcost report`` goes through :func:`emit_report`: a summary, then each report as a
table for people (headers, units and kinds from :mod:`.columns`) fitted to the console's
width (80 when piped): low-priority columns are left out (the caption names them), long
names are ellipsized and sentences wrapped at spaces, never inside a word. One section
asked for (``full``) keeps every column. JSON and CSV keep the raw values and the column
names; Markdown is the table for people as text.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from . import columns as kinds
from .reports import Report

FORMATS = ("table", "json", "csv")
REPORT_FORMATS = ("table", "json", "csv", "markdown")

# What a terminal would act on rather than show: C0 controls but newline and tab (ESC
# starts colour, cursor and OSC-8 link sequences, BEL, CR overwrites the line), DEL, C1
# controls (0x9b is an 8-bit ESC [), the line and paragraph separators, and the bidi
# overrides and isolates that reorder what is shown ("Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def visible_controls(text: str) -> str:
    """``text`` with each control character shown as its escape (``\\x1b``, ``\\u202e``)."""
    return _CONTROL.sub(_escape_code, text)


def _escape_code(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(value: Any) -> Text:
    """``value`` as text a terminal shows as it is: no markup, controls visible.

    A ``Text`` rather than an escaped markup string: rich's ``escape`` doubles a trailing
    backslash, so a value ending in one would be shown changed.
    """
    return Text(visible_controls(str(value)))


def plain(value: Any) -> Any:
    """A value as JSON/CSV can hold it."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def cell(value: Any) -> str:
    """A value as a table shows it (before :func:`safe`)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN: no data
            return "-"
        return f"{value:,.6f}" if abs(value) < 1 else f"{value:,.2f}"
    return str(plain(value))


def table(title: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]], caption: str = "") -> Table:
    out = Table(title=safe(title), caption=safe(caption) if caption else None, title_justify="left", show_lines=False)
    for column in columns:
        out.add_column(safe(column), overflow="fold")
    if not columns:  # a statement that returns nothing (``query --write``)
        out.add_column("result")
    for row in rows:
        out.add_row(*(safe(cell(v)) for v in row))
    if not rows:
        out.add_row(*(["(none)"] + [""] * (len(columns) - 1)))
    return out


def emit(reports: Sequence[Report], fmt: str, *, console: Console, stream: IO[str]) -> None:
    """Write ``reports`` as ``fmt`` (one of :data:`FORMATS`): tables to ``console``, data to ``stream``."""
    if fmt == "json":
        payload = [
            {
                "name": r.name,
                "title": r.title,
                "rows": [dict(zip(r.columns, map(plain, row), strict=True)) for row in r.rows],
            }
            for r in reports
        ]
        stream.write(json.dumps(payload, indent=2, default=str) + "\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for r in reports:
            writer.writerow(["report", *r.columns])
            for row in r.rows:
                writer.writerow([r.name, *map(plain, row)])
        text = buffer.getvalue()
        stream.write(visible_controls(text) if is_terminal(stream) else text)
    else:
        for r in reports:
            console.print(table(r.title, r.columns, r.rows, r.description))
            console.print()


def is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# --- otel-llmcost report -------------------------------------------------------------------

# A table's width beyond its columns' (rich, box.SIMPLE_HEAD, no edge): one divider and two
# padding spaces between neighbouring columns.
_GAP = 3
_TEXT_MIN = 18  # a name column narrower than this is ellipsized
_PROSE_MIN = 28  # a sentence column is wrapped at spaces to no less than this
_FULL_PROSE_MIN = 40


@dataclass
class _Column:
    name: str
    kind: str
    header: str
    cells: list[str]
    width: int = 0

    @property
    def prose(self) -> bool:
        return self.name in kinds.PROSE

    @property
    def natural(self) -> int:
        return max(cell_len(self.header), *(_longest_line(c) for c in self.cells), 1)

    def minimum(self, full: bool) -> int:
        header_word = max((cell_len(w) for w in self.header.split()), default=1)
        widest = max((_longest_line(c) for c in self.cells), default=1)
        if self.prose:
            return max(header_word, min(widest, _FULL_PROSE_MIN if full else _PROSE_MIN))
        if self.kind == "text":  # one line, ellipsized: the header must fit on it
            return max(cell_len(self.header), widest if full else min(widest, _TEXT_MIN))
        return max(header_word, widest)  # numbers are never cut; the header wraps at spaces


def _longest_line(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _fit(columns: list[_Column], width: int, *, full: bool) -> tuple[list[_Column], list[_Column]]:
    """The columns that fit in ``width`` with their widths set, and those left out."""
    kept = list(columns)
    hidden: list[_Column] = []

    def need(widths: Sequence[int]) -> int:
        return sum(widths) + _GAP * (len(widths) - 1)

    if need([c.natural for c in kept]) <= width:
        for c in kept:
            c.width = c.natural
        return kept, hidden
    while not full and len(kept) > 1 and need([c.minimum(full) for c in kept]) > width:
        lowest = min(range(len(kept)), key=lambda i: (kinds.priority(kept[i].name), -i))
        hidden.append(kept.pop(lowest))
    for c in kept:
        c.width = c.minimum(full)
    spare = width - need([c.width for c in kept])
    # Room left goes to names first (whole), then sentences (fewer lines), then headers (one line).
    for wanted in (lambda c: c.kind == "text" and not c.prose, lambda c: c.prose, lambda c: True):
        for c in kept:
            if spare <= 0:
                break
            if wanted(c):
                extra = min(spare, c.natural - c.width)
                c.width += extra
                spare -= extra
    return kept, hidden


def _report_columns(report: Report) -> list[_Column]:
    cells = [kinds.display_row(report.columns, row) for row in report.rows]
    return [
        _Column(name, kinds.kind(name), kinds.header(name), [row[i] for row in cells])
        for i, name in enumerate(report.columns)
    ]


def report_table(report: Report, width: int, *, full: bool = False) -> Table:
    """``report`` as a table for people that fits ``width`` (unless ``full`` keeps every column)."""
    kept, hidden = _fit(_report_columns(report), width, full=full)
    caption = report.description
    if hidden:
        names = ", ".join(c.header for c in hidden)
        more = f"otel-llmcost report {report.name}" if report.name else "a wider terminal"
        caption = f"{caption} Not shown at {width} columns: {names} (all of them: {more})."
    out = Table(
        title=safe(report.title),
        caption=safe(caption.strip()) if caption.strip() else None,
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title_style="bold",
        caption_style="dim",
    )
    for c in kept:
        numeric = c.kind in kinds.NUMERIC_KINDS
        out.add_column(
            safe(c.header),
            width=c.width,
            justify="right" if numeric else "left",
            no_wrap=c.kind == "text" and not c.prose,
            overflow="ellipsis",
        )
    for i in range(len(report.rows)):
        out.add_row(*(safe(c.cells[i]) for c in kept))
    if not report.rows:
        out.add_row(*(["(none)"] + [""] * (len(kept) - 1)))
    return out


def _window(hours: int) -> str:
    return f"last {hours // 24} days" if hours % 24 == 0 and hours >= 48 else f"last {hours} hours"


def summary_lines(summary: Mapping[str, Any], source: str) -> list[tuple[str, str]]:
    """The summary at the top of the report, as (label, text) pairs."""
    time = kinds.format_value
    lines = [("Database", source)]
    window = f"{_window(int(summary.get('SinceHours') or 0))}: {time('time', summary.get('WindowStart'))}"
    lines.append(("Window", f"{window} to {time('time', summary.get('WindowEnd'))} UTC"))
    calls = summary.get("Calls") or 0
    if not calls:
        lines.append(("Total spend", "no calls in this window"))
        return lines
    unpriced = summary.get("UnpricedCalls") or 0
    total = f"{kinds.money(summary.get('CostUsd') or 0.0)} over {calls:,} calls"
    if unpriced:
        total += f" (without the {unpriced:,} unpriced: their cost is unknown)"
    lines.append(("Total spend", total))
    lines.append(("Cache savings", kinds.format_value("money", summary.get("CacheSavingsUsd"))))
    lines.append(("Unpriced calls", f"{unpriced:,}" + (" (cost unknown, never $0)" if unpriced else "")))
    lines.append(("Open anomalies", f"{summary.get('OpenAnomalies') or 0:,}"))
    top = list(summary.get("TopEndpoints") or [])
    services = {service for service, _, _ in top}
    for n, (service, endpoint, cost) in enumerate(top):
        endpoint = endpoint or kinds.NOT_SET
        name = f"{service} {endpoint}" if len(services) > 1 else str(endpoint)
        lines.append(("Top endpoints" if n == 0 else "", f"{kinds.money(float(cost))}  {name}"))
    for n, (kind, key, saving) in enumerate(summary.get("TopOpportunities") or []):
        what = f"{str(kind).replace('_', ' ')}: {key}"
        lines.append(("Top savings" if n == 0 else "", f"{kinds.money(float(saving))}/month  {what}"))
    return lines


def _summary_table(summary: Mapping[str, Any], source: str) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.title = Text("LLM cost report", style="bold")
    grid.title_justify = "left"
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="ellipsis")
    for label, text in summary_lines(summary, source):
        grid.add_row(label, safe(text))
    return grid


PIPED_WIDTH = 80


def report_width(console: Console, environ: Mapping[str, str] = os.environ) -> int:
    """The width to fit the report to: the terminal's; piped or redirected (CI logs, ``| less``),
    ``$COLUMNS`` or :data:`PIPED_WIDTH` (rich would take the size of whatever terminal
    stdin or stderr is)."""
    if console.is_terminal:
        return console.width
    columns = environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPED_WIDTH


def emit_report(
    reports: Sequence[Report],
    fmt: str,
    *,
    console: Console,
    stream: IO[str],
    summary: Mapping[str, Any] | None = None,
    source: str = "",
    full: bool = False,
    width: int | None = None,
) -> None:
    """``otel-llmcost report``: ``reports`` as ``fmt`` (one of :data:`REPORT_FORMATS`).

    Tables (``table``) go to ``console`` at ``width`` (default :func:`report_width`), after ``summary`` (from
    :func:`.reports.summary`, if given); ``full``: every column, however wide. JSON, CSV and
    Markdown go to ``stream``; CSV has a ``report`` column only when there are several reports.
    """
    if fmt == "json":
        stream.write(json.dumps([_json_report(r) for r in reports], indent=2, default=str) + "\n")
    elif fmt == "csv":
        text = report_csv(reports)
        stream.write(visible_controls(text) if is_terminal(stream) else text)
    elif fmt == "markdown":
        stream.write(visible_controls(markdown(reports, summary=summary, source=source)))
    else:
        fit = width or report_width(console)
        parts: list[Any] = []
        if summary is not None:
            parts += [_summary_table(summary, source), Text()]
        tables = [report_table(r, fit, full=full) for r in reports]
        for t in tables:
            parts += [t, Text()]
        if not full:
            console.print(Group(*parts), width=fit)
            return
        # One section in full: as wide as its table needs (a pager scrolls sideways), never cut.
        wide = console.options.update_width(10_000)
        needed = max([fit, *(console.measure(t, options=wide).maximum for t in tables)])
        previous = console._width  # rich caps print(width=...) at the console's width: widen it for this print
        console.width = needed
        try:
            console.print(Group(*parts), crop=False)
        finally:
            console._width = previous


def _finite(value: Any) -> Any:
    """NaN and infinity are no data: empty in CSV, null in JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return plain(value)


def _json_report(r: Report) -> dict[str, Any]:
    rows = [dict(zip(r.columns, map(_finite, row), strict=True)) for row in r.rows]
    return {"name": r.name, "title": r.title, "rows": rows}


def report_csv(reports: Sequence[Report]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    labelled = len(reports) > 1
    for r in reports:
        writer.writerow(["report", *r.columns] if labelled else r.columns)
        for row in r.rows:
            values = ["" if v is None else v for v in map(_finite, row)]
            writer.writerow([r.name, *values] if labelled else values)
    return buffer.getvalue()


def _markdown_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or " "


def markdown(reports: Sequence[Report], *, summary: Mapping[str, Any] | None = None, source: str = "") -> str:
    """The report as Markdown: the summary as a list, each report as a table with every column."""
    out: list[str] = []
    if summary is not None:
        out += ["# LLM cost report", ""]
        items: list[tuple[str, list[str]]] = []
        for name, text in summary_lines(summary, source):
            if name or not items:
                items.append((name, []))
            items[-1][1].append(_markdown_cell(text))
        out += [f"- **{name}**: {'; '.join(texts)}" for name, texts in items]
        out.append("")
    for r in reports:
        out += [f"## {_markdown_cell(r.title)}", ""]
        if r.description:
            out += [r.description, ""]
        names = [kinds.kind(c) for c in r.columns]
        out.append("| " + " | ".join(_markdown_cell(kinds.header(c)) for c in r.columns) + " |")
        out.append("|" + "|".join("---:" if k in kinds.NUMERIC_KINDS else "---" for k in names) + "|")
        for row in r.rows:
            out.append("| " + " | ".join(_markdown_cell(v) for v in kinds.display_row(r.columns, row)) + " |")
        if not r.rows:
            out.append("| (none) |" + " |" * (len(r.columns) - 1))
        out.append("")
    return "\n".join(out)
