"""The sales hierarchy: series (store/product) add up to categories (and stores), which add up to the total.

`aggregate` sums actuals and point forecasts bottom-up, which is coherent by construction. `reconcile` runs
hierarchicalforecast's BottomUp or MinTrace on one model's backtest forecasts, window by window, and
`reconciliation_report` scores each method at every level against no reconciliation ("base").

Only `y` and p50 columns are ever summed: a quantile of a sum is not the sum of the quantiles (the p90 of
a category is well below the sum of its series' p90s unless they always move together), so aggregating
p10/p90 columns would give wrong intervals.

There are no upper-level models yet, so the upper-level base forecasts are the bottom-up sums of the
model's p50 unless `upper` supplies independent ones. Bottom-up bases are already coherent, and every
MinTrace variant is a projection onto the coherent forecasts, so on them OLS, WLS and MinT-shrink return
the bases unchanged (up to rounding and the clipping of negatives); they only change forecasts once the
upper levels are forecast on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from salescast.errors import DataValidationError
from salescast.features.frame import DS, ID, Y
from salescast.training.metrics import mase, naive_scale, point_metrics

Method = Literal["bottom_up", "ols", "wls_struct", "mint_shrink"]
METHODS: tuple[Method, ...] = get_args(Method)
UPPER_LEVELS = ("category", "store")
LEVEL_ORDER = ("series", "category", "store", "total")
TOTAL = "total"
UNKNOWN = "unknown"
BASE = "base"
WINDOW_KEYS = ("window",)  # series of one window may have their own cutoffs: a window is summed whole
_NODE = "unique_id"  # hierarchicalforecast's id column; holds internal node ids, never a series id
_VALUE = "_base"  # internal model column: a model named like "x-lo" would be dropped by hierarchicalforecast


@dataclass
class Reconciliation:
    """`forecasts`: the input rows with the model column reconciled (negatives clipped to 0).
    `levels`: `aggregate()` of the reconciled forecasts (and `y` when present) at every level.
    `method`: the method asked for; `notes` say where another one had to be used instead."""

    forecasts: pd.DataFrame
    levels: pd.DataFrame
    method: Method
    notes: list[str] = field(default_factory=list)

    @property
    def note(self) -> str:
        return "; ".join(self.notes)


def hierarchy_levels(
    static: pd.DataFrame,
    levels: Sequence[str] = ("category",),
    ids: Sequence[str] | np.ndarray | pd.Index | None = None,
) -> pd.DataFrame:
    """One row per bottom series (sorted): unique_id, its ancestor at each of `levels`, and `total`.

    `levels` are taken from "category" and "store". A category missing from `static` is "unknown"; a
    store missing from it is the part of the id before "/" (ids are "store/product"). When `static` has
    no category column at all the category level is left out, as every series would be "unknown".
    `ids` lists the series to describe (default: those of `static`); series absent from `static` get
    "unknown" ancestors.
    """
    wrong = [level for level in levels if level not in UPPER_LEVELS]
    if wrong:
        raise ValueError(f"unknown hierarchy level(s) {wrong}; choose from {list(UPPER_LEVELS)}")
    table = static.drop_duplicates(ID).assign(**{ID: static[ID].astype(str)}).set_index(ID)
    chosen = table.index if ids is None else pd.Index([str(i) for i in ids])
    index = pd.Index(sorted(set(chosen)), name=ID)
    table = table.reindex(index)
    out = pd.DataFrame(index=index)
    for level in dict.fromkeys(levels):
        if level == "store":
            prefix = pd.Series([i.split("/", 1)[0] if "/" in i else np.nan for i in index], index=index)
            values = table["store"].where(_named(table["store"])) if "store" in table else prefix
            out["store"] = values.fillna(prefix)
        elif level in table:
            out[level] = table[level].where(_named(table[level]))
        else:
            continue
        out[level] = out[level].fillna(UNKNOWN).astype(str)
    out[TOTAL] = TOTAL
    return out.reset_index()


def _named(values: pd.Series) -> pd.Series:
    return values.notna() & (values.astype(str).str.strip() != "")


def aggregate(
    forecast_or_results: pd.DataFrame,
    static: pd.DataFrame,
    value_columns: list[str],
    levels: Sequence[str] = ("category",),
) -> pd.DataFrame:
    """Bottom-up sums of `value_columns` at every level, one row per (level, key, period).

    Columns: window and cutoff when the input has them (each backtest window is summed on its own, as
    windows can overlap in time), `level` ("series", "category", "store", "total"), `key` (the series id,
    category or store name, or "total"), `ds` and the summed columns. A sum with a missing part is
    missing. Pass only `y` and p50 columns: quantiles of a sum are not sums of quantiles.
    """
    missing = {ID, DS, *value_columns} - set(forecast_or_results.columns)
    if missing:
        raise DataValidationError(f"aggregate needs columns {sorted(missing)}")
    keys = [c for c in WINDOW_KEYS if c in forecast_or_results.columns]
    data = forecast_or_results[[*keys, ID, DS, *value_columns]].assign(**{ID: forecast_or_results[ID].astype(str)})
    tree = hierarchy_levels(static, levels, ids=data[ID].unique())
    merged = data.merge(tree, on=ID, how="left", validate="many_to_one")
    parts = [data.rename(columns={ID: "key"}).assign(level="series")]
    for level in tree.columns.drop(ID):
        by = [*keys, level, DS]
        sums = merged.groupby(by, sort=False)[value_columns].sum()
        gaps = merged.assign(**{c: merged[c].isna() for c in value_columns}).groupby(by, sort=False)[value_columns]
        sums = sums.mask(gaps.any())
        parts.append(sums.reset_index().rename(columns={level: "key"}).assign(level=level))
    out = pd.concat(parts, ignore_index=True)
    rank = out["level"].map({name: i for i, name in enumerate(LEVEL_ORDER)})
    out = out.assign(_rank=rank).sort_values([*keys, "_rank", "key", DS], kind="stable")
    return out[[*keys, "level", "key", DS, *value_columns]].reset_index(drop=True)


def level_scales(
    history: pd.DataFrame, static: pd.DataFrame, season: int, levels: Sequence[str] = ("category",)
) -> pd.Series:
    """MASE scale of every node, indexed by (level, key): the seasonal naive in-sample MAE of its
    bottom-up summed history (unique_id, ds, y), as `metrics.series_scales` does for series."""
    summed = aggregate(history[[ID, DS, Y]], static, [Y], levels).sort_values(["level", "key", DS])
    scales = summed.groupby(["level", "key"], sort=True)[Y].apply(lambda s: naive_scale(s.to_numpy(), season))
    return scales.rename("scale")


def reconcile(
    results: pd.DataFrame,
    static: pd.DataFrame,
    model: str,
    method: Method,
    history: pd.DataFrame | None = None,
    levels: Sequence[str] = ("category",),
    *,
    upper: pd.DataFrame | None = None,
) -> Reconciliation:
    """Reconcile `model`'s p50 across the hierarchy with hierarchicalforecast, each backtest window apart.

    `results`: unique_id, ds, the model column, and optionally y, window and cutoff (`BacktestResult`).
    Upper-level base forecasts are the bottom-up sums of the model's p50 (there are no upper-level
    models yet) unless `upper` gives independent ones: level, key, ds, the model column, and window
    when they differ by window. Missing bottom periods (a series that stops inside a window) count as 0.

    `mint_shrink` estimates the error covariance from in-sample residuals: `history` is unique_id, ds,
    y and the model column holding fitted (one-step) forecasts; only periods up to each window's cutoff
    are used, and upper-level residuals are the sums of their series' residuals. Without `history`, or
    in a window where a series has fewer than 2 residuals, `wls_struct` is used and a note says so.
    Reconciled negatives are clipped to 0; `levels` of the result re-sums the clipped series, so it
    stays coherent.
    """
    if method not in METHODS:
        raise ValueError(f"unknown reconciliation method {method!r}; choose from {list(METHODS)}")
    missing = {ID, DS, model} - set(results.columns)
    if missing:
        raise DataValidationError(f"reconcile needs columns {sorted(missing)}")
    if results[model].isna().any():
        raise DataValidationError(f"{int(results[model].isna().sum())} missing {model} forecasts; cannot reconcile")
    notes: list[str] = []
    if method == "mint_shrink" and history is None:
        history_used = None
        notes.append("mint_shrink needs in-sample residuals (history); none given, wls_struct was used")
    elif method == "mint_shrink" and history is not None:
        history_used = _check_history(history, model)
    else:
        history_used = None
    reconciled = np.empty(len(results), dtype=float)
    groups: dict[Any, np.ndarray] = {None: np.arange(len(results))}
    if "window" in results:
        groups = {window: np.asarray(at) for window, at in results.groupby("window", sort=True).indices.items()}
    for window, positions in groups.items():
        part = results.iloc[positions]
        # The earliest cutoff of the window: no series' residuals come from after any series' cutoff.
        cutoff = part["cutoff"].min() if "cutoff" in part else None
        chosen: Method = method
        past = None
        if method == "mint_shrink" and history_used is not None:
            past = _window_history(history_used, part, cutoff)
            if past is None:
                chosen = "wls_struct"
                where = "" if window is None else f" in window {window}"
                notes.append(f"a series had fewer than 2 in-sample residuals{where}; wls_struct was used")
        elif method == "mint_shrink":
            chosen = "wls_struct"
        upper_part = None
        if upper is not None:
            upper_part = upper[upper["window"] == window] if window is not None and "window" in upper else upper
        reconciled[positions] = _reconcile_window(part, static, model, chosen, past, levels, upper_part)
    forecasts = results.assign(**{model: np.clip(reconciled, 0.0, None)})
    columns = [Y, model] if Y in results and model != Y else [model]
    return Reconciliation(forecasts, aggregate(forecasts, static, columns, levels), method, notes)


def _check_history(history: pd.DataFrame, model: str) -> pd.DataFrame:
    missing = {ID, DS, Y, model} - set(history.columns)
    if missing:
        raise DataValidationError(f"the mint_shrink history needs columns {sorted(missing)}")
    if history.duplicated([ID, DS]).any():
        raise DataValidationError("the mint_shrink history has duplicated (unique_id, ds) rows")
    return history[[ID, DS, Y, model]].assign(**{ID: history[ID].astype(str)})


def _window_history(history: pd.DataFrame, part: pd.DataFrame, cutoff: pd.Timestamp | None) -> pd.DataFrame | None:
    """The residual history a window may use, on a full series x period grid (gaps as NaN so that an
    upper-level residual with a missing part is missing too); None when a series has too little."""
    ids = np.sort(part[ID].astype(str).unique())
    past = history[history[ID].isin(set(ids))]
    if cutoff is not None:
        past = past[past[DS] <= cutoff]
    usable = past.dropna().groupby(ID).size().reindex(ids, fill_value=0)
    if (usable < 2).any():
        return None
    grid = pd.MultiIndex.from_product([pd.Index(ids), pd.Index(np.sort(past[DS].unique()))], names=[ID, DS])
    return past.set_index([ID, DS]).reindex(grid).reset_index()


def _structure(tree: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Nodes (node, level, key), upper levels first and series last as hierarchicalforecast wants, and
    the summing matrix S (nodes x series)."""
    ids = tree[ID].to_numpy()
    rows: list[tuple[str, str]] = [(TOTAL, TOTAL)]
    blocks = [np.ones((1, len(ids)))]
    for level in [c for c in tree.columns if c not in (ID, TOTAL)]:
        for key in sorted(tree[level].unique()):
            rows.append((level, key))
            blocks.append((tree[level].to_numpy() == key).astype(float)[None, :])
    rows.extend(("series", str(i)) for i in ids)
    blocks.append(np.eye(len(ids)))
    nodes = pd.DataFrame(rows, columns=["level", "key"])
    # Internal ids: a category could share a name with a store or a series id.
    nodes[_NODE] = [f"n{i}" for i in range(len(nodes))]
    return nodes, np.vstack(blocks)


def _reconcile_window(
    part: pd.DataFrame,
    static: pd.DataFrame,
    model: str,
    method: Method,
    past: pd.DataFrame | None,
    levels: Sequence[str],
    upper: pd.DataFrame | None,
) -> np.ndarray:
    from hierarchicalforecast.core import HierarchicalReconciliation  # type: ignore[import-untyped]
    from hierarchicalforecast.methods import BottomUp, MinTrace  # type: ignore[import-untyped]

    ids = np.sort(part[ID].astype(str).unique())
    tree = hierarchy_levels(static, levels, ids)
    nodes, summing = _structure(tree)
    bottom_nodes = nodes.loc[nodes["level"] == "series", _NODE].tolist()
    # hierarchicalforecast needs every series at every period.
    rows = part[[ID, DS, model]].assign(**{ID: part[ID].astype(str)}).set_index([ID, DS])
    grid = pd.MultiIndex.from_product([pd.Index(ids), pd.Index(np.sort(part[DS].unique()))], names=[ID, DS])
    bottom = rows.reindex(grid, fill_value=0.0).reset_index()
    base = aggregate(bottom, static, [model], levels)
    if upper is not None:
        base = _with_upper(base, upper, model)
    y_hat = base.merge(nodes, on=["level", "key"])[[_NODE, DS, model]].rename(columns={model: _VALUE})
    s_df = pd.DataFrame(summing, columns=bottom_nodes).assign(**{_NODE: nodes[_NODE].to_numpy()})
    s_df = s_df[[_NODE, *bottom_nodes]]
    tags = {level: group[_NODE].to_numpy() for level, group in nodes.groupby("level", sort=False)}
    y_df = None
    if past is not None:
        insample = aggregate(past, static, [Y, model], levels).merge(nodes, on=["level", "key"])
        y_df = insample[[_NODE, DS, Y, model]].rename(columns={model: _VALUE})
    reconciler = BottomUp() if method == "bottom_up" else MinTrace(method=method)
    out = HierarchicalReconciliation(reconcilers=[reconciler]).reconcile(
        Y_hat_df=y_hat, S_df=s_df, tags=tags, Y_df=y_df
    )
    column = next(c for c in out.columns if str(c).startswith(f"{_VALUE}/"))
    series = out.merge(nodes[nodes["level"] == "series"], on=_NODE)
    values = series.set_index(["key", DS])[column]
    wanted = pd.MultiIndex.from_arrays([part[ID].astype(str), part[DS]])
    return np.asarray(values.reindex(wanted), dtype=float)


def _with_upper(base: pd.DataFrame, upper: pd.DataFrame, model: str) -> pd.DataFrame:
    """Replace the bottom-up sums by the independent upper-level forecasts where `upper` has them."""
    missing = {"level", "key", DS, model} - set(upper.columns)
    if missing:
        raise DataValidationError(f"upper-level forecasts need columns {sorted(missing)}")
    keys = [c for c in WINDOW_KEYS if c in base.columns and c in upper.columns]
    on = [*keys, "level", "key", DS]
    given = upper.loc[upper["level"] != "series", [*on, model]].rename(columns={model: "_upper"})
    merged = base.merge(given, on=on, how="left", validate="one_to_one")
    merged[model] = merged["_upper"].where(merged["_upper"].notna(), merged[model])
    return merged.drop(columns="_upper")


def reconciliation_report(
    results: pd.DataFrame,
    static: pd.DataFrame,
    model: str,
    methods: Sequence[Method],
    scales: pd.Series,
    *,
    history: pd.DataFrame | None = None,
    levels: Sequence[str] = ("category",),
    upper: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Accuracy of `model` without ("base") and with each reconciliation method, at every level.

    One row per (method, level): method, level, nodes (how many series/categories/... it pools), the
    `point_metrics` over all periods of all its nodes, `mase` (the mean of per-node MASE, as
    `metrics.evaluate` does) and `note`. `scales` is indexed by series id (MASE only at the series
    level) or by (level, key) as `level_scales` returns (MASE at every level). All rows of `results`
    are pooled: pass the hold-out window to score it alone.
    """
    if Y not in results:
        raise DataValidationError("the reconciliation report needs the actuals (y)")
    base = aggregate(results, static, [Y, model], levels)
    if upper is not None:
        base = _with_upper(base, upper, model)
    scored: dict[str, tuple[pd.DataFrame, str]] = {BASE: (base, "")}
    for method in dict.fromkeys(methods):
        done = reconcile(results, static, model, method, history, levels, upper=upper)
        scored[method] = (done.levels, done.note)
    rows: list[dict[str, object]] = []
    for name, (frame, note) in scored.items():
        for level in [lv for lv in LEVEL_ORDER if lv in set(frame["level"])]:
            part = frame[frame["level"] == level]
            values = point_metrics(part[Y].to_numpy(dtype=float), part[model].to_numpy(dtype=float))
            per_node = [
                mase(node[Y].to_numpy(dtype=float), node[model].to_numpy(dtype=float), _scale(scales, level, str(key)))
                for key, node in part.groupby("key", sort=True)
            ]
            rows.append(
                {
                    "method": name,
                    "level": level,
                    "nodes": int(part["key"].nunique()),
                    **values,
                    "mase": float(pd.Series(per_node, dtype=float).mean()),
                    "note": note,
                }
            )
    columns = ["method", "level", "nodes", "mae", "rmse", "r2", "mape", "smape", "wape", "bias", "mase", "note"]
    return pd.DataFrame(rows, columns=columns)


def _scale(scales: pd.Series, level: str, key: str) -> float:
    if isinstance(scales.index, pd.MultiIndex):
        return float(scales.get((level, key), np.nan))
    # Scales by series id say nothing about the scale of a category's or the total's sales.
    return float(scales.get(key, np.nan)) if level == "series" else float("nan")
