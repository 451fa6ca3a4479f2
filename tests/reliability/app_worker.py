"""A small instrumented app, as one worker process of a multi-process server would run it:
the real openai SDK against the fake provider, LLMCostSpanExporter behind a
BatchSpanProcessor. Used by the reliability tests as a subprocess.

    python app_worker.py --dsn chdb:///x --service w1 --calls 300 [--threads 2] [--ingester auto]
    python app_worker.py --dsn chdb:///x --service w1 --loop          # until killed
    python app_worker.py --dsn chdb:///x --service w1 --die-writing   # SIGKILL inside a spool write

Every call carries ``llmcost.session`` = ``<service>:<seq>``, so the tests can tell a
lost call from a duplicated one. ``--loop`` prints ``flushed <seq> chdb False`` after every
``force_flush`` of the processor: every call up to ``seq`` has then been handed to the
exporter and written to the spool. ``--ingester auto`` lets the exporter start the
ingester process on demand (the default outside the tests); ``off`` leaves the spool to
whoever ingests (the test, a CLI read, a sidecar). The last line says whether chdb was
loaded (it never should be in an app): ``done <calls> dropped <n> chdb <True|False>``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
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


def one_call(client: object, service: str, seq: int) -> None:
    with llmcost.attributes(session=f"{service}:{seq}", feature="soak"):
        if seq % 3 == 0:
            stream = client.chat.completions.create(  # type: ignore[attr-defined]
                model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            for _ in stream:
                pass
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--ingester", choices=("auto", "off"), default="off")
    parser.add_argument("--loop", action="store_true")
    parser.add_argument("--die-writing", action="store_true")
    args = parser.parse_args()

    exporter = LLMCostSpanExporter(dsn=args.dsn, ingester=args.ingester)
    provider = TracerProvider(resource=Resource.create({"service.name": args.service}))
    # --die-writing: only the explicit flush exports, so the dying batch is all the calls.
    delay = 600_000 if args.die_writing else 100
    processor = BatchSpanProcessor(exporter, max_export_batch_size=args.batch, schedule_delay_millis=delay)
    provider.add_span_processor(processor)
    LLMCostInstrumentor().instrument(
        tracer_provider=provider, meter_provider=MeterProvider(), pricer=Pricer(overrides_path="")
    )
    client = light_openai()

    if args.die_writing:
        import otel_llmcost.exporter.exporter as ch
        from otel_llmcost.exporter import spool

        real_write = ch.write_spool

        def write_then_die(dsn, rows, owner=None):  # type: ignore[no-untyped-def]
            directory = spool.spool_dir(dsn)
            directory.mkdir(parents=True, exist_ok=True)
            with open(directory / f"{spool.TMP_PREFIX}{owner}-half.jsonl", "w") as fh:
                fh.write("[1]\n")
                fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
            return real_write(dsn, rows, owner)

        ch.write_spool = write_then_die
        for seq in range(args.calls):
            one_call(client, args.service, seq)
        processor.force_flush()
        return

    if args.loop:
        seq = 0
        while True:
            for _ in range(args.batch):
                one_call(client, args.service, seq)
                seq += 1
            processor.force_flush()
            print(f"flushed {seq} chdb {'chdb' in sys.modules}", flush=True)

    def run(start: int, step: int) -> None:
        for seq in range(start, args.calls, step):
            one_call(client, args.service, seq)

    threads = [threading.Thread(target=run, args=(i, args.threads)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    provider.shutdown()
    print(f"done {args.calls} dropped {exporter.dropped_spans} chdb {'chdb' in sys.modules}", flush=True)


if __name__ == "__main__":
    main()
