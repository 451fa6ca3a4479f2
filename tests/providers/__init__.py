"""otel_llmcost.providers: each real SDK against the fake provider, and the contract all three share."""
