"""`salescast serve`: the forecast API over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from salescast.cli.output import console
from salescast.cli.services import open_engine
from salescast.config import ServerName, get_settings
from salescast.errors import StorageError

commands = typer.Typer()


@commands.command(short_help="Serve forecasts over HTTP (the forecast API).")
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: SALESCAST_SERVE_HOST, 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default: SALESCAST_SERVE_PORT, 8000)")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: SALESCAST_SERVE_WORKERS, 1)")
    ] = None,
    drain_seconds: Annotated[int, typer.Option(min=0, help="How long shutdown waits for requests in flight")] = 30,
    server: Annotated[
        ServerName | None,
        typer.Option(help="HTTP server: uvicorn or granian (default: SALESCAST_SERVE_SERVER, uvicorn)"),
    ] = None,
) -> None:
    """Serve the forecast API (uvicorn or granian). SIGTERM or Ctrl-C stops accepting, drains requests in
    flight, flushes the prediction log, then exits.

    Example: salescast serve --port 8000 --workers 2
    """
    import os
    import tempfile

    from salescast.serving.server import run_server

    settings = get_settings()
    host, port, workers = host or settings.serve_host, port or settings.serve_port, workers or settings.serve_workers
    try:
        open_engine(settings)  # migrate before any worker starts
    except StorageError as exc:
        # Up but not ready beats a crash loop: /health answers, /ready says 503 until the database does.
        console.print(f"[yellow]database unavailable[/]: {exc}; serving, not ready until it answers")
    if workers > 1 and not settings.metrics_multiproc_dir:
        # Worker processes each count their own requests; prometheus-client adds them up from a shared
        # folder. The workers read their settings from the environment, so the folder goes there.
        folder = tempfile.mkdtemp(prefix="salescast-metrics-")
        os.environ["SALESCAST_METRICS_MULTIPROC_DIR"] = folder
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    console.print(
        f"salescast dashboard on [bold]http://{host}:{port}/[/], API docs on http://{host}:{port}/docs, "
        f"{workers} worker(s), {server or settings.serve_server}"
    )
    if settings.open_read:
        console.print("[yellow]open read mode[/]: GET routes answer without an API key (demo setting)")
    run_server(server or settings.serve_server, host, port, workers, drain_seconds)
