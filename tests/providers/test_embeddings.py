"""Embeddings through the real openai and google-genai SDKs against the fake provider:
one span per call, input tokens as the API reports them (or counted offline where it
reports none), no output, the cost from genai-prices, 429s, unknown models (issue 20, item 4)."""

from __future__ import annotations

import asyncio

import openai
import pytest
from google.genai import _transformers as genai_transformers
from google.genai import errors
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, genai_client, openai_client
from otel_llmcost.instrumentation.anatomy import Anatomy
from otel_llmcost.instrumentation.hashing import prompt_hashes
from otel_llmcost.instrumentation.tokens import count_text, count_texts
from otel_llmcost.providers.base import PromptView, Request
from tests.helpers.providers import assert_not_raised_by_us

# genai-prices, USD per million input tokens (embeddings bill no output):
#   openai text-embedding-3-small 0.02, text-embedding-3-large 0.13; google gemini-embedding-001 0.15.
EMBED_3_SMALL = 0.02
EMBED_3_LARGE = 0.13
GEMINI_EMBEDDING = 0.15
EXHAUSTED = {"error": {"code": 429, "message": "Resource has been exhausted.", "status": "RESOURCE_EXHAUSTED"}}


@pytest.fixture
def openai_only(instrument, otel):  # type: ignore[no-untyped-def]
    instrument(providers=("openai",), limiters=())
    return otel


@pytest.fixture
def google_only(instrument, otel):  # type: ignore[no-untyped-def]
    instrument(providers=("google_genai",), limiters=())
    return otel


def assert_embeddings_contract(attrs, *, provider: str, model: str, input_tokens: int, price: float) -> None:  # type: ignore[no-untyped-def]
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == provider
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == model
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 0
    assert attrs[semconv.COST_OUTPUT] == 0
    assert attrs[semconv.COST_TOTAL] == pytest.approx(input_tokens * price / 1e6, rel=1e-9)
    assert semconv.UNPRICED not in attrs
    # An embeddings input is no conversation: no prompt anatomy, no cacheable prefix.
    assert not [name for name in attrs if name.startswith(semconv.PROMPT_COMPONENT_PREFIX)]
    assert semconv.PROMPT_PREFIX_HASH not in attrs


# --- OpenAI --------------------------------------------------------------------------------


def test_openai_embeddings_span_is_priced_from_prompt_tokens(openai_only, fake):
    fake.enqueue(Reply(usage={"prompt_tokens": 1200, "total_tokens": 1200}))
    response = openai_client(fake).embeddings.create(model="text-embedding-3-small", input="a text", dimensions=256)

    assert response.usage.prompt_tokens == 1200
    span = openai_only.only_span()
    assert span.name == "embeddings text-embedding-3-small"
    assert span.kind is SpanKind.CLIENT
    attrs = span.attributes
    # 1200 * 0.02 / 1e6 = $0.000024
    assert_embeddings_contract(
        attrs, provider="openai", model="text-embedding-3-small", input_tokens=1200, price=EMBED_3_SMALL
    )
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.000024)
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "text-embedding-3-small"
    assert attrs[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 256
    assert attrs[semconv.ratelimit_attribute("requests", "limit")] == 10000
    assert semconv.USAGE_ESTIMATED not in attrs


@pytest.mark.parametrize(
    "embed_input",
    [
        "one string",
        ["first string", "second string"],
        [15339, 1917, 0],  # token ids
        [[15339, 1917], [0, 1, 2]],  # lists of token ids
    ],
    ids=["string", "strings", "token-ids", "token-id-lists"],
)
def test_openai_embeddings_inputs_of_every_shape_are_hashed_and_priced(openai_only, fake, embed_input):
    openai_client(fake).embeddings.create(model="text-embedding-3-large", input=embed_input)

    attrs = openai_only.only_span().attributes
    tokens = attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS]
    assert tokens > 0
    assert attrs[semconv.COST_TOTAL] == pytest.approx(tokens * EMBED_3_LARGE / 1e6, rel=1e-9)
    assert attrs[semconv.PROMPT_REQUEST_HASH]


@pytest.mark.parametrize(
    "embed_input",
    ["one string", ["a", "b"], [1, 2, 3], [[1, 2], [3]], [], None, [{"parts": [{"text": "x"}]}]],
)
def test_anatomy_hashing_and_counting_take_any_embeddings_input(embed_input):
    prompt = PromptView(messages=[embed_input])
    request = Request(operation="embeddings", provider_name="openai", model="text-embedding-3-small", prompt=prompt)

    prefix_hash, request_hash = prompt_hashes(request)
    assert prefix_hash is None  # one message: nothing claimed cacheable
    assert request_hash
    assert Anatomy().total(prompt, request.model) >= 0  # the budgets' pre-call estimate
    assert count_texts(prompt.messages, request.model) >= 0


def test_openai_repeated_embeddings_input_has_the_same_request_hash(openai_only, fake):
    client = openai_client(fake)
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    client.embeddings.create(model="text-embedding-3-small", input=["a", "c"])

    hashes = [span.attributes[semconv.PROMPT_REQUEST_HASH] for span in openai_only.spans()]
    assert hashes[0] == hashes[1] != hashes[2]


def test_openai_async_embeddings_is_one_span(openai_only, fake):
    fake.enqueue(Reply(usage={"prompt_tokens": 50, "total_tokens": 50}))

    async def embed() -> None:
        await openai_client(fake, is_async=True).embeddings.create(model="text-embedding-3-small", input="x")

    asyncio.run(embed())
    attrs = openai_only.only_span().attributes
    assert_embeddings_contract(
        attrs, provider="openai", model="text-embedding-3-small", input_tokens=50, price=EMBED_3_SMALL
    )


def test_openai_embeddings_with_raw_response_is_one_span(openai_only, fake):
    fake.enqueue(Reply(usage={"prompt_tokens": 70, "total_tokens": 70}))
    raw = openai_client(fake).embeddings.with_raw_response.create(model="text-embedding-3-small", input="x")

    assert raw.parse().usage.prompt_tokens == 70
    assert openai_only.only_span().attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 70


def test_openai_embeddings_final_429_is_throttled_and_reraised_unchanged(openai_only, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "3"}))
    with pytest.raises(openai.RateLimitError) as raised:
        openai_client(fake, max_retries=0).embeddings.create(model="text-embedding-3-small", input="x")

    assert_not_raised_by_us(raised.value)
    span = openai_only.only_span()
    attrs = span.attributes
    assert span.status.status_code is StatusCode.ERROR
    assert attrs[semconv.ERROR_TYPE] == "RateLimitError"
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.RETRY_AFTER_S] == 3.0
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert semconv.COST_TOTAL not in attrs


def test_openai_embeddings_429_then_success_counts_the_retry(openai_only, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after-ms": "1"}), Reply(usage={"prompt_tokens": 9}))
    openai_client(fake).embeddings.create(model="text-embedding-3-small", input="x")

    attrs = openai_only.only_span().attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED_ATTEMPTS] == 1
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 9


def test_openai_unknown_embeddings_model_is_unpriced_never_zero(openai_only, fake):
    openai_client(fake).embeddings.create(model="my-private-embedder", input="x")

    attrs = openai_only.only_span().attributes
    assert attrs[semconv.UNPRICED] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert [name for name in attrs if name.startswith("llmcost.cost.")] == []


# --- Google --------------------------------------------------------------------------------


def test_gemini_api_embeddings_without_a_count_are_counted_offline_and_marked(google_only, fake):
    contents = ["What is the price of an embedding?", "And of two?"]
    response = genai_client(fake).models.embed_content(model="gemini-embedding-001", contents=contents)

    assert len(response.embeddings) == 2
    span = google_only.only_span()
    assert span.name == "embeddings gemini-embedding-001"
    attrs = span.attributes
    expected = sum(count_text(text, "gemini-embedding-001") for text in contents)
    assert_embeddings_contract(
        attrs, provider="gcp.gemini", model="gemini-embedding-001", input_tokens=expected, price=GEMINI_EMBEDDING
    )
    assert attrs[semconv.USAGE_ESTIMATED] is True


@pytest.mark.skipif(
    not hasattr(genai_transformers, "t_is_vertex_embed_content_model"),
    reason="this google-genai sends every Vertex embedding to :predict (no embedContent)",
)
def test_vertex_embed_content_reads_usage_metadata(google_only, fake):
    fake.enqueue(Reply(usage={"promptTokenCount": 400, "totalTokenCount": 400}))
    genai_client(fake, vertexai=True).models.embed_content(
        model="gemini-embedding-001", contents="one text", config={"output_dimensionality": 768}
    )

    attrs = google_only.only_span().attributes
    # 400 * 0.15 / 1e6 = $0.00006
    assert_embeddings_contract(
        attrs, provider="gcp.vertex_ai", model="gemini-embedding-001", input_tokens=400, price=GEMINI_EMBEDDING
    )
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.00006)
    assert attrs[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 768
    assert semconv.USAGE_ESTIMATED not in attrs


def test_vertex_predict_sums_statistics_and_keeps_billable_characters(google_only, fake):
    contents = ["sixteen chars ab", "eight ch"]  # the fake counts 4 characters a token: 4 + 2
    genai_client(fake, vertexai=True).models.embed_content(model="text-embedding-005", contents=contents)

    attrs = google_only.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 6
    assert attrs[semconv.USAGE_BILLABLE_CHARACTERS] == 24
    assert semconv.USAGE_ESTIMATED not in attrs
    assert attrs[semconv.UNPRICED] is True  # genai-prices lists no text-embedding-005: never $0
    assert semconv.COST_TOTAL not in attrs


def test_async_gemini_embeddings_is_one_span(google_only, fake):
    async def embed() -> None:
        await genai_client(fake).aio.models.embed_content(model="gemini-embedding-001", contents="async text")

    asyncio.run(embed())
    attrs = google_only.only_span().attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attrs[semconv.USAGE_ESTIMATED] is True
    assert attrs[semconv.COST_TOTAL] > 0


def test_gemini_embeddings_429_is_throttled_and_reraised_unchanged(google_only, fake):
    fake.enqueue(Reply(status=429, body=EXHAUSTED))
    with pytest.raises(errors.ClientError) as raised:
        genai_client(fake).models.embed_content(model="gemini-embedding-001", contents="x")

    assert raised.value.code == 429
    span = google_only.only_span()
    attrs = span.attributes
    assert span.status.status_code is StatusCode.ERROR
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in attrs  # a refused call billed nothing: no estimate


def test_unknown_gemini_embeddings_model_is_unpriced_never_zero(google_only, fake):
    genai_client(fake).models.embed_content(model="my-embedder-9", contents="x")

    attrs = google_only.only_span().attributes
    assert attrs[semconv.UNPRICED] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert [name for name in attrs if name.startswith("llmcost.cost.")] == []


def test_uninstrument_restores_the_embeddings_methods(instrument, otel, fake):
    from google.genai import models
    from openai.resources import embeddings

    instrument(providers=("openai", "google_genai"), limiters=()).uninstrument()  # the fixture instrumented
    originals = [
        vars(embeddings.Embeddings)["create"],
        vars(embeddings.AsyncEmbeddings)["create"],
        vars(models.Models)["embed_content"],
        vars(models.AsyncModels)["embed_content"],
    ]
    instrumentor = instrument(providers=("openai", "google_genai"), limiters=())
    wrapped = [
        vars(embeddings.Embeddings)["create"],
        vars(embeddings.AsyncEmbeddings)["create"],
        vars(models.Models)["embed_content"],
        vars(models.AsyncModels)["embed_content"],
    ]
    assert [w is o for w, o in zip(wrapped, originals, strict=True)] == [False] * 4

    instrumentor.uninstrument()

    restored = [
        vars(embeddings.Embeddings)["create"],
        vars(embeddings.AsyncEmbeddings)["create"],
        vars(models.Models)["embed_content"],
        vars(models.AsyncModels)["embed_content"],
    ]
    assert [r is o for r, o in zip(restored, originals, strict=True)] == [True] * 4
    openai_client(fake).embeddings.create(model="text-embedding-3-small", input="x")
    assert otel.spans() == ()
