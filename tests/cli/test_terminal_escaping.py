"""Stored values reach a terminal as text, never as markup or terminal controls (issue 17).

An attribute value is set by whoever calls the app: before, `[bold]x[/bold]` rendered
bold, `[link=...]` became an OSC-8 hyperlink, and ESC, BEL and CR went through to the
terminal in `report` and `query` tables. JSON and CSV stay exact data."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from otel_llmcost.cli import app
from otel_llmcost.reporting import terminal
from otel_llmcost.reporting.reports import Report
from tests.helpers.chdb import chdb_dsn, fresh_client, insert_spans
from tests.helpers.span_rows import call_row, now_ns

runner = CliRunner()
HOSTILE = {
    "bold": "[bold]x[/bold]",
    "link": "[link=http://evil]y[/link]",
    "ansi": "\x1b[31mred",
    "bell": "ding\x07",
    "cr": "over\rwrite",
    "osc8": "\x1b]8;;http://evil\x1b\\z\x1b]8;;\x1b\\",
    "bidi": "abc\u202edef",
}
# What each value must look like on the terminal: the same text, controls made visible.
SHOWN = {
    "bold": "[bold]x[/bold]",
    "link": "[link=http://evil]y[/link]",
    "ansi": "\\x1b[31mred",
    "bell": "ding\\x07",
    "cr": "over\\x0dwrite",
    "osc8": "\\x1b]8;;http://evil\\x1b\\z\\x1b]8;;\\x1b\\",
    "bidi": "abc\\u202edef",
}
RAW_CONTROLS = ("\x1b[31m", "\x1b]8;", "\x07", "\r", "\u202e")


@pytest.fixture(scope="module")
def dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("hostile")
    rows = [call_row(f"svc-{key}", now_ns(), endpoint=value, cost_total=0.25) for key, value in HOSTILE.items()]
    with fresh_client(directory) as client:
        insert_spans(client, rows)
    return chdb_dsn(directory)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, on a wide colour terminal as far as rich can tell: what
    a user sees, escapes and all."""
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "400", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "otel_llmcost.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def assert_shown_not_interpreted(output: str) -> None:
    for raw in RAW_CONTROLS:
        assert raw not in output, repr(raw)
    for key, shown in SHOWN.items():
        assert shown in output, (key, shown)


def test_query_table_shows_stored_values_as_text(dsn):
    result = runner.invoke(app, ["query", "--dsn", dsn, "SELECT Endpoint FROM llm_calls ORDER BY ServiceName"])
    assert result.exit_code == 0, result.output
    assert_shown_not_interpreted(result.stdout)


def test_report_table_on_a_colour_terminal_shows_stored_values_as_text(dsn):
    result = run_cli("report", "--dsn", dsn, "--only", "spend_by_endpoint")
    assert result.returncode == 0, result.stderr
    for raw in RAW_CONTROLS:
        assert raw not in result.stdout, repr(raw)
    # rich styles the table itself (bold headers), but no stored value becomes a style or link
    assert "\x1b[1mx" not in result.stdout and "\x1b]8;" not in result.stdout
    plain = result.stdout.replace("\x1b[1m", "").replace("\x1b[0m", "")
    for key, shown in SHOWN.items():
        assert shown in plain, (key, shown)


def test_an_error_quoting_a_stored_value_is_escaped_too(dsn):
    result = runner.invoke(
        app, ["query", "--dsn", dsn, "SELECT toUInt8(Endpoint) FROM llm_calls WHERE ServiceName = 'svc-ansi'"]
    )
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "\\x1b[31mred" in line and "\x1b" not in line


def test_a_column_name_is_escaped(dsn):
    result = runner.invoke(app, ["query", "--dsn", dsn, "SELECT 1 AS `[bold]c\x1b[2J`"])
    assert result.exit_code == 0, result.output
    assert "[bold]c\\x1b[2J" in result.stdout and "\x1b" not in result.stdout


def test_json_and_csv_keep_the_stored_values_exactly(dsn):
    sql = "SELECT ServiceName, Endpoint FROM llm_calls ORDER BY ServiceName"
    as_json = runner.invoke(app, ["query", "--dsn", dsn, "--format", "json", sql])
    assert as_json.exit_code == 0, as_json.output
    assert "\x1b" not in as_json.stdout  # JSON escapes control characters itself (\u001b)
    stored = {row["ServiceName"]: row["Endpoint"] for row in json.loads(as_json.stdout)}
    assert stored == {f"svc-{key}": value for key, value in HOSTILE.items()}
    as_csv = runner.invoke(app, ["query", "--dsn", dsn, "--format", "csv", sql])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.reader(io.StringIO(as_csv.stdout, newline="")))
    assert rows[0] == ["ServiceName", "Endpoint"]
    assert {service: endpoint for service, endpoint in rows[1:]} == stored  # piped: raw data


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_csv_to_a_terminal_shows_controls_and_keeps_formulas():
    """CSV on a terminal gets visible controls; formula-looking cells are never rewritten
    (a negative number starts with "-" too): docs/cli.md says to import, not open, untrusted CSV."""
    report = Report("t", ["v"], [("\x1b[31mred",), ('=HYPERLINK("http://evil")',), (-1.5,)], name="q")
    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        terminal.emit([report], "csv", console=None, stream=stream)  # type: ignore[arg-type]
    assert "\x1b" not in tty.getvalue() and "\\x1b[31mred" in tty.getvalue()
    assert "\x1b[31mred" in pipe.getvalue()
    for stream in (tty, pipe):
        assert 'q,"=HYPERLINK(""http://evil"")"' in stream.getvalue() and "q,-1.5" in stream.getvalue()


@pytest.mark.parametrize(("value", "shown"), [(v, SHOWN[k]) for k, v in HOSTILE.items()])
def test_safe_escapes_markup_and_controls(value, shown):
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, force_terminal=True, width=400).print(terminal.safe(value))
    assert out.getvalue().rstrip("\n") == shown
    assert terminal.safe("ends with \\").plain == "ends with \\"
    assert terminal.safe("line one\n\ttwo").plain == "line one\n\ttwo"  # newline and tab stay readable
