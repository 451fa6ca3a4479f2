"""What a new user hits on the CLI (issue 21, items 2, 3 and 6): `query` prints exactly the
result, `--only a,b`, `--version`, help that shows its brackets, errors that name flags,
one line for an unreachable server, a demo that checks its SDKs before touching anything,
and reads that find the demo database. Every error is one line and exit code 2, never a
traceback."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from otel_llmcost import storage
from otel_llmcost.cli import app
from otel_llmcost.demo import demo_dsn
from otel_llmcost.version import __version__
from tests.helpers.chdb import chdb_dsn, fresh_client, insert_spans
from tests.helpers.span_rows import call_row, now_ns

runner = CliRunner()


def one_error(result: Any) -> str:
    """The single ``error:`` line of a failed command (exit code 2, no traceback)."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("newcomer")
    with fresh_client(directory) as client:
        insert_spans(client, [call_row("svc", now_ns())])
    return chdb_dsn(directory)


def raw(result: Any) -> str:
    """stdout as written (``Result.stdout`` turns CRLF into LF)."""
    return str(result.stdout_bytes.decode())


def query(dsn: str, sql: str, *args: str) -> Any:
    return runner.invoke(app, ["query", "--dsn", dsn, *args, sql])


SQL = "SELECT * FROM (SELECT 1 AS n, 'a,b' AS s UNION ALL SELECT 2, 'c') ORDER BY n"


# --- query prints exactly the result ---------------------------------------------------


def test_query_csv_is_a_header_and_the_rows(dsn):
    result = query(dsn, SQL, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert raw(result) == 'n,s\r\n1,"a,b"\r\n2,c\r\n'


def test_query_tsv_is_a_header_and_the_rows(dsn):
    result = query(dsn, SQL, "-f", "tsv")
    assert result.exit_code == 0, result.output
    assert raw(result) == "n\ts\r\n1\ta,b\r\n2\tc\r\n"


def test_query_json_is_a_list_of_row_objects(dsn):
    result = query(dsn, SQL, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 1, "s": "a,b"}, {"n": 2, "s": "c"}]


def test_query_json_of_no_rows_is_an_empty_list(dsn):
    result = query(dsn, "SELECT 1 AS n WHERE 0", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_query_csv_of_no_rows_still_has_the_header(dsn):
    result = query(dsn, "SELECT 1 AS n, 2 AS m WHERE 0 -- nothing", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert raw(result) == "n,m\r\n"


def test_query_table_is_one_table_without_a_title(dsn):
    result = query(dsn, SQL)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("┏") and "query" not in result.stdout
    assert [line.split("│")[1].strip() for line in lines if line.startswith("│")] == ["1", "2"]


def test_query_with_two_statements_is_one_line_error(dsn):
    line = one_error(query(dsn, "SELECT 1; SELECT 2", "--format", "csv"))
    assert line == "error: one statement at a time: the query has more than one"


@pytest.mark.parametrize("sql", ["", "   ", " ; "])
def test_query_that_is_empty_is_one_line_error(dsn, sql):
    line = one_error(query(dsn, sql))
    assert line == 'error: empty query: give one SQL statement, e.g. "SELECT count() FROM llm_calls"'


# --- report --only, --version, help ----------------------------------------------------


@pytest.mark.parametrize(
    "only",
    [["--only", "spend_by_model,unpriced"], ["--only", "spend_by_model", "--only", "unpriced"]],
    ids=["comma-separated", "repeated"],
)
def test_report_only_takes_a_list_comma_separated_or_repeated(dsn, only):
    result = runner.invoke(app, ["report", "--dsn", dsn, "--format", "json", *only])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)] == ["spend_by_model", "unpriced"]


def test_report_only_names_the_flag_for_an_unknown_report(dsn):
    line = one_error(runner.invoke(app, ["report", "--dsn", dsn, "--only", "spend_by_model,nope"]))
    assert line.startswith("error: --only: unknown report(s) nope; choose from spend_by_endpoint, ")


@pytest.fixture(scope="module")
def default_report_names(dsn: str) -> list[str]:
    """The sections of ``report`` with no name (every default report: ~3 s of queries, run once)."""
    everything = runner.invoke(app, ["report", "--dsn", dsn, "--format", "json"])
    assert everything.exit_code == 0, everything.output
    return [r["name"] for r in json.loads(everything.stdout)]


@pytest.mark.parametrize("name", ["prompt_anatomy_cost", "output_side"])
def test_on_request_reports_are_shown_by_name_and_not_by_default(dsn, name, default_report_names):
    result = runner.invoke(app, ["report", name, "--dsn", dsn, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)] == [name]
    assert default_report_names and name not in default_report_names


def test_report_names_the_argument_for_an_unknown_report(dsn):
    line = one_error(runner.invoke(app, ["report", "nope", "--dsn", dsn]))
    assert line.startswith("error: NAME: unknown report 'nope'; choose from spend_by_endpoint, ")


def test_version_flag_prints_the_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{__version__}\n"


def test_prices_whatif_names_the_flag_not_the_variable():
    line = one_error(runner.invoke(app, ["prices", "whatif", "openai/gpt-4o", "--since-hours", "0"]))
    assert line == "error: --since-hours must be a positive number of hours, got 0"


def commands() -> list[tuple[list[str], Any]]:
    """Every command and group, with its argv path."""
    out: list[tuple[list[str], Any]] = []

    def walk(command: Any, path: list[str]) -> None:
        out.append((path, command))
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return out


def squeeze(text: str) -> str:
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize(("path", "command"), commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_help_shows_every_help_text_as_written(path, command):
    """Help is rich markup: text in brackets ("[timestamp, ...]") must be escaped to show."""
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert result.exit_code == 0, result.output
    shown = squeeze(result.stdout)
    for param in command.params:
        if param.help:
            meant = squeeze(param.help.replace("\\[", "["))
            assert meant in shown, f"{' '.join(path)} {param.name}: {meant!r} not in help"


def test_outcomes_import_help_shows_the_optional_fields():
    result = runner.invoke(app, ["outcomes", "import", "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert "JSON lines: {task_id or trace_id, grade, [timestamp, feature, ...]}" in squeeze(result.stdout)


# --- an unreachable server -------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_is_one_line_in_process():
    port = closed_port()
    line = one_error(runner.invoke(app, ["query", "--dsn", f"http://user:secret@127.0.0.1:{port}/", "SELECT 1"]))
    assert line == f"error: cannot reach ClickHouse at http://127.0.0.1:{port} (connection refused)"


def test_unreachable_server_is_one_line_and_no_driver_log():
    """As a user runs it: the HTTP driver's own log line is not printed beside the error."""
    port = closed_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "otel_llmcost.cli", "report", "--dsn", f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"error: cannot reach ClickHouse at http://127.0.0.1:{port} (connection refused)\n"


# --- the demo --------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OTEL_LLMCOST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OTEL_EXPORTER_LLMCOST_DSN", raising=False)
    return tmp_path / "home"


def test_demo_without_an_sdk_fails_in_one_line_before_touching_the_last_demo(home, monkeypatch):
    previous = home / "demo" / "chdb" / "kept"
    previous.parent.mkdir(parents=True)
    previous.write_text("the last demo's data")
    monkeypatch.setitem(sys.modules, "anthropic", None)  # as if not installed: find_spec says None
    line = one_error(runner.invoke(app, ["demo"]))
    assert line == (
        'error: the demo needs the anthropic SDK, which is not installed: run pip install -e ".[all]" '
        "in the otel-llmcost checkout"
    )
    assert previous.read_text() == "the last demo's data"


def test_demo_without_both_sdks_names_both(home, monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    monkeypatch.setitem(sys.modules, "anthropic", None)
    line = one_error(runner.invoke(app, ["demo"]))
    assert line.startswith("error: the demo needs the openai and anthropic SDKs, which are not installed: ")


def make_demo_database(home: Path) -> str:
    target = demo_dsn(home)
    assert target == chdb_dsn(home / "demo")
    with fresh_client(home / "demo") as client:  # a migrated copy, written where the demo writes
        insert_spans(client, [call_row("demo-svc", now_ns())])
    return target


def test_reads_without_dsn_find_the_demo_database_and_say_so(home):
    make_demo_database(home)
    result = runner.invoke(app, ["query", "--format", "csv", "SELECT ServiceName FROM llm_calls"])
    assert result.exit_code == 0, result.output
    assert raw(result) == "ServiceName\r\ndemo-svc\r\n"
    assert result.stderr == (
        f"note: nothing recorded at {home / 'chdb'} yet; showing the demo database {home / 'demo' / 'chdb'} "
        "(pass --dsn to choose)\n"
    )
    report = runner.invoke(app, ["report", "--only", "spend_by_model", "--format", "json"])
    assert report.exit_code == 0, report.output
    assert report.stderr.startswith("note: nothing recorded at ")
    assert json.loads(report.stdout)[0]["name"] == "spend_by_model"


def test_reads_find_the_demo_database_when_the_default_one_holds_no_database(home):
    make_demo_database(home)
    with storage.open_client(f"chdb://{home / 'chdb'}") as client:  # a store, but no `otel` in it
        client.command("SELECT 1")
    result = runner.invoke(app, ["query", "--format", "csv", "SELECT ServiceName FROM llm_calls"])
    assert result.exit_code == 0, result.output
    assert raw(result) == "ServiceName\r\ndemo-svc\r\n"
    assert result.stderr.startswith(f"note: nothing recorded at {home / 'chdb'} yet; showing the demo database ")


def test_reads_use_the_default_database_once_it_has_data(home):
    make_demo_database(home)
    with fresh_client(home) as client:  # the default database, home / "chdb"
        insert_spans(client, [call_row("app-svc", now_ns())])
    result = runner.invoke(app, ["query", "--format", "csv", "SELECT ServiceName FROM llm_calls"])
    assert result.exit_code == 0, result.output
    assert (raw(result), result.stderr) == ("ServiceName\r\napp-svc\r\n", "")


def test_an_explicit_dsn_never_falls_back_to_the_demo(home, tmp_path):
    make_demo_database(home)
    line = one_error(runner.invoke(app, ["query", "--dsn", f"chdb://{tmp_path / 'other'}", "SELECT 1"]))
    assert line.startswith("error: no otel-llmcost database 'otel' at ")


# --- every option with a bad value: one error line or typer's usage error -----------------

BUDGETS = "budgets:\n  - {name: monthly, scope: global, period: month, limit_usd: 2000}\n"
OUTCOMES = '{"task_id": "t1", "grade": "pass"}\n'

# (argv, kind, what the message says): kind "error" is one `error:` line, "usage" typer's
# usage error, "file" one `FILE: problem` line (config files), "import" outcomes import's
# `error: nothing imported` and one problem line.
BAD_VALUES: list[tuple[list[str], str, str]] = [
    (["--version=x"], "usage", "does not take a value"),
    (["report", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["report", "--database", "bad name"], "error", "--database: invalid database name"),
    (["report", "--since-hours", "0"], "error", "--since-hours must be a positive number"),
    (["report", "--only", "nope"], "error", "--only: unknown report(s) nope"),
    (["report", "--format", "xml"], "error", "--format must be one of table, json, csv, markdown, got 'xml'"),
    (["report", "--html", "/nonexistent/dir/r.html"], "error", "no otel-llmcost database"),
    (["query", "SELECT 1", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["query", "SELECT 1", "--database", "bad name"], "error", "--database: invalid database name"),
    (["query", "SELECT 1", "--format", "xml"], "error", "--format must be one of table, json, csv, tsv"),
    (["query", "SELECT 1", "--write=x"], "usage", "does not take a value"),
    (["anomalies", "--since", "soon"], "error", "--since must be a duration"),
    (["anomalies", "--open-only=x"], "usage", "does not take a value"),
    (["anomalies", "--kind", "nope"], "error", "unknown --kind 'nope'"),
    (["anomalies", "--dimension", "nope"], "error", "unknown --dimension 'nope'"),
    (["anomalies", "--format", "xml"], "error", "--format must be one of"),
    (["anomalies", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["anomalies", "--database", "bad name"], "error", "--database: invalid database name"),
    (["opportunities", "--since", "soon"], "error", "--since must be a duration"),
    (["opportunities", "--kind", "nope"], "error", "unknown --kind 'nope'"),
    (["opportunities", "--limit", "0"], "error", "--limit must be a positive number"),
    (["opportunities", "--limit", "many"], "usage", "Invalid value for '--limit'"),
    (["opportunities", "--format", "xml"], "error", "--format must be one of"),
    (["opportunities", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["opportunities", "--database", "bad name"], "error", "--database: invalid database name"),
    (["migrate", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["migrate", "--database", "bad name"], "error", "--database: invalid database name"),
    (["migrate", "--cluster", "bad name"], "error", "--cluster: invalid cluster name"),
    (["migrate", "--ttl-days", "0"], "usage", "Invalid value for '--ttl-days'"),
    (["migrate", "--print=x"], "usage", "does not take a value"),
    (["demo", "--days", "3"], "usage", "Invalid value for '--days'"),
    (["demo", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["demo", "--format", "xml"], "error", "--format must be one of"),
    (["ingest", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["ingest", "--database", "bad name"], "error", "--database: invalid database name"),
    (["ingest", "--follow=x"], "usage", "does not take a value"),
    (["ingest", "--idle-exit", "soon"], "usage", "Invalid value for '--idle-exit'"),
    (["prices", "show", "gpt-4o", "--provider", "nope"], "error", "no price for 'gpt-4o' at nope"),
    (["prices", "show", "gpt-4o", "--service-tier", ""], "error", "--service-tier is empty"),
    (["prices", "show", "gpt-4o", "--at", "someday"], "error", "--at must be a date or time"),
    (["prices", "show", "gpt-4o", "--prices-file", "/nonexistent.yaml"], "file", "/nonexistent.yaml: cannot read"),
    (["prices", "show", ""], "error", "no price for ''"),
    (["prices", "check", "/nonexistent.yaml"], "file", "/nonexistent.yaml: cannot read"),
    (["prices", "sync", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["prices", "sync", "--database", "bad name"], "error", "--database: invalid database name"),
    (["prices", "sync", "--prices-file", "/nonexistent.yaml"], "file", "/nonexistent.yaml: cannot read"),
    (["prices", "sync", "--keep", "0"], "usage", "Invalid value for '--keep'"),
    (["prices", "whatif", "nope-model"], "error", "'nope-model' names no single genai-prices model"),
    (["prices", "whatif", "openai/gpt-4o", "--since-hours", "0"], "error", "--since-hours must be a positive"),
    (["prices", "whatif", "openai/gpt-4o", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["prices", "whatif", "openai/gpt-4o", "--database", "bad name"], "error", "--database: invalid database name"),
    (["budgets", "--file", "/nonexistent.yaml"], "file", "/nonexistent.yaml: cannot read"),
    (["budgets", "--file", "{budgets}", "--sync=x"], "usage", "does not take a value"),
    (["budgets", "--file", "{budgets}", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["budgets", "--file", "{budgets}", "--database", "bad name"], "error", "--database: invalid database name"),
    (["budgets", "--format", "xml"], "error", "--format must be one of"),
    (["budgets", "check", "/nonexistent.yaml"], "file", "/nonexistent.yaml: cannot read"),
    (["spool", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["spool", "show", "nofile"], "error", "no rejected spool file 'nofile'"),
    (["spool", "show", "nofile", "--limit", "x"], "usage", "Invalid value for '--limit'"),
    (["spool", "replay", "nofile"], "error", "no rejected spool file 'nofile'"),
    (["spool", "replay", "--all=x"], "usage", "does not take a value"),
    (["outcomes", "import", "/nonexistent.jsonl"], "import", "/nonexistent.jsonl: cannot read"),
    (["outcomes", "import", "{outcomes}", "--success-grades", ""], "import", "--success-grades is empty"),
    (["outcomes", "import", "{outcomes}", "--threshold", "x"], "usage", "Invalid value for '--threshold'"),
    (["outcomes", "import", "{outcomes}", "--service", ""], "error", "--service is empty"),
    (["outcomes", "import", "{outcomes}", "--dsn", "nope://x"], "error", "--dsn: unsupported DSN"),
    (["outcomes", "import", "{outcomes}", "--database", "bad name"], "error", "--database: invalid database name"),
    (["version", "--x"], "usage", "No such option: --x"),
]


@pytest.mark.parametrize(("argv", "kind", "says"), BAD_VALUES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_bad_value_is_one_error_never_a_traceback(argv, kind, says, home, tmp_path):
    files = {"{budgets}": tmp_path / "budgets.yaml", "{outcomes}": tmp_path / "outcomes.jsonl"}
    files["{budgets}"].write_text(BUDGETS)
    files["{outcomes}"].write_text(OUTCOMES)
    result = runner.invoke(app, [str(files.get(arg, arg)) for arg in argv], env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    if kind == "usage":
        assert "Usage:" in result.stderr or "Error" in result.stderr
        assert says in squeeze(result.stderr)
    elif kind == "file":
        assert lines == [lines[0]] and lines[0].startswith(says)
    elif kind == "import":
        assert lines[0] == "error: nothing imported" and len(lines) == 2 and says in lines[1]
    else:
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr


def test_every_option_of_every_command_has_a_bad_value_case():
    paths = {tuple(path) for path, _ in commands()}
    covered: set[tuple[tuple[str, ...], str]] = set()
    for argv, _, _ in BAD_VALUES:
        path = max((argv_path for argv_path in paths if tuple(argv[: len(argv_path)]) == argv_path), key=len)
        covered |= {(path, arg.split("=")[0]) for arg in argv if arg.startswith("-")}
    missing = [
        f"{' '.join(path) or '(root)'} {param.opts[0]}"
        for path, command in commands()
        for param in command.params
        if param.param_type_name == "option" and not any((tuple(path), opt) in covered for opt in param.opts)
    ]
    assert missing == []
