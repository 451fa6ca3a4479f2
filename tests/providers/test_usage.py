"""Token normalization: one meaning of input/output tokens for every provider."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from otel_llmcost.pricing import Usage
from otel_llmcost.providers.anthropic import parse_usage as anthropic_usage_of
from otel_llmcost.providers.google_genai import parse_usage as gemini_usage_of
from otel_llmcost.providers.openai import parse_usage as openai_usage_of


def test_openai_prompt_tokens_include_cached():
    usage = openai_usage_of(
        {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1920},
            "completion_tokens_details": {"reasoning_tokens": 192},
        }
    )
    assert (usage.input_tokens, usage.cache_read_tokens, usage.uncached_input_tokens) == (2006, 1920, 86)
    assert (usage.output_tokens, usage.reasoning_tokens) == (300, 192)


def test_anthropic_input_tokens_exclude_cache_reads_and_writes():
    usage = anthropic_usage_of(
        {
            "input_tokens": 50,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 3000,
            "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
            "output_tokens": 77,
        }
    )
    assert usage.input_tokens == 4050
    assert usage.uncached_input_tokens == 50
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens, usage.cache_write_5m_tokens) == (3000, 2000, 1000)
    assert usage.cache_write_ttl == "mixed"


def test_gemini_prompt_includes_cached_and_thoughts_are_output():
    usage = gemini_usage_of(
        {
            "prompt_token_count": 5000,
            "cached_content_token_count": 4000,
            "candidates_token_count": 100,
            "thoughts_token_count": 900,
        }
    )
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens, usage.reasoning_tokens) == (
        5000,
        4000,
        1000,
        900,
    )


junk = st.one_of(
    st.none(), st.integers(-5, 10**7), st.floats(), st.text(max_size=5), st.booleans(), st.lists(st.integers())
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "prompt_tokens",
                "input_tokens",
                "completion_tokens",
                "output_tokens",
                "prompt_tokens_details",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
                "cache_creation",
                "prompt_token_count",
                "cached_content_token_count",
                "thoughts_token_count",
            ]
        ),
        junk,
    )
)
def test_normalizers_never_raise_and_never_go_negative(payload):
    for rule in (openai_usage_of, anthropic_usage_of, gemini_usage_of):
        usage = rule(payload)
        if usage is not None:
            assert usage.uncached_input_tokens >= 0
            assert usage.input_tokens >= usage.cache_read_tokens


def test_usage_of_separately_billed_requests_adds_up():
    first = Usage(input_tokens=100, output_tokens=10, cache_read_tokens=40, reasoning_tokens=2)
    second = Usage(input_tokens=150, output_tokens=5, cache_write_tokens=30, cache_write_1h_tokens=30, estimated=True)
    total = first.plus(second)
    assert (total.input_tokens, total.output_tokens, total.cache_read_tokens) == (250, 15, 40)
    assert (total.cache_write_tokens, total.cache_write_1h_tokens, total.reasoning_tokens) == (30, 30, 2)
    assert total.estimated is True
