"""The real boto3 bedrock-runtime client against a local fake Bedrock: Converse and InvokeModel,
plain and streamed, per model family; cache tokens and cost, throttling, exactly-once streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.client
import botocore.endpoint
import pytest
from botocore.exceptions import ClientError, EventStreamError
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost import semconv
from otel_llmcost.providers.base import ResponseRecord
from otel_llmcost.providers.bedrock import BedrockProvider, model_id, parse_converse_usage
from tests.helpers.bedrock import (
    REPLY_TEXT,
    BedrockReply,
    FakeBedrock,
    bedrock_client,
    chunk_event,
    converse_body,
    converse_reports_cache,
    converse_stream_events,
    converse_usage,
    exception_event,
)
from tests.helpers.fuzz_values import json_values
from tests.helpers.providers import assert_not_raised_by_us

# genai-prices (provider "aws"), USD per million tokens, for Claude 3.5 Sonnet (20240620) as
# regional.anthropic.claude-3-5-sonnet-20240620-v1:0 (matched by id, any us./eu. profile):
#   input 3, output 15, cache read 0.30, cache write 3.75
SONNET = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
SONNET_PRICE = {"in": 3.0, "out": 15.0, "read": 0.30, "write": 3.75}
# amazon.titan-text-express-v1: input 0.20, output 0.60; amazon.nova-lite-v1:0: input 0.06, output 0.24;
# meta.llama3-1-8b-instruct-v1:0: input 0.22, output 0.22; mistral.mistral-7b-instruct-v0:2: input 0.15, output 0.20
TITAN = "amazon.titan-text-express-v1"
NOVA = "us.amazon.nova-lite-v1:0"
LLAMA = "meta.llama3-1-8b-instruct-v1:0"
MISTRAL = "mistral.mistral-7b-instruct-v0:2"
MESSAGES = [{"role": "user", "content": [{"text": "What does a cached token cost on Bedrock?"}]}]


# botocore parses what its service model names: before the cache fields were added to Converse's
# TokenUsage (the compat session's oldest botocore) they never reach the caller, nor us.
needs_converse_cache = pytest.mark.skipif(
    not converse_reports_cache(), reason="this botocore's Converse model has no cache token fields"
)


def expected_cost(price: dict[str, float], uncached: int, output: int, read: int = 0, write: int = 0) -> float:
    return (
        uncached * price["in"] + read * price.get("read", 0) + write * price.get("write", 0) + output * price["out"]
    ) / 1e6


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBedrock]:
    fake = FakeBedrock()
    yield fake
    fake.close()


@pytest.fixture
def bedrock(server: FakeBedrock) -> FakeBedrock:
    server.replies.clear()
    server.requests.clear()
    return server


@pytest.fixture
def bedrock_only(instrument):  # type: ignore[no-untyped-def]
    return instrument(providers=("bedrock",), limiters=())


def _anthropic_body(uncached: int, output: int, read: int = 0, write: int = 0) -> dict[str, Any]:
    return {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-sonnet-20240620",
        "content": [{"type": "text", "text": REPLY_TEXT}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": uncached,
            "output_tokens": output,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": write,
        },
    }


# --- Converse --------------------------------------------------------------------------------------


def test_hand_computed_cost_of_the_recorded_shape():
    # 100 * 3 + 2000 * 0.30 + 300 * 3.75 + 50 * 15 = 300 + 600 + 1125 + 750 = $2775 per million
    assert expected_cost(SONNET_PRICE, 100, 50, read=2000, write=300) == pytest.approx(0.002775)


@needs_converse_cache
def test_converse_span_carries_the_contract_and_cache_tokens_are_input(bedrock_only, otel, bedrock):
    bedrock.enqueue(BedrockReply(body=converse_body(converse_usage(100, 50, read=2000, write=300))))
    response = bedrock_client(bedrock).converse(
        modelId=SONNET, messages=MESSAGES, inferenceConfig={"maxTokens": 300, "temperature": 0.3, "topP": 0.9}
    )

    assert response["output"]["message"]["content"][0]["text"] == REPLY_TEXT
    span = otel.only_span()
    attrs = span.attributes
    assert span.name == f"chat {SONNET}"
    assert span.kind is SpanKind.CLIENT
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == SONNET
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 300
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.3
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is False
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "req-0001"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2400  # inputTokens EXCLUDES the cache: 100 + 2000 + 300
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2000
    assert attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 300
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 50
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.002775, rel=1e-9)
    assert attrs[semconv.COST_CACHE_READ] == pytest.approx(2000 * 0.30 / 1e6, rel=1e-9)
    assert attrs[semconv.COST_CACHE_WRITE] == pytest.approx(300 * 3.75 / 1e6, rel=1e-9)
    assert semconv.UNPRICED not in attrs
    assert not [name for name in attrs if name.startswith("llmcost.ratelimit.")]  # Bedrock sends none
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    ("reported_input", "total"),
    [
        (100, 2450),  # as Bedrock sends it: inputTokens excludes the cache, totalTokens counts it
        (2400, 2450),  # a total of just input + output: inputTokens already counted the cache
    ],
)
def test_converse_cache_tokens_are_counted_in_input_once(reported_input, total):
    usage = parse_converse_usage(
        {
            "inputTokens": reported_input,
            "outputTokens": 50,
            "totalTokens": total,
            "cacheReadInputTokens": 2000,
            "cacheWriteInputTokens": 300,
        }
    )
    assert usage is not None
    assert (usage.input_tokens, usage.uncached_input_tokens) == (2400, 100)
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens) == (2000, 300, 50)


def test_converse_cache_details_split_the_writes_by_ttl():
    usage = parse_converse_usage(
        {
            "inputTokens": 100,
            "outputTokens": 50,
            "totalTokens": 1450,
            "cacheWriteInputTokens": 1300,
            "cacheDetails": [{"ttl": "1h", "inputTokens": 1000}, {"ttl": "5m", "inputTokens": 300}],
        }
    )
    assert usage is not None
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (1400, 1300, 1000)
    assert usage.cache_write_ttl == "mixed"


@pytest.mark.parametrize(
    ("sent", "priced_as"),
    [
        (SONNET, SONNET),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("eu.anthropic.claude-3-5-sonnet-20240620-v1:0", "eu.anthropic.claude-3-5-sonnet-20240620-v1:0"),
        (f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{SONNET}", SONNET),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
        ),
    ],
)
def test_model_ids_profiles_and_arns_are_priced_by_the_model_they_name(bedrock_only, otel, bedrock, sent, priced_as):
    bedrock.enqueue(BedrockReply(body=converse_body(converse_usage(1000, 100))))
    bedrock_client(bedrock).converse(modelId=sent, messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == priced_as
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(SONNET_PRICE, 1000, 100), rel=1e-9)


def test_model_id_of_an_application_profile_arn_is_kept():
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"
    assert model_id(arn) == arn
    assert model_id(None) == ""


def test_unknown_model_is_recorded_unpriced_never_zero(bedrock_only, otel, bedrock):
    bedrock_client(bedrock).converse(modelId="acme.private-model-v1:0", messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.UNPRICED] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 25
    assert [name for name in attrs if name.startswith("llmcost.cost.")] == []


def test_throttling_exception_is_throttled_and_reraised_unchanged(bedrock_only, otel, bedrock):
    bedrock.enqueue(BedrockReply(status=429))  # with x-amzn-ErrorType: ThrottlingException, as Bedrock sends it
    client = bedrock_client(bedrock)
    with pytest.raises(ClientError) as raised:
        client.converse(modelId=SONNET, messages=MESSAGES)

    assert type(raised.value) is client.exceptions.ThrottlingException
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert_not_raised_by_us(raised.value)
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ThrottlingException"
    assert span.attributes[semconv.THROTTLED] is True
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_throttled_attempt_retried_by_botocore_is_one_span_with_a_retry(bedrock_only, otel, bedrock, monkeypatch):
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _s: None)  # botocore's backoff
    bedrock.enqueue(BedrockReply(status=429), BedrockReply(body=converse_body(converse_usage(40, 10))))
    bedrock_client(bedrock, max_attempts=2).converse(modelId=SONNET, messages=MESSAGES)

    span = otel.only_span()
    attrs = span.attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 40
    assert span.status.status_code is StatusCode.UNSET
    assert len(bedrock.requests) == 2


# --- ConverseStream --------------------------------------------------------------------------------


@needs_converse_cache
def test_converse_stream_consumed_fully_is_one_span_with_usage(bedrock_only, otel, bedrock):
    bedrock.enqueue(BedrockReply(events=converse_stream_events(converse_usage(100, 50, read=2000, write=300))))
    response = bedrock_client(bedrock).converse_stream(modelId=SONNET, messages=MESSAGES)
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in response["stream"] if "contentBlockDelta" in e)

    assert text == REPLY_TEXT
    span = otel.only_span()
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2400
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2000
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.002775, rel=1e-9)
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert semconv.USAGE_ESTIMATED not in attrs
    assert span.status.status_code is StatusCode.UNSET


def test_converse_stream_closed_early_ends_span_once(bedrock_only, otel, bedrock):
    stream = bedrock_client(bedrock).converse_stream(modelId=SONNET, messages=MESSAGES)["stream"]
    next(iter(stream))
    assert otel.spans() == ()  # open while the stream may still be read
    stream.close()
    stream.close()

    span = otel.only_span()  # ended exactly once
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True


def test_converse_stream_abandoned_ends_span_once_when_collected(bedrock_only, otel, bedrock):
    import gc

    response = bedrock_client(bedrock).converse_stream(modelId=SONNET, messages=MESSAGES)
    next(iter(response["stream"]))
    del response
    gc.collect()

    otel.only_span()


def test_converse_stream_error_event_mid_stream_ends_span_once_and_reraises_unchanged(
    bedrock_only, instrument, otel, bedrock
):
    def broken() -> EventStreamError:
        bedrock.enqueue(
            BedrockReply(events=[*converse_stream_events()[:2], exception_event("throttlingException", "slow down")])
        )
        stream = bedrock_client(bedrock).converse_stream(modelId=SONNET, messages=MESSAGES)["stream"]
        with pytest.raises(EventStreamError) as raised:
            for _ in stream:
                pass
        return raised.value

    instrument(providers=("bedrock",), limiters=()).uninstrument()
    bare = broken()
    instrument(providers=("bedrock",), limiters=())
    error = broken()

    assert (type(error), error.args, error.response) == (type(bare), bare.args, bare.response)
    assert_not_raised_by_us(error)
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "EventStreamError"
    assert span.attributes[semconv.THROTTLED] is True  # the error event's code says so
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes  # a failed stream is not estimated


# --- InvokeModel -----------------------------------------------------------------------------------


def test_invoke_model_anthropic_body_is_read_and_given_back_intact(bedrock_only, otel, bedrock):
    body = _anthropic_body(100, 50, read=2000, write=300)
    bedrock.enqueue(BedrockReply(body=body))
    request = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hi"}],
    }
    response = bedrock_client(bedrock).invoke_model(modelId=SONNET, body=json.dumps(request))

    assert json.loads(response["body"].read()) == body  # the caller reads what Bedrock sent
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 256
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2400  # Anthropic's input_tokens excludes the cache
    assert attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 300
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.002775, rel=1e-9)


@pytest.mark.parametrize(
    ("model", "request_body", "reply_body", "headers", "tokens", "cost"),
    [
        (  # Titan: inputTextTokenCount and results[].tokenCount; 120 * 0.2 + 30 * 0.6 = 42 per million
            TITAN,
            {"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 64, "temperature": 0.1}},
            {
                "inputTextTokenCount": 120,
                "results": [{"tokenCount": 30, "outputText": "x", "completionReason": "FINISH"}],
            },
            {},
            (120, 30),
            42e-6,
        ),
        (  # Nova: Converse's usage shape; 1000 * 0.06 + 200 * 0.24 = 108 per million
            NOVA,
            {"messages": MESSAGES, "inferenceConfig": {"maxTokens": 64}},
            {
                "output": {"message": {"content": [{"text": "x"}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 1000, "outputTokens": 200, "totalTokens": 1200},
            },
            {},
            (1000, 200),
            108e-6,
        ),
        (  # Meta: prompt_token_count / generation_token_count; (500 + 100) * 0.22 = 132 per million
            LLAMA,
            {"prompt": "hi", "max_gen_len": 64},
            {"generation": "x", "prompt_token_count": 500, "generation_token_count": 100, "stop_reason": "stop"},
            {},
            (500, 100),
            132e-6,
        ),
        (  # Mistral's text body reports no usage: the token-count headers do; 300 * 0.15 + 50 * 0.2 = 55 per million
            MISTRAL,
            {"prompt": "hi", "max_tokens": 64},
            {"outputs": [{"text": "x", "stop_reason": "stop"}]},
            {"x-amzn-bedrock-input-token-count": "300", "x-amzn-bedrock-output-token-count": "50"},
            (300, 50),
            55e-6,
        ),
    ],
    ids=["titan", "nova", "meta", "mistral-headers"],
)
def test_invoke_model_reads_each_familys_usage(
    bedrock_only, otel, bedrock, model, request_body, reply_body, headers, tokens, cost
):
    bedrock.enqueue(BedrockReply(body=reply_body, headers=headers))
    response = bedrock_client(bedrock).invoke_model(modelId=model, body=json.dumps(request_body).encode())

    assert json.loads(response["body"].read()) == reply_body
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert (attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS], attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == tokens
    assert attrs[semconv.COST_TOTAL] == pytest.approx(cost, rel=1e-9)


def test_invoke_model_embeddings_are_an_embeddings_operation(bedrock_only, otel, bedrock):
    bedrock.enqueue(BedrockReply(body={"embedding": [0.1, 0.2], "inputTextTokenCount": 7}))
    bedrock_client(bedrock).invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "hi"}))

    span = otel.only_span()
    assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 7
    assert span.attributes[semconv.COST_TOTAL] > 0


# --- InvokeModelWithResponseStream -----------------------------------------------------------------


def _metrics(inputs: int, outputs: int) -> dict[str, Any]:
    return {
        "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": inputs,
            "outputTokenCount": outputs,
            "invocationLatency": 900,
            "firstByteLatency": 300,
        }
    }


def test_invoke_stream_anthropic_events_give_the_usage_with_cache(bedrock_only, otel, bedrock):
    start = _anthropic_body(100, 1, read=2000, write=300)
    start["content"], start["stop_reason"] = [], None
    events = [
        chunk_event({"type": "message_start", "message": start}),
        chunk_event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": REPLY_TEXT}}),
        chunk_event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 50}}),
        chunk_event({"type": "message_stop", **_metrics(100, 50)}),
    ]
    bedrock.enqueue(BedrockReply(events=events))
    response = bedrock_client(bedrock).invoke_model_with_response_stream(
        modelId=SONNET, body=json.dumps({"max_tokens": 256, "messages": [{"role": "user", "content": "hi"}]})
    )
    chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]

    assert [chunk["type"] for chunk in chunks] == [
        "message_start",
        "content_block_delta",
        "message_delta",
        "message_stop",
    ]
    span = otel.only_span()
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2400
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 50
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.002775, rel=1e-9)
    assert semconv.GEN_AI_RESPONSE_MODEL not in attrs  # priced by the Bedrock id asked for


def test_invoke_stream_titan_counts_from_the_invocation_metrics(bedrock_only, otel, bedrock):
    events = [
        chunk_event(
            {
                "outputText": "Cached tokens ",
                "index": 0,
                "totalOutputTextTokenCount": 3,
                "completionReason": None,
                "inputTextTokenCount": 120,
            }
        ),
        chunk_event(
            {
                "outputText": "cost less.",
                "index": 0,
                "totalOutputTextTokenCount": 30,
                "completionReason": "FINISH",
                **_metrics(120, 30),
            }
        ),
    ]
    bedrock.enqueue(BedrockReply(events=events))
    response = bedrock_client(bedrock).invoke_model_with_response_stream(
        modelId=TITAN, body=json.dumps({"inputText": "hi"})
    )
    for _ in response["body"]:
        pass

    attrs = otel.only_span().attributes
    assert (attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS], attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == (120, 30)
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("FINISH",)
    assert attrs[semconv.COST_TOTAL] == pytest.approx(42e-6, rel=1e-9)


def test_invoke_stream_closed_early_ends_span_once(bedrock_only, otel, bedrock):
    bedrock.enqueue(
        BedrockReply(
            events=[
                chunk_event({"generation": "a", "prompt_token_count": 9}),
                chunk_event({"generation": "b", **_metrics(9, 2)}),
            ]
        )
    )
    body = bedrock_client(bedrock).invoke_model_with_response_stream(modelId=LLAMA, body=json.dumps({"prompt": "hi"}))[
        "body"
    ]
    next(iter(body))
    body.close()

    span = otel.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 9  # Meta's first chunk counted the prompt


# --- what is not an LLM call, and uninstrument ------------------------------------------------------


def test_other_aws_calls_pass_untouched_with_no_span(bedrock_only, otel):
    s3 = boto3.session.Session(
        aws_access_key_id="AKIDFAKE", aws_secret_access_key="fake", region_name="us-east-1"
    ).client("s3")
    with Stubber(s3) as stub:
        stub.add_response("list_buckets", {"Buckets": [{"Name": "logs"}]})
        assert s3.list_buckets()["Buckets"][0]["Name"] == "logs"
    # A bedrock-runtime operation that is not an LLM call (where this botocore has one).
    runtime = boto3.session.Session(
        aws_access_key_id="AKIDFAKE", aws_secret_access_key="fake", region_name="us-east-1"
    ).client("bedrock-runtime")
    if "ApplyGuardrail" in runtime.meta.service_model.operation_names:
        units = runtime.meta.service_model.shape_for("GuardrailUsage").required_members
        with Stubber(runtime) as stub:
            stub.add_response(
                "apply_guardrail",
                {"usage": dict.fromkeys(units, 0), "action": "NONE", "outputs": [], "assessments": []},
            )
            runtime.apply_guardrail(guardrailIdentifier="g", guardrailVersion="1", source="INPUT", content=[])
    assert otel.spans() == ()


def test_stubbed_converse_is_instrumented_too(bedrock_only, otel):
    runtime = boto3.session.Session(
        aws_access_key_id="AKIDFAKE", aws_secret_access_key="fake", region_name="us-east-1"
    ).client("bedrock-runtime")
    with Stubber(runtime) as stub:
        stub.add_response("converse", converse_body(converse_usage(10, 5)))
        runtime.converse(modelId=SONNET, messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.SERVER_ADDRESS] == "bedrock-runtime.us-east-1.amazonaws.com"
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(SONNET_PRICE, 10, 5), rel=1e-9)


def test_uninstrument_restores_the_originals(instrument, otel, bedrock):
    instrument(providers=("bedrock",), limiters=()).uninstrument()
    make_call = vars(botocore.client.BaseClient)["_make_api_call"]
    needs_retry = vars(botocore.endpoint.Endpoint)["_needs_retry"]
    instrumentor = instrument(providers=("bedrock",), limiters=())
    assert ("botocore.client", "BaseClient._make_api_call") in instrumentor.patched
    assert vars(botocore.client.BaseClient)["_make_api_call"] is not make_call

    instrumentor.uninstrument()

    assert vars(botocore.client.BaseClient)["_make_api_call"] is make_call
    assert vars(botocore.endpoint.Endpoint)["_needs_retry"] is needs_retry
    bedrock_client(bedrock).converse(modelId=SONNET, messages=MESSAGES)
    assert otel.spans() == ()


class _BrokenBody:
    """A response body whose connection drops while it is read."""

    def read(self, *_args: Any) -> bytes:
        raise ConnectionResetError("connection reset by peer")

    def close(self) -> None:
        pass


def test_invoke_model_body_that_fails_to_read_fails_the_callers_read_not_ours(bedrock_only, otel):
    runtime = boto3.session.Session(
        aws_access_key_id="AKIDFAKE", aws_secret_access_key="fake", region_name="us-east-1"
    ).client("bedrock-runtime")
    with Stubber(runtime) as stub:
        stub.add_response("invoke_model", {"body": _BrokenBody(), "contentType": "application/json"})
        response = runtime.invoke_model(modelId=TITAN, body=json.dumps({"inputText": "hi"}))

    span = otel.only_span()  # ended, with what could be read: no usage
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    with pytest.raises(ConnectionResetError):
        response["body"].read()


# --- any shape --------------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "usage", "output", "stopReason", "body", "ResponseMetadata", "inputTokens", "outputTokens", "totalTokens",
        "cacheReadInputTokens", "cacheWriteInputTokens", "cacheDetails", "contentBlockDelta", "contentBlockStart",
        "messageStop", "metadata", "chunk", "bytes", "type", "message", "delta", "inputTextTokenCount", "results",
        "prompt_token_count", "generation_token_count", "amazon-bedrock-invocationMetrics", "outputs",
    ]
)  # fmt: skip
_SHAPES = st.recursive(
    json_values(min_int=-(2**63), max_int=2**64, max_leaves=4) | st.binary(max_size=20),
    lambda inner: st.dictionaries(_KEYS, inner, max_size=5) | st.lists(inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(shape=_SHAPES)
def test_any_response_or_event_shape_is_read_without_raising(shape):
    provider = BedrockProvider()
    record = ResponseRecord(output_parts=[], generated_parts=[], reasoning_parts=[])
    provider.read_response(record, shape)
    provider.read_chunk(record, shape)
    provider.read_chunk(record, {"chunk": {"bytes": json.dumps(shape, default=repr).encode()}})
    if record.usage is not None:
        assert min(record.usage.input_tokens, record.usage.output_tokens) >= 0
