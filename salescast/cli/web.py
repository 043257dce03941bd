"""The `web` group: the dashboard as a static bundle for a static host (an S3 bucket behind CloudFront)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from salescast.cli.output import console

group = typer.Typer(
    help="The web dashboard: `salescast serve` serves it at /; `web build` writes it out for a static host.",
    epilog="Example: salescast web build --api-url https://api.example.com --out site/",
    no_args_is_help=True,
)


@group.command("build")
def web_build(
    api_url: Annotated[str, typer.Option("--api-url", help="Base URL of the salescast API the pages call")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the bundle into (created)")],
    open_read: Annotated[
        bool, typer.Option("--open-read", help="The API answers reads without a key (SALESCAST_OPEN_READ)")
    ] = False,
) -> None:
    """Write the dashboard's files into OUT, set to call the API at API_URL. No key is written: a user types
    theirs into the page, which keeps it in the browser tab (sessionStorage). Allow the bundle's origin on
    the API with SALESCAST_DASHBOARD_ORIGINS.

    Example: salescast web build --api-url https://api.example.com --out site/ && aws s3 sync site/ s3://BUCKET/
    """
    from salescast.web.bundle import build_bundle

    written = build_bundle(api_url, out, open_read=open_read)
    console.print(f"[green]built[/] the dashboard: {len(written)} files in {out}, calling {api_url}", highlight=False)
