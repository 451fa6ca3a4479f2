"""collector-config/: the otelcol-contrib pipeline that lands spans in our otel_traces table.

No collector binary runs here; the checks are the ones `otelcol validate` would fail on
(undefined or unused components) plus the contract with the rest of the repository:
ports match docker-compose.yml, database and table match the migrations.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llmcost import semconv
from otel_llmcost.storage.migrations import rendered_statements
from tests.helpers.paths import ROOT

CONFIG = ROOT / "collector-config" / "otelcol.yaml"
OVERLAY = ROOT / "collector-config" / "genai-only.yaml"
KINDS = ("receivers", "processors", "exporters", "connectors")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def merge(base: Any, overlay: Any) -> Any:
    """The collector's merge of several --config files: maps merge, anything else is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return overlay


CONFIGS = {"default": load(CONFIG), "genai-only": merge(load(CONFIG), load(OVERLAY))}


@pytest.fixture(params=sorted(CONFIGS))
def config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return CONFIGS[request.param]


def test_every_referenced_component_is_defined_and_every_defined_one_is_used(config):
    pipelines = config["service"]["pipelines"]
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            used[kind] |= set(pipeline.get(kind, []))
    for kind in ("receivers", "processors", "exporters"):
        defined = set(config.get(kind) or {})
        assert used[kind] <= defined, f"undefined {kind}: {used[kind] - defined}"
        assert defined <= used[kind], f"{kind} defined but in no pipeline: {defined - used[kind]}"
    extensions = set(config["service"].get("extensions", []))
    assert extensions == set(config.get("extensions") or {})


def test_traces_pipeline_is_otlp_memory_limiter_first_batch_last_into_clickhouse(config):
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert traces["processors"][0] == "memory_limiter" and traces["processors"][-1] == "batch"
    assert traces["exporters"] == ["clickhouse"]


def test_genai_only_option_keeps_genai_and_task_spans():
    overlay = CONFIGS["genai-only"]
    (condition,) = overlay["processors"]["filter/llmcost-only"]["traces"]["span"]
    assert condition == (
        'attributes["gen_ai.operation.name"] == nil and name != "llmcost.task" and name != "llmcost.citations"'
        ' and attributes["llmcost.limiter.decision_count"] == nil'
    )
    assert "filter/llmcost-only" in overlay["service"]["pipelines"]["traces"]["processors"]
    assert "filter/llmcost-only" not in CONFIGS["default"].get("processors", {})
    # the kept span mark is the one limiter.py sets on spans carrying decision events
    assert f'attributes["{semconv.LIMITER_DECISION_COUNT}"]' in condition
    # the kept span name is the one outcomes.py records and 002 reads
    assert "WHERE SpanName = 'llmcost.task'" in (ROOT / "otel_llmcost/storage/sql/005_tasks.sql").read_text()


def test_otlp_listens_on_4317_grpc_and_4318_http():
    protocols = CONFIGS["default"]["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")


def test_clickhouse_exporter_writes_our_table_and_never_creates_schema():
    exporter = CONFIGS["default"]["exporters"]["clickhouse"]
    assert exporter["create_schema"] is False
    assert exporter["database"] == "otel" and exporter["traces_table_name"] == "otel_traces"
    assert exporter["retry_on_failure"]["enabled"] is True
    assert exporter["sending_queue"]["enabled"] is True and exporter["sending_queue"]["queue_size"] > 0
    assert re.fullmatch(r"\d+h", exporter["ttl"])
    assert int(exporter["ttl"][:-1]) == 180 * 24  # the default --ttl-days of otel-llmcost migrate
    created = "\n".join(rendered_statements(database=exporter["database"]))
    assert f"CREATE TABLE IF NOT EXISTS {exporter['database']}.{exporter['traces_table_name']} " in created


def test_on_a_cluster_the_same_exporter_settings_write_through_the_distributed_table():
    """docs/cluster.md: the exporter keeps create_schema: false and otel_traces, which
    `migrate --cluster` makes Distributed over the shards' otel_traces_local."""
    exporter = CONFIGS["default"]["exporters"]["clickhouse"]
    assert "cluster_name" not in exporter and "table_engine" not in exporter
    created = rendered_statements(database=exporter["database"], cluster="prod")
    table = f"{exporter['database']}.{exporter['traces_table_name']}"
    (distributed,) = [s for s in created if s.startswith(f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER prod ")]
    assert distributed.endswith(
        f"Distributed('prod', '{exporter['database']}', 'otel_traces_local', cityHash64(TraceId))"
    )


def test_exporter_credentials_and_endpoint_come_from_the_environment():
    exporter = CONFIGS["default"]["exporters"]["clickhouse"]
    for key in ("endpoint", "username", "password"):
        assert re.fullmatch(r"\$\{env:[A-Z_]+\}", exporter[key]), key


def test_health_check_extension_is_enabled():
    assert CONFIGS["default"]["extensions"]["health_check"]["endpoint"].endswith(":13133")


# --- metrics ----------------------------------------------------------------------------------

METRICS_TABLES = {
    "sum": "otel_metrics_sum",
    "gauge": "otel_metrics_gauge",
    "histogram": "otel_metrics_histogram",
    "exponential_histogram": "otel_metrics_exp_histogram",
    "summary": "otel_metrics_summary",
}


def test_metrics_pipeline_is_otlp_memory_limiter_first_batch_last_into_clickhouse(config):
    metrics = config["service"]["pipelines"]["metrics"]
    assert metrics["receivers"] == ["otlp"]
    assert metrics["processors"] == ["memory_limiter", "batch"]
    (exporter,) = metrics["exporters"]
    assert exporter.split("/")[0] == "clickhouse"  # the clickhouse exporter's type, one more instance
    assert exporter != "clickhouse", "the traces exporter never creates schema; metrics have their own instance"


def test_metrics_exporter_writes_the_exporters_metric_tables_in_our_database():
    """Table names per metric type (the exporter's `metrics_tables.<type>.name`); the tables
    are the exporter's own DDL (create_schema), so no migration may create one of them."""
    traces = CONFIGS["default"]["exporters"]["clickhouse"]
    metrics = CONFIGS["default"]["exporters"]["clickhouse/metrics"]
    assert metrics["create_schema"] is True
    assert {kind: table["name"] for kind, table in metrics["metrics_tables"].items()} == METRICS_TABLES
    for key in ("endpoint", "username", "password", "database", "ttl"):
        assert metrics[key] == traces[key], key
    assert metrics["retry_on_failure"]["enabled"] is True and metrics["sending_queue"]["enabled"] is True
    created = "\n".join(rendered_statements(database=metrics["database"]))
    for table in METRICS_TABLES.values():
        assert f".{table} " not in created and f".{table}\n" not in created


def test_the_metrics_the_app_emits_are_the_ones_the_config_names():
    """The pipeline's comment names real instruments (semconv.METRIC_*), so the docs and the
    config never drift from what the app exports."""
    text = CONFIG.read_text(encoding="utf-8")
    for name in (
        semconv.METRIC_COST,
        semconv.METRIC_CACHE_SAVINGS,
        semconv.METRIC_TOKEN_USAGE,
        semconv.METRIC_OPERATION_DURATION,
        semconv.METRIC_BUDGET_EVENTS,
        semconv.METRIC_LIMITER_DECISIONS,
    ):
        assert name in text, name


def test_compose_demo_app_exports_metrics_over_otlp():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    command = compose["services"]["demo-app"]["command"]
    assert command[command.index("--metrics_exporter") + 1] == "otlp"
