"""The CLI end to end: the demo (the newcomer's main job) and the commands on its data."""

from __future__ import annotations

import copy
import json
import re

import pytest
from typer.testing import CliRunner

from otel_llmcost.cli import app
from otel_llmcost.reporting import reports
from tests.helpers.dashboard_db import demo_database

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What ``otel-llmcost demo --dsn DSN --format json`` wrote (the command must exit 0):
    run once per session, a copy per module (tests.helpers.dashboard_db)."""
    return demo_database(tmp_path_factory.getbasetemp(), tmp_path_factory.mktemp("demo") / "chdb")


def report(dsn: str, *names: str) -> dict[str, list[dict]]:
    args = ["report", "--dsn", dsn, "--format", "json", "--since-hours", "720"]
    for name in names:
        args += ["--only", name]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return {r["name"]: r["rows"] for r in json.loads(result.stdout)}


def test_demo_fills_every_endpoint_with_priced_calls(demo_dsn):
    rows = report(demo_dsn, "spend_by_endpoint")["spend_by_endpoint"]
    endpoints = {r["Endpoint"] for r in rows}
    assert {"POST /chat", "POST /search", "POST /agent", "GET /autocomplete"} <= endpoints
    assert all(r["CostUsd"] > 0 for r in rows)


def test_demo_shows_cache_savings_throttling_unpriced_and_tasks(demo_dsn):
    out = report(demo_dsn, "cache_efficiency", "rate_limits", "unpriced", "cost_per_task")
    assert any(r["SavingsUsd"] > 0 for r in out["cache_efficiency"])
    assert any(r["ThrottledCalls"] > 0 for r in out["rate_limits"])
    assert {r["RequestModel"] for r in out["unpriced"]} == {"acme-finetune-7b", "acme/router-special-1"}
    assert out["cost_per_task"][0]["Tasks"] > out["cost_per_task"][0]["SuccessfulTasks"] > 0


def test_demo_shows_evidence_waste_and_why_caching_pays_or_not(demo_dsn):
    out = report(demo_dsn, "evidence_waste", "prefix_stability")
    (search,) = [r for r in out["evidence_waste"] if r["Endpoint"] == "POST /search"]
    assert search["TokensNeverCited"] > search["TokensCited"] > 0 and search["NeverCitedUsd"] > 0
    why = {r["Endpoint"]: r["Why"] for r in out["prefix_stability"] if r["RequestModel"] != "acme-finetune-7b"}
    assert why["POST /search"].startswith("pays:")
    assert "cache_control" in why["POST /translate"]


def test_demo_shows_every_kind_of_savings_opportunity_with_its_action(demo_dsn):
    """otel-llmcost opportunities --format json: the demo's traffic has one of each kind, each
    with a positive saving, a sentence of evidence and an action; largest first."""
    result = runner.invoke(app, ["opportunities", "--dsn", demo_dsn, "--since", "30d", "--limit", "100", "-f", "json"])
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert {item["kind"] for item in items} == {
        "missed_caching",
        "cache_not_paid_back",
        "duplicate_requests",
        "near_duplicates",
        "routing",
        "batch",
        "unused_evidence",
    }
    assert all(item["monthly_saving_usd"] > 0 and item["evidence"] and item["action"] for item in items)
    savings = [item["monthly_saving_usd"] for item in items]
    assert savings == sorted(savings, reverse=True)
    by_kind = {item["kind"]: item for item in items}
    assert (by_kind["routing"]["key"], by_kind["routing"]["model"]) == ("POST /classify", "gpt-4o")
    assert "gpt-4o-mini" in by_kind["routing"]["action"]
    assert by_kind["batch"]["key"] == "nightly-digest" and "50% lower" in by_kind["batch"]["evidence"]
    assert (
        by_kind["missed_caching"]["key"] == "POST /translate" and "cache_control" in by_kind["missed_caching"]["action"]
    )


def test_query_runs_sql_against_the_database(demo_dsn):
    result = runner.invoke(
        app,
        [
            "query",
            "--dsn",
            demo_dsn,
            "--format",
            "csv",
            "SELECT count() AS n FROM llm_calls WHERE Unpriced = 1 AND RequestModel = 'acme-finetune-7b'",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b"n\r\n1\r\n"


def test_query_error_is_a_clear_message_not_a_traceback(demo_dsn):
    result = runner.invoke(app, ["query", "--dsn", demo_dsn, "SELECT * FROM no_such_table"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_prices_shows_the_source():
    result = runner.invoke(app, ["prices", "gpt-4o-2024-08-06", "--provider", "openai"])
    assert result.exit_code == 0, result.output
    assert "genai-prices" in result.stdout and "2.5" in result.stdout


def test_prices_for_unknown_model_says_unpriced():
    result = runner.invoke(app, ["prices", "acme-finetune-7b", "--provider", "openai"])
    assert result.exit_code == 2
    assert "unpriced" in result.output


def test_migrate_print_renders_cluster_sql():
    result = runner.invoke(app, ["migrate", "--print", "--cluster", "prod"])
    assert result.exit_code == 0, result.output
    assert "ON CLUSTER prod" in result.stdout


def test_bad_format_is_rejected():
    result = runner.invoke(app, ["report", "--format", "xml"])
    assert result.exit_code == 2


def test_demo_anomalies_are_the_injected_spike_and_the_uncached_new_model(demo_dsn):
    # latency is left out: the demo's is the wall time of a local fake provider, and moves
    # with the machine's load (a parallel test slows one day's calls, today's or a past one's)
    rows = [r for r in report(demo_dsn, "anomalies")["anomalies"] if r["Kind"] != "latency"]
    found = {(r["Kind"], r["Dimension"], r["Key"]) for r in rows}
    # Today POST /summarize gets 24x its calls (feature summaries, team docs, the only
    # endpoint on claude-sonnet-4): spend and calls rise on each of those series.
    spike = {("endpoint", "POST /summarize"), ("feature", "summaries"), ("team", "docs")}
    spike |= {("model", "claude-sonnet-4-20250514")}
    expected = {(kind, dim, key) for kind in ("spend", "calls") for dim, key in spike}
    # POST /chat (feature assistant) sends some calls to a fine-tune that has no cache.
    expected |= {("cache_hit_rate", "endpoint", "POST /chat"), ("cache_hit_rate", "feature", "assistant")}
    assert found == expected
    by_key = {(r["Kind"], r["Key"]): r for r in rows}
    assert all(r["State"] == "open" for r in rows)
    assert "endpoint POST /summarize 97%" in by_key[("calls", "docs")]["Explanation"]
    assert "model acme-finetune-7b 100%" in by_key[("cache_hit_rate", "POST /chat")]["Explanation"]


def test_demo_missed_caching_points_at_the_uncached_repeated_prefix(demo_dsn):
    rows = report(demo_dsn, "missed_caching")["missed_caching"]
    assert [r["Endpoints"] for r in rows] == ["POST /translate"]


def test_demo_reprices_its_fine_tune_and_compares_the_gateway_cost(demo_dsn):
    out = report(demo_dsn, "repricing", "reported_cost")
    repriced = {r["RequestModel"]: r for r in out["repricing"]}
    # Called while unpriced; the demo's price file ($0.40 / $1.60 per million) prices it after the fact.
    tune = repriced["acme-finetune-7b"]
    assert tune["NewlyPricedCalls"] == tune["Calls"] > 0 and tune["NewlyPricedCostUsd"] > 0
    assert repriced["acme/router-special-1"]["StillUnpricedCalls"] > 0  # no catalogue knows it
    reported = {r["RequestModel"]: r for r in out["reported_cost"]}
    assert reported["openai/gpt-4o-mini"]["DisagreeingCalls"] == 0  # the gateway bills our price
    haiku = reported["anthropic/claude-3.5-haiku"]
    assert haiku["DisagreeingCalls"] == haiku["Calls"]  # a 5% markup, over the 2% tolerance
    assert haiku["DifferenceUsd"] == pytest.approx(0.05 * haiku["ComputedCostUsd"], rel=1e-6)
    assert reported["acme/router-special-1"]["UnpricedCalls"] == reported["acme/router-special-1"]["Calls"]


_REPORT_QUERIES: dict[tuple[str, str], reports.Report] = {}


@pytest.fixture
def report_queries_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each report query of the tests that use this runs once for all of them (the demo's
    report is ~5 s of queries; the widths differ in rendering only): later runs get a copy."""
    run = reports.run

    def once(client, name, **options):  # type: ignore[no-untyped-def]
        key = (name, repr(sorted(options.items())))
        if key not in _REPORT_QUERIES:
            _REPORT_QUERIES[key] = run(client, name, **options)
        return copy.deepcopy(_REPORT_QUERIES[key])

    monkeypatch.setattr(reports, "run", once)


@pytest.mark.parametrize("width", [80, 160])
def test_demo_report_fits_the_width_without_breaking_a_name(demo_dsn, width, report_queries_once):
    """Issue 21: piped, the report is 80 columns; no line is wider, no endpoint or header is cut."""
    result = runner.invoke(app, ["report", "--dsn", demo_dsn], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    for endpoint in {r["Endpoint"] for r in report(demo_dsn, "spend_by_endpoint")["spend_by_endpoint"]}:
        assert any(endpoint in line for line in lines), endpoint
    # 853 and 478 lines before the rewrite; the savings opportunities (issue 20) added a
    # section of about 20 lines and 3 summary lines, and the anomalies section varies by
    # 10 or so lines with the hour the demo runs at.
    assert len(lines) < (320 if width == 80 else 280)


def test_demo_report_summary_total_is_the_endpoint_views_sum(demo_dsn):
    result = runner.invoke(app, ["report", "--dsn", demo_dsn, "--only", "spend_by_endpoint", "--format", "markdown"])
    assert result.exit_code == 0, result.output
    total = re.search(r"\*\*Total spend\*\*: \$([\d,.]+) over ([\d,]+) calls", result.stdout)
    assert total, result.stdout
    sql = (
        "SELECT round(sum(CostTotal), 2) AS usd, sum(Calls) AS calls FROM v_cost_by_endpoint_hourly"
        " WHERE Hour >= toStartOfHour(now() - toIntervalHour(720))"
    )
    query = runner.invoke(app, ["query", "--dsn", demo_dsn, "--format", "json", sql])
    (row,) = json.loads(query.stdout)  # query --format json: a list of row objects
    assert float(total.group(1).replace(",", "")) == pytest.approx(row["usd"])
    assert int(total.group(2).replace(",", "")) == int(row["calls"])
    assert "| openrouter | acme/router-special-1 |" not in result.stdout  # only the section asked for


def test_demo_report_shows_unpriced_cost_as_unknown_and_one_section_in_full(demo_dsn):
    result = runner.invoke(app, ["report", "spend_by_model", "--dsn", demo_dsn])
    assert result.exit_code == 0, result.output
    (unpriced,) = [line for line in result.stdout.splitlines() if "acme/router-special-1" in line]
    assert "unknown" in unpriced and "$0.00" not in unpriced
    assert {"Cache", "read", "tokens"} <= set(result.stdout.split()) and "Not shown" not in result.stdout


def test_report_csv_of_one_section_has_no_report_column(demo_dsn):
    result = runner.invoke(app, ["report", "spend_by_model", "--dsn", demo_dsn, "--format", "csv"])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert header.startswith("Provider,RequestModel,") and "nan" not in result.stdout.lower()


def test_report_of_an_unknown_section_is_an_error():
    result = runner.invoke(app, ["report", "no_such_report"])
    assert result.exit_code == 2 and "no_such_report" in result.output
