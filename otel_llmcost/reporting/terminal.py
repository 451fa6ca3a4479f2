"""Reports as terminal tables (rich), JSON or CSV, for the CLI."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from .reports import Report

FORMATS = ("table", "json", "csv")


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
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN: no data
            return "-"
        return f"{value:,.6f}" if abs(value) < 1 else f"{value:,.2f}"
    return str(plain(value))


def table(title: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]], caption: str = "") -> Table:
    out = Table(title=title, caption=caption or None, title_justify="left", show_lines=False)
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*(cell(v) for v in row))
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
        stream.write(buffer.getvalue())
    else:
        for r in reports:
            console.print(table(r.title, r.columns, r.rows, r.description))
            console.print()
