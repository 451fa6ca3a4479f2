"""Span exporter to ClickHouse (embedded chdb by default): ``--traces_exporter llmcost``.

- :mod:`.rows`: a span as an ``otel_traces`` row, value for value as the collector writes it;
- :mod:`.spool`: accepted batches on disk until they are ingested;
- :mod:`.ingest`: spool -> ClickHouse, exactly once, by whoever holds the path's turn;
- :mod:`.exporter`: the ``SpanExporter`` (embedded through the spool, or remote over HTTP).
"""

from .exporter import LLMCostSpanExporter
from .ingest import ingest_pending
from .spool import pending_files, spool_dir

__all__ = ["LLMCostSpanExporter", "ingest_pending", "pending_files", "spool_dir"]
