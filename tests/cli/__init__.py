"""otel_llmcost.cli: the commands end to end."""
