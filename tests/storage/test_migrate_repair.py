"""`migrate` repairs a database whose tables, materialized views or views were dropped:
the migration record says a file was applied, but what it created is gone (issue 17).
Before the repair, `migrate` skipped every recorded file, printed "applied 1 statements"
and left `otel_traces` missing, so every later span failed to insert."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from otel_llmcost.cli import app
from otel_llmcost.storage import migrations
from tests.helpers.chdb import DATABASE, chdb_dsn, insert_spans, migrated_client, q
from tests.helpers.span_rows import call_row, now_ns


def exists(client, name: str) -> bool:
    return bool(
        q(
            client,
            "SELECT count() FROM system.tables WHERE database = {d:String} AND name = {n:String}",
            d=DATABASE,
            n=name,
        )[0][0]
    )


def services(client) -> set[str]:
    return {r[0] for r in q(client, f"SELECT DISTINCT ServiceName FROM {DATABASE}.llm_calls")}


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("DROP TABLE {db}.otel_traces", "otel_traces"),  # the spans' table, source of every MV
        ("DROP TABLE {db}.llm_calls", "llm_calls"),  # an MV's target: inserts into otel_traces fail
        ("DROP TABLE {db}.llm_calls_mv", "llm_calls_mv"),  # the MV itself: calls stop reaching llm_calls
        ("DROP VIEW {db}.v_cost_hourly", "v_cost_hourly"),
    ],
)
def test_a_dropped_object_is_recreated_and_new_spans_reach_llm_calls(tmp_path, statement, name):
    with migrated_client(chdb_dsn(tmp_path)) as client:
        insert_spans(client, [call_row("before", now_ns())])
        client.command(statement.format(db=DATABASE))
        assert not exists(client, name)

        result = migrations.apply_migrations(client, database=DATABASE)

        assert result.repaired == [name]
        assert exists(client, name)
        insert_spans(client, [call_row("after", now_ns())])
        kept = {"before"} if name != "llm_calls" else set()  # only a dropped llm_calls lost its rows
        assert services(client) == kept | {"after"}
        assert q(client, f"SELECT count() FROM {DATABASE}.v_cost_hourly WHERE ServiceName = 'after'")[0][0] == 1


def test_a_second_migrate_repairs_nothing_and_keeps_every_row(chdb_client):
    insert_spans(chdb_client, [call_row("kept", now_ns())])
    result = migrations.apply_migrations(chdb_client, database=DATABASE)
    assert result.repaired == []
    assert len(result.statements) == 1  # CREATE DATABASE IF NOT EXISTS only
    assert services(chdb_client) == {"kept"}


def test_every_object_the_files_create_is_tracked():
    """A CREATE the repair cannot name would never be repaired."""
    statements = migrations.rendered_statements(database=DATABASE)
    creates = [s for s in statements if s.upper().startswith("CREATE") and "DATABASE" not in s.split("(")[0].upper()]
    names = migrations.created_objects(statements)
    assert len(names) == len(creates) == len(set(names))
    assert {"otel_traces", "llm_calls", "llm_calls_mv", "v_cost_hourly", "llmcost_schema_files"} <= set(names)


def test_migrate_command_says_what_it_repaired(tmp_path):
    dsn = chdb_dsn(tmp_path)
    with migrated_client(dsn) as client:
        client.command(f"DROP TABLE {DATABASE}.otel_traces")
        client.command(f"DROP TABLE {DATABASE}.llm_cost_hourly_mv")
    result = CliRunner().invoke(app, ["migrate", "--dsn", dsn])
    assert result.exit_code == 0, result.output
    assert "repaired (were missing): otel_traces, llm_cost_hourly_mv" in result.stdout
    with migrated_client(dsn) as client:
        assert exists(client, "otel_traces") and exists(client, "llm_cost_hourly_mv")
