"""The `keys` group: the API keys callers of the forecast API present (stored as hashes only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from salescast.cli.output import FormatOption, OutputFormat, console, emit, errors, print_table
from salescast.cli.services import open_key_store
from salescast.config import get_settings

group = typer.Typer(
    help="API keys for the forecast API: create one per caller, list them, revoke one.",
    epilog="Example: salescast keys create dashboard --scope read",
    no_args_is_help=True,
)


def _utc(moment: dt.datetime) -> dt.datetime:
    from salescast.data.database import as_utc

    return as_utc(moment)


def _utc_text(moment: dt.datetime) -> str:
    return f"{_utc(moment):%Y-%m-%d %H:%M:%S} UTC"


@group.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what will use the key, e.g. dashboard")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="read, predict or admin; repeatable (default read; admin implies the others)"),
    ] = None,
) -> None:
    """Create a key and print it: the only time it is shown, since salescast stores only its hash.

    Example: KEY=$(salescast keys create dashboard --scope read --scope predict)
    """
    created = open_key_store(get_settings()).create(name, scope or ["read"])
    errors.print(
        f"[green]created[/] key {created.id} {escape(repr(created.name))} ({created.prefix}), "
        f"scopes: {', '.join(created.scopes)}",
        highlight=False,
    )
    # The key alone on stdout, so that `KEY=$(salescast keys create NAME)` works.
    console.print(created.secret, markup=False, highlight=False, soft_wrap=True)
    errors.print("[yellow]copy the key now: it is not stored and cannot be shown again[/]")


LIST_FIELDS = ("id", "name", "prefix", "scopes", "created", "revoked")


@group.command("list")
def keys_list(fmt: FormatOption = OutputFormat.table) -> None:
    """Every key with its prefix and scopes; revoked keys show when they were revoked.

    Example: salescast keys list --format csv
    """
    keys = open_key_store(get_settings()).list()
    records = [
        {
            "id": key.id,
            "name": key.name,
            "prefix": key.prefix,
            "scopes": list(key.scopes),
            "created": _utc(key.created_at),
            "revoked": None if key.revoked_at is None else _utc(key.revoked_at),
        }
        for key in keys
    ]

    def table() -> None:
        out = Table(title="API keys")
        for column in LIST_FIELDS:
            out.add_column(
                column, justify="right" if column == "id" else "left", no_wrap=column in {"id", "created", "revoked"}
            )
        for key in keys:
            revoked = "" if key.revoked_at is None else f"[red]{_utc_text(key.revoked_at)}[/]"
            out.add_row(
                str(key.id), escape(key.name), key.prefix, ",".join(key.scopes), _utc_text(key.created_at), revoked
            )
        print_table(out)

    emit(fmt, LIST_FIELDS, records, table)


@group.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Key id (see `salescast keys list`)")]) -> None:
    """Revoke a key for good (servers stop accepting it within SALESCAST_AUTH_CACHE_SECONDS, 5 s by default).

    Example: salescast keys revoke 3
    """
    key = open_key_store(get_settings()).revoke(key_id)
    console.print(
        f"[green]revoked[/] key {key.id} {escape(repr(key.name))} ({key.prefix}) at {_utc_text(key.revoked_at)}",
        highlight=False,
    )
