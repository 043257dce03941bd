"""What the commands print: the consoles, whole-value tables, metric formatting and `--format json|csv`."""

from __future__ import annotations

import csv
import datetime as dt
import enum
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def print_error(exc: Exception) -> None:
    errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", help="table for people; json or csv for scripts (whole values, ISO dates, null)"),
]

Record = Mapping[str, Any]


def print_table(table: Table) -> None:
    """Print a table without cutting any value: in a pipe or a file at its natural width (no terminal to
    fit), on a narrow terminal no narrower than its longest word, so cells wrap between words, never
    inside one (rich would otherwise shorten `production` to `produ…`)."""
    measured = Measurement.get(console, console.options.update_width(100_000), table)
    needed = measured.minimum if console.is_terminal else measured.maximum
    if needed > console.width:
        table.width = needed
    console.print(table, crop=False)


def numbers(table: Table) -> None:
    """Make every right-aligned (numeric) column of `table` print on one line."""
    for column in table.columns:
        if column.justify == "right":
            column.no_wrap = True


def plain(value: Any) -> Any:
    """A value as JSON would carry it: dates in ISO 8601, paths as text, NaN and infinity as null."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(plain(data), indent=2) + "\n")


def write_csv(fields: Sequence[str], records: Sequence[Record]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(fields)
    for record in records:
        writer.writerow([_cell(record.get(field)) for field in fields])


def emit(
    fmt: OutputFormat, fields: Sequence[str], records: Sequence[Record], table: Callable[[], None], *, one: bool = False
) -> None:
    """Hand a listing to its format: `table()` prints it for people; json writes the records (one object
    when `one`, for show and status) and csv a header row and a row per record."""
    if fmt is OutputFormat.table:
        table()
    elif fmt is OutputFormat.json:
        write_json((records[0] if records else None) if one else list(records))
    else:
        write_csv(fields, records)


PERCENT_METRICS = frozenset({"wape", "mape", "smape", "bias", "coverage"})


def format_metric(name: str, value: Any) -> str:
    """One style everywhere: percentages (WAPE, MAPE, sMAPE, bias, coverage) with one decimal, MASE and
    R² with three, errors in units with thousands separators; a missing value as `–`."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    number = float(value)
    if name in PERCENT_METRICS:
        return f"{number:.1f} %"
    if name in ("mase", "r2"):
        return f"{number:.3f}"
    return f"{number:,.3f}" if abs(number) < 10 else f"{number:,.1f}"


def metric_table(title: str, table: Any, columns: tuple[str, ...]) -> Table:
    out = Table(title=title)
    out.add_column(table.index.name or "")
    for name in columns:
        out.add_column(name, justify="right")
    for key, row in table.iterrows():
        label = " / ".join(map(str, key)) if isinstance(key, tuple) else str(key)
        out.add_row(label, *(format_metric(c, row[c]) for c in columns))
    numbers(out)
    return out
