"""Commands that fill and inspect the sales store: `init`, `generate`, `ingest` and the `data` group."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from salescast.cli.output import FormatOption, OutputFormat, console, emit, errors, numbers, print_table
from salescast.cli.services import open_engine
from salescast.config import NegativeSalesPolicy, get_settings
from salescast.data.presets import PRESETS, parse_mapping_options, resolve_spec

if TYPE_CHECKING:
    from salescast.data.ingest import IngestReport

commands = typer.Typer()
group = typer.Typer(
    help="Look inside the sales store: totals, ingestion runs and the rows a load rejected.",
    epilog="Example: salescast data summary",
    no_args_is_help=True,
)


@commands.command(short_help="Create the home folder and the database (run this first, once).")
def init() -> None:
    """Create the local folders and bring the database schema up to date (start here).

    Example: salescast init
    """
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = open_engine(settings)
    console.print(f"[green]ready[/]: database {engine.url.render_as_string(hide_password=True)}")


@commands.command(short_help="Write a synthetic sales file to try salescast on.")
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .csv, .csv.gz or .parquet")],
    stores: Annotated[int, typer.Option(min=1, help="Number of stores")] = 5,
    products: Annotated[int, typer.Option(min=1, help="Number of products")] = 50,
    days: Annotated[int, typer.Option(min=1, help="Days of history")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data")] = 0,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD")] = "2023-01-01",
) -> None:
    """Write realistic synthetic daily sales (seasonality, holidays, promotions, launches, slow movers).

    Example: salescast generate --out sales.csv --stores 3 --products 20 --days 365
    """
    from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales

    try:
        first_day = dt.date.fromisoformat(start)
    except ValueError as exc:
        raise typer.BadParameter(f"--start must be YYYY-MM-DD, got {start!r}") from exc
    config = SyntheticConfig(
        stores=stores,
        products=products,
        days=days,
        seed=seed,
        start=first_day,
        country=get_settings().holiday_country,
    )
    with console.status(f"generating {stores * products:,} series x {days:,} days"):
        frame = generate_sales(config)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_sales(frame, out)
    console.print(f"[green]wrote[/] {len(frame):,} rows ({stores * products:,} series) to {out}")


@commands.command(short_help="Load a sales file (CSV, TSV or Parquet) into the store.")
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV, TSV or Parquet file")],
    preset: Annotated[
        str | None, typer.Option(help=f"Layout preset: {', '.join(sorted(PRESETS))} (default salescast)")
    ] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="FIELD=COLUMN, repeatable; overrides the preset")
    ] = None,
    date_format: Annotated[str | None, typer.Option(help="strptime format of the date column")] = None,
    aggregate: Annotated[
        bool | None,
        typer.Option("--aggregate/--no-aggregate", help="Sum order lines per product, store and day"),
    ] = None,
    negative_sales: Annotated[
        NegativeSalesPolicy | None, typer.Option(help="Rows with negative units: keep, clip or reject")
    ] = None,
    show: Annotated[int, typer.Option(help="Rejected rows to print")] = 20,
) -> None:
    """Load a sales file into the store (one transaction; loading the same file again changes nothing).

    Example: salescast ingest sales.csv --map units=qty --date-format %d/%m/%Y
    """
    from salescast.cli.progress import expected_rows, rows_bar, shows_progress
    from salescast.data.ingest import ingest_file

    settings = get_settings()
    if negative_sales:
        settings = settings.model_copy(update={"negative_sales": negative_sales})
    spec = resolve_spec(preset, parse_mapping_options(map_ or []))
    updates: dict[str, Any] = {}
    if date_format:
        updates["date_format"] = date_format
    if aggregate is not None:
        updates["aggregate"] = aggregate
    spec = spec.model_copy(update=updates)
    engine = open_engine(settings)
    total = expected_rows(file, spec.layout == "long") if shows_progress() else None
    with rows_bar(f"loading {file.name}", total) as rows_read:
        report = ingest_file(engine, file, spec, settings, preset=preset, progress=rows_read)
    _print_ingest_report(report, show)
    if report.status == "succeeded" and (report.facts_inserted or report.facts_updated):
        _refresh_live_accuracy(engine, settings.model_name)


def _refresh_live_accuracy(engine: Any, model: str) -> None:
    """New actuals: score the stored forecasts of the versions that served those days (live accuracy). The
    file is loaded whatever happens here, so a failure is one warning line, not a failed command."""
    from salescast.monitoring.live_accuracy import update_live_accuracy

    try:
        cells = update_live_accuracy(engine, model)
    except Exception as exc:
        errors.print(f"[yellow]warning:[/] live accuracy of {model} not updated: {exc}", highlight=False)
        return
    if cells:
        console.print(f"live accuracy of {model}: {cells:,} cells (version x category x horizon day) updated")


def _print_ingest_report(report: IngestReport, show: int) -> None:
    table = Table(title=f"ingestion run {report.run_id}: {Path(report.source).name}", show_header=False)
    for label, value in [
        ("rows read", report.rows_read),
        ("rows accepted", report.rows_accepted),
        ("rows rejected", report.rows_rejected),
        ("sales rows new", report.facts_inserted),
        ("sales rows updated", report.facts_updated),
        ("sales rows unchanged", report.facts_unchanged),
    ]:
        table.add_row(label, f"{value:,}")
    table.add_row("seconds", f"{report.seconds:.2f}")
    print_table(table)
    if report.problems and show:
        _print_problems([{"line": p.line, "column": p.column, "reason": p.reason} for p in report.problems[:show]])
        if report.rows_rejected > show:
            console.print(f"… {report.rows_rejected - show:,} more; by reason: {report.reasons_summary()}")


PROBLEM_FIELDS = ("line", "column", "reason")


def _print_problems(rows: list[dict[str, Any]]) -> None:
    table = Table(title="rejected rows")
    table.add_column("line", justify="right")
    table.add_column("column")
    table.add_column("reason")
    numbers(table)
    for row in rows:
        table.add_row(str(row["line"]), row["column"] or "", row["reason"])
    print_table(table)


SUMMARY_FIELDS = (
    "products",
    "stores",
    "categories",
    "series",
    "sales_rows",
    "first_date",
    "last_date",
    "units",
    "revenue",
)


@group.command("summary")
def data_summary(
    runs: Annotated[int, typer.Option(help="Ingestion runs to list")] = 5,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Counts, date range, totals per category and the latest ingestion runs.

    json gives one object (with its categories and runs); csv one row of the store's totals.

    Example: salescast data summary --format json
    """
    from salescast.data.summary import summarize

    summary = summarize(open_engine(get_settings()), runs=runs)
    totals = {
        "products": summary.products,
        "stores": summary.stores,
        "categories": summary.categories,
        "series": summary.series,
        "sales_rows": summary.facts,
        "first_date": summary.first_date,
        "last_date": summary.last_date,
        "units": summary.total_units,
        "revenue": summary.total_revenue,
    }
    categories = [
        {"category": row.category, "products": row.products, "units": row.units, "revenue": row.revenue}
        for row in summary.by_category
    ]
    recent = [_run_record(run) for run in summary.recent_runs]

    def table() -> None:
        overview = Table(title="sales store", show_header=False)
        overview.add_row("products", f"{summary.products:,}")
        overview.add_row("stores", f"{summary.stores:,}")
        overview.add_row("categories", f"{summary.categories:,}")
        overview.add_row("series (product x store)", f"{summary.series:,}")
        overview.add_row("sales rows", f"{summary.facts:,}")
        overview.add_row("dates", f"{summary.first_date} .. {summary.last_date}")
        overview.add_row("units", f"{summary.total_units:,.0f}")
        overview.add_row("revenue", "" if summary.total_revenue is None else f"{summary.total_revenue:,.2f}")
        print_table(overview)
        per_category = Table(title="per category")
        for name in ("category", "products", "units", "revenue"):
            per_category.add_column(name, justify="left" if name == "category" else "right")
        numbers(per_category)
        for row in summary.by_category:
            revenue = "" if row.revenue is None else f"{row.revenue:,.2f}"
            per_category.add_row(row.category, f"{row.products:,}", f"{row.units:,.0f}", revenue)
        print_table(per_category)
        _print_runs(recent)

    emit(fmt, SUMMARY_FIELDS, [{**totals, "by_category": categories, "recent_runs": recent}], table, one=True)


@group.command("runs")
def data_runs(
    limit: Annotated[int, typer.Option(help="Runs to list")] = 20,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The latest ingestion runs, newest first.

    Example: salescast data runs --limit 5 --format csv
    """
    from salescast.data.summary import recent_runs

    records = [_run_record(run) for run in recent_runs(open_engine(get_settings()), limit)]
    emit(fmt, RUN_FIELDS, records, lambda: _print_runs(records))


@group.command("rejects")
def data_rejects(
    run_id: Annotated[int, typer.Argument(help="Ingestion run id")],
    limit: Annotated[int, typer.Option(help="Rows to print")] = 100,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The rejected rows of one ingestion run, with line, column and reason.

    Example: salescast data rejects 3 --limit 20
    """
    from salescast.data.summary import rejected_rows

    rows = rejected_rows(open_engine(get_settings()), run_id, limit)
    records = [{"line": r.line, "column": r.column, "reason": r.reason} for r in rows]
    emit(fmt, PROBLEM_FIELDS, records, lambda: _print_problems(records))


RUN_FIELDS = ("id", "status", "file", "read", "rejected", "new", "updated", "seconds")


def _run_record(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "file": Path(run.source).name,
        "read": run.rows_read,
        "rejected": run.rows_rejected,
        "new": run.facts_inserted,
        "updated": run.facts_updated,
        "seconds": run.seconds,
    }


def _print_runs(runs: list[dict[str, Any]]) -> None:
    table = Table(title="latest ingestion runs")
    for name in ("id", "status", "file", "read", "rejected", "new", "updated", "s"):
        table.add_column(name, justify="left" if name in {"status", "file"} else "right")
    numbers(table)
    for run in runs:
        table.add_row(
            str(run["id"]),
            run["status"],
            run["file"],
            *(f"{run[field]:,}" for field in ("read", "rejected", "new", "updated")),
            f"{run['seconds'] or 0:.1f}",
        )
    print_table(table)
