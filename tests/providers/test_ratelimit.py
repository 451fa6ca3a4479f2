from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_llmcost import semconv
from otel_llmcost.providers.anthropic import HEADERS as ANTHROPIC_HEADERS
from otel_llmcost.providers.headers import (
    parse_go_duration,
    parse_retry_after,
    parse_rfc3339_delta,
    ratelimit_values,
)
from otel_llmcost.providers.openai import HEADERS as OPENAI_HEADERS


def ratelimit_attributes(headers, specs):  # type: ignore[no-untyped-def]
    return ratelimit_values(headers.get, specs)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("1.5s", 1.5), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0s", 0.0), ("7", 7.0)],
)
def test_go_durations(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "5x", "1m-3s", "s", None, "9" * 100])
def test_bad_go_durations_are_none(text):
    assert parse_go_duration(text) is None


def test_rfc3339_reset_is_seconds_from_now():
    assert parse_rfc3339_delta("2026-01-01T00:00:30Z", now=1767225600.0) == pytest.approx(30.0)
    assert parse_rfc3339_delta("2020-01-01T00:00:00Z") == 0.0
    assert parse_rfc3339_delta("yesterday") is None


def test_retry_after_forms():
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after(None) is None


def test_anthropic_headers_map_to_attributes():
    attrs = ratelimit_attributes(
        {"anthropic-ratelimit-input-tokens-remaining": "1200", "anthropic-ratelimit-requests-limit": "50"},
        ANTHROPIC_HEADERS,
    )
    assert attrs == {
        semconv.ratelimit_attribute("input_tokens", "remaining"): 1200,
        semconv.ratelimit_attribute("requests", "limit"): 50,
    }


@given(
    st.dictionaries(
        st.sampled_from([h for h, _, _ in OPENAI_HEADERS + ANTHROPIC_HEADERS] + ["retry-after"]), st.text(max_size=80)
    )
)
def test_header_parsers_never_raise(headers):
    ratelimit_attributes(headers, OPENAI_HEADERS)
    ratelimit_attributes(headers, ANTHROPIC_HEADERS)
    parse_retry_after(headers)
