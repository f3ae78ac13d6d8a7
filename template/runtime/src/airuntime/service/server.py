"""Running the app under uvicorn: its fast parser and loop, no access log of its own (the
middleware writes one in the runtime's format), and a bound on graceful shutdown."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    reload: bool = False
    # How long SIGTERM waits for requests in flight (streams end at once with a final event).
    graceful_seconds: float = 20.0
    # Trust X-Forwarded-* from these addresses (the load balancer's), comma-separated.
    forwarded_allow_ips: str = "127.0.0.1"


def serve(app_factory: str, options: ServerOptions) -> None:
    """Serve `module:function` (an app factory) until SIGTERM or Ctrl-C."""
    import uvicorn

    uvicorn.run(
        app_factory,
        factory=True,
        host=options.host,
        port=options.port,
        workers=None if options.reload else options.workers,
        reload=options.reload,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=max(1, round(options.graceful_seconds)),
        proxy_headers=True,
        forwarded_allow_ips=options.forwarded_allow_ips,
    )
