"""The model card: what a version is and how well it did, as the registry keeps it (JSON) and shows it.

Per version: the families and their weights (and how the weights were chosen), the hold-out table of
every family, the ensemble, SeasonalNaive and the plain-mean reference (MASE, WAPE, bias, p10-p90
coverage), the series and the coverage per path, and what the point forecast is (a median or a mean)
for each family. The data range trained on is kept beside it on the version itself.
"""

from __future__ import annotations

import math
from typing import Any

from salescast.models.catalog import BASELINE
from salescast.training.train import ENSEMBLE, REFERENCE, TrainingReport

CARD_METRICS = ("mase", "wape", "bias", "coverage")

# What each family's p50 is: the L1 loss and the naive methods give a median-like point, the Tweedie
# loss and the statistical models a mean.
POINT_FORECAST = {
    "lgbm": "median (L1 loss)",
    "lgbm_tweedie": "mean (Tweedie loss)",
    "lgbm_2season": "median (L1 loss)",
    "mstl": "mean",
    "xgb": "mean (Tweedie loss)",
    "ets": "mean",
    "theta": "mean",
    "arima": "mean",
    "prophet": "mean",
    "snaive": "last season's value",
    "savg": "mean of the last two years' same periods",
}


def _number(value: Any) -> float | None:
    number = float(value)
    return round(number, 4) if math.isfinite(number) else None


def model_card(report: TrainingReport, members: list[str], params: dict[str, dict[str, object]]) -> dict[str, Any]:
    """The card of a trained ensemble from its training report, JSON-ready (undefined values are null)."""
    overall = report.overall()
    holdout = {
        str(model): {metric: _number(row[metric]) for metric in CARD_METRICS} for model, row in overall.iterrows()
    }
    by_path = report.by_path()
    paths = {
        path: {
            "series": report.paths.get(path, 0),
            "coverage": _number(by_path.loc[(path, ENSEMBLE), "coverage"])
            if (path, ENSEMBLE) in by_path.index
            else None,
            "mase": _number(by_path.loc[(path, ENSEMBLE), "mase"]) if (path, ENSEMBLE) in by_path.index else None,
        }
        for path in report.paths
    }
    return {
        "families": members,
        "weights": {name: round(weight, 4) for name, weight in report.weights.items()},
        "weight_rule": report.weight_rule,
        "point_forecast": {name: _point_forecast(name, params.get(name, {})) for name in members},
        "p50": _blend_point(report.weights, params),
        "period_totals": "sum of daily means (p50 plus the mean backtest residual)",
        "holdout": holdout,
        "reference": REFERENCE if REFERENCE in holdout else None,
        "paths": paths,
        "categories": category_metrics(report),
        "holdout_points": len(report.holdout) if report.holdout is not None else None,
        "horizon": report.backtest.spec.horizon,
        "windows": report.backtest.spec.windows,
    }


def category_metrics(report: TrainingReport) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per category: the ensemble's and SeasonalNaive's hold-out metrics (the dashboard shows a product's
    category beside its forecast)."""
    rows = report.metrics[report.metrics["level"] == "group"]
    categories: dict[str, dict[str, dict[str, float | None]]] = {}
    for _, row in rows[rows["model"].isin([ENSEMBLE, BASELINE])].iterrows():
        values = {metric: _number(row[metric]) for metric in CARD_METRICS}
        categories.setdefault(str(row["key"]), {})[str(row["model"])] = values
    return dict(sorted(categories.items()))


def _blend_point(weights: dict[str, float], params: dict[str, dict[str, object]]) -> str:
    """What the blend's p50 aims at: a median when the L1 LightGBM carries weight, else a mean."""
    medians = [
        name
        for name, w in weights.items()
        if w > 0 and _point_forecast(name, params.get(name, {})).startswith("median")
    ]
    return "median" if medians else "mean"


def _point_forecast(name: str, params: dict[str, object]) -> str:
    if params.get("objective") == "tweedie":
        return "mean (Tweedie loss)"
    return POINT_FORECAST.get(name, "median")


def card_rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    """The card as (label, text) rows for a terminal table; missing values read `–`."""

    def metric(name: str, value: Any) -> str:
        if value is None:
            return "–"
        return f"{value:.3f}" if name == "mase" else f"{value:.1f} %"

    rows = [
        ("families and weights", ", ".join(f"{k} {v:.2f}" for k, v in card.get("weights", {}).items())),
        ("weights chosen by", str(card.get("weight_rule") or "–")),
        ("p50 aims at", str(card.get("p50") or "–")),
        ("point forecast", ", ".join(f"{k}: {v}" for k, v in card.get("point_forecast", {}).items())),
        ("period totals", str(card.get("period_totals") or "–")),
    ]
    for model, values in card.get("holdout", {}).items():
        text = ", ".join(f"{name} {metric(name, values.get(name))}" for name in CARD_METRICS)
        rows.append((f"hold-out: {model}", text))
    for path, values in card.get("paths", {}).items():
        rows.append(
            (
                f"path: {path}",
                f"{values.get('series', 0):,} series, MASE {metric('mase', values.get('mase'))}, "
                f"coverage {metric('coverage', values.get('coverage'))}",
            )
        )
    return rows
