"""The store side of the embedded-store tests, one chdb process per step (issue 17).

    python store_ingest.py ingest --dsn chdb:///x [--fsize-limit BYTES] [--wait S] [--count SERVICE]
    python store_ingest.py disk-sweep --dsn chdb:///x --held DIR --filler FILE --levels 1040,1700
    python store_ingest.py count  --dsn chdb:///x --service s
    python store_ingest.py sql    --dsn chdb:///x ["DROP TABLE otel.otel_traces"]  # migrates first
    python store_ingest.py hold   --dsn chdb:///x    # holds the path open until stdin closes

``ingest`` runs one :func:`ingest_pending` pass, as the ingester process does, and
prints what it returned or raised as one JSON line. ``--fsize-limit`` sets
RLIMIT_FSIZE once chdb is loaded (SIGXFSZ ignored, so a write past the limit fails
with EFBIG and the process lives): the disk is "full" for every file chdb writes.
``disk-sweep`` migrates, then fills the filesystem of the database (``--filler``, a file on it) so
that only so many KiB stay free, releases the next spool files held back in
``--held`` (written by a real exporter), runs a pass (the disk full), frees the disk,
runs another pass, counts, and moves on to the next level: it shows where a full disk
stops chdb (the reservation before an insert, or a materialized view's part in the
middle of the cascade) and that the retry stores every row once.
``count`` prints how many rows of the service are stored in otel_traces and in the
tables the materialized views fill, and how many distinct calls (``llmcost.session``).
``hold`` opens the path the way a foreign process would (no otel-llmcost lock).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

DATABASE = "otel"


def _ingest(args: argparse.Namespace) -> dict[str, Any]:
    import chdb  # noqa: F401  (loaded before the limit: the library itself is not written)

    from otel_llmcost.exporter.ingest import IngestStats, ingest_pending

    if args.fsize_limit is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize_limit, resource.RLIM_INFINITY))
    stats = IngestStats()
    out: dict[str, Any] = {"inserted": None, "error_type": None, "error": None}
    try:
        out["inserted"] = ingest_pending(args.dsn, DATABASE, wait_s=args.wait, stats=stats)
    except Exception as exc:
        out["error_type"] = type(exc).__name__
        out["error"] = str(exc)[:500]
    out.update(files=stats.files, rows=stats.rows, quarantined=stats.quarantined_rows)
    if args.count:
        out["counts"] = _counts(args.dsn, args.count)
    return out


def _one_pass(dsn: str) -> dict[str, Any]:
    from otel_llmcost.exporter.ingest import ingest_pending

    try:
        return {"inserted": ingest_pending(dsn, DATABASE, wait_s=30.0), "error_type": None, "error": None}
    except Exception as exc:
        return {"inserted": None, "error_type": type(exc).__name__, "error": str(exc)[:500]}


def _fill(filler: Path, free_kib: int) -> None:
    st = os.statvfs(filler.parent)
    free = st.f_bavail * st.f_frsize
    with open(filler, "ab") as fh:
        fh.write(b"\0" * max(free - free_kib * 1024, 0))
        fh.flush()
        os.fsync(fh.fileno())


def _disk_sweep(args: argparse.Namespace) -> dict[str, Any]:
    from otel_llmcost.exporter.spool import count_lines, pending_files, rejected_files, spool_dir

    held = sorted(Path(args.held).iterdir())
    levels = [int(x) for x in args.levels.split(",")]
    per_level = -(-len(held) // len(levels))
    filler = Path(args.filler)
    from otel_llmcost import storage

    with storage.open_client(args.dsn, wait_s=60) as client:  # with the disk free
        storage.migrate(client, database=DATABASE)
    results = []
    released = 0
    for i, level in enumerate(levels):
        batch = held[i * per_level : (i + 1) * per_level]
        released += sum(count_lines(p) for p in batch)
        for path in batch:
            os.replace(path, spool_dir(args.dsn) / path.name)
        _fill(filler, level)
        full = _one_pass(args.dsn)
        full["pending_after"] = len(pending_files(args.dsn))
        full["counts_full"] = _counts(args.dsn, args.count)  # read with the disk still full
        filler.unlink()
        freed = _one_pass(args.dsn)
        results.append(
            {
                "free_kib": level,
                "full": full,
                "freed": freed,
                "released_rows": released,
                "counts": _counts(args.dsn, args.count),
                "pending": len(pending_files(args.dsn)),
                "rejected": len(rejected_files(args.dsn)),
            }
        )
    return {"levels": results}


def _count(args: argparse.Namespace) -> dict[str, Any]:
    return _counts(args.dsn, args.service)


def _counts(dsn: str, service: str) -> dict[str, int]:
    """Rows of ``service`` in otel_traces, the calls among them, and what the views made of them."""
    from otel_llmcost import storage

    session = "SpanAttributes['llmcost.session']"
    with storage.open_client(dsn, wait_s=60) as client:

        def one(sql: str) -> int:
            return int(client.query(sql, parameters={"s": service}).result_rows[0][0])

        return {
            "traces": one(f"SELECT count() FROM {DATABASE}.otel_traces WHERE ServiceName = {{s:String}}"),
            "trace_calls": one(
                f"SELECT uniqExact({session}) FROM {DATABASE}.otel_traces WHERE ServiceName = {{s:String}}"
            ),
            "llm_calls": one(f"SELECT count() FROM {DATABASE}.llm_calls WHERE ServiceName = {{s:String}}"),
            "hourly_calls": one(f"SELECT sum(Calls) FROM {DATABASE}.llm_cost_hourly WHERE ServiceName = {{s:String}}"),
            "daily_calls": one(f"SELECT sum(Calls) FROM {DATABASE}.llm_user_daily WHERE ServiceName = {{s:String}}"),
        }


def _sql(args: argparse.Namespace) -> dict[str, Any]:
    from otel_llmcost import storage

    with storage.open_client(args.dsn, wait_s=60) as client:
        storage.migrate(client, database=DATABASE)
        if args.statement:
            client.command(args.statement)
    return {"ok": True}


def _hold(args: argparse.Namespace) -> dict[str, Any]:
    import clickhouse_connect

    from otel_llmcost import storage

    client = clickhouse_connect.get_client(dsn=f"chdb://{storage.chdb_path(args.dsn)}")
    client.command("SELECT 1")
    print("holding", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    client.close()
    return {"ok": True}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("ingest", "count", "sql", "hold", "disk-sweep"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--dsn", required=True)
        if name == "ingest":
            cmd.add_argument("--fsize-limit", type=int, default=None)
            cmd.add_argument("--wait", type=float, default=30.0)
            cmd.add_argument("--count", default=None, help="then count this service's rows")
        if name == "disk-sweep":
            cmd.add_argument("--held", required=True)
            cmd.add_argument("--filler", required=True)
            cmd.add_argument("--levels", required=True)
            cmd.add_argument("--count", required=True)
        if name == "count":
            cmd.add_argument("--service", required=True)
        if name == "sql":
            cmd.add_argument("statement", nargs="?", default=None)
    args = parser.parse_args()
    handler = {"ingest": _ingest, "count": _count, "sql": _sql, "hold": _hold, "disk-sweep": _disk_sweep}[args.command]
    print(json.dumps(handler(args)), flush=True)


if __name__ == "__main__":
    main()
