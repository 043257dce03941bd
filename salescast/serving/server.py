"""Running the app under an HTTP server: uvicorn (the default) or granian.

Both start `workers` processes that each build the app from the settings (`create_app` as a factory),
stop accepting on SIGTERM or Ctrl-C, let the requests in flight finish for up to `drain_seconds`, then
run the app's shutdown (which flushes the prediction log). Granian parses HTTP in Rust: on a cached
answer it serves about a quarter more requests a second than uvicorn on the same core (bench/serve.py).
"""

from __future__ import annotations

from salescast.config import ServerName

APP_FACTORY = "salescast.serving.app:create_app"


def run_server(server: ServerName, host: str, port: int, workers: int, drain_seconds: int) -> None:
    """Serve until stopped; returns after a graceful shutdown."""
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops

        Granian(
            APP_FACTORY,
            factory=True,
            address=host,
            port=port,
            workers=workers,
            interface=Interfaces.ASGI,
            loop=Loops.uvloop,
            log_access=False,
            workers_kill_timeout=drain_seconds or None,
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=drain_seconds,
    )
