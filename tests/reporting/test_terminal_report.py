"""`otel-llmcost report` for people (issue 21, item 1): headers, units and kinds decided once
from the column names, tables fitted to the width without cutting a word, unknown cost
never shown as $0; CSV, JSON and Markdown as data."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime

import pytest
from rich.console import Console

from otel_llmcost.reporting import columns, terminal
from otel_llmcost.reporting.reports import Report

MONEY = re.compile(r"^-?\$\d{1,3}(,\d{3})*\.\d{2,6}$|^unknown$")
SHARE = re.compile(r"^\d+\.\d%$")
ENDPOINTS = ["POST /summarize", "POST /search", "POST /translate", "GET /autocomplete", "POST /chat"]
WHY = "pays: 92% of input tokens read from cache, saves $0.0017/day and cache_control is set"

SPEND_BY_ENDPOINT = Report(
    "Spend by endpoint",
    [
        "ServiceName",
        "Endpoint",
        "Calls",
        "Errors",
        "InputTokens",
        "OutputTokens",
        "CostUsd",
        "CostPerCallUsd",
        "WorstHourP99Ms",
    ],
    [
        ("llmcost-demo", "POST /summarize", 234, 0, 538055, 10043, 1234.561, 5.27607, 19.9),
        ("llmcost-demo", "POST /search", 106, 1, 271190, 735, 0.352525, 0.003326, 3.7),
        ("llmcost-demo", "POST /translate", 45, 0, 61875, 315, 0.19035, 0.00423, 1.3),
        ("llmcost-demo", "GET /autocomplete", 93, 0, 29999000, 651, 0.000558, 0.000006, 5.2),
        ("llmcost-demo", "POST /chat", 250, 2, 335373, 1736, float("nan"), None, 31.9),
    ],
    name="spend_by_endpoint",
    description="Total cost, calls and latency per service and endpoint.",
)
SPEND_BY_MODEL = Report(
    "Spend by model",
    [
        "Provider",
        "RequestModel",
        "Calls",
        "InputTokens",
        "CacheReadTokens",
        "OutputTokens",
        "UnpricedCalls",
        "CostUsd",
        "CacheSavingsUsd",
    ],
    [
        ("anthropic", "claude-sonnet-4-20250514", 234, 548361, 240640, 1638, 0, 1.020948, 0.648705),
        ("openai", "gpt-4o-mini", 342, 336482, 309760, 2380, 0, 0.028668, 0.023232),
        ("openrouter", "acme/router-special-1", 15, 18253, 0, 3032, 15, 0.0, 0.0),
    ],
    name="spend_by_model",
    description="Cost and tokens per provider and requested model.",
)
RATE_LIMITS = Report(
    "Rate-limit pressure",
    [
        "ServiceName",
        "Provider",
        "RequestModel",
        "Calls",
        "ThrottledCalls",
        "ThrottledShare",
        "Retries",
        "MinRequestsRemaining",
        "MinTokensRemaining",
        "MinRequestsHeadroom",
    ],
    [("llmcost-demo", "openai", "gpt-4o-mini", 342, 3, 0.0088, 6, 9154, 29999000, 0.4453)],
    name="rate_limits",
)
PREFIX_STABILITY = Report(
    "Prefix stability: does prompt caching pay?",
    [
        "ServiceName",
        "Endpoint",
        "Provider",
        "RequestModel",
        "Calls",
        "TopPrefixShare",
        "HitRate",
        "SavingsPerDayUsd",
        "Why",
    ],
    [
        ("llmcost-demo", "POST /chat", "openai", "gpt-4o-mini", 249, 0.9759, 0.9236, 0.001655, WHY),
        ("llmcost-demo", "POST /summarize", "anthropic", "claude-sonnet-4-20250514", 189, 1.0, 0.4946, 0.05, WHY),
    ],
    name="prefix_stability",
)
ALL = [SPEND_BY_ENDPOINT, SPEND_BY_MODEL, RATE_LIMITS, PREFIX_STABILITY]
SUMMARY = {
    "WindowStart": datetime(2026, 10, 29, 13, 0),
    "WindowEnd": datetime(2026, 11, 28, 13, 31, 42, 123456),
    "Calls": 842,
    "CostUsd": 1.455191,
    "CacheSavingsUsd": 1.0036,
    "UnpricedCalls": 16,
    "OpenAnomalies": 10,
    "TopEndpoints": [("llmcost-demo", "POST /summarize", 0.8592), ("llmcost-demo", "POST /search", 0.3525)],
    "SinceHours": 720,
}


def render(reports: list[Report], width: int, *, full: bool = False, summary: dict | None = None) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, legacy_windows=False)
    terminal.emit_report(
        reports, "table", console=console, stream=out, summary=summary, source="chdb:///x", full=full, width=width
    )
    return out.getvalue()


def cells(text: str, report: Report) -> list[dict[str, str]]:
    """The body rows of ``report``'s table in ``text``, keyed by header (one-line rows only)."""
    lines = text.splitlines()
    start = (
        lines.index(report.title)
        if report.title in lines
        else next(i for i, line in enumerate(lines) if line.startswith(report.title))
    )
    rule = next(i for i in range(start, len(lines)) if set(lines[i].strip()) == {"─"})
    header_words = " ".join(lines[start + 1 : rule])
    shown = [c for c in report.columns if all(w in header_words.split() for w in columns.header(c).split())]
    rows = []
    for line in lines[rule + 1 : rule + 1 + len(report.rows)]:
        values = re.split(r"\s{3,}", line.strip())
        if len(values) == len(shown):
            rows.append(dict(zip(shown, values, strict=True)))
    return rows


@pytest.mark.parametrize("width", [80, 160])
def test_no_line_is_wider_than_the_terminal(width):
    text = render(ALL, width, summary=SUMMARY)
    assert max(len(line) for line in text.splitlines()) <= width


@pytest.mark.parametrize("width", [80, 160])
def test_no_header_or_endpoint_is_broken_across_lines(width):
    text = render(ALL, width)
    tokens = set(text.split())
    for name in ENDPOINTS:
        assert name in text, name
    for report in ALL:
        for column in report.columns:
            head = columns.header(column)
            hidden = f"Not shown at {width} columns:" in text and head in text.split("Not shown")[-1]
            assert hidden or all(word in tokens for word in head.split()), head
    # the sentence column is wrapped at spaces only: every word of it is whole
    for word in WHY.split():
        assert word in tokens, word


@pytest.mark.parametrize("width", [80, 160])
def test_money_share_and_unknown_cells(width):
    text = render(ALL, width)
    model_rows = cells(text, SPEND_BY_MODEL)
    assert len(model_rows) == 3
    assert all(MONEY.match(row["CostUsd"]) for row in model_rows)
    assert [row["CostUsd"] for row in model_rows] == ["$1.02", "$0.03", "unknown"]  # unpriced: never $0
    assert model_rows[2]["CacheSavingsUsd"] == "unknown"
    endpoint_rows = cells(text, SPEND_BY_ENDPOINT)
    assert [row["CostUsd"] for row in endpoint_rows] == ["$1,234.56", "$0.35", "$0.19", "$0.00056", "unknown"]
    rate = cells(text, RATE_LIMITS)[0]
    assert SHARE.match(rate["ThrottledShare"]) and rate["ThrottledShare"] == "0.9%"
    if "MinRequestsHeadroom" in rate:
        assert rate["MinRequestsHeadroom"] == "44.5%"
    assert "0.445300" not in text and "1234.561" not in text


def test_wide_tables_keep_every_column_and_narrow_ones_say_what_they_left_out():
    wide, narrow = render([SPEND_BY_ENDPOINT], 160), render([SPEND_BY_ENDPOINT], 80)
    assert "Not shown" not in wide and "llmcost-demo" in wide and "29,999,000" in wide
    assert "Not shown at 80 columns: Service" in " ".join(narrow.split())
    assert "otel-llmcost report spend_by_endpoint" in " ".join(narrow.split())


def test_one_section_in_full_keeps_every_column_exactly():
    text = render([RATE_LIMITS], 80, full=True)
    lines = [line.rstrip() for line in text.splitlines()]
    assert lines == [
        "Rate-limit pressure",
        "                                                                                       Min                     Min",  # noqa: E501
        "                                                Throttled                         requests   Min tokens    request",  # noqa: E501
        "Service        Provider   Model         Calls       calls   Throttled   Retries       left         left   headroom",  # noqa: E501
        "─" * 114,
        "llmcost-demo   openai     gpt-4o-mini     342           3        0.9%         6      9,154   29,999,000      44.5%",  # noqa: E501
        "",
    ]


def test_markdown_is_the_table_for_people_with_every_column():
    out = io.StringIO()
    terminal.emit_report([SPEND_BY_MODEL], "markdown", console=Console(file=io.StringIO()), stream=out)
    assert out.getvalue() == "\n".join(
        [
            "## Spend by model",
            "",
            "Cost and tokens per provider and requested model.",
            "",
            "| Provider | Model | Calls | Input tokens | Cache read tokens | Output tokens | Unpriced calls | Cost | Cache savings |",  # noqa: E501
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            "| anthropic | claude-sonnet-4-20250514 | 234 | 548,361 | 240,640 | 1,638 | 0 | $1.02 | $0.65 |",
            "| openai | gpt-4o-mini | 342 | 336,482 | 309,760 | 2,380 | 0 | $0.03 | $0.02 |",
            "| openrouter | acme/router-special-1 | 15 | 18,253 | 0 | 3,032 | 15 | unknown | unknown |",
            "",
        ]
    )


def test_summary_names_window_database_total_savings_unpriced_anomalies_and_top_endpoints():
    text = " ".join(render([], 80, summary=SUMMARY).split())
    assert "Database chdb:///x" in text
    assert "Window last 30 days: 2026-10-29 13:00 to 2026-11-28 13:31 UTC" in text
    assert "Total spend $1.46 over 842 calls" in text
    assert "Cache savings $1.00" in text and "Unpriced calls 16" in text and "Open anomalies 10" in text
    assert "Top endpoints $0.86 POST /summarize $0.35 POST /search" in text
    assert "13:31:42" not in text  # timestamps to the minute


def test_csv_of_one_section_has_no_report_column_and_no_nan():
    text = terminal.report_csv([SPEND_BY_ENDPOINT])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == SPEND_BY_ENDPOINT.columns
    assert rows[5][6:8] == ["", ""]  # NaN and NULL cost: empty, not "nan"
    assert "nan" not in text.lower()
    several = list(csv.reader(io.StringIO(terminal.report_csv([SPEND_BY_ENDPOINT, RATE_LIMITS]))))
    assert several[0][0] == "report" and several[1][0] == "spend_by_endpoint"


def test_json_keeps_raw_values_and_machine_names():
    out = io.StringIO()
    terminal.emit_report([SPEND_BY_ENDPOINT], "json", console=Console(file=io.StringIO()), stream=out)
    (found,) = json.loads(out.getvalue())
    assert found["rows"][0]["CostUsd"] == 1234.561 and found["rows"][4]["CostUsd"] is None


@pytest.mark.parametrize(
    ("name", "kind", "header"),
    [
        ("CostPerCallUsd", "money", "Cost per call"),
        ("MinRequestsHeadroom", "share", "Min request headroom"),
        ("ThrottledShare", "share", "Throttled"),
        ("HitRate", "share", "Cache hit rate"),
        ("CacheReadTokens", "tokens", "Cache read tokens"),
        ("UnpricedCalls", "count", "Unpriced calls"),
        ("WorstHourP99Ms", "ms", "p99 worst hour (ms)"),
        ("LastSeen", "time", "Last seen"),
        ("NeverCitedUsd", "money", "Never cited"),
        ("used_share", "share", "Used share"),
        ("Explanation", "text", "Explanation"),
    ],
)
def test_one_rule_gives_each_column_its_kind_and_header(name, kind, header):
    assert columns.kind(name) == kind
    assert columns.header(name) == header


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        ("money", 1234.5678, "$1,234.57"),
        ("money", 0.0042, "$0.0042"),
        ("money", -0.00113, "-$0.0011"),
        ("money", 2.2e-19, "$0.00"),
        ("money", None, "unknown"),
        ("share", 0.4453, "44.5%"),
        ("tokens", 29999000, "29,999,000"),
        ("time", datetime(2026, 11, 28, 13, 5, 59, 999), "2026-11-28 13:05"),
        ("share", None, "-"),
    ],
)
def test_values_show_in_their_kinds_unit(kind, value, shown):
    assert columns.format_value(kind, value) == shown
