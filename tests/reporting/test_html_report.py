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
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otel_llmcost import storage
from otel_llmcost.cli import app
from otel_llmcost.reporting.anomalies import KINDS
from otel_llmcost.reporting.html import CHART_TYPES, format_value, iter_panels, load_dashboards, write_html_report
from tests.helpers import anomaly_fixture
from tests.helpers.binaries import require_binary
from tests.helpers.dashboard_db import DATABASE, dashboard_database, session_once
from tests.helpers.paths import ARTIFACTS, DASHBOARDS

BOARDS = load_dashboards(DASHBOARDS)
PANELS = [panel for board in BOARDS for panel in iter_panels(board)]
CHARTS = [panel for panel in PANELS if panel["type"] in CHART_TYPES]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page ``report --html`` writes (~10 s of panel queries), written once per session
    (tests.helpers.dashboard_db.session_once); each module reads its own copy."""
    root = tmp_path_factory.getbasetemp()

    def write(directory: Path) -> None:
        dsn = dashboard_database(root)
        with storage.open_client(dsn) as client:  # the detectors' own view, never scripted rows
            assert anomaly_fixture.view_exists(client) and not anomaly_fixture.is_scripted(client)
        args = ["report", "--dsn", dsn, "--database", DATABASE, "--since-hours", "720"]
        result = CliRunner().invoke(app, [*args, "--html", str(directory / "report.html")])
        assert result.exit_code == 0, result.output

    out = tmp_path_factory.mktemp("html") / "report.html"
    shutil.copyfile(session_once(root, "html-report", write) / "report.html", out)
    return out


def _chromium(*args: str, profile: Path, width: int = 1400) -> subprocess.CompletedProcess[str]:
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
        f"--window-size={width},2600",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rendered(page: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The page's DOM after plotly has run, and chromium's log, at 1400 px: one chromium run
    for the rendering checks and the layout test at that width, so the page carries the
    layout test's measuring script (_MEASURE), which only reads the drawn page and writes
    one attribute on <body> once the page says it is done."""
    run = _dump_measured(page, 1400, tmp_path_factory.mktemp("chromium-dom"))
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


# --- layout and content, measured in the browser ----------------------------------------------

# Appended to a copy of the page by the tests only: once plotly has drawn every chart, the
# page's panel boxes and each chart's drawn marks and x-axis span, as JSON on <body>.
_MEASURE = """<script>
(function () {
  function box(el) {
    var r = el.getBoundingClientRect();
    return {x: r.left, y: r.top + window.scrollY, w: r.width, h: r.height};
  }
  function measure() {
    if (document.body.dataset.status !== 'done') { setTimeout(measure, 50); return; }
    var panels = Array.prototype.map.call(document.querySelectorAll('.panel'), function (p) {
      var b = box(p); b.title = p.dataset.panel; return b;
    });
    var charts = Array.prototype.map.call(document.querySelectorAll('.llmcost-chart'), function (d) {
      var xa = d._fullLayout && d._fullLayout.xaxis;
      var span = xa ? xa.r2l(xa.range[1]) - xa.r2l(xa.range[0]) : 0;
      var marks = d.querySelectorAll(
        '.scatterlayer .trace path.js-line, .scatterlayer .trace .points path, .barlayer .trace .point path').length;
      var b = box(d); b.id = d.id; b.points = Number(d.dataset.points); b.marks = marks; b.xspan_ms = span;
      b.title = d.closest('.panel').dataset.panel; return b;
    });
    document.body.dataset.measure = JSON.stringify({
      width: document.documentElement.clientWidth, scrollWidth: document.documentElement.scrollWidth,
      panels: panels, charts: charts});
  }
  measure();
})();
</script></body>"""


def _dump_measured(page: Path, width: int, profile: Path) -> subprocess.CompletedProcess[str]:
    measured = page.with_name(f"{page.stem}-measured-{width}.html")
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", _MEASURE, 1), encoding="utf-8")
    run = _chromium("--dump-dom", measured.as_uri(), profile=profile, width=width)
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def _measurement(dom: str) -> dict:
    found = re.search(r'<body[^>]*\bdata-measure="([^"]*)"', dom)
    assert found, "the page never finished rendering"
    return json.loads(html.unescape(found.group(1)))


def _measure(page: Path, width: int, profile: Path) -> dict:
    return _measurement(_dump_measured(page, width, profile).stdout)


@pytest.fixture(scope="module")
def one_hour_page(page: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The last hour only: every chart has a single time bucket (a service with one hour of data)."""
    dsn = dashboard_database(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("html-hour") / "hour.html"
    with storage.open_client(dsn, database=DATABASE) as client:
        report = write_html_report(client, out, since_hours=1)
    assert report.charts > 0 and not report.failed
    return out


def _overlaps(a: dict, b: dict) -> bool:
    dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return dx > 1 and dy > 1


def _assert_laid_out_and_drawn(measure: dict) -> None:
    width = measure["width"]
    assert measure["scrollWidth"] <= width + 1, "the page scrolls sideways"
    panels = measure["panels"]
    for panel in panels:
        assert panel["x"] >= 0 and panel["x"] + panel["w"] <= width + 1, f"{panel['title']} is cut off"
        assert panel["h"] <= 600, f"{panel['title']} grows without bound ({panel['h']:.0f}px)"
    for i, a in enumerate(panels):
        for b in panels[i + 1 :]:
            assert not _overlaps(a, b), f"{a['title']} overlaps {b['title']}"
    for chart in measure["charts"]:
        if chart["points"] >= 1:  # its query returned rows: something must be drawn
            assert chart["w"] > 100 and chart["h"] > 100, f"{chart['title']} has no room"
            assert chart["marks"] >= 1, f"{chart['title']} is drawn empty"
            assert chart["xspan_ms"] >= 60_000, f"{chart['title']}: an x-axis of {chart['xspan_ms']} ms"


@pytest.mark.parametrize("width", [1400, 800])
def test_panels_do_not_overlap_and_every_chart_with_rows_is_drawn(page, width, tmp_path_factory, request):
    if width == 1400:  # the run the rendering checks read (the fixture `rendered`)
        measure = _measurement(request.getfixturevalue("rendered")[0])
    else:
        measure = _measure(page, width, tmp_path_factory.mktemp(f"chromium-{width}"))
    _assert_laid_out_and_drawn(measure)


@pytest.mark.parametrize("width", [1400, 800])
def test_a_single_hour_of_data_is_drawn_on_an_hour_wide_axis(one_hour_page, width, tmp_path_factory):
    measure = _measure(one_hour_page, width, tmp_path_factory.mktemp(f"chromium-hour-{width}"))
    assert measure["charts"], "no chart in the last hour"
    _assert_laid_out_and_drawn(measure)


def _chart_specs(page: Path) -> list[dict]:
    text = page.read_text(encoding="utf-8")
    found = re.search(r"<script type='application/json' id='llmcost-charts'>(.*?)</script>", text, re.S)
    assert found
    return json.loads(found.group(1).replace("<\\/", "</"))


def test_a_count_beside_dollars_gets_its_own_axis(page):
    """FlaggedEndpoints (a count, drawn as bars on the right in Grafana) is never read off the $ axis."""
    (spec,) = [s for s in _chart_specs(page) if any(t["name"] == "FlaggedEndpoints" for t in s["data"])]
    by_name = {t["name"]: t for t in spec["data"]}
    assert by_name["FlaggedEndpoints"]["yaxis"] == "y2" and by_name["FlaggedEndpoints"]["type"] == "bar"
    assert "yaxis" not in by_name["Spend"] and spec["layout"]["yaxis2"]["side"] == "right"
    assert "$" not in spec["layout"]["yaxis2"]["tickformat"]


def test_prefix_counts_are_not_drawn_as_percentages(page):
    ids = _chart_ids(page, "Distinct prompt prefixes per hour")
    (spec,) = [s for s in _chart_specs(page) if s["id"] in ids]
    assert "%" not in spec["layout"]["yaxis"]["tickformat"]


def _chart_ids(page: Path, title: str) -> set[str]:
    text = page.read_text(encoding="utf-8").replace("&#x27;", "'")
    section = re.search(rf'data-panel="{re.escape(title)}".*?id="(chart-[\d-]+)"', text, re.S)
    return {section.group(1)} if section else set()


def test_table_cells_show_plain_numbers(page):
    text = page.read_text(encoding="utf-8")
    cells = re.findall(r'<td class="n">([^<]*)</td>', text)
    assert cells
    assert not [c for c in cells if re.search(r"\de[-+]?\d", c)], "a number in exponent notation"
    assert not [c for c in cells if "$-" in c], "a negative amount written $-"


def test_format_value_never_writes_an_exponent_or_a_float_residue():
    assert format_value(1.4e-05) == "0.000014"
    assert format_value(2.168e-19) == "0"
    assert format_value(2.168e-19, "currencyUSD") == "$0.0000"
    assert format_value(-0.0009, "currencyUSD") == "-$0.0009"
    assert format_value(-1234.5, "currencyUSD") == "-$1,234.50"
    assert format_value(0.1234567) == "0.1235"
    assert format_value(3) == "3"
