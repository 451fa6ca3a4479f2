"""Reliability: concurrency, crashes, faults, fuzzing, security and stress (quick by default, --runslow soaks)."""
