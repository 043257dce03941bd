"""The ensemble: a weighted average of fitted model families, its weights learned on backtest windows.

`scaled_error` (the default) scores each family by its scaled MAE (each series' errors over that series'
mean absolute actual, so that every series counts alike, as in MASE), weights the families of every
subset by 1 / scaled MAE², and keeps the subset whose blend has the lowest scaled MAE on the calibration
windows: a family that only dilutes the better ones is dropped, and a single family wins when no blend
beats it. `inverse_error` weights every family by 1 / MAE²; `nnls` solves least squares of the actuals
on the families' forecasts with weights constrained to be non-negative and to sum to 1; `fixed` takes
the weights as given (the seed's XGBoost + Prophet average). Weights sum to 1 and are stored with the model.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from salescast.errors import DataValidationError
from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.base import Forecaster
from salescast.models.catalog import model_class
from salescast.models.cold_start import cold_start_forecast, recent_levels
from salescast.models.paths import COLD, FULL, MODEL_METHOD, series_paths, split_by_history

WeightMethod = Literal["scaled_error", "inverse_error", "nnls", "fixed"]
WEIGHT_METHODS: tuple[str, ...] = ("scaled_error", "inverse_error", "nnls")
DEFAULT_WEIGHT_METHOD: WeightMethod = "scaled_error"
BLEND_GAIN = 1e-3  # relative: a family that improves the blend by less than 0.1 % is left out


def learn_weights(
    results: pd.DataFrame, models: list[str], method: WeightMethod = DEFAULT_WEIGHT_METHOD
) -> dict[str, float]:
    """Weights summing to 1 from backtest `results` (columns y and one p50 column per model; unique_id
    too for `scaled_error`, else all rows count as one series)."""
    if method == "fixed":
        raise DataValidationError("fixed weights are given, not learned")
    y = results[Y].to_numpy(dtype=float)
    forecasts = results[models].to_numpy(dtype=float)
    if method == "scaled_error":
        raw = _best_blend(forecasts, y, _row_scales(results))
    elif method == "nnls":
        raw = _simplex_least_squares(forecasts, y)
    else:
        errors = np.mean(np.abs(forecasts - y[:, None]), axis=0)
        raw = 1.0 / np.maximum(errors, 1e-12) ** 2
    if raw.sum() <= 0:
        raw = np.ones(len(models))
    weights = raw / raw.sum()
    return {model: float(w) for model, w in zip(models, weights, strict=True)}


SHRINKAGE = (0.0, 0.25, 0.5, 0.75, 1.0)  # candidate pulls toward equal weights


@dataclass(frozen=True)
class RobustWeights:
    """Weights learned on several calibration windows, shrunk toward equal ones; `rule` says how."""

    weights: dict[str, float]
    shrinkage: float  # 0: as learned on all windows, 1: equal weights
    rule: str


def equal_weights(models: list[str]) -> dict[str, float]:
    return dict.fromkeys(models, 1.0 / len(models))


def robust_weights(
    calibration: pd.DataFrame, models: list[str], method: WeightMethod = DEFAULT_WEIGHT_METHOD
) -> RobustWeights:
    """Weights from the calibration windows of a backtest (a `window` column), robust to windows that
    disagree: a blend that wins in calibration can lose on the hold-out.

    With one calibration window there is nothing to check the learned weights on: the families get
    equal weights (the plain mean, hard to beat on real data). With several, each window is blended
    with the weights learned on the others, and the pull toward equal weights (of SHRINKAGE) that
    scores best on those left-out windows is applied to the weights learned on all of them: windows
    that agree keep the learned weights, windows that disagree pull them to equal."""
    if len(models) == 1:
        return RobustWeights({models[0]: 1.0}, 0.0, "a single family")
    equal = equal_weights(models)
    windows = sorted(calibration["window"].unique())
    if len(windows) < 2:
        return RobustWeights(equal, 1.0, "one calibration window: equal weights (the default rule)")
    scale = _row_scales(calibration)
    usable = np.isfinite(scale)
    if not usable.any():
        scale, usable = np.ones(len(calibration)), np.ones(len(calibration), dtype=bool)
    losses = np.zeros(len(SHRINKAGE))
    for window in windows:
        held = (calibration["window"] == window).to_numpy()
        learned = learn_weights(calibration[~held], models, method)
        rows = held & usable
        y = calibration[Y].to_numpy(dtype=float)[rows]
        for i, pull in enumerate(SHRINKAGE):
            blend = combine(calibration[rows], shrunk(learned, pull))
            losses[i] += float(np.mean(np.abs(blend - y) / scale[rows]))
    best = int(np.argmin(losses))
    pull = SHRINKAGE[best]
    weights = shrunk(learn_weights(calibration, models, method), pull)
    rule = f"{method} on {len(windows)} calibration windows, pulled {pull:.0%} toward equal (left-out-window check)"
    return RobustWeights(weights, pull, rule)


def shrunk(learned: dict[str, float], pull: float) -> dict[str, float]:
    """`learned` weights pulled toward equal ones by `pull` (0: as learned, 1: equal)."""
    equal = equal_weights(list(learned))
    return {name: (1 - pull) * learned[name] + pull * equal[name] for name in learned}


def _row_scales(results: pd.DataFrame) -> np.ndarray:
    """Each row's series scale: the mean absolute actual of its series in `results` (NaN where 0)."""
    actual = results[Y].abs()
    mean = actual.groupby(results[ID], sort=False).transform("mean") if ID in results else actual.mean()
    scale = np.broadcast_to(np.asarray(mean, dtype=float), (len(results),)).copy()
    scale[scale <= 0] = np.nan
    return scale


def _best_blend(forecasts: np.ndarray, y: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Weights of the subset of families, each weighted by 1 / scaled MAE², whose blend has the lowest
    scaled MAE; a larger subset must beat a smaller one by BLEND_GAIN to be chosen over it."""
    usable = np.isfinite(scale)
    if not usable.any():
        usable, scale = np.ones(len(y), dtype=bool), np.ones(len(y))
    forecasts, y, scale = forecasts[usable], y[usable], scale[usable]
    scores = np.mean(np.abs(forecasts - y[:, None]) / scale[:, None], axis=0)
    inverse = 1.0 / np.maximum(scores, 1e-12) ** 2
    best_loss, best = np.inf, np.zeros(forecasts.shape[1])
    for size in range(1, forecasts.shape[1] + 1):
        for subset in combinations(range(forecasts.shape[1]), size):
            weights = np.zeros(forecasts.shape[1])
            weights[list(subset)] = inverse[list(subset)] / inverse[list(subset)].sum()
            loss = float(np.mean(np.abs(forecasts @ weights - y) / scale))
            if loss < best_loss * (1 - BLEND_GAIN):
                best_loss, best = loss, weights
    return best


def _simplex_least_squares(forecasts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares of y on the forecasts with non-negative weights that sum to 1: a row of
    large weight appended to the system makes the sum constraint part of a plain NNLS problem."""
    penalty = 1e3 * max(float(np.sqrt(np.mean(forecasts**2))), 1e-9) * np.sqrt(len(y))
    system = np.vstack([forecasts, np.full((1, forecasts.shape[1]), penalty)])
    target = np.append(y, penalty)
    weights, _ = nnls(system, target)
    return np.asarray(weights)


def combine(results: pd.DataFrame, weights: dict[str, float]) -> np.ndarray:
    total = np.zeros(len(results))
    for model, weight in weights.items():
        total += results[model].to_numpy(dtype=float) * weight
    return total


class EnsembleModel(Forecaster):
    family = "ensemble"
    uses_exog = True

    def __init__(
        self,
        members: dict[str, Forecaster] | None = None,
        weights: dict[str, float] | None = None,
        method: WeightMethod = DEFAULT_WEIGHT_METHOD,
        min_history: int = 28,
        **params: Any,
    ) -> None:
        super().__init__(method=method, min_history=min_history, **params)
        self.members = members or {}
        self.weights = weights or {}
        self._new: SeriesFrame | None = None  # series too young for the models: cold start
        self._level = pd.Series(dtype=float)
        self._static = pd.DataFrame()
        self._paths = pd.Series(dtype=object)  # established series -> full or short

    def _fit(self, frame: SeriesFrame) -> None:
        """Members fit on the established series (those fitted already are kept); the others are kept
        for cold start."""
        if not self.weights:
            raise DataValidationError("the ensemble needs weights: learn them from a backtest first")
        established, new = split_by_history(frame, int(self.params["min_history"]))
        if established.data.empty:
            raise DataValidationError(
                f"no series has {self.params['min_history']} periods of history: nothing to learn a profile from"
            )
        for member in self.members.values():
            if not member.is_fitted:
                member.fit(established)
        self._new = new if not new.data.empty else None
        self._paths = series_paths(established.lengths(), frame.freq, int(self.params["min_history"]))
        self._level = recent_levels(established)
        self._static = frame.static

    def predict_with_members(
        self, h: int, future_exog: pd.DataFrame | None = None, ids: Collection[str] | None = None
    ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
        """`predict`'s forecast and, by name, the forecasts of the weighted members it blended (of the
        same series; a new series has none), from one prediction of each member."""
        wanted = self._check_predict(h, ids)
        new = self._new_series(wanted)
        members = self._member_forecasts(h, future_exog, wanted, new)
        forecast = self._finish(self._blend(members, h, new), wanted)
        if wanted is not None:
            members = {name: f[f[ID].isin(wanted)].reset_index(drop=True) for name, f in members.items()}
        return forecast, members

    def _predict(self, h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None) -> pd.DataFrame:
        new = self._new_series(ids)
        return self._blend(self._member_forecasts(h, future_exog, ids, new), h, new)

    def _new_series(self, ids: frozenset[str] | None) -> SeriesFrame | None:
        """The new (cold-start) series among `ids` (None: all of them); None when there are none."""
        if self._new is None or ids is None:
            return self._new
        return self._new.subset(sorted(ids)) if not ids.isdisjoint(self._new.ids) else None

    def _member_forecasts(
        self, h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None, new: SeriesFrame | None
    ) -> dict[str, pd.DataFrame]:
        # A new series' forecast is its category's profile over every established series' forecast:
        # asking for one (`new`, the new series among `ids`) means forecasting them all.
        member_ids = ids if new is None else None
        return {
            name: self.members[name].predict(h, future_exog, member_ids)
            for name, weight in self.weights.items()
            if weight != 0
        }

    def _blend(self, members: dict[str, pd.DataFrame], h: int, new: SeriesFrame | None) -> pd.DataFrame:
        """The members' weighted p50s, and the cold-start forecasts of the new series `new`."""
        weighted = [f[[ID, DS, "p50"]].assign(p50=f["p50"] * self.weights[name]) for name, f in members.items()]
        combined = pd.concat(weighted).groupby([ID, DS], sort=False, as_index=False)[["p50"]].sum()
        combined = combined.assign(
            p10=combined["p50"],
            p90=combined["p50"],
            method=MODEL_METHOD,
            path=combined[ID].map(self._paths).fillna(FULL).to_numpy(),
        )
        if new is None:
            return combined
        cold = cold_start_forecast(new, self._level, combined, self._static, h).assign(path=COLD)
        return pd.concat([combined, cold], ignore_index=True)

    def save(self, folder: Path) -> None:
        super().save(folder)
        for name, member in self.members.items():
            member.save(folder / "members" / name)
        (folder / "weights.json").write_text(json.dumps(self.weights, indent=2))

    def _state(self) -> Any:
        return {
            "families": {name: type(m).family for name, m in self.members.items()},
            "new": self._new,
            "level": self._level,
            "static": self._static,
            "paths": self._paths,
        }

    def _set_state(self, state: Any) -> None:
        self._member_families = state["families"]
        self._new, self._level, self._static = state["new"], state["level"], state["static"]
        # Models saved before paths existed: every established series counts as full.
        self._paths = state.get("paths", pd.Series(dtype=object))

    @classmethod
    def load(cls, folder: Path) -> EnsembleModel:
        model = super().load(folder)
        model.weights = json.loads((folder / "weights.json").read_text())
        model.members = {
            name: model_class(family).load(folder / "members" / name) for name, family in model._member_families.items()
        }
        return model
