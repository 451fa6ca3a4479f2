"""Time to first chunk and the span's duration are measured from the same instant.

Real SDK streams against the fake provider, which waits before its first SSE event. The
work done before the span starts (attribution, prompt hashing and counting, the budget
decision) is made slow on purpose: it belongs to neither figure, so for every stream
time to first chunk <= duration, and both include the provider's wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, anthropic_client, genai_client, openai_client
from otel_llmcost.signals import attribution
from tests.helpers.providers import openai_usage

PROVIDER_DELAY_S = 0.05
BEFORE_SPAN_S = 0.08  # longer than the whole stream after its first chunk
MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def slow_before_span(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attribution (read before the span starts) takes BEFORE_SPAN_S, like a slow budget store."""
    original = attribution.span_attributes

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(BEFORE_SPAN_S)
        return original(*args, **kwargs)

    monkeypatch.setattr(attribution, "span_attributes", slow)


def _openai_chat(fake: Any) -> None:
    stream = openai_client(fake).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass


def _openai_responses(fake: Any) -> None:
    for _ in openai_client(fake).responses.create(model="gpt-4o-mini", input="Say hello.", stream=True):
        pass


def _anthropic(fake: Any) -> None:
    stream = anthropic_client(fake).messages.create(
        model="claude-3-5-haiku-latest", max_tokens=64, messages=MESSAGES, stream=True
    )
    for _ in stream:
        pass


def _anthropic_helper(fake: Any) -> None:
    with anthropic_client(fake).messages.stream(
        model="claude-3-5-haiku-latest", max_tokens=64, messages=MESSAGES
    ) as stream:
        for _ in stream.text_stream:
            pass


def _gemini(fake: Any) -> None:
    for _ in genai_client(fake).models.generate_content_stream(model="gemini-2.0-flash", contents="Say hello."):
        pass


def _openai_async(fake: Any) -> None:
    async def run() -> None:
        stream = await openai_client(fake, is_async=True).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        async for _ in stream:
            pass

    asyncio.run(run())


STREAMS: dict[str, Callable[[Any], None]] = {
    "openai-chat": _openai_chat,
    "openai-responses": _openai_responses,
    "anthropic": _anthropic,
    "anthropic-stream-helper": _anthropic_helper,
    "gemini": _gemini,
    "openai-async": _openai_async,
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_time_to_first_chunk_is_never_longer_than_the_span(instrument, otel, fake, slow_before_span, name):
    for _ in range(2):
        usage = openai_usage(20, 8) if name.startswith("openai") else None
        fake.enqueue(Reply(first_event_delay_s=PROVIDER_DELAY_S, usage=usage))
        STREAMS[name](fake)
    spans = otel.spans()
    assert len(spans) == 2
    for span in spans:
        duration_s = (span.end_time - span.start_time) / 1e9
        ttft_s = span.attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
        assert PROVIDER_DELAY_S <= ttft_s <= duration_s, (name, ttft_s, duration_s)
