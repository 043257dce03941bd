"""The `pipeline` group: the whole training run in one command, as the worker runs it weekly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from salescast.cli.output import console, print_table
from salescast.cli.progress import step_bar
from salescast.cli.services import open_registry
from salescast.cli.training import EngineOption, print_training, training_steps
from salescast.config import get_settings

# The stages run_pipeline reports besides training's own steps.
PIPELINE_STAGES = ("ingest", "features", "train", "gate", "register", "promote")

group = typer.Typer(
    help="Ingest, train, gate, register and promote in one run (what the worker does weekly).",
    epilog="Example: salescast pipeline run sales.csv --name demand",
    no_args_is_help=True,
)


@group.command("run")
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
    """Ingest new files, train, backtest, gate, register and (if it passes) promote and store forecasts.

    Example: salescast pipeline run new-week.csv --name demand --no-promote
    """
    from salescast.models.catalog import parse_models, resolve_models
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
    registry = open_registry(settings)
    # The families of `auto` depend on the data's frequency, known only once loaded; every frequency's
    # default pipeline has as many as the daily one, which is all the bar needs.
    families = resolve_models(names, "D", settings.point_forecast)
    steps = len(PIPELINE_STAGES) + training_steps(families, windows, final_fit=True)
    with step_bar("pipeline", steps) as step_started:
        result = run_pipeline(
            registry.engine,
            registry,
            alert_sink(settings.alert_url, settings),
            config,
            settings,
            new_files=files or [],
            progress=step_started,
        )
    version = result.version
    print_training(result.report, version.freq, version.series)
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
    print_table(verdict)
    timing = ", ".join(f"{step} {s:.1f}s" for step, s in result.seconds.items())
    state = (
        f"promoted to production, {result.forecasts_stored:,} forecasts stored" if result.promoted else version.status
    )
    console.print(f"{name} v{version.version}: {state}\ntime: {timing}")
