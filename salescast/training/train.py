"""Training: backtest every chosen family, learn the ensemble and the intervals, refit on all history.

Windows before the last calibrate the ensemble weights and the conformal intervals; the last window
(the hold-out) is scored with them, so its accuracy and interval coverage are out of sample. Weights
are robust (`ensemble.robust_weights`): equal with one calibration window, and with several the
learned ones pulled toward equal as far as the left-out windows say. The ensemble's own calibration
residuals are cross-fitted (each window blended with the weights the other windows give). With a
single backtest window, calibration and scoring share it, and the report says so.

Every series is forecast along its path (`models/paths.py`) in every window and in the refit model;
the report counts the series per path and scores each path on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salescast.features.frame import DS, ID, SeriesFrame, Y, prepare
from salescast.models.base import ConformalIntervals, Forecaster, fit_conformal, seasonal_period
from salescast.models.catalog import BASELINE, model_factory
from salescast.models.ensemble import (
    DEFAULT_WEIGHT_METHOD,
    EnsembleModel,
    RobustWeights,
    WeightMethod,
    combine,
    learn_weights,
    robust_weights,
    shrunk,
)
from salescast.models.paths import FULL, default_min_history, path_counts, series_paths, split_by_history
from salescast.training.backtest import BacktestResult, BacktestSpec, cutoffs_of, run_backtest
from salescast.training.hierarchy import Method, hierarchy_levels, level_scales, reconciliation_report
from salescast.training.metrics import evaluate, series_scales

log = logging.getLogger(__name__)

ENSEMBLE = "ensemble"
# The plain mean of SeasonalNaive, AutoTheta and an untuned global LightGBM: the reference a default must
# beat (scored whenever the backtest holds lgbm and theta).
REFERENCE = "reference"
REFERENCE_FAMILIES = ("snaive", "theta", "lgbm")

__all__ = [
    "ENSEMBLE",
    "REFERENCE",
    "TrainingReport",
    "default_min_history",
    "evaluate_models",
    "score_backtest",
    "train",
]


@dataclass
class TrainingReport:
    backtest: BacktestResult
    metrics: pd.DataFrame  # evaluate(): level, key, model, metrics, on the hold-out window
    window_metrics: pd.DataFrame  # overall metrics per backtest window (rolling-origin CV)
    weights: dict[str, float]
    calibrated_out_of_sample: bool
    seconds: dict[str, float] = field(default_factory=dict)
    reconciliation: pd.DataFrame | None = None  # hierarchy.reconciliation_report of the ensemble
    weight_rule: str = ""  # how the weights were chosen
    paths: dict[str, int] = field(default_factory=dict)  # series per path in the frame trained on
    path_metrics: pd.DataFrame | None = None  # evaluate() rows per path (level "group", key = path)
    holdout: pd.DataFrame | None = None  # hold-out rows: y, path, each model's p50, p10 and p90

    def overall(self) -> pd.DataFrame:
        return self.metrics[self.metrics["level"] == "overall"].set_index("model").drop(columns=["level", "key"])

    def by_path(self) -> pd.DataFrame:
        """Hold-out metrics per (path, model)."""
        if self.path_metrics is None:
            return pd.DataFrame()
        rows = self.path_metrics[self.path_metrics["level"] == "group"]
        return rows.rename(columns={"key": "path"}).set_index(["path", "model"]).drop(columns=["level"])


def _with_intervals(results: pd.DataFrame, model: str, intervals: ConformalIntervals) -> pd.DataFrame:
    forecast = results[[ID, DS, "path"]].assign(p50=results[model].to_numpy())
    banded = intervals.apply(forecast)
    return results.assign(
        **{f"{model}-p10": banded["p10"].clip(lower=0).to_numpy(), f"{model}-p90": banded["p90"].to_numpy()}
    )


def _cross_fitted(
    results: pd.DataFrame, calibration: pd.DataFrame, members: list[str], chosen: RobustWeights, method: WeightMethod
) -> np.ndarray:
    """The ensemble's backtest forecast: the chosen weights (from all calibration windows) on the
    hold-out, and on each calibration window the weights learned on the other calibration windows,
    pulled toward equal as far as the chosen ones were, so that the ensemble's calibration residuals,
    and so its conformal intervals, are out of sample as every family's are, and of the same blend.
    (Weights chosen on the very residuals they are scored by look better than they are, and the
    intervals would come out too narrow.) With one calibration window there is nothing to cross-fit."""
    forecast = combine(results, chosen.weights)
    windows = sorted(calibration["window"].unique())
    if len(windows) < 2:
        return forecast
    for window in windows:
        others = shrunk(learn_weights(calibration[calibration["window"] != window], members, method), chosen.shrinkage)
        rows = (results["window"] == window).to_numpy()
        forecast[rows] = combine(results[rows], others)
    return forecast


def _residuals(results: pd.DataFrame, model: str, probes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each row's residual (actual - p50) of `model`, with the young-series probes' rows when given."""
    rows = results if probes is None or probes.empty else pd.concat([results, probes], ignore_index=True)
    return pd.DataFrame({ID: rows[ID], Y: rows[Y], "residual": rows[Y] - rows[model], "path": rows["path"]})


def _with_reference(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with the plain-mean reference column, when the backtest holds its families."""
    if not set(REFERENCE_FAMILIES) <= set(rows.columns):
        return rows
    return rows.assign(**{REFERENCE: rows[list(REFERENCE_FAMILIES)].mean(axis=1)})


def _blended_probes(probes: pd.DataFrame | None, weights: dict[str, float]) -> pd.DataFrame | None:
    """The probes with the ensemble's and the reference's columns, as the backtest's rows have them."""
    if probes is None or probes.empty:
        return None
    return _with_reference(probes.assign(**{ENSEMBLE: combine(probes, weights)}))


def _log_paths(frame: SeriesFrame, min_history: int) -> None:
    """One line per series that does not take the full path (which fallback forecasts it, and why),
    then the counts: a user finds out which products the model is least sure of."""
    lengths = frame.lengths()
    paths = series_paths(lengths, frame.freq, min_history)
    fallback = paths[paths != FULL]
    for uid, path, periods in zip(fallback.index, fallback, lengths.reindex(fallback.index), strict=True):
        log.info(
            "training.series_path",
            extra={"unique_id": str(uid), "path": path, "periods": int(periods), "min_history": min_history},
        )
    log.info("training.paths", extra=path_counts(paths))


def evaluate_models(
    frame: SeriesFrame,
    models: list[str],
    spec: BacktestSpec,
    weight_method: WeightMethod = DEFAULT_WEIGHT_METHOD,
    fixed_weights: dict[str, float] | None = None,
    model_params: dict[str, dict[str, object]] | None = None,
    progress: Callable[[str], None] | None = None,
    min_history: int | None = None,
) -> TrainingReport:
    """Backtest `models` and the SeasonalNaive baseline, blend them as the trained model would be
    blended (an `ensemble` column) and score every column on the hold-out window, overall, per
    category and per path. No final fit: `train` adds it."""
    params = model_params or {}
    min_history = min_history or spec.min_history or default_min_history(frame.freq)
    names = list(dict.fromkeys([*models, BASELINE]))
    factories = {name: model_factory(name, **params.get(name, {})) for name in names}
    spec = BacktestSpec(horizon=spec.horizon, windows=spec.windows, step=spec.step, min_history=min_history)
    backtest = run_backtest(frame, factories, spec, progress)
    return score_backtest(frame, backtest, models, weight_method, fixed_weights)


def score_backtest(
    frame: SeriesFrame,
    backtest: BacktestResult,
    models: list[str],
    weight_method: WeightMethod = DEFAULT_WEIGHT_METHOD,
    fixed_weights: dict[str, float] | None = None,
) -> TrainingReport:
    """The blend of `models` (columns of `backtest`, which also holds SeasonalNaive) and its scores:
    several candidate blends can be scored on one backtest (bench/candidates.py)."""
    results = backtest.results.drop(columns=[ENSEMBLE, REFERENCE], errors="ignore")
    windows = sorted(results["window"].unique())
    holdout_window = windows[-1]
    out_of_sample = len(windows) > 1
    calibration = results[results["window"] != holdout_window] if out_of_sample else results

    # Score the hold-out with weights and intervals learned before it.
    members = list(models)
    chosen = (
        RobustWeights(fixed_weights, 0.0, "fixed")
        if fixed_weights
        else robust_weights(calibration, members, weight_method)
    )
    learned = fixed_weights is None and len(members) > 1
    ensemble_forecast = (
        _cross_fitted(results, calibration, members, chosen, weight_method)
        if learned
        else combine(results, chosen.weights)
    )
    results = results.assign(**{ENSEMBLE: ensemble_forecast})
    extra = [ENSEMBLE]
    results = _with_reference(results)
    if REFERENCE in results:
        extra.append(REFERENCE)
    probes = _blended_probes(backtest.probes, chosen.weights)
    scored_backtest = BacktestResult(results, [*backtest.models, *extra], backtest.spec, dict(backtest.seconds), probes)
    calibration = results.loc[calibration.index]
    probe_calibration = None
    if probes is not None:
        probe_calibration = probes[probes["window"] != holdout_window] if out_of_sample else probes
    holdout = results[results["window"] == holdout_window]
    scored = list(dict.fromkeys([*members, *extra, BASELINE]))
    for name in scored:
        holdout = _with_intervals(holdout, name, fit_conformal(_residuals(calibration, name, probe_calibration)))
    season = seasonal_period(frame.freq)
    scales = series_scales(frame.until(cutoffs_of(holdout)).data, season)
    groups = frame.static.set_index(ID)["category"] if "category" in frame.static else None
    metrics = evaluate(holdout, scored, scales, groups)
    path_metrics = evaluate(holdout, scored, scales, holdout.groupby(ID, sort=False)["path"].first())
    # The hold-out was scored just above; only the earlier windows still need it (per-series metrics are
    # the costly part of a large run).
    per_window: list[pd.DataFrame] = []
    for window, part in results.groupby("window"):
        if window == holdout_window:
            scores = metrics
        else:
            scores = evaluate(part, scored, series_scales(frame.until(cutoffs_of(part)).data, season))
        per_window.append(scores[scores["level"] == "overall"].assign(window=window, cutoff=part["cutoff"].max()))
    min_history = backtest.spec.min_history or default_min_history(frame.freq)
    return TrainingReport(
        scored_backtest,
        metrics,
        pd.concat(per_window, ignore_index=True),
        chosen.weights,
        out_of_sample,
        {name: backtest.seconds[name] for name in dict.fromkeys([*members, BASELINE]) if name in backtest.seconds},
        weight_rule=chosen.rule,
        paths=path_counts(series_paths(frame.lengths(), frame.freq, min_history)),
        path_metrics=path_metrics[path_metrics["level"] != "series"].reset_index(drop=True),
        holdout=holdout.reset_index(drop=True),
    )


def train(
    frame: SeriesFrame,
    models: list[str],
    spec: BacktestSpec,
    weight_method: WeightMethod = DEFAULT_WEIGHT_METHOD,
    fixed_weights: dict[str, float] | None = None,
    model_params: dict[str, dict[str, object]] | None = None,
    progress: Callable[[str], None] | None = None,
    min_history: int | None = None,
    reconcile: Sequence[Method] = (),
) -> tuple[EnsembleModel, TrainingReport]:
    """`evaluate_models`, then every family refit on all history (weights and intervals from all windows).

    Args:
        frame: the series to learn from; every series with an observation is forecast.
        models: the families to blend (see `models.catalog`); SeasonalNaive is scored beside them.
        spec: the backtest windows; the last is the hold-out.
        weight_method: how weights are learned (`scaled_error`, `inverse_error`, `nnls`).
        fixed_weights: weights to use as given instead (the seed's 0.5/0.5 design).
        model_params: per-family parameters.
        progress: called with a short text before each step.
        min_history: periods a series needs to be trained on (default: 28 days, 13 weeks, 12 months);
            younger series get the cold start.
        reconcile: hierarchy reconciliation methods whose effect on the ensemble's hold-out accuracy is
            reported (per series, category, total).
    """
    params = model_params or {}
    min_history = min_history or spec.min_history or default_min_history(frame.freq)
    report = evaluate_models(
        frame, models, spec, weight_method, fixed_weights, params, progress, min_history=min_history
    )
    results = report.backtest.results
    members = list(models)

    # The model to keep: every family refit on all history; weights and intervals from all windows.
    started = time.perf_counter()
    final_weights = fixed_weights or robust_weights(results, members, weight_method).weights
    established, _ = split_by_history(frame, min_history)
    fitted: dict[str, Forecaster] = {}
    for name in members:
        if progress:
            progress(f"final fit: {name}")
        model = model_factory(name, **params.get(name, {}))().fit(established)
        model.intervals = fit_conformal(_residuals(results, name, report.backtest.probes))
        fitted[name] = model
    ensemble = EnsembleModel(
        members=fitted,
        weights=final_weights,
        method="fixed" if fixed_weights else weight_method,
        min_history=min_history,
    )
    ensemble.fit(frame)
    ensemble.intervals = fit_conformal(
        _residuals(results, ENSEMBLE, _blended_probes(report.backtest.probes, final_weights))
    )
    _log_paths(frame, min_history)
    report.seconds["final_fit"] = time.perf_counter() - started
    if reconcile:
        if progress:
            progress("reconciliation")
        holdout_window = int(results["window"].max())
        report.reconciliation = _reconciliation(frame, results, holdout_window, report.backtest.spec, list(reconcile))
    return ensemble, report


def _reconciliation(
    frame: SeriesFrame, results: pd.DataFrame, holdout_window: int, spec: BacktestSpec, methods: list[Method]
) -> pd.DataFrame:
    """The ensemble's hold-out accuracy per level without and with reconciliation. Upper levels get
    their own base forecasts (ETS on the category and total sums, backtested on the same windows), so
    that reconciliation has independent information to combine; MinT's covariance comes from the
    calibration windows' residuals."""
    levels = ("category",)
    tree = hierarchy_levels(frame.static, levels, ids=frame.ids)
    data = frame.data[[ID, DS, Y]].merge(tree, on=ID, how="left")
    by_category = data.groupby(["category", DS], as_index=False)[[Y]].sum()
    totals = data.groupby(DS, as_index=False)[[Y]].sum()
    sums = pd.concat(
        [
            by_category.rename(columns={"category": "key"}).assign(level="category"),
            totals.assign(key="total", level="total"),
        ],
        ignore_index=True,
    )
    sums[ID] = sums["level"] + ":" + sums["key"].astype(str)
    upper_frame = prepare(sums[[ID, DS, Y]], freq=frame.freq)
    upper = run_backtest(upper_frame, {ENSEMBLE: model_factory("ets")}, spec).results
    names = sums.drop_duplicates(ID).set_index(ID)
    upper = upper.assign(level=upper[ID].map(names["level"]), key=upper[ID].map(names["key"]))
    holdout = results[results["window"] == holdout_window]
    calibration = results[results["window"] != holdout_window]
    history = calibration[[ID, DS, Y, ENSEMBLE]] if not calibration.empty else None
    season = seasonal_period(frame.freq)
    scales = level_scales(frame.until(cutoffs_of(holdout)).data, frame.static, season, levels)
    return reconciliation_report(
        holdout,
        frame.static,
        ENSEMBLE,
        methods,
        scales,
        history=history,
        levels=levels,
        upper=upper[upper["window"] == holdout_window],
    )
