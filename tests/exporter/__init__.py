"""otel_llmcost.exporter: spans into ClickHouse through the spool, exactly once."""
