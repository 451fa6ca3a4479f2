"""Repeated requests, exact and near (018_near_duplicates.sql; issue 20, item 5), on
scripted spans, every figure computed by hand: the SimHash column of llm_calls,
v_exact_duplicates and v_near_duplicates, and the `duplicates` and `near_duplicates`
reports.

Sketches are either the instrumentation's own (similarity.simhash of real texts, whose
distances tests/instrumentation/test_similarity.py pins) or scripted bit patterns. Each
test uses its own ServiceName, so tests sharing the module's database never mix.
"""

from __future__ import annotations

import hashlib

from otel_llmcost.instrumentation.similarity import hamming, simhash
from otel_llmcost.reporting import reports
from tests.helpers.chdb import insert_spans, q
from tests.helpers.span_rows import HOUR_NS, call_row, now_ns

SECOND_NS = 10**9
QUESTION = "How do I reset my password if I no longer have access to my email account?"
DIFFERENT = [
    QUESTION,
    "How do I reset my password if I no longer have access to my phone?",  # 35 bits from QUESTION
    "How do I cancel my subscription?",
    "What is the capital of France?",
    "What is the capital of Spain?",  # 31 bits from France
    "Write a haiku about autumn leaves.",
]


def call(svc: str, ts: int, sketch: int | str | None, cost: float, request: str, **attrs) -> list:
    if sketch is not None:
        attrs["prompt_simhash"] = sketch if isinstance(sketch, str) else f"{sketch:016x}"
    attrs.setdefault("prompt_prefix_hash", "sys1")
    attrs.setdefault("endpoint", "/help")
    return call_row(svc, ts, prompt_request_hash=request, cost_total=cost, **attrs)


def near(client, svc: str, since_hours: int = 24) -> list[tuple]:
    return q(
        client,
        "SELECT RequestModel, PrefixHash, Cluster, Calls, Repeats, Sketches, DistinctRequests, round(Spend, 6),"
        " round(RepeatSpend, 6) FROM otel.v_near_duplicates(since_hours = {h:UInt32})"
        " WHERE ServiceName = {s:String} ORDER BY Cluster",
        s=svc,
        h=since_hours,
    )


def exact(client, svc: str) -> list[tuple]:
    return q(
        client,
        "SELECT RequestHash, Calls, Repeats, round(Spend, 6), round(RepeatSpend, 6)"
        " FROM otel.v_exact_duplicates(since_hours = 24) WHERE ServiceName = {s:String} ORDER BY RequestHash",
        s=svc,
    )


def test_the_column_reads_sixteen_hex_digits_and_anything_else_as_zero(chdb_module_client):
    svc = "near-column"
    ts = now_ns()
    values = ["6c894cbd9fc6b3e5", "6C894CBD9FC6B3E5", "zz", "6c894cbd9fc6b3e", "0x6c894cbd9fc6b3", ""]
    insert_spans(chdb_module_client, [call(svc, ts + i, v, 0.1, f"r{i}") for i, v in enumerate(values)])
    rows = q(
        chdb_module_client,
        "SELECT SimHash FROM otel.llm_calls WHERE ServiceName = {s:String} ORDER BY Timestamp",
        s=svc,
    )
    assert [r[0] for r in rows] == [0x6C894CBD9FC6B3E5, 0x6C894CBD9FC6B3E5, 0, 0, 0, 0]


def test_six_paraphrases_of_one_question(chdb_module_client):
    svc = "near-six"
    t = now_ns()
    spaced, shouted = QUESTION + " ", QUESTION.upper()
    hyphen = "How do I reset my password, if I no longer have access to my e-mail account??"
    address = QUESTION.replace("email account", "email address")  # a word changed in a short question
    reworded = QUESTION.replace("How do", "How can")
    distances = [hamming(simhash(QUESTION), simhash(x)) for x in (spaced, shouted, hyphen, address, reworded)]
    assert distances == [0, 0, 0, 27, 31]
    rows = [
        call(svc, t + 1 * SECOND_NS, simhash(QUESTION), 0.10, "rq0"),
        call(svc, t + 2 * SECOND_NS, simhash(spaced), 0.20, "rq1"),
        call(svc, t + 3 * SECOND_NS, simhash(shouted), 0.30, "rq2", endpoint="/faq"),
        call(svc, t + 4 * SECOND_NS, simhash(hyphen), 0.40, "rq3"),
        call(svc, t + 5 * SECOND_NS, simhash(address), 0.50, "rq4"),
        call(svc, t + 6 * SECOND_NS, simhash(reworded), 0.60, "rq5"),
        call(svc, t + 7 * SECOND_NS, simhash(QUESTION), 0.70, "rq0"),  # an exact repeat of the first
        # The same question under another prompt prefix, and on another model: not repeats.
        call(svc, t + 8 * SECOND_NS, simhash(QUESTION), 1.00, "rq6", prompt_prefix_hash="sys2"),
        call(svc, t + 9 * SECOND_NS, simhash(QUESTION), 1.00, "rq7", gen_ai_request_model="m2"),
        # Older than the window: not read.
        call(svc, t - 30 * HOUR_NS, simhash(QUESTION), 5.00, "rq0"),
        # Unrelated questions and a call without a sketch (a tool result last).
        call(svc, t, simhash("How do I cancel my subscription?"), 0.05, "rq8"),
        call(svc, t, simhash("What is the capital of France?"), 0.05, "rq9"),
        call(svc, t, None, 0.05, "rq10"),
    ]
    insert_spans(chdb_module_client, rows)
    # One cluster: the 5 calls with the identical sketch (rq0 twice, rq1-rq3); the short
    # question with a word changed (rq4, rq5) is another request. Spend 0.1+0.2+0.3+0.4+0.7
    # = 1.7; RepeatSpend = 1.7 - 0.1 (the first call) = 1.6, of which an exact-match cache
    # saves rq0's repeat (0.7) and only a normalizing one the other 0.9.
    anchor = f"{simhash(QUESTION):016x}"
    assert near(chdb_module_client, svc) == [("m1", "sys1", anchor, 5, 4, 1, 4, 1.7, 1.6)]
    split = q(
        chdb_module_client,
        "SELECT round(ExactRepeatSpend, 6), round(NearOnlyRepeatSpend, 6)"
        " FROM otel.v_near_duplicates(since_hours = 24) WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert split == [(0.7, 0.9)]
    # Exact matching sees only rq0 twice: 0.1 + 0.7 = 0.8, of which 0.7 repeats.
    assert exact(chdb_module_client, svc) == [("rq0", 2, 1, 0.8, 0.7)]
    endpoints = q(
        chdb_module_client,
        "SELECT arraySort(Endpoints), FirstSeen < LastSeen FROM otel.v_near_duplicates(since_hours = 24)"
        " WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert endpoints == [(["/faq", "/help"], True)]
    # A window of 48 hours reaches the old call: 6 calls, 6.7 spent, the old one first.
    assert near(chdb_module_client, svc, since_hours=48) == [("m1", "sys1", anchor, 6, 5, 1, 4, 6.7, 1.7)]


def test_within_three_bits_of_the_anchor_is_near_four_is_not(chdb_module_client):
    svc = "near-bits"
    t = now_ns()
    a = 0x0F0F0F0F0F0F0F00
    b = a ^ 0b111  # 3 bits from a
    c = b ^ 0b111000  # 3 bits from b, 6 from a
    d = a ^ (0b1111 << 40)  # 4 bits from a, 7 from b
    assert (hamming(a, b), hamming(b, c), hamming(a, c), hamming(a, d), hamming(b, d)) == (3, 3, 6, 4, 7)
    insert_spans(
        chdb_module_client,
        [
            call(svc, t + 1, a, 0.1, "r1"),
            call(svc, t + 2, b, 0.2, "r2"),
            call(svc, t + 3, c, 0.3, "r3"),
            call(svc, t + 4, c, 0.4, "r4"),
            call(svc, t + 5, d, 0.5, "r5"),
            call(svc, t + 6, d, 0.6, "r6"),
        ],
    )
    # a's anchor is a; b's is a (3 bits); c's is b (a is 6 bits away), so the chain splits:
    # {a, b}: 0.3 spent, 0.2 repeated; {c, c}: 0.7, 0.4; d is 4 bits from a: {d, d}: 1.1, 0.6.
    assert near(chdb_module_client, svc) == sorted(
        [
            ("m1", "sys1", f"{a:016x}", 2, 1, 2, 2, 0.3, 0.2),
            ("m1", "sys1", f"{b:016x}", 2, 1, 1, 2, 0.7, 0.4),
            ("m1", "sys1", f"{d:016x}", 2, 1, 1, 2, 1.1, 0.6),
        ],
        key=lambda row: row[2],
    )


def test_different_questions_never_group(chdb_module_client):
    svc = "near-quiet"
    t = now_ns()
    sketches = [simhash(text) for text in DIFFERENT]
    assert min(hamming(x, y) for i, x in enumerate(sketches) for y in sketches[i + 1 :]) == 25
    insert_spans(chdb_module_client, [call(svc, t + i, s, 1.0, f"r{i}") for i, s in enumerate(sketches)])
    assert near(chdb_module_client, svc) == []
    assert exact(chdb_module_client, svc) == []


def test_the_reports_list_the_costliest_repeats_first_within_the_limit(chdb_module_client):
    svc = "near-report"
    t = now_ns()
    rows = []
    for n, (text, cost) in enumerate([(DIFFERENT[2], 0.01), (DIFFERENT[3], 0.02), (DIFFERENT[5], 0.03)]):
        for i in range(3):  # each question three times, byte for byte and with a trailing space
            rows.append(call(svc, t + i, simhash(text + " " * i), cost, f"q{n}-{min(i, 1)}"))
    insert_spans(chdb_module_client, rows)
    near_report = reports.run(chdb_module_client, "near_duplicates", since_hours=1)
    ours = [dict(zip(near_report.columns, row, strict=True)) for row in near_report.rows if row[0] == svc]
    # Each question: 3 calls, 2 distinct requests (q-0 and q-1 twice), RepeatSpend 2 * cost.
    assert [(r["Calls"], r["Requests"], r["RepeatSpendUsd"]) for r in ours] == [
        (3, 2, 0.06),
        (3, 2, 0.04),
        (3, 2, 0.02),
    ]
    exact_report = reports.run(chdb_module_client, "duplicates", since_hours=1, limit=1000)
    ours = [dict(zip(exact_report.columns, row, strict=True)) for row in exact_report.rows if row[0] == svc]
    assert [(r["RequestHash"], r["Calls"], r["RepeatSpendUsd"]) for r in ours] == [
        ("q2-1", 2, 0.03),
        ("q1-1", 2, 0.02),
        ("q0-1", 2, 0.01),
    ]
    assert len(reports.run(chdb_module_client, "duplicates", since_hours=1, limit=1).rows) == 1


def test_the_reports_show_ten_and_twenty_rows_at_most(chdb_module_client):
    svc = "near-many"
    t = now_ns()
    sketches = [int.from_bytes(hashlib.blake2b(str(n).encode(), digest_size=8).digest(), "big") for n in range(25)]
    assert min(hamming(x, y) for i, x in enumerate(sketches) for y in sketches[i + 1 :]) > 3
    rows = [call(svc, t + i, sketch, 0.001, f"many-{n}") for n, sketch in enumerate(sketches) for i in range(2)]
    insert_spans(chdb_module_client, rows)
    # Both on request (the ranked opportunities list has the duplicates): duplicates its 10
    # costliest, near_duplicates 20.
    assert len(reports.run(chdb_module_client, "duplicates", since_hours=1, limit=1000).rows) == 10
    assert len(reports.run(chdb_module_client, "near_duplicates", since_hours=1, limit=1000).rows) == 20
    assert {"duplicates", "near_duplicates"} <= set(reports.ON_REQUEST_REPORTS)
