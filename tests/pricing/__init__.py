"""otel_llmcost.pricing: the cost formula, prices over time, and the catalogue in ClickHouse."""
