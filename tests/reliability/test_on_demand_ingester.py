"""The single-machine default, end to end: an app under ``opentelemetry-instrument
--traces_exporter llmcost`` with ``OTEL_EXPORTER_LLMCOST_INGESTER=auto``. The app exits
at once (its exporter only wrote the spool), the ingester its exporter started stores the
spans with no CLI run, and exits after its idle time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from otel_llmcost.exporter import pending_files
from otel_llmcost.exporter.ingester import LOG_NAME, running
from otel_llmcost.exporter.spool import data_dir
from otel_llmcost.reporting.reader import open_for_reading
from tests.reliability._reliability import ingester_pid, stop_ingester, wait_until

CALLS = 5
IDLE_EXIT_S = 2
APP = textwrap.dedent(
    f"""
    import os, sys, time
    import otel_llmcost as llmcost
    from otel_llmcost.demo.fakes import FakeLLMServer, openai_client

    client = openai_client(FakeLLMServer())
    for i in range({CALLS}):
        with llmcost.attributes(session=f"auto:{{i}}"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
    print("APP-DONE", os.getpid(), "chdb" in sys.modules, time.time(), flush=True)
    """
)


def test_app_under_opentelemetry_instrument_exits_fast_and_its_ingester_stores_the_spans(tmp_path: Path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    dsn = f"chdb://{tmp_path / 'chdb'}"
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "llmcost",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "auto-ingest",
        "OTEL_EXPORTER_LLMCOST_DSN": dsn,
        "OTEL_EXPORTER_LLMCOST_INGESTER": "auto",
        "OTEL_EXPORTER_LLMCOST_INGESTER_IDLE_S": str(IDLE_EXIT_S),
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    try:
        result = subprocess.run(
            [str(bindir / "opentelemetry-instrument"), sys.executable, str(app)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
        exited = time.time()
        assert result.returncode == 0, result.stderr[-3000:]
        app_pid, chdb_loaded, done_at = result.stdout.split("APP-DONE", 1)[1].split()
        assert chdb_loaded == "False", "the app loaded chdb"
        # From its last call to its exit (the SDK's shutdown at exit, with our exporter's): quick.
        shutdown_s = exited - float(done_at)
        print(f"\napp exit after its last call: {shutdown_s * 1000:.0f} ms")
        assert shutdown_s < 3.0, shutdown_s  # interpreter teardown included (~0.5 s with no exporter)
        assert "Traceback" not in result.stderr, result.stderr[-3000:]

        # The ingester the exporter started (a process of its own) empties the spool: no CLI, no ingest of ours.
        pid = ingester_pid(dsn)
        assert wait_until(lambda: not pending_files(dsn), 60, every_s=0.1), "the spool was not ingested"
        assert pid is None or pid != int(app_pid)
        log = (data_dir(dsn) / LOG_NAME).read_text()
        assert log.count("following") == 1, log  # one ingester for this spool
        with open_for_reading(dsn, "otel", wait_s=60) as client:
            ((count, sessions, services),) = client.query(
                "SELECT count(), uniqExact(Session), groupUniqArray(ServiceName) FROM llm_calls"
            ).result_rows
        assert (count, sessions, services) == (CALLS, CALLS, ["auto-ingest"])

        # Idle, it exits by itself after OTEL_EXPORTER_LLMCOST_INGESTER_IDLE_S.
        started = time.monotonic()
        assert wait_until(lambda: not running(dsn), IDLE_EXIT_S + 20), "the ingester did not exit when idle"
        print(f"ingester exited {time.monotonic() - started:.1f} s after the read (idle exit {IDLE_EXIT_S} s)")
        assert "Traceback" not in (data_dir(dsn) / LOG_NAME).read_text()
    finally:
        stop_ingester(dsn)
