"""Span exporter to ClickHouse (embedded chdb by default): ``--traces_exporter llmcost``.

- :mod:`.rows`: a span as an ``otel_traces`` row, value for value as the collector writes it;
- :mod:`.spool`: accepted batches on disk until they are ingested;
- :mod:`.ingest`: spool -> ClickHouse, exactly once, by whoever holds the spool's turn;
- :mod:`.ingester`: the process that does it (started on demand, or ``otel-llmcost ingest --follow``);
- :mod:`.exporter`: the ``SpanExporter``: it only appends to the spool, embedded or remote.
"""

from .exporter import LLMCostSpanExporter
from .ingest import IngestDeferred, ingest_pending
from .spool import pending_files, spool_dir

__all__ = ["IngestDeferred", "LLMCostSpanExporter", "ingest_pending", "pending_files", "spool_dir"]
