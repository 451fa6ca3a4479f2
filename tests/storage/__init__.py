"""otel_llmcost.storage: migrations, upgrades, and the SQL views on chdb."""
