"""Backtests: the seed's hold-out of the last periods and rolling-origin cross-validation.

Each window trains on the history up to its cutoff only and forecasts the next `horizon` periods; the
future exogenous columns (price and promotion plans) come from the frame, the target never does.
Every series with an observation before a cutoff is forecast in that window, along its path
(`models/paths.py`): families train on the series with `min_history` periods, the younger ones get
the cold start from each family's own forecast. Each row records its path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from salescast.errors import DataValidationError
from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.base import Forecaster, yearly_period
from salescast.models.paths import default_min_history, forecast_by_path, series_paths
from salescast.training.probes import DEFAULT_PROBES, copies_of, probe_history, probe_plan

ModelFactory = Callable[[], Forecaster]
ProgressCallback = Callable[[str], None]


@dataclass(frozen=True)
class BacktestSpec:
    """`windows` rolling origins `step` periods apart (default: `horizon`); the last is the hold-out.

    The seed's evaluation is `BacktestSpec(horizon=30, windows=1)` on daily data: the last 30 days.
    """

    horizon: int = 30
    windows: int = 2
    step: int | None = None
    # periods a series needs before a cutoff to be trained on in that window (younger ones: cold start);
    # None: 28 days, 13 weeks or 12 months
    min_history: int | None = None
    # established series per window cut into short and cold copies to calibrate those paths' bands
    # (training/probes.py); 0: none
    probes: int = DEFAULT_PROBES

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.windows < 1:
            raise DataValidationError("horizon and windows must be at least 1")


@dataclass
class BacktestResult:
    """Per window x series x period: the actual `y`, the series' path and each model's p50 in a column
    named after it. `probes` has the same columns for the young-series probes (training/probes.py),
    which calibrate intervals and are never scored."""

    results: pd.DataFrame  # window, cutoff, unique_id, ds, y, path, <model>...
    models: list[str]
    spec: BacktestSpec
    seconds: dict[str, float] = field(default_factory=dict)
    probes: pd.DataFrame | None = None

    def window(self, index: int) -> pd.DataFrame:
        windows = sorted(self.results["window"].unique())
        part: pd.DataFrame = self.results[self.results["window"] == windows[index]]
        return part


def seasonal_step(frame: SeriesFrame, horizon: int, windows: int) -> int:
    """Periods between window origins that put the first window one year before the hold-out (a year
    over `windows - 1`: 26 weeks, 182 days or 6 months with 3 windows), when the longest series reaches
    back that far (a year, the horizon and the periods a series needs to be trained on); else the
    horizon (windows back to back).

    Conformal bands calibrated on the weeks just before the hold-out know nothing of the season the
    hold-out falls in (a holiday peak, a summer low) and under-cover it: on three weekly retail sets
    their p10-p90 coverage rose from 65-69 % to 75-77 % with the first window a year back
    (bench/candidates.py, docs/benchmarks)."""
    if windows < 2 or frame.data.empty:
        return horizon
    year = yearly_period(frame.freq)
    needed = year + horizon + default_min_history(frame.freq)
    if int(frame.lengths().max()) < needed:
        return horizon
    return max(1, round(year / (windows - 1)))


def cutoffs(frame: SeriesFrame, spec: BacktestSpec) -> list[pd.Series]:
    """Each window's cutoff (last training date) per series, oldest window first.

    Windows count back from each series' own last date, so series that end at different dates (a
    discontinued product, data sets of different vintages) are all evaluated on their last periods.
    """
    offset = pd.tseries.frequencies.to_offset(frame.freq)
    last = frame.data.groupby(ID, sort=False)[DS].max()
    step = spec.step or spec.horizon
    return [last - offset * (spec.horizon + step * (spec.windows - 1 - w)) for w in range(spec.windows)]


def cutoffs_of(results: pd.DataFrame) -> pd.Series:
    """unique_id -> cutoff of the backtest rows given (one window)."""
    return results.groupby(ID, sort=False)["cutoff"].first()


def run_backtest(
    frame: SeriesFrame,
    factories: dict[str, ModelFactory],
    spec: BacktestSpec,
    progress: ProgressCallback | None = None,
) -> BacktestResult:
    offset = pd.tseries.frequencies.to_offset(frame.freq)
    min_history = spec.min_history or default_min_history(frame.freq)
    parts = []
    probe_parts = []
    seconds = dict.fromkeys(factories, 0.0)
    for window, cutoff in enumerate(cutoffs(frame, spec)):
        history = frame.until(cutoff)
        if history.data.empty:
            continue
        paths = series_paths(history.lengths(), frame.freq, min_history)
        limit = frame.data[ID].map(cutoff)
        end = frame.data[ID].map(cutoff + offset * spec.horizon)
        inside = (frame.data[DS] > limit) & (frame.data[DS] <= end) & frame.data[ID].isin(set(paths.index))
        future = frame.data[inside]
        actuals = future[[ID, DS, Y]].reset_index(drop=True)
        plan = future.drop(columns=[Y])  # the known future: prices and promotions, never the target
        for name, factory in factories.items():
            if progress:
                progress(f"window {window + 1}/{spec.windows}: {name}")
            started = time.perf_counter()
            forecast = forecast_by_path(factory(), history, spec.horizon, plan, min_history)
            seconds[name] += time.perf_counter() - started
            actuals = actuals.merge(forecast[[ID, DS, "p50"]].rename(columns={"p50": name}), on=[ID, DS], how="left")
        parts.append(actuals.assign(window=window, cutoff=actuals[ID].map(cutoff), path=actuals[ID].map(paths)))
        probes = _probe_window(history, paths, plan, actuals, factories, spec, min_history, window, seconds)
        if probes is not None:
            probe_parts.append(probes.assign(window=window, cutoff=probes["original"].map(cutoff)))
    if not parts:
        raise DataValidationError(
            f"no series has an observation before its first cutoff: the history is too short for {spec.windows} "
            f"backtest window(s) of {spec.horizon} periods"
        )
    results = pd.concat(parts, ignore_index=True)
    missing = results[list(factories)].isna().sum()
    if missing.any():
        # Every path forecasts every series (models/paths.py): a gap here is a bug in a family.
        raise DataValidationError(f"models left periods unforecast in the backtest: {missing[missing > 0].to_dict()}")
    columns = ["window", "cutoff", ID, DS, Y, "path", *factories]
    probes = pd.concat(probe_parts, ignore_index=True)[columns].dropna() if probe_parts else None
    return BacktestResult(results[columns], list(factories), spec, seconds, probes)


def _probe_window(
    history: SeriesFrame,
    paths: pd.Series,
    plan: pd.DataFrame,
    actuals: pd.DataFrame,
    factories: dict[str, ModelFactory],
    spec: BacktestSpec,
    min_history: int,
    window: int,
    seconds: dict[str, float],
) -> pd.DataFrame | None:
    """One window's probe rows: each short and cold copy's forecasts beside its original's actuals."""
    frame = probe_history(history, paths, min_history, spec.probes, seed=window)
    if frame is None:
        return None
    copies = copies_of(frame)
    rows = copies.merge(actuals[[ID, DS, Y]].rename(columns={ID: "original"}), on="original")
    future_plan = probe_plan(plan, frame, copies)
    for name, factory in factories.items():
        started = time.perf_counter()
        forecast = forecast_by_path(factory(), frame, spec.horizon, future_plan, min_history)
        seconds[name] += time.perf_counter() - started
        rows = rows.merge(forecast[[ID, DS, "p50"]].rename(columns={"p50": name}), on=[ID, DS], how="left")
    return rows.assign(path=rows[ID].map(series_paths(frame.lengths(), frame.freq, min_history)))
