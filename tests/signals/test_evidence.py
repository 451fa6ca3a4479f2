"""Token waste in RAG apps: declared evidence on the call's span, citations as their own span,
and the views that join them (v_evidence_calls, v_evidence_waste_hourly) on chdb."""

from __future__ import annotations

import json
import secrets

import pytest

import otel_llmcost as llmcost
from otel_llmcost import semconv as sc
from otel_llmcost.demo.fakes import openai_client
from otel_llmcost.exporter.rows import span_to_row
from otel_llmcost.instrumentation import tokens
from otel_llmcost.instrumentation.anatomy import CONTEXT, HISTORY, LATEST, Anatomy, claim_context
from otel_llmcost.providers.base import PromptView
from otel_llmcost.reporting import reports
from otel_llmcost.signals.evidence import MAX_ID_CHARS, MAX_ITEMS, item_id
from tests.helpers.chdb import insert_spans, q, reads_only_the_window
from tests.helpers.span_rows import call_row, now_ns

DOC_A = "Refunds are issued within 14 days of receiving the returned item, minus shipping costs."
DOC_B = "Orders over 50 EUR ship free within Germany; other countries pay a flat 9 EUR."
CANARY = "canary-7f3e9 confidential passage"
QUESTION = [{"role": "user", "content": f"Context:\n{DOC_A}\n{DOC_B}\n\nHow long do refunds take?"}]


def _n(text: str) -> int:
    return tokens.estimate_text(text)  # the default prompt counter (OTEL_LLMCOST_PROMPT_COUNTER=bytes)


def _spans(otel, name: str):  # type: ignore[no-untyped-def]
    return [s for s in otel.spans() if s.name == name]


# --- the API on spans ------------------------------------------------------------------------


def test_next_call_carries_evidence_ids_and_per_item_tokens(instrument, otel, fake):
    client_ = openai_client(fake)
    ev = llmcost.evidence({"kb-1": DOC_A, "kb-2": DOC_B, "kb-3": 120})
    client_.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    client_.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)  # a later call: no evidence
    first, second = _spans(otel, "chat gpt-4o-mini")
    attrs = first.attributes
    assert attrs[sc.EVIDENCE_SET_ID] == ev.set_id
    assert list(attrs[sc.EVIDENCE_IDS]) == ["kb-1", "kb-2", "kb-3"]
    assert list(attrs[sc.EVIDENCE_TOKENS]) == [_n(DOC_A), _n(DOC_B), 120]
    assert attrs[sc.EVIDENCE_TOTAL_TOKENS] == _n(DOC_A) + _n(DOC_B) + 120
    assert sc.EVIDENCE_SET_ID not in second.attributes


def test_evidence_is_counted_with_the_configured_prompt_counter(instrument, otel, fake):
    instrument(prompt_counter="tiktoken")
    llmcost.evidence({"kb-1": DOC_A})
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    attrs = _spans(otel, "chat gpt-4o-mini")[0].attributes
    assert list(attrs[sc.EVIDENCE_TOKENS]) == [tokens.count_text(DOC_A, "gpt-4o-mini")] != [_n(DOC_A)]


def test_unmarked_evidence_counts_as_the_context_component(instrument, otel, fake):
    llmcost.evidence({"kb-1": DOC_A, "kb-2": DOC_B})
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    attrs = _spans(otel, "chat gpt-4o-mini")[0].attributes
    parts = [attrs[sc.PROMPT_COMPONENT_PREFIX + c] for c in sc.PROMPT_COMPONENTS]
    billed = attrs[sc.GEN_AI_USAGE_INPUT_TOKENS]
    counted = Anatomy().total(PromptView(messages=QUESTION), "gpt-4o-mini")
    # Moved from `latest`, not added: the parts still add up to the (billed) prompt.
    assert sum(parts) == billed
    assert attrs[sc.PROMPT_COMPONENT_CONTEXT] == pytest.approx((_n(DOC_A) + _n(DOC_B)) * billed / counted, abs=2)


def test_claim_context_moves_the_shortfall_from_latest_then_history():
    parts = [5, 0, 10, 40, 30]
    claim_context(parts, 60)
    assert (parts[CONTEXT], parts[LATEST], parts[HISTORY]) == (60, 0, 20) and sum(parts) == 85
    marked = [5, 0, 100, 40, 30]
    claim_context(marked, 60)  # already marked as context: nothing moves
    assert marked == [5, 0, 100, 40, 30]
    small = [0, 0, 0, 1, 1]
    claim_context(small, 500)  # never below zero
    assert small == [0, 0, 2, 0, 0]


def test_citations_span_names_the_set_and_links_to_the_call(instrument, otel, fake):
    ev = llmcost.evidence([("kb-1", DOC_A), ("kb-2", DOC_B)])
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    ev.record_citations(["kb-2", "kb-2", "not-sent"])
    (llm,) = _spans(otel, "chat gpt-4o-mini")
    (cited,) = _spans(otel, sc.CITATIONS_SPAN_NAME)
    assert cited.attributes[sc.EVIDENCE_SET_ID] == ev.set_id
    assert list(cited.attributes[sc.EVIDENCE_CITED_IDS]) == ["kb-2", "not-sent"]
    assert [link.context.span_id for link in cited.links] == [llm.context.span_id]
    assert cited.instrumentation_scope.name == sc.INSTRUMENTATION_SCOPE


def test_module_level_record_citations_uses_the_last_declared_set(instrument, otel, fake):
    ev = llmcost.evidence({"kb-1": DOC_A})
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    llmcost.record_citations([])
    (cited,) = _spans(otel, sc.CITATIONS_SPAN_NAME)
    assert cited.attributes[sc.EVIDENCE_SET_ID] == ev.set_id
    assert list(cited.attributes[sc.EVIDENCE_CITED_IDS]) == []


def test_evidence_text_is_never_recorded(instrument, otel, fake):
    llmcost.evidence({"kb-9": CANARY})
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    llmcost.record_citations(["kb-9"])
    for span in otel.spans():
        assert CANARY not in json.dumps(span_to_row(span), default=str)


def test_long_ids_are_hashed_alike_on_both_sides(instrument, otel, fake):
    long_id = "https://kb.example.com/articles/" + "x" * 80
    ev = llmcost.evidence({long_id: 10})
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    ev.record_citations([long_id])
    (llm,) = _spans(otel, "chat gpt-4o-mini")
    (cited,) = _spans(otel, sc.CITATIONS_SPAN_NAME)
    assert list(llm.attributes[sc.EVIDENCE_IDS]) == list(cited.attributes[sc.EVIDENCE_CITED_IDS]) == [item_id(long_id)]
    assert len(item_id(long_id)) <= MAX_ID_CHARS and item_id("short") == "short"


def test_items_past_the_cap_count_in_the_total_only(instrument, otel, fake):
    llmcost.evidence({f"d{i}": 3 for i in range(MAX_ITEMS + 20)})
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    attrs = _spans(otel, "chat gpt-4o-mini")[0].attributes
    assert len(attrs[sc.EVIDENCE_IDS]) == MAX_ITEMS
    assert attrs[sc.EVIDENCE_TOTAL_TOKENS] == 3 * (MAX_ITEMS + 20)


def test_concurrent_calls_from_one_declaration_take_it_once(instrument, otel, fake):
    import asyncio

    client_ = openai_client(fake, is_async=True)

    async def main() -> None:
        llmcost.evidence({"kb-1": 10})
        calls = (client_.chat.completions.create(model="gpt-4o-mini", messages=QUESTION) for _ in range(4))
        await asyncio.gather(*calls)  # each task runs in a copy of the context holding the set

    asyncio.run(main())
    spans = _spans(otel, "chat gpt-4o-mini")
    assert len(spans) == 4
    assert sum(sc.EVIDENCE_SET_ID in s.attributes for s in spans) == 1


def test_with_block_ends_the_declaration_when_no_call_took_it(instrument, otel, fake):
    with llmcost.evidence({"kb-1": DOC_A}):
        pass  # retrieval found nothing worth asking about; no LLM call
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert sc.EVIDENCE_SET_ID not in _spans(otel, "chat gpt-4o-mini")[0].attributes


@pytest.mark.parametrize("bad", [None, 42, [("only-one",)], {"k": object()}])
def test_bad_input_never_raises(instrument, otel, fake, bad):
    ev = llmcost.evidence(bad)  # type: ignore[arg-type]
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    ev.record_citations(["k"])
    llmcost.record_citations(None)  # type: ignore[arg-type]
    assert len(_spans(otel, "chat gpt-4o-mini")) == 1


def test_record_citations_without_evidence_is_a_no_op(instrument, otel):
    import contextvars

    contextvars.Context().run(llmcost.record_citations, ["x"])
    assert otel.spans() == ()


# --- SQL on chdb -------------------------------------------------------------------------------


def _citations(service: str, ts: int, set_id: str, cited: list[str]) -> list:
    row = call_row(
        service, ts, name=sc.CITATIONS_SPAN_NAME, evidence_set_id=set_id, evidence_cited_ids=json.dumps(cited)
    )
    for key in (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_PROVIDER_NAME):
        del row[11][key]  # a citations span is no LLM call
    row[6] = "Internal"
    return row


def _with_evidence(service: str, ts: int, endpoint: str, items: dict[str, int], **attrs) -> tuple[str, list]:
    set_id = secrets.token_hex(16)
    row = call_row(
        service,
        ts,
        endpoint=endpoint,
        evidence_set_id=set_id,
        evidence_ids=json.dumps(list(items)),
        evidence_tokens=json.dumps(list(items.values())),
        evidence_total_tokens=sum(items.values()),
        **attrs,
    )
    return set_id, row


def test_waste_view_sent_cited_never_cited_and_dollars(chdb_module_client):
    svc, t = "evidence-waste", now_ns()
    a, row_a = _with_evidence(
        svc,
        t,
        "/ask",
        {"a": 100, "b": 200, "c": 300},
        gen_ai_usage_input_tokens=2000,
        usage_uncached_input_tokens=1500,
        cost_input=0.0015,  # 1e-6 USD per uncached token
    )
    b, row_b = _with_evidence(
        svc,
        t,
        "/ask",
        {"x": 50, "y": 50},
        gen_ai_usage_input_tokens=1000,
        gen_ai_usage_cache_read_input_tokens=1000,
        cost_cache_read=0.0005,  # all cached: blended 5e-7 per token
    )
    _, row_c = _with_evidence(svc, t, "/ask", {"z": 70}, gen_ai_usage_input_tokens=500)  # citations never recorded
    d, row_d = _with_evidence(svc, t, "/other", {"q": 10}, unpriced="true", gen_ai_usage_input_tokens=100)
    rows = [row_a, row_b, row_c, row_d]
    rows += [_citations(svc, t, a, ["b"]), _citations(svc, t, a, ["b", "zzz"]), _citations(svc, t, b, [])]
    rows += [_citations(svc, t, d, [])]
    insert_spans(chdb_module_client, rows)

    got = q(
        chdb_module_client,
        "SELECT Endpoint, Calls, CallsWithCitations, ItemsSent, ItemsCited, EvidenceTokensSent, EvidenceTokensCited,"
        " EvidenceTokensNeverCited, EvidenceTokensUnreported, NeverCitedUsd, CitedShare"
        " FROM otel.v_evidence_waste_hourly(since_hours = 24) WHERE ServiceName = {s:String} ORDER BY Endpoint",
        s=svc,
    )
    ask, other = got
    assert ask[:9] == ("/ask", 3, 2, 6, 1, 770, 200, 500, 70)
    assert ask[9] == pytest.approx(400 * 1e-6 + 100 * 5e-7)
    assert ask[10] == pytest.approx(200 / 700)
    assert other[:9] == ("/other", 1, 1, 1, 0, 10, 0, 10, 0)
    assert other[9] is None  # unpriced: unknown, not $0

    rep = reports.run(chdb_module_client, "evidence_waste", since_hours=24)
    by_endpoint = {r[1]: dict(zip(rep.columns, r, strict=True)) for r in rep.rows if r[0] == svc}
    assert (by_endpoint["/ask"]["TokensSent"], by_endpoint["/ask"]["TokensNeverCited"]) == (770, 500)
    assert by_endpoint["/ask"]["NeverCitedUsd"] == pytest.approx(4.5e-4)
    # The views read only the window's evidence, calls and citations (issue 22).
    for view in ("v_evidence_calls", "v_evidence_waste_hourly"):
        assert reads_only_the_window(chdb_module_client, f"SELECT * FROM otel.{view}(since_hours = 24)")
    assert q(
        chdb_module_client,
        "SELECT count() FROM otel.v_evidence_calls(since_hours = 24) WHERE ServiceName = {s:String}",
        s=svc,
    ) == [(4,)]


def test_cut_arrays_keep_the_total_and_drop_the_items(chdb_module_client):
    svc, t = "evidence-cut", now_ns()
    set_id = secrets.token_hex(16)
    row = call_row(
        svc,
        t,
        evidence_set_id=set_id,
        evidence_ids='["a", "b", "c"',  # cut by a size limit: not JSON any more
        evidence_tokens="[5, 6, 7]",
        evidence_total_tokens=18,
    )
    insert_spans(chdb_module_client, [row])
    got = q(
        chdb_module_client,
        "SELECT ItemIds, ItemTokens, EvidenceTokens FROM otel.llm_evidence WHERE SetId = {i:String}",
        i=set_id,
    )
    assert got == [([], [], 18)]


def test_real_spans_land_and_join_end_to_end(instrument, otel, fake, chdb_module_client):
    ev = llmcost.evidence({"kb-1": DOC_A, "kb-2": DOC_B})
    with llmcost.attributes(endpoint="POST /rag-e2e"):
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    ev.record_citations(["kb-1"])
    insert_spans(chdb_module_client, [span_to_row(s) for s in otel.spans()])
    (llm,) = _spans(otel, "chat gpt-4o-mini")
    cost_input = llm.attributes[sc.COST_INPUT]
    uncached = llm.attributes[sc.USAGE_UNCACHED_INPUT_TOKENS]
    got = q(
        chdb_module_client,
        "SELECT Endpoint, CitationsRecorded, CitedTokens, NeverCitedTokens, NeverCitedCost"
        " FROM otel.v_evidence_calls(since_hours = 24) WHERE SetId = {i:String}",
        i=ev.set_id,
    )
    assert len(got) == 1
    endpoint, recorded, cited, never, dollars = got[0]
    assert (endpoint, recorded, cited, never) == ("POST /rag-e2e", 1, _n(DOC_A), _n(DOC_B))
    assert dollars == pytest.approx(_n(DOC_B) * cost_input / uncached)
