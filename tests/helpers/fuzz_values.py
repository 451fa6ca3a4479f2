"""Hypothesis strategies and settings for the fuzz tests: arbitrary JSON-like values a provider might send."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The per-provider fuzz tests: 40 shapes each, through function-scoped fixtures (each
# example clears the shared telemetry and scripts the shared fake provider itself).
PROVIDER_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Usage fields of OpenAI's Chat Completions and Responses APIs.
OPENAI_USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "input_tokens",
    "output_tokens",
)


def json_values(
    *, min_int: int = -(2**40), max_int: int = 2**70, text_size: int = 10, max_leaves: int = 8
) -> st.SearchStrategy:
    """Scalars (None, bools, ints, floats incl. NaN/inf, short text) nested in lists and dicts."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(min_int, max_int), st.floats(), st.text(max_size=text_size)
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        max_leaves=max_leaves,
    )
