"""Span exporter to ClickHouse (embedded chdb by default): ``--traces_exporter llmcost``."""

from otel_llmcost.exporter.clickhouse import LLMCostSpanExporter, ingest_pending, pending_files, spool_dir

__all__ = ["LLMCostSpanExporter", "ingest_pending", "pending_files", "spool_dir"]
