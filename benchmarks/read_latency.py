"""Read latency of the embedded store while apps write, against the same reads with no writers.

Issue 17: with apps writing, ``report``/``query`` took 6-23 s and 3 of 6 failed ("chdb
path ... is in use", "Database otel does not exist"). Now apps only spool, one ingester
per spool stores, and a read announces itself (``read.lock``), which the ingester gives
way to. Goal: p95 under 2 s on a 2-core machine with 8 writing processes, no failures.

One run, two phases on the same database:

1. baseline: K reads with no writer;
2. loaded: W app processes (``tests/reliability/store_app.py --loop``: the real openai
   SDK against a canned fake provider, otel-llmcost, BatchSpanProcessor, the llmcost
   exporter) call with ``--pause`` seconds between calls (default 0.02: up to ~50 calls/s
   per process, far more than an app waiting on a real provider; ``--pause 0``: flat out,
   every writer as fast as the CPU lets it, which saturates 2 cores); the exporter starts the ingester on demand
   (``--ingester auto``, the default) or the benchmark runs one ``python -m
   otel_llmcost.exporter --follow`` (``--ingester follow``); the same K reads.

A read is what a CLI read does, timed end to end: in-process,
``otel_llmcost.reporting.reader.open_for_reading`` (announce, take the path, store a
bounded pass of what is spooled, migrate, open) plus the ``spend_by_endpoint`` report
query; and, for a few, the CLI itself (``otel-llmcost report --only spend_by_endpoint``)
as a subprocess, whose time includes the interpreter's start-up and imports (~1.5-3 s on
this machine whatever the store does: compare it with its own baseline). A failure is an
exception or a non-zero exit. At the end the writers stop, the spool is drained and every
call a writer's exporter accepted must be stored exactly once.

    python benchmarks/read_latency.py                 # 8 writers, 30 reads, 6 CLI reads
    python benchmarks/read_latency.py --quick         # 4 writers, 8 reads, 2 CLI reads
    python benchmarks/read_latency.py --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "reliability" / "store_app.py"
GOAL_P95_S = 2.0
REPORT = "spend_by_endpoint"


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_LLMCOST_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("otel-llmcost")
    return [str(script)] if script.exists() else [sys.executable, "-m", "otel_llmcost.cli"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def read_in_process(dsn: str) -> tuple[float, str | None]:
    from otel_llmcost.reporting import reports
    from otel_llmcost.reporting.reader import open_for_reading

    started = time.perf_counter()
    try:
        warnings: list[str] = []
        with open_for_reading(dsn, "otel", warn=warnings.append) as client:
            reports.run(client, REPORT, since_hours=24 * 30)
    except Exception as exc:
        return time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
    return time.perf_counter() - started, None


def read_cli(dsn: str, home: Path) -> tuple[float, str | None]:
    started = time.perf_counter()
    done = subprocess.run(
        [*_cli(), "report", "--dsn", dsn, "--only", REPORT, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(home),
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        return elapsed, f"exit {done.returncode}: {done.stderr.strip()[-500:]}"
    return elapsed, None


def reads(dsn: str, home: Path, count: int, cli_count: int, gap_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, n, fn in (
        ("in_process", count, lambda: read_in_process(dsn)),
        ("cli", cli_count, lambda: read_cli(dsn, home)),
    ):
        times: list[float] = []
        failures: list[str] = []
        for _ in range(n):
            elapsed, error = fn()
            times.append(elapsed)
            if error:
                failures.append(error)
            time.sleep(gap_s)
        out[kind] = {
            "n": n,
            "p50": percentile(times, 0.5),
            "p95": percentile(times, 0.95),
            "max": max(times) if times else float("nan"),
            "failures": len(failures),
            "errors": failures[:5],
            "times": times,
        }
    return out


def start_writers(dsn: str, home: Path, writers: int, ingester: str, pause: float) -> list[subprocess.Popen[str]]:
    mode = "auto" if ingester == "auto" else "off"
    return [
        subprocess.Popen(
            [sys.executable, str(APP), "--dsn", dsn, "--service", f"writer-{i}", "--loop", "--pause", str(pause)]
            + ["--processor", "batch", "--batch-size", "64", "--schedule-ms", "500"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(home, OTEL_EXPORTER_LLMCOST_INGESTER=mode),
        )
        for i in range(writers)
    ]


def stop(processes: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        if process.returncode != 0 or not stdout.strip():
            raise SystemExit(f"writer failed ({process.returncode}): {stderr[-2000:]}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


def ingester_pid(dsn: str) -> int | None:
    from otel_llmcost.exporter import ingester, spool

    if not ingester.running(dsn):
        return None
    with contextlib.suppress(OSError, ValueError):
        return int((spool.data_dir(dsn) / ingester.INGESTER_LOCK).read_text().strip())
    return None


def drain_and_count(dsn: str, writers: list[dict[str, Any]]) -> dict[str, Any]:
    """Read until the spool is empty, then: every accepted call stored exactly once?"""
    from otel_llmcost.exporter.spool import pending_files
    from otel_llmcost.reporting.reader import open_for_reading

    deadline = time.monotonic() + 300
    while True:
        with open_for_reading(dsn, "otel") as client:
            if not pending_files(dsn):
                rows = client.query(
                    "SELECT ServiceName, count(), uniqExact(SpanAttributes['llmcost.session']) "
                    "FROM otel_traces WHERE ServiceName LIKE 'writer-%' GROUP BY ServiceName"
                ).result_rows
                calls = int(client.command("SELECT count() FROM llm_calls WHERE ServiceName LIKE 'writer-%'"))
                break
        if time.monotonic() > deadline:
            raise SystemExit("the spool did not drain in 300 s")
    stored = {name: (int(n), int(unique)) for name, n, unique in rows}
    accepted = {f"writer-{i}": w["accepted"] for i, w in enumerate(writers)}
    exact = all(stored.get(name, (0, 0)) == (n, n) for name, n in accepted.items())
    return {
        "accepted": sum(accepted.values()),
        "stored": sum(n for n, _ in stored.values()),
        "llm_calls": calls,
        "exactly_once": exact and calls == sum(accepted.values()),
    }


def measure(
    writers: int,
    count: int,
    cli_count: int,
    ingester: str,
    gap_s: float,
    warmup_s: float,
    pause: float,
    seed_calls: int,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="llmcost-read-") as tmp:
        home = Path(tmp) / "home"
        dsn = f"chdb://{Path(tmp) / 'data' / 'chdb'}"
        # A database to read: one app's spans, stored by a first (untimed) read.
        seed = subprocess.run(
            [sys.executable, str(APP), "--dsn", dsn, "--service", "seed", "--calls", str(seed_calls)]
            + ["--processor", "batch", "--batch-size", "64"],
            capture_output=True,
            text=True,
            timeout=300,
            env=_env(home, OTEL_EXPORTER_LLMCOST_INGESTER="off"),
        )
        if seed.returncode != 0:
            raise SystemExit(f"seed app failed: {seed.stderr[-2000:]}")
        os.environ["OTEL_LLMCOST_HOME"] = str(home)  # the in-process reads' settings
        _, error = read_in_process(dsn)
        if error:
            raise SystemExit(f"first read failed: {error}")

        baseline = reads(dsn, home, count, cli_count, gap_s)
        follower = None
        if ingester == "follow":
            follower = subprocess.Popen(
                [sys.executable, "-m", "otel_llmcost.exporter", "--follow"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_env(home, OTEL_EXPORTER_LLMCOST_DSN=dsn, OTEL_SDK_DISABLED="true"),
            )
        apps = start_writers(dsn, home, writers, ingester, pause)
        try:
            time.sleep(warmup_s)  # the writers' imports, first batches, the ingester's start
            started = time.monotonic()
            loaded = reads(dsn, home, count, cli_count, gap_s)
            loaded_s = time.monotonic() - started
        finally:
            results = stop(apps)
        check = drain_and_count(dsn, results)
        pid = follower.pid if follower is not None else ingester_pid(dsn)
        if pid is not None:  # the ingester the run started (directly or through the exporter)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if follower is not None:
            follower.wait(timeout=60)
    return {
        "writers": writers,
        "ingester": ingester,
        "pause": pause,
        "writer_seconds": max(r["seconds"] for r in results),
        "baseline": baseline,
        "loaded": loaded,
        "loaded_seconds": loaded_s,
        "writer_calls": sum(r["calls"] for r in results),
        "writer_failed_calls": sum(r["failed"] for r in results),
        "writer_dropped": sum(r["dropped"] for r in results),
        "check": check,
        "goal_p95_s": GOAL_P95_S,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 writers, 8 reads, 2 CLI reads")
    parser.add_argument("--writers", type=int, default=None)
    parser.add_argument("--reads", type=int, default=None)
    parser.add_argument("--cli-reads", type=int, default=None)
    parser.add_argument("--ingester", choices=("auto", "follow"), default="auto")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between reads")
    parser.add_argument("--pause", type=float, default=0.02, help="each writer's pause between calls (0: flat out)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    writers = args.writers or (4 if args.quick else 8)
    count = args.reads or (8 if args.quick else 30)
    cli_count = args.cli_reads if args.cli_reads is not None else (2 if args.quick else 6)
    r = measure(
        writers,
        count,
        cli_count,
        args.ingester,
        args.gap,
        warmup_s=2.0 if args.quick else 3.0,
        pause=args.pause,
        seed_calls=50 if args.quick else 200,
    )

    rate = r["writer_calls"] / r["writer_seconds"] if r["writer_seconds"] else 0.0
    print(
        f"## Read latency, {writers} writing processes (pause {args.pause} s, {rate:,.0f} calls/s in all; "
        f"ingester: {args.ingester}) vs none, same run\n"
    )
    print("| read | writers | n | p50 s | p95 s | max s | failures | p95 loaded / baseline |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, label in (("in_process", "open_for_reading + report query"), ("cli", "`otel-llmcost report` (process)")):
        base, load = r["baseline"][kind], r["loaded"][kind]
        if not base["n"]:
            continue
        ratio = load["p95"] / base["p95"] if base["p95"] else float("nan")
        for phase, row in (("0", base), (str(writers), load)):
            print(
                f"| {label} | {phase} | {row['n']} | {row['p50']:.2f} | {row['p95']:.2f} | {row['max']:.2f} "
                f"| {row['failures']} | {f'{ratio:.2f}x' if phase != '0' else ''} |"
            )
    c = r["check"]
    print(
        f"\nwriters: {r['writer_calls']} calls, {r['writer_failed_calls']} failed, "
        f"{r['writer_dropped']} spans dropped; "
        f"stored {c['stored']} of {c['accepted']} accepted (llm_calls {c['llm_calls']}), "
        f"exactly once: {'yes' if c['exactly_once'] else 'NO'}"
    )
    for kind in ("in_process", "cli"):
        for error in r["loaded"][kind]["errors"] + r["baseline"][kind]["errors"]:
            print(f"failure ({kind}): {error}")
    p95 = r["loaded"]["in_process"]["p95"]
    failures = sum(r[p][k]["failures"] for p in ("baseline", "loaded") for k in ("in_process", "cli"))
    met = p95 < GOAL_P95_S and failures == 0
    print(
        f"goal: in-process p95 under load < {GOAL_P95_S:.0f} s and no failure: {'met' if met else 'NOT met'} "
        f"(p95 {p95:.2f} s, {failures} failures)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2), encoding="utf-8")
    return 0 if met and c["exactly_once"] and not r["writer_failed_calls"] else 1


if __name__ == "__main__":
    sys.exit(main())
