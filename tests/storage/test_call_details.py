"""The call-detail columns of llm_calls (prompt anatomy, finish reason, max_tokens, the
original model of a downgrade) and the views of 016_call_details.sql on scripted spans,
each expectation computed by hand (issue 20, items 2 and 6).

Each test uses its own ServiceName, so tests sharing the module's database never mix.
"""

from __future__ import annotations

import pytest

from otel_llmcost.reporting import reports
from tests.helpers.chdb import insert_spans, q
from tests.helpers.span_rows import HOUR_NS, call_row, now_ns

SECOND_NS = 10**9


def call(svc: str, ts: int, **attrs) -> list:
    return call_row(svc, ts, endpoint=attrs.pop("endpoint", "/chat"), **attrs)


def anatomy(system: int, tools: int, context: int, history: int, latest: int) -> dict[str, int]:
    return {
        "prompt_component_system": system,
        "prompt_component_tools": tools,
        "prompt_component_context": context,
        "prompt_component_history": history,
        "prompt_component_latest": latest,
    }


def test_the_columns_carry_anatomy_finish_reason_max_tokens_and_the_original_model(chdb_module_client):
    svc = "details-columns"
    ts = now_ns()
    insert_spans(
        chdb_module_client,
        [
            call(
                svc,
                ts,
                **anatomy(100, 50, 25, 10, 5),
                gen_ai_response_finish_reasons='["length","stop"]',  # a string array, as stored
                gen_ai_request_max_tokens=256,
                budget_original_model="big-model",
            ),
            call(svc, ts + 1, gen_ai_response_finish_reasons="end_turn"),  # a plain string is kept
            call(svc, ts + 2, gen_ai_request_max_tokens="lots", gen_ai_response_finish_reasons="[1"),  # malformed
        ],
    )
    rows = q(
        chdb_module_client,
        "SELECT PromptSystemTokens, PromptToolsTokens, PromptContextTokens, PromptHistoryTokens,"
        " PromptLatestTokens, FinishReason, MaxTokens, OriginalModel"
        " FROM otel.llm_calls WHERE ServiceName = {s:String} ORDER BY Timestamp",
        s=svc,
    )
    assert rows == [
        (100, 50, 25, 10, 5, "length", 256, "big-model"),
        (0, 0, 0, 0, 0, "end_turn", 0, ""),
        (0, 0, 0, 0, 0, "", 0, ""),
    ]


def test_component_dollars_split_each_calls_input_cost_by_its_anatomy(chdb_module_client):
    svc = "details-components"
    ts = now_ns()
    insert_spans(
        chdb_module_client,
        [
            # Call A: prompt 1000 tokens (600 system, 200 tools, 0 context, 100 history,
            # 100 latest); input cost $0.01 = 0.006 input + 0.004 cache read.
            call(svc, ts, **anatomy(600, 200, 0, 100, 100), cost_input=0.006, cost_cache_read=0.004, cost_output=0.5),
            # Call B: prompt 500 (100 system, 0 tools, 200 context, 100 history, 100 latest);
            # input cost $0.02.
            call(svc, ts + 1, **anatomy(100, 0, 200, 100, 100), cost_input=0.02),
            # Call C: no anatomy (sampled out): not counted.
            call(svc, ts + 2, cost_input=1.0),
            # Older than the window: not read.
            call(svc, ts - 30 * HOUR_NS, **anatomy(1, 1, 1, 1, 1), cost_input=5.0),
        ],
    )
    rows = q(
        chdb_module_client,
        "SELECT Component, Calls, Tokens, round(TokenShare, 6), round(CostUsd, 9), round(CostShare, 6),"
        " TokensPerCall FROM otel.v_prompt_component_cost(since_hours = 24) WHERE ServiceName = {s:String}"
        " ORDER BY Component",
        s=svc,
    )
    # Prompt tokens 1500, input cost $0.03 over A and B.
    # system:  700 tokens (700/1500 = 0.466667); $ = 0.01*600/1000 + 0.02*100/500 = 0.006 + 0.004 = 0.010
    # tools:   200 (0.133333); $ = 0.01*200/1000 = 0.002
    # context: 200 (0.133333); $ = 0.02*200/500 = 0.008
    # history: 200 (0.133333); $ = 0.01*100/1000 + 0.02*100/500 = 0.001 + 0.004 = 0.005
    # latest:  200 (0.133333); $ = 0.005
    # CostShare = $ / 0.03.
    assert rows == [
        ("context", 2, 200, 0.133333, 0.008, 0.266667, 100.0),
        ("history", 2, 200, 0.133333, 0.005, 0.166667, 100.0),
        ("latest", 2, 200, 0.133333, 0.005, 0.166667, 100.0),
        ("system", 2, 700, 0.466667, 0.01, 0.333333, 350.0),
        ("tools", 2, 200, 0.133333, 0.002, 0.066667, 100.0),
    ]


def test_tool_schema_overhead_counts_only_calls_that_sent_tools(chdb_module_client):
    svc = "details-tools"
    ts = now_ns()
    insert_spans(
        chdb_module_client,
        [
            call(svc, ts, **anatomy(100, 300, 0, 0, 100), cost_input=0.01),  # tools 300/500 of $0.01 = $0.006
            call(svc, ts + 1, **anatomy(0, 100, 0, 0, 100), cost_input=0.004),  # tools 100/200 of $0.004 = $0.002
            call(svc, ts + 2, **anatomy(100, 0, 0, 0, 100), cost_input=1.0),  # no tools: not counted
        ],
    )
    rows = q(
        chdb_module_client,
        "SELECT CallsWithTools, ToolsTokens, ToolsTokensPerCall, round(ToolsTokenShare, 6), round(ToolsCostUsd, 9),"
        " round(ToolsCostShare, 6) FROM otel.v_tool_schema_overhead(since_hours = 24) WHERE ServiceName = {s:String}",
        s=svc,
    )
    # 400 tool tokens of 700 prompt tokens = 0.571429; $0.008 of $0.014 = 0.571429.
    assert rows == [(2, 400, 200.0, 0.571429, 0.008, 0.571429)]


def test_truncation_rate_and_verbosity_per_endpoint(chdb_module_client):
    svc = "details-output"
    ts = now_ns()
    insert_spans(
        chdb_module_client,
        [
            call(
                svc,
                ts,
                gen_ai_response_finish_reasons='["length"]',
                gen_ai_usage_output_tokens=100,
                gen_ai_request_max_tokens=100,
                cost_output=0.001,
                cost_total=0.002,
            ),
            call(
                svc,
                ts + 1,
                gen_ai_response_finish_reasons='["stop"]',
                gen_ai_usage_output_tokens=50,
                gen_ai_request_max_tokens=200,
                cost_output=0.0005,
                cost_total=0.001,
            ),
            call(
                svc,
                ts + 2,
                gen_ai_response_finish_reasons='["MAX_TOKENS"]',
                gen_ai_usage_output_tokens=30,
                cost_output=0.0003,
                cost_total=0.001,
            ),
            call(svc, ts + 3, gen_ai_usage_output_tokens=20, cost_total=0.001),  # no finish reason
        ],
    )
    rows = q(
        chdb_module_client,
        "SELECT Calls, CallsWithFinishReason, Truncated, round(TruncationRate, 6), AvgOutputTokens,"
        " CallsWithMaxTokens, round(MaxTokensUsedShare, 6), round(AvgMaxTokensUsedShare, 6),"
        " round(OutputCostUsd, 9), round(OutputCostShare, 6)"
        " FROM otel.v_output_by_endpoint(since_hours = 24) WHERE ServiceName = {s:String}",
        s=svc,
    )
    # Truncated: 'length' and 'MAX_TOKENS' = 2 of the 3 with a reason (0.666667).
    # Output tokens (100+50+30+20)/4 = 50 per call. With max_tokens: (100+50)/(100+200) = 0.5 overall,
    # mean of 100/100 and 50/200 = 0.625. Output $0.0018 of $0.005 = 0.36.
    assert rows == [(4, 3, 2, 0.666667, 50.0, 2, 0.5, 0.625, 0.0018, 0.36)]


def test_effective_price_per_million_and_input_output_ratio(chdb_module_client):
    svc = "details-unit"
    ts = now_ns()
    insert_spans(
        chdb_module_client,
        [
            call(
                svc,
                ts,
                gen_ai_usage_input_tokens=3000,
                gen_ai_usage_output_tokens=1000,
                cost_input=0.006,
                cost_cache_read=0.003,
                cost_output=0.015,
                cost_total=0.024,
            ),
            call(
                svc,
                ts + 1,
                gen_ai_usage_input_tokens=1000,
                gen_ai_usage_output_tokens=0,
                cost_input=0.003,
                cost_total=0.003,
            ),
            # Unpriced: its tokens count in the ratio, not in the prices.
            call(svc, ts + 2, gen_ai_usage_input_tokens=4000, gen_ai_usage_output_tokens=1000, unpriced="true"),
        ],
    )
    rows = q(
        chdb_module_client,
        "SELECT RequestModel, Calls, UnpricedCalls, round(CostUsd, 9), round(UsdPer1MInput, 6),"
        " round(UsdPer1MOutput, 6), round(UsdPer1MTokens, 6), InputOutputRatio"
        " FROM otel.v_unit_cost(since_hours = 24) WHERE ServiceName = {s:String}",
        s=svc,
    )
    # Priced input: $0.012 over 4000 tokens = $3/M; output $0.015 over 1000 = $15/M;
    # all $0.027 over 5000 = $5.4/M. Ratio over every call: 8000 / 2000 = 4.
    assert rows == [("m1", 3, 1, 0.027, 3.0, 15.0, 5.4, 4.0)]


def test_cost_per_trace_and_per_session(chdb_module_client):
    svc = "details-trace"
    ts = now_ns()
    t1, t2, t3 = "a" * 32, "b" * 32, "c" * 32
    insert_spans(
        chdb_module_client,
        [
            # Trace 1 of session s1: two calls, 0.01 + 0.02; the second starts 2 s later, lasts 0.5 s.
            call(svc, ts, trace_id=t1, session="s1", cost_total=0.01),
            call(svc, ts + 2 * SECOND_NS, trace_id=t1, session="s1", endpoint="/summarize", cost_total=0.02),
            # Trace 2 of session s1: one call, 0.03.
            call(svc, ts + 10 * SECOND_NS, trace_id=t2, session="s1", cost_total=0.03),
            # Trace 3, no session: 0.5.
            call(svc, ts + 20 * SECOND_NS, trace_id=t3, cost_total=0.5),
        ],
    )
    traces = q(
        chdb_module_client,
        "SELECT TraceId, Session, Calls, Endpoints, round(CostUsd, 9), SpanMs"
        " FROM otel.v_cost_per_trace(since_hours = 24) WHERE ServiceName = {s:String} ORDER BY TraceId",
        s=svc,
    )
    assert traces == [
        (t1, "s1", 2, ["/chat", "/summarize"], 0.03, 2500.0),  # 2 s to the second call's start + 0.5 s
        (t2, "s1", 1, ["/chat"], 0.03, 500.0),
        (t3, "", 1, ["/chat"], 0.5, 500.0),
    ]
    sessions = q(
        chdb_module_client,
        "SELECT Session, Traces, Calls, round(CostUsd, 9), round(CostPerTraceUsd, 9)"
        " FROM otel.v_cost_per_session(since_hours = 24) WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert sessions == [("s1", 2, 3, 0.06, 0.03)]  # the session-less trace is not a session


def test_history_growth_numbers_the_turns_of_a_session(chdb_module_client):
    svc = "details-history"
    ts = now_ns()
    insert_spans(
        chdb_module_client,
        [
            call(svc, ts, session="s1", gen_ai_usage_input_tokens=1000, **anatomy(500, 0, 0, 0, 500)),
            call(svc, ts + SECOND_NS, session="s1", gen_ai_usage_input_tokens=1600, **anatomy(500, 0, 0, 600, 500)),
            call(
                svc, ts + 2 * SECOND_NS, session="s1", gen_ai_usage_input_tokens=2500, **anatomy(500, 0, 0, 1500, 500)
            ),
            call(svc, ts + SECOND_NS, session="s2", gen_ai_usage_input_tokens=700),
            call(svc, ts, gen_ai_usage_input_tokens=9000),  # no session: not listed
        ],
    )
    rows = q(
        chdb_module_client,
        "SELECT Session, Turn, InputTokens, HistoryTokens, InputTokensGrowth"
        " FROM otel.v_session_history_growth(since_hours = 24) WHERE ServiceName = {s:String}"
        " ORDER BY Session, Turn",
        s=svc,
    )
    assert rows == [
        ("s1", 1, 1000, 0, 0),  # the first turn has nothing to grow from
        ("s1", 2, 1600, 600, 600),
        ("s1", 3, 2500, 1500, 900),
        ("s2", 1, 700, 0, 0),
    ]


def test_tail_share_is_the_costliest_five_percent_of_calls(chdb_module_client):
    svc = "details-tail"
    ts = now_ns()
    # /chat: 40 calls, 38 at $0.01 and 2 at $1.00; the top 5% is ceil(2.0) = 2 calls:
    # $2.00 of $2.38 = 0.840336.  /one: a single $0.5 call: top 5% is that call, share 1.
    spans = [call(svc, ts + i, cost_total=0.01) for i in range(38)]
    spans += [call(svc, ts + 100, cost_total=1.0), call(svc, ts + 101, cost_total=1.0)]
    spans += [call(svc, ts + 200, endpoint="/one", cost_total=0.5)]
    insert_spans(chdb_module_client, spans)
    rows = q(
        chdb_module_client,
        "SELECT Endpoint, Calls, TopCalls, round(CostUsd, 9), round(TopCostUsd, 9), round(TopShare, 6)"
        " FROM otel.v_tail_concentration(since_hours = 24) WHERE ServiceName = {s:String} ORDER BY Endpoint",
        s=svc,
    )
    assert rows == [("/chat", 40, 2, 2.38, 2.0, 0.840336), ("/one", 1, 1, 0.5, 0.5, 1.0)]


def test_quiet_traffic_gives_no_rows(chdb_module_client):
    svc = "details-quiet"
    # Calls without sessions, anatomy, tools, and one outside the window.
    insert_spans(chdb_module_client, [call(svc, now_ns(), cost_total=0.1), call(svc, now_ns() - 48 * HOUR_NS)])
    for view in ("v_session_history_growth", "v_cost_per_session", "v_prompt_component_cost", "v_tool_schema_overhead"):
        assert q(
            chdb_module_client,
            f"SELECT count() FROM otel.{view}(since_hours = 24) WHERE ServiceName = {{s:String}}",
            s=svc,
        ) == [(0,)], view
    # The window bounds every view: the 48-hour-old call is not read.
    assert q(
        chdb_module_client,
        "SELECT Calls FROM otel.v_output_by_endpoint(since_hours = 24) WHERE ServiceName = {s:String}",
        s=svc,
    ) == [(1,)]


@pytest.mark.parametrize("name", ["prompt_anatomy_cost", "output_side"])
def test_reports_run_and_are_not_in_the_default_report(chdb_module_client, name):
    svc = "details-reports"
    insert_spans(
        chdb_module_client,
        [
            call(
                svc,
                now_ns(),
                **anatomy(10, 0, 0, 0, 10),
                gen_ai_response_finish_reasons='["length"]',
                gen_ai_usage_output_tokens=5,
                cost_input=0.002,
                cost_total=0.003,
            )
        ],
    )
    report = reports.run(chdb_module_client, name, database="otel", since_hours=24, limit=100)
    assert report.rows and any(svc in row for row in report.rows)
    assert name not in reports.DEFAULT_REPORTS
