"""``otel-llmcost report --html out.html``: the Grafana dashboards as one static page.

The page is for people without Grafana: the same panels, from the same SQL. Nothing here
holds a query of its own. Each panel's ``rawSql`` is read from the provisioned dashboard
JSON (``dashboards/*.json``) and expanded with :mod:`.grafana_macros` exactly
as the ClickHouse data source would (time range, interval, template variables at "All"),
so a dashboard fix is a report fix.

Charts are plotly, with plotly.js inlined: the file opens offline, no CDN. Every chart
marks itself ``data-rendered`` once plotly has drawn it and the page records script
errors in ``<body data-errors>``, so a headless browser can tell that it worked.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..config import Settings
from .grafana_macros import ALL, TimeRange, Variable, expand, interval_seconds

# Page order; dashboards not listed here follow, by title.
DASHBOARD_ORDER = ("llmcost-overview", "llmcost-savings", "llmcost-caching", "llmcost-reliability", "llmcost-anomalies")
CHART_TYPES = ("timeseries", "barchart")
MAX_DATA_POINTS = 1000


def dashboards_dir() -> Path:
    """Where the dashboard JSON lives: $OTEL_LLMCOST_DASHBOARDS, the wheel's copy, or the repo's."""
    override = Settings.load().dashboards
    candidates = [Path(override)] if override else []
    package = Path(__file__).resolve().parent.parent
    candidates += [package / "dashboards", package.parent / "dashboards"]
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    raise FileNotFoundError(f"no dashboard JSON found (looked in {', '.join(str(c) for c in candidates)})")


def load_dashboards(directory: Path | None = None) -> list[dict[str, Any]]:
    directory = directory or dashboards_dir()
    boards = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))]
    rank = {uid: i for i, uid in enumerate(DASHBOARD_ORDER)}
    return sorted(boards, key=lambda b: (rank.get(b.get("uid"), len(rank)), b.get("title", "")))


def iter_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel with queries, rows unfolded (collapsed rows keep theirs in ``panels``)."""
    out: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            out.extend(p for p in panel.get("panels", []) if p.get("targets"))
        elif panel.get("targets"):
            out.append(panel)
    return out


def query_variables(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [v for v in dashboard.get("templating", {}).get("list", []) if v.get("type") == "query"]


def variable_sql(variable: Mapping[str, Any]) -> str:
    query = variable.get("query")
    return query.get("rawSql", "") if isinstance(query, Mapping) else str(query or variable.get("definition", ""))


def run_sql(client: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    result = client.query(sql)
    columns = list(result.column_names)
    if not columns:  # chdb names no columns for an empty result
        columns = [row[0] for row in client.query(f"DESCRIBE ({sql})").result_rows]
    return columns, [tuple(r) for r in result.result_rows]


def resolve_variables(
    client: Any,
    dashboard: Mapping[str, Any],
    time_range: TimeRange,
    selections: Mapping[str, str | Sequence[str]] | None = None,
) -> dict[str, Variable]:
    """Run the variable queries in order (later ones may use earlier ones), like Grafana."""
    resolved: dict[str, Variable] = {}
    for var in query_variables(dashboard):
        name = var["name"]
        sql = expand(variable_sql(var), time_range=time_range, variables=resolved)
        _, rows = run_sql(client, sql)
        options = [str(r[0]) for r in rows]
        value = (selections or {}).get(name, ALL)
        resolved[name] = Variable(name, value, options=options, all_value=var.get("allValue"))
    return resolved


@dataclass
class PanelResult:
    dashboard: str
    panel_id: int
    title: str
    type: str
    description: str
    sql: str
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    error: str | None = None
    units: dict[str, str] = field(default_factory=dict)
    default_unit: str | None = None
    # Per column: the fieldConfig override properties that change how a series is drawn
    # (custom.drawStyle, custom.axisPlacement), as Grafana applies them.
    styles: dict[str, dict[str, Any]] = field(default_factory=dict)
    interval_s: int = 3600  # the panel's time bucket: a chart with one bucket still spans it


def expanded_panel_sql(
    panel: Mapping[str, Any], time_range: TimeRange, variables: Mapping[str, Variable], *, target: int = 0
) -> str:
    interval = interval_seconds(time_range, max_data_points=MAX_DATA_POINTS, min_interval=panel.get("interval"))
    return expand(panel["targets"][target]["rawSql"], time_range=time_range, interval_s=interval, variables=variables)


def column_overrides(panel: Mapping[str, Any], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per column, the fieldConfig override properties (byName / byRegexp) as Grafana applies
    them: later overrides win."""
    out: dict[str, dict[str, Any]] = {}
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        matcher = override.get("matcher", {})
        for column in columns:
            if (matcher.get("id") == "byName" and matcher.get("options") == column) or (
                matcher.get("id") == "byRegexp" and re.fullmatch(str(matcher.get("options")), column)
            ):
                props = out.setdefault(column, {})
                props.update({p["id"]: p.get("value") for p in override.get("properties", []) if "id" in p})
    return out


def _units(panel: Mapping[str, Any], columns: Sequence[str]) -> dict[str, str]:
    """Per-column unit from fieldConfig overrides (byName / byRegexp), as Grafana applies them."""
    return {c: props["unit"] for c, props in column_overrides(panel, columns).items() if props.get("unit")}


def run_dashboard(
    client: Any, dashboard: Mapping[str, Any], time_range: TimeRange, variables: Mapping[str, Variable]
) -> list[PanelResult]:
    results = []
    for panel in iter_panels(dashboard):
        result = PanelResult(
            dashboard=dashboard.get("title", ""),
            panel_id=panel.get("id", 0),
            title=panel.get("title", ""),
            type=panel.get("type", "table"),
            description=panel.get("description", ""),
            sql=panel["targets"][0]["rawSql"],
            default_unit=panel.get("fieldConfig", {}).get("defaults", {}).get("unit"),
            interval_s=interval_seconds(
                time_range, max_data_points=MAX_DATA_POINTS, min_interval=panel.get("interval")
            ),
        )
        try:
            result.columns, result.rows = run_sql(client, expanded_panel_sql(panel, time_range, variables))
            result.units = _units(panel, result.columns)
            result.styles = column_overrides(panel, result.columns)
        except Exception as exc:  # one broken panel must not hide the others
            message = str(exc).strip().splitlines()
            result.error = message[0] if message else repr(exc)
        results.append(result)
    return results


# --- values -----------------------------------------------------------------------------


# Sums of float costs leave residues like 2.168e-19 where the true value is 0.
ZERO = 1e-12


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, float) and abs(value) < ZERO:
        return 0.0
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(_plain(v)) for v in value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def format_value(value: Any, unit: str | None = None) -> str:
    value = _plain(value)
    if value is None:
        return "-"
    if not _is_number(value):
        return str(value)
    if unit == "currencyUSD":
        text = _fixed(abs(value), 2 if abs(value) >= 1 else 4)
        sign = "-" if value < 0 and text.strip("0.,") else ""  # -$0.0009, never $-0.0009
        return f"{sign}${text}"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit == "ms":
        return f"{value:,.0f} ms" if abs(value) >= 10 else f"{value:.2f} ms"
    if isinstance(value, int):
        return f"{value:,}"
    return _significant(value)


def _fixed(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def _significant(value: float, digits: int = 4) -> str:
    """Plain notation, never an exponent: 1.4e-05 -> 0.000014, 1234.5678 -> 1,234.57."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.2f}"
    decimals = min(12, max(2, digits - 1 - math.floor(math.log10(abs(value)))))
    text = f"{value:.{decimals}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _time_column(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> int | None:
    if "time" in columns:
        return columns.index("time")
    for i, _ in enumerate(columns):
        if rows and isinstance(rows[0][i], (dt.datetime, dt.date)):
            return i
    return None


def chart_traces(result: PanelResult) -> list[dict[str, Any]]:
    """Long-format rows (time, labels..., values...) as one plotly line per label set and value."""
    time_i = _time_column(result.columns, result.rows)
    if time_i is None or not result.rows:
        return []
    first = result.rows[0]
    label_i = [i for i, c in enumerate(result.columns) if i != time_i and isinstance(first[i], str)]
    value_i = [i for i, _ in enumerate(result.columns) if i != time_i and i not in label_i]
    series: dict[str, dict[str, Any]] = {}
    for row in result.rows:
        labels = " / ".join(str(row[i]) or "(none)" for i in label_i)
        for i in value_i:
            name = labels if labels and len(value_i) == 1 else " ".join(x for x in (result.columns[i], labels) if x)
            points = series.setdefault(name, {"x": [], "y": [], "column": result.columns[i]})
            points["x"].append(_plain(row[time_i]))
            points["y"].append(_plain(row[i]))
    traces = []
    for name, points in series.items():
        style = result.styles.get(points["column"], {})
        trace: dict[str, Any] = {"name": name, "x": points["x"], "y": points["y"]}
        if style.get("custom.drawStyle") == "bars":
            trace["type"] = "bar"
        else:
            trace.update(type="scatter", mode="lines+markers")
        if _own_axis(result, points["column"]):
            trace["yaxis"] = "y2"
        traces.append(trace)
    return traces


def _own_axis(result: PanelResult, column: str) -> bool:
    """A series whose unit differs from the panel's (FlaggedEndpoints on a $ chart) gets its own
    axis, on the right, as Grafana draws it; it is never read off the $ axis."""
    unit = result.units.get(column)
    placement = result.styles.get(column, {}).get("custom.axisPlacement")
    return (unit is not None and unit != result.default_unit) or placement == "right"


def _x_range(result: PanelResult) -> list[str] | None:
    """With one time bucket (a service with an hour of data) plotly would zoom to milliseconds:
    the axis spans at least one bucket either side of the data."""
    time_i = _time_column(result.columns, result.rows)
    if time_i is None:
        return None
    stamps = [v for v in (r[time_i] for r in result.rows) if isinstance(v, (dt.datetime, dt.date))]
    if not stamps:
        return None
    first, last = min(stamps), max(stamps)
    if not isinstance(first, dt.datetime):
        first = dt.datetime.combine(first, dt.time())
    if not isinstance(last, dt.datetime):
        last = dt.datetime.combine(last, dt.time())
    bucket = dt.timedelta(seconds=max(result.interval_s, 60))
    if last - first >= 2 * bucket:
        return None
    pad = bucket
    return [_plain(first - pad), _plain(last + pad)]


# --- page -------------------------------------------------------------------------------

_TICKFORMAT = {"currencyUSD": "$,.4~f", "percentunit": ".0%"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1f2328}
header{background:#1f2328;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d1d9;font-size:13px}
nav{padding:8px 24px;background:#fff;border-bottom:1px solid #d0d7de}nav a{margin-right:16px}
section.dashboard{padding:8px 24px 24px}h2{margin:24px 0 8px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(560px,100%),1fr));gap:16px}
.panel{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px;overflow:auto;min-width:0}
.panel.wide{grid-column:1/-1}.panel h3{margin:0 0 4px;font-size:15px}
.panel p.desc{margin:0 0 8px;color:#57606a;font-size:12px}
.chart{height:320px}.stats{display:flex;gap:24px;flex-wrap:wrap}
.stat .v{font-size:28px;font-weight:600}.stat .k{color:#57606a;font-size:12px}
.scroll{max-height:360px;overflow:auto}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #eaeef2;padding:4px 6px;text-align:left;white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums}.empty{color:#57606a;font-style:italic}
.error{color:#cf222e;white-space:pre-wrap}details{margin-top:6px;font-size:11px}
details pre{white-space:pre-wrap;background:#f6f8fa;padding:6px}
"""

# Installed before plotly.js runs, so an error anywhere on the page is recorded.
_ERROR_HOOK = """
window.llmcostErrors = [];
window.addEventListener('error', function (e) { window.llmcostErrors.push(String(e.message || e)); });
(function () {
  var original = console.error;
  console.error = function () {
    window.llmcostErrors.push(Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
"""

_RENDER = """
(function () {
  var specs = JSON.parse(document.getElementById('llmcost-charts').textContent);
  var pending = specs.map(function (spec) {
    var div = document.getElementById(spec.id);
    return Plotly.newPlot(div, spec.data, spec.layout, {displaylogo: false, responsive: true})
      .then(function () {
        div.dataset.rendered = '1';
        div.dataset.traces = String(div.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length);
      })
      .catch(function (err) { window.llmcostErrors.push(String(err)); });
  });
  Promise.all(pending).then(function () {
    document.body.dataset.errors = JSON.stringify(window.llmcostErrors);
    document.body.dataset.status = 'done';
  });
})();
"""


def _script_json(payload: Any) -> str:
    return json.dumps(payload, default=str).replace("</", "<\\/")


def _panel_html(result: PanelResult, chart_id: str, charts: list[dict[str, Any]]) -> str:
    wide = result.type == "table" and len(result.columns) > 6
    parts = [f'<div class="panel{" wide" if wide else ""}" data-panel="{html.escape(result.title)}">']
    parts.append(f"<h3>{html.escape(result.title)}</h3>")
    if result.description:
        parts.append(f'<p class="desc">{html.escape(result.description)}</p>')
    if result.error:
        parts.append(f'<p class="error llmcost-error">query failed: {html.escape(result.error)}</p>')
    elif not result.rows:
        parts.append('<p class="empty llmcost-empty">No data in this time range.</p>')
    elif result.type in CHART_TYPES and (traces := chart_traces(result)):
        layout: dict[str, Any] = {
            "margin": {"l": 60, "r": 10, "t": 10, "b": 40},
            "showlegend": True,
            "legend": {"orientation": "h", "y": -0.2},
            "xaxis": {"type": "date"},
            "yaxis": {"rangemode": "tozero", "tickformat": _TICKFORMAT.get(result.default_unit or "", "")},
            "hovermode": "x unified",
        }
        if (x_range := _x_range(result)) is not None:
            layout["xaxis"]["range"] = x_range
        second = [t for t in traces if t.get("yaxis") == "y2"]
        if second:
            column = next(c for c in result.columns if _own_axis(result, c))
            layout["margin"]["r"] = 60
            layout["yaxis2"] = {
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
                "title": {"text": column},
                "tickformat": _TICKFORMAT.get(result.units.get(column, ""), ""),
            }
        charts.append({"id": chart_id, "data": traces, "layout": layout})
        points = sum(len(t["x"]) for t in traces)
        parts.append(f'<div class="chart llmcost-chart" id="{chart_id}" data-points="{points}"></div>')
    elif result.type == "stat":
        parts.append('<div class="stats">')
        row = result.rows[0]
        for column, value in zip(result.columns, row, strict=True):
            unit = result.units.get(column, result.default_unit)
            parts.append(
                f'<div class="stat"><div class="v">{html.escape(format_value(value, unit))}</div>'
                f'<div class="k">{html.escape(column)}</div></div>'
            )
        parts.append("</div>")
    else:
        parts.append('<div class="scroll"><table class="llmcost-table"><thead><tr>')
        parts.extend(f"<th>{html.escape(c)}</th>" for c in result.columns)
        parts.append("</tr></thead><tbody>")
        for row in result.rows:
            cells = []
            for column, value in zip(result.columns, row, strict=True):
                unit = result.units.get(column)
                css = ' class="n"' if _is_number(_plain(value)) else ""
                cells.append(f"<td{css}>{html.escape(format_value(value, unit))}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table></div>")
    parts.append(f"<details><summary>SQL</summary><pre>{html.escape(result.sql)}</pre></details>")
    parts.append("</div>")
    return "".join(parts)


def render_page(
    sections: Sequence[tuple[Mapping[str, Any], Sequence[PanelResult]]], time_range: TimeRange, *, plotly_js: str
) -> str:
    charts: list[dict[str, Any]] = []
    body = []
    for d_index, (dashboard, results) in enumerate(sections):
        anchor = html.escape(str(dashboard.get("uid", f"d{d_index}")))
        body.append(f'<section class="dashboard" id="{anchor}"><h2>{html.escape(dashboard.get("title", ""))}</h2>')
        body.append('<div class="grid">')
        for p_index, result in enumerate(results):
            body.append(_panel_html(result, f"chart-{d_index}-{p_index}", charts))
        body.append("</div></section>")
    nav = "".join(
        f'<a href="#{html.escape(str(d.get("uid", "")))}">{html.escape(d.get("title", ""))}</a>' for d, _ in sections
    )
    span = f"{time_range.start:%Y-%m-%d %H:%M} to {time_range.end:%Y-%m-%d %H:%M} UTC"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>otel-llmcost report</title><style>{_CSS}</style>"
        f"<script>{_ERROR_HOOK}</script><script>{plotly_js}</script></head>"
        f"<body data-status='loading'><header><h1>otel-llmcost report</h1><p>{html.escape(span)}. "
        "The panels and SQL of the provisioned Grafana dashboards, variables at All.</p></header>"
        f"<nav>{nav}</nav>{''.join(body)}"
        f"<script type='application/json' id='llmcost-charts'>{_script_json(charts)}</script>"
        f"<script>{_RENDER}</script></body></html>\n"
    )


@dataclass
class HtmlReport:
    path: Path
    panels: int
    charts: int
    failed: list[str]
    empty: list[str]


def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("the HTML report needs plotly: pip install 'otel-llmcost[html]'") from exc
    return get_plotlyjs()


def write_html_report(
    client: Any,
    path: str | Path,
    *,
    since_hours: int = 24 * 30,
    now: dt.datetime | None = None,
    dashboards: Sequence[Mapping[str, Any]] | None = None,
) -> HtmlReport:
    """Run every dashboard panel against ``client`` (its default database) and write the page."""
    if isinstance(since_hours, bool) or not isinstance(since_hours, int) or since_hours <= 0:
        raise ValueError(f"since_hours must be a positive integer, got {since_hours!r}")
    time_range = TimeRange.last(since_hours * 3600, now=now)
    boards = list(dashboards) if dashboards is not None else load_dashboards()
    sections = []
    for dashboard in boards:
        variables = resolve_variables(client, dashboard, time_range)
        sections.append((dashboard, run_dashboard(client, dashboard, time_range, variables)))
    page = render_page(sections, time_range, plotly_js=_plotly_js())
    target = Path(path)
    target.write_text(page, encoding="utf-8")
    results = [r for _, rs in sections for r in rs]
    return HtmlReport(
        path=target,
        panels=len(results),
        charts=sum(1 for r in results if r.type in CHART_TYPES and r.rows and not r.error),
        failed=[f"{r.dashboard} / {r.title}: {r.error}" for r in results if r.error],
        empty=[f"{r.dashboard} / {r.title}" for r in results if not r.error and not r.rows],
    )
