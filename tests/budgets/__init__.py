"""otel_llmcost.budgets: caps enforced before a call, in memory and in a real redis-server."""
