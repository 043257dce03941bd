"""`salescast backup` and `salescast restore`: the metadata database, the registry and the model artifacts,
consistent with each other, to and from a folder or an S3 prefix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from salescast.cli.output import console, errors
from salescast.cli.services import open_engine
from salescast.config import get_settings

if TYPE_CHECKING:
    from salescast.registry.backup import BackupSummary

commands = typer.Typer()


def _show(title: str, summary: BackupSummary) -> None:
    table = Table(title=title, show_header=False)
    table.add_row("location", escape(summary.location))
    table.add_row("taken at", summary.created_at)
    table.add_row("schema revision", summary.schema_revision or "-")
    table.add_row("tables", f"{len(summary.tables)} ({sum(summary.tables.values()):,} rows)")
    for name, rows in summary.tables.items():
        table.add_row(f"  {escape(name)}", f"{rows:,}")
    table.add_row("model artifacts", str(summary.artifacts))
    production = ", ".join(f"{escape(name)} v{version}" for name, version in sorted(summary.production.items()))
    table.add_row("production", production or "-")
    console.print(table)


@commands.command(short_help="Back up the database, the registry and the model artifacts.")
def backup(
    out: Annotated[str, typer.Option("--out", help="An empty (or new) folder, or s3://bucket/prefix")],
) -> None:
    """Write every table of the metadata database (one snapshot) and every registered model's artifact to
    OUT, with a manifest of row counts and sha256 checksums written last.

    Example: salescast backup --out s3://salescast-backups/2026-12-06
    """
    from salescast.registry.backup import backup_to

    settings = get_settings()
    summary = backup_to(out, settings, open_engine(settings))
    _show(f"backup written to {summary.location}", summary)


@commands.command(short_help="Restore a backup into this installation's database and artifact store.")
def restore(
    source: Annotated[str, typer.Option("--from", help="The backup's folder or s3://bucket/prefix")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the contents of a database (and artifacts) that hold some")
    ] = False,
) -> None:
    """Check every file of the backup against its manifest, then load it all or nothing: the artifacts into
    the configured artifact store, the tables into the configured database (new, or empty unless --force).

    Example: SALESCAST_DATABASE_URL=postgresql+psycopg://…/salescast salescast restore --from ./backup-2026-12-06
    """
    from salescast.registry.restore import restore_from

    summary = restore_from(source, get_settings(), force=force)
    errors.print("[green]restored[/]: the installation now serves what the backup held", highlight=False)
    _show(f"restored from {summary.location}", summary)
