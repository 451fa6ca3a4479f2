"""What a schema change costs every insert: the same spans into a database migrated from
another tree's SQL files and into one migrated from this tree's, in ONE chdb path, one
process, alternating, so the ratio is measured in the same run (issue 24, item 3: the
columns llm_cost_hourly gained for rate limits and the cache's request hit share).

The "before" SQL is a directory of migration files, e.g. from the previous commit::

    git archive HEAD otel_llmcost/storage/sql | tar -x -C /tmp/before
    python benchmarks/schema_ingest_cost.py --before-sql /tmp/before/otel_llmcost/storage/sql

Each round creates both databases afresh (untimed) and inserts the spans the way the
ingester does (``insert_spool_bytes``: spool lines parsed by chdb, in groups of
``MAX_GROUP_ROWS``), every materialized view included. Reported: spans/s through the
materialized views for each schema and the median per-round ratio after / before, in wall
time and per CPU second of the process (chdb runs in it: steadier on shared cores).
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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def run(before_sql: Path, spans: int, rounds: int) -> dict[str, Any]:
    from exporter_bench import make_spans

    from otel_llmcost import storage
    from otel_llmcost.exporter import ingest
    from otel_llmcost.exporter.rows import span_to_row
    from otel_llmcost.storage import migrations

    workdir = Path(tempfile.mkdtemp(prefix="llmcost-schema-cost-"))
    os.environ["OTEL_LLMCOST_HOME"] = str(workdir / "home")
    lines = [json.dumps(span_to_row(s), separators=(",", ":")).encode() + b"\n" for s in make_spans(spans)]
    group = ingest.MAX_GROUP_ROWS
    chunks = [b"".join(lines[i : i + group]) for i in range(0, spans, group)]
    after_sql = migrations.MIGRATIONS_DIR
    client = storage.connect(f"chdb://{workdir / 'chdb'}")
    per_round: list[dict[str, float]] = []
    try:
        for r in range(rounds):
            sides = {"before": before_sql, "after": after_sql}
            for side, sql in sides.items():
                migrations.MIGRATIONS_DIR = sql
                migrations.migrate(client, database=f"{side}_{r}")
            migrations.MIGRATIONS_DIR = after_sql
            rates: dict[str, float] = {}
            for side in ("before", "after") if r % 2 == 0 else ("after", "before"):
                start, cpu = time.perf_counter(), time.process_time()
                for n, chunk in enumerate(chunks):
                    ingest.insert_spool_bytes(client, f"{side}_{r}", [chunk], f"{side}-{r}-{n}")
                rates[side] = spans / (time.perf_counter() - start)
                rates[f"{side}_cpu"] = spans / (time.process_time() - cpu)  # chdb runs in this process
                stored = client.query(f"SELECT count() FROM {side}_{r}.llm_calls").result_rows[0][0]
                assert stored == spans, (side, stored)
            per_round.append(rates)
            print(
                f"round {r + 1}: before {rates['before']:,.0f}/s, after {rates['after']:,.0f}/s,"
                f" after/before {rates['after'] / rates['before']:.2f}; per CPU second: before"
                f" {rates['before_cpu']:,.0f}, after {rates['after_cpu']:,.0f},"
                f" after/before {rates['after_cpu'] / rates['before_cpu']:.2f} (load {os.getloadavg()[0]:.1f})",
                file=sys.stderr,
            )
    finally:
        client.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "spans": spans,
        "rounds": rounds,
        "per_round": per_round,
        "before_spans_per_s": statistics.median(x["before"] for x in per_round),
        "after_spans_per_s": statistics.median(x["after"] for x in per_round),
        "after_over_before": statistics.median(x["after"] / x["before"] for x in per_round),
        "cpu_after_over_before": statistics.median(x["after_cpu"] / x["before_cpu"] for x in per_round),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-sql", type=Path, required=True, help="a directory of migration .sql files")
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = run(args.before_sql.resolve(), args.spans, args.rounds)
    print(
        f"{result['spans']:,} spans, {result['rounds']} rounds (medians), through every materialized view:"
        f" before {result['before_spans_per_s']:,.0f} spans/s, after {result['after_spans_per_s']:,.0f} spans/s,"
        f" after / before {result['after_over_before']:.2f}x wall,"
        f" {result['cpu_after_over_before']:.2f}x per CPU second"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
