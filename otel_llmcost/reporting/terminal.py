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
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .reports import Report

FORMATS = ("table", "json", "csv")

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
        stream.write(visible_controls(text) if _is_terminal(stream) else text)
    else:
        for r in reports:
            console.print(table(r.title, r.columns, r.rows, r.description))
            console.print()


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
