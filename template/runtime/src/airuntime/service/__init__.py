"""The HTTP service helpers: what every project's service shares (FastAPI and uvicorn, the
`service` extra). Server-Sent Events, the mapping of runtime errors to HTTP answers, API-key
auth, per-key limits and spend, request ids and access logs, Prometheus metrics, readiness
and graceful shutdown; the project's app shell wires its features to routes with them."""
