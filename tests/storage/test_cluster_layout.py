"""`migrate --cluster NAME`: the generated DDL against a golden file, the layout rules per
statement kind (sharded local + Distributed tables, materialized views on the local
tables, views on the Distributed ones), and the checks that refuse an ``otel_traces``
the schema cannot use (the exporter's JSON mode). No cluster runs here: the single-node
form runs on chdb (in every storage test), the cluster form is checked as text.

After changing a migration file, rewrite the golden file with

    otel-llmcost migrate --print --cluster prod --database otel --ttl-days 180 > tests/storage/golden/cluster_prod.sql
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from otel_llmcost.storage import migrations
from tests.helpers.chdb import q
from tests.helpers.span_rows import call_row, now_ns

GOLDEN = Path(__file__).with_name("golden") / "cluster_prod.sql"
REWRITE = (
    "otel-llmcost migrate --print --cluster prod --database otel --ttl-days 180 > tests/storage/golden/cluster_prod.sql"
)

_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS otel\.(\w+)\b")
_MV = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS otel\.(\w+)\b")
_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS otel\.(\w+)\b")
_NAMES = re.compile(r"\botel\.(\w+)\b")


def cluster_statements() -> list[str]:
    return migrations.rendered_statements(database="otel", cluster="prod", ttl_days=180)


def printed(statements: list[str]) -> str:
    """What `otel-llmcost migrate --print` writes."""
    return "".join(statement.rstrip() + ";\n\n" for statement in statements)


def tables(statements: list[str]) -> dict[str, str]:
    return {m.group(1): s for s in statements if (m := _TABLE.match(s))}


def test_cluster_ddl_matches_the_golden_file():
    assert GOLDEN.read_text(encoding="utf-8") == printed(cluster_statements()), (
        f"the cluster DDL changed: review the difference, then rewrite the golden file with: {REWRITE}"
    )


def test_the_cli_prints_the_golden_ddl():
    from typer.testing import CliRunner

    from otel_llmcost.cli import app

    result = CliRunner().invoke(app, REWRITE.split(">")[0].split()[1:])
    assert result.exit_code == 0, result.output
    assert result.stdout == GOLDEN.read_text(encoding="utf-8")


def test_every_table_a_materialized_view_touches_is_sharded_with_a_distributed_twin():
    statements = cluster_statements()
    created = tables(statements)
    sharded = migrations.sharded_tables()
    assert {"otel_traces", "llm_calls", "llm_cost_hourly", "otel_traces_trace_id_ts"} <= sharded
    for name in sharded:
        local, distributed = created[f"{name}_local"], created[name]
        assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/" in local or (
            "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/" in local
        )
        key = "cityHash64(TraceId)" if re.search(r"^\s+TraceId String", local, re.M) else "rand()"
        assert distributed.endswith(f"ENGINE = Distributed('prod', 'otel', '{name}_local', {key})"), distributed
        assert "CODEC" not in distributed and "INDEX " not in distributed


def test_the_distributed_table_has_the_columns_of_its_local_table():
    created = tables(cluster_statements())
    for name in migrations.sharded_tables():
        local = migrations.upgrade_statements(created[f"{name}_local"])[-1]
        distributed = migrations.upgrade_statements(created[name])[-1]
        columns = [line.split()[4] for line in local.splitlines()[1:]]
        assert [line.split()[4] for line in distributed.splitlines()[1:]] == columns, name
        # a new column reaches the Distributed table too, on every node
        assert distributed.startswith(f"ALTER TABLE otel.{name} ON CLUSTER prod\n    ADD COLUMN IF NOT EXISTS ")


def test_other_tables_have_a_copy_on_every_node():
    created = tables(cluster_statements())
    sharded = migrations.sharded_tables()
    unsharded = {n for n in created if n not in sharded and not n.endswith("_local")}
    assert {"llmcost_schema_files", "llm_prices", "llm_budgets", "llm_anomaly_settings"} <= unsharded
    for name in unsharded:
        assert (
            "Replicated" in created[name]
            and "('/clickhouse/tables/all/{database}/{table}', '{replica}')" in (created[name])
        ), name


def test_materialized_views_read_and_write_local_tables_and_views_read_distributed_ones():
    statements = cluster_statements()
    local = {f"{name}_local" for name in migrations.sharded_tables()}
    for statement in statements:
        if view := _MV.match(statement):
            touched = set(_NAMES.findall(statement)) - {view.group(1)}
            assert touched and touched <= local, statement.splitlines()[0]
        if _VIEW.match(statement):
            assert not set(_NAMES.findall(statement)) & local, statement.splitlines()[0]
        if statement.startswith("ALTER TABLE otel.otel_traces"):
            assert statement.startswith("ALTER TABLE otel.otel_traces_local ")


def test_parameterized_anomaly_and_opportunity_views_read_the_distributed_tables():
    by_name = {m.group(1): s for s in cluster_statements() if (m := _VIEW.match(s))}
    parameters = {
        "v_anomalies_at": "{now:DateTime}",
        "v_output_by_endpoint": "{since_hours:UInt32}",
        "v_opportunities": "{since_hours:UInt32}",
    }
    for name, parameter in parameters.items():
        assert parameter in by_name[name], name
        assert not re.search(r"\botel\.\w+_local\b", by_name[name]), name
    assert "otel.llm_anomaly_hourly" in by_name["v_anomalies_at"]  # the rollup, merged across shards
    assert "otel.llm_calls" in by_name["v_output_by_endpoint"]


def test_a_new_migration_file_is_laid_out_with_no_code_change(tmp_path, monkeypatch):
    for path in migrations.migration_files():
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "999_extra.sql").write_text(
        "CREATE TABLE IF NOT EXISTS {database}.llm_extra {cluster} (\n"
        "    Day Date,\n    TraceId String CODEC(ZSTD(1)),\n    Calls SimpleAggregateFunction(sum, UInt64)\n"
        ") ENGINE = {aggregating_merge_tree}\nORDER BY (Day, TraceId);\n\n"
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_extra_mv {cluster}\n"
        "TO {database}.llm_extra\nAS SELECT toDate(Timestamp) AS Day, TraceId, toUInt64(count()) AS Calls\n"
        "FROM {database}.llm_calls\nGROUP BY Day, TraceId;\n\n"
        "CREATE VIEW IF NOT EXISTS {database}.v_extra {cluster} AS\n"
        "SELECT sum(Calls) AS Calls FROM {database}.llm_extra;\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", tmp_path)
    statements = cluster_statements()
    extra = statements[-4:]
    assert extra[0].startswith("CREATE TABLE IF NOT EXISTS otel.llm_extra_local  ON CLUSTER prod (")
    assert extra[1].endswith("ENGINE = Distributed('prod', 'otel', 'llm_extra_local', cityHash64(TraceId))")
    assert "TO otel.llm_extra_local" in extra[2] and "FROM otel.llm_calls_local" in extra[2]
    assert "FROM otel.llm_extra;" in extra[3] + ";"


def test_every_cluster_statement_names_the_cluster():
    """Every DDL statement; a data back-fill (INSERT, 022) runs once, into the Distributed
    table, which spreads its rows over the shards."""
    for statement in cluster_statements():
        if statement.lstrip().startswith("INSERT"):
            continue
        head = statement.split("(", 1)[0].split(" AS", 1)[0]
        assert " ON CLUSTER prod" in head, head


# --- the schema this migrate refuses ---------------------------------------------------

# The exporter's traces table in JSON mode (internal/sqltemplates/traces_json_table.sql).
EXPORTER_JSON_TABLE = """
CREATE TABLE IF NOT EXISTS {database}.otel_traces (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes JSON CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes JSON CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes JSON
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes JSON
    ) CODEC(ZSTD(1)),
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1
"""


def test_the_exporters_json_mode_is_refused_before_any_ddl(chdb_module_client):
    client = chdb_module_client
    client.command("CREATE DATABASE IF NOT EXISTS jsonmode")
    client.command(EXPORTER_JSON_TABLE.format(database="jsonmode"))
    with pytest.raises(migrations.SchemaConflict) as refused:
        migrations.migrate(client, database="jsonmode")
    message = str(refused.value)
    assert (
        "json: true" in message
        and "jsonmode.otel_traces" in message
        and "Map(LowCardinality(String), String)" in message
    )
    assert "RENAME TABLE jsonmode.otel_traces TO jsonmode.otel_traces_json" in message
    assert q(client, "SELECT name FROM system.tables WHERE database = 'jsonmode'") == [("otel_traces",)]


def test_the_migrate_command_says_so_in_one_line(chdb_module_client, monkeypatch):
    from contextlib import contextmanager

    from typer.testing import CliRunner

    from otel_llmcost import cli

    chdb_module_client.command("CREATE DATABASE IF NOT EXISTS jsoncli")
    chdb_module_client.command(EXPORTER_JSON_TABLE.format(database="jsoncli"))

    @contextmanager
    def module_client(dsn: str) -> Any:
        yield chdb_module_client  # chdb opens one path per process: the module's

    monkeypatch.setattr(cli.storage, "open_client", module_client)
    result = CliRunner().invoke(cli.app, ["migrate", "--dsn", "http://localhost:8123", "--database", "jsoncli"])
    assert result.exit_code != 0
    assert "json: true" in result.output and "Traceback" not in result.output


class _Tables:
    """A client whose system.tables holds the given (name, engine, SpanAttributes type) rows."""

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        self.rows = rows

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return type("Result", (), {"result_rows": self.rows})()


def test_cluster_migrate_over_a_table_that_stores_rows_itself_is_refused():
    exporter_made = _Tables([("otel_traces", "ReplicatedMergeTree", "Map(LowCardinality(String), String)")])
    with pytest.raises(migrations.SchemaConflict, match="RENAME TABLE otel.otel_traces TO otel.otel_traces_local"):
        migrations.check_schema(exporter_made, database="otel", cluster="prod")
    migrations.check_schema(exporter_made, database="otel", cluster=None)  # a single node: fine


def test_single_node_migrate_over_the_cluster_layout_is_refused():
    laid_out = _Tables([("otel_traces", "Distributed", "Map(LowCardinality(String), String)")])
    with pytest.raises(migrations.ClusterLayout, match="--cluster NAME"):
        migrations.check_schema(laid_out, database="otel", cluster=None)
    migrations.check_schema(laid_out, database="otel", cluster="prod")


# --- the exporter's trace-id lookup table ----------------------------------------------


def test_the_trace_id_lookup_table_has_each_traces_first_and_last_second(chdb_module_client):
    from tests.helpers.chdb import insert_spans

    second = now_ns() // 1_000_000_000
    trace = "ab" * 16
    first = call_row("lookup", second * 1_000_000_000 + 5, trace_id=trace)
    last = call_row("lookup", (second + 3) * 1_000_000_000 + 7, trace_id=trace)
    insert_spans(chdb_module_client, [first, last])
    got = q(
        chdb_module_client,
        "SELECT toUnixTimestamp(min(Start)), toUnixTimestamp(max(End)) FROM otel.otel_traces_trace_id_ts "
        "WHERE TraceId = {t:String}",
        t=trace,
    )
    assert got == [(second, second + 3)]
    names = {n for (n,) in q(chdb_module_client, "SELECT name FROM system.tables WHERE database = 'otel'")}
    assert {"otel_traces_trace_id_ts", "otel_traces_trace_id_ts_mv"} <= names


def test_the_remote_ingester_leaves_a_clusters_schema_to_migrate_cluster(monkeypatch):
    from otel_llmcost import storage
    from otel_llmcost.exporter import ingest

    def laid_out(client: Any, **options: Any) -> list[str]:
        migrations.check_schema(_Tables([("otel_traces", "Distributed", "")]), database="otel", cluster=None)
        return []

    monkeypatch.setattr(storage, "migrate", laid_out)
    monkeypatch.setattr(ingest, "_migrated", set())
    ingest.ensure_schema(object(), "http://node1:8123", "otel", 180)  # no error: insert as is
    assert ("http://node1:8123", "otel") in ingest._migrated
