"""The real ollama library against the fake provider: spans, usage, local (unpriced) models, the
price override file, streams, errors; and Ollama's OpenAI-compatible endpoint through the openai SDK."""

from __future__ import annotations

import asyncio
import json
import logging

import ollama
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, ollama_client, openai_client
from otel_llmcost.instrumentation import instrumentor as instrumentor_module
from otel_llmcost.instrumentation import package
from otel_llmcost.pricing import Pricer
from otel_llmcost.providers.hosts import describe_base_url
from tests.helpers.providers import assert_not_raised_by_us, declared_range, openai_usage

MESSAGES = [{"role": "user", "content": "What does a token cost on my own GPU?"}]
# A model genai-prices lists for cloud providers (Groq, ...): run locally it is still unpriced.
LISTED_ELSEWHERE = "llama-3.3-70b-versatile"


@pytest.fixture
def ollama_only(instrument):  # type: ignore[no-untyped-def]
    return instrument(providers=("ollama",), limiters=())


def _prices(tmp_path, entry: dict) -> Pricer:  # type: ignore[no-untyped-def]
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": [entry]}))
    return Pricer(overrides_path=path)


def test_chat_span_carries_contract_attributes_and_is_unpriced(ollama_only, otel, fake):
    fake.enqueue(Reply(usage={"prompt_eval_count": 26, "eval_count": 298}))
    ollama_client(fake).chat(
        "llama3.2", messages=MESSAGES, options={"temperature": 0.2, "top_p": 0.9, "num_predict": 64}
    )

    span = otel.only_span()
    attrs = span.attributes
    assert span.name == "chat llama3.2"
    assert span.kind is SpanKind.CLIENT
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "ollama"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "llama3.2"  # given positionally
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is False
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "llama3.2"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.SERVER_ADDRESS] == "localhost"
    assert attrs[semconv.SERVER_PORT] == 11434
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 26  # prompt_eval_count
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 298  # eval_count
    assert attrs[semconv.UNPRICED] is True
    assert attrs[semconv.PRICE_PROVIDER] == "ollama"
    assert [name for name in attrs if name.startswith("llmcost.cost.")] == []
    assert span.status.status_code is StatusCode.UNSET


def test_model_priced_elsewhere_is_still_unpriced_when_run_locally(ollama_only, otel, fake):
    ollama_client(fake).chat(LISTED_ELSEWHERE, messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.UNPRICED] is True
    assert [name for name in attrs if name.startswith("llmcost.cost.")] == []


@pytest.mark.parametrize("provider", [None, "ollama"])
def test_price_override_file_prices_a_local_model(instrument, otel, fake, tmp_path, provider):
    entry = {
        "model": "llama3.2",
        "input_mtok": 0.02,
        "output_mtok": 0.05,
        **({"provider": provider} if provider else {}),
    }
    instrument(providers=("ollama",), limiters=(), pricer=_prices(tmp_path, entry))
    fake.enqueue(Reply(usage={"prompt_eval_count": 1200, "eval_count": 300}))
    ollama_client(fake).chat("llama3.2", messages=MESSAGES)

    attrs = otel.only_span().attributes
    # 1200 * 0.02 + 300 * 0.05 = 24 + 15 = $39 per million -> $0.000039
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.000039, rel=1e-9)
    assert attrs[semconv.PRICE_SOURCE] == "override prices.json:1"
    assert semconv.UNPRICED not in attrs


def test_generate_is_a_text_completion_with_its_system_prompt(ollama_only, otel, fake):
    fake.enqueue(Reply(usage={"prompt_eval_count": 40, "eval_count": 12}))
    result = ollama_client(fake).generate("llama3.2", "Write a haiku.", system="You are terse.")

    assert result.response == fake.reply_text
    span = otel.only_span()
    assert span.name == "text_completion llama3.2"
    assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "text_completion"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 40
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 12


def test_embed_reads_prompt_eval_count(ollama_only, otel, fake):
    fake.enqueue(Reply(usage={"prompt_eval_count": 321}))
    ollama_client(fake).embed("nomic-embed-text", ["first text", "second text"])

    span = otel.only_span()
    assert span.name == "embeddings nomic-embed-text"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 321
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 0
    assert span.attributes[semconv.UNPRICED] is True


def test_legacy_embeddings_without_a_count_are_estimated(ollama_only, otel, fake):
    ollama_client(fake).embeddings("nomic-embed-text", "a text to embed, counted locally")

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert attrs[semconv.USAGE_ESTIMATED] is True


def test_other_calls_of_the_client_are_not_spans(ollama_only, otel, fake):
    client = ollama_client(fake)
    with pytest.raises(Exception):  # noqa: B017 - the fake knows no /api/tags: whatever the library raises
        client.list()
    assert otel.spans() == ()


def test_module_level_functions_are_instrumented(ollama_only, otel, fake, monkeypatch):
    monkeypatch.setattr(ollama, "_client", ollama_client(fake), raising=False)
    monkeypatch.setattr(ollama, "chat", ollama._client.chat)
    ollama.chat("llama3.2", messages=MESSAGES)

    assert otel.only_span().attributes[semconv.GEN_AI_PROVIDER_NAME] == "ollama"


def test_stream_reads_counts_from_the_last_chunk(ollama_only, otel, fake):
    fake.enqueue(Reply(usage={"prompt_eval_count": 100, "eval_count": 20}))
    stream = ollama_client(fake).chat("llama3.2", messages=MESSAGES, stream=True)
    assert otel.spans() == ()  # the generator sends on its first step
    text = "".join(chunk.message.content for chunk in stream)

    assert text == fake.reply_text
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 100
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 20
    assert semconv.USAGE_ESTIMATED not in attrs
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in attrs
    assert list(otel.ends.ends.values()) == [1]


def test_generate_stream_is_one_span(ollama_only, otel, fake):
    text = "".join(chunk.response for chunk in ollama_client(fake).generate("llama3.2", "Hi", stream=True))

    assert text == fake.reply_text
    assert otel.only_span().attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7


def test_stream_closed_early_ends_span_once(ollama_only, otel, fake):
    stream = ollama_client(fake).chat("llama3.2", messages=MESSAGES, stream=True)
    next(stream)
    stream.close()
    stream.close()

    span = otel.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert list(otel.ends.ends.values()) == [1]


def test_stream_broken_mid_way_ends_span_once_and_reraises(ollama_only, otel, fake):
    fake.enqueue(Reply(break_after=2))
    with pytest.raises(Exception) as raised:
        for _ in ollama_client(fake).chat("llama3.2", messages=MESSAGES, stream=True):
            pass

    assert_not_raised_by_us(raised.value)
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    assert list(otel.ends.ends.values()) == [1]


def test_error_line_mid_stream_is_a_response_error_without_a_status(ollama_only, otel, fake):
    events = [{"model": "llama3.2", "message": {"role": "assistant", "content": "Hel"}, "done": False}]
    fake.enqueue(Reply(sse=[*events, {"error": "model runner has unexpectedly stopped"}]))
    with pytest.raises(ollama.ResponseError) as raised:
        for _ in ollama_client(fake).chat("llama3.2", messages=MESSAGES, stream=True):
            pass

    assert raised.value.status_code == -1
    attrs = otel.only_span().attributes
    assert attrs[semconv.ERROR_TYPE] == "ResponseError"
    assert semconv.HTTP_RESPONSE_STATUS_CODE not in attrs


def test_async_chat_and_async_stream_are_one_span_each(ollama_only, otel, fake):
    fake.enqueue(
        Reply(usage={"prompt_eval_count": 30, "eval_count": 4}),
        Reply(usage={"prompt_eval_count": 50, "eval_count": 10}),
    )

    async def run() -> str:
        client = ollama_client(fake, is_async=True)
        await client.chat("llama3.2", messages=MESSAGES)
        stream = await client.chat("llama3.2", messages=MESSAGES, stream=True)
        return "".join([chunk.message.content async for chunk in stream])

    assert asyncio.run(run()) == fake.reply_text
    plain, streamed = sorted(otel.spans(), key=lambda span: span.start_time)
    assert plain.attributes[semconv.GEN_AI_REQUEST_STREAM] is False
    assert plain.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 30
    assert streamed.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert streamed.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 50
    assert list(otel.ends.ends.values()) == [1, 1]


def test_async_client_other_calls_pass_untouched(ollama_only, otel, fake):
    async def run() -> None:
        with pytest.raises(Exception):  # noqa: B017
            await ollama_client(fake, is_async=True).list()

    asyncio.run(run())
    assert otel.spans() == ()


def test_429_is_throttled_and_reraised_unchanged(ollama_only, otel, fake):
    # Ollama's library does not retry; its cloud models answer 429 when over their limits.
    fake.enqueue(Reply(status=429, headers={"retry-after": "3"}, body={"error": "too many requests"}))
    with pytest.raises(ollama.ResponseError) as raised:
        ollama_client(fake).chat("gpt-oss:120b-cloud", messages=MESSAGES)

    assert_not_raised_by_us(raised.value)
    assert raised.value.status_code == 429
    span = otel.only_span()
    attrs = span.attributes
    assert span.status.status_code is StatusCode.ERROR
    assert attrs[semconv.ERROR_TYPE] == "ResponseError"
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 429


def test_unknown_model_error_is_reraised_unchanged(ollama_only, otel, fake):
    fake.enqueue(Reply(status=404, body={"error": "model 'nope' not found"}))
    with pytest.raises(ollama.ResponseError) as raised:
        ollama_client(fake).chat("nope", messages=MESSAGES)

    assert raised.value.status_code == 404
    assert otel.only_span().attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 404


def test_uninstrument_restores_the_originals(instrument, otel, fake):
    instrument(providers=("ollama",), limiters=()).uninstrument()
    sync, aio = vars(ollama.Client)["_request"], vars(ollama.AsyncClient)["_request"]
    instrumentor = instrument(providers=("ollama",), limiters=())
    assert ("ollama._client", "Client._request") in instrumentor.patched
    assert vars(ollama.Client)["_request"] is not sync

    instrumentor.uninstrument()

    assert vars(ollama.Client)["_request"] is sync
    assert vars(ollama.AsyncClient)["_request"] is aio
    ollama_client(fake).chat("llama3.2", messages=MESSAGES)
    assert otel.spans() == ()


def test_version_outside_the_range_is_not_patched_and_warns_once(monkeypatch, caplog, otel):
    monkeypatch.setitem(package.PROVIDER_REQUIREMENTS, "ollama", declared_range("ollama"))
    real = package.version
    monkeypatch.setattr(package, "version", lambda name: "0.3.3" if name == "ollama" else real(name))
    instrumentor = instrumentor_module.LLMCostInstrumentor()
    with caplog.at_level(logging.WARNING, logger="otel_llmcost"):
        instrumentor.instrument(
            tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, providers=("ollama",), limiters=()
        )
    try:
        warnings = [r.getMessage() for r in caplog.records if "ollama" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert "ollama 0.3.3 is outside the supported range" in warnings[0]
        assert not any(module.startswith("ollama") for module, _ in instrumentor.patched)
    finally:
        instrumentor.uninstrument()


# --- the OpenAI-compatible endpoint, through the openai SDK ------------------------------------


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("http://localhost:11434/v1", "ollama"),
        ("http://127.0.0.1:11434/v1", "ollama"),
        ("http://gpu-box.internal:11434/v1", "ollama"),
        ("http://localhost:8000/v1", "openai_compatible"),  # vLLM's default: not Ollama
        ("https://api.mistral.ai/v1", "mistral_ai"),
    ],
)
def test_hosts_name_ollama_by_its_default_port(url, provider):
    assert describe_base_url(url, "openai")[0] == provider


def test_openai_compatible_endpoint_is_ollama_and_unpriced(instrument, otel, fake):
    instrument(providers=("openai",), limiters=())
    fake.enqueue(Reply(usage=openai_usage(1000, 200)))
    openai_client(fake, base_url="http://localhost:11434/v1", api_key="ollama").chat.completions.create(
        model=LISTED_ELSEWHERE, messages=MESSAGES
    )

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "ollama"
    assert attrs[semconv.SERVER_ADDRESS] == "localhost"
    assert attrs[semconv.SERVER_PORT] == 11434
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1000
    assert attrs[semconv.UNPRICED] is True
    assert attrs[semconv.PRICE_PROVIDER] == "ollama"
    assert [name for name in attrs if name.startswith("llmcost.cost.")] == []


def test_openai_compatible_endpoint_is_priced_by_the_override_file(instrument, otel, fake, tmp_path):
    entry = {"model": "qwen3:8b", "provider": "ollama", "input_mtok": 0.01, "output_mtok": 0.03}
    instrument(providers=("openai",), limiters=(), pricer=_prices(tmp_path, entry))
    fake.enqueue(Reply(usage=openai_usage(1000, 200)))
    openai_client(fake, base_url="http://localhost:11434/v1").chat.completions.create(
        model="qwen3:8b", messages=MESSAGES
    )

    # 1000 * 0.01 + 200 * 0.03 = 10 + 6 = $16 per million
    assert otel.only_span().attributes[semconv.COST_TOTAL] == pytest.approx(16e-6, rel=1e-9)
