"""An instrumented app that forks after it has exported, as gunicorn ``--preload`` and fork
pools do. Used by test_fork.py as a subprocess.

    python fork_app.py --dsn chdb:///x --mode fork [--ingester auto]   # os.fork(): a child makes 200 calls
    python fork_app.py --dsn chdb:///x --mode pool                     # a 'fork' Pool: 4 tasks x 50 calls

The parent makes 20 calls and flushes them first (the exporter has written the spool,
holds its liveness marker and, with ``--ingester auto``, has started the ingester), then
forks. Every call carries ``llmcost.session`` = ``<who>:<seq>``. Lines printed:
``child <pid> done <n> chdb <bool>`` / ``task <i> pid <pid> done <n> chdb <bool>`` and
``parent done <n> dropped <d> chdb <bool>``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.util
import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _reliability import light_openai  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

import otel_llmcost as llmcost  # noqa: E402
from otel_llmcost import LLMCostInstrumentor  # noqa: E402
from otel_llmcost.exporter import LLMCostSpanExporter  # noqa: E402
from otel_llmcost.pricing import Pricer  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello"}]
PARENT_CALLS = 20
CHILD_CALLS = 200
POOL_TASKS = 4
TASK_CALLS = 50

provider: TracerProvider
processor: BatchSpanProcessor
exporter: LLMCostSpanExporter
client: object


def setup(dsn: str, ingester: str) -> None:
    global provider, processor, exporter, client
    exporter = LLMCostSpanExporter(dsn=dsn, ingester=ingester)
    provider = TracerProvider(resource=Resource.create({"service.name": "forking"}))
    processor = BatchSpanProcessor(exporter, max_export_batch_size=32, schedule_delay_millis=50)
    provider.add_span_processor(processor)
    LLMCostInstrumentor().instrument(
        tracer_provider=provider, meter_provider=MeterProvider(), pricer=Pricer(overrides_path="")
    )
    client = light_openai()


def calls(who: str, n: int) -> None:
    for seq in range(n):
        with llmcost.attributes(session=f"{who}:{seq}", feature="fork"):
            if seq % 4 == 0:
                for _ in client.chat.completions.create(  # type: ignore[attr-defined]
                    model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
                ):
                    pass
            else:
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[attr-defined]


def chdb_loaded() -> bool:
    return "chdb" in sys.modules


def _pool_worker_init() -> None:
    # A pool worker leaves through os._exit: shut its copy of the provider down on the way
    # out (multiprocessing runs these finalizers when the pool closes), as an app should.
    multiprocessing.util.Finalize(None, provider.shutdown, exitpriority=10)


def pool_task(task: int) -> tuple[int, int, bool]:
    calls(f"task{task}", TASK_CALLS)
    processor.force_flush()
    return os.getpid(), TASK_CALLS, chdb_loaded()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--mode", choices=("fork", "pool"), required=True)
    parser.add_argument("--ingester", choices=("auto", "off"), default="off")
    args = parser.parse_args()
    setup(args.dsn, args.ingester)
    calls("parent", PARENT_CALLS)
    assert processor.force_flush(), "the parent's spans were not exported before the fork"

    if args.mode == "fork":
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                calls("child", CHILD_CALLS)
                provider.shutdown()
                print(f"child {os.getpid()} done {CHILD_CALLS} chdb {chdb_loaded()}", flush=True)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        calls("parent-after", PARENT_CALLS)  # the parent keeps working while the child runs
        _, status = os.waitpid(pid, 0)
        print(f"child exit {os.waitstatus_to_exitcode(status)}", flush=True)
        done = 2 * PARENT_CALLS
    else:
        pool = multiprocessing.get_context("fork").Pool(POOL_TASKS, initializer=_pool_worker_init)
        try:
            for task, (pid, n, loaded) in enumerate(pool.map(pool_task, range(POOL_TASKS), chunksize=1)):
                print(f"task {task} pid {pid} done {n} chdb {loaded}", flush=True)
            pool.close()
            pool.join()
        finally:
            pool.terminate()
        done = PARENT_CALLS
    provider.shutdown()
    print(f"parent done {done} dropped {exporter.dropped_spans} chdb {chdb_loaded()}", flush=True)


if __name__ == "__main__":
    main()
