"""Nothing leaked, nothing executed: hostile values travel as data (attribute values, CLI
arguments, report parameters), prompt/completion text never leaves the process unless
enabled, user ids can be keyed-hashed end to end, DSN passwords stay out of logs, errors
and spans, and one huge value cannot blow up a batch."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from typer.testing import CliRunner

import otel_llmcost as llmcost
from otel_llmcost import semconv, storage
from otel_llmcost.cli import app
from otel_llmcost.demo.fakes import FakeLLMServer, Reply, openai_client
from otel_llmcost.exporter import LLMCostSpanExporter, ingest_pending, spool_dir
from tests.reliability._reliability import chdb_query
from tests.reliability.fake_clickhouse import refused_port

HOSTILE = [
    'it\'s "quoted" `back`',
    "C:\\path\\to\\x\\",
    "'; DROP TABLE otel_traces; --",
    '"); DROP TABLE otel.llm_calls; SELECT ("',
    "{since_hours:UInt32}",
    "a\x00b",
    "x" * (1 << 20),
    "ok\ud800bad",
    b"\xff\xfe non-utf8".decode("utf-8", "surrogateescape"),
    "naïve 🚀 \u2028 \n\r\t",
]
TABLES_SQL = "SELECT count() FROM system.tables WHERE database = 'otel'"
CANARY = "CANARY-7f3a9c-do-not-export"


@pytest.fixture
def stored(otel, tmp_path):  # type: ignore[no-untyped-def]
    """The instrumented process also exports to a fresh chdb path; returns (dsn, exporter)."""
    dsn = f"chdb://{tmp_path / 'chdb'}"
    reader = InMemoryMetricReader()
    exporter = LLMCostSpanExporter(dsn=dsn, meter_provider=MeterProvider(metric_readers=[reader]))
    exporter.metric_reader = reader  # type: ignore[attr-defined]
    otel.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return dsn, exporter


def everything(dsn: str) -> str:
    """Every column of every stored span, as text (for canary scans)."""
    return repr(chdb_query(dsn, "SELECT * FROM otel.otel_traces"))


def test_hostile_values_through_the_whole_pipeline_break_and_execute_nothing(instrument, stored, fake):
    dsn, exporter = stored
    client = openai_client(fake, max_retries=0)
    for value in HOSTILE:
        # The SDK itself cannot send lone surrogates (it encodes JSON as UTF-8): those go
        # only where the app, not the SDK, hands them to us (attribution).
        sendable = value if value.encode("utf-8", "surrogatepass") == value.encode("utf-8", "replace") else "hi"
        with llmcost.attributes(endpoint=value, feature=value, team=value, user=value, session=value):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": sendable}])
        client.chat.completions.create(model=sendable[:2000], messages=[{"role": "user", "content": "hi"}])
    ingest_pending(dsn, "otel", wait_s=30)  # what the ingester process does
    assert exporter.dropped_spans == 0
    assert chdb_query(dsn, TABLES_SQL)[0][0] >= 10  # nothing dropped
    ((raw, calls),) = chdb_query(dsn, "SELECT (SELECT count() FROM otel.otel_traces), count() FROM otel.llm_calls")
    assert raw == calls == 2 * len(HOSTILE)
    stored_endpoints = {r[0] for r in chdb_query(dsn, "SELECT DISTINCT Endpoint FROM otel.llm_calls")}
    for value in HOSTILE:
        clean = value.encode("utf-8", "replace").decode("utf-8") if value != HOSTILE[7] else "ok\ufffdbad"
        if "\udcff" in value:
            clean = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        assert clean[:8192] in stored_endpoints, value[:40]
    # The report takes the same values as data too.
    result = CliRunner().invoke(app, ["report", "--dsn", dsn, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert chdb_query(dsn, "SELECT count() FROM otel.llm_calls")[0][0] == 2 * len(HOSTILE)


@pytest.mark.parametrize(
    "args",
    [
        ["--since-hours", "1; DROP TABLE otel.otel_traces"],
        ["--since-hours", "-1"],
        ["--since-hours", "0"],
        ["--database", "otel; DROP TABLE otel.otel_traces"],
        ["--database", "otel`.`x"],
        ["--database", "x\x00"],
        ["--only", "'; DROP TABLE otel.otel_traces; --"],
        ["--format", "json'); DROP"],
    ],
)
def test_hostile_cli_arguments_are_rejected_and_execute_nothing(args, tmp_path):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    ok = CliRunner().invoke(app, ["migrate", "--dsn", dsn])
    assert ok.exit_code == 0, ok.output
    tables = chdb_query(dsn, TABLES_SQL)
    result = CliRunner().invoke(app, ["report", "--dsn", dsn, *args])
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert chdb_query(dsn, TABLES_SQL) == tables


def test_bad_database_name_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["report", "--dsn", f"chdb://{tmp_path / 'chdb'}", "--database", "a;b"])
    assert result.exit_code == 2 and not isinstance(result.exception, ValueError)


def test_prompt_and_completion_never_stored_unless_enabled(instrument, stored, monkeypatch):
    dsn, exporter = stored
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    instrument()
    fake = FakeLLMServer(reply_text=f"the answer is {CANARY}")
    client = openai_client(fake, max_retries=0)
    messages = [{"role": "system", "content": f"secret {CANARY}"}, {"role": "user", "content": CANARY}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
        pass
    client.responses.create(model="gpt-4o-mini", input=CANARY)
    ingest_pending(dsn, "otel", wait_s=30)  # what the ingester process does
    assert chdb_query(dsn, "SELECT count() FROM otel.otel_traces")[0][0] == 3
    assert CANARY not in everything(dsn)

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    instrument()  # re-reads the environment
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    ingest_pending(dsn, "otel", wait_s=30)  # what the ingester process does
    assert CANARY in everything(dsn)  # the scan does see content when it is enabled


def test_user_ids_are_keyed_hashes_end_to_end(instrument, stored, fake, monkeypatch):
    dsn, exporter = stored
    monkeypatch.setenv("OTEL_LLMCOST_USER_HASH_KEY", "k3y")
    instrument()
    client = openai_client(fake, max_retries=0)
    with llmcost.attributes(user="alice@example.com"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    ingest_pending(dsn, "otel", wait_s=30)  # what the ingester process does
    expected = hmac.new(b"k3y", b"alice@example.com", hashlib.sha256).hexdigest()[:16]
    assert chdb_query(dsn, "SELECT User FROM otel.llm_calls") == [(expected,)]
    assert "alice" not in everything(dsn)


def test_dsn_password_never_appears_in_logs_errors_or_spans(instrument, otel, fake, caplog):
    dsn = f"http://alice:{CANARY}@127.0.0.1:{refused_port()}/?password={CANARY}"
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG):
        exporter = LLMCostSpanExporter(dsn=dsn)
        otel.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        client = openai_client(fake, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        otel.tracer_provider.shutdown()
        attempts = (
            lambda: storage.connect(dsn),
            lambda: storage.open_client(dsn).__enter__(),
            lambda: ingest_pending(dsn),
        )
        for attempt in attempts:
            try:
                attempt()
            except Exception as exc:  # the error a CLI user would see
                errors.append(f"{exc!r} {exc} {exc.__cause__!r} {exc.__context__!r}")
    assert exporter.dropped_spans == 0  # spooled until the server answers
    assert len(errors) == 3
    assert CANARY not in caplog.text
    assert all(CANARY not in str(path) for path in spool_dir(dsn).parents)  # the spool is named by a hash
    assert all(CANARY not in e for e in errors)
    assert CANARY not in exporter.dsn_redacted
    for span in otel.spans():
        assert CANARY not in repr(dict(span.attributes)) and CANARY not in repr(span.events)
    assert any("alice:***@" in e for e in errors)  # the redacted form is what is shown


def test_one_huge_prompt_is_cut_and_counted(instrument, stored, monkeypatch):
    dsn, exporter = stored
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    instrument()
    fake = FakeLLMServer()
    fake.enqueue(Reply())
    client = openai_client(fake, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "y" * (4 << 20)}])
    ingest_pending(dsn, "otel", wait_s=30)  # what the ingester process does
    ((longest, truncated),) = chdb_query(
        dsn,
        "SELECT max(arrayMax(arrayMap(m -> arrayMax(arrayMap(v -> length(v), mapValues(m))), Events.Attributes))),"
        " any(SpanAttributes[{k:String}]) FROM otel.otel_traces",
        k=semconv.ATTRIBUTES_TRUNCATED,
    )
    assert longest <= 8192
    assert int(truncated) >= 1
    assert exporter.truncated_attributes >= 1
    data = exporter.metric_reader.get_metrics_data()  # type: ignore[attr-defined]
    names = [m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert semconv.METRIC_EXPORTER_TRUNCATED_ATTRIBUTES in names
