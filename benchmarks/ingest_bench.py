"""Ingest throughput: spooled spans into embedded ClickHouse (chdb), against bulk inserts
of the same rows into the same chdb, in the same process and run (issue 24, item 2).

N spans shaped like otel-llmcost's (``exporter_bench.make_spans``: the attributes of a
real instrumented call, varied endpoint, user, model and tokens) are converted once and
spooled as the exporter spools them (files of ``--file-rows``, 512 = the
BatchSpanProcessor's batch). Every round creates fresh databases in ONE chdb path (the
schema, materialized views included, is built before the clock starts) and times, in
an order that rotates from round to round:

- ``ingest``: ``ingest_pending`` over the spool, what the ingester runs (read the files,
  group them, one insert per group with its deduplication token, unlink);
- ``rows``: the same rows, already decoded, through ``client.insert`` in batches of the
  ingest's group size: a plain clickhouse-connect insert (the baseline of issue 24);
- ``columns``: the same, column-oriented (``column_oriented=True``), columns prepared
  before the clock starts;
- ``native``: the same rows as ONE pre-encoded ``INSERT ... FORMAT Native`` (bytes
  prepared before the clock starts): chdb's own work and the materialized views', nothing
  of Python's: the floor;
- ``decode``: what the ingest did before issue 24: decode every spool file in Python
  (``read_spool``) and ``client.insert`` the rows, per group.

Every path goes through the same materialized views (otel_traces -> llm_calls ->
rollups), so spans/s is "through the materialized views" and a ratio isolates what a
path adds. The figure reported is the median over rounds of the per-round ratio.

    python benchmarks/ingest_bench.py --spans 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

MODES = ("ingest", "rows", "columns", "native", "decode")


def _spool(dsn: str, rows: list[list[Any]], file_rows: int) -> None:
    from otel_llmcost.exporter.spool import write_spool

    for i in range(0, len(rows), file_rows):
        write_spool(dsn, rows[i : i + file_rows])


def run(spans: int, rounds: int, file_rows: int, group_rows: int | None) -> dict[str, Any]:
    from exporter_bench import make_spans

    from otel_llmcost import storage
    from otel_llmcost.exporter import ingest
    from otel_llmcost.exporter.rows import COLUMNS, span_to_row
    from otel_llmcost.exporter.spool import pending_files, read_spool

    if group_rows:
        ingest.MAX_GROUP_ROWS = group_rows
    group = ingest.MAX_GROUP_ROWS
    workdir = Path(tempfile.mkdtemp(prefix="llmcost-ingest-bench-"))
    os.environ["OTEL_LLMCOST_HOME"] = str(workdir / "home")
    dsn = f"chdb://{workdir / 'chdb'}"
    decode_dsn = f"chdb://{workdir / 'decode' / 'chdb'}"  # a second spool, read by the "decode" path
    columns = list(COLUMNS)
    try:
        rows = [span_to_row(s) for s in make_spans(spans)]
        by_column = [[row[i] for row in rows] for i in range(len(columns))]
        client = storage.connect(dsn)
        key = str(storage.chdb_path(dsn))
        native: list[bytes] = []  # filled once, from the first round's rows table
        results: list[dict[str, float]] = []
        for r in range(rounds):
            dbs = {mode: f"bench_{mode}_{r}" for mode in MODES}
            for db in dbs.values():
                ingest.ensure_schema(client, key, db, 180)
            _spool(dsn, rows, file_rows)
            _spool(decode_dsn, rows, file_rows)

            def do_ingest(db: str) -> None:
                assert ingest.ingest_pending(dsn, db, client=client) == spans

            def do_rows(db: str) -> None:
                for i in range(0, spans, group):
                    client.insert(f"{db}.otel_traces", rows[i : i + group], column_names=columns)

            def do_columns(db: str) -> None:
                for i in range(0, spans, group):
                    chunk = [col[i : i + group] for col in by_column]
                    client.insert(f"{db}.otel_traces", chunk, column_names=columns, column_oriented=True)

            def do_native(db: str) -> None:
                client.raw_insert(f"{db}.otel_traces", columns, native[0], fmt="Native")

            def do_decode(db: str) -> None:
                batch: list[list[Any]] = []
                for path in pending_files(decode_dsn):
                    batch.extend(read_spool(path))
                    path.unlink()
                    if len(batch) >= group:
                        client.insert(f"{db}.otel_traces", batch, column_names=columns)
                        batch = []
                if batch:
                    client.insert(f"{db}.otel_traces", batch, column_names=columns)

            paths: dict[str, Callable[[str], None]] = {
                "ingest": do_ingest,
                "rows": do_rows,
                "columns": do_columns,
                "native": do_native,
                "decode": do_decode,
            }
            order = list(MODES[r % len(MODES) :] + MODES[: r % len(MODES)])
            if not native:  # the Native bytes come from a table the rows went into
                order.remove("rows")
                order.insert(0, "rows")
            timing: dict[str, float] = {}
            for mode in order:
                if mode == "native" and not native:
                    quoted = ", ".join(f"`{c}`" for c in columns)
                    native.append(client.raw_query(f"SELECT {quoted} FROM {dbs['rows']}.otel_traces", fmt="Native"))
                start = time.perf_counter()
                paths[mode](dbs[mode])
                timing[mode] = time.perf_counter() - start
            for mode, db in dbs.items():
                stored = client.query(f"SELECT count() FROM {db}.llm_calls").result_rows[0][0]
                assert stored == spans, (mode, stored)
            results.append({mode: spans / seconds for mode, seconds in timing.items()})
            print(
                f"round {r + 1}: "
                + ", ".join(f"{mode} {results[-1][mode]:,.0f}/s" for mode in MODES)
                + f" (load {os.getloadavg()[0]:.1f})",
                file=sys.stderr,
            )
        client.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "spans": spans,
        "rounds": rounds,
        "file_rows": file_rows,
        "group_rows": group,
        "per_round": results,
        "median_spans_per_s": {m: statistics.median(x[m] for x in results) for m in MODES},
        "median_ratio": {
            f"ingest/{m}": statistics.median(x["ingest"] / x[m] for x in results) for m in MODES if m != "ingest"
        }
        | {"decode/rows": statistics.median(x["decode"] / x["rows"] for x in results)},
    }


def render(result: dict[str, Any]) -> str:
    s, q = result["median_spans_per_s"], result["median_ratio"]
    lines = [
        f"{result['spans']:,} spans in spool files of {result['file_rows']}, groups of {result['group_rows']:,} rows,"
        f" {result['rounds']} rounds (medians; every path through the materialized views)",
        "",
        "| path | spans/s | ingest / path |",
        "|---|---|---|",
    ]
    labels = {
        "ingest": "ingest_pending (the ingester)",
        "rows": "client.insert, rows (baseline)",
        "columns": "client.insert, column-oriented",
        "native": "pre-encoded INSERT FORMAT Native (floor)",
        "decode": "decode in Python + client.insert (the ingest before issue 24)",
    }
    for mode in MODES:
        ratio = "-" if mode == "ingest" else f"{q[f'ingest/{mode}']:.2f}x"
        lines.append(f"| {labels[mode]} | {s[mode]:,.0f} | {ratio} |")
    lines.append("")
    lines.append(f"Goal (issue 24): ingest >= 0.8x the rows baseline: {q['ingest/rows']:.2f}x.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--file-rows", type=int, default=512)
    parser.add_argument("--group-rows", type=int, default=None, help="override ingest.MAX_GROUP_ROWS")
    parser.add_argument("--quick", action="store_true", help="4,000 spans, 3 rounds")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    spans = 4_000 if args.quick else args.spans
    result = run(spans, args.rounds, args.file_rows, args.group_rows)
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
