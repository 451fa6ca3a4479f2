"""The OpenAI Batch API through the real openai SDK against the fake provider: light spans
for batches.create / retrieve, and the spend of an output file recorded once, when it is
read, at genai-prices' batch price (issue 20, item 4)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any

import openai
import pytest
from genai_prices import data_snapshot
from opentelemetry.trace import StatusCode

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, openai_client
from tests.helpers.chdb import insert_spans, q
from tests.helpers.span_rows import now_ns, trace_row

MINI = "gpt-4o-mini-2024-07-18"  # the dated id a batch result body names; priced as gpt-4o-mini


@pytest.fixture
def openai_only(instrument, otel):  # type: ignore[no-untyped-def]
    instrument(providers=("openai",), limiters=())
    return otel


def result_line(custom_id: str, model: str, prompt: int, completion: int, cached: int = 0, status: int = 200) -> dict:
    """One line of a batch output file, as the Batch API writes it (a chat completion body)."""
    body: dict[str, Any] = {
        "id": f"chatcmpl-{custom_id}",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }
    if status != 200:
        body = {"error": {"message": "bad request", "type": "invalid_request_error"}}
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": f"req_{custom_id}", "body": body},
        "error": None,
    }


def jsonl(*lines: dict) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def completed_batch(client: Any, fake: Any, content: bytes) -> str:
    """Create and retrieve a batch; its output file holds ``content``. Returns the file id."""
    batch = client.batches.create(input_file_id="file-in", endpoint="/v1/chat/completions", completion_window="24h")
    batch = client.batches.retrieve(batch.id)
    fake.files[batch.output_file_id] = content
    return batch.output_file_id


def prices(model: str, context: dict[str, str] | None) -> tuple[float, float, float]:
    """(input, cached input, output) USD per million tokens from genai-prices."""
    _, info = data_snapshot.get_snapshot().find_provider_model(model, None, "openai", None)
    price = info.get_prices(datetime.now(tz=timezone.utc), context)
    return float(price.input_mtok), float(price.cache_read_mtok or price.input_mtok), float(price.output_mtok)


def cost(price: tuple[float, float, float], prompt: int, completion: int, cached: int = 0) -> float:
    return ((prompt - cached) * price[0] + cached * price[1] + completion * price[2]) / 1e6


def spans_named(otel: Any, name: str) -> list[Any]:
    return [span for span in otel.spans() if span.name == name]


# --- batches.create / retrieve ------------------------------------------------------------


def test_create_and_retrieve_are_light_spans_with_no_operation_and_no_cost(openai_only, fake):
    client = openai_client(fake)
    batch = client.batches.create(input_file_id="file-in", endpoint="/v1/chat/completions", completion_window="24h")
    retrieved = client.batches.retrieve(batch.id)

    created, read = openai_only.spans()
    assert (created.name, read.name) == ("batch.create", "batch.retrieve")
    assert created.attributes[semconv.BATCH_ID] == batch.id
    assert created.attributes[semconv.BATCH_STATUS] == "validating"
    assert created.attributes[semconv.BATCH_INPUT_FILE_ID] == "file-in"
    attrs = read.attributes
    assert attrs[semconv.BATCH_ID] == batch.id
    assert attrs[semconv.BATCH_ENDPOINT] == "/v1/chat/completions"
    assert attrs[semconv.BATCH_STATUS] == "completed"
    assert attrs[semconv.BATCH_OUTPUT_FILE_ID] == retrieved.output_file_id
    assert (attrs[semconv.BATCH_REQUESTS_TOTAL], attrs[semconv.BATCH_REQUESTS_COMPLETED]) == (2, 2)
    assert attrs[semconv.BATCH_REQUESTS_FAILED] == 0
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    for span in (created, read):
        # Not calls: llm_calls keys on gen_ai.operation.name, and these cost nothing.
        assert semconv.GEN_AI_OPERATION_NAME not in span.attributes
        assert not [name for name in span.attributes if name.startswith("llmcost.cost.")]


def test_retrieve_error_ends_its_span_as_failed_and_reraises_unchanged(openai_only, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "1"}))
    with pytest.raises(openai.RateLimitError):
        openai_client(fake, max_retries=0).batches.retrieve("batch_missing")

    span = openai_only.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "RateLimitError"
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert span.attributes[semconv.THROTTLED] is True


# --- the output file ------------------------------------------------------------------------


def test_output_file_read_records_its_usage_at_the_batch_price(openai_only, fake):
    client = openai_client(fake)
    content = jsonl(result_line("r1", MINI, 1000, 200), result_line("r2", MINI, 3000, 600, cached=1024))
    file_id = completed_batch(client, fake, content)
    openai_only.clear()

    returned = client.files.content(file_id)

    assert returned.content == content  # the user's call returns exactly the file
    span = openai_only.only_span()
    attrs = span.attributes
    assert span.name == f"batch {MINI}"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "batch"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == MINI
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 4000
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 800
    assert attrs[semconv.BATCH_FILE_ID] == file_id
    assert attrs[semconv.BATCH_ID] == "batch_fake1"  # this process retrieved the batch
    assert attrs[semconv.BATCH_ENDPOINT] == "/v1/chat/completions"
    assert attrs[semconv.BATCH_LINES] == 2
    assert attrs[semconv.PRICE_VARIANT] == "processing=batch"
    batch = prices("gpt-4o-mini", {"processing": "batch"})
    standard = prices("gpt-4o-mini", None)
    expected = cost(batch, 4000, 800, cached=1024)
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected, rel=1e-9)
    assert attrs[semconv.COST_TOTAL] < cost(standard, 4000, 800, cached=1024)
    # By hand, genai-prices 0.2.3 batch prices of gpt-4o-mini (input 0.075, cached 0.075, output 0.30):
    # (2976 * 0.075 + 1024 * 0.075 + 800 * 0.30) / 1e6 = (223.2 + 76.8 + 240) / 1e6 = $0.00054
    assert expected == pytest.approx(0.00054)


def test_one_span_per_model_and_failed_lines_are_not_billed(openai_only, fake):
    content = jsonl(
        result_line("a", MINI, 100, 10),
        result_line("b", "gpt-4.1-mini-2025-04-14", 200, 20),
        result_line("c", MINI, 999, 999, status=400),
    )
    fake.files["file-mixed"] = content
    openai_client(fake).files.content("file-mixed")

    by_model = {span.attributes[semconv.GEN_AI_REQUEST_MODEL]: span.attributes for span in openai_only.spans()}
    assert set(by_model) == {MINI, "gpt-4.1-mini-2025-04-14"}
    mini = by_model[MINI]
    assert mini[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 100
    assert mini[semconv.BATCH_LINES] == 1  # the failed line is not billed
    assert semconv.BATCH_ID not in mini  # the batch was not retrieved in this process
    assert mini[semconv.COST_TOTAL] == pytest.approx(cost(prices("gpt-4o-mini", {"processing": "batch"}), 100, 10))
    assert by_model["gpt-4.1-mini-2025-04-14"][semconv.COST_TOTAL] == pytest.approx(
        cost(prices("gpt-4.1-mini", {"processing": "batch"}), 200, 20)
    )


def test_the_same_file_read_twice_is_counted_once(openai_only, fake):
    fake.files["file-twice"] = jsonl(result_line("r1", MINI, 100, 10))
    client = openai_client(fake)
    first = client.files.content("file-twice").content
    second = client.files.content("file-twice").content

    assert first == second
    assert len(openai_only.spans()) == 1


def test_retrieve_content_and_async_content_are_read_too(openai_only, fake):
    fake.files["file-str"] = jsonl(result_line("r1", MINI, 100, 10))
    fake.files["file-async"] = jsonl(result_line("r2", MINI, 300, 30))
    text = openai_client(fake).files.retrieve_content("file-str")

    async def read() -> bytes:
        return (await openai_client(fake, is_async=True).files.content("file-async")).content

    data = asyncio.run(read())

    assert text == fake.files["file-str"].decode()
    assert data == fake.files["file-async"]
    tokens = sorted(span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] for span in openai_only.spans())
    assert tokens == [100, 300]


def test_with_raw_response_file_read_is_recorded_and_returned_unchanged(openai_only, fake):
    content = jsonl(result_line("r1", MINI, 100, 10))
    fake.files["file-raw"] = content
    raw = openai_client(fake).files.with_raw_response.content("file-raw")

    assert raw.parse().content == content
    assert openai_only.only_span().attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 100


@pytest.mark.parametrize(
    "content",
    [
        jsonl({"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": MINI}}),
        b"plain text, not JSON at all\n",
        b'{"a": 1}\n{"custom_id": "x", "response": {}}\n',
        b"",
    ],
    ids=["batch-input-file", "text", "json-lines-without-results", "empty"],
)
def test_a_file_that_is_no_batch_output_is_left_alone(openai_only, fake, content):
    fake.files["file-other"] = content
    returned = openai_client(fake).files.content("file-other")

    assert returned.content == content
    assert openai_only.spans() == ()


def test_a_malformed_output_file_is_returned_unchanged_and_marked_unusable(openai_only, fake):
    content = jsonl(result_line("r1", MINI, 100, 10)) + b'{"custom_id": "r2", "respo\n'
    fake.files["file-broken"] = content
    returned = openai_client(fake).files.content("file-broken")

    assert returned.content == content
    span = openai_only.only_span()
    assert span.name == "batch.output"
    assert span.attributes[semconv.BATCH_UNUSABLE] is True
    assert span.attributes[semconv.BATCH_FILE_ID] == "file-broken"
    assert semconv.GEN_AI_OPERATION_NAME not in span.attributes  # not a call: llm_calls never sees it
    assert not [name for name in span.attributes if name.startswith(("llmcost.cost.", "gen_ai.usage."))]


def test_a_streamed_file_read_is_not_read_by_us(openai_only, fake):
    content = jsonl(result_line("r1", MINI, 100, 10))
    fake.files["file-streamed"] = content
    with openai_client(fake).files.with_streaming_response.content("file-streamed") as response:
        assert response.read() == content

    assert openai_only.spans() == ()  # the body was the application's to read: not recorded


def test_uninstrument_restores_the_batch_methods(instrument, otel, fake):
    from openai.resources import batches, files

    targets = [
        (batches.Batches, "create"),
        (batches.AsyncBatches, "create"),
        (batches.Batches, "retrieve"),
        (batches.AsyncBatches, "retrieve"),
        (files.Files, "content"),
        (files.AsyncFiles, "content"),
        (files.Files, "retrieve_content"),
        (files.AsyncFiles, "retrieve_content"),
    ]
    instrument(providers=("openai",), limiters=()).uninstrument()  # the fixture instrumented
    originals = [vars(owner)[name] for owner, name in targets]
    instrumentor = instrument(providers=("openai",), limiters=())
    assert [vars(owner)[name] is original for (owner, name), original in zip(targets, originals, strict=True)] == [
        False
    ] * len(targets)

    instrumentor.uninstrument()

    assert [vars(owner)[name] is original for (owner, name), original in zip(targets, originals, strict=True)] == [
        True
    ] * len(targets)
    fake.files["file-after"] = jsonl(result_line("r1", MINI, 100, 10))
    openai_client(fake).files.content("file-after")
    assert otel.spans() == ()


# --- into llm_calls ------------------------------------------------------------------------


def test_embeddings_and_batch_spend_reach_llm_calls_and_batch_lifecycle_does_not(openai_only, fake, chdb_client):
    client = openai_client(fake)
    fake.enqueue(Reply(usage={"prompt_tokens": 1000, "total_tokens": 1000}))
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    file_id = completed_batch(client, fake, jsonl(result_line("r1", MINI, 1000, 200)))
    client.files.content(file_id)
    fake.files["file-broken"] = jsonl(result_line("r1", MINI, 1, 1)) + b"{oops\n"
    client.files.content("file-broken")

    svc = "batch-and-embeddings"
    ts = now_ns()
    rows = [
        trace_row(ts + i, dict(span.attributes), service=svc, name=span.name)
        for i, span in enumerate(openai_only.spans())
    ]
    assert len(rows) == 5  # embeddings, batch.create, batch.retrieve, batch <model>, batch.output (unusable)
    insert_spans(chdb_client, rows)

    found = q(
        chdb_client,
        "SELECT Operation, RequestModel, InputTokens, OutputTokens, round(CostTotal, 12), PriceVariant, BatchFileId"
        " FROM otel.llm_calls WHERE ServiceName = {s:String} ORDER BY Operation",
        s=svc,
    )
    batch_cost = round(cost(prices("gpt-4o-mini", {"processing": "batch"}), 1000, 200), 12)
    assert found == [
        ("batch", MINI, 1000, 200, batch_cost, "processing=batch", file_id),
        ("embeddings", "text-embedding-3-small", 1000, 0, round(1000 * 0.02 / 1e6, 12), "", ""),
    ]
