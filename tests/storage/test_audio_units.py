"""Audio calls billed in units other than tokens, stored (issue 23; 026_audio_units.sql):
whisper-1's audio seconds and tts-1's characters reach llm_calls, `prices sync` writes their
unit prices to llm_unit_prices, and the repricing views price them as the app did, so such a
call is neither listed as unpriced nor as a price change. A speech call on a model with no
per-character price stays unpriced, never $0."""

from __future__ import annotations

import openai
import pytest

from otel_llmcost.demo.fakes import Reply, openai_client
from otel_llmcost.exporter.rows import span_to_row
from otel_llmcost.pricing import Pricer
from otel_llmcost.pricing import catalogue as price_catalogue
from otel_llmcost.reporting import reports
from tests.helpers.chdb import DATABASE, insert_spans, q
from tests.helpers.span_rows import call_row, now_ns

AUDIO = ("a.mp3", b"fake audio", "audio/mpeg")
# genai-prices: whisper-1 $0.36 per hour of input audio; tts-1 $15 and tts-1-hd $30 per
# million input characters. Hand-computed:
WHISPER_90_S = 90 / 3600 * 0.36  # $0.009
TTS_1_1000 = 1000 * 15 / 1e6  # $0.015
TTS_1_HD_1000 = 1000 * 30 / 1e6  # $0.030


@pytest.fixture
def audio_calls(instrument, otel, fake, chdb_client):  # type: ignore[no-untyped-def]
    """Five calls through the real SDK, their spans exported into chdb, then a price sync."""
    instrument(providers=("openai",), limiters=())
    client = openai_client(fake, max_retries=0)
    fake.enqueue(Reply(usage={"type": "duration", "seconds": 90}))
    client.audio.transcriptions.create(model="whisper-1", file=AUDIO)
    client.audio.speech.create(model="tts-1", voice="alloy", input="x" * 1000)
    client.audio.speech.create(model="tts-1-hd", voice="alloy", input="x" * 1000)
    client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="x" * 1000)  # priced by tokens only
    fake.enqueue(Reply(status=400, body={"error": {"message": "bad voice", "type": "invalid_request_error"}}))
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="nobody", input="x" * 1000)
    insert_spans(chdb_client, [span_to_row(span) for span in otel.spans()])
    price_catalogue.sync(chdb_client, Pricer(overrides_path=""), database=DATABASE)
    return chdb_client


def test_units_reach_llm_calls_with_the_cost_the_app_recorded(audio_calls):
    rows = q(
        audio_calls,
        f"SELECT RequestModel, StatusCode, AudioSeconds, InputCharacters, InputTokens, Unpriced, CostTotal"
        f" FROM {DATABASE}.llm_calls ORDER BY Timestamp",
    )
    got = [(m, s, a, c, t, u, pytest.approx(cost, rel=1e-12)) for m, s, a, c, t, u, cost in rows]
    assert got == [
        ("whisper-1", "Unset", 90.0, 0, 0, 0, WHISPER_90_S),
        ("tts-1", "Unset", 0.0, 1000, 0, 0, TTS_1_1000),
        ("tts-1-hd", "Unset", 0.0, 1000, 0, 0, TTS_1_HD_1000),
        ("gpt-4o-mini-tts", "Unset", 0.0, 1000, 0, 1, 0.0),
        ("tts-1", "Error", 0.0, 1000, 0, 0, 0.0),  # the characters were sent; nothing was billed
    ]


def test_the_catalogue_prices_them_as_the_app_did(audio_calls):
    rows = q(
        audio_calls,
        f"SELECT RequestModel, CataloguePriced, CatalogueCost, CatalogueModel"
        f" FROM {DATABASE}.v_calls_repriced(target_provider = '', target_model = '') ORDER BY Timestamp",
    )
    got = [(m, p, pytest.approx(c, rel=1e-9), cm) for m, p, c, cm in rows]
    assert got == [
        ("whisper-1", 1, WHISPER_90_S, "whisper-1"),
        ("tts-1", 1, TTS_1_1000, "tts-1"),
        ("tts-1-hd", 1, TTS_1_HD_1000, "tts-1-hd"),
        ("gpt-4o-mini-tts", 0, 0.0, "gpt-4o-mini-tts"),  # a token price, no per-character one: not $0
        ("tts-1", 1, 0.0, "tts-1"),  # failed: no characters billed
    ]
    assert q(
        audio_calls,
        f"SELECT Provider, Model, InputAudioHours, InputMchars FROM {DATABASE}.llm_unit_prices"
        " WHERE Model IN ('whisper-1', 'tts-1', 'tts-1-hd') ORDER BY Model",
    ) == [("openai", "tts-1", None, 15.0), ("openai", "tts-1-hd", None, 30.0), ("openai", "whisper-1", 0.36, None)]
    # Token views never see them: no llm_prices row (a free token model to routing or caching).
    assert q(
        audio_calls, f"SELECT count() FROM {DATABASE}.llm_prices WHERE Model IN ('whisper-1', 'tts-1', 'tts-1-hd')"
    ) == [(0,)]


def test_priced_audio_calls_are_neither_unpriced_nor_repriced(audio_calls):
    unpriced = q(audio_calls, f"SELECT RequestModel, Calls FROM {DATABASE}.v_unpriced_calls")
    assert unpriced == [("gpt-4o-mini-tts", 1)]
    report = reports.run(audio_calls, "unpriced", since_hours=24)
    assert [row[report.columns.index("RequestModel")] for row in report.rows] == ["gpt-4o-mini-tts"]

    daily = q(
        audio_calls,
        f"SELECT RequestModel, RepricedCalls, NewlyPricedCalls, StillUnpricedCalls, RecordedCostUsd, CatalogueCostUsd"
        f" FROM {DATABASE}.v_cost_repriced_daily ORDER BY RequestModel",
    )
    got = {m: (r, n, s, pytest.approx(rec, rel=1e-9), pytest.approx(cat, rel=1e-9)) for m, r, n, s, rec, cat in daily}
    assert got == {
        "gpt-4o-mini-tts": (0, 0, 1, 0.0, 0.0),
        "tts-1": (0, 0, 0, TTS_1_1000, TTS_1_1000),
        "tts-1-hd": (0, 0, 0, TTS_1_HD_1000, TTS_1_HD_1000),
        "whisper-1": (0, 0, 0, WHISPER_90_S, WHISPER_90_S),
    }


@pytest.mark.chdb(ttl_days=3650)
def test_audio_recorded_unpriced_by_an_older_release_is_priced_by_the_catalogue(chdb_client):
    # Before issue 23 whisper-1 and tts-1 calls were recorded unpriced with their units; a
    # text-format transcription recorded nothing at all and has nothing to price.
    ts = now_ns()
    recorded = {"gen_ai_operation_name": "transcription", "price_provider": "openai", "unpriced": "true"}
    insert_spans(
        chdb_client,
        [
            call_row("old-audio", ts, gen_ai_request_model="whisper-1", usage_audio_seconds=90, **recorded),
            call_row("old-audio", ts + 1, gen_ai_request_model="tts-1", usage_input_characters=1000, **recorded),
            call_row("old-audio", ts + 2, gen_ai_request_model="whisper-1", **recorded),
        ],
    )
    price_catalogue.sync(chdb_client, Pricer(overrides_path=""), database=DATABASE)
    rows = q(
        chdb_client,
        f"SELECT RequestModel, CataloguePriced, CatalogueCost"
        f" FROM {DATABASE}.v_calls_repriced(target_provider = '', target_model = '') ORDER BY Timestamp",
    )
    assert [(m, p, pytest.approx(c, rel=1e-9)) for m, p, c in rows] == [
        ("whisper-1", 1, WHISPER_90_S),
        ("tts-1", 1, TTS_1_1000),
        ("whisper-1", 0, 0.0),
    ]
    (newly,) = q(
        chdb_client,
        f"SELECT sum(NewlyPricedCalls), sum(NewlyPricedCostUsd), sum(StillUnpricedCalls)"
        f" FROM {DATABASE}.v_cost_repriced_daily",
    )
    assert newly == (2, pytest.approx(WHISPER_90_S + TTS_1_1000, rel=1e-9), 1)


def test_a_what_if_prices_characters_on_another_speech_model(audio_calls):
    rows = q(
        audio_calls,
        f"SELECT RequestModel, CataloguePriced, CatalogueCost"
        f" FROM {DATABASE}.v_calls_repriced(target_provider = 'openai', target_model = 'tts-1-hd')"
        f" WHERE RequestModel = 'tts-1' ORDER BY Timestamp",
    )
    # 1,000 characters at tts-1-hd's $30 per million; the failed call billed none.
    assert [(m, p, pytest.approx(c, rel=1e-9)) for m, p, c in rows] == [("tts-1", 1, TTS_1_HD_1000), ("tts-1", 1, 0.0)]
    # `prices whatif openai/tts-1-hd` accepts a target priced by characters only.
    assert price_catalogue.in_catalogue(audio_calls, "openai", "tts-1-hd", database=DATABASE)
    assert not price_catalogue.in_catalogue(audio_calls, "openai", "tts-9", database=DATABASE)
