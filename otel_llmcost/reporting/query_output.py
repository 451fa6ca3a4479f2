"""``otel-llmcost query``'s output: exactly the result, in the format asked for.

- ``csv`` / ``tsv``: a header line with the column names, then one line per row (CRLF line
  ends, as RFC 4180 has them);
- ``json``: a list of row objects (``[]`` when there are no rows);
- ``table``: one terminal table (values shown as text, see :mod:`.terminal`).

No report name, title or wrapper: what a script reads is what the query returned.
CSV/TSV written to a terminal get their control characters made visible, as reports do.
"""

from __future__ import annotations

import csv
import io
import json
from typing import IO

from rich.console import Console

from .reports import Report
from .terminal import is_terminal, plain, table, visible_controls

QUERY_FORMATS = ("table", "json", "csv", "tsv")


def render_data(result: Report, fmt: str) -> str:
    """``result`` as ``fmt`` (``json``, ``csv`` or ``tsv``) text, ending in a newline."""
    if fmt == "json":
        rows = [dict(zip(result.columns, map(plain, row), strict=True)) for row in result.rows]
        return json.dumps(rows, indent=2, default=str) + "\n"
    if fmt not in ("csv", "tsv"):
        raise ValueError(f"not a data format: {fmt!r}")
    buffer = io.StringIO()
    # The csv module's line ends (CRLF, RFC 4180): with them, a value holding a lone CR is quoted.
    writer = csv.writer(buffer, dialect="excel-tab" if fmt == "tsv" else "excel")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([plain(value) for value in row])
    return buffer.getvalue()


def emit_query(result: Report, fmt: str, *, console: Console, stream: IO[str]) -> None:
    """Write ``result`` as ``fmt`` (one of :data:`QUERY_FORMATS`): a table to ``console``, data to ``stream``."""
    if fmt == "table":
        console.print(table("", result.columns, result.rows))
        return
    text = render_data(result, fmt)
    stream.write(visible_controls(text) if fmt != "json" and is_terminal(stream) else text)
