"""`salescast worker`: the scheduler that ingests the drop daily and retrains weekly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from salescast.cli.output import console, print_table
from salescast.config import get_settings

commands = typer.Typer()


@commands.command(short_help="Run the scheduler: ingest new files daily, retrain weekly.")
def worker(
    once: Annotated[
        Literal["ingest", "retrain"] | None,
        typer.Option(help="Run one job now and exit (non-zero when it fails) instead of the schedule"),
    ] = None,
) -> None:
    """Ingest new files from SALESCAST_DROP_URI daily and retrain weekly (SALESCAST_INGEST_CRON and
    SALESCAST_RETRAIN_CRON, UTC) until Ctrl-C; locks keep two workers from running the same job at once.

    Example: salescast worker --once ingest
    """
    import contextlib
    import logging
    import signal
    import threading

    from salescast.errors import DataValidationError
    from salescast.worker import ingest_drop, retrain, run_worker

    # salescast's own lines at INFO (one per run and file); libraries (alembic, apscheduler) only warn.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("salescast").setLevel(logging.INFO)
    settings = get_settings()
    if once == "ingest":
        reports = ingest_drop(settings)
        if not reports:
            console.print(f"no new files in {settings.drop_uri}")
            return
        table = Table(title=f"drop {settings.drop_uri}: {len(reports)} new file(s)")
        for column in ("file", "status", "run", "read", "rejected", "new", "updated", "message"):
            table.add_column(column)
        for r in reports:
            counts = (r.rows_read, r.rows_rejected, r.facts_inserted, r.facts_updated)
            table.add_row(r.source, r.status, str(r.run_id or ""), *(f"{n:,}" for n in counts), r.message)
        print_table(table)
        if not_loaded := [Path(r.source).name for r in reports if r.status != "succeeded"]:
            names = ", ".join(not_loaded)
            raise DataValidationError(f"{len(not_loaded)} of {len(reports)} file(s) not loaded: {names}")
    elif once == "retrain":
        with console.status("retraining") as status:
            result = retrain(settings, progress=lambda text: status.update(f"retraining: {text}"))
        if result is None:
            console.print("skipped: another worker holds the training lock")
        else:
            state = "promoted to production" if result.promoted else result.version.status
            console.print(f"{settings.model_name} v{result.version.version}: {state}")
    else:
        stop = threading.Event()
        # `docker stop` and systemd send SIGTERM: finish the running jobs instead of dying mid-write.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

        def started(times: dict[str, dt.datetime]) -> None:
            for job, at in times.items():
                console.print(f"{job}: next run {at:%Y-%m-%d %H:%M %Z}")
            console.print("running; Ctrl-C stops (after the running jobs finish)")

        with contextlib.suppress(KeyboardInterrupt):
            run_worker(settings, stop, on_start=started)
        console.print("stopped")
