"""Prompt anatomy through each real SDK: the components add up to the input the provider
bills, each in its share of the prompt that was sent.

Regression: the Anthropic ``system=`` prompt used to be counted twice (once as
``system=``, once as the system message the provider module made of it), which also
over-sized every budget reservation of an Anthropic call.
"""

from __future__ import annotations

import pytest

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import anthropic_client, genai_client, openai_client
from otel_llmcost.instrumentation.anatomy import Anatomy
from otel_llmcost.providers.base import PromptView

SYSTEM = (
    "You are the billing assistant of Acme Cloud. Answer in two sentences at most, quote the invoice "
    "number the customer gives, and never promise a refund: refer refund requests to the billing team, "
    "who decide within five working days. If the question is not about billing, say so politely."
)
HISTORY = [
    ("user", "Hello, I have a question about my latest invoice from last month."),
    ("assistant", "Of course. Which invoice number is it, and what looks wrong to you?"),
    ("user", "It is invoice 2024-118; I was charged twice for the same storage add-on."),
    ("assistant", "I see two charges for the storage add-on on invoice 2024-118. Did you add it twice?"),
]
LATEST = "No, I added it once on the third. Can you check why it shows up twice on the invoice?"
COMPONENTS = [semconv.PROMPT_COMPONENT_PREFIX + name for name in semconv.PROMPT_COMPONENTS]


def _openai(fake):  # type: ignore[no-untyped-def]
    messages = [{"role": "system", "content": SYSTEM}]
    messages += [{"role": role, "content": text} for role, text in HISTORY]
    messages.append({"role": "user", "content": LATEST})
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=messages)
    return messages


def _anthropic(fake):  # type: ignore[no-untyped-def]
    messages = [{"role": role, "content": text} for role, text in HISTORY] + [{"role": "user", "content": LATEST}]
    anthropic_client(fake).messages.create(
        model="claude-sonnet-4-20250514", max_tokens=100, system=SYSTEM, messages=messages
    )
    return [SYSTEM, messages]


def _gemini(fake):  # type: ignore[no-untyped-def]
    from google.genai import types

    roles = {"user": "user", "assistant": "model"}
    contents = [types.Content(role=roles[role], parts=[types.Part(text=text)]) for role, text in HISTORY]
    contents.append(types.Content(role="user", parts=[types.Part(text=LATEST)]))
    config = types.GenerateContentConfig(system_instruction=SYSTEM)
    genai_client(fake).models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
    return [SYSTEM, [c.model_dump(mode="json", exclude_none=True) for c in contents]]


CALLS = {"openai": _openai, "anthropic": _anthropic, "google_genai": _gemini}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-20250514", "google_genai": "gemini-2.5-flash"}


def _expected_shares(model: str) -> list[float]:
    """Each component's share of the prompt, counted on the plain texts the test sent."""
    messages = [{"role": role, "content": text} for role, text in HISTORY] + [{"role": "user", "content": LATEST}]
    parts = Anatomy().breakdown(PromptView(system=SYSTEM, messages=messages), model)
    return [part / sum(parts) for part in parts]


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_components_add_up_to_the_billed_input(provider, instrument, otel, fake):
    CALLS[provider](fake)
    attrs = otel.only_span().attributes
    assert sum(attrs[name] for name in COMPONENTS) == attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS]
    assert 0 < attrs[semconv.PROMPT_PREFIX_TOKENS] < attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS]


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_each_component_keeps_its_share_and_the_system_prompt_counts_once(provider, instrument, otel, fake):
    CALLS[provider](fake)
    attrs = otel.only_span().attributes
    total = sum(attrs[name] for name in COMPONENTS)
    # Counted twice, the system prompt's share would rise from ~0.35 to ~0.5.
    for name, expected in zip(COMPONENTS, _expected_shares(MODELS[provider]), strict=True):
        assert attrs[name] / total == pytest.approx(expected, abs=0.05), name
