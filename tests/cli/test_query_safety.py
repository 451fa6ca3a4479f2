"""`otel-llmcost query` is read-only unless `--write` (issue 17): one statement, run with
ClickHouse's readonly setting, no table function or function that reads local files or
other hosts. Before, it ran `DROP TABLE otel_traces`, `TRUNCATE`, `SELECT 1; DROP DATABASE
otel` (chdb runs scripts) and returned `/etc/hostname` through `file(...)`."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otel_llmcost.cli import app
from otel_llmcost.reporting.safe_query import ALLOWED_TABLE_FUNCTIONS
from tests.helpers.chdb import DATABASE, chdb_dsn, copy_migrated, fresh_client, insert_spans, query_dsn
from tests.helpers.span_rows import call_row, now_ns

runner = CliRunner()
OBJECTS_SQL = f"SELECT count() FROM system.tables WHERE database = '{DATABASE}'"


@pytest.fixture(scope="module")
def dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("query")
    with fresh_client(directory) as client:
        insert_spans(client, [call_row("svc", now_ns())])
    return chdb_dsn(directory)


def query(dsn: str, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["query", "--dsn", dsn, *args])


HOSTNAME = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else socket.gethostname()


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DROP TABLE otel_traces", "not a read"),
        ("TRUNCATE TABLE llm_calls", "not a read"),
        ("SELECT 1; DROP DATABASE otel", "one statement"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("INSERT INTO llm_budgets SELECT * FROM llm_budgets", "not a read"),
        ("KILL QUERY WHERE 1", "not a read"),  # allowed by readonly=1
        ("USE system", "not a read"),  # allowed by readonly=1
        ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "table function file()"),
        ("SELECT * FROM FILE('/etc/hostname', 'LineAsString')", "table function FILE()"),
        ("SELECT * FROM view(SELECT * FROM file('/etc/hostname', 'LineAsString'))", "table function file()"),
        ("DESCRIBE file('/etc/hostname')", "table function file()"),  # schema inference reads it, even readonly
        ("SELECT file('/etc/hostname')", "function file()"),  # the scalar: allowed by readonly=1
        ("EXPLAIN SYNTAX SELECT file('/etc/hostname')", "function file()"),
        ("SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')", "table function url()"),
        ("SELECT * FROM s3('http://127.0.0.1:9/b/k', 'LineAsString')", "table function s3()"),
        ("SELECT * FROM remote('127.0.0.1:9', system.one)", "table function remote()"),
        ("SELECT * FROM cluster('default', system.one)", "table function cluster()"),  # allowed by readonly=1
        ("SELECT * FROM executable('cat /etc/hostname', 'LineAsString', 'x String')", "table function executable()"),
        ("SELECT 1 SETTINGS readonly = 0", "Cannot modify 'readonly' setting"),
        ("SELECT 1 SETTINGS max_threads = 1", "Cannot modify 'max_threads' setting"),
    ],
)
def test_query_refuses_anything_but_one_read_with_one_line(dsn, sql, reason):
    objects = query_dsn(dsn, OBJECTS_SQL)
    result = query(dsn, sql)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and reason in line, line
    assert HOSTNAME not in result.output
    assert query_dsn(dsn, OBJECTS_SQL) == objects
    assert query_dsn(dsn, "SELECT count() FROM otel.llm_calls")[0][0] == 1


def test_into_outfile_writes_nothing(dsn, tmp_path):
    target = tmp_path / "out.txt"
    result = query(dsn, f"SELECT * FROM llm_calls INTO OUTFILE '{target}'")
    assert result.exit_code == 2 and "INTO OUTFILE" in result.stderr
    assert not target.exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count() AS n FROM llm_calls",
        "WITH t AS (SELECT * FROM generate_series(1, 3)) SELECT count() AS n FROM t",
        "SELECT count() AS n FROM numbers(10) WHERE number IN (SELECT number FROM values('number UInt64', 1, 2))",
        "SHOW TABLES",
        "DESCRIBE TABLE llm_calls",
        "EXISTS TABLE llm_calls",
        "EXPLAIN SELECT * FROM llm_calls",
        "SELECT count() AS n FROM merge('otel', '^llm_calls$');",
    ],
)
def test_reads_still_work(dsn, sql):
    result = query(dsn, "--format", "csv", sql)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) >= 2


def test_every_allowed_table_function_is_allowed_by_clickhouse_read_only(dsn):
    """The allow-list is narrower than ClickHouse's own: each entry also passes readonly=1."""
    rows = query_dsn(dsn, "SELECT lower(name), allow_readonly FROM system.table_functions")
    readonly = {name for name, allowed in rows if allowed}
    assert {name.lower() for name in ALLOWED_TABLE_FUNCTIONS} <= readonly


def test_write_runs_one_maintenance_statement(tmp_path):
    dsn = copy_migrated(tmp_path)
    refused = query(dsn, "--write", "DROP VIEW v_errors_hourly; DROP TABLE otel_traces")
    assert refused.exit_code == 2 and "one statement" in refused.stderr
    result = query(dsn, "--write", "DROP VIEW v_errors_hourly")
    assert result.exit_code == 0, result.output
    names = "name IN ('v_errors_hourly', 'otel_traces')"
    assert query_dsn(dsn, f"{OBJECTS_SQL} AND {names}") == [(1,)]  # the view went, otel_traces did not
