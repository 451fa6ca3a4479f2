"""Into chdb the ingest hands the spool files' bytes to chdb (JSONCompactEachRow), never
decoding a row in Python (issue 24): what it stores is exactly what the decoded-rows
insert stores, files that are not rows are still set aside as unreadable, a replay is
still dropped by its token, and a temp directory chdb would read as a glob defers the
ingest instead of inserting nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_llmcost import semconv as sc
from otel_llmcost import storage
from otel_llmcost.exporter import ingest
from otel_llmcost.exporter.ingest import IngestDeferred, ensure_schema, ingest_pending, insert_rows
from otel_llmcost.exporter.rows import span_to_row
from otel_llmcost.exporter.spool import pending_files, read_spool, rejected_files, rejection_reason, write_spool
from tests.helpers.chdb import chdb_dsn, query_dsn

ALL = (
    "Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanAttributes, Duration, StatusMessage,"
    " Events.Timestamp, Events.Name, Events.Attributes"
)


def _rows(service: str, n: int) -> list[list]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(sc.INSTRUMENTATION_SCOPE, "0.1")
    for i in range(n):
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    sc.GEN_AI_OPERATION_NAME: "chat",
                    sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                    sc.GEN_AI_USAGE_INPUT_TOKENS: 1000 + i,
                    sc.COST_TOTAL: 0.00125 * (i + 1),
                    sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
                    "llmcost.user": "quote ' \" \\ é 😀 \x00 end",
                }
            )
            span.add_event("retry", {"attempt": i})
            span.set_status(Status(StatusCode.ERROR, "boom\nline"))
    return [span_to_row(s) for s in memory.get_finished_spans()]


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    return chdb_dsn(tmp_path)


def _stored(dsn: str, service: str) -> list[tuple]:
    return query_dsn(dsn, f"SELECT {ALL} FROM otel.otel_traces WHERE ServiceName = '{service}' ORDER BY SpanId")


def test_bytes_ingest_stores_exactly_what_the_decoded_rows_insert_stores(dsn: str) -> None:
    rows = _rows("bytes", 5)
    write_spool(dsn, rows[:2])
    write_spool(dsn, rows[2:])

    assert ingest_pending(dsn, "otel") == 5

    decoded = [[*row[:7], "decoded", *row[8:]] for row in rows]
    with storage.open_client(dsn) as client:
        insert_rows(client, "otel", decoded)
    assert _stored(dsn, "bytes") == _stored(dsn, "decoded")
    assert query_dsn(dsn, "SELECT count() FROM otel.llm_calls WHERE ServiceName = 'bytes'") == [(5,)]


def test_a_file_without_a_final_newline_does_not_run_into_the_next(dsn: str) -> None:
    first = write_spool(dsn, _rows("newline", 2))
    first.write_bytes(first.read_bytes().rstrip(b"\n"))
    write_spool(dsn, _rows("newline", 3))

    assert ingest_pending(dsn, "otel") == 5
    assert query_dsn(dsn, "SELECT count() FROM otel.otel_traces WHERE ServiceName = 'newline'") == [(5,)]


def test_bytes_that_are_not_utf8_are_set_aside_as_unreadable(dsn: str) -> None:
    bad = write_spool(dsn, _rows("utf8", 2))
    bad.write_bytes(bad.read_bytes().replace(b"chat gpt-4o", b"chat \xff", 1))
    write_spool(dsn, _rows("utf8", 3))

    assert ingest_pending(dsn, "otel") == 3
    [rejected] = rejected_files(dsn)
    assert rejection_reason(rejected)["error"].startswith("unreadable")


def test_a_row_chdb_cannot_parse_sets_its_file_aside_and_the_group_is_stored(dsn: str) -> None:
    bad = write_spool(dsn, _rows("parse", 2))
    bad.write_text(bad.read_text(encoding="utf-8").replace('"Client"', "Client", 1), encoding="utf-8")
    write_spool(dsn, _rows("parse", 3))

    assert ingest_pending(dsn, "otel") == 3
    assert len(rejected_files(dsn)) == 1 and pending_files(dsn) == []
    assert query_dsn(dsn, "SELECT count() FROM otel.otel_traces WHERE ServiceName = 'parse'") == [(3,)]


def test_replay_of_a_group_inserted_as_rows_is_dropped_as_a_duplicate(dsn: str) -> None:
    paths = [write_spool(dsn, _rows("replay", 2)) for _ in range(3)]
    token = ingest._group_token([p.name for p in paths])
    with storage.open_client(dsn) as client:
        ensure_schema(client, str(storage.chdb_path(dsn)), "otel", 180)
        insert_rows(client, "otel", [r for p in paths for r in read_spool(p)], token=token)

    assert ingest_pending(dsn, "otel") == 6  # the same group, the same token: stored once
    assert query_dsn(dsn, "SELECT count() FROM otel.llm_calls WHERE ServiceName = 'replay'") == [(6,)]


def test_a_temp_directory_chdb_would_read_as_a_glob_defers_and_keeps_the_spool(
    dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = tmp_path / "tmp{odd}"
    odd.mkdir()
    write_spool(dsn, _rows("glob", 4))
    monkeypatch.setattr(tempfile, "tempdir", str(odd))

    with pytest.raises(IngestDeferred, match="glob"):
        ingest_pending(dsn, "otel")
    assert len(pending_files(dsn)) == 1

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert ingest_pending(dsn, "otel") == 4
    assert query_dsn(dsn, "SELECT count() FROM otel.llm_calls WHERE ServiceName = 'glob'") == [(4,)]
