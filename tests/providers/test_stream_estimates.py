"""Streams whose usage is missing, or counts no output, are estimated from everything the
model generated: the answer's text AND the tool calls' names and JSON arguments.

Each provider's real SDK reads a recorded-shape stream from the fake provider: the same
tool calls (and, in the second case of each test, text before them), with no usage or no
output count, as an agent that streams tool calls sees them. The expectation is the
project's own tiktoken count (:mod:`otel_llmcost.instrumentation.tokens`) of the text
those streams carry, and the cost is that count at the model's published price.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Mapping

import openai
import pytest
from packaging.version import Version

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import FakeLLMServer, Reply, anthropic_client, genai_client, openai_client
from otel_llmcost.instrumentation import tokens
from tests.helpers.providers import anthropic_usage, gemini_usage, openai_usage

MESSAGES = [{"role": "user", "content": "What's the weather in Paris and in Tokyo?"}]
INSTRUCTIONS = "You are a weather assistant. Use the tools."
TEXT = "Let me check the weather in both cities for you."
CALLS = (
    ("get_weather", {"location": "Paris, France", "unit": "celsius"}),
    ("get_weather", {"location": "Tokyo, Japan", "unit": "celsius"}),
)
# What the model generated for the calls: each name, then its arguments as the JSON text it wrote.
ARGUMENTS = [json.dumps(args, separators=(",", ":")) for _, args in CALLS]
TOOL_TEXT = "".join(name + arguments for (name, _), arguments in zip(CALLS, ARGUMENTS, strict=True))
FUNCTION_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"],
    },
}

GPT_4O_MINI = {"in": 0.15, "out": 0.60}  # USD per million tokens (openai.com/api/pricing)
CLAUDE_SONNET_4 = {"in": 3.00, "out": 15.00}  # anthropic.com/pricing
GEMINI_25_FLASH = {"in": 0.30, "out": 2.50}  # ai.google.dev/gemini-api/docs/pricing (output includes thinking)
SONNET = "claude-sonnet-4-20250514"
FLASH = "gemini-2.5-flash"
ANTHROPIC_INPUT = 412  # message_start's input_tokens in the Anthropic streams below
GEMINI_PROMPT, GEMINI_THOUGHTS = 64, 18  # the Gemini streams' usageMetadata (no candidatesTokenCount)

WITH_TEXT = pytest.mark.parametrize("text", [None, TEXT], ids=["tool_calls", "text_and_tool_calls"])
needs_responses_api = pytest.mark.skipif(
    Version(openai.__version__) < Version("1.66.0"),
    reason=f"the Responses API (client.responses) arrived in openai 1.66.0; installed: {openai.__version__}",
)


def generated_tokens(text: str | None, model: str) -> int:
    """The expected output: the text and the tool calls, each counted as the model wrote it."""
    return tokens.count_text(text or "", model) + tokens.count_text(TOOL_TEXT, model)


def fragments(text: str, size: int = 4) -> list[str]:
    """A text cut into the small pieces a stream delivers it in."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def cost(price: dict, input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * price["in"] + output_tokens * price["out"]) / 1e6


def assert_estimated(attrs: Mapping[str, object], input_tokens: int, output_tokens: int, price: dict) -> None:
    assert attrs[semconv.USAGE_ESTIMATED] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == output_tokens > 0
    assert attrs[semconv.COST_OUTPUT] == pytest.approx(output_tokens * price["out"] / 1e6, rel=1e-9)
    assert attrs[semconv.COST_TOTAL] == pytest.approx(cost(price, input_tokens, output_tokens), rel=1e-9)


# --- recorded stream shapes ------------------------------------------------------------------


def chat_chunks(text: str | None, usage: dict | None = None) -> list:
    """Chat Completions chunks: the role, text deltas, then each tool call's id and name followed
    by its arguments in fragments; the usage chunk only with ``stream_options.include_usage``."""
    base = {
        "id": "chatcmpl-tools1",
        "object": "chat.completion.chunk",
        "created": 1763900000,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_560af6e559",
    }

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    events = [chunk({"role": "assistant", "content": "" if text else None, "refusal": None})]
    events += [chunk({"content": piece}) for piece in fragments(text or "")]
    for index, ((name, _), arguments) in enumerate(zip(CALLS, ARGUMENTS, strict=True)):
        call = {"index": index, "id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": ""}}
        events.append(chunk({"tool_calls": [call]}))
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]}) for p in fragments(arguments)
        ]
    events.append(chunk({}, "tool_calls"))
    if usage is not None:
        events.append({**base, "choices": [], "usage": usage})
    return [*events, "[DONE]"]


def responses_events(text: str | None, usage: dict | None = None) -> list:
    """Responses API events: a message item's text deltas, then each function_call item (its name
    on output_item.added, its arguments as deltas); ``response.completed`` with ``usage``."""
    response = {
        "id": "resp_tools1",
        "object": "response",
        "created_at": 1763900000,
        "status": "in_progress",
        "model": "gpt-4o-mini-2024-07-18",
        "instructions": INSTRUCTIONS,
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [{"type": "function", "strict": False, **FUNCTION_TOOL}],
        "usage": None,
    }
    events: list[dict] = [
        {"type": "response.created", "response": response},
        {"type": "response.in_progress", "response": response},
    ]
    output: list[dict] = []
    if text:
        message = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        events.append({"type": "response.output_item.added", "output_index": 0, "item": message})
        events.append({"type": "response.content_part.added", **where, "part": part})
        events += [{"type": "response.output_text.delta", **where, "delta": p, "logprobs": []} for p in fragments(text)]
        events.append({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
        events.append({"type": "response.content_part.done", **where, "part": {**part, "text": text}})
        done = {**message, "status": "completed", "content": [{**part, "text": text}]}
        events.append({"type": "response.output_item.done", "output_index": 0, "item": done})
        output.append(done)
    for (name, _), arguments in zip(CALLS, ARGUMENTS, strict=True):
        index = len(output)
        item = {
            "id": f"fc_{index}",
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": f"call_{index}",
            "name": name,
        }
        where = {"item_id": f"fc_{index}", "output_index": index}
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        events += [
            {"type": "response.function_call_arguments.delta", **where, "delta": p} for p in fragments(arguments)
        ]
        events.append({"type": "response.function_call_arguments.done", **where, "name": name, "arguments": arguments})
        done = {**item, "status": "completed", "arguments": arguments}
        events.append({"type": "response.output_item.done", "output_index": index, "item": done})
        output.append(done)
    completed = {**response, "status": "completed", "output": output, "usage": usage}
    events.append({"type": "response.completed", "response": completed})
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


def anthropic_events(text: str | None, delta_usage: dict) -> list:
    """Messages API events: message_start (input and a provisional output count), a text block,
    tool_use blocks (name on content_block_start, input as input_json_delta), message_delta."""
    message = {
        "id": "msg_tools1",
        "type": "message",
        "role": "assistant",
        "model": SONNET,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": anthropic_usage(ANTHROPIC_INPUT, 1),
    }
    events: list[dict] = [{"type": "message_start", "message": message}]
    index = 0
    if text:
        events.append({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        events += [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
            for p in fragments(text)
        ]
        events.append({"type": "content_block_stop", "index": 0})
        index = 1
    for (name, _), arguments in zip(CALLS, ARGUMENTS, strict=True):
        block = {"type": "tool_use", "id": f"toolu_{index}", "name": name, "input": {}}
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        # The API opens each tool input with an empty fragment.
        events += [
            {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}
            for p in ["", *fragments(arguments)]
        ]
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    delta = {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}}
    events.append({**delta, "usage": delta_usage})
    events.append({"type": "message_stop"})
    return events


def gemini_chunks(text: str | None, candidates: int | None = None) -> list:
    """streamGenerateContent chunks: text parts, then one chunk with both functionCall parts;
    every usageMetadata lacks candidatesTokenCount unless ``candidates`` is given."""
    base = {"modelVersion": FLASH, "responseId": "gemini-tools-1"}

    def usage(last: bool) -> dict:
        counts = gemini_usage(GEMINI_PROMPT, candidates or 0, GEMINI_THOUGHTS if last else 0)
        if candidates is None:
            del counts["candidatesTokenCount"]
        return counts

    chunks = [
        {
            "candidates": [{"content": {"parts": [{"text": p}], "role": "model"}, "index": 0}],
            "usageMetadata": usage(False),
        }
        for p in fragments(text or "", 12)
    ]
    parts = [{"functionCall": {"name": name, "args": args}, "thoughtSignature": "c2lnbmF0dXJl"} for name, args in CALLS]
    candidate = {"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}
    chunks.append({"candidates": [candidate], "usageMetadata": usage(True)})
    return [{**chunk, **base} for chunk in chunks]


# --- how each stream is read ------------------------------------------------------------------


def read_chat(fake: FakeLLMServer, **kwargs: object) -> None:
    tools = [{"type": "function", "function": FUNCTION_TOOL}]
    stream = openai_client(fake).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, tools=tools, stream=True, **kwargs
    )
    for _ in stream:
        pass


def read_responses(fake: FakeLLMServer) -> None:
    tools = [{"type": "function", **FUNCTION_TOOL}]
    stream = openai_client(fake).responses.create(
        model="gpt-4o-mini", instructions=INSTRUCTIONS, input=MESSAGES, tools=tools, stream=True
    )
    for _ in stream:
        pass


def read_anthropic(fake: FakeLLMServer) -> None:
    tools = [{"name": "get_weather", "input_schema": FUNCTION_TOOL["parameters"]}]
    stream = anthropic_client(fake).messages.create(
        model=SONNET, max_tokens=1024, messages=MESSAGES, tools=tools, stream=True
    )
    for _ in stream:
        pass


def read_gemini(fake: FakeLLMServer) -> None:
    for _ in genai_client(fake).models.generate_content_stream(model=FLASH, contents=MESSAGES[0]["content"]):
        pass


# --- no usage, or no output count: estimated from everything generated ------------------------


@WITH_TEXT
def test_chat_stream_without_usage_counts_tool_call_names_and_arguments(instrument, otel, fake, text):
    fake.enqueue(Reply(sse=chat_chunks(text)))
    read_chat(fake)

    model = "gpt-4o-mini"
    attrs = otel.only_span().attributes
    assert_estimated(attrs, tokens.count_messages(MESSAGES, model), generated_tokens(text, model), GPT_4O_MINI)
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)


@needs_responses_api
@WITH_TEXT
def test_responses_stream_without_usage_counts_function_call_names_and_arguments(instrument, otel, fake, text):
    fake.enqueue(Reply(sse=responses_events(text)))
    read_responses(fake)

    model = "gpt-4o-mini"
    attrs = otel.only_span().attributes
    prompt = tokens.count_prompt(INSTRUCTIONS, MESSAGES, model)  # the instructions are prompt too
    assert_estimated(attrs, prompt, generated_tokens(text, model), GPT_4O_MINI)
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("completed",)


@WITH_TEXT
def test_anthropic_stream_with_zero_output_counts_tool_use_names_and_input(instrument, otel, fake, text):
    fake.enqueue(Reply(sse=anthropic_events(text, {"output_tokens": 0})))
    read_anthropic(fake)

    attrs = otel.only_span().attributes
    # The reported input stands; only the output is counted.
    assert_estimated(attrs, ANTHROPIC_INPUT, generated_tokens(text, SONNET), CLAUDE_SONNET_4)
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)


def test_anthropic_stream_without_an_output_total_raises_the_provisional_count(instrument, otel, fake):
    # message_delta carries no output_tokens: message_start's provisional 1 is all the usage says.
    fake.enqueue(Reply(sse=anthropic_events(TEXT, {})))
    read_anthropic(fake)

    attrs = otel.only_span().attributes
    assert_estimated(attrs, ANTHROPIC_INPUT, generated_tokens(TEXT, SONNET), CLAUDE_SONNET_4)


@WITH_TEXT
def test_gemini_stream_without_candidates_count_counts_function_calls(instrument, otel, fake, text):
    fake.enqueue(Reply(sse=gemini_chunks(text)))
    read_gemini(fake)

    attrs = otel.only_span().attributes
    # The reported thoughts stand; the visible output (text and calls) is counted beside them.
    output = GEMINI_THOUGHTS + generated_tokens(text, FLASH)
    assert_estimated(attrs, GEMINI_PROMPT, output, GEMINI_25_FLASH)
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == GEMINI_THOUGHTS


# --- usage in the stream: it wins, nothing is estimated ---------------------------------------


def _chat_with_usage(fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(sse=chat_chunks(TEXT, openai_usage(120, 45))))
    read_chat(fake, stream_options={"include_usage": True})


def _responses_with_usage(fake: FakeLLMServer) -> None:
    usage = {"input_tokens": 120, "output_tokens": 45, "total_tokens": 165}
    fake.enqueue(Reply(sse=responses_events(TEXT, usage)))
    read_responses(fake)


def _anthropic_with_usage(fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(sse=anthropic_events(TEXT, {"output_tokens": 45})))
    read_anthropic(fake)


def _gemini_with_usage(fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(sse=gemini_chunks(TEXT, candidates=45 - GEMINI_THOUGHTS)))
    read_gemini(fake)


@pytest.mark.parametrize(
    ("read", "input_tokens"),
    [
        (_chat_with_usage, 120),
        pytest.param(_responses_with_usage, 120, marks=needs_responses_api),
        (_anthropic_with_usage, ANTHROPIC_INPUT),
        (_gemini_with_usage, GEMINI_PROMPT),
    ],
    ids=["chat", "responses", "anthropic", "gemini"],
)
def test_stream_usage_with_tool_calls_is_reported_not_estimated(instrument, otel, fake, read, input_tokens):
    read(fake)

    attrs = otel.only_span().attributes
    assert semconv.USAGE_ESTIMATED not in attrs
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 45


# --- streams that end before their usage ------------------------------------------------------


def test_stream_closed_before_its_usage_chunk_is_estimated_from_what_it_generated(instrument, otel, fake):
    fake.enqueue(Reply(sse=chat_chunks(None, openai_usage(120, 45))))
    stream = openai_client(fake).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].finish_reason:
            break  # the caller has its tool calls and leaves before the usage chunk
    stream.close()

    model = "gpt-4o-mini"
    attrs = otel.only_span().attributes
    assert_estimated(attrs, tokens.count_messages(MESSAGES, model), generated_tokens(None, model), GPT_4O_MINI)


def _anthropic_manager_never_entered(fake: FakeLLMServer) -> None:
    anthropic_client(fake).messages.stream(model=SONNET, max_tokens=50, messages=MESSAGES)


def _gemini_stream_never_iterated(fake: FakeLLMServer) -> None:
    genai_client(fake).models.generate_content_stream(model=FLASH, contents=MESSAGES[0]["content"])


@pytest.mark.parametrize(
    "start", [_anthropic_manager_never_entered, _gemini_stream_never_iterated], ids=["anthropic", "gemini"]
)
def test_stream_never_sent_is_not_estimated(instrument, otel, fake, start):
    start(fake)  # the stream object is dropped unused
    gc.collect()

    attrs = otel.only_span().attributes
    assert fake.requests == []
    assert semconv.USAGE_ESTIMATED not in attrs
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in attrs
