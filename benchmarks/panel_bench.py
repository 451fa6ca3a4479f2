"""Every dashboard panel, timed on generated traffic for 1 h, 7 d and 30 d, and checked
for cost that grows with retention (issue 22, items 1 and 6).

Data: ``query_bench``'s generator (N GenAI spans over the last 30 days, inserted into
``otel_traces`` so that the materialized views fill ``llm_calls`` and every rollup the real
way). Each panel of every dashboard in ``dashboards/`` is expanded exactly as Grafana's
ClickHouse plugin would (``otel_llmcost.reporting.grafana_macros``, through the same
functions the HTML report uses), with every variable on All, and run ``repeats`` times;
the best wall and process-CPU time count (chdb runs in this process, so CPU is the
engine's own work and far steadier than the wall clock on a shared machine).

Retention check: after the timings, the same number of spans is copied 60 to 150 days
back (inside the default 180-day TTL), as a database that has kept five months would
hold, and each panel's rows read for the 7-day range is measured again. A panel whose
rows read grew reads data outside the range it was asked for: its cost grows with
retention. Rows read come from the query's own statistics (``FORMAT JSON``).

    python benchmarks/panel_bench.py --rows 10000000          # the issue's size (~15 min)
    python benchmarks/panel_bench.py --rows 20000 --repeats 1  # what CI runs
    # the 7 days of the issue's size only (2.3M calls), a few panels:
    python benchmarks/panel_bench.py --rows 2630000 --days 8 --ranges 7d --panels 'Savings opportunities|Top users'

chdb opens one data path per process: run as a script, this is that process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import query_bench  # noqa: E402
import storage_bytes  # noqa: E402

DB = query_bench.DB
RANGES = {"1h": 3600, "7d": 7 * 86400, "30d": 30 * 86400}
BUDGET_RANGE = "7d"  # the goal: every panel under 1 s for 7 days at 10M calls
BUDGET_S = 1.0
GROWTH_SLACK = 0.01  # of the old calls: more extra rows read than this is reading them
OLD_DAYS = (60, 150)  # where the retention copy lands, inside the default 180-day TTL


def _merge_rollups(client: Any) -> None:
    """Merge every aggregating table, as the server does in the background within minutes.

    Unmerged parts hold one row per key per insert: without this, a table keyed without
    time (llm_prefix_tokens: one row per prefix) would seem to grow with the copy of the
    same keys, and a fresh insert would make every rollup look larger than it stays.
    """
    tables = client.query(
        f"SELECT name FROM system.tables WHERE database = '{DB}' AND engine LIKE '%AggregatingMergeTree'"
    ).result_rows
    for (table,) in tables:
        client.command(f"OPTIMIZE TABLE {DB}.{table} FINAL")


def _table_sizes(client: Any, calls: int) -> dict[str, dict[str, float]]:
    """Rows, calls per row and compressed bytes per row of every table holding data."""
    return {
        t["table"]: {
            "rows": t["rows"],
            "calls_per_row": calls / t["rows"],
            "bytes_per_row": t["compressed"] / t["rows"],
        }
        for t in storage_bytes.sizes(client, DB)["tables"]
        if t["rows"]
    }


def _rows_read(client: Any, sql: str) -> int:
    raw = client.raw_query(sql + "\nFORMAT JSON")
    return int(json.loads(raw)["statistics"]["rows_read"])


def _timed(client: Any, sql: str, repeats: int) -> tuple[float, float]:
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        client.query(sql)
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


PanelSql = tuple[str, dict[str, Any], dict[str, dict[str, Any]]]


def _panels(client: Any, now: dt.datetime, ranges: dict[str, int]) -> list[PanelSql]:
    """(panel id, panel, {range: {"sql": ...}}) for every panel, variables resolved per range."""
    from otel_llmcost.reporting import grafana_macros as gm
    from otel_llmcost.reporting.html import expanded_panel_sql, iter_panels, load_dashboards, resolve_variables

    out = []
    for board in load_dashboards():
        per_range = {}
        for name, seconds in ranges.items():
            time_range = gm.TimeRange.last(seconds, now=now)
            per_range[name] = (time_range, resolve_variables(client, board, time_range))
        for panel in iter_panels(board):
            sqls = {
                name: {"sql": expanded_panel_sql(panel, tr, variables)} for name, (tr, variables) in per_range.items()
            }
            out.append((f"{board['uid']}: {panel.get('title', '')}", panel, sqls))
    return out


def run(
    rows: int,
    repeats: int,
    endpoints: int,
    models: int,
    users: int,
    ranges: dict[str, int] | None = None,
    *,
    days: int = 30,
    only: list[str] | None = None,
) -> dict[str, Any]:
    """``days``: how far back the generated calls go; ``only``: time just the panels whose
    "dashboard uid: title" contains one of these strings (all panels when empty)."""
    ranges = ranges or RANGES
    if BUDGET_RANGE not in ranges:
        raise ValueError(f"the ranges must include {BUDGET_RANGE} (the budget and the retention check use it)")
    from otel_llmcost import storage
    from otel_llmcost.storage import migrations

    workdir = Path(tempfile.mkdtemp(prefix="llmcost-panel-bench-"))
    dsn = f"chdb://{workdir / 'chdb'}"
    client = storage.connect(dsn)
    migrations.migrate(client, database=DB)
    client.close()
    client = storage.connect(dsn, database=DB)  # the panels name their views unqualified, as Grafana's data source does
    try:
        start = time.perf_counter()
        query_bench.generate(client, rows, endpoints=endpoints, models_count=models, users=users, days=days)
        generate_s = time.perf_counter() - start
        _merge_rollups(client)
        calls = client.query(f"SELECT count() FROM {DB}.llm_calls").result_rows[0][0]
        tables = _table_sizes(client, calls)
        now = dt.datetime.now(dt.timezone.utc)
        panels = [p for p in _panels(client, now, ranges) if not only or any(o in p[0] for o in only)]
        results = []
        for panel_id, _panel, sqls in panels:
            entry: dict[str, Any] = {"panel": panel_id, "ranges": {}}
            for name, item in sqls.items():
                try:
                    # --repeats 0: rows read only (the retention check, as CI runs it)
                    timing = dict(zip(("wall_s", "cpu_s"), _timed(client, item["sql"], repeats), strict=True))
                    read = _rows_read(client, item["sql"])
                    entry["ranges"][name] = {**(timing if repeats else {}), "rows_read": read}
                except Exception as exc:  # report the panel, keep timing the others
                    entry["ranges"][name] = {"error": str(exc).strip().splitlines()[0][:300]}
            results.append(entry)
            print(
                f"{panel_id}: "
                + ", ".join(
                    f"{n} {r['wall_s']:.2f}s" if "wall_s" in r else f"{n} {r.get('error', 'untimed')}"
                    for n, r in entry["ranges"].items()
                ),
                file=sys.stderr,
                flush=True,
            )  # progress: a full run takes minutes

        # Retention: the same spans again, 60-150 days old; the 7-day panels must not read them.
        lo, hi = OLD_DAYS
        client.command(
            f"INSERT INTO {DB}.otel_traces SELECT * REPLACE ("
            f" Timestamp - toIntervalSecond({lo * 86400} + cityHash64(SpanId) % {(hi - lo - 30) * 86400}) AS Timestamp,"
            f" concat('old', SpanId) AS SpanId) FROM {DB}.otel_traces"
        )
        _merge_rollups(client)
        old_calls = client.query(f"SELECT count() FROM {DB}.llm_calls").result_rows[0][0] - calls
        for entry, (_, _panel, sqls) in zip(results, panels, strict=True):
            before = entry["ranges"][BUDGET_RANGE].get("rows_read")
            if before is None:
                continue
            after = _rows_read(client, sqls[BUDGET_RANGE]["sql"])
            entry["rows_read_with_old_data"] = after
            # A few rows per part are metadata-sized reads (a min() over a table's parts); a
            # panel that scans the old calls reads thousands more.
            entry["grows_with_retention"] = after - before > GROWTH_SLACK * old_calls
        return {
            "status": "ok",
            "rows": rows,
            "calls": calls,
            "old_calls": old_calls,
            "cardinality": {"endpoints": endpoints, "models": models, "users": users},
            "days": days,
            "generate_s": generate_s,
            "tables": tables,
            "repeats": repeats,
            "budget": {"range": BUDGET_RANGE, "seconds": BUDGET_S},
            "ranges": list(ranges),
            "panels": results,
        }
    finally:
        client.close()
        shutil.rmtree(workdir, ignore_errors=True)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The verdicts: failing panels, panels over the time budget, panels that grow with retention."""
    panels = result["panels"]
    failing = [p["panel"] for p in panels if any("error" in r for r in p["ranges"].values())]
    over = [
        p["panel"]
        for p in panels
        if p["ranges"].get(BUDGET_RANGE, {}).get("wall_s", 0) > BUDGET_S
        and p["ranges"][BUDGET_RANGE].get("cpu_s", 0) > BUDGET_S
    ]
    grows = [p["panel"] for p in panels if p.get("grows_with_retention")]
    return {"panels": len(panels), "failing": failing, "over_budget": over, "grows_with_retention": grows}


def render(result: dict[str, Any]) -> str:
    if result.get("status") != "ok":
        return f"panel benchmark failed: {result.get('detail')}"
    verdict = summary(result)
    timing = f"best of {result['repeats']}" if result["repeats"] else "rows read only, not timed"
    lines = [
        f"{result['calls']:,} calls generated in {result['generate_s']:.0f} s; {verdict['panels']} panels,"
        f" {timing}; then {result['old_calls']:,} calls 60-150 days old for the retention check.",
        f"Over {BUDGET_S:g} s (wall and CPU) at {BUDGET_RANGE}: {', '.join(verdict['over_budget']) or 'none'}."
        f" Rows read at {BUDGET_RANGE} grew with older data: {', '.join(verdict['grows_with_retention']) or 'none'}."
        f" Failing: {', '.join(verdict['failing']) or 'none'}.",
        "",
        "| table | rows | calls per row | compressed bytes per row |",
        "|---|---|---|---|",
        *(
            f"| {name} | {t['rows']:,} | {t['calls_per_row']:,.1f} | {t['bytes_per_row']:,.1f} |"
            for name, t in result.get("tables", {}).items()
        ),
        "",
        "| panel | "
        + " | ".join(f"{r} ms (CPU ms)" for r in result["ranges"])
        + f" | rows read {BUDGET_RANGE} (with old data) |",
        "|---|" + "---|" * len(result["ranges"]) + "---|",
    ]

    def cost(p: dict[str, Any]) -> float:
        return float(p["ranges"].get(BUDGET_RANGE, {}).get("wall_s", 1e9))

    for p in sorted(result["panels"], key=cost, reverse=True):
        cells = []
        for name in result["ranges"]:
            r = p["ranges"].get(name, {})
            if "error" in r:
                cells.append(f"error: {r['error'][:60]}")
            elif "wall_s" in r:
                cells.append(f"{r['wall_s'] * 1000:,.0f} ({r['cpu_s'] * 1000:,.0f})")
            else:
                cells.append("-")
        read = p["ranges"].get(BUDGET_RANGE, {}).get("rows_read")
        old = p.get("rows_read_with_old_data")
        reads = "-" if read is None else f"{read:,}" + ("" if old is None else f" ({old:,})")
        lines.append(f"| {p['panel']} | " + " | ".join(cells) + f" | {reads} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2, help="0: measure rows read only")
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--ranges", default=",".join(RANGES), help=f"a subset of {','.join(RANGES)}")
    parser.add_argument("--days", type=int, default=30, help="spread the calls over the last N days")
    parser.add_argument(
        "--panels",
        default="",
        help="time only these panels: '|'-separated parts of 'dashboard uid: title' (e.g. 'Top users|Tail')",
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--check", action="store_true", help="exit 1 if a panel fails or reads older data")
    args = parser.parse_args()
    ranges = {name: RANGES[name] for name in args.ranges.split(",")}
    only = [p for p in args.panels.split("|") if p]
    result = run(args.rows, args.repeats, args.endpoints, args.models, args.users, ranges, days=args.days, only=only)
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    verdict = summary(result)
    return 1 if args.check and (verdict["failing"] or verdict["grows_with_retention"]) else 0


if __name__ == "__main__":
    sys.exit(main())
