"""Prefix stability: the prefix's token count on the span, provider minimum cache sizes,
the stability views on chdb, and the one-line verdict per endpoint."""

from __future__ import annotations

import json

import pytest

from otel_llmcost import semconv as sc
from otel_llmcost.demo.fakes import openai_client
from otel_llmcost.instrumentation import tokens
from otel_llmcost.instrumentation.anatomy import Anatomy
from otel_llmcost.providers.base import PromptView
from otel_llmcost.reporting import reports
from otel_llmcost.reporting.prefix_verdict import explain
from tests.helpers.chdb import insert_spans, q
from tests.helpers.span_rows import HOUR_NS, call_row, now_ns

SYSTEM = "You are the ACME returns assistant. Follow the policy below exactly. " * 20
TOOLS = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Where is my order?"},
    {"role": "assistant", "content": "Which order id?"},
    {"role": "user", "content": "Order 42, please."},
]
MODEL = "gpt-4o-mini"


def test_prefix_tokens_are_everything_before_the_last_message():
    parts, prefix = Anatomy(counter="tiktoken").measure(PromptView(messages=MESSAGES, tools=TOOLS), MODEL)
    expected = tokens.count_messages(MESSAGES[:-1], MODEL) - tokens.TOKENS_REPLY_PRIMER
    expected += tokens.count_text(json.dumps(TOOLS), MODEL)
    assert prefix == expected
    assert prefix == sum(parts) - parts[4]  # all but the latest component


def test_span_carries_the_prefix_tokens(instrument, otel, fake):
    openai_client(fake).chat.completions.create(model=MODEL, messages=MESSAGES)
    attrs = otel.only_span().attributes
    parts, prefix = Anatomy().measure(PromptView(messages=MESSAGES), MODEL)
    # The local count, scaled to the input the provider billed (as every component is).
    assert attrs[sc.PROMPT_PREFIX_TOKENS] == round(prefix * attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] / sum(parts))
    assert attrs[sc.PROMPT_PREFIX_HASH]


def test_single_message_has_no_prefix_tokens(instrument, otel, fake):
    openai_client(fake).chat.completions.create(model=MODEL, messages=MESSAGES[-1:])
    attrs = otel.only_span().attributes
    assert sc.PROMPT_PREFIX_TOKENS not in attrs and sc.PROMPT_PREFIX_HASH not in attrs


# --- minimum cache sizes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "minimum"),
    [
        ("openai", "gpt-4o-2024-08-06", 1024),
        ("azure.ai.openai", "gpt-4.1-mini", 1024),
        ("anthropic", "claude-sonnet-4-5-20250929", 1024),
        ("anthropic", "claude-3-7-sonnet-20250219", 1024),
        ("anthropic", "claude-3-5-haiku-20241022", 2048),
        ("anthropic", "claude-sonnet-4-6", 2048),
        ("anthropic", "claude-opus-4-5-20251101", 4096),
        ("anthropic", "claude-haiku-4-5", 4096),
        ("gcp.gemini", "gemini-2.5-flash", 1024),
        ("gcp.gemini", "gemini-2.5-pro", 4096),
        ("deepseek", "deepseek-chat", None),
    ],
)
def test_minimum_cache_size_per_provider_and_model(chdb_module_client, provider, model, minimum):
    insert_spans(
        chdb_module_client,
        [call_row("min-tokens", now_ns(), gen_ai_provider_name=provider, gen_ai_request_model=model)],
    )
    got = q(
        chdb_module_client,
        "SELECT MinCacheTokens FROM otel.v_cache_min_tokens WHERE Provider = {p:String} AND RequestModel = {m:String}",
        p=provider,
        m=model,
    )
    assert got == [(minimum,)]


# --- stability views and the report ------------------------------------------------------------


STABLE = {"prompt_prefix_hash": "p-stable", "prompt_prefix_tokens": 2000, "gen_ai_usage_input_tokens": 2500}
HIT = {"gen_ai_usage_cache_read_input_tokens": 2000, "cost_savings": 0.01}
SONNET = ("anthropic", "claude-sonnet-4-5")


def _calls(svc: str, hour_ns: int, endpoint: str, model: tuple[str, str], n: int, **attrs) -> list:
    provider, name = model
    return [
        call_row(
            svc,
            hour_ns + i * 10**9,
            endpoint=endpoint,
            gen_ai_provider_name=provider,
            gen_ai_request_model=name,
            **attrs,
        )
        for i in range(n)
    ]


def _prefix(name: str, tokens_: int | None, input_tokens: int) -> dict:
    attrs = {"prompt_prefix_hash": name, "gen_ai_usage_input_tokens": input_tokens}
    if tokens_ is not None:
        attrs["prompt_prefix_tokens"] = tokens_
    return attrs


@pytest.fixture(scope="module")
def stability(chdb_module_client):
    svc = "prefix-stability"
    h1 = (now_ns() // HOUR_NS) * HOUR_NS - HOUR_NS  # the last full hour
    h2 = h1 - HOUR_NS
    gpt4o = ("openai", "gpt-4o")
    # /stable: one 2000-token prefix, 9 of 10 calls read it from cache.
    rows = _calls(svc, h1, "/stable", gpt4o, 1, **STABLE) + _calls(svc, h1, "/stable", gpt4o, 9, **STABLE, **HIT)
    # /unstable: a new prefix per call, 12 in one hour and 6 in the hour before.
    for i, hour in enumerate([h1] * 12 + [h2] * 6):
        rows += _calls(svc, hour + i, "/unstable", gpt4o, 1, **_prefix(f"p-new-{i}", 1500, 1600))
    haiku = ("anthropic", "claude-3-5-haiku-20241022")
    rows += _calls(svc, h1, "/short", haiku, 5, **_prefix("p-short", 1500, 1600))
    rows += _calls(svc, h1, "/noprefix", ("openai", "gpt-4o-mini"), 3, gen_ai_usage_input_tokens=40)
    rows += _calls(svc, h1, "/unmarked", SONNET, 5, **_prefix("p-unmarked", 3000, 3100))
    costly = {"gen_ai_usage_cache_read_input_tokens": 300, "cost_savings": -0.02}
    rows += _calls(svc, h1, "/costly", SONNET, 4, **_prefix("p-costly", 3000, 3100), **costly)
    rows += _calls(svc, h1, "/unknown-length", gpt4o, 4, **_prefix("p-unknown", None, 3100))
    insert_spans(chdb_module_client, rows)
    rep = reports.run(chdb_module_client, "prefix_stability", since_hours=24)
    return {r[1]: dict(zip(rep.columns, r, strict=True)) for r in rep.rows if r[0] == svc}


def test_hourly_view_counts_distinct_prefixes_and_top_share(chdb_module_client, stability):
    got = q(
        chdb_module_client,
        "SELECT Endpoint, Calls, DistinctPrefixes, TopPrefixCalls, TopPrefixShare, TopPrefixTokens, MinCacheTokens,"
        " PrefixCacheable FROM otel.v_prefix_stability_hourly WHERE ServiceName = 'prefix-stability'"
        " AND Endpoint IN ('/stable', '/short', '/noprefix') ORDER BY Endpoint",
    )
    assert got == [
        ("/noprefix", 3, 0, 0, 0.0, None, 1024, None),
        ("/short", 5, 1, 5, 1.0, 1500, 2048, 0),
        ("/stable", 10, 1, 10, 1.0, 2000, 1024, 1),
    ]


def test_report_stability_figures(stability):
    stable, unstable = stability["/stable"], stability["/unstable"]
    assert (stable["Calls"], stable["TopPrefixShare"], stable["PrefixesPerHour"]) == (10, 1.0, 1.0)
    assert stable["HitRate"] == pytest.approx(18000 / 25000, abs=1e-4)
    assert stable["SavingsPerDayUsd"] == pytest.approx(0.09)  # less than a day observed: the total
    assert (unstable["Calls"], unstable["PrefixesPerHour"]) == (18, 9.0)  # 12 and 6 in two hours
    assert unstable["TopPrefixShare"] == pytest.approx(1 / 18, abs=1e-4)


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("/stable", ["pays", "72%", "$0.09/day"]),
        ("/unstable", ["not stable", "9 distinct prefixes/hour", "6%"]),
        ("/short", ["under the 2,048-token minimum", "1,500"]),
        ("/noprefix", ["nothing to cache"]),
        ("/unmarked", ["cache_control"]),
        ("/costly", ["does not pay", "$0.08/day more"]),
        ("/unknown-length", ["prefix length unknown"]),
    ],
)
def test_report_explains_each_endpoint_in_one_line(stability, endpoint, words):
    why = stability[endpoint]["Why"]
    assert "\n" not in why
    for word in words:
        assert word in why, why


def test_explain_prefers_hits_over_every_other_reason():
    row = {"Calls": 10, "TopPrefixShare": 0.1, "PrefixesPerHour": 40, "PrefixTokens": 100, "MinCacheTokens": 1024}
    row |= {"HitRate": 0.5, "SavingsPerDayUsd": 3.0, "Provider": "openai"}
    assert explain(row).startswith("pays: 50%")
    assert explain({**row, "HitRate": 0, "PrefixTokens": None}).startswith("no hits: 40 distinct prefixes/hour")
