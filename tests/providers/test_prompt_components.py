"""Prompt anatomy through each real SDK: the components add up to no more than the prompt
that was sent, and to about what the provider bills as input (the fake provider counts
four characters a token, as the providers' own rule of thumb does).

Regression: the Anthropic ``system=`` prompt used to be counted twice (once as
``system=``, once as the system message the provider module made of it), which also
over-sized every budget reservation of an Anthropic call.
"""

from __future__ import annotations

import json

import pytest

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import anthropic_client, genai_client, openai_client
from otel_llmcost.instrumentation import tokens

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


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_components_add_up_to_no_more_than_the_prompt_sent(provider, instrument, otel, fake):
    sent = CALLS[provider](fake)
    attrs = otel.only_span().attributes
    components = sum(attrs[name] for name in COMPONENTS)
    # Everything the request sent as prompt, as JSON: keys and punctuation make it an
    # upper bound of the text the components count.
    upper = tokens.count_text(json.dumps(sent), "gpt-4o")
    assert 0 < components <= upper, (components, upper)
    assert attrs[semconv.PROMPT_COMPONENT_SYSTEM] <= tokens.count_text(SYSTEM, "gpt-4o") + 10
    assert attrs[semconv.PROMPT_PREFIX_TOKENS] < components


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_components_are_within_a_fifth_of_the_billed_input(provider, instrument, otel, fake):
    CALLS[provider](fake)
    attrs = otel.only_span().attributes
    components = sum(attrs[name] for name in COMPONENTS)
    billed = attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS]
    assert abs(components - billed) <= 0.2 * billed, (components, billed)
