"""MkDocs hook: the pages whose content comes from the code, so the docs cannot drift from it.

- `<!-- generated: settings -->` becomes the table of every setting of `salescast.config.Settings`;
- `<!-- generated: routes -->` becomes the table of the HTTP routes, read from the app's OpenAPI document,
  which is also written into the site as `reference/openapi.json`;
- `<!-- generated: cli -->` becomes every `salescast` command with its help and options;
- `<!-- generated: exit-codes -->` becomes the error types with their exit codes and HTTP statuses.

Nothing here reaches the network: the app is built (not started) on a throwaway home folder.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

OPENAPI_FILE = "reference/openapi.json"
_openapi: dict[str, Any] | None = None


def _cell(text: Any) -> str:
    """Text fit for one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def openapi_document() -> dict[str, Any]:
    global _openapi
    if _openapi is None:
        from salescast.config import Settings
        from salescast.serving.app import create_app

        with tempfile.TemporaryDirectory(prefix="salescast-docs-") as home:
            _openapi = create_app(Settings(home=Path(home), log_format="text")).openapi()
    return _openapi


def settings_table() -> str:
    from pydantic_core import PydanticUndefined

    from salescast.config import Settings

    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        unset = default is PydanticUndefined or default is None or default == ""
        shown = "unset" if unset else f"`{default}`"
        rows.append(f"| `SALESCAST_{name.upper()}` | {_cell(shown)} | {_cell(field.description or '')} |")
    return "\n".join(rows)


def routes_table() -> str:
    document = openapi_document()
    rows = ["| route | what | API key | statuses |", "|---|---|---|---|"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            needs = "yes" if operation.get("security") else "no"
            codes = ", ".join(sorted(operation.get("responses", {})))
            what = operation.get("description") or operation.get("summary", "")
            rows.append(f"| `{method.upper()} {path}` | {_cell(what)} | {needs} | {codes} |")
    return "\n".join(rows)


def cli_commands() -> list[tuple[str, Any]]:
    """Every runnable `salescast` command as (the words a user types, the click command)."""
    import typer

    from salescast.cli import app

    found: list[tuple[str, Any]] = []

    def walk(prefix: str, command: Any) -> None:
        if hasattr(command, "commands"):  # a group (typer bundles its own copy of click)
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}", sub)
        else:
            found.append((prefix, command))

    walk("salescast", typer.main.get_command(app))
    return found


def cli_reference() -> str:
    parts: list[str] = []
    for words, command in cli_commands():
        parts.append(f"## `{words}`\n")
        parts.append((command.help or "").strip() + "\n")
        options = []
        for param in command.params:
            if param.name == "help":
                continue
            names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
            if param.param_type_name == "argument":
                names = f"`{(param.name or '').upper()}` (argument)"
            help_text = getattr(param, "help", None) or ""
            options.append(f"| {names} | {_cell(help_text)} |")
        if options:
            parts.append("| option | meaning |\n|---|---|\n" + "\n".join(options) + "\n")
    return "\n".join(parts)


def exit_codes_table() -> str:
    import inspect

    from salescast import errors

    rows = ["| exit code | HTTP status | error | meaning |", "|---:|---:|---|---|"]
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.SalescastError)]
    for cls in sorted(classes, key=lambda c: (c.exit_code, c.http_status, c.__name__)):
        meaning = (cls.__doc__ or "").strip().split("\n\n")[0]
        rows.append(f"| {cls.exit_code} | {cls.http_status} | `{cls.__name__}` | {_cell(meaning)} |")
    return "\n".join(rows)


GENERATORS = {
    "<!-- generated: settings -->": settings_table,
    "<!-- generated: routes -->": routes_table,
    "<!-- generated: cli -->": cli_reference,
    "<!-- generated: exit-codes -->": exit_codes_table,
}


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, OPENAPI_FILE, content=json.dumps(openapi_document(), indent=2)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    for marker, generate in GENERATORS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
