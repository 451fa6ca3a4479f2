"""Shared pieces of the reliability suite: sizes (env knobs), RSS, a light fake provider
for the real openai SDK, the worker app script, the ingester process (started, found,
stopped), and a fake ClickHouse HTTP server (fake_clickhouse.py).

Sizes: the default run is quick (CI); ``--runslow`` turns on the soaks, and every size
can be set by environment variable:

    LLMCOST_SOAK_CALLS        instrumented calls in the stress test (quick 6000; slow 1000000)
    LLMCOST_SOAK_WORKERS      worker processes sharing one chdb path (4)
    LLMCOST_SOAK_WORKER_CALLS calls per worker process (quick 300; slow 5000)
    LLMCOST_SOAK_KILLS        kill -9 / restart cycles (quick 3; slow 20)
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
APP = HERE / "app_worker.py"


def knob(name: str, quick: int, slow: int, config: pytest.Config) -> int:
    raw = os.environ.get(name)
    if raw:
        return int(raw)
    return slow if config.getoption("--runslow") else quick


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_app(args: list[str], **popen: object) -> subprocess.Popen:
    """Start tests/reliability/app_worker.py (the real openai SDK + fake + exporter); by default
    its output is piped as text and it runs in :func:`worker_env`."""
    options: dict[str, object] = {
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "text": True,
        "env": worker_env(),
        **popen,
    }
    return subprocess.Popen([sys.executable, str(APP), *args], **options)  # type: ignore[call-overload]


def chdb_query(dsn: str, sql: str, **params: object) -> list[tuple]:
    from otel_llmcost import storage

    with storage.open_client(dsn, wait_s=60) as client:
        return client.query(sql, parameters=params).result_rows


# --- the ingester process --------------------------------------------------------------


def start_ingester(dsn: str, log: Path, idle_exit_s: float | None = None) -> subprocess.Popen:
    """``python -m otel_llmcost.exporter --follow`` for ``dsn`` (as the sidecar runs it),
    its output appended to ``log``."""
    env = worker_env(OTEL_EXPORTER_LLMCOST_DSN=dsn, OTEL_SDK_DISABLED="true")
    args = [sys.executable, "-m", "otel_llmcost.exporter", "--follow"]
    if idle_exit_s is not None:
        args += ["--idle-exit", str(idle_exit_s)]
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)


def ingester_pid(dsn: str) -> int | None:
    """The pid of the ingester holding ``dsn``'s spool right now (an ingester process, checked
    by its command line), else None."""
    from otel_llmcost.exporter.ingester import INGESTER_LOCK, running
    from otel_llmcost.exporter.spool import data_dir

    if not running(dsn):
        return None
    try:
        pid = int((data_dir(dsn) / INGESTER_LOCK).read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"otel_llmcost.exporter" in cmdline and b"--follow" in cmdline else None


def wait_until(predicate, timeout_s: float, every_s: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)
    return True


def stop_ingester(dsn: str, term_wait_s: float = 5.0) -> int | None:
    """Stop the ingester of ``dsn`` if one runs (SIGTERM, then SIGKILL after ``term_wait_s``:
    one blocked on a silent server finishes its request first); return its pid."""
    from otel_llmcost.exporter.ingester import running

    pid = ingester_pid(dsn)
    if pid is None:
        return None
    for sig, wait_s in ((signal.SIGTERM, term_wait_s), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if wait_until(lambda: not running(dsn), wait_s):
            break
    assert not running(dsn), f"ingester {pid} did not stop"
    return pid


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``values`` (at least one)."""
    if len(values) == 1:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return statistics.median(values), cuts[18]


# --- a light fake provider: canned bytes, the real SDK parses them --------------------

CHAT_BODY = json.dumps(
    {
        "id": "chatcmpl-light",
        "object": "chat.completion",
        "created": 1763900000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }
).encode()


def sse_chunks(pieces: int = 6) -> list[bytes]:
    base = {"id": "chatcmpl-light", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    frames = []
    for i in range(pieces):
        chunk = {**base, "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
        frames.append(f"data: {json.dumps(chunk)}\n\n".encode())
    frames.append(
        f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n".encode()
    )
    usage = {"prompt_tokens": 12, "completion_tokens": pieces, "total_tokens": 12 + pieces}
    frames.append(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
    frames.append(b"data: [DONE]\n\n")
    return frames


class LightProvider:
    """A MockTransport handler with canned bytes: the cheapest way to drive the real SDK.

    A request whose ``user`` field is ``break`` gets a stream that fails after 3 frames
    (the connection reset mid-stream); no per-request state is kept (flat memory)."""

    def __init__(self, httpx_module: object = None) -> None:
        if httpx_module is None:
            import httpx2 as httpx_module
        self.httpx = httpx_module
        self.frames = sse_chunks()
        self.headers = {"content-type": "application/json", "x-ratelimit-remaining-requests": "99"}
        self.sse_headers = {"content-type": "text/event-stream", "x-ratelimit-remaining-requests": "99"}

    def __call__(self, request: object) -> object:
        body = request.content  # type: ignore[attr-defined]
        if b'"stream":true' not in body:
            return self.httpx.Response(200, content=CHAT_BODY, headers=self.headers)
        frames = self.frames
        broken = b'"user":"break"' in body
        httpx = self.httpx

        class Stream(httpx.SyncByteStream, httpx.AsyncByteStream):  # type: ignore[name-defined,misc]
            def __iter__(self):  # type: ignore[no-untyped-def]
                for i, frame in enumerate(frames):
                    if broken and i == 3:
                        raise ConnectionResetError("fake provider closed the stream mid-way")
                    yield frame

            async def __aiter__(self):  # type: ignore[no-untyped-def]
                for i, frame in enumerate(frames):
                    if broken and i == 3:
                        raise ConnectionResetError("fake provider closed the stream mid-way")
                    yield frame

        return self.httpx.Response(200, headers=self.sse_headers, stream=Stream())


def light_openai(is_async: bool = False) -> object:
    import httpx2
    import openai

    handler = LightProvider()
    kwargs = {"base_url": "https://api.openai.com/v1", "api_key": "sk-fake", "max_retries": 0}
    if is_async:
        return openai.AsyncOpenAI(http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)), **kwargs)
    return openai.OpenAI(http_client=httpx2.Client(transport=httpx2.MockTransport(handler)), **kwargs)
