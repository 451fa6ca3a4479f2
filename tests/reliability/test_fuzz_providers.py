"""Hypothesis fuzz of what providers send back: SSE event sequences (valid, odd, malformed,
cut mid-way), response headers and error statuses. Whatever arrives, no exception of
ours reaches user code (only the SDK's own), exactly one span ends, exactly once, and its
attributes are well-formed (OTel types; token counts non-negative integers)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import traceback

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, anthropic_client, openai_client
from tests.helpers.fuzz_values import OPENAI_USAGE_KEYS, json_values

# LLMCOST_FUZZ_EXAMPLES: examples per test (default 25; e.g. 2000 for a long hunt).
FUZZ = settings(
    max_examples=int(os.environ.get("LLMCOST_FUZZ_EXAMPLES") or 25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MESSAGES = [{"role": "user", "content": "hi"}]

values = json_values(min_int=-(2**63), max_int=2**64, max_leaves=6)
usage_dicts = st.dictionaries(
    st.sampled_from(
        [
            *OPENAI_USAGE_KEYS,
            "input_tokens_details",
            "output_tokens_details",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "cache_creation",
        ]
    ),
    st.one_of(values, st.integers(0, 10**6), st.fixed_dictionaries({"cached_tokens": values})),
    max_size=6,
)
header_names = st.sampled_from(
    [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "retry-after",
        "retry-after-ms",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-limit",
    ]
)
# Header values as a server may send them: any latin-1 text (httpx decodes headers as latin-1).
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"))
headers = st.dictionaries(header_names, header_values.map(lambda v: v[:60].strip().encode("latin-1")), max_size=5)


def chat_chunk(content, finish, usage, extra):  # type: ignore[no-untyped-def]
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", **extra}
    chunk["choices"] = [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    if usage is not None:
        chunk["usage"] = usage
    return chunk


chat_events = st.one_of(
    st.builds(
        chat_chunk,
        st.one_of(st.none(), st.text(max_size=8)),
        st.one_of(st.none(), st.sampled_from(["stop", "length", "tool_calls", ""]), st.text(max_size=5)),
        st.one_of(st.none(), usage_dicts),
        st.dictionaries(st.sampled_from(["model", "id", "service_tier", "choices"]), values, max_size=2),
    ),
    st.just("[DONE]"),
    st.sampled_from(['{"broken', "{}", "null", "[]", '"text"', '{"error": {"message": "overloaded"}}']),
)
responses_events = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                [
                    "response.created",
                    "response.output_text.delta",
                    "response.completed",
                    "response.incomplete",
                    "response.failed",
                    "response.unknown_event",
                ]
            ),
            "sequence_number": st.integers(0, 5),
            "delta": st.one_of(st.text(max_size=5), values),
            "response": st.one_of(
                values,
                st.fixed_dictionaries(
                    {
                        "id": st.text(max_size=5),
                        "object": st.just("response"),
                        "model": st.one_of(st.text(max_size=10), values),
                        "status": st.one_of(st.sampled_from(["completed", "incomplete"]), values),
                        "output": st.just([]),
                        "usage": st.one_of(st.none(), usage_dicts),
                    }
                ),
            ),
        }
    ),
    st.sampled_from(['{"type": "response.completed"}', "{", "[DONE]"]),
)
anthropic_events = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                [
                    "message_start",
                    "content_block_start",
                    "content_block_delta",
                    "content_block_stop",
                    "message_delta",
                    "message_stop",
                    "ping",
                    "error",
                ]
            ),
            "message": st.one_of(
                values,
                st.fixed_dictionaries(
                    {
                        "id": st.just("m"),
                        "type": st.just("message"),
                        "role": st.just("assistant"),
                        "model": st.one_of(st.just("claude-sonnet-4-20250514"), values),
                        "content": st.just([]),
                        "usage": st.one_of(st.none(), usage_dicts),
                    }
                ),
            ),
            "usage": st.one_of(st.none(), usage_dicts),
            "delta": st.one_of(values, st.fixed_dictionaries({"type": st.just("text_delta"), "text": st.text()})),
            "index": st.integers(-1, 3),
        }
    ),
    st.sampled_from(["{", "{}"]),
)
consumption = st.sampled_from(["all", "half_then_close", "half_then_drop", "with_block"])


def our_frames(error: BaseException) -> list[str]:
    """Where errors were raised, if in our code: the innermost frame of the error and of
    every error chained to it (our wrappers re-raising the SDK's error do not count)."""
    frames = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = traceback.extract_tb(current.__traceback__)
        if tb:
            frames.append(f"{tb[-1].filename}:{tb[-1].lineno}")
        current = current.__cause__ or current.__context__
    return [f for f in frames if "otel_llmcost" in f and "fakes.py" not in f]


def well_formed(span) -> None:  # type: ignore[no-untyped-def]
    for key, value in span.attributes.items():
        assert isinstance(key, str)
        if isinstance(value, tuple):
            assert all(isinstance(v, (str, bool, int, float)) for v in value), (key, value)
        else:
            assert isinstance(value, (str, bool, int, float)), (key, value)
    for key in (
        semconv.GEN_AI_USAGE_INPUT_TOKENS,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    ):
        if key in span.attributes:
            value = span.attributes[key]
            assert type(value) is int and value >= 0, (key, value)
    cost = span.attributes.get(semconv.COST_TOTAL)
    if cost is not None:
        assert isinstance(cost, float) and cost == cost, cost  # never NaN


def consume(stream, how: str) -> None:  # type: ignore[no-untyped-def]
    if how == "with_block":
        with stream as s:
            for _ in s:
                pass
        return
    iterator = iter(stream)
    if how == "all":
        for _ in iterator:
            pass
        return
    next(iterator, None)
    if how == "half_then_close":
        stream.close()


def client(fake, make, **kwargs):  # type: ignore[no-untyped-def]
    """One SDK client per test (hypothesis reuses the function's fixtures across examples)."""
    cache = fake.__dict__.setdefault("_fuzz_clients", {})
    key = (make.__name__, tuple(sorted(kwargs.items())))
    if key not in cache:
        cache[key] = make(fake, **kwargs)
    return cache[key]


def check(otel, run, collect: bool = False) -> None:  # type: ignore[no-untyped-def]
    otel.exporter.clear()
    otel.ends.ends.clear()
    try:
        run()
    except Exception as error:  # the SDK's own errors may reach the caller; ours never
        assert our_frames(error) == [], "".join(traceback.format_exception(error))
    if collect:
        gc.collect()  # a stream dropped half-way ends from its finalizer
    spans = otel.spans()
    assert len(spans) == 1, [s.name for s in spans]
    assert list(otel.ends.ends.values()) == [1]
    well_formed(spans[0])


@FUZZ
@given(
    events=st.lists(chat_events, max_size=6), hdrs=headers, cut=st.one_of(st.none(), st.integers(0, 6)), how=consumption
)
def test_openai_chat_stream_any_sse_sequence(instrument, otel, fake, events, hdrs, cut, how):
    def run() -> None:
        fake.enqueue(Reply(headers=hdrs, sse=events, break_after=cut))
        sdk = client(fake, openai_client, max_retries=0)
        consume(sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True), how)

    check(otel, run, collect=how == "half_then_drop")


@FUZZ
@given(events=st.lists(responses_events, max_size=5), hdrs=headers, cut=st.one_of(st.none(), st.integers(0, 5)))
def test_openai_responses_stream_any_event_sequence(instrument, otel, fake, events, hdrs, cut):
    def run() -> None:
        fake.enqueue(Reply(headers=hdrs, sse=events, break_after=cut))
        sdk = client(fake, openai_client, max_retries=0)
        for _ in sdk.responses.create(model="gpt-4o-mini", input="hi", stream=True):
            pass

    check(otel, run)


@FUZZ
@given(events=st.lists(chat_events, max_size=5), cut=st.one_of(st.none(), st.integers(0, 5)))
def test_openai_async_stream_any_sse_sequence(instrument, otel, fake, events, cut):
    async def main() -> None:
        fake.enqueue(Reply(sse=events, break_after=cut))
        sdk = openai_client(fake, is_async=True, max_retries=0)  # an async client is bound to its loop
        stream = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass

    check(otel, lambda: asyncio.run(main()))


@FUZZ
@given(
    statuses=st.lists(st.sampled_from([200, 400, 408, 429, 500, 503, 529]), min_size=1, max_size=3),
    hdrs=headers,
    body=st.one_of(st.none(), values),
)
def test_openai_any_status_and_header_sequence_with_retries(instrument, otel, fake, statuses, hdrs, body):
    def run() -> None:
        for status in statuses:
            reply = Reply(status=status, headers={**hdrs, "retry-after-ms": "1"}, body=body if status >= 400 else None)
            fake.enqueue(reply)
        sdk = client(fake, openai_client, max_retries=len(statuses) - 1)
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    check(otel, run)


@FUZZ
@given(events=st.lists(anthropic_events, max_size=6), hdrs=headers, cut=st.one_of(st.none(), st.integers(0, 6)))
def test_anthropic_stream_any_event_sequence(instrument, otel, fake, events, hdrs, cut):
    def run() -> None:
        fake.enqueue(Reply(headers=hdrs, sse=events, break_after=cut))
        sdk = client(fake, anthropic_client, max_retries=0)
        stream = sdk.messages.create(model="claude-sonnet-4-20250514", max_tokens=10, messages=MESSAGES, stream=True)
        for _ in stream:
            pass

    check(otel, run)


@FUZZ
@given(usage=usage_dicts, extra=st.dictionaries(st.sampled_from(["model", "id", "stop_reason", "content"]), values))
def test_anthropic_any_message_shape(instrument, otel, fake, usage, extra):
    def run() -> None:
        body = {
            "id": "m",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": "x"}],
            "stop_reason": "end_turn",
            "usage": usage,
            **extra,
        }
        fake.enqueue(Reply(raw=json.dumps(body).encode(), headers={"content-type": "application/json"}))
        sdk = client(fake, anthropic_client, max_retries=0)
        sdk.messages.create(model="claude-sonnet-4-20250514", max_tokens=10, messages=MESSAGES)

    check(otel, run)
