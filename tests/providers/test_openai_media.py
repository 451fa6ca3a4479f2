"""OpenAI images and audio through the real openai SDK against the fake provider: one span per
call, priced from the tokens the response reports (GPT Image, gpt-4o transcribe models), and
unpriced, never $0, where the response reports none or reports another unit (DALL-E, whisper-1's
seconds, speech) (issue 23)."""

from __future__ import annotations

import asyncio

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, openai_client
from otel_llmcost.providers import openai_media
from otel_llmcost.providers.base import ResponseRecord
from otel_llmcost.providers.openai import OpenAIProvider
from tests.helpers.fuzz_values import PROVIDER_FUZZ, json_values

# genai-prices, USD per million tokens:
#   gpt-image-1: text input 5, image input 10, output 40;
#   gpt-4o-transcribe: text input 2.5, audio input 6, output 10;
#   gpt-4o-mini-transcribe: audio input 3, output 5.
# whisper-1 ($0.36 per audio hour) and tts-1 ($15 per million characters) are priced in units
# our token formula does not apply; DALL-E has no price at all.
AUDIO = ("a.mp3", b"fake audio", "audio/mpeg")
_VALUES = json_values(max_int=2**40, text_size=8)


@pytest.fixture
def openai_only(instrument, otel):  # type: ignore[no-untyped-def]
    instrument(providers=("openai",), limiters=())
    return otel


def assert_unpriced(attrs) -> None:  # type: ignore[no-untyped-def]
    assert attrs[semconv.UNPRICED] is True
    assert semconv.COST_TOTAL not in attrs
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in attrs  # nothing reported: no made-up zeros


# --- images --------------------------------------------------------------------------------


def test_gpt_image_generation_is_priced_from_its_token_usage(openai_only, fake):
    fake.enqueue(
        Reply(
            usage={
                "input_tokens": 50,
                "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
                "output_tokens": 4160,
                "total_tokens": 4210,
            }
        )
    )
    openai_client(fake).images.generate(model="gpt-image-1", prompt="a lighthouse at dusk", quality="high")

    span = openai_only.only_span()
    assert span.name == "image_generation gpt-image-1"
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "image_generation"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 50
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4160
    assert attrs[semconv.USAGE_IMAGES] == 1
    # 50 * 5 / 1e6 + 4160 * 40 / 1e6 = 0.00025 + 0.1664 = $0.16665
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.16665)
    assert attrs[semconv.PRICE_MODEL] == "gpt-image-1"
    assert semconv.UNPRICED not in attrs
    # A prompt is no conversation: no anatomy.
    assert not [name for name in attrs if name.startswith(semconv.PROMPT_COMPONENT_PREFIX)]


def test_gpt_image_edit_prices_input_image_tokens_apart_async(openai_only, fake):
    fake.enqueue(
        Reply(
            usage={
                "input_tokens": 300,
                "input_tokens_details": {"text_tokens": 20, "image_tokens": 280},
                "output_tokens": 1056,
                "total_tokens": 1356,
            }
        )
    )
    client = openai_client(fake, is_async=True)
    asyncio.run(
        client.images.edit(model="gpt-image-1", image=("in.png", b"\x89PNG fake", "image/png"), prompt="add a hat")
    )

    attrs = openai_only.only_span().attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "image_edit"
    assert attrs[semconv.USAGE_INPUT_IMAGE_TOKENS] == 280
    # 20 * 5 + 280 * 10 + 1056 * 40 = 100 + 2800 + 42240 -> $0.04514
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.04514)


def test_image_stream_is_priced_from_its_completed_event(openai_only, fake):
    events = list(openai_client(fake).images.generate(model="gpt-image-1", prompt="a cat", quality="low", stream=True))

    assert [event.type for event in events] == ["image_generation.partial_image", "image_generation.completed"]
    attrs = openai_only.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.USAGE_IMAGES] == 1
    tokens_in = attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS]
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 272
    assert attrs[semconv.COST_TOTAL] == pytest.approx((tokens_in * 5 + 272 * 40) / 1e6)


def test_dall_e_image_is_unpriced_never_free(openai_only, fake):
    response = openai_client(fake).images.generate(model="dall-e-3", prompt="a cat", n=1)

    assert response.usage is None
    attrs = openai_only.only_span().attributes
    assert_unpriced(attrs)
    assert attrs[semconv.USAGE_IMAGES] == 1
    assert attrs[semconv.PRICE_PROVIDER] == "openai"
    unpriced = openai_only.metrics()[semconv.METRIC_UNPRICED_CALLS]
    assert sum(point.value for point in unpriced) == 1


def test_failed_image_call_is_an_error_not_unpriced(openai_only, fake):
    fake.enqueue(Reply(status=400, body={"error": {"message": "bad size", "type": "invalid_request_error"}}))
    with pytest.raises(openai.BadRequestError):
        openai_client(fake, max_retries=0).images.generate(model="gpt-image-1", prompt="a cat", size="1x1")

    attrs = openai_only.only_span().attributes
    assert attrs[semconv.ERROR_TYPE] == "BadRequestError"
    assert semconv.UNPRICED not in attrs


# --- audio ---------------------------------------------------------------------------------


def test_gpt_4o_transcription_prices_audio_tokens(openai_only, fake):
    fake.enqueue(
        Reply(
            usage={
                "type": "tokens",
                "input_tokens": 1000,
                "input_token_details": {"text_tokens": 40, "audio_tokens": 960},
                "output_tokens": 200,
                "total_tokens": 1200,
            }
        )
    )
    openai_client(fake).audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, prompt="names: Ada")

    span = openai_only.only_span()
    assert span.name == "transcription gpt-4o-transcribe"
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1000
    assert attrs[semconv.USAGE_INPUT_AUDIO_TOKENS] == 960
    # 40 * 2.5 + 960 * 6 + 200 * 10 = 100 + 5760 + 2000 -> $0.00786
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.00786)


def test_transcription_async_and_streamed_are_priced(openai_only, fake):
    async def transcribe() -> None:
        await openai_client(fake, is_async=True).audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO)

    asyncio.run(transcribe())
    # the fake: 120 audio tokens in, 7 out -> 120 * 6 + 7 * 10 = $0.00079
    assert openai_only.only_span().attributes[semconv.COST_TOTAL] == pytest.approx(0.00079)
    openai_only.clear()

    stream = openai_client(fake).audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=AUDIO, stream=True)
    text = "".join(event.delta for event in stream if event.type == "transcript.text.delta")

    assert text == fake.reply_text
    attrs = openai_only.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    # 120 * 3 + 7 * 5 = $0.000395
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.000395)


def test_whisper_duration_is_recorded_and_unpriced(openai_only, fake):
    response = openai_client(fake).audio.transcriptions.create(model="whisper-1", file=AUDIO)

    assert response.usage.seconds == 12.5
    attrs = openai_only.only_span().attributes
    assert attrs[semconv.USAGE_AUDIO_SECONDS] == 12.5
    assert_unpriced(attrs)


def test_text_format_transcription_reports_nothing_so_is_unpriced(openai_only, fake):
    text = openai_client(fake).audio.transcriptions.create(
        model="gpt-4o-transcribe", file=AUDIO, response_format="text"
    )

    assert text == fake.reply_text
    assert_unpriced(openai_only.only_span().attributes)


def test_translation_is_one_unpriced_span(openai_only, fake):
    openai_client(fake).audio.translations.create(model="whisper-1", file=AUDIO)

    attrs = openai_only.only_span().attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "translation"
    assert_unpriced(attrs)


def test_speech_records_its_characters_and_is_unpriced_sync_and_async(openai_only, fake):
    audio = openai_client(fake).audio.speech.create(model="tts-1", voice="alloy", input="Hello, world")

    assert audio.content.startswith(b"ID3")
    span = openai_only.only_span()
    assert span.name == "speech tts-1"
    assert span.attributes[semconv.USAGE_INPUT_CHARACTERS] == 12
    assert_unpriced(span.attributes)
    openai_only.clear()

    async def speak() -> None:
        await openai_client(fake, is_async=True).audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="Hi")

    asyncio.run(speak())
    assert_unpriced(openai_only.only_span().attributes)


def test_streamed_speech_is_one_unpriced_span(openai_only, fake):
    client = openai_client(fake)
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="Hi") as response:
        body = b"".join(response.iter_bytes())

    assert body.startswith(b"ID3")
    assert_unpriced(openai_only.only_span().attributes)


# --- any shape -----------------------------------------------------------------------------

_MEDIA_USAGE_KEYS = st.sampled_from(
    ["type", "input_tokens", "output_tokens", "seconds", "input_token_details", "input_tokens_details"]
)
_MEDIA_EVENTS = st.sampled_from(
    ["image_generation.completed", "image_edit.completed", "transcript.text.done", "transcript.text.delta"]
)


@PROVIDER_FUZZ
@given(
    operation=st.sampled_from(sorted(openai_media.OPERATION_KINDS)),
    usage=st.one_of(_VALUES, st.dictionaries(_MEDIA_USAGE_KEYS, _VALUES, max_size=4)),
    data=_VALUES,
    event_type=_MEDIA_EVENTS,
)
def test_any_image_or_audio_response_shape_is_survived(operation, usage, data, event_type):
    provider = OpenAIProvider()
    record = ResponseRecord(operation=operation, output_parts=[])
    provider.read_response(record, {"usage": usage, "data": data, "text": data})
    provider.read_chunk(record, {"type": event_type, "usage": usage, "delta": data})
    assert record.usage is None or record.usage.input_tokens >= record.usage.input_audio_tokens
