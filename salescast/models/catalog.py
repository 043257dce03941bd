"""The model families by name: what `--models lgbm,xgb,ets,prophet` means."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from salescast.errors import ConfigurationError
from salescast.models.base import Forecaster

BASELINE = "snaive"


# name -> (module, class, default parameters); a family's library is imported only when it is used.
_FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "snaive": ("salescast.models.statistical", "SeasonalNaiveModel", {}),
    "savg": ("salescast.models.statistical", "SeasonalAverageModel", {}),
    "lgbm": ("salescast.models.gbm", "LightGBMModel", {}),
    "lgbm_tweedie": ("salescast.models.gbm", "LightGBMModel", {"objective": "tweedie", "scaler": "mean"}),
    "lgbm_mean": ("salescast.models.gbm", "LightGBMModel", {"scaler": "mean"}),
    "lgbm_2season": ("salescast.models.gbm", "LightGBMModel", {"season_lags": 2}),
    "xgb": ("salescast.models.gbm", "XGBoostModel", {}),
    "ets": ("salescast.models.statistical", "StatisticalModel", {"method": "ets"}),
    "theta": ("salescast.models.statistical", "StatisticalModel", {"method": "theta"}),
    "arima": ("salescast.models.statistical", "StatisticalModel", {"method": "arima"}),
    "mstl": ("salescast.models.statistical", "StatisticalModel", {"method": "mstl"}),
    "prophet": ("salescast.models.prophet_model", "ProphetModel", {}),
}
_FAMILY_OF_CLASS = {
    "seasonal_naive": "snaive",
    "seasonal_average": "savg",
    "lgbm": "lgbm",
    "xgb": "xgb",
    "stats": "ets",
    "prophet": "prophet",
}


def _load(name: str) -> type[Forecaster]:
    module, cls, _ = _FAMILIES[name]
    loaded: type[Forecaster] = getattr(importlib.import_module(module), cls)
    return loaded


MODEL_NAMES = (
    "snaive",
    "savg",
    "lgbm",
    "lgbm_tweedie",
    "lgbm_mean",
    "lgbm_2season",
    "xgb",
    "ets",
    "theta",
    "arima",
    "mstl",
    "prophet",
)


def model_factory(name: str, **overrides: Any) -> Callable[[], Forecaster]:
    if name not in _FAMILIES:
        raise ConfigurationError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    cls = _load(name)
    params = {**_FAMILIES[name][2], **overrides}
    return lambda: cls(**params)


# The ensemble's class by module path, not by import: the ensemble imports this catalog to load its
# members, and the catalog must not import the ensemble back.
_ENSEMBLE_CLASS = ("salescast.models.ensemble", "EnsembleModel")


def model_class(family: str) -> type[Forecaster]:
    """The class that saved a model of `family` (as written in its manifest)."""
    if family == "ensemble":
        module, cls = _ENSEMBLE_CLASS
        ensemble: type[Forecaster] = getattr(importlib.import_module(module), cls)
        return ensemble
    if family not in _FAMILY_OF_CLASS:
        raise ConfigurationError(f"unknown model family {family!r}")
    return _load(_FAMILY_OF_CLASS[family])


# Families that take the holiday calendar's country.
_USES_COUNTRY = frozenset({"lgbm", "lgbm_tweedie", "lgbm_mean", "lgbm_2season", "xgb", "prophet"})


def family_params(names: list[str], country: str) -> dict[str, dict[str, Any]]:
    """Per-family parameters that come from settings rather than from the model's defaults."""
    return {name: {"country": country} for name in names if name in _USES_COUNTRY}


# `auto`: the default pipeline of the frame's frequency (default_families).
AUTO = "auto"


def default_families(freq: str) -> list[str]:
    """The default pipeline of a frequency, chosen on the accuracy and speed tables of bench/candidates.py
    and bench/speed.py (docs/benchmarks/forecasting.md): daily data, whose series are long and many, gets
    the global LightGBM and the seasonal average (AutoTheta took 4-8 times LightGBM's time per series
    there, and the weights dropped it); weekly and monthly data get LightGBM twice, scaled per series by
    standard score and by mean, and AutoTheta. The mean-scaled booster carries a seasonal swing learnt
    on long series over to young ones in proportion to their level (a standard score made from less
    than a season of history inflates it), which the messy weekly file's short series need; the
    standard-scaled one stays ahead on long, noisy series. Every blend is weighted by
    `ensemble.robust_weights`."""
    if freq == "D":
        return ["lgbm", "savg"]
    return ["lgbm", "lgbm_mean", "theta"]


def resolve_models(names: list[str], freq: str, point: str = "median") -> list[str]:
    """`names` as parsed, with `auto` replaced by the default pipeline of `freq`. With `point="mean"` the
    L1 LightGBM (a median) gives way to the Tweedie one (a mean), so that p50 aims at the mean."""
    resolved = default_families(freq) if names == [AUTO] else names
    if point == "mean":
        medians = ("lgbm", "lgbm_mean")
        resolved = list(dict.fromkeys("lgbm_tweedie" if name in medians else name for name in resolved))
    return resolved


def parse_models(spec: str) -> list[str]:
    """Comma-separated family names, or `auto` alone (see resolve_models)."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == [AUTO]:
        return names
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown:
        raise ConfigurationError(f"unknown model(s) {unknown}; known models: {', '.join(MODEL_NAMES)}, or {AUTO} alone")
    return names
