"""Commands that fit and judge models on the stored sales: `train` and `backtest`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from salescast.cli.output import console, metric_table, print_table
from salescast.cli.progress import step_bar
from salescast.cli.services import open_engine
from salescast.config import get_settings

commands = typer.Typer()


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


def training_steps(families: list[str], windows: int, *, final_fit: bool, reconcile: bool = False) -> int:
    """The steps training reports: a fit per backtest window and family (SeasonalNaive included), then a
    final fit per family, then reconciliation."""
    from salescast.models.catalog import BASELINE

    per_window = len(dict.fromkeys([*families, BASELINE]))
    return windows * per_window + (len(families) if final_fit else 0) + (1 if reconcile else 0)


METRIC_COLUMNS = ("mase", "wape", "rmse", "mae", "r2", "mape", "smape", "bias", "coverage")
# WAPE, MAPE, sMAPE, bias and coverage are in percent.


@commands.command(short_help="Train a forecasting ensemble on the stored sales and report its accuracy.")
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
    model_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for the trained model (default: a new folder under SALESCAST_HOME/models)"),
    ] = None,
    reconcile: Annotated[
        str | None,
        typer.Option(help="Report hierarchy reconciliation: comma-separated bottom_up, ols, wls_struct, mint_shrink"),
    ] = None,
    compute_url: EngineOption = None,
) -> None:
    """Backtest the chosen model families against SeasonalNaive, learn the ensemble, refit on all history.

    Example: salescast train --models lgbm,ets,theta --horizon 28 --out holdout.csv
    """
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
    engine = open_engine(settings)
    frame = load_series(engine, freq=freq)
    names = resolve_models(names, frame.freq, settings.point_forecast)
    if fixed and set(fixed) != set(names):
        raise typer.BadParameter(f"fixed weights name {sorted(fixed)} but the models are {sorted(names)}")
    params: dict[str, dict[str, object]] = dict(family_params(names, settings.holiday_country))
    steps = training_steps(names, windows, final_fit=True, reconcile=bool(methods))
    with compute_engine(compute_url or settings.compute_url) as compute, step_bar("training", steps) as step_started:
        model, report = train_on(
            compute,
            frame,
            names,
            BacktestSpec(horizon=horizon, windows=windows, step=step or seasonal_step(frame, horizon, windows)),
            weight_method=method,  # type: ignore[arg-type]
            fixed_weights=fixed,
            model_params=params,
            progress=step_started,
            reconcile=methods,  # type: ignore[arg-type]
        )
    print_training(report, frame.freq, len(frame.ids))
    if out and report.holdout is not None:
        _write_table(report.holdout, out)
    folder = model_dir or settings.home / "models" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    model.save(folder)
    report.metrics.to_csv(folder / "backtest_metrics.csv", index=False)
    console.print(f"[green]saved[/] the ensemble to {folder}")


@commands.command(short_help="Measure how accurate each model family would have been (saves no model).")
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
    and SeasonalNaive: metrics per window, and the hold-out per path (full, short, cold).

    Example: salescast backtest --models lgbm,ets --horizon 14 --windows 4
    """
    from salescast.features.frame import load_series
    from salescast.models.catalog import family_params, parse_models, resolve_models
    from salescast.training.backtest import BacktestSpec, seasonal_step
    from salescast.training.train import evaluate_models

    settings = get_settings()
    names = parse_models(models or settings.pipeline_models)
    method, fixed = _parse_weights(weights)
    frame = load_series(open_engine(settings), freq=freq)
    names = resolve_models(names, frame.freq, settings.point_forecast)
    if fixed and set(fixed) != set(names):
        raise typer.BadParameter(f"fixed weights name {sorted(fixed)} but the models are {sorted(names)}")
    spec = BacktestSpec(horizon=horizon, windows=windows, step=step or seasonal_step(frame, horizon, windows))
    with step_bar("backtest", training_steps(names, windows, final_fit=False)) as step_started:
        report = evaluate_models(
            frame,
            names,
            spec,
            weight_method=method,  # type: ignore[arg-type]
            fixed_weights=fixed,
            model_params=dict(family_params(names, settings.holiday_country)),
            progress=step_started,
        )
    columns = tuple(c for c in METRIC_COLUMNS if c != "coverage")
    for number, (_, part) in enumerate(report.window_metrics.groupby("window"), start=1):
        overall = part.set_index("model")
        print_table(metric_table(f"window {number}: after {part['cutoff'].max():%Y-%m-%d}", overall, columns))
    print_training(report, frame.freq, len(frame.ids))
    if out:
        _write_table(report.backtest.results, out)


def _write_table(table: Any, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out) if out.suffix == ".parquet" else table.to_csv(out, index=False)
    console.print(f"[green]wrote[/] {len(table):,} rows to {out}")


def print_training(report: Any, freq: str, series: int) -> None:
    from salescast.models.paths import describe_paths

    spec = report.backtest.spec
    console.print(
        f"{series:,} series ({freq}); series by path: {describe_paths(report.paths)}; "
        f"hold-out: the last {spec.horizon} periods"
        + ("" if report.calibrated_out_of_sample else " (single window: weights and intervals in-sample)")
    )
    print_table(metric_table("hold-out accuracy (coverage = p10..p90)", report.overall(), METRIC_COLUMNS))
    by_path = report.by_path()
    if not by_path.empty:
        print_table(metric_table("hold-out by path", by_path, ("mase", "wape", "bias", "coverage")))
    weights = ", ".join(f"{name} {w:.2f}" for name, w in report.weights.items())
    timing = ", ".join(f"{name} {s:.1f}s" for name, s in report.seconds.items())
    console.print(f"ensemble weights: {weights} ({report.weight_rule})\ntime: {timing}")
    if report.reconciliation is not None:
        table = report.reconciliation.set_index(["method", "level"])
        table.index = [f"{m} / {lv}" for m, lv in table.index]
        print_table(
            metric_table("ensemble hold-out accuracy by hierarchy level", table, ("mase", "wape", "mae", "rmse"))
        )
