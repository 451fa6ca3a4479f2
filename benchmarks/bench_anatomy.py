"""How much prompt anatomy costs per call, against the bare SDK call in the same run.

    python benchmarks/bench_anatomy.py [--calls 2000]

The bare call is the real openai SDK against the in-process fake provider (no network):
request building, validation and response parsing only, so the ratio is the *worst*
case; against a real API a call takes 100-1000x longer and the ratio vanishes.

The prompt is a typical RAG chat turn: a ~350-token system prompt, two tools, ~1,500
tokens of marked context, ten turns of history and a new user message every call.
"warm" is the steady state (the stable parts were seen before, only the latest
message is encoded); "cold" counts everything from scratch every call. Both counters
(``OTEL_LLMCOST_PROMPT_COUNTER``: ``bytes``, the default, and ``tiktoken``) run in the
same rounds.
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

COUNTERS = ("bytes", "tiktoken")

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
    anatomies = {counter: Anatomy(counter=counter) for counter in COUNTERS}

    def bare(i: int) -> object:
        return client.chat.completions.create(model="gpt-4o-mini", messages=messages(i), tools=TOOLS)

    def counting(anatomy: Anatomy, cold: bool) -> Callable[[int], object]:
        def count(i: int) -> object:
            if cold:
                anatomy._counts.clear()
            return anatomy.breakdown(PromptView(messages=messages(i), tools=TOOLS), "gpt-4o-mini")

        return count

    # Interleaved rounds, medians: the machine's load drifts less between neighbours.
    instrumentor = LLMCostInstrumentor()
    samples: dict[str, list[float]] = {}
    for _ in range(5):
        samples.setdefault("bare", []).append(per_call_us(bare, calls, repeats=1))
        for counter, anatomy in anatomies.items():
            samples.setdefault(f"warm {counter}", []).append(per_call_us(counting(anatomy, False), calls, repeats=1))
            samples.setdefault(f"cold {counter}", []).append(
                per_call_us(counting(anatomy, True), max(calls // 10, 20), repeats=1)
            )
        for setting in ("off", *COUNTERS):
            options = {"prompt_anatomy": "off"} if setting == "off" else {"prompt_counter": setting}
            instrumentor.instrument(tracer_provider=TracerProvider(), hash_prompts=False, **options)
            samples.setdefault(f"instrumented {setting}", []).append(per_call_us(bare, calls, repeats=1))
            instrumentor.uninstrument()
    median = {name: statistics.median(values) for name, values in samples.items()}
    bare_us, off_us = median["bare"], median["instrumented off"]

    prompt = PromptView(messages=messages(0), tools=TOOLS)
    print(f"prompt: {sum(anatomies['tiktoken'].breakdown(prompt, 'gpt-4o-mini'))} tokens (o200k)")
    print(f"bare SDK call (fake provider, uninstrumented): {bare_us:8.1f} us/call")
    print(f"instrumented call, anatomy off:                 {off_us:8.1f} us/call")
    for counter in COUNTERS:
        warm_us, cold_us, on_us = (median[f"{kind} {counter}"] for kind in ("warm", "cold", "instrumented"))
        print(f"counter {counter}:")
        print(f"  anatomy, warm (stable prefix cached): {warm_us:8.1f} us/call  ({warm_us / bare_us:6.1%} of bare)")
        print(f"  anatomy, cold (everything counted):   {cold_us:8.1f} us/call  ({cold_us / bare_us:6.1%} of bare)")
        print(f"  instrumented call, anatomy on:       {on_us:8.1f} us/call  (+{on_us - off_us:.1f} us)")


if __name__ == "__main__":
    main()
