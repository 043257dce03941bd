"""Forecast accuracy per model family, the ensemble and SeasonalNaive, on synthetic and real data sets.

    .venv/bin/python bench/accuracy.py                                  # every data set, every family
    .venv/bin/python bench/accuracy.py --datasets m5,au --models lgbm,ets
    .venv/bin/python bench/accuracy.py --synthetic-series 1000          # a larger synthetic assortment
    .venv/bin/python bench/accuracy.py --one-process                    # faster: no per-family peak RSS
    .venv/bin/python bench/accuracy.py --quick                          # a small smoke run (< 2 min)
    .venv/bin/python bench/accuracy.py --save bench/out/accuracy.txt    # and keep the printed tables

Data sets: `synthetic` (salescast's generator, 200 daily series x 3 years by default), `m5` (the 10
daily Walmart series of the M5 sample, with weekly prices; each series starts at its first sale),
`superstore` (Tableau's Superstore order lines as weekly units per Region x Category, 12 series, or
daily per Category with `--superstore daily`) and `au` (4 monthly Australian series, trimmed and
re-dated by whole years so that they end in the same month: salescast's backtest cuts every series at
the same dates). The real ones are read from ../shared/data; a missing one is skipped with a note.

Each data set is trained with `salescast.training.train.train` under `BacktestSpec(horizon, windows=3)`
(28 days, 13 weeks or 12 months): the first windows calibrate the ensemble weights and the conformal
p10-p90 intervals, the last window is the hold-out that every number in the table is scored on.
Each family also trains alone in a fresh process of its own, so that the peak RSS it shows is its own
(VmHWM of that process, the data included; Prophet's joblib workers are counted as well).

The default run takes about 15-20 minutes on 2 otherwise idle cores (`--one-process` about half that);
LightGBM and XGBoost run 2 OpenMP threads, whose times grow several-fold when other work shares the cores.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from bench.common import (
    SHARED_DATA,
    load_frame,
    peak_rss_mib,
    progress_printer,
    run_child,
    save_frame,
    synthetic_frame,
    warm_up,
    workers_peak_rss_mib,
    write_result,
)
from salescast.features.frame import SeriesFrame, prepare

if TYPE_CHECKING:
    from rich.console import Console

FAMILIES = ("lgbm", "xgb", "ets", "theta", "prophet")
DATASETS = ("synthetic", "m5", "superstore", "au")
SHOWN = ("mase", "wape", "rmse", "coverage")
BASELINE, ENSEMBLE = "snaive", "ensemble"


@dataclass(frozen=True)
class DataSet:
    name: str
    description: str
    frame: SeriesFrame
    horizon: int
    unit: str  # of the horizon


# --- data sets --------------------------------------------------------------------------------------


def build_synthetic(series: int, days: int, seed: int) -> DataSet:
    stores = min(4, series)
    products = math.ceil(series / stores)
    frame = synthetic_frame(stores, products, days, seed)
    description = f"salescast generator, {stores} stores x {products} products, {days} days, seed {seed}"
    return DataSet("synthetic", description, frame, 28, "days")


def build_m5(folder: Path, max_series: int | None) -> DataSet:
    ids = ["id", "item_id", "dept_id", "cat_id", "store_id", "state_id"]
    wide = pd.read_csv(folder / "sales_train_validation_sample.csv")
    if max_series:
        wide = wide.head(max_series)
    calendar = pd.read_csv(folder / "calendar.csv", usecols=["date", "wm_yr_wk", "d"])
    prices = pd.read_csv(folder / "sell_prices_sample.tsv", sep="\t", index_col=0)
    long = wide.melt(id_vars=ids, var_name="d", value_name="y").merge(calendar, on="d", how="left")
    long = long.merge(prices, on=["store_id", "item_id", "wm_yr_wk"], how="left")
    long["unique_id"] = long["store_id"] + "/" + long["item_id"]
    long["ds"] = pd.to_datetime(long["date"])
    # Before its first sale an item was not on the shelf (M5 pads every series back to 2011): drop that.
    first_sale = long[long["y"] > 0].groupby("unique_id")["ds"].min()
    long = long[long["ds"] >= long["unique_id"].map(first_sale)]
    data = long.rename(columns={"sell_price": "price"})[["unique_id", "ds", "y", "price"]]
    static = long.drop_duplicates("unique_id").rename(
        columns={"item_id": "product", "store_id": "store", "cat_id": "category", "dept_id": "subcategory"}
    )[["unique_id", "product", "store", "category", "subcategory"]]
    frame = prepare(data, freq="D", static=static)
    description = (
        f"M5 sample, {len(frame.ids)} Walmart item-store series, daily units from each first sale, weekly prices"
    )
    return DataSet("m5", description, frame, 28, "days")


def build_superstore(path: Path, grain: str, weekly_horizon: int) -> DataSet:
    raw = pd.read_csv(path, encoding="utf-8-sig", usecols=["Order Date", "Region", "Category", "Quantity"])
    ds = pd.to_datetime(raw["Order Date"], format="%d/%m/%y")
    first, last = ds.min(), ds.max()
    if grain == "weekly":
        raw["ds"] = ds.dt.to_period("W-SUN").dt.start_time  # weeks Monday..Sunday, dated by their Monday
        raw["unique_id"] = raw["Region"] + "/" + raw["Category"]
        freq, horizon, unit = "W-MON", weekly_horizon, "weeks"
        periods = pd.date_range(raw["ds"].min(), raw["ds"].max(), freq=freq)
        periods = periods[periods + pd.Timedelta(days=6) <= last]  # the last week is cut short: drop it
    else:
        raw["ds"] = ds
        raw["unique_id"] = raw["Category"]
        freq, horizon, unit = "D", 28, "days"
        periods = pd.date_range(first, last, freq=freq)
    units = raw.groupby(["unique_id", "ds"])["Quantity"].sum()
    grid = pd.MultiIndex.from_product([sorted(raw["unique_id"].unique()), periods], names=["unique_id", "ds"])
    # No order line in a period means nothing was sold in it.
    data = units.reindex(grid, fill_value=0).rename("y").reset_index()
    keys = raw.drop_duplicates("unique_id")
    static = pd.DataFrame(
        {
            "unique_id": keys["unique_id"],
            "product": keys["Category"],
            "store": keys["Region"] if grain == "weekly" else "all",
            "category": keys["Category"],
            "subcategory": None,
        }
    )
    frame = prepare(data, freq=freq, static=static)
    what = "weekly units per Region x Category" if grain == "weekly" else "daily units per Category"
    return DataSet("superstore", f"Superstore order lines, {what}, {len(frame.ids)} series", frame, horizon, unit)


def build_au(path: Path) -> DataSet:
    raw = pd.read_csv(path)
    data = raw.rename(columns={"series_id": "unique_id", "month": "ds", "value": "y"})[["unique_id", "ds", "y"]]
    data["ds"] = pd.to_datetime(data["ds"])
    # The series end in different years and months (1993-12 .. 2017-09), and salescast's backtest cuts
    # every series at the same dates, so the hold-out would score only the latest one. Align them: trim
    # each to end in the earliest final calendar month, then re-date it by whole years (which keeps
    # every month in its place in the year) to end in the latest final year.
    ends = data.groupby("unique_id")["ds"].max()
    end_month = int(ends.dt.month.min())
    parts = []
    for uid, series in data.groupby("unique_id"):
        last = ends[uid]
        cut = pd.Timestamp(last.year if last.month >= end_month else last.year - 1, end_month, 1)
        kept = series[series["ds"] <= cut]
        parts.append(kept.assign(ds=kept["ds"] + pd.DateOffset(years=int(ends.max().year - cut.year))))
    frame = prepare(pd.concat(parts, ignore_index=True), freq="MS")
    description = (
        f"Australian monthly sales (fpp2/fpp3), {len(frame.ids)} series, each trimmed to end in month {end_month} "
        "and re-dated by whole years to end together"
    )
    return DataSet("au", description, frame, 12, "months")


def build(name: str, args: argparse.Namespace) -> DataSet | None:
    """The data set, or None (with a note) when its files are missing."""
    if name == "synthetic":
        return build_synthetic(args.synthetic_series, args.synthetic_days, args.seed)
    paths = {
        "m5": args.data_dir / "m5_sample",
        "superstore": args.data_dir / "superstore" / "sample_superstore.csv",
        "au": args.data_dir / "au_monthly_sales" / "au_monthly_sales.csv",
    }
    if not paths[name].exists():
        print(f"note: skipping {name}: {paths[name]} not found", file=sys.stderr)
        return None
    if name == "m5":
        return build_m5(paths[name], args.m5_series)
    if name == "superstore":
        return build_superstore(paths[name], args.superstore, args.weekly_horizon)
    return build_au(paths[name])


# --- one measurement, in its own process ------------------------------------------------------------


def child(task: dict[str, Any]) -> None:
    from salescast.training.backtest import BacktestSpec
    from salescast.training.train import train

    warm_up(list(task["models"]))
    frame = load_frame(Path(task["frame"]))
    loaded_mib = peak_rss_mib()
    started = time.perf_counter()
    _, report = train(
        frame,
        list(task["models"]),
        BacktestSpec(horizon=int(task["horizon"]), windows=int(task["windows"])),
        progress=progress_printer(task["label"]),
    )
    seconds = time.perf_counter() - started
    overall = report.overall()
    holdout = report.backtest.window(-1)
    write_result(
        task,
        {
            "metrics": {str(model): {m: float(overall.loc[model, m]) for m in SHOWN} for model in overall.index},
            "seconds": report.seconds,
            "train_seconds": seconds,
            "weights": report.weights,
            "peak_mib": peak_rss_mib(),
            "workers_mib": workers_peak_rss_mib(),
            "loaded_mib": loaded_mib,
            "calibration_mase": _calibration_mase(report.window_metrics),
            "holdout": f"{holdout['ds'].min():%Y-%m-%d} .. {holdout['ds'].max():%Y-%m-%d}",
            "scored_series": int(holdout["unique_id"].nunique()),
        },
    )


def _calibration_mase(window_metrics: pd.DataFrame) -> dict[str, float]:
    """Each model's MASE averaged over the windows before the hold-out (those the weights learned on; the
    ensemble's there is cross-fitted, each window blended by the weights the other windows learned)."""
    earlier = window_metrics[window_metrics["window"] < window_metrics["window"].max()]
    return {str(model): float(mase) for model, mase in earlier.groupby("model")["mase"].mean().items()}


# --- the table --------------------------------------------------------------------------------------


def compare(value: float, name: str, reference: float) -> tuple[bool, str]:
    """(True, "beats lgbm's 0.890 by 2.1%") or (False, "is worse than lgbm's 0.890 by 2.1%"); the margin
    is relative to the reference."""
    if math.isclose(value, reference, rel_tol=5e-4):
        return True, f"ties {name}'s {reference:.3f}"
    margin = abs(value - reference) / reference if reference else math.inf
    if value < reference:
        return True, f"beats {name}'s {reference:.3f} by {margin:.1%}"
    return False, f"is worse than {name}'s {reference:.3f} by {margin:.1%}"


def verdict(
    mase: dict[str, float],
    families: list[str],
    weights: dict[str, float] | None = None,
    calibration: dict[str, float] | None = None,
) -> str:
    """Whether the ensemble beats SeasonalNaive and the best single family on MASE, with the margins,
    and, where it does not beat the best family, why (from the weights and the calibration windows)."""
    ensemble = mase[ENSEMBLE]
    if not math.isfinite(ensemble):
        return "ensemble MASE is undefined on this hold-out"
    beats_naive, versus_naive = compare(ensemble, "SeasonalNaive", mase[BASELINE])
    text = f"ensemble MASE {ensemble:.3f} {versus_naive}"
    if len(families) == 1:
        return f"{text}; with a single family ({families[0]}) the ensemble is that family"
    finite = [f for f in families if math.isfinite(mase[f])]
    if not finite:
        return f"{text}; no family has a finite MASE"
    best = min(finite, key=lambda f: mase[f])
    beats_best, versus_best = compare(ensemble, best, mase[best])
    joint = "and" if beats_naive == beats_best else "but"
    sentence = f"{text}, {joint} {versus_best} ({best} is the best single family)"
    if beats_best and not math.isclose(ensemble, mase[best], rel_tol=5e-4):
        return sentence
    return f"{sentence}. {why_not_better(mase, best, weights or {}, calibration or {})}"


def why_not_better(mase: dict[str, float], best: str, weights: dict[str, float], calibration: dict[str, float]) -> str:
    """A plain sentence on why the ensemble does not beat the best single family on the hold-out."""
    used = {name: w for name, w in weights.items() if w > 0}
    if list(used) == [best]:
        return (
            f"Why: the calibration windows gave {best} all the weight (no blend beat it there), so the "
            f"ensemble is {best} and ties it."
        )
    scored = {name: value for name, value in calibration.items() if name in weights and math.isfinite(value)}
    mix = ", ".join(f"{name} {w:.2f}" for name, w in sorted(used.items(), key=lambda item: -item[1]))
    if not scored:
        return (
            f"Why: the weights ({mix}) were learned on the calibration windows, and no calibration scores are at hand."
        )
    calibration_best = min(scored, key=lambda name: scored[name])
    if calibration_best != best:
        return (
            f"Why: the weights ({mix}) come from the calibration windows, where {calibration_best} was the "
            f"best family (MASE {scored[calibration_best]:.3f} against {best}'s {scored.get(best, math.nan):.3f}); "
            f"on the hold-out the ranking turned, and {best} alone did better than the blend."
        )
    blend = calibration.get(ENSEMBLE, math.nan)
    if math.isfinite(blend) and blend < scored[best]:
        return (
            f"Why: the weights ({mix}) were learned on the calibration windows, where the blend (cross-fitted) "
            f"beat {best} (MASE {blend:.3f} against {scored[best]:.3f}); on the hold-out the other families' "
            f"errors did not offset {best}'s as they had, so blending them in cost accuracy."
        )
    return (
        f"Why: the weights ({mix}) were chosen on the calibration windows taken together, but blended with the "
        f"weights learned on the other calibration window(s) only, the blend already lost to {best} there "
        f"(MASE {blend:.3f} against {scored[best]:.3f}): what blending gained did not carry over from one "
        "window to the next, nor to the hold-out."
    )


def render(data: DataSet, families: list[str], runs: dict[str, dict[str, Any]], windows: int, console: Console) -> None:
    from rich.table import Table

    together = runs[ENSEMBLE]
    metrics: dict[str, dict[str, float]] = together["metrics"]
    rows = [*families, ENSEMBLE, BASELINE]
    mase = {row: metrics[row]["mase"] for row in rows}
    best_mase = min((v for v in mase.values() if math.isfinite(v)), default=math.nan)
    alone = any(f in runs for f in (*families, BASELINE))
    rss_note = (
        "peak RSS: of a fresh process training that family alone (ensemble: all families together), data included"
        if alone
        else "peak RSS: of the one process that trained every family, for the whole data set"
    )
    caption = (
        f"{data.description}; hold-out {together['holdout']} ({data.horizon} {data.unit}, "
        f"{together['scored_series']} series scored), weights and p10-p90 intervals calibrated on the "
        f"{windows - 1} earlier window(s). wall s: backtest time of the family (fit + predict on {windows} windows, "
        f"report.seconds); ensemble: the whole train() call (all families, SeasonalNaive and the final refit). "
        f"{rss_note}; + Prophet's worker processes where it runs. ★ best MASE."
    )
    table = Table(title=f"accuracy: {data.name}", caption=caption, caption_justify="left")
    for name in ("model", "weight", "MASE", "WAPE %", "RMSE", "p10-p90 cov. %", "wall s", "peak RSS MiB"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for row in rows:
        values = metrics[row]
        own = runs.get(row, together)
        wall = together["train_seconds"] if row == ENSEMBLE else own["seconds"][row]
        mase_text = f"{mase[row]:.3f}"
        if math.isfinite(mase[row]) and math.isclose(mase[row], best_mase, rel_tol=1e-9):
            mase_text = f"[bold green]★ {mase_text}[/]"
        weight = together["weights"].get(row)
        table.add_row(
            "SeasonalNaive" if row == BASELINE else row,
            f"{weight:.2f}" if weight is not None else "",
            mase_text,
            f"{values['wape']:.1f}",
            f"{values['rmse']:,.2f}",
            f"{values['coverage']:.1f}",
            f"{wall:,.1f}",
            f"{own['peak_mib'] + own['workers_mib']:,.0f}",
        )
    console.print(table)
    reason = verdict(mase, families, together["weights"], together.get("calibration_mase"))
    console.print(f"[bold]verdict ({data.name}):[/] {reason}")
    for family in families:
        if family in runs and runs[family]["metrics"][family]["mase"] != metrics[family]["mase"]:
            console.print(
                f"note: {family} alone scored MASE {runs[family]['metrics'][family]['mase']:.4f}, "
                f"{metrics[family]['mase']:.4f} beside the others (the table shows the latter)"
            )
    console.print()


def run_dataset(data: DataSet, families: list[str], args: argparse.Namespace, folder: Path, console: Console) -> None:
    frame_dir = folder / data.name
    save_frame(data.frame, frame_dir)
    lengths = data.frame.lengths()
    print(
        f"{data.name}: {len(lengths)} series, {len(data.frame.data):,} rows, {data.frame.freq}, "
        f"{lengths.min()}-{lengths.max()} periods per series",
        file=sys.stderr,
    )
    base = {"frame": str(frame_dir), "horizon": data.horizon, "windows": args.windows}
    script = str(Path(__file__).resolve())
    runs: dict[str, dict[str, Any]] = {}
    if not args.one_process:
        for name in [*families, BASELINE]:
            runs[name] = run_child(script, {**base, "models": [name], "label": f"{data.name}/{name}"}, folder)
    if args.one_process or len(families) > 1:
        runs[ENSEMBLE] = run_child(script, {**base, "models": families, "label": f"{data.name}/all"}, folder)
    else:  # one family: its own run is the ensemble run
        runs[ENSEMBLE] = runs[families[0]]
    render(data, families, runs, args.windows, console)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--models", default=",".join(FAMILIES), help="comma-separated model families")
    parser.add_argument("--windows", type=int, default=3, help="backtest windows; the last is the hold-out")
    parser.add_argument("--synthetic-series", type=int, default=200)
    parser.add_argument("--synthetic-days", type=int, default=1096)
    parser.add_argument("--seed", type=int, default=0, help="of the synthetic data")
    parser.add_argument("--m5-series", type=int, default=None, help="only the first N M5 series")
    parser.add_argument("--superstore", choices=("weekly", "daily"), default="weekly")
    parser.add_argument("--weekly-horizon", type=int, choices=(8, 13), default=13)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument(
        "--one-process", action="store_true", help="train each data set in one process (no per-family peak RSS)"
    )
    parser.add_argument("--quick", action="store_true", help="a few series, lgbm and ets, one process per data set")
    parser.add_argument("--save", type=Path, help="also write the printed tables to this text file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if args.quick:
        args.synthetic_series, args.synthetic_days, args.m5_series, args.one_process = 8, 730, 3, True
        if args.models == ",".join(FAMILIES):
            args.models = "lgbm,ets"
    families = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in families if m not in FAMILIES]
    if unknown:
        parser.error(f"unknown model families {unknown}; choose from {', '.join(FAMILIES)}")
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if bad := [d for d in names if d not in DATASETS]:
        parser.error(f"unknown data sets {bad}; choose from {', '.join(DATASETS)}")
    from rich.console import Console

    console = Console(width=150, record=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="salescast-accuracy-") as tmp:
        for name in names:
            data = build(name, args)
            if data is not None:
                run_dataset(data, families, args, Path(tmp), console)
    print(f"done in {time.perf_counter() - started:,.0f} s", file=sys.stderr)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(console.export_text())


if __name__ == "__main__":
    main()
