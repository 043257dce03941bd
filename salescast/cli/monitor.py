"""The `monitor` group: how the forecasts turned out (live accuracy) and whether the data still looks like
what the models learnt from (drift, freshness, volume)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.table import Table

from salescast.cli.output import FormatOption, OutputFormat, console, emit, format_metric, numbers, print_table
from salescast.cli.services import open_engine
from salescast.config import get_settings

group = typer.Typer(
    help="Watch models in production: live accuracy as actuals arrive, drift, data freshness and volume.",
    epilog="Example: salescast monitor accuracy --by horizon --format csv > accuracy.csv",
    no_args_is_help=True,
)


class Level(enum.StrEnum):
    version = "version"
    category = "category"
    horizon = "horizon"


DRIFT_FIELDS = ("check", "subject", "value", "threshold", "state")


@group.command("accuracy")
def monitor_accuracy(
    model: Annotated[str | None, typer.Option(help="Model name (default: SALESCAST_MODEL_NAME)")] = None,
    version: Annotated[list[int] | None, typer.Option(help="Only this version (repeatable)")] = None,
    by: Annotated[Level, typer.Option(help="Rows per version, per version and category, or per horizon day too")] = (
        Level.category
    ),
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Recompute from the stored forecasts and sales first")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Realised MAE, WAPE, MASE and bias of the versions that served (production or challenger), from the
    actuals ingested since their training data ended.

    Example: salescast monitor accuracy --by version --format json
    """
    from salescast.monitoring.live_accuracy import AccuracyRow, accuracy, update_live_accuracy

    columns = tuple(field.name for field in dataclasses.fields(AccuracyRow))
    settings = get_settings()
    name = model or settings.model_name
    engine = open_engine(settings)
    if refresh:
        update_live_accuracy(engine, name)
    rows = [row.as_dict() for row in accuracy(engine, name, level=by.value, versions=version)]

    def table() -> None:
        if not rows:
            console.print(
                f"no live accuracy for {name} yet: it needs a promoted version and sales ingested after its "
                "training data (then `salescast monitor accuracy --refresh`)"
            )
            return
        out = Table(title=f"{name}: live accuracy (p50 against actuals)")
        shown = [f for f in columns if f != "model" and (f != "category" or by is not Level.version)]
        shown = [f for f in shown if f != "horizon_day" or by is Level.horizon]
        for field in shown:
            out.add_column(field, justify="right" if field not in ("category", "first_date", "last_date") else "left")
        for row in rows:
            out.add_row(*(_cell(field, row[field]) for field in shown))
        numbers(out)
        print_table(out)

    emit(fmt, columns, rows, table)


def _cell(field: str, value: Any) -> str:
    if field in ("mae", "wape", "mase", "bias"):
        return format_metric(field, value)
    if isinstance(value, int) and field == "points":
        return f"{value:,}"
    return "" if value is None else str(value)


@group.command("drift")
def monitor_drift(
    model: Annotated[str | None, typer.Option(help="Model name (default: SALESCAST_MODEL_NAME)")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Check drift (PSI per category and feature against the production version's training window), store
    freshness and ingested volume now; a check that starts or stops breaching its threshold alerts
    (SALESCAST_ALERT_URL), once per episode.

    Example: salescast monitor drift --format json
    """
    from salescast.monitoring.alerts import alert_sink
    from salescast.monitoring.drift import check_all

    settings = get_settings()
    name = model or settings.model_name
    report = check_all(open_engine(settings), name, settings, alert_sink(settings.alert_url, settings))
    state = report.transitions
    rows: list[dict[str, Any]] = []
    for m in report.drift:
        key = f"drift/{name}/{m.category}/{m.feature}"
        rows.append(_row("drift psi", f"{m.category} / {m.feature}", m.psi, settings.drift_psi_threshold, state, key))
    for store, days in sorted(report.freshness_days.items()):
        rows.append(_row("freshness days", store, days, settings.freshness_max_days, state, f"freshness/{store}"))
    if report.volume is not None:
        latest, median = report.volume
        floor = (1 - settings.volume_drop_share) * median
        rows.append(_row("ingested rows", "latest run", float(latest), floor, state, "ingestion/volume"))

    def table() -> None:
        for note in report.notes:
            console.print(note)
        out = Table(title=f"{name}: drift, freshness and volume" + (f" (v{report.version})" if report.version else ""))
        for field in DRIFT_FIELDS:
            out.add_column(field, justify="right" if field in ("value", "threshold") else "left")
        for row in rows:
            out.add_row(row["check"], row["subject"], f"{row['value']:,.3f}", f"{row['threshold']:,.3f}", row["state"])
        numbers(out)
        print_table(out)

    emit(fmt, DRIFT_FIELDS, rows, table)


def _row(
    check: str, subject: str, value: float, threshold: float, state: Mapping[str, str], key: str
) -> dict[str, Any]:
    # started / ongoing: breached now; resolved / quiet: under the threshold.
    moved = state.get(key, "quiet")
    label = {"started": "breached (alerted)", "ongoing": "breached", "resolved": "ok (resolved)", "quiet": "ok"}[moved]
    return {"check": check, "subject": subject, "value": value, "threshold": threshold, "state": label}
