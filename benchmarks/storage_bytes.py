"""Storage per call: compressed bytes per row of ``llm_calls`` (per column and per column
group) and of every table the spans land in, after ``OPTIMIZE ... FINAL`` (issue 22, item 3).

Data: query_bench's generator (``INSERT INTO otel_traces SELECT ... FROM numbers(N)``, so
every materialized view is the real one), into a fresh chdb database migrated with the
real files, or with another tree's (``--sql DIR``, e.g. the previous commit's, to compare)::

    git archive HEAD otel_llmcost/storage/sql | tar -x -C /tmp/before
    python benchmarks/storage_bytes.py --rows 1000000 --sql /tmp/before/otel_llmcost/storage/sql
    python benchmarks/storage_bytes.py --rows 1000000

The generator's TraceId and SpanId are random hex (32 and 16 digits, cityHash64 of the
row number) as real OpenTelemetry ids are; its ParentSpanId is empty, so this also gives
every span a random parent id (an LLM call inside a request's span, the usual case), which
random ids cost in full. Figures come from ``system.parts_columns`` / ``system.parts``
(active parts, one per partition after FINAL). ``--calls-only`` fills llm_calls alone
(otel_traces a Null table, every other materialized view dropped): same llm_calls, faster.

chdb opens one data path per process: run it as a script (each run is its own process).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from query_bench import DB, ENDPOINTS, GENERATE, MODELS, USERS, models_for  # noqa: E402

# query_bench leaves ParentSpanId empty; a real call nearly always has a parent span.
_NO_PARENT = "'' AS ParentSpanId"
_RANDOM_PARENT = "lower(hex(cityHash64(number, 15))) AS ParentSpanId"

# Column groups of llm_calls for the summary (every other column is "other").
GROUPS = {
    "ids and hashes": ("TraceId", "SpanId", "ParentSpanId", "PrefixHash", "RequestHash", "SimHash", "BatchFileId"),
    "money": (
        "CostTotal",
        "CostInput",
        "CostOutput",
        "CostCacheRead",
        "CostCacheWrite",
        "CostCacheWritePremium",
        "CostSavings",
        "CostReported",
    ),
    "time": ("Timestamp", "DurationMs", "TtftMs"),
    "rate limits": (
        "RateLimitRequestsRemaining",
        "RateLimitRequestsLimit",
        "RateLimitTokensRemaining",
        "RateLimitTokensLimit",
        "RetryAfterS",
    ),
}


def _group(column: str) -> str:
    if column.endswith("Tokens"):
        return "tokens"
    return next((name for name, columns in GROUPS.items() if column in columns), "other")


def load(client: Any, rows: int, *, parent_ids: bool = True) -> float:
    """Generate ``rows`` spans into ``DB.otel_traces`` (through every MV); seconds taken."""
    names = models_for(len(MODELS))
    sql = GENERATE.format(
        db=DB,
        rows=rows,
        models="[" + ",".join(f"'{m}'" for m in names) + "]",
        endpoints=ENDPOINTS,
        nmodels=len(names),
        users=USERS,
        openai_models=sum(1 for m in names if m.startswith("gpt")),
        days=30,
    )
    if parent_ids:
        if _NO_PARENT not in sql:
            raise RuntimeError("query_bench.GENERATE changed: cannot give the spans parent ids")
        sql = sql.replace(_NO_PARENT, _RANDOM_PARENT)
    start = time.perf_counter()
    client.command(sql)
    return time.perf_counter() - start


def sizes(client: Any, database: str = DB) -> dict[str, Any]:
    """Per table and per llm_calls column: rows, compressed and uncompressed bytes (active parts)."""
    tables = client.query(
        "SELECT table, sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes), sum(bytes_on_disk),"
        " count() FROM system.parts WHERE database = {d:String} AND active GROUP BY table ORDER BY table",
        parameters={"d": database},
    ).result_rows
    columns = client.query(
        "SELECT c.column, any(c.type), sum(c.column_data_compressed_bytes), sum(c.column_data_uncompressed_bytes),"
        " any(t.compression_codec) FROM system.parts_columns AS c"
        " LEFT JOIN (SELECT name, compression_codec FROM system.columns"
        "   WHERE database = {d:String} AND table = 'llm_calls') AS t ON t.name = c.column"
        " WHERE c.database = {d:String} AND c.table = 'llm_calls' AND c.active"
        " GROUP BY c.column ORDER BY sum(c.column_data_compressed_bytes) DESC",
        parameters={"d": database},
    ).result_rows
    return {
        "tables": [
            {
                "table": t,
                "rows": int(r),
                "compressed": int(c),
                "uncompressed": int(u),
                "on_disk": int(d),
                "parts": int(p),
            }
            for t, r, c, u, d, p in tables
        ],
        "columns": [
            {"column": n, "type": str(ty), "compressed": int(c), "uncompressed": int(u), "codec": str(codec or "")}
            for n, ty, c, u, codec in columns
        ],
    }


def calls_only(client: Any, database: str = DB) -> None:
    """Keep only what fills llm_calls: every other materialized view dropped, and
    otel_traces a Null table (its materialized views still fire; it stores nothing)."""
    views = client.query(
        "SELECT name FROM system.tables WHERE database = {d:String} AND engine = 'MaterializedView'"
        " AND name != 'llm_calls_mv'",
        parameters={"d": database},
    ).result_rows
    for (name,) in views:
        client.command(f"DROP TABLE {database}.{name}")
    client.command(f"CREATE TABLE {database}.otel_traces_null AS {database}.otel_traces ENGINE = Null")
    client.command(f"DROP TABLE {database}.otel_traces")
    client.command(f"RENAME TABLE {database}.otel_traces_null TO {database}.otel_traces")


def run_one(
    rows: int, sql_dir: Path | None = None, parent_ids: bool = True, only_calls: bool = False
) -> dict[str, Any]:
    from otel_llmcost import storage
    from otel_llmcost.storage import migrations

    workdir = Path(tempfile.mkdtemp(prefix="llmcost-storage-bytes-"))
    client = storage.connect(f"chdb://{workdir / 'chdb'}")
    try:
        if sql_dir is not None:
            migrations.MIGRATIONS_DIR = sql_dir
        migrations.migrate(client, database=DB)
        if only_calls:
            calls_only(client)
        load_s = load(client, rows, parent_ids=parent_ids)
        tables = [
            r[0]
            for r in client.query(
                f"SELECT name FROM system.tables WHERE database = '{DB}' AND engine LIKE '%MergeTree'"
            ).result_rows
        ]
        start = time.perf_counter()
        for table in tables:
            client.command(f"OPTIMIZE TABLE {DB}.{table} FINAL")
        optimize_s = time.perf_counter() - start
        return {
            "rows": rows,
            "sql": str(sql_dir or "this tree"),
            "parent_ids": parent_ids,
            "load_s": load_s,
            "optimize_s": optimize_s,
            **sizes(client),
        }
    finally:
        client.close()
        shutil.rmtree(workdir, ignore_errors=True)


def render(result: dict[str, Any]) -> str:
    calls = next((t for t in result["tables"] if t["table"] == "llm_calls"), None)
    if not calls or not calls["rows"]:
        return "llm_calls holds no rows"
    n = calls["rows"]
    lines = [
        f"{result['rows']:,} spans (SQL: {result['sql']}; parent ids: {result['parent_ids']}), loaded in"
        f" {result['load_s']:.1f}s, OPTIMIZE FINAL {result['optimize_s']:.1f}s",
        "",
        "| table | rows | compressed B/row | uncompressed B/row | ratio | on disk B/row | parts |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in result["tables"]:
        if t["rows"]:
            rows, comp, unc = t["rows"], t["compressed"], t["uncompressed"]
            lines.append(
                f"| {t['table']} | {rows:,} | {comp / rows:.1f} | {unc / rows:.1f} | {unc / max(comp, 1):.1f}"
                f" | {t['on_disk'] / rows:.1f} | {t['parts']} |"
            )
    groups: dict[str, list[int]] = {}
    for c in result["columns"]:
        g = groups.setdefault(_group(c["column"]), [0, 0])
        g[0] += c["compressed"]
        g[1] += c["uncompressed"]
    lines += ["", "| llm_calls column group | compressed B/row | ratio |", "|---|---|---|"]
    for name, (comp, unc) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {name} | {comp / n:.2f} | {unc / max(comp, 1):.1f} |")
    lines.append(
        f"| total | {calls['compressed'] / n:.2f} | {calls['uncompressed'] / max(calls['compressed'], 1):.1f} |"
    )
    lines += ["", "| llm_calls column | type | codec | compressed B/row | ratio |", "|---|---|---|---|---|"]
    for c in result["columns"]:
        if c["compressed"] / n >= 0.05:
            lines.append(
                f"| {c['column']} | {c['type']} | {c['codec'] or 'default'} | {c['compressed'] / n:.2f}"
                f" | {c['uncompressed'] / max(c['compressed'], 1):.1f} |"
            )
    lines.append(
        f"| (columns under 0.05 B/row: {sum(1 for c in result['columns'] if c['compressed'] / n < 0.05)}) | | | | |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--sql", type=Path, default=None, help="a directory of migration .sql files (default: this tree's)"
    )
    parser.add_argument("--no-parent-ids", action="store_true", help="leave ParentSpanId empty, as query_bench does")
    parser.add_argument(
        "--calls-only",
        action="store_true",
        help="fill llm_calls alone (otel_traces a Null table, no other view): several times faster",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sql = args.sql.resolve() if args.sql else None
    result = run_one(args.rows, sql, parent_ids=not args.no_parent_ids, only_calls=args.calls_only)
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
