"""A span the exporter accepted is never abandoned because of a transient fault (issue 17).

Real processes and real chdb, no mocks: the app (``store_app.py``: the real openai SDK,
otel-llmcost, LLMCostSpanExporter with the ingester off) spools; every ingest runs in a
process of its own (``store_ingest.py``, or the real ingester ``python -m
otel_llmcost.exporter --follow``), as in production. For each fault the spans wait in the
spool while it lasts and are stored once, and only once, when it clears; nothing is set
aside as ``.rejected`` except rows that are invalid by content.

Before issue 17, disk full or any non-busy insert error (a dropped table) renamed safely
spooled files ``*.jsonl.rejected`` and nothing ever replayed them.

How the disk is made full, for real:

- ``RLIMIT_FSIZE`` in the ingest process (SIGXFSZ ignored, so writes fail with EFBIG):
  clickhouse-connect's chdb backend first stages every insert in a temporary file
  (``execute_data_insert`` writes the Native block, then ``INSERT ... FROM INFILE``), and
  that file is always the largest one the insert writes (chdb's parts are compressed), so
  the limit stops the insert in the staging write, before chdb writes a part. It is a real
  EFBIG from a real insert, but not chdb's own write: hence the second way,
- a small tmpfs holding the database and the spool, filled by a file until only so many
  KiB are free: chdb itself refuses (``NOT_ENOUGH_SPACE`` when it reserves space for a part,
  also for a materialized view's part in the middle of the cascade, after ``otel_traces``
  already stored its part). Needs the right to mount (root); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from otel_llmcost.exporter import spool
from otel_llmcost.exporter.rows import COLUMNS

from ._reliability import worker_env

HERE = Path(__file__).parent
APP = HERE / "store_app.py"
STORE = HERE / "store_ingest.py"


def _run(script: Path, *args: str, timeout: float = 120, **extra_env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=worker_env(OTEL_EXPORTER_LLMCOST_INGESTER="off", **extra_env),
        timeout=timeout,
    )
    assert done.returncode == 0, f"{script.name} {args[:1]} exited {done.returncode}: {done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def app(dsn: str, service: str, calls: int, *args: str) -> dict[str, Any]:
    out = _run(APP, "--dsn", dsn, "--service", service, "--calls", str(calls), *args)
    assert out["chdb_loaded"] is False  # the app never loads chdb
    assert out["calls"] == calls and out["failed"] == 0, out  # and its calls never fail
    return out


def store(command: str, dsn: str, *args: str, **extra_env: str) -> dict[str, Any]:
    return _run(STORE, command, "--dsn", dsn, *args, **extra_env)


def every(count: int) -> dict[str, int]:
    """Each of ``count`` calls stored once: in otel_traces and through every materialized view."""
    return {"traces": count, "trace_calls": count, "llm_calls": count, "hourly_calls": count, "daily_calls": count}


def rejected(dsn: str) -> list[str]:
    return [p.name for p in spool.rejected_files(dsn)]


def spooled_rows(dsn: str) -> int:
    return sum(spool.count_lines(p) for p in spool.pending_files(dsn))


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    return f"chdb://{tmp_path / 'data' / 'chdb'}"


# --- (1) disk full while ingesting ----------------------------------------------------------


def test_disk_full_in_the_insert_rlimit_keeps_the_spool_and_the_retry_stores_once(dsn: str) -> None:
    store("sql", dsn)  # migrated, so the fault hits the insert
    app(dsn, "disk", 60, "--processor", "batch", "--batch-size", "30")
    files = [p.name for p in spool.pending_files(dsn)]
    assert spooled_rows(dsn) == 60

    full = store("ingest", dsn, "--fsize-limit", str(16 << 10), "--count", "disk")

    assert full["error_type"] == "IngestDeferred", full
    assert "File too large" in full["error"]  # EFBIG: the write past RLIMIT_FSIZE failed
    assert full["counts"] == every(0)  # nothing of the 60 stored
    assert [p.name for p in spool.pending_files(dsn)] == files  # every file kept, none set aside
    assert rejected(dsn) == []

    freed = store("ingest", dsn, "--count", "disk")

    assert freed["error_type"] is None and freed["inserted"] == 60
    assert freed["counts"] == every(60)
    assert spool.pending_files(dsn) == [] and rejected(dsn) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 16 MiB tmpfs (the database, its spool and a filler file that makes it full)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow  # needs root for the tmpfs; the default run has the RLIMIT_FSIZE variant
def test_disk_full_for_chdb_on_a_full_filesystem_defers_and_the_retry_stores_once(small_disk: Path) -> None:
    dsn = f"chdb://{small_disk / 'chdb'}"
    held = small_disk / "held"  # spooled by the real exporter, released one level at a time
    app(dsn, "tiny", 600, "--processor", "batch", "--batch-size", "200")
    held.mkdir()
    for path in spool.pending_files(dsn):
        os.replace(path, held / path.name)
    assert sorted(spool.count_lines(p) for p in held.iterdir()) == [200] * 3
    levels = [8, 600, 1040]  # KiB left free: below what one insert of 200 spans needs (~1.3 MiB)

    out = store(
        "disk-sweep",
        dsn,
        "--held",
        str(held),
        "--filler",
        str(small_disk / "filler"),
        "--levels",
        ",".join(map(str, levels)),
        "--count",
        "tiny",
        # Off: this test drives ClickHouse itself into the full disk (the floor below keeps
        # the ingester away from it, see the next test).
        OTEL_EXPORTER_LLMCOST_MIN_FREE_MB="0",
    )["levels"]

    interrupted_cascade = False
    for level in out:
        full, freed = level["full"], level["freed"]
        # The disk full: the pass is deferred, the files stay, nothing is set aside.
        assert full["error_type"] == "IngestDeferred", level
        assert full["pending_after"] > 0, level
        counted = full["counts_full"]
        interrupted_cascade |= counted["traces"] > counted["daily_calls"]
        # The disk freed: every row released so far is stored once, in every table.
        assert freed["error_type"] is None, level
        assert level["counts"] == every(level["released_rows"]), level
        assert level["pending"] == 0 and level["rejected"] == 0, level
    assert out[-1]["released_rows"] == 600
    # chdb refused at least once in the middle of the materialized-view cascade
    # (otel_traces stored its part, a rollup could not): the retry with the same token
    # completed the views without a second copy in otel_traces.
    assert interrupted_cascade, [lv["full"] for lv in out]
    assert any("NOT_ENOUGH_SPACE" in (lv["full"]["error"] or "") for lv in out)


def test_below_the_free_space_floor_the_ingest_waits_without_touching_the_database(dsn: str) -> None:
    """DDL that fails on a full disk can leave chdb's metadata empty and the database
    unopenable, so below OTEL_EXPORTER_LLMCOST_MIN_FREE_MB the ingester does not open it."""
    app(dsn, "floor", 20)
    impossible = str(1 << 40)  # more MB than any disk here has free
    out = store("ingest", dsn, OTEL_EXPORTER_LLMCOST_MIN_FREE_MB=impossible)
    assert out["error_type"] == "IngestDeferred" and "MB free on the disk" in out["error"], out
    assert not spool.storage.chdb_path(dsn).exists()  # never opened, so nothing was created
    assert len(spool.pending_files(dsn)) > 0
    assert store("ingest", dsn, "--count", "floor")["counts"] == every(20)


# --- (2) disk full for the spool, in the app ----------------------------------------------------


def test_disk_full_for_the_spool_fails_the_export_counts_the_drop_and_the_app_goes_on(dsn: str) -> None:
    # 16 calls are exported and spooled, then RLIMIT_FSIZE (1 KiB: under one spool file of
    # 8 spans, over the drop log's few lines) makes every spool write fail with EFBIG.
    out = app(
        dsn,
        "spoolfull",
        40,
        "--processor",
        "batch",
        "--batch-size",
        "8",
        "--fsize-limit",
        "1024",
        "--fsize-after",
        "16",
    )

    assert (out["accepted"], out["refused"], out["dropped"]) == (16, 24, 24)
    assert spool.drop_totals(dsn) == {"spool_write_failed": 24}
    assert spooled_rows(dsn) == 16  # what was accepted is all there
    left = [p.name for p in spool.spool_dir(dsn).iterdir() if p.name.startswith(spool.TMP_PREFIX)]
    assert left == []  # the failed writes left no half file behind

    stored = store("ingest", dsn, "--count", "spoolfull")

    assert stored["inserted"] == 16 and stored["counts"] == every(16)


# --- (3) a dropped table ---------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["otel_traces", pytest.param("llm_calls", marks=pytest.mark.slow)])
def test_a_dropped_table_is_re_migrated_and_the_spans_stored_once(dsn: str, table: str) -> None:
    store("sql", dsn, f"DROP TABLE otel.{table}")  # after migrating
    app(dsn, "after", 12, "--processor", "batch", "--batch-size", "4")
    files = [p.name for p in spool.pending_files(dsn)]
    assert len(files) == 3

    out = store("ingest", dsn, "--count", "after")

    assert out["error_type"] is None, out  # re-migrated, then stored
    assert out["inserted"] == 12
    assert out["counts"] == every(12)
    assert spool.pending_files(dsn) == [] and rejected(dsn) == []


# --- (4) the path busy -----------------------------------------------------------------------------


def test_a_busy_path_keeps_the_spool_and_the_ingester_stores_it_once_free(dsn: str, tmp_path: Path) -> None:
    store("sql", dsn)
    holder = subprocess.Popen(
        [sys.executable, str(STORE), "hold", "--dsn", dsn],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=worker_env(),
    )
    ingester = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        app(dsn, "busy", 10)
        files = [p.name for p in spool.pending_files(dsn)]
        assert len(files) == 10

        busy = store("ingest", dsn, "--wait", "1")

        assert busy["error_type"] == "StorageBusy", busy
        assert [p.name for p in spool.pending_files(dsn)] == files and rejected(dsn) == []

        # The real ingester, as the exporter starts it: deferred while the path is held...
        log = open(tmp_path / "ingester.log", "w")  # noqa: SIM115
        ingester = subprocess.Popen(
            [sys.executable, "-m", "otel_llmcost.exporter", "--follow", "--idle-exit", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=worker_env(OTEL_EXPORTER_LLMCOST_DSN=dsn, OTEL_SDK_DISABLED="true"),
        )
        deadline = time.monotonic() + 30
        while "ingest deferred" not in (tmp_path / "ingester.log").read_text() and time.monotonic() < deadline:
            assert ingester.poll() is None, (tmp_path / "ingester.log").read_text()
            time.sleep(0.1)
        assert "ingest deferred" in (tmp_path / "ingester.log").read_text()
        assert [p.name for p in spool.pending_files(dsn)] == files
    finally:
        holder.communicate("", timeout=30)  # ...the foreign process lets go...
    assert ingester is not None
    # ...and the ingester stores everything, then exits once idle.
    assert ingester.wait(timeout=60) == 0, (tmp_path / "ingester.log").read_text()
    log.close()
    assert spool.pending_files(dsn) == [] and rejected(dsn) == []
    assert "ingest resumed" in (tmp_path / "ingester.log").read_text()
    assert store("count", dsn, "--service", "busy") == every(10)


# --- (5) rows invalid by content --------------------------------------------------------------


def _corrupt(path: Path, how: str) -> str:
    """Spoil the second row of a spool file; return the original text."""
    original = path.read_text(encoding="utf-8")
    lines = original.splitlines()
    row = json.loads(lines[1])
    if how == "string_for_number":
        row[COLUMNS.index("Duration")] = "not a number"
        lines[1] = json.dumps(row)
    elif how == "column_count":
        lines[1] = json.dumps(row[:-1])
    else:
        lines[1] = lines[1][: len(lines[1]) // 2]  # not JSON: a line cut in half
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return original


def spoil(dsn: str, service: str, calls: int, hows: list[str]) -> tuple[dict[str, Path], dict[str, str]]:
    """Spool ``calls`` calls in files of 3 rows, then spoil one file per entry of ``hows``
    (files 0, 2, 3, ...: the others stay intact around them)."""
    store("sql", dsn)
    app(dsn, service, calls, "--processor", "batch", "--batch-size", "3")
    files = spool.pending_files(dsn)
    assert [spool.count_lines(p) for p in files] == [3] * (calls // 3)
    spoiled = dict(zip(hows, [files[0], *files[2:]], strict=False))
    return spoiled, {how: _corrupt(path, how) for how, path in spoiled.items()}


def test_rows_invalid_by_content_are_set_aside_with_the_reason_and_replayed_once_fixed(dsn: str) -> None:
    spoiled, originals = spoil(dsn, "content", 12, ["string_for_number", "not_json"])

    out = store("ingest", dsn, "--count", "content")

    assert out["error_type"] is None, out
    assert out["inserted"] == 6 and out["quarantined"] == 6  # two good files stored, two set aside
    assert out["counts"] == every(6)
    assert spool.pending_files(dsn) == []
    assert rejected(dsn) == sorted(p.name + spool.REJECTED_SUFFIX for p in spoiled.values())
    for how, path in spoiled.items():
        reason = spool.rejection_reason(path.with_name(path.name + spool.REJECTED_SUFFIX))
        assert reason["rows"] == 3 and reason["error"], (how, reason)
    assert spool.rejection_reason(spoiled["not_json"].with_name(spoiled["not_json"].name + ".rejected"))[
        "error"
    ].startswith("unreadable")

    # Fixed by hand, put back in line: the next ingest stores them, once.
    for how, path in spoiled.items():
        back = spool.replay(path.with_name(path.name + spool.REJECTED_SUFFIX))
        assert back == path
        path.write_text(originals[how], encoding="utf-8")
    again = store("ingest", dsn, "--count", "content")

    assert again["inserted"] == 6 and again["quarantined"] == 0
    assert again["counts"] == every(12)
    assert spool.pending_files(dsn) == [] and rejected(dsn) == []
    assert not list(spool.spool_dir(dsn).glob("*" + spool.REASON_SUFFIX))


def test_a_row_with_a_wrong_column_count_is_set_aside_and_the_rest_stored(dsn: str) -> None:
    spoiled, _ = spoil(dsn, "columns", 9, ["column_count"])

    out = store("ingest", dsn, "--count", "columns")

    assert out["error_type"] is None, out
    assert out["inserted"] == 6 and out["quarantined"] == 3
    assert out["counts"] == every(6)
    assert rejected(dsn) == [spoiled["column_count"].name + spool.REJECTED_SUFFIX]
