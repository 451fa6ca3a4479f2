"""`otel-llmcost report --html`: the dashboards as a static page, opened in real headless chromium.

The page is written by the real CLI from the demo database, then loaded by Debian's
chromium (``--dump-dom`` after plotly has run, and ``--screenshot``) with networking off:
every chart must have drawn its traces, no script may have logged or thrown, and the
screenshot lands in test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otel_llmcost import storage
from otel_llmcost.cli import app
from otel_llmcost.reporting.anomalies import KINDS
from otel_llmcost.reporting.html import CHART_TYPES, iter_panels, load_dashboards
from tests.helpers import anomaly_fixture
from tests.helpers.binaries import require_binary
from tests.helpers.dashboard_db import DATABASE, dashboard_database
from tests.helpers.paths import ARTIFACTS, DASHBOARDS

BOARDS = load_dashboards(DASHBOARDS)
PANELS = [panel for board in BOARDS for panel in iter_panels(board)]
CHARTS = [panel for panel in PANELS if panel["type"] in CHART_TYPES]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dsn = dashboard_database(tmp_path_factory.getbasetemp())
    with storage.open_client(dsn) as client:  # the detectors' own view, never scripted rows
        assert anomaly_fixture.view_exists(client) and not anomaly_fixture.is_scripted(client)
    out = tmp_path_factory.mktemp("html") / "report.html"
    result = CliRunner().invoke(
        app, ["report", "--dsn", dsn, "--database", DATABASE, "--since-hours", "720", "--html", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("chromium")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        # Offline for real: any request the page made would fail (and log).
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=30000",
        "--window-size=1400,2600",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rendered(page: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    run = _chromium("--dump-dom", page.as_uri(), profile=tmp_path_factory.mktemp("chromium-dom"))
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, run.stderr


def test_page_is_self_contained(page):
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", text), "scripts must be inlined"
    assert not re.search(r"<link[^>]+href=", text), "stylesheets must be inlined"
    assert "Plotly.newPlot" in text and len(text) > 1_000_000  # plotly.js itself is in the file


def test_page_has_every_dashboard_and_panel_with_its_sql(page):
    text = page.read_text(encoding="utf-8")
    for board in BOARDS:
        assert f'id="{board["uid"]}"' in text
    for panel in PANELS:
        assert f'data-panel="{panel["title"]}"' in text.replace("&#x27;", "'")


def test_anomalies_are_shown_with_their_explanations(page):
    """The Anomalies dashboard's table: every anomaly of the window, each with its explanation.

    The detectors' figures for the current hour move from one second to the next (a partial
    hour), so the rows are checked for shape here; their values in tests/deploy and tests/cli.
    """
    text = page.read_text(encoding="utf-8")
    section = re.search(r'data-panel="Anomalies and why".*?<table[^>]*>(.*?)</table>', text, re.S)
    assert section, "the anomalies table is missing"
    header = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", section.group(1))]
    assert header[:10] == [
        "Kind", "Dimension", "Key", "ServiceName", "At", "State", "Expected", "Observed", "Score", "Explanation"
    ]  # fmt: skip
    rows = [
        [html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr><td.*?</tr>", section.group(1), re.S)
    ]
    assert rows, "no anomaly on the demo data"
    for row in rows:
        assert row[0] in KINDS and row[5] in ("open", "closed") and row[9].strip(), row


def test_no_panel_failed_or_came_back_empty(page):
    text = page.read_text(encoding="utf-8")
    assert "query failed:" not in text
    assert "No data in this time range." not in text


def test_every_chart_rendered_with_data_and_no_script_errors(rendered):
    dom, stderr = rendered
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    assert attributes.get("data-status") == "done", "the charts never finished rendering"
    assert json.loads(attributes["data-errors"].replace("&quot;", '"')) == []
    charts = re.findall(r"<div ([^>]*\bllmcost-chart\b[^>]*)>", dom)
    assert len(charts) == len(CHARTS)
    for chart in charts:
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', chart))
        assert attrs.get("data-rendered") == "1", attrs.get("id")
        assert int(attrs["data-traces"]) >= 1 and int(attrs["data-points"]) >= 1, attrs.get("id")
    console = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], "the page wrote to the console:\n" + "\n".join(console)


def test_screenshot_is_saved_as_a_test_artifact(page, tmp_path_factory):
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "html-report.png"
    target.unlink(missing_ok=True)
    run = _chromium(f"--screenshot={target}", page.as_uri(), profile=tmp_path_factory.mktemp("chromium-shot"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 20_000
