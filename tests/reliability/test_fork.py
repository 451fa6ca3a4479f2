"""Fork after export, with real processes: ``os.fork()``, a ``multiprocessing`` 'fork' pool
and gunicorn ``--preload`` with 2 sync workers. The parent has exported (written the spool,
holds its liveness marker, started the ingester) before it forks. Every call finishes, no
process hangs, no app process loads chdb, and every span is stored exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from otel_llmcost.exporter import ingest_pending, pending_files
from otel_llmcost.exporter.ingester import running
from otel_llmcost.exporter.spool import LIVE_PREFIX, spool_dir
from otel_llmcost.reporting.reader import open_for_reading
from tests.reliability._reliability import (
    HERE,
    chdb_query,
    stop_ingester,
    wait_until,
    worker_env,
)
from tests.reliability.fake_clickhouse import refused_port

FORK_APP = HERE / "fork_app.py"
APP_TIMEOUT_S = 120
IDLE_EXIT_S = 2


def run_fork_app(dsn: str, mode: str, ingester: str) -> list[str]:
    env = worker_env(OTEL_EXPORTER_LLMCOST_INGESTER=ingester, OTEL_EXPORTER_LLMCOST_INGESTER_IDLE_S=str(IDLE_EXIT_S))
    result = subprocess.run(
        [sys.executable, str(FORK_APP), "--dsn", dsn, "--mode", mode, "--ingester", ingester],
        capture_output=True,
        text=True,
        timeout=APP_TIMEOUT_S,  # a hung child or pool fails the test here
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stdout.splitlines()


def stored_by_caller(rows: list[tuple]) -> dict[str, tuple[int, int]]:
    return {who: (count, sessions) for who, count, sessions in rows}


BY_CALLER = (
    "SELECT splitByChar(':', Session)[1] AS who, count(), uniqExact(Session)"
    " FROM otel.llm_calls GROUP BY who ORDER BY who"
)


def test_os_fork_after_export_child_and_parent_finish_and_the_on_demand_ingester_stores_every_span_once(tmp_path):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    lines = run_fork_app(dsn, "fork", "auto")
    child = [line for line in lines if line.startswith("child ") and " done " in line]
    assert len(child) == 1 and child[0].endswith("done 200 chdb False"), lines
    assert "child exit 0" in lines
    assert lines[-1] == "parent done 40 dropped 0 chdb False", lines
    # The ingester the parent started stores everything: no ingest, no read of ours until the spool is empty.
    assert wait_until(lambda: not pending_files(dsn), 60, every_s=0.1), "the on-demand ingester left spool files"
    assert not list(spool_dir(dsn).glob(f"{LIVE_PREFIX}*")), "parent and child both shut their exporters down"
    try:
        with open_for_reading(dsn, "otel", wait_s=60) as client:
            got = stored_by_caller(client.query(BY_CALLER).result_rows)
        assert got == {"child": (200, 200), "parent": (20, 20), "parent-after": (20, 20)}
        # ... and, idle, it exits by itself.
        assert wait_until(lambda: not running(dsn), IDLE_EXIT_S + 20), "the ingester did not exit when idle"
    finally:
        stop_ingester(dsn)


def test_fork_pool_after_export_every_task_finishes_and_every_span_is_stored_once(tmp_path):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    lines = run_fork_app(dsn, "pool", "off")
    tasks = [line for line in lines if line.startswith("task ")]
    assert len(tasks) == 4 and all(line.endswith("done 50 chdb False") for line in tasks), lines
    assert lines[-1] == "parent done 20 dropped 0 chdb False", lines
    assert ingest_pending(dsn, "otel", wait_s=30) == 20 + 4 * 50
    assert pending_files(dsn) == []
    got = stored_by_caller(chdb_query(dsn, BY_CALLER))
    assert got == {"parent": (20, 20), **{f"task{i}": (50, 50) for i in range(4)}}


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_gunicorn_preload_two_workers_answer_every_request_and_every_span_is_stored_once(tmp_path):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    requests = 60
    port = refused_port()
    env = worker_env(
        OTEL_EXPORTER_LLMCOST_DSN=dsn,
        OTEL_EXPORTER_LLMCOST_INGESTER="auto",
        OTEL_EXPORTER_LLMCOST_INGESTER_IDLE_S=str(IDLE_EXIT_S),
    )
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "--workers", "2", "--worker-class", "sync"]
        + ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "20", "--pythonpath", str(HERE)]
        + ["--config", str(HERE / "gunicorn_conf.py"), "gunicorn_app:app"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # ready when both workers have answered: on a loaded machine the second one boots
        # seconds after the first, which would then serve every request alone
        seen: set[int] = set()

        def both_workers_up() -> bool:
            try:
                seen.add(_get(f"{base}/health")["pid"])
                return len(seen) == 2
            except OSError:
                return master.poll() is not None

        assert wait_until(both_workers_up, 60, every_s=0.05) and master.poll() is None, master.communicate(timeout=10)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda n: _get(f"{base}/call?n={n}"), range(requests)))
        master.terminate()  # SIGTERM: a graceful stop, each worker runs its exit hook
        out, err = master.communicate(timeout=60)
    finally:
        if master.poll() is None:
            master.kill()
            master.communicate()
    assert master.returncode == 0, err[-3000:]
    assert len(answers) == requests
    assert len({a["pid"] for a in answers}) == 2, "both workers served"
    assert not any(a["chdb"] for a in answers), "a worker loaded chdb"
    assert "master exit chdb False dropped 0" in out, (out, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    try:
        assert wait_until(lambda: not pending_files(dsn), 60, every_s=0.1), "the on-demand ingester left spool files"
    finally:
        stop_ingester(dsn)
    started = time.monotonic()
    got = stored_by_caller(chdb_query(dsn, BY_CALLER))
    assert got == {"http": (requests, requests), "master": (1, 1)}
    assert time.monotonic() - started < 30
