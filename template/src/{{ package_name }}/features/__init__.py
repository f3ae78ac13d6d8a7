"""AI features built as systems: each one is a prompt from the registry, validated structured
output through the resilient client, input guardrails, a degraded path or a review flag, and
observability, and nothing feature-specific lives below this package.

    async with open_system(load_settings()) as system:
        result = await summarize(system, document)
"""
