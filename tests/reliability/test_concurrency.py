"""Concurrent calls: pricing (an lru_cache behind it) gives the same answers from many
threads as from one, and attribution (contextvars) never leaks between asyncio tasks or
threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import otel_llmcost as llmcost
from otel_llmcost import semconv
from otel_llmcost.pricing import Pricer, Usage
from tests.reliability._reliability import light_openai

MESSAGES = [{"role": "user", "content": "hello"}]
MODELS = [
    "gpt-4o-mini",
    "gpt-4o-2024-08-06",
    "gpt-4.1",
    "o3-mini",
    "claude-sonnet-4-20250514",
    "claude-3-5-haiku-latest",
    "gemini-2.5-flash",
    "no-such-model",
]


def work_items() -> list[tuple[str, Usage]]:
    items = []
    for i in range(1600):
        usage = Usage(input_tokens=100 + i, output_tokens=i % 97, cache_read_tokens=i % 50)
        items.append((MODELS[i % len(MODELS)] + ("" if i % 4 == 0 else f"-v{i}"), usage))
    return items


def priced(pricer: Pricer, model: str, usage: Usage) -> tuple | None:
    cost = pricer.price(usage, model)
    return None if cost is None else (round(cost.total, 12), round(cost.savings, 12), cost.model_id)


def test_pricer_gives_the_same_answers_from_many_threads():
    items = work_items()  # more distinct models than the lru_cache holds: evictions race too
    expected = [priced(Pricer(overrides_path=""), m, u) for m, u in items]
    shared = Pricer(overrides_path="")
    barrier = threading.Barrier(8)

    def run(offset: int) -> list[tuple[int, tuple | None]]:
        barrier.wait()
        order = list(range(len(items)))
        order = order[offset:] + order[:offset]
        return [(i, priced(shared, *items[i])) for i in order]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, [k * 371 for k in range(8)]))
    for result in results:
        assert [value for _, value in sorted(result)] == expected


def test_attribution_never_leaks_between_asyncio_tasks(instrument, otel):
    client = light_openai(is_async=True)

    async def task(i: int) -> None:
        with llmcost.attributes(user=f"u{i}", session=f"s{i}", feature="outer"):
            for step in range(3):
                await asyncio.sleep(0)  # interleave with every other task
                if step == 1:
                    with llmcost.attributes(feature=f"inner{i}"):
                        await asyncio.sleep(0)
                        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                else:
                    await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

        # after the block: nothing is left behind in this task
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    async def main() -> None:
        await asyncio.gather(*(task(i) for i in range(60)))

    asyncio.run(main())
    spans = otel.spans()
    assert len(spans) == 60 * 4
    bare = [s for s in spans if semconv.USER not in s.attributes]
    assert len(bare) == 60 and all(semconv.FEATURE not in s.attributes for s in bare)
    for span in spans:
        attrs = span.attributes
        if semconv.USER in attrs:
            i = attrs[semconv.USER][1:]
            assert attrs[semconv.SESSION] == f"s{i}"
            assert attrs[semconv.FEATURE] in ("outer", f"inner{i}")
    assert sum(1 for s in spans if str(s.attributes.get(semconv.FEATURE, "")).startswith("inner")) == 60


def test_attribution_never_leaks_between_threads(instrument, otel):
    client = light_openai()
    barrier = threading.Barrier(16)

    def run(i: int) -> None:
        barrier.wait()
        for _ in range(10):
            with llmcost.attributes(user=f"u{i}", session=f"s{i}"):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(run, range(16)))
    spans = otel.spans()
    assert len(spans) == 16 * 11
    for span in spans:
        user = span.attributes.get(semconv.USER)
        if user is not None:
            assert span.attributes[semconv.SESSION] == f"s{user[1:]}"
    assert sum(1 for s in spans if semconv.USER not in s.attributes) == 16
