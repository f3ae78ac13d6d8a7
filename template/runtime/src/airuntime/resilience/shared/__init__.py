"""The resilient layer's state shared by several instances on one Redis (REDIS_URL).

Each part keeps the interface of its local counterpart: the day ledger (`RedisLedger`, a
`SharedLedger`), the breakers (`SharedBreakerBoard`), the rate limits (`SharedLimits`) and the
response cache with its idempotency records (`RedisResponseStore`). Every change is one Lua
script, so instances never interleave inside one; every key has a TTL.

Needs the `redis` extra (`airuntime[redis]`).
"""
