"""Resilience around every model call: retries, circuit breakers, a fallback chain, limits,
a budget and a response cache, in the resilient client (itself an LLMClient)."""
