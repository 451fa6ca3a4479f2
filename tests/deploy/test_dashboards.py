"""Grafana dashboards, provisioning and alert rules: valid for Grafana, and every query runs.

Every panel query, variable query and alert query is expanded the way the ClickHouse data
source expands it (otel_llmcost.reporting.grafana_macros) and executed on chdb loaded with the demo
data (test_dashboards_support). A query that errors, returns other columns than the panel
expects, or returns nothing on that data fails here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llmcost.reporting import grafana_macros as gm
from otel_llmcost.reporting.anomalies import KINDS
from otel_llmcost.reporting.html import (
    column_overrides,
    expanded_panel_sql,
    iter_panels,
    load_dashboards,
    query_variables,
    resolve_variables,
    run_sql,
    variable_sql,
)
from otel_llmcost.storage.migrations import migration_files
from tests.helpers import anomaly_fixture
from tests.helpers.budget_rows import add_demo_budgets
from tests.helpers.dashboard_db import open_dashboard_database
from tests.helpers.paths import DASHBOARDS, ROOT

PROVISIONING = DASHBOARDS / "provisioning"
PLUGIN = "grafana-clickhouse-datasource"
VARIABLES = ("service", "endpoint", "model", "team")

# What each panel must return, by dashboard uid and panel title. A panel added without an
# entry here fails test_every_panel_has_an_expected_column_list.
EXPECTED_COLUMNS: dict[str, dict[str, list[str]]] = {
    "llmcost-overview": {
        "Spend: this hour, today, this month": ["ThisHour", "Today", "ThisMonth"],
        "Burn rate and projected month end": ["BurnPerDay", "MonthToDate", "ProjectedMonthEnd"],
        "Unpriced calls (cost unknown)": ["UnpricedCalls"],
        "Spend by endpoint": ["time", "Endpoint", "Spend"],
        "Spend by model": ["time", "RequestModel", "Spend"],
        "Spend by feature": ["time", "Feature", "Spend"],
        "Spend by team": ["time", "Team", "Spend"],
        "Top users": ["User", "Team", "UserCalls", "InputTokens", "OutputTokens", "Spend", "CostPerCall"],
        "Cost per successful task": ["Feature", "TaskCount", "Succeeded", "SuccessRate", "Spend", "CostPerSuccess"],
        "Unpriced models": [
            "ServiceName",
            "Provider",
            "RequestModel",
            "ResponseModel",
            "UnpricedCalls",
            "InputTokens",
            "OutputTokens",
            "LastSeen",
        ],
        "Spend by source": ["Source", "SourceCalls", "UnpricedCalls", "Spend"],
        "Recorded cost against the price catalogue": [
            "Provider",
            "RequestModel",
            "Calls",
            "RecordedCostUsd",
            "CatalogueCostUsd",
            "NewlyPricedCalls",
            "NewlyPricedCostUsd",
            "StillUnpricedCalls",
            "RepricedCalls",
            "RepricingDeltaUsd",
        ],
        "Cost the provider reported vs ours": [
            "Provider",
            "RequestModel",
            "ReportedSource",
            "Calls",
            "ReportedCostUsd",
            "ComputedCostUsd",
            "DisagreeingCalls",
            "UnpricedCalls",
            "DifferenceUsd",
        ],
        "Savings opportunities": ["Kind", "ServiceName", "Key", "Model", "MonthlySavingUsd", "Evidence", "Action"],
    },
    "llmcost-savings": {
        "Routing: small requests on an expensive model": [
            "ServiceName",
            "Endpoint",
            "RequestModel",
            "ToModel",
            "Calls",
            "SmallCalls",
            "SmallShare",
            "SmallSpend",
            "EstSmallSpendOnTarget",
            "EstSavingsPerMonth",
        ],
        "Cost per successful task by model": [
            "ServiceName",
            "Endpoint",
            "Model",
            "Tasks",
            "SuccessfulTasks",
            "SuccessRate",
            "CostTotal",
            "CostPerSuccessfulTask",
        ],
        "Batch-eligible background work": [
            "ServiceName",
            "Feature",
            "RequestModel",
            "Reason",
            "Calls",
            "Spend",
            "EstSpendAtBatchPrice",
            "BatchDiscount",
            "EstSavingsPerMonth",
        ],
        "Near-duplicate requests": [
            "ServiceName",
            "RequestModel",
            "Endpoints",
            "Calls",
            "DistinctRequests",
            "Spend",
            "RepeatSpend",
            "NearOnlyRepeatSpend",
            "LastSeen",
        ],
        "Input dollars per prompt component": [
            "ServiceName",
            "Endpoint",
            "Component",
            "Calls",
            "TokensPerCall",
            "TokenShare",
            "CostUsd",
            "CostShare",
        ],
        "Output: truncation and verbosity": [
            "ServiceName",
            "Endpoint",
            "Calls",
            "TruncationRate",
            "AvgOutputTokens",
            "P95OutputTokens",
            "MaxTokensUsedShare",
            "OutputCostUsd",
            "OutputCostShare",
        ],
        "Tail concentration": ["ServiceName", "Endpoint", "Calls", "TopCalls", "CostUsd", "TopCostUsd", "TopShare"],
    },
    "llmcost-caching": {
        "Caching: hit rate, saved, write premium": ["HitRate", "Saved", "WritePremium"],
        "Cache hit rate by endpoint": ["time", "Endpoint", "HitRate"],
        "Dollars saved and write premium": ["time", "Saved", "WritePremium"],
        "Cache efficiency by endpoint and model": [
            "Endpoint",
            "RequestModel",
            "InputTokens",
            "CacheReadTokens",
            "CacheWriteTokens",
            "HitRate",
            "Saved",
            "WritePremium",
        ],
        "Caches that never paid back": [
            "ServiceName",
            "RequestModel",
            "PrefixHash",
            "Endpoints",
            "Writes",
            "Reads",
            "BreakevenReads",
            "WrittenTokens",
            "WritePremium",
            "NetLoss",
            "LastWrite",
        ],
        "Missed caching: repeated prefixes never cached": [
            "ServiceName",
            "RequestModel",
            "PrefixHash",
            "Endpoints",
            "Calls",
            "PrefixTokens",
            "MinCacheTokens",
            "ExpectedReads",
            "EstSavingsPerMonth",
            "LastSeen",
        ],
        "Distinct prompt prefixes per hour": ["time", "Endpoint", "DistinctPrefixes"],
        "Retrieved evidence never cited": [
            "Endpoint",
            "Calls",
            "TokensSent",
            "TokensCited",
            "TokensNeverCited",
            "CitedShare",
            "NeverCitedUsd",
        ],
    },
    "llmcost-reliability": {
        "Throttled calls (429) and retries": ["time", "ThrottledCalls", "ThrottledAttempts", "Retries"],
        "Throttled share by model": ["time", "RequestModel", "ThrottledShare"],
        "Lowest remaining request headroom per model": ["time", "RequestModel", "RequestsHeadroom"],
        "Rate-limit headroom per model": [
            "Provider",
            "RequestModel",
            "ModelCalls",
            "Throttled",
            "MinRequestsRemaining",
            "RequestsLimit",
            "MinTokensRemaining",
            "TokensLimit",
            "RequestsHeadroom",
            "TokensHeadroom",
        ],
        "Latency p50 / p90 / p99": ["time", "p50", "p90", "p99"],
        "Time to first token p50 / p90 / p99 (streams)": ["time", "p50", "p90", "p99"],
        "p99 latency by model": ["time", "RequestModel", "p99"],
        "Error rate by endpoint": ["time", "Endpoint", "ErrorRate"],
        "Error types": [
            "Error",
            "HttpStatus",
            "Provider",
            "RequestModel",
            "Endpoint",
            "FailedCalls",
            "Retries",
            "LastSeen",
        ],
        "App throttle rate by route": ["time", "Route", "ThrottleRate"],
        "App throttle rate by user tier": ["time", "Tier", "ThrottleRate"],
        "Our throttling vs provider 429s": ["time", "AppThrottleRate", "ProviderThrottleRate"],
        "Our throttling and provider 429s per route": [
            "Route",
            "Decisions",
            "Refused",
            "AppThrottleRate",
            "LLMCalls",
            "ProviderThrottled",
            "ProviderThrottledAttempts",
            "ProviderThrottleRate",
        ],
    },
    "llmcost-anomalies": {
        "Anomalies and why": [
            "Kind",
            "Dimension",
            "Key",
            "ServiceName",
            "At",
            "State",
            "Expected",
            "Observed",
            "Score",
            "Explanation",
            "TopContributors",
            "DetectedAt",
            "LastSeen",
        ],
        "Anomalies by kind": ["time", "Kind", "Anomalies"],
        "Flagged spend days": [
            "Day",
            "ServiceName",
            "Endpoint",
            "Spend",
            "PriorMean",
            "TimesPriorMean",
            "ZScore",
            "PriorDays",
        ],
        "Daily spend against the prior 7-day mean": ["time", "Spend", "PriorMean", "FlaggedEndpoints"],
        "Expensive requests (last 7 days)": [
            "Timestamp",
            "ServiceName",
            "Endpoint",
            "RequestModel",
            "Feature",
            "User",
            "TraceId",
            "InputTokens",
            "OutputTokens",
            "CostTotal",
            "EndpointP99Cost",
            "Reason",
        ],
        "Cache hit-rate drops": [
            "Hour",
            "ServiceName",
            "Endpoint",
            "RequestModel",
            "InputTokens",
            "HitRate",
            "PriorHitRate",
            "PriorHours",
        ],
        "Repeated identical requests": [
            "ServiceName",
            "RequestModel",
            "RequestHash",
            "Endpoints",
            "Calls",
            "Repeats",
            "RepeatSpend",
            "LastSeen",
        ],
        "Calls with estimated usage": [
            "ServiceName",
            "Provider",
            "RequestModel",
            "Endpoint",
            "EstimatedCalls",
            "InputTokens",
            "OutputTokens",
            "Spend",
        ],
    },
    "llmcost-budgets": {
        "Budgets at their thresholds": ["Scopes", "AtNotify70", "AtDowngrade85", "AtRefuse95"],
        "Spend vs limit per budget": [
            "Budget",
            "Scope",
            "ScopeValue",
            "Period",
            "PeriodStart",
            "Calls",
            "UsedUsd",
            "LimitUsd",
            "UsedShare",
            "UsedTokens",
            "LimitTokens",
            "LimitShare",
        ],
        "Burn rate and projected exhaustion": [
            "Budget",
            "Scope",
            "ScopeValue",
            "Period",
            "BurnRateUsdPerDay",
            "ProjectedUsdAtPeriodEnd",
            "LimitUsd",
            "ProjectedExhaustion",
            "PeriodEnd",
        ],
        "Headroom per scope": [
            "Scope",
            "Budget",
            "ScopeValue",
            "HeadroomUsd",
            "HeadroomShare",
            "HeadroomTokens",
            "PeriodEnd",
        ],
        "Budget events per hour": ["time", "Kind", "Events"],
        "Recent budget events": [
            "Timestamp",
            "Kind",
            "Budget",
            "Scope",
            "ScopeValue",
            "Period",
            "Threshold",
            "Action",
            "UsedUsd",
            "LimitUsd",
            "UsedShare",
            "Model",
            "DowngradedTo",
            "ServiceName",
            "Endpoint",
            "Feature",
            "User",
            "TraceId",
        ],
    },
}

ALERT_COLUMNS = {
    "llmcost-throttle-rate": ["ServiceName", "RequestModel", "value"],
    "llmcost-app-throttle-rate": ["ServiceName", "Route", "value"],
    "llmcost-unpriced-spend": ["ServiceName", "Provider", "RequestModel", "value"],
    "llmcost-cache-hit-floor": ["ServiceName", "Endpoint", "value"],
    "llmcost-budget-notify": ["Budget", "Scope", "ScopeValue", "Period", "value"],
    "llmcost-budget-downgrade": ["Budget", "Scope", "ScopeValue", "Period", "value"],
    "llmcost-budget-refuse": ["Budget", "Scope", "ScopeValue", "Period", "value"],
    "llmcost-budget-unchecked": ["ServiceName", "value"],
    **{
        uid: ["Kind", "Dimension", "Key", "ServiceName", "Explanation", "value"]
        for uid in (
            "llmcost-anomaly-spend",
            "llmcost-anomaly-new-entity",
            "llmcost-anomaly-calls",
            "llmcost-anomaly-cache",
            "llmcost-anomaly-reliability",
            "llmcost-anomaly-unpriced",
        )
    },
}
# The anomaly rules, by family: the kinds each covers and its severity. Every kind of
# v_anomalies is covered by exactly one rule.
ANOMALY_RULES = {
    "llmcost-anomaly-spend": (("spend", "cost_per_call", "tokens_per_call", "drift"), "warning"),
    "llmcost-anomaly-new-entity": (("new_entity",), "warning"),
    "llmcost-anomaly-calls": (("calls",), "info"),
    "llmcost-anomaly-cache": (("cache_hit_rate",), "warning"),
    "llmcost-anomaly-reliability": (("error_rate", "throttled_share", "latency"), "critical"),
    "llmcost-anomaly-unpriced": (("unpriced_share",), "info"),
}
# Anomaly rules that the scripted v_anomalies rows (tests.helpers.anomaly_fixture: an open
# spend and an open cache anomaly detected this hour) must fire; the others stay silent.
ANOMALY_ALERTS_FIRING_ON_SCRIPTED_ROWS = {"llmcost-anomaly-spend", "llmcost-anomaly-cache"}
# The database (beside the demo's) whose v_anomalies is a table of the scripted rows.
SCRIPTED = "llmcost_scripted_anomalies"
# Alerts that the demo data (today's spike in spend and calls, cache drop, unpriced model, app
# limiter refusals, budgets at 80.5%, 88% and 97%, unchecked calls) must fire.
ALERTS_FIRING_ON_DEMO = {
    "llmcost-anomaly-spend",
    "llmcost-anomaly-calls",
    "llmcost-anomaly-cache",
    "llmcost-unpriced-spend",
    "llmcost-app-throttle-rate",
    "llmcost-budget-notify",
    "llmcost-budget-downgrade",
    "llmcost-budget-refuse",
    "llmcost-budget-unchecked",
}
# The budget threshold rules and the share of a limit at which each fires.
BUDGET_THRESHOLDS = {"llmcost-budget-notify": 0.70, "llmcost-budget-downgrade": 0.85, "llmcost-budget-refuse": 0.95}


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


DASHBOARD_FILES = sorted(DASHBOARDS.glob("*.json"))
BOARDS = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in DASHBOARD_FILES}
DATASOURCES = _load_yaml(PROVISIONING / "datasources" / "clickhouse.yaml")
RULE_FILES = {path.name: _load_yaml(path) for path in sorted((PROVISIONING / "alerting").glob("*.yaml"))}
ALL_RULES = [rule for rules in RULE_FILES.values() for group in rules["groups"] for rule in group["rules"]]
PANELS = [(board["uid"], panel) for board in BOARDS.values() for panel in iter_panels(board)]


def _panel_id(item: tuple[str, dict[str, Any]]) -> str:
    return f"{item[0]}:{item[1]['title']}"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    c = open_dashboard_database(tmp_path_factory.getbasetemp())
    add_demo_budgets(c)  # a no-op when the shared database has them already
    # The detectors' own view (issue 19); scripted rows only in the SCRIPTED database beside it.
    assert anomaly_fixture.view_exists(c) and not anomaly_fixture.is_scripted(c)
    # Beside it, a database whose v_anomalies holds the scripted rows, for exact expectations.
    c.command(f"CREATE DATABASE IF NOT EXISTS {SCRIPTED}")
    anomaly_fixture.install(c, database=SCRIPTED)
    yield c
    c.close()


@pytest.fixture(scope="module")
def week() -> gm.TimeRange:
    return gm.TimeRange.last(7 * 86400)


@pytest.fixture(scope="module")
def variables_for(client, week):
    """Resolved variables per (dashboard, selection), run once each (Grafana runs them per load)."""
    cache: dict[tuple[str, str], dict[str, gm.Variable]] = {}

    def resolve(uid: str, selections: dict[str, list[str]] | None = None) -> dict[str, gm.Variable]:
        key = (uid, json.dumps(selections, sort_keys=True))
        if key not in cache:
            board = next(b for b in BOARDS.values() if b["uid"] == uid)
            cache[key] = resolve_variables(client, board, week, selections)
        return cache[key]

    return resolve


def _datasource_uid() -> str:
    (source,) = DATASOURCES["datasources"]
    return source["uid"]


# --- structure ------------------------------------------------------------------------------


def test_there_are_the_six_dashboards():
    titles = {board["title"] for board in BOARDS.values()}
    assert titles == {
        "LLM cost overview",
        "Savings",
        "Prompt caching",
        "Rate limits and reliability",
        "Anomalies",
        "Budgets",
    }
    assert {board["uid"] for board in BOARDS.values()} == set(EXPECTED_COLUMNS)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_has_grafana_schema_fields(name):
    board = BOARDS[name]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert board["title"]
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert board["time"]["from"].startswith("now-") and board["time"]["to"] == "now"
    assert "id" not in board or board["id"] is None  # provisioned dashboards carry no database id
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique within a dashboard"
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert set(grid) >= {"h", "w", "x", "y"}
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        assert panel["type"] in {"timeseries", "stat", "table", "barchart", "row"}


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_do_not_overlap(name):
    cells: set[tuple[int, int]] = set()
    for panel in BOARDS[name]["panels"]:
        g = panel["gridPos"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area


def test_datasource_provisioning_is_the_clickhouse_plugin_with_a_read_only_user():
    (source,) = DATASOURCES["datasources"]
    assert DATASOURCES["apiVersion"] == 1
    assert source["type"] == PLUGIN
    assert source["jsonData"]["protocol"] in ("http", "native")
    assert source["jsonData"]["defaultDatabase"] == "otel"
    users = (ROOT / "docker" / "clickhouse" / "users.d" / "grafana-readonly.xml").read_text(encoding="utf-8")
    user = source["jsonData"]["username"]
    assert f"<{user}>" in users and "<readonly>2</readonly>" in users
    assert re.search(r"\$\{?LLMCOST_GRAFANA_CLICKHOUSE_PASSWORD\}?", source["secureJsonData"]["password"])
    assert 'from_env="LLMCOST_GRAFANA_CLICKHOUSE_PASSWORD"' in users


@pytest.mark.parametrize("item", PANELS, ids=_panel_id)
def test_every_panel_and_query_uses_the_provisioned_datasource(item):
    _, panel = item
    uid = _datasource_uid()
    assert panel["datasource"] == {"type": PLUGIN, "uid": uid}
    for target in panel["targets"]:
        assert target["datasource"] == {"type": PLUGIN, "uid": uid}
        assert target["editorType"] == "sql" and target["rawSql"].strip()
        assert target["format"] == (0 if panel["type"] == "timeseries" else 1)
        assert target["queryType"] == ("timeseries" if panel["type"] == "timeseries" else "table")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_template_variables_query_the_views_and_every_reference_exists(name):
    board = BOARDS[name]
    variables = query_variables(board)
    assert [v["name"] for v in variables] == list(VARIABLES)
    for var in variables:
        assert var["datasource"] == {"type": PLUGIN, "uid": _datasource_uid()}
        assert var["multi"] and var["includeAll"]
        assert re.search(r"\bFROM v_\w+", variable_sql(var))
    defined = {v["name"] for v in board["templating"]["list"]}
    for panel in iter_panels(board):
        for target in panel["targets"]:
            assert gm.referenced_variables(target["rawSql"]) <= defined, panel["title"]
    for var in variables:
        assert gm.referenced_variables(variable_sql(var)) <= defined


@pytest.mark.parametrize("item", PANELS, ids=_panel_id)
def test_panels_read_views_and_rollups_never_raw_spans(item):
    sql = item[1]["targets"][0]["rawSql"]
    tables = set(re.findall(r"\bFROM\s+([A-Za-z_][\w.]*)", sql))
    assert tables, sql
    for table in tables:
        assert table.startswith("v_") or table in {"llm_cost_hourly", "llm_user_daily"}, table
    assert "otel_traces" not in sql and "SpanAttributes" not in sql


def test_every_panel_has_an_expected_column_list():
    titles = {(uid, panel["title"]) for uid, panel in PANELS}
    expected = {(uid, title) for uid, panels in EXPECTED_COLUMNS.items() for title in panels}
    assert titles == expected


def _created_in_migrations() -> set[str]:
    created = set()
    for path in migration_files():
        created |= set(re.findall(r"CREATE (?:VIEW|TABLE) IF NOT EXISTS \{database\}\.(\w+)", path.read_text()))
    return created


def test_views_used_by_dashboards_exist_in_the_migrations():
    created = _created_in_migrations()
    sql = [p["targets"][0]["rawSql"] for _, p in PANELS] + [r["data"][0]["model"]["rawSql"] for r in ALL_RULES]
    used = {t for text in sql for t in re.findall(r"\bFROM\s+([A-Za-z_]\w*)", text)}
    assert used <= created, used - created


def test_dashboard_provider_points_at_the_mounted_dashboards():
    provider = _load_yaml(PROVISIONING / "dashboards" / "llmcost.yaml")
    (entry,) = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"].startswith("/var/lib/grafana/dashboards")


# --- alert rules ----------------------------------------------------------------------------


def test_alert_rules_cover_every_condition():
    assert set(RULE_FILES) == {"rules.yaml", "budgets.yaml", "anomalies.yaml"}
    for rules in RULE_FILES.values():
        assert rules["apiVersion"] == 1
        for group in rules["groups"]:
            assert (
                group["orgId"] == 1 and group["folder"] == "LLM cost" and re.fullmatch(r"\d+[smh]", group["interval"])
            )
    uids = [rule["uid"] for rule in ALL_RULES]
    assert len(uids) == len(set(uids)) and set(uids) == set(ALERT_COLUMNS)
    assert len({group["name"] for rules in RULE_FILES.values() for group in rules["groups"]}) == sum(
        len(rules["groups"]) for rules in RULE_FILES.values()
    ), "group names must be unique within the folder"


@contextlib.contextmanager
def _on_scripted_rows(client):
    """The client reading the scripted v_anomalies (unqualified names resolve in SCRIPTED)."""
    before = client.database
    client.database = SCRIPTED
    try:
        yield client
    finally:
        client.database = before


def test_anomaly_rules_cover_every_kind_once_with_a_severity_per_family():
    rules = {rule["uid"]: rule for rule in RULE_FILES["anomalies.yaml"]["groups"][0]["rules"]}
    assert set(rules) == set(ANOMALY_RULES)
    covered: list[str] = []
    for uid, (kinds, severity) in ANOMALY_RULES.items():
        rule = rules[uid]
        sql = rule["data"][0]["model"]["rawSql"]
        (listed,) = re.findall(r"Kind IN \(([^)]*)\)", sql)
        assert tuple(re.findall(r"'(\w+)'", listed)) == kinds, uid
        assert "FROM v_anomalies" in sql and "WHERE Open = 1" in sql and "DetectedAt >= " in sql
        assert rule["labels"]["severity"] == severity
        assert rule["annotations"]["description"] == "{{ $labels.Explanation }}"
        assert "$labels.Kind" in rule["annotations"]["summary"] and rule["annotations"]["__panelId__"] == "7"
        assert rule["data"][0]["relativeTimeRange"] == {"from": 3600, "to": 0}
        covered += kinds
    assert sorted(covered) == sorted(KINDS)


def _anomaly_panel(title: str) -> dict[str, Any]:
    board = next(b for b in BOARDS.values() if b["uid"] == "llmcost-anomalies")
    return next(p for p in iter_panels(board) if p["title"] == title)


def test_anomalies_panel_shows_each_anomaly_with_its_explanation(client, week, variables_for):
    variables = variables_for("llmcost-anomalies")
    for scripted in (False, True):
        with _on_scripted_rows(client) if scripted else contextlib.nullcontext(client):
            columns, rows = run_sql(client, expanded_panel_sql(_anomaly_panel("Anomalies and why"), week, variables))
        got = [dict(zip(columns, r, strict=True)) for r in rows]
        assert got and all(r["Explanation"] and r["Kind"] in KINDS for r in got)
        assert all(r["State"] in ("open", "closed") for r in got)
        detected = [r["DetectedAt"] for r in got]
        assert detected == sorted(detected, reverse=True)
    # The scripted rows active in the last 7 days, newest first; the 10-day-old one is out of range.
    assert [r["Kind"] for r in got] == ["spend", "cache_hit_rate", "error_rate", "new_entity", "drift"]
    spend = got[0]
    assert (spend["Key"], spend["State"], spend["Expected"], spend["Observed"]) == (
        "POST /translate",
        "open",
        0.10,
        2.40,
    )
    assert spend["TopContributors"] == "model claude-sonnet-4-20250514 100%, user user-batch 96%"
    with _on_scripted_rows(client):
        _, rows = run_sql(client, expanded_panel_sql(_anomaly_panel("Anomalies by kind"), week, variables))
    assert sorted({r[1] for r in rows}) == ["cache_hit_rate", "drift", "error_rate", "new_entity", "spend"]
    assert sum(r[2] for r in rows) == 5


def test_anomalies_panel_filters_each_dimension_by_its_variable(client, week, variables_for):
    """An endpoint selection narrows endpoint anomalies only; model, feature and team rows stay."""
    variables = variables_for("llmcost-anomalies", {"endpoint": ["POST /kb"]})
    with _on_scripted_rows(client):
        columns, rows = run_sql(client, expanded_panel_sql(_anomaly_panel("Anomalies and why"), week, variables))
    keys = [r[columns.index("Key")] for r in rows]
    assert keys == ["POST /kb", anomaly_fixture.HOSTILE_KEY, "acme-finetune-7b", "summaries"]


@pytest.mark.parametrize("uid", sorted(ANOMALY_RULES))
def test_anomaly_rule_fires_on_its_open_kinds_detected_this_hour(client, uid):
    """On the scripted rows: the spend and cache rules fire once each, labelled with the
    explanation; closed or older anomalies fire nothing."""
    rule = next(r for r in ALL_RULES if r["uid"] == uid)
    now = dt.datetime.now(dt.timezone.utc)
    time_range = gm.TimeRange(now - dt.timedelta(hours=1), now)
    with _on_scripted_rows(client):
        columns, rows = run_sql(client, gm.expand(rule["data"][0]["model"]["rawSql"], time_range=time_range))
    assert columns == ALERT_COLUMNS[uid]
    if uid not in ANOMALY_ALERTS_FIRING_ON_SCRIPTED_ROWS:
        assert rows == []
        return
    ((kind, dimension, key, service, explanation, value),) = rows
    assert kind in ANOMALY_RULES[uid][0] and dimension == "endpoint" and service == "billing-worker"
    assert explanation.startswith(("spend 2.40", "cache hit rate")) and value > 0


def test_budget_rules_fire_at_the_ladder_thresholds():
    """notify 70%, downgrade 85%, refuse 95% of the limit, on v_budget_status's LimitShare,
    with rising severity; and one rule on calls sent unchecked (store unavailable)."""
    rules = {rule["uid"]: rule for rule in ALL_RULES}
    severities = []
    for uid, share in BUDGET_THRESHOLDS.items():
        sql = rules[uid]["data"][0]["model"]["rawSql"]
        assert "FROM v_budget_status" in sql and re.search(rf"WHERE LimitShare >= {share:.2f}\s*$", sql), sql
        severities.append(rules[uid]["labels"]["severity"])
    assert severities == ["info", "warning", "critical"]
    unchecked = rules["llmcost-budget-unchecked"]["data"][0]["model"]["rawSql"]
    assert "FROM v_budget_events" in unchecked and "Event = 'llmcost.budget.unchecked'" in unchecked


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r["uid"])
def test_alert_rule_is_well_formed(rule):
    refs = {item["refId"]: item for item in rule["data"]}
    assert rule["condition"] in refs
    query = refs["A"]
    assert query["datasourceUid"] == _datasource_uid()
    assert query["model"]["datasource"] == {"type": PLUGIN, "uid": _datasource_uid()}
    assert query["relativeTimeRange"]["from"] > query["relativeTimeRange"]["to"] >= 0
    condition = refs[rule["condition"]]
    assert condition["datasourceUid"] == "__expr__" and condition["model"]["expression"] == "A"
    assert rule["noDataState"] in ("OK", "NoData", "Alerting") and rule["execErrState"] in ("Error", "Alerting", "OK")
    assert re.search(r"\bFROM v_\w+", query["model"]["rawSql"])
    links = rule["annotations"]
    board = next(b for b in BOARDS.values() if b["uid"] == links["__dashboardUid__"])
    assert int(links["__panelId__"]) in {p["id"] for p in board["panels"]}


# --- execution on chdb with demo data -------------------------------------------------------


def _columns_and_rows(client, sql: str) -> tuple[list[str], list[tuple]]:
    try:
        return run_sql(client, sql)
    except Exception as exc:  # the failing SQL in the message, not just the server error
        pytest.fail(f"query failed: {str(exc).splitlines()[0] if str(exc) else exc!r}\n{sql}")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_variable_queries_return_options(client, week, name):
    variables = resolve_variables(client, BOARDS[name], week)
    for var in variables.values():
        assert var.options, f"${var.name} has no options"
    assert "llmcost-demo" in variables["service"].options


@pytest.fixture(scope="module")
def all_selected(client, week, variables_for):
    """Each panel's query with every variable at All, run once for the tests that read it
    (the same SQL on the same data: the module's database and time range)."""
    cache: dict[str, tuple[list[str], list[tuple]]] = {}

    def run(uid: str, panel: dict[str, Any]) -> tuple[list[str], list[tuple]]:
        sql = expanded_panel_sql(panel, week, variables_for(uid))
        if sql not in cache:
            cache[sql] = _columns_and_rows(client, sql)  # a failure is raised, never cached
        return cache[sql]

    return run


@pytest.mark.parametrize("item", PANELS, ids=_panel_id)
def test_panel_query_runs_with_all_selected(all_selected, item):
    uid, panel = item
    columns, rows = all_selected(uid, panel)
    assert columns == EXPECTED_COLUMNS[uid][panel["title"]]
    assert rows, f"{panel['title']} returned no rows on the demo data"
    if panel["type"] == "timeseries":
        assert all(isinstance(r[0], (dt.datetime, dt.date)) for r in rows)
        numeric = [i for i, c in enumerate(columns) if c != "time" and not isinstance(rows[0][i], str)]
        assert numeric and any(isinstance(r[i], (int, float)) for r in rows for i in numeric)


@pytest.mark.parametrize("item", PANELS, ids=_panel_id)
def test_panel_query_runs_with_a_multi_value_selection(client, week, variables_for, item):
    """Two services (one quoted with a '), two endpoints, one model, one team: the IN lists expand."""
    uid, panel = item
    selections = {
        "service": ["llmcost-demo", "it's-not-there"],
        "endpoint": ["POST /chat", "POST /search"],
        "model": ["gpt-4o-mini"],
        "team": ["product"],
    }
    variables = variables_for(uid, selections)
    sql = expanded_panel_sql(panel, week, variables)
    assert not re.search(r"\$\{?\w", sql), "a variable or macro was left unexpanded"
    if "ServiceName IN" in sql:
        assert "'llmcost-demo','it\\'s-not-there'" in sql
    columns, _ = _columns_and_rows(client, sql)
    assert columns == EXPECTED_COLUMNS[uid][panel["title"]]


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r["uid"])
def test_alert_query_runs_and_labels_one_numeric_value(client, rule):
    query = next(item for item in rule["data"] if item["refId"] == "A")
    span = query["relativeTimeRange"]
    now = dt.datetime.now(dt.timezone.utc)
    time_range = gm.TimeRange(now - dt.timedelta(seconds=span["from"]), now - dt.timedelta(seconds=span["to"]))
    columns, rows = _columns_and_rows(client, gm.expand(query["model"]["rawSql"], time_range=time_range))
    assert columns == ALERT_COLUMNS[rule["uid"]]
    for row in rows:
        assert all(isinstance(v, str) for v in row[:-1]) and isinstance(row[-1], (int, float))
    if rule["uid"] in ALERTS_FIRING_ON_DEMO:
        threshold = next(item for item in rule["data"] if item["refId"] == rule["condition"])
        (condition,) = threshold["model"]["conditions"]
        assert condition["evaluator"]["type"] == "gt"
        assert any(row[-1] > condition["evaluator"]["params"][0] for row in rows), rule["uid"]


def test_sql_view_names_do_not_depend_on_the_database_name():
    """Panels name views unqualified: the data source's defaultDatabase (and --database) picks it."""
    for _, panel in PANELS:
        assert not re.search(r"\bFROM\s+\w+\.\w+", panel["targets"][0]["rawSql"])


def test_budget_panels_show_the_demo_budgets(client, week, variables_for):
    """Hand-computed on tests.helpers.budget_rows: support-daily at 8.80 of 10 USD, alice at
    0.97 of 1 USD, support-weekly-tokens at 32 200 of 40 000 tokens, support-monthly quiet."""
    board = next(b for b in BOARDS.values() if b["uid"] == "llmcost-budgets")
    panels = {p["title"]: p for p in iter_panels(board)}
    variables = variables_for("llmcost-budgets")
    columns, rows = run_sql(client, expanded_panel_sql(panels["Spend vs limit per budget"], week, variables))
    by_key = {
        (r[columns.index("Budget")], r[columns.index("ScopeValue")]): dict(zip(columns, r, strict=True)) for r in rows
    }
    assert by_key[("support-daily", "support-desk")]["UsedUsd"] == pytest.approx(8.80)
    assert by_key[("support-daily", "support-desk")]["LimitShare"] == pytest.approx(0.88)
    assert by_key[("support-per-user", "u-alice")]["LimitShare"] == pytest.approx(0.97)
    assert by_key[("support-per-user", "u-bob")]["LimitShare"] == pytest.approx(0.30)
    tokens = by_key[("support-weekly-tokens", "support-desk")]
    assert (tokens["UsedTokens"], tokens["LimitTokens"], tokens["UsedShare"]) == (32_200, 40_000, None)
    assert tokens["LimitShare"] == pytest.approx(0.805)
    columns, rows = run_sql(client, expanded_panel_sql(panels["Recent budget events"], week, variables))
    kinds = [r[columns.index("Kind")] for r in rows if r[columns.index("ServiceName")] == "support-bot"]
    assert sorted(kinds) == ["downgraded", "refused", "threshold_crossed", "unchecked", "unchecked"]
    stamps = [r[columns.index("Timestamp")] for r in rows]
    assert stamps == sorted(stamps, reverse=True)


def test_load_dashboards_orders_them_like_the_report():
    assert [b["uid"] for b in load_dashboards(DASHBOARDS)] == list(EXPECTED_COLUMNS)


# --- macro expansion (the plugin's semantics) -----------------------------------------------

FIXED = gm.TimeRange(
    dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2026, 1, 2, 12, tzinfo=dt.timezone.utc)
)


def test_time_macros_expand_to_unix_second_datetimes():
    sql = gm.expand("$__timeFilter(Hour) AND x >= $__fromTime AND x <= $__toTime", time_range=FIXED)
    assert sql == (
        "Hour >= toDateTime(1767225600) AND Hour <= toDateTime(1767355200)"
        " AND x >= toDateTime(1767225600) AND x <= toDateTime(1767355200)"
    )
    assert gm.expand("$__dateFilter(Day)", time_range=FIXED) == (
        "Day >= toDate('2026-01-01') AND Day <= toDate('2026-01-02')"
    )


def test_interval_macros_use_the_panel_interval_never_below_one_second():
    assert gm.expand("$__timeInterval(Hour), $__interval_s", time_range=FIXED, interval_s=3600) == (
        "toStartOfInterval(toDateTime(Hour), INTERVAL 3600 second), 3600"
    )
    assert gm.expand("$__interval_s", time_range=FIXED, interval_s=0) == "1"
    assert gm.interval_seconds(gm.TimeRange.last(86400), max_data_points=1000) == 60  # 86.4 s rounds to 1m
    assert gm.interval_seconds(gm.TimeRange.last(3600), min_interval="1h") == 3600


def test_conditional_all_drops_the_filter_for_all_and_keeps_it_for_a_selection():
    sql = "$__conditionalAll(Endpoint IN (${endpoint:singlequote}), $endpoint)"
    every = gm.Variable("endpoint", gm.ALL, options=["a", "b"])
    assert gm.expand(sql, time_range=FIXED, variables=[every]) == "1=1"
    some = gm.Variable("endpoint", ["POST /chat", "it's"], options=["a"])
    assert gm.expand(sql, time_range=FIXED, variables=[some]) == "Endpoint IN ('POST /chat','it\\'s')"


def test_variables_format_like_the_plugin():
    multi = gm.Variable("m", ["a", "b"])
    single = gm.Variable("s", "x")
    every = gm.Variable("e", gm.ALL, options=["p", "q"])
    custom = gm.Variable("c", gm.ALL, options=["p"], all_value=".*")
    sql = "$m ${s} [[m]] ${e:csv} ${e:sqlstring} $c $unknown $__interval_s"
    assert gm.expand(sql, time_range=FIXED, interval_s=5, variables=[multi, single, every, custom]) == (
        "'a','b' x 'a','b' p,q 'p','q' .* $unknown 5"
    )


def test_unknown_macro_and_missing_arguments_are_errors():
    with pytest.raises(ValueError, match="unknown macro"):
        gm.expand("$__timeFilterr(Hour)", time_range=FIXED)
    with pytest.raises(ValueError, match="needs arguments"):
        gm.expand("$__timeFilter", time_range=FIXED)


# --- units and variables, for every panel ---------------------------------------------------

# One rule for what a number is, from its column name; the first match wins. A numeric
# column that no rule names fails test_panel_units_match_what_each_column_holds: say what it is.
COLUMN_KINDS: list[tuple[str, str]] = [
    (r"p\d+|.*Ms", "ms"),
    # Before the dollars: a share of cost (CostShare) is a share.
    (r".*(Rate|Share|Headroom|Discount)|Threshold", "share"),
    (
        r"\w*(Usd|Cost|Spend|Savings)\w*|\w*(Saved|Premium|PerDay|Loss)"
        r"|PriorMean|MonthToDate|ProjectedMonthEnd|ThisHour|Today|ThisMonth",
        "usd",
    ),
    (
        r".*(Calls|Tokens|Count|Writes|Reads|Decisions|Refused|Throttled|Retries|Attempts|Anomalies|Events|Scopes|Tasks|Requests"
        r"|Repeats|Prefixes|Remaining|Limit|Succeeded|Days|Hours|Endpoints)|Tokens\w*|At[A-Z]\w*",
        "count",
    ),
    # Numbers without a unit: scores, a multiple, an HTTP status, and an anomaly's expected
    # and observed values (whose unit is the anomaly kind's, row by row).
    (r"Score|ZScore|TimesPriorMean|HttpStatus|Expected|Observed", "number"),
]
UNITS_BY_KIND = {
    "usd": {"currencyUSD"},
    "share": {"percentunit"},
    "ms": {"ms"},
    "count": {None, "none", "short"},
    "number": {None, "none", "short"},
}


def column_kind(column: str) -> str | None:
    return next((kind for pattern, kind in COLUMN_KINDS if re.fullmatch(pattern, column)), None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@pytest.mark.parametrize("item", PANELS, ids=_panel_id)
def test_panel_units_match_what_each_column_holds(all_selected, item):
    """count -> none/short, $ -> currencyUSD, share -> percentunit, ms -> ms: the unit Grafana
    (and the HTML report) applies to each numeric column, from defaults and overrides."""
    uid, panel = item
    columns, rows = all_selected(uid, panel)
    default = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    overrides = column_overrides(panel, columns)
    wrong = []
    for i, column in enumerate(columns):
        if not any(_is_number(row[i]) for row in rows):
            continue  # a label, a time, or a column the demo leaves empty
        kind = column_kind(column)
        assert kind is not None, f"{panel['title']}: no rule says what {column} holds (COLUMN_KINDS)"
        unit = overrides.get(column, {}).get("unit", default)
        if unit not in UNITS_BY_KIND[kind]:
            wrong.append(f"{column} ({kind}) has unit {unit!r}")
    assert not wrong, f"{panel['title']}: " + "; ".join(wrong)


@pytest.mark.parametrize("item", PANELS, ids=_panel_id)
def test_every_field_override_targets_a_column_the_panel_returns(item):
    uid, panel = item
    columns = EXPECTED_COLUMNS[uid][panel["title"]]
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        matcher = override["matcher"]
        assert column_overrides({"fieldConfig": {"overrides": [override]}}, columns), (
            f"{panel['title']}: override {matcher} matches none of {columns}"
        )


# Each dashboard variable and the columns that carry its dimension in a view.
DIMENSION_COLUMNS = {
    "service": ("ServiceName",),
    "endpoint": ("Endpoint", "Route", "Endpoints"),
    "model": ("RequestModel", "Model"),
    "team": ("Team", "Teams"),
}
NO_MATCH = "no-such-value-in-the-demo"

# Panels that do not filter on a variable, and why. Any other (panel, variable) pair must be
# honoured, so a new panel, or a view that gains a dimension, is checked without an edit here.
BUDGET_SCOPE = "budgets are per scope (user, tier, team...), not per call dimension"
TASK = "a task spans calls of several models"
LIMITER = "app limiter decisions carry a route and a tier, no model or team"
BACKGROUND = "batch-eligible work is the work outside any request: it has no endpoint"
PER_ENDPOINT = "an endpoint's profile (prompt parts, output, the tail of its costs), whatever model or team"
PROMPT_STABILITY = "a prompt prefix's stability is a property of the endpoint and model, whoever's team sends it"
ENDPOINT_SERIES = (
    "one daily spend series per endpoint, flagged against its own past: a model's or team's part is not that series"
)
OPPORTUNITY_KEY = "an opportunity is keyed by where to act (endpoint, feature or prefix), not by every dimension"
NOT_FILTERED: dict[tuple[str, str], dict[str, str]] = {
    ("llmcost-overview", "Cost per successful task"): {"model": TASK},
    # Key is an endpoint for most kinds but a feature for batch: filtering it by endpoint
    # would hide the batch items; no item is per team.
    ("llmcost-overview", "Savings opportunities"): {"endpoint": OPPORTUNITY_KEY, "team": OPPORTUNITY_KEY},
    ("llmcost-caching", "Distinct prompt prefixes per hour"): {"team": PROMPT_STABILITY},
    ("llmcost-savings", "Batch-eligible background work"): {"endpoint": BACKGROUND},
    **{
        ("llmcost-savings", title): {"model": PER_ENDPOINT, "team": PER_ENDPOINT}
        for title in ("Input dollars per prompt component", "Output: truncation and verbosity", "Tail concentration")
    },
    **{
        ("llmcost-reliability", title): {"model": LIMITER, "team": LIMITER}
        for title in (
            "App throttle rate by route",
            "App throttle rate by user tier",
            "Our throttling vs provider 429s",
            "Our throttling and provider 429s per route",
        )
    },
    ("llmcost-anomalies", "Flagged spend days"): {"model": ENDPOINT_SERIES, "team": ENDPOINT_SERIES},
    ("llmcost-anomalies", "Daily spend against the prior 7-day mean"): {
        "model": ENDPOINT_SERIES,
        "team": ENDPOINT_SERIES,
    },
    **{
        ("llmcost-budgets", title): dict.fromkeys(DIMENSION_COLUMNS, BUDGET_SCOPE)
        for title in (
            "Budgets at their thresholds",
            "Spend vs limit per budget",
            "Burn rate and projected exhaustion",
            "Headroom per scope",
        )
    },
}


@pytest.mark.parametrize("item", PANELS, ids=_panel_id)
def test_every_variable_is_honoured_unless_the_panel_says_why_not(item):
    """Rate-limit panels by endpoint and team, Top users by endpoint and model, cost per task
    by endpoint and team: every panel filters on every variable but the listed exceptions."""
    uid, panel = item
    referenced = gm.referenced_variables(panel["targets"][0]["rawSql"])
    exempt = NOT_FILTERED.get((uid, panel["title"]), {})
    ignored = {name for name in DIMENSION_COLUMNS if name not in referenced}
    assert ignored <= set(exempt), f"{panel['title']} ignores {sorted(ignored - set(exempt))}"
    assert not set(exempt) & referenced, f"{panel['title']}: NOT_FILTERED is stale for {set(exempt) & referenced}"


def _source_columns(client, sql: str) -> set[str]:
    found = set(re.findall(r"\bFROM\s+([A-Za-z_]\w*)(\()?", sql))
    # A parameterized view (every one of ours takes since_hours) is described with a value.
    sources = [f"(SELECT * FROM {table}(since_hours = 24))" if call else f"TABLE {table}" for table, call in found]
    return {row[0] for source in sources for row in client.query(f"DESCRIBE {source}").result_rows}


def _only_empty_aggregates(rows: list[tuple]) -> bool:
    return all(all(v is None or v == 0 or isinstance(v, str) for v in row) for row in rows)


@pytest.mark.parametrize("item", PANELS, ids=_panel_id)
def test_every_variable_is_honoured_where_the_panel_has_its_dimension(client, week, variables_for, item):
    """A panel whose views carry a variable's dimension filters on it: the query references
    the variable, and a selection that matches nothing returns no rows (or only empty totals)."""
    uid, panel = item
    sql = panel["targets"][0]["rawSql"]
    available = _source_columns(client, sql)
    checked = [name for name, columns in DIMENSION_COLUMNS.items() if available & set(columns)]
    for name in checked:
        assert name in gm.referenced_variables(sql), f"{panel['title']} ignores ${name}"
        variables = variables_for(uid, {name: [NO_MATCH]})
        _, rows = _columns_and_rows(client, expanded_panel_sql(panel, week, variables))
        assert _only_empty_aggregates(rows), f"{panel['title']}: ${name} = {NO_MATCH} still returns {rows[:3]}"


def _overview_panel(title: str) -> dict[str, Any]:
    board = next(b for b in BOARDS.values() if b["uid"] == "llmcost-overview")
    return next(p for p in iter_panels(board) if p["title"] == title)


def test_burn_rate_is_the_last_24_complete_hours(client, week, variables_for):
    panel = _overview_panel("Burn rate and projected month end")
    columns, rows = run_sql(client, expanded_panel_sql(panel, week, variables_for("llmcost-overview")))
    burn = rows[0][columns.index("BurnPerDay")]
    ((expected, hours),) = client.query(
        "SELECT sum(CostTotal), uniqExact(Hour) FROM v_cost_hourly"
        " WHERE Hour >= toStartOfHour(now()) - INTERVAL 24 HOUR AND Hour < toStartOfHour(now())"
    ).result_rows
    assert hours <= 24 and burn == pytest.approx(expected)


def test_top_users_cut_time_by_the_hour_and_list_no_blank_user(client, variables_for):
    """The range starts 2 hours ago: calls earlier that day are not counted (a daily table would)."""
    now = dt.datetime.now(dt.timezone.utc)
    two_hours = gm.TimeRange(now - dt.timedelta(hours=2), now)
    board = next(b for b in BOARDS.values() if b["uid"] == "llmcost-overview")
    variables = resolve_variables(client, board, two_hours)
    columns, rows = run_sql(client, expanded_panel_sql(_overview_panel("Top users"), two_hours, variables))
    assert rows and all(r[columns.index("User")] != "" for r in rows)
    start, end = int(two_hours.start.timestamp()), int(two_hours.end.timestamp())
    expected = {
        (user, team): spend
        for user, team, spend in client.query(
            "SELECT User, Team, sum(CostTotal) FROM llm_calls"
            f" WHERE toStartOfHour(Timestamp) >= toDateTime({start}) AND toStartOfHour(Timestamp) <= toDateTime({end})"
            " GROUP BY User, Team"
        ).result_rows
    }
    for row in rows:
        key = (row[columns.index("User")], row[columns.index("Team")])
        assert row[columns.index("Spend")] == pytest.approx(expected[key]), key


def test_still_unpriced_counts_only_calls_recorded_unpriced(client, variables_for):
    """Before any `prices sync` there is no catalogue: calls priced when recorded are not
    "still unpriced" for want of one."""
    everything = gm.TimeRange.last(60 * 86400)
    board = next(b for b in BOARDS.values() if b["uid"] == "llmcost-overview")
    variables = resolve_variables(client, board, everything)
    panel = _overview_panel("Recorded cost against the price catalogue")
    columns, rows = run_sql(client, expanded_panel_sql(panel, everything, variables))
    still = sum(r[columns.index("StillUnpricedCalls")] for r in rows)
    ((unpriced, priced),) = client.query(
        f"SELECT countIf(Unpriced = 1), countIf(Unpriced = 0) FROM llm_calls"
        f" WHERE Timestamp >= toDateTime({int(everything.start.timestamp())})"
    ).result_rows
    assert priced > 0 and 0 < still <= unpriced
