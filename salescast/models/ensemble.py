"""The ensemble: a weighted average of fitted model families, its weights learned on backtest windows.

`inverse_error` weights each family by 1 / MAE²; `nnls` solves non-negative least squares of the actuals
on the families' forecasts; `fixed` takes the weights as given (the seed's XGBoost + Prophet average).
Weights are normalised to sum to 1 and stored with the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from salescast.errors import DataValidationError
from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.base import Forecaster

WeightMethod = Literal["inverse_error", "nnls", "fixed"]


def learn_weights(results: pd.DataFrame, models: list[str], method: WeightMethod = "inverse_error") -> dict[str, float]:
    """Weights summing to 1 from backtest `results` (columns y and one p50 column per model)."""
    if method == "fixed":
        raise DataValidationError("fixed weights are given, not learned")
    y = results[Y].to_numpy(dtype=float)
    forecasts = results[models].to_numpy(dtype=float)
    if method == "nnls":
        raw, _ = nnls(forecasts, y)
    else:
        errors = np.mean(np.abs(forecasts - y[:, None]), axis=0)
        raw = 1.0 / np.maximum(errors, 1e-12) ** 2
    if raw.sum() <= 0:
        raw = np.ones(len(models))
    weights = raw / raw.sum()
    return {model: float(w) for model, w in zip(models, weights, strict=True)}


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
        method: WeightMethod = "inverse_error",
        **params: Any,
    ) -> None:
        super().__init__(method=method, **params)
        self.members = members or {}
        self.weights = weights or {}

    def _fit(self, frame: SeriesFrame) -> None:
        for member in self.members.values():
            if not member.is_fitted:
                member.fit(frame)
        if not self.weights:
            raise DataValidationError("the ensemble needs weights: learn them from a backtest first")

    def _predict(self, h: int, future_exog: pd.DataFrame | None) -> pd.DataFrame:
        combined: pd.DataFrame | None = None
        for name, weight in self.weights.items():
            if weight == 0:
                continue
            forecast = self.members[name].predict(h, future_exog)[[ID, DS, "p50"]]
            forecast = forecast.assign(p50=forecast["p50"] * weight)
            combined = (
                forecast
                if combined is None
                else combined.merge(forecast, on=[ID, DS], suffixes=("", "_m"))
                .assign(p50=lambda f: f["p50"] + f["p50_m"])
                .drop(columns=["p50_m"])
            )
        assert combined is not None
        return combined.assign(p10=combined["p50"], p90=combined["p50"])

    def save(self, folder: Path) -> None:
        super().save(folder)
        for name, member in self.members.items():
            member.save(folder / "members" / name)
        (folder / "weights.json").write_text(json.dumps(self.weights, indent=2))

    def _state(self) -> Any:
        return {"families": {name: type(m).family for name, m in self.members.items()}}

    def _set_state(self, state: Any) -> None:
        self._member_families = state["families"]

    @classmethod
    def load(cls, folder: Path) -> EnsembleModel:
        from salescast.models.catalog import model_class

        model = super().load(folder)
        model.weights = json.loads((folder / "weights.json").read_text())
        model.members = {
            name: model_class(family).load(folder / "members" / name) for name, family in model._member_families.items()
        }
        return model
