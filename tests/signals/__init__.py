"""otel_llmcost.signals: attribution, outcomes, evidence and the app rate limiter's decisions."""
