"""Provider adapters: one per vendor SDK, each an `LLMClient` that raises only `LLMError`s.

Adapters translate; they never retry (vendor SDK retries are off) and never fall back: that is
the resilience layer's job, so there is exactly one retry loop in the system.
"""
