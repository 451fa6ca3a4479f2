"""The ingester process's loop, its start-up environment, and how failed inserts are classified."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from otel_llmcost import storage
from otel_llmcost.exporter.ingest import IngestDeferred, ingest_pending, is_content_error, is_schema_error
from otel_llmcost.exporter.ingester import _child_environment, follow, running
from otel_llmcost.exporter.spool import data_dir, pending_files, write_spool
from tests.helpers.chdb import chdb_dsn
from tests.helpers.span_rows import now_ns, trace_row


@pytest.fixture
def dsn(tmp_path) -> str:
    return chdb_dsn(tmp_path)


def span_row(service: str) -> list:
    return trace_row(now_ns(), {"gen_ai.operation.name": "chat"}, service=service, name="chat m")


def _count(dsn: str) -> int:
    with storage.open_client(dsn) as client:
        return int(client.command("SELECT count() FROM otel.otel_traces"))


def test_errors_are_classified_by_what_a_retry_could_change(dsn):
    with storage.open_client(dsn) as client:
        client.command("CREATE TABLE default.t (a UInt64, s String) ENGINE = MergeTree ORDER BY a")
        seen = {}
        for name, rows, table in (
            ("text for a number", [["x", "y"]], "default.t"),
            ("negative unsigned", [[-1, "s"]], "default.t"),
            ("null string", [[1, None]], "default.t"),
            ("missing table", [[1, "s"]], "default.gone"),
        ):
            with pytest.raises(Exception) as caught:
                client.insert(table, rows, column_names=["a", "s"])
            seen[name] = caught.value
    assert all(is_content_error(seen[k]) for k in ("text for a number", "negative unsigned", "null string"))
    assert not is_content_error(seen["missing table"]) and is_schema_error(seen["missing table"])
    disk_full = RuntimeError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)")
    refused = ConnectionRefusedError(111, "Connection refused")
    for transient in (disk_full, refused, TimeoutError("read timed out")):
        assert not is_content_error(transient) and not is_schema_error(transient)


def test_an_unreachable_server_defers_and_keeps_every_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_LLMCOST_HOME", str(tmp_path))
    remote = "http://127.0.0.1:1"
    write_spool(remote, [span_row(service="r")])
    with pytest.raises(IngestDeferred):
        ingest_pending(remote, "otel")
    assert len(pending_files(remote)) == 1
    assert data_dir(remote).parent == tmp_path / "remote"


def test_follow_stores_what_arrives_and_exits_when_idle(dsn):
    write_spool(dsn, [span_row(service="a"), span_row(service="a")])
    stats = follow(dsn, "otel", ttl_days=30, idle_exit_s=1.0, poll_s=0.05)
    assert stats is not None and stats.rows == 2 and stats.deferred == 0
    assert pending_files(dsn) == [] and _count(dsn) == 2


def test_one_ingester_per_spool(dsn):
    stop = threading.Event()
    first = threading.Thread(target=follow, args=(dsn, "otel"), kwargs={"ttl_days": 30, "stop": stop})
    first.start()
    try:
        deadline = time.monotonic() + 10
        while not running(dsn) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert running(dsn)
        assert follow(dsn, "otel", ttl_days=30, idle_exit_s=0.1) is None  # a second one leaves at once
    finally:
        stop.set()
        first.join(timeout=30)
    assert not running(dsn)


def test_the_ingester_gives_way_while_a_reader_waits(dsn):
    write_spool(dsn, [span_row(service="w")])
    stop = threading.Event()
    with storage.priority_turn(dsn, wait_s=1.0):
        worker = threading.Thread(
            target=follow, args=(dsn, "otel"), kwargs={"ttl_days": 30, "stop": stop, "poll_s": 0.05}
        )
        worker.start()
        time.sleep(1.0)
        assert len(pending_files(dsn)) == 1  # not a single pass while the read is announced
    deadline = time.monotonic() + 20
    while pending_files(dsn) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    worker.join(timeout=30)
    assert pending_files(dsn) == [] and _count(dsn) == 1


def test_the_started_ingester_is_not_instrumented_and_gets_the_dsn_outside_argv(monkeypatch):
    auto = os.path.join("site-packages", "opentelemetry", "instrumentation", "auto_instrumentation")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([auto, "/srv/app"]))
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "llmcost")
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    env = _child_environment("http://u:secret@h:8123", "otel", 30)
    assert env["PYTHONPATH"] == "/srv/app"
    assert "OTEL_TRACES_EXPORTER" not in env and env["OTEL_SDK_DISABLED"] == "true"
    assert env["OTEL_EXPORTER_LLMCOST_DSN"] == "http://u:secret@h:8123"


def test_module_entry_point_ingests_once_and_exits(dsn):
    write_spool(dsn, [span_row(service="m")])
    env = dict(os.environ, OTEL_EXPORTER_LLMCOST_DSN=dsn)
    done = subprocess.run(
        [sys.executable, "-m", "otel_llmcost.exporter"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert pending_files(dsn) == [] and _count(dsn) == 1
