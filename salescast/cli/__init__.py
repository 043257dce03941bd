"""The salescast command line: a thin shell over the same services the API uses, one module per command
group. This module holds the root `app`, the settings check every command passes first, and `main()`,
which turns errors into one line and an exit code."""

from __future__ import annotations

import sys

import typer

from salescast.cli import backup, data, deploy, keys, models, monitor, pipeline, serve, training, web, worker
from salescast.cli.output import console, errors, format_metric, print_error
from salescast.config import get_settings
from salescast.errors import ConfigurationError, SalescastError, StorageError

__all__ = ["app", "console", "format_metric", "main"]

# Commands import pandas, SQLAlchemy and friends only when they run: `salescast --help` stays fast.

app = typer.Typer(
    help="Forecast product sales and run the forecasting models in production: load sales files, train and "
    "backtest models, keep versions in a registry, roll them out and serve forecasts over HTTP.",
    epilog="Example, from nothing to a served model: salescast init && salescast generate --out sales.csv && "
    "salescast ingest sales.csv && salescast pipeline run && salescast serve. Every command's --help ends with "
    "an example of its own.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.commands)
app.add_typer(data.group, name="data")
app.add_typer(training.commands)
app.add_typer(models.group, name="models")
app.add_typer(deploy.group, name="deploy")
app.add_typer(pipeline.group, name="pipeline")
app.add_typer(keys.group, name="keys")
app.add_typer(web.group, name="web")
app.add_typer(monitor.group, name="monitor")
app.add_typer(worker.commands)
app.add_typer(serve.commands)
app.add_typer(backup.commands)


@app.callback()
def _settings_first() -> None:
    # Every command reads the settings: a bad one stops it here, before any work, as one line and the
    # configuration exit code (also under typer's CliRunner, which does not go through main()).
    try:
        get_settings()
    except ConfigurationError as exc:
        print_error(exc)
        raise typer.Exit(exc.exit_code) from None


def main() -> None:
    """Entry point: user errors become one red line and an exit code, never a traceback."""
    try:
        app()
    except SalescastError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if not isinstance(exc, OperationalError):
            raise
        errors.print(f"[red]error:[/] {StorageError(f'database unavailable: {exc.orig}')}", highlight=False)
        sys.exit(StorageError.exit_code)
