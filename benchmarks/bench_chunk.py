"""Per-chunk cost of otel-llmcost's stream proxy, isolated from the transport.

The end-to-end overhead benchmark (overhead.py) derives a per-chunk figure from the
difference between a 10-chunk and a 100-chunk stream; each mocked chunk costs the SDK
~780k instructions, so a proxy cost of a few thousand is inside that difference's noise.
This benchmark measures the proxy alone, in the same run as two baselines:

* bare: iterating the same pre-parsed chunks with no proxy;
* sdk: what the openai SDK itself does per chunk (JSON decode + ``construct_type`` into
  ``ChatCompletionChunk``), the cost the proxy's work should be compared with.

    python benchmarks/bench_chunk.py [--chunks 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import timeit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    from openai._models import construct_type
    from openai.types.chat import ChatCompletionChunk
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from otel_llmcost.config import Settings
    from otel_llmcost.instrumentation.call import LLMCall
    from otel_llmcost.instrumentation.streams import SyncStreamProxy
    from otel_llmcost.instrumentation.telemetry import Telemetry
    from otel_llmcost.providers.base import PromptView, Request
    from otel_llmcost.providers.openai import OpenAIProvider
    from otel_llmcost.runtime import Runtime

    raw = json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": {"content": "Hello fr"}, "finish_reason": None}],
        }
    )
    chunk = construct_type(type_=ChatCompletionChunk, value=json.loads(raw))
    chunks = [chunk] * args.chunks
    telemetry = Telemetry(Runtime(Settings(), tracer_provider=TracerProvider(), meter_provider=MeterProvider()))
    provider = OpenAIProvider()

    def bare() -> None:
        for _ in iter(chunks):
            pass

    def proxied() -> None:
        request = Request(operation="chat", provider_name="openai", model="gpt-4o-mini", prompt=PromptView())
        call = LLMCall(telemetry, provider, request, collect_output=False)
        for _ in SyncStreamProxy(iter(chunks), call):
            pass
        call.ended = True  # no span was started: skip finish

    def sdk() -> None:
        for _ in range(args.chunks):
            construct_type(type_=ChatCompletionChunk, value=json.loads(raw))

    def per_chunk_ns(fn) -> float:  # type: ignore[no-untyped-def]
        return min(timeit.repeat(fn, number=20, repeat=args.repeat)) / 20 / args.chunks * 1e9

    base, ours, parse = per_chunk_ns(bare), per_chunk_ns(proxied), per_chunk_ns(sdk)
    added = ours - base
    print(f"chunks per run: {args.chunks}, best of {args.repeat}")
    print("| what | ns per chunk |")
    print("|---|---|")
    print(f"| bare iteration | {base:,.0f} |")
    print(f"| SDK parse of one chunk (baseline) | {parse:,.0f} |")
    print(f"| otel-llmcost proxy added | {added:,.0f} |")
    print(f"proxy / SDK parse: {added / parse:.1%}")


if __name__ == "__main__":
    main()
