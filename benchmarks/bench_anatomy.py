"""How much prompt anatomy costs per call, against the bare SDK call in the same run.

    python benchmarks/bench_anatomy.py [--calls 2000]

The bare call is the real openai SDK against the in-process fake provider (no network):
request building, validation and response parsing only, so the ratio is the *worst*
case; against a real API a call takes 100-1000x longer and the ratio vanishes.

The prompt is a typical RAG chat turn: a ~350-token system prompt, two tools, ~1,500
tokens of marked context, ten turns of history and a new user message every call.
"warm" is the steady state (the stable parts were seen before, only the latest
message is encoded); "cold" counts everything from scratch every call.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider

from otel_llmcost import LLMCostInstrumentor
from otel_llmcost.demo.fakes import FakeLLMServer, openai_client
from otel_llmcost.instrumentation.anatomy import Anatomy
from otel_llmcost.providers.base import PromptView

SYSTEM = "You are the support assistant of ACME Corp. " + "Follow the policy: be brief, cite sources. " * 40
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": "Look up an order, a customer or a shipment by id and return its status.",
            "parameters": {
                "type": "object",
                "properties": {"id": {"type": "string", "description": "the id"}, "verbose": {"type": "boolean"}},
                "required": ["id"],
            },
        },
    }
    for i in range(2)
]
CONTEXT = (
    "<documents>" + "Order 42 shipped on 3 June by parcel post, tracking 1Z999AA10123456784. " * 90 + "</documents>"
)
HISTORY = [
    {"role": "user" if i % 2 == 0 else "assistant", "content": f"Turn {i}: could you check the order status again?"}
    for i in range(10)
]


def messages(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": CONTEXT},
        *HISTORY,
        {"role": "user", "content": f"Question number {i}: where is my parcel and when will it arrive?"},
    ]


def per_call_us(fn: Callable[[int], object], calls: int, repeats: int = 5) -> float:
    for i in range(min(calls, 20)):  # warm-up
        fn(i)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(calls):
            fn(i)
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    calls = parser.parse_args().calls

    fake = FakeLLMServer()
    client = openai_client(fake)
    anatomy = Anatomy()

    def bare(i: int) -> object:
        return client.chat.completions.create(model="gpt-4o-mini", messages=messages(i), tools=TOOLS)

    def warm(i: int) -> object:
        return anatomy.breakdown(PromptView(messages=messages(i), tools=TOOLS), "gpt-4o-mini")

    def cold(i: int) -> object:
        anatomy._counts.clear()
        return warm(i)

    # Interleaved rounds, medians: the machine's load drifts less between neighbours.
    instrumentor = LLMCostInstrumentor()
    samples: dict[str, list[float]] = {"bare": [], "warm": [], "cold": [], "off": [], "on": []}
    for _ in range(5):
        samples["bare"].append(per_call_us(bare, calls, repeats=1))
        samples["warm"].append(per_call_us(warm, calls, repeats=1))
        samples["cold"].append(per_call_us(cold, max(calls // 10, 20), repeats=1))
        for setting in ("off", "on"):
            instrumentor.instrument(tracer_provider=TracerProvider(), prompt_anatomy=setting, hash_prompts=False)
            samples[setting].append(per_call_us(bare, calls, repeats=1))
            instrumentor.uninstrument()
    bare_us, warm_us, cold_us = (statistics.median(samples[k]) for k in ("bare", "warm", "cold"))
    results = {k: statistics.median(samples[k]) for k in ("off", "on")}

    print(f"prompt: {sum(anatomy.breakdown(PromptView(messages=messages(0), tools=TOOLS), 'gpt-4o-mini'))} tokens")
    print(f"bare SDK call (fake provider, uninstrumented): {bare_us:8.1f} us/call")
    print(f"anatomy, warm (stable prefix cached):           {warm_us:8.1f} us/call  ({warm_us / bare_us:6.1%} of bare)")
    print(f"anatomy, cold (everything encoded):             {cold_us:8.1f} us/call  ({cold_us / bare_us:6.1%} of bare)")
    print(f"instrumented call, anatomy off:                 {results['off']:8.1f} us/call")
    extra = results["on"] - results["off"]
    print(f"instrumented call, anatomy on:                  {results['on']:8.1f} us/call  (+{extra:.1f} us)")


if __name__ == "__main__":
    main()
