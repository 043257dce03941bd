"""The salescast command line: a thin shell over the same services the API uses."""

from __future__ import annotations

import datetime as dt
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from salescast.config import NegativeSalesPolicy, ServerName, Settings, get_settings
from salescast.data.presets import PRESETS, parse_mapping_options, resolve_spec
from salescast.errors import ConfigurationError, SalescastError, StorageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from salescast.data.ingest import IngestReport

# Commands import pandas, SQLAlchemy and friends only when they run: `salescast --help` stays fast.

app = typer.Typer(
    help="Forecast product sales and run the forecasting models in production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect the sales store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
models_app = typer.Typer(help="The model registry: versions, aliases, promotion and rollback.", no_args_is_help=True)
app.add_typer(models_app, name="models")
deploy_app = typer.Typer(
    help="Traffic between model versions: canary and linear rollouts, splits, shadows; rollback.",
    no_args_is_help=True,
)
app.add_typer(deploy_app, name="deploy")
pipeline_app = typer.Typer(help="The training pipeline: ingest, train, gate, register, promote.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
keys_app = typer.Typer(help="API keys of the forecast API: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

console = Console()
errors = Console(stderr=True)


def _print_error(exc: Exception) -> None:
    errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


@app.callback()
def _settings_first() -> None:
    # Every command reads the settings: a bad one stops it here, before any work, as one line and the
    # configuration exit code (also under typer's CliRunner, which does not go through main()).
    try:
        get_settings()
    except ConfigurationError as exc:
        _print_error(exc)
        raise typer.Exit(exc.exit_code) from None


def _engine(settings: Settings) -> Engine:
    from salescast.data.database import open_database

    return open_database(settings.resolved_database_url)


@app.command()
def init() -> None:
    """Create the local folders and bring the database schema up to date."""
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = _engine(settings)
    console.print(f"[green]ready[/]: database {engine.url.render_as_string(hide_password=True)}")


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .csv, .csv.gz or .parquet")],
    stores: Annotated[int, typer.Option(min=1, help="Number of stores")] = 5,
    products: Annotated[int, typer.Option(min=1, help="Number of products")] = 50,
    days: Annotated[int, typer.Option(min=1, help="Days of history")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data")] = 0,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD")] = "2023-01-01",
) -> None:
    """Write realistic synthetic daily sales (seasonality, holidays, promotions, launches, slow movers)."""
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


@app.command()
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
    """Load a sales file into the store (one transaction; loading the same file again changes nothing)."""
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
    engine = _engine(settings)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=errors, transient=True
    ) as progress:
        task = progress.add_task(f"loading {file.name}", total=None)
        report = ingest_file(
            engine,
            file,
            spec,
            settings,
            preset=preset,
            progress=lambda rows: progress.update(task, description=f"loading {file.name}: {rows:,} rows read"),
        )
    _print_ingest_report(report, show)


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
    console.print(table)
    if report.problems and show:
        _print_problems([(p.line, p.column, p.reason) for p in report.problems[:show]])
        if report.rows_rejected > show:
            console.print(f"… {report.rows_rejected - show:,} more; by reason: {report.reasons_summary()}")


def _print_problems(rows: list[tuple[int, str | None, str]]) -> None:
    table = Table(title="rejected rows")
    table.add_column("line", justify="right")
    table.add_column("column")
    table.add_column("reason")
    for line, column, reason in rows:
        table.add_row(str(line), column or "", reason)
    console.print(table)


@data_app.command("summary")
def data_summary(runs: Annotated[int, typer.Option(help="Ingestion runs to list")] = 5) -> None:
    """Counts, date range, totals per category and the latest ingestion runs."""
    from salescast.data.summary import summarize

    summary = summarize(_engine(get_settings()), runs=runs)
    overview = Table(title="sales store", show_header=False)
    overview.add_row("products", f"{summary.products:,}")
    overview.add_row("stores", f"{summary.stores:,}")
    overview.add_row("categories", f"{summary.categories:,}")
    overview.add_row("series (product x store)", f"{summary.series:,}")
    overview.add_row("sales rows", f"{summary.facts:,}")
    overview.add_row("dates", f"{summary.first_date} .. {summary.last_date}")
    overview.add_row("units", f"{summary.total_units:,.0f}")
    overview.add_row("revenue", "" if summary.total_revenue is None else f"{summary.total_revenue:,.2f}")
    console.print(overview)
    categories = Table(title="per category")
    for name in ("category", "products", "units", "revenue"):
        categories.add_column(name, justify="left" if name == "category" else "right")
    for row in summary.by_category:
        revenue = "" if row.revenue is None else f"{row.revenue:,.2f}"
        categories.add_row(row.category, f"{row.products:,}", f"{row.units:,.0f}", revenue)
    console.print(categories)
    _print_runs(summary.recent_runs)


@data_app.command("runs")
def data_runs(limit: Annotated[int, typer.Option(help="Runs to list")] = 20) -> None:
    """The latest ingestion runs."""
    from salescast.data.summary import recent_runs

    _print_runs(recent_runs(_engine(get_settings()), limit))


@data_app.command("rejects")
def data_rejects(
    run_id: Annotated[int, typer.Argument(help="Ingestion run id")],
    limit: Annotated[int, typer.Option(help="Rows to print")] = 100,
) -> None:
    """The rejected rows of one ingestion run, with line, column and reason."""
    from salescast.data.summary import rejected_rows

    rows = rejected_rows(_engine(get_settings()), run_id, limit)
    _print_problems([(r.line, r.column, r.reason) for r in rows])


def _print_runs(runs: list[Any]) -> None:
    table = Table(title="latest ingestion runs")
    for name in ("id", "status", "file", "read", "rejected", "new", "updated", "s"):
        table.add_column(name, justify="left" if name in {"status", "file"} else "right")
    for run in runs:
        table.add_row(
            str(run.id),
            run.status,
            Path(run.source).name,
            f"{run.rows_read:,}",
            f"{run.rows_rejected:,}",
            f"{run.facts_inserted:,}",
            f"{run.facts_updated:,}",
            f"{run.seconds or 0:.1f}",
        )
    console.print(table)


def _parse_weights(spec: str | None) -> tuple[str, dict[str, float] | None]:
    """`scaled_error`, `inverse_error`, `nnls`, or fixed weights `xgb=0.5,prophet=0.5` (the seed's design)."""
    from salescast.models.ensemble import DEFAULT_WEIGHT_METHOD, WEIGHT_METHODS

    if spec is None or spec in WEIGHT_METHODS:
        return spec or DEFAULT_WEIGHT_METHOD, None
    weights: dict[str, float] = {}
    for part in spec.split(","):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"--weights expects scaled_error, inverse_error, nnls or NAME=W,...; got {spec!r}")
    total = sum(weights.values())
    if total <= 0:
        raise typer.BadParameter("fixed weights must sum to more than 0")
    return "fixed", {name: w / total for name, w in weights.items()}


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


def _metric_table(title: str, table: Any, columns: tuple[str, ...]) -> Table:
    out = Table(title=title)
    out.add_column(table.index.name or "")
    for name in columns:
        out.add_column(name, justify="right")
    for key, row in table.iterrows():
        label = " / ".join(map(str, key)) if isinstance(key, tuple) else str(key)
        out.add_row(label, *(format_metric(c, row[c]) for c in columns))
    return out


EngineOption = Annotated[
    str | None, typer.Option("--engine", help="Compute engine: local:// (default), dask://host:port or dask://local")
]

StepOption = Annotated[
    int | None,
    typer.Option(
        help="Periods between window origins (default: a year over windows - 1, so that the first window is "
        "the hold-out's season a year earlier, when the history reaches back that far; else the horizon)"
    ),
]

METRIC_COLUMNS = ("mase", "wape", "rmse", "mae", "r2", "mape", "smape", "bias", "coverage")
# WAPE, MAPE, sMAPE, bias and coverage are in percent.


@app.command()
def train(
    models: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated families (lgbm, lgbm_tweedie, xgb, ets, theta, arima, prophet, savg) or auto, "
            "the default pipeline of the data's frequency (default: SALESCAST_PIPELINE_MODELS)"
        ),
    ] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Periods to forecast (and to hold out)")] = 28,
    windows: Annotated[int, typer.Option(min=1, help="Backtest windows; all but the last calibrate")] = 3,
    step: StepOption = None,
    weights: Annotated[
        str | None,
        typer.Option(help="Ensemble weights: scaled_error (default), inverse_error, nnls, or fixed NAME=W,..."),
    ] = None,
    freq: Annotated[str | None, typer.Option(help="Series frequency (D, W-SUN, MS); inferred when omitted")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the hold-out predictions here (.csv or .parquet), as backtest --out")
    ] = None,
    model_dir: Annotated[Path | None, typer.Option(help="Folder for the trained model (default under home)")] = None,
    reconcile: Annotated[
        str | None,
        typer.Option(help="Report hierarchy reconciliation: comma-separated bottom_up, ols, wls_struct, mint_shrink"),
    ] = None,
    compute_url: EngineOption = None,
) -> None:
    """Backtest the chosen model families against SeasonalNaive, learn the ensemble, refit on all history."""
    from salescast.features.frame import load_series
    from salescast.models.catalog import family_params, parse_models, resolve_models
    from salescast.training.backtest import BacktestSpec, seasonal_step
    from salescast.training.engine import compute_engine, train_on
    from salescast.training.hierarchy import METHODS

    settings = get_settings()
    names = parse_models(models or settings.pipeline_models)
    method, fixed = _parse_weights(weights)
    methods = [m.strip() for m in (reconcile or "").split(",") if m.strip()]
    if unknown := [m for m in methods if m not in METHODS]:
        raise typer.BadParameter(f"--reconcile: unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    engine = _engine(settings)
    frame = load_series(engine, freq=freq)
    names = resolve_models(names, frame.freq, settings.point_forecast)
    if fixed and set(fixed) != set(names):
        raise typer.BadParameter(f"fixed weights name {sorted(fixed)} but the models are {sorted(names)}")
    params: dict[str, dict[str, object]] = dict(family_params(names, settings.holiday_country))
    with compute_engine(compute_url or settings.compute_url) as compute, console.status("training") as status:
        model, report = train_on(
            compute,
            frame,
            names,
            BacktestSpec(horizon=horizon, windows=windows, step=step or seasonal_step(frame, horizon, windows)),
            weight_method=method,  # type: ignore[arg-type]
            fixed_weights=fixed,
            model_params=params,
            progress=lambda text: status.update(f"training: {text}"),
            reconcile=methods,  # type: ignore[arg-type]
        )
    _print_training(report, frame.freq, len(frame.ids))
    if out and report.holdout is not None:
        _write_table(report.holdout, out)
    folder = model_dir or settings.home / "models" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    model.save(folder)
    report.metrics.to_csv(folder / "backtest_metrics.csv", index=False)
    console.print(f"[green]saved[/] the ensemble to {folder}")


@app.command()
def backtest(
    models: Annotated[
        str | None, typer.Option(help="Comma-separated families (default: SALESCAST_PIPELINE_MODELS)")
    ] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Periods per window")] = 30,
    windows: Annotated[int, typer.Option(min=1, help="Rolling-origin windows; all but the last calibrate")] = 3,
    step: StepOption = None,
    weights: Annotated[
        str | None,
        typer.Option(help="Ensemble weights: scaled_error (default), inverse_error, nnls, or fixed NAME=W,..."),
    ] = None,
    freq: Annotated[str | None, typer.Option(help="Series frequency; inferred when omitted")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the per-period results, ensemble column included (.csv or .parquet)")
    ] = None,
) -> None:
    """Rolling-origin cross-validation of the families, their blend (`ensemble`, as train would weight it)
    and SeasonalNaive: metrics per window, and the hold-out per path (full, short, cold)."""
    from salescast.features.frame import load_series
    from salescast.models.catalog import family_params, parse_models, resolve_models
    from salescast.training.backtest import BacktestSpec, seasonal_step
    from salescast.training.train import evaluate_models

    settings = get_settings()
    names = parse_models(models or settings.pipeline_models)
    method, fixed = _parse_weights(weights)
    frame = load_series(_engine(settings), freq=freq)
    names = resolve_models(names, frame.freq, settings.point_forecast)
    if fixed and set(fixed) != set(names):
        raise typer.BadParameter(f"fixed weights name {sorted(fixed)} but the models are {sorted(names)}")
    spec = BacktestSpec(horizon=horizon, windows=windows, step=step or seasonal_step(frame, horizon, windows))
    with console.status("backtesting") as status:
        report = evaluate_models(
            frame,
            names,
            spec,
            weight_method=method,  # type: ignore[arg-type]
            fixed_weights=fixed,
            model_params=dict(family_params(names, settings.holiday_country)),
            progress=lambda t: status.update(f"backtest: {t}"),
        )
    columns = tuple(c for c in METRIC_COLUMNS if c != "coverage")
    for number, (_, part) in enumerate(report.window_metrics.groupby("window"), start=1):
        overall = part.set_index("model")
        console.print(_metric_table(f"window {number}: after {part['cutoff'].max():%Y-%m-%d}", overall, columns))
    _print_training(report, frame.freq, len(frame.ids))
    if out:
        _write_table(report.backtest.results, out)


def _write_table(table: Any, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out) if out.suffix == ".parquet" else table.to_csv(out, index=False)
    console.print(f"[green]wrote[/] {len(table):,} rows to {out}")


def _print_training(report: Any, freq: str, series: int) -> None:
    from salescast.models.paths import describe_paths

    spec = report.backtest.spec
    console.print(
        f"{series:,} series ({freq}); series by path: {describe_paths(report.paths)}; "
        f"hold-out: the last {spec.horizon} periods"
        + ("" if report.calibrated_out_of_sample else " (single window: weights and intervals in-sample)")
    )
    console.print(_metric_table("hold-out accuracy (coverage = p10..p90)", report.overall(), METRIC_COLUMNS))
    by_path = report.by_path()
    if not by_path.empty:
        console.print(_metric_table("hold-out by path", by_path, ("mase", "wape", "bias", "coverage")))
    weights = ", ".join(f"{name} {w:.2f}" for name, w in report.weights.items())
    timing = ", ".join(f"{name} {s:.1f}s" for name, s in report.seconds.items())
    console.print(f"ensemble weights: {weights} ({report.weight_rule})\ntime: {timing}")
    if report.reconciliation is not None:
        table = report.reconciliation.set_index(["method", "level"])
        table.index = [f"{m} / {lv}" for m, lv in table.index]
        console.print(
            _metric_table("ensemble hold-out accuracy by hierarchy level", table, ("mase", "wape", "mae", "rmse"))
        )


def _registry(settings: Settings) -> Any:
    from salescast.registry.versions import ModelRegistry

    return ModelRegistry.from_settings(settings, _engine(settings))


@pipeline_app.command("run")
def pipeline_run(
    files: Annotated[list[Path] | None, typer.Argument(help="New sales files to ingest first")] = None,
    name: Annotated[str, typer.Option(help="Registered model name")] = "demand",
    models: Annotated[
        str | None, typer.Option(help="Comma-separated families (default: SALESCAST_PIPELINE_MODELS)")
    ] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Forecast horizon and hold-out length")] = 28,
    windows: Annotated[int, typer.Option(min=1, help="Backtest windows; all but the last calibrate")] = 3,
    promote: Annotated[bool, typer.Option("--promote/--no-promote", help="Promote when the gate passes")] = True,
    compute_url: EngineOption = None,
) -> None:
    """Ingest new files, train, backtest, gate, register and (if it passes) promote and store forecasts."""
    from salescast.models.catalog import parse_models
    from salescast.monitoring.alerts import alert_sink
    from salescast.pipeline import PipelineConfig, run_pipeline

    settings = get_settings()
    names = parse_models(models or settings.pipeline_models)
    config = PipelineConfig(
        name=name,
        models=names,
        horizon=horizon,
        windows=windows,
        promote=promote,
        compute_url=compute_url or "",
    )
    registry = _registry(settings)
    with console.status("pipeline") as status:
        result = run_pipeline(
            registry.engine,
            registry,
            alert_sink(settings.alert_url, settings),
            config,
            settings,
            new_files=files or [],
            progress=lambda text: status.update(f"pipeline: {text}"),
        )
    version = result.version
    _print_training(result.report, version.freq, version.series)
    verdict = Table(title=f"gate: {name} v{version.version} {'passed' if result.verdict.passed else 'FAILED'}")
    for column in ("metric", "against", "value", "reference", "rule", "ok"):
        verdict.add_column(column)
    for check in result.verdict.checks:
        reference = "" if check.reference is None else f"{check.reference:.4g}"
        verdict.add_row(
            check.metric,
            check.against,
            f"{check.value:.4g}",
            reference,
            check.required,
            "yes" if check.passed else "[red]no[/]",
        )
    console.print(verdict)
    timing = ", ".join(f"{step} {s:.1f}s" for step, s in result.seconds.items())
    state = (
        f"promoted to production, {result.forecasts_stored:,} forecasts stored" if result.promoted else version.status
    )
    console.print(f"{name} v{version.version}: {state}\ntime: {timing}")


@models_app.command("list")
def models_list(name: Annotated[str | None, typer.Argument(help="Model name (all when omitted)")] = None) -> None:
    """Registered versions with their status, aliases and hold-out MASE."""
    registry = _registry(get_settings())
    table = Table(title="model versions")
    for column in ("name", "version", "created", "status", "aliases", "families", "series", "MASE", "vs naive"):
        table.add_column(column)
    aliases: dict[str, dict[int, list[str]]] = {}
    for row in registry.versions(name):
        if row.name not in aliases:
            aliases[row.name] = {}
            for alias, number in registry.aliases(row.name).items():
                aliases[row.name].setdefault(number, []).append(alias)
        candidate = (row.metrics or {}).get("candidate") or {}
        baseline = (row.metrics or {}).get("baseline") or {}
        table.add_row(
            row.name,
            str(row.version),
            f"{row.created_at:%Y-%m-%d %H:%M}",
            row.status,
            ",".join(aliases[row.name].get(row.version, [])),
            ",".join(row.families),
            f"{row.series:,}",
            format_metric("mase", candidate.get("mase")),
            format_metric("mase", baseline.get("mase")),
        )
    console.print(table)


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Model name")],
    version: Annotated[str, typer.Argument(help="Version number or alias")] = "production",
) -> None:
    """Everything recorded about one version: lineage, metrics, gate verdict, artifact."""
    row = _registry(get_settings()).version(name, version)
    table = Table(title=f"{name} v{row.version}", show_header=False)
    for field in (
        "status",
        "reason",
        "created_at",
        "families",
        "weights",
        "params",
        "features",
        "freq",
        "horizon",
        "series",
        "data_start",
        "data_end",
        "data_fingerprint",
        "package_version",
        "git_commit",
        "artifact_uri",
        "artifact_sha256",
        "artifact_size",
        "artifact_version_id",
    ):
        table.add_row(field, str(getattr(row, field)))
    metrics = dict(row.metrics or {})
    card = metrics.pop("card", None)
    for group, values in metrics.items():
        if values:
            table.add_row(f"metrics ({group})", ", ".join(f"{k} {format_metric(k, v)}" for k, v in values.items()))
    if card:
        from salescast.training.card import card_rows

        for label, text in card_rows(card):
            table.add_row(label, text)
    console.print(table)


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="Model name")],
    version: Annotated[int, typer.Argument(help="Version number")],
    alias: Annotated[str, typer.Option(help="Alias to set")] = "production",
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit trail)")] = None,
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Point an alias at a version (production: only after its artifact verifies and loads)."""
    from salescast.models.ensemble import EnsembleModel

    registry = _registry(get_settings())
    if alias == "production":
        event = registry.promote(name, version, actor, reason, verify=EnsembleModel.load)
    else:
        event = registry.set_alias(name, alias, version, actor, reason)
    _print_move(name, alias, version, event)


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="Model name")],
    alias: Annotated[str, typer.Option(help="Alias to roll back")] = "production",
    reason: Annotated[str | None, typer.Option(help="Why")] = None,
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Point an alias back at the last different version it pointed to (its artifact checked first)."""
    from salescast.models.ensemble import EnsembleModel

    registry = _registry(get_settings())
    verify = EnsembleModel.load if alias == "production" else None
    registry.rollback(name, actor, alias, reason, verify=verify)
    console.print(f"[green]{name} @{alias}[/] -> v{registry.alias(name, alias).version}")


def _print_move(name: str, alias: str, version: int, event: Any) -> None:
    if event.id is None:  # the registry writes no audit row for a move that changes nothing
        console.print(f"{name} @{alias} is v{version} already: nothing changed")
    else:
        console.print(f"[green]{name} @{alias}[/] -> v{version}")


@models_app.command("diff")
def models_diff(
    name: Annotated[str, typer.Argument(help="Model name")],
    version_a: Annotated[str, typer.Argument(help="Version or alias")],
    version_b: Annotated[str, typer.Argument(help="Version or alias")],
) -> None:
    """Two versions side by side: configuration, data and hold-out metrics."""
    registry = _registry(get_settings())
    a, b = registry.version(name, version_a), registry.version(name, version_b)
    table = Table(title=f"{name}: v{a.version} vs v{b.version}")
    for column in ("field", f"v{a.version}", f"v{b.version}"):
        table.add_column(column)
    for field in (
        "status",
        "families",
        "weights",
        "params",
        "freq",
        "horizon",
        "series",
        "data_start",
        "data_end",
        "data_fingerprint",
        "git_commit",
    ):
        left, right = str(getattr(a, field)), str(getattr(b, field))
        table.add_row(field, left, right if right == left else f"[yellow]{right}[/]")
    metrics_a = (a.metrics or {}).get("candidate") or {}
    metrics_b = (b.metrics or {}).get("candidate") or {}
    for metric in sorted(set(metrics_a) | set(metrics_b)):
        table.add_row(
            metric, format_metric(metric, metrics_a.get(metric)), format_metric(metric, metrics_b.get(metric))
        )
    console.print(table)


@models_app.command("history")
def models_history(
    name: Annotated[str, typer.Argument(help="Model name")],
    alias: Annotated[str | None, typer.Option(help="Only this alias")] = None,
) -> None:
    """The audit trail of alias changes: who moved which alias from which version to which, when, why."""
    registry = _registry(get_settings())
    numbers = {row.id: row.version for row in registry.versions(name)}
    table = Table(title=f"{name}: alias changes")
    for column in ("at", "alias", "from", "to", "actor", "reason"):
        table.add_column(column)
    for event in registry.history(name, alias):
        table.add_row(
            f"{event.at:%Y-%m-%d %H:%M:%S}",
            event.alias,
            str(numbers.get(event.from_version_id, "-")),
            str(numbers.get(event.to_version_id, "-")),
            event.actor,
            event.reason or "",
        )
    console.print(table)


def _deployments(settings: Settings) -> Any:
    from salescast.monitoring.alerts import alert_sink
    from salescast.registry.deployments import DeploymentService
    from salescast.serving.stored_forecasts import ensure_stored_forecasts

    registry = _registry(settings)
    return DeploymentService(
        registry.engine,
        registry,
        alert_sink(settings.alert_url, settings),
        lambda row: ensure_stored_forecasts(registry.engine, registry, row, settings),
    )


def _print_deployment(deployment: Any, now: dt.datetime | None = None) -> None:
    from salescast.data.database import as_utc
    from salescast.registry.deployments import ROLLOUTS

    now = now or dt.datetime.now(dt.UTC)
    table = Table(title=f"{deployment.name}: deployment #{deployment.id}", show_header=False)
    table.add_row("strategy", deployment.strategy)
    table.add_row("versions", f"v{deployment.baseline_version} -> v{deployment.candidate_version}")
    table.add_row("share on candidate", f"{deployment.share:.0%}")
    steps = ", ".join(f"{s:.0%}" for s in deployment.steps)
    table.add_row("step", f"{deployment.step + 1} of {len(deployment.steps)} ({steps})")
    if deployment.status == "active" and deployment.strategy in ROLLOUTS:
        baked = (now - as_utc(deployment.step_started_at)).total_seconds()
        table.add_row("baking time left", f"{max(0.0, deployment.bake_seconds - baked):.0f} s")
    status = deployment.status
    colour = {"active": "cyan", "completed": "green", "rolled_back": "red"}.get(status, "yellow")
    table.add_row("status", f"[{colour}]{status}[/]")
    table.add_row("reason", deployment.reason or "")
    table.add_row("started", f"{deployment.created_at:%Y-%m-%d %H:%M:%S} by {deployment.actor}")
    console.print(table)


@deploy_app.command("start")
def deploy_start(
    name: Annotated[str, typer.Argument(help="Model name")],
    version: Annotated[int, typer.Argument(help="Candidate version number")],
    strategy: Annotated[
        str, typer.Option(help="all_at_once, canary, linear, split (a fixed share) or shadow (served to nobody)")
    ] = "canary",
    steps: Annotated[
        str | None, typer.Option(help="Candidate share at each step, e.g. 0.1,1.0 (split: the one share)")
    ] = None,
    bake: Annotated[float, typer.Option(min=0, help="Seconds each step runs healthy before the next")] = 600,
    max_error_increase: Annotated[
        float, typer.Option(min=0, help="Roll back when the candidate's error rate is this much higher")
    ] = 0.01,
    max_latency_ratio: Annotated[
        float, typer.Option(min=0, help="Roll back when the candidate's latency is this many times the baseline's")
    ] = 1.5,
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Start moving traffic from production to a candidate version (its forecasts are stored first)."""
    shares: list[float] | None = None
    if steps is not None:
        try:
            shares = [float(part) for part in steps.split(",") if part.strip()]
        except ValueError as exc:
            raise typer.BadParameter(f"--steps expects shares such as 0.1,0.5,1.0; got {steps!r}") from exc
    deployment = _deployments(get_settings()).start(
        name,
        version,
        strategy,
        steps=shares,
        bake_seconds=bake,
        max_error_rate_increase=max_error_increase,
        max_latency_ratio=max_latency_ratio,
        actor=actor,
    )
    _print_deployment(deployment)


@deploy_app.command("status")
def deploy_status(name: Annotated[str, typer.Argument(help="Model name")]) -> None:
    """The active deployment (or the latest one) with its health so far."""
    service = _deployments(get_settings())
    deployment = service.active(name)
    if deployment is None:
        history = service.history(name)
        if not history:
            console.print(f"{name}: no deployments")
            return
        deployment = history[-1]
    _print_deployment(deployment)
    if deployment.status == "active" and deployment.strategy != "shadow":
        verdict = service.health(deployment)
        console.print(f"health this step: {verdict.outcome} ({verdict.reason})")


@deploy_app.command("evaluate")
def deploy_evaluate(name: Annotated[str, typer.Argument(help="Model name")]) -> None:
    """One controller step, for cron or CI: roll back on bad health, else advance or complete a baked step."""
    deployment = _deployments(get_settings()).evaluate(name)
    if deployment is None:
        console.print(f"{name}: no active deployment")
        return
    _print_deployment(deployment)


@deploy_app.command("promote")
def deploy_promote(
    name: Annotated[str, typer.Argument(help="Model name")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit trail)")] = None,
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Make the candidate production now, whatever step the deployment is at."""
    _print_deployment(_deployments(get_settings()).promote_candidate(name, actor, reason))


@deploy_app.command("rollback")
def deploy_rollback(
    name: Annotated[str, typer.Argument(help="Model name")],
    reason: Annotated[str, typer.Option(help="Why (kept with the deployment and sent as an alert)")],
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Take all traffic off the candidate now; production stays as it is."""
    _print_deployment(_deployments(get_settings()).rollback(name, actor, reason))


@deploy_app.command("stop")
def deploy_stop(
    name: Annotated[str, typer.Argument(help="Model name")],
    reason: Annotated[str | None, typer.Option(help="Why")] = None,
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """End a split or shadow without promoting: production keeps all traffic."""
    _print_deployment(_deployments(get_settings()).stop(name, actor, reason))


def _utc_text(moment: dt.datetime) -> str:
    from salescast.data.database import as_utc

    return f"{as_utc(moment):%Y-%m-%d %H:%M:%S} UTC"


def _key_store(settings: Settings) -> Any:
    from salescast.serving.auth import KeyStore

    # No cache: a command reads the database once anyway, and must see every revocation.
    return KeyStore(_engine(settings), cache_seconds=0)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what will use the key, e.g. dashboard")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="read, predict or admin; repeatable (default read; admin implies the others)"),
    ] = None,
) -> None:
    """Create a key and print it: the only time it is shown, since salescast stores only its hash."""
    created = _key_store(get_settings()).create(name, scope or ["read"])
    errors.print(
        f"[green]created[/] key {created.id} {escape(repr(created.name))} ({created.prefix}), "
        f"scopes: {', '.join(created.scopes)}",
        highlight=False,
    )
    # The key alone on stdout, so that `KEY=$(salescast keys create NAME)` works.
    console.print(created.secret, markup=False, highlight=False, soft_wrap=True)
    errors.print("[yellow]copy the key now: it is not stored and cannot be shown again[/]")


@keys_app.command("list")
def keys_list() -> None:
    """Every key with its prefix and scopes; revoked keys show when they were revoked."""
    table = Table(title="API keys")
    for column in ("id", "name", "prefix", "scopes", "created", "revoked"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for key in _key_store(get_settings()).list():
        revoked = "" if key.revoked_at is None else f"[red]{_utc_text(key.revoked_at)}[/]"
        table.add_row(
            str(key.id), escape(key.name), key.prefix, ",".join(key.scopes), _utc_text(key.created_at), revoked
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Key id (see `salescast keys list`)")]) -> None:
    """Revoke a key for good (servers stop accepting it within auth_cache_seconds)."""
    key = _key_store(get_settings()).revoke(key_id)
    console.print(
        f"[green]revoked[/] key {key.id} {escape(repr(key.name))} ({key.prefix}) at {_utc_text(key.revoked_at)}",
        highlight=False,
    )


@app.command()
def worker(
    once: Annotated[
        Literal["ingest", "retrain"] | None,
        typer.Option(help="Run one job now and exit (non-zero when it fails) instead of the schedule"),
    ] = None,
) -> None:
    """Ingest the drop daily and retrain weekly (cron in UTC from the settings) until Ctrl-C; locks keep
    two workers from running the same job at once."""
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
        console.print(table)
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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: serve_host)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default: serve_port)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default: serve_workers)")] = None,
    drain_seconds: Annotated[int, typer.Option(min=0, help="How long shutdown waits for requests in flight")] = 30,
    server: Annotated[
        ServerName | None, typer.Option(help="HTTP server: uvicorn or granian (default: serve_server)")
    ] = None,
) -> None:
    """Serve the forecast API (uvicorn or granian). SIGTERM or Ctrl-C stops accepting, drains requests in
    flight, flushes the prediction log, then exits."""
    import os
    import tempfile

    from salescast.serving.server import run_server

    settings = get_settings()
    host, port, workers = host or settings.serve_host, port or settings.serve_port, workers or settings.serve_workers
    try:
        _engine(settings)  # migrate before any worker starts
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
        f"salescast API on [bold]http://{host}:{port}[/] (docs: http://{host}:{port}/docs), {workers} worker(s), "
        f"{server or settings.serve_server}"
    )
    if settings.open_read:
        console.print("[yellow]open read mode[/]: GET routes answer without an API key (demo setting)")
    run_server(server or settings.serve_server, host, port, workers, drain_seconds)


def main() -> None:
    """Entry point: user errors become one red line and an exit code, never a traceback."""
    try:
        app()
    except SalescastError as exc:
        _print_error(exc)
        sys.exit(exc.exit_code)
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if not isinstance(exc, OperationalError):
            raise
        errors.print(f"[red]error:[/] {StorageError(f'database unavailable: {exc.orig}')}", highlight=False)
        sys.exit(StorageError.exit_code)


if __name__ == "__main__":
    main()
