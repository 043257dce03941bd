"""Which pipeline should be the default: candidate blends of fast, diverse families on every data set.

    .venv/bin/python bench/candidates.py                         # every data set, every candidate
    .venv/bin/python bench/candidates.py --datasets messy,m5w    # some of them
    .venv/bin/python bench/candidates.py --save bench/out/candidates.txt

Each data set is backtested once with every family (`BacktestSpec(horizon, windows=3)`, the windows
laid out as `train` lays them by default, the first a year before the hold-out where the history
allows: two windows calibrate, the last is the hold-out); each candidate pipeline is then scored on
that one backtest with `salescast.training.train.score_backtest`, exactly as `train` would weight and
band it: robust learned weights (`robust`) or the plain mean (`mean`), conformal p10-p90 from the
calibration windows. A candidate's time is the backtest time of its families (3 windows).

The reference of the target is `mean(snaive,theta,lgbm)`: the plain mean of SeasonalNaive, AutoTheta
and an untuned global LightGBM, computed in the same run. Every series is scored along its path
(full, short, cold), so short and young series count.

Data sets: `synthetic` (the generator, daily), `m5` (the M5 sample, daily), `m5w` (the same, weekly),
`superstore` (weekly per Region x Category), `au` (monthly), `messy` (a generated weekly assortment with
short, gappy, one-week and negative series, tests/training/messy.py). The real ones are read from
../shared/data; a missing one is skipped with a note.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd
from rich.console import Console
from rich.table import Table

from bench.accuracy import DataSet, build_m5
from bench.accuracy import build as build_accuracy_data_set
from bench.common import SHARED_DATA
from salescast.features.frame import ID, SeriesFrame, prepare
from salescast.models.catalog import family_params, model_factory
from salescast.training.backtest import BacktestSpec, run_backtest, seasonal_step
from salescast.training.train import ENSEMBLE, score_backtest

DATASETS = ("synthetic", "m5", "m5w", "superstore", "au", "messy")
REFERENCE = "mean(snaive,theta,lgbm)"
# Candidate pipelines: (weighting, families). ETS is left out of weekly data: statsforecast's ETS takes
# seasons up to 24, so it would fit weekly series without their yearly season.
CANDIDATES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("single", ("snaive",)),
    ("single", ("lgbm",)),
    ("mean", ("snaive", "theta", "lgbm")),
    ("mean", ("lgbm", "theta")),
    ("robust", ("lgbm", "theta")),
    ("robust", ("lgbm", "savg")),
    ("robust", ("lgbm", "lgbm_tweedie", "savg")),
    ("mean", ("lgbm", "theta", "savg")),
    ("robust", ("lgbm", "theta", "savg")),
    ("robust", ("lgbm", "theta", "snaive")),
    ("mean", ("lgbm", "lgbm_tweedie", "theta", "savg")),
    ("robust", ("lgbm", "lgbm_tweedie", "theta", "savg")),
    ("single", ("mstl",)),
    ("single", ("lgbm_2season",)),
    ("robust", ("lgbm", "lgbm_2season", "theta", "savg")),
    ("robust", ("lgbm", "lgbm_tweedie", "mstl", "savg")),
    ("robust", ("lgbm", "lgbm_tweedie", "theta", "mstl", "savg")),
    ("robust", ("lgbm", "theta", "savg", "ets")),
    ("single", ("lgbm_mean",)),
    ("robust", ("lgbm_mean", "theta")),
    ("robust", ("lgbm", "lgbm_mean", "theta")),
    ("robust", ("lgbm", "lgbm_mean", "savg")),
)


def label(weighting: str, families: tuple[str, ...]) -> str:
    return families[0] if weighting == "single" else f"{weighting}({','.join(families)})"


def build_m5_weekly(folder: Path) -> DataSet:
    daily = build_m5(folder, None).frame
    data = daily.data.assign(ds=daily.data["ds"].dt.to_period("W-SAT").dt.start_time)
    # A week counts when all its 7 days are in the series (its first and last weeks may be cut short).
    days = data.groupby([ID, "ds"])["y"].transform("size")
    weekly = data[days == 7].groupby([ID, "ds"], as_index=False).agg(y=("y", "sum"), price=("price", "mean"))
    frame = prepare(weekly, freq="W-SUN", static=daily.static)
    return DataSet("m5w", f"M5 sample aggregated to weeks, {len(frame.ids)} series", frame, 13, "weeks")


def build_messy(seed: int) -> DataSet:
    from tests.training.messy import messy_weekly_sales

    raw = messy_weekly_sales(seed=seed, stores=6, departments=20)
    data = raw.assign(unique_id=raw["store"] + "/" + raw["product"]).rename(columns={"date": "ds", "units": "y"})
    static = data.drop_duplicates(ID)[[ID, "product", "store", "category"]]
    frame = prepare(data[[ID, "ds", "y"]], static=static)
    description = f"generated messy weekly retail, {len(frame.ids)} series (short, gappy, one-week, negative weeks)"
    return DataSet("messy", description, frame, 13, "weeks")


def build(name: str, args: argparse.Namespace) -> DataSet | None:
    """The data sets of bench/accuracy.py (synthetic with seed 1, Superstore weekly with a 13-week
    horizon, every M5 series) and this benchmark's own two: M5 weekly and the messy weekly file."""
    if name == "messy":
        return build_messy(3)
    if name == "m5w":
        folder = args.data_dir / "m5_sample"
        if not folder.exists():
            print(f"note: skipping {name}: {folder} not found", file=sys.stderr)
            return None
        return build_m5_weekly(folder)
    shared = argparse.Namespace(
        data_dir=args.data_dir,
        synthetic_series=args.synthetic_series,
        synthetic_days=1096,
        seed=1,
        m5_series=None,
        superstore="weekly",
        weekly_horizon=13,
    )
    return build_accuracy_data_set(name, shared)


def families_for(frame: SeriesFrame, skipped: set[str]) -> list[str]:
    names = {family for _, families in CANDIDATES for family in families} - skipped
    if frame.freq.startswith("W"):
        names.discard("ets")
    return sorted(names)


def score(data: DataSet, skipped: set[str]) -> pd.DataFrame:
    families = families_for(data.frame, skipped)
    params = family_params(families, "US")
    factories = {name: model_factory(name, **params.get(name, {})) for name in families}
    step = seasonal_step(data.frame, data.horizon, 3)  # as train lays the windows out by default
    backtest = run_backtest(data.frame, factories, BacktestSpec(horizon=data.horizon, windows=3, step=step))
    rows = []
    for weighting, members in CANDIDATES:
        if not set(members) <= set(families):
            continue
        names = list(members)
        fixed = dict.fromkeys(names, 1 / len(names)) if weighting in ("mean", "single") else None
        report = score_backtest(data.frame, backtest, names, fixed_weights=fixed)
        overall = report.overall().loc[ENSEMBLE]
        rows.append(
            {
                "data": data.name,
                "pipeline": label(weighting, members),
                "mase": float(overall["mase"]),
                "wape": float(overall["wape"]),
                "bias": float(overall["bias"]),
                "coverage": float(overall["coverage"]),
                "seconds": sum(backtest.seconds[name] for name in members),
                "weights": ", ".join(f"{k} {v:.2f}" for k, v in report.weights.items()),
                "points": len(report.holdout) if report.holdout is not None else 0,
            }
        )
    table = pd.DataFrame(rows)
    reference = float(table.loc[table["pipeline"] == REFERENCE, "mase"].iloc[0])
    snaive = float(table.loc[table["pipeline"] == "snaive", "mase"].iloc[0])
    return table.assign(vs_reference=table["mase"] / reference - 1, vs_snaive=table["mase"] / snaive - 1)


def markdown(titles: list[str], tables: list[pd.DataFrame], summary: pd.DataFrame, started: dt.datetime) -> str:
    """The tables as Markdown, with the command and the date that produced them."""
    lines = [
        f"Produced by `{' '.join(['.venv/bin/python', *sys.argv])}`, started {started:%Y-%m-%d %H:%M} UTC "
        "(2 cores shared with other work: times are indicative).",
        "",
    ]
    header = (
        "| pipeline | MASE | vs reference | vs SeasonalNaive | WAPE | bias | p10-p90 coverage | s (3 windows) "
        "| weights |"
    )
    for title, table in zip(titles, tables, strict=True):
        lines += [f"### {title}", "", header, "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        lines += [
            f"| {r.pipeline} | {r.mase:.3f} | {r.vs_reference:+.1%} | {r.vs_snaive:+.1%} | {r.wape:.1f} % | "
            f"{r.bias:+.1f} % | {r.coverage:.1f} % | {r.seconds:.1f} | {r.weights} |"
            for r in table.itertuples()
        ]
        lines.append("")
    lines += [
        "### Across data sets (negative = better)",
        "",
        "| pipeline | mean vs reference | worst vs reference | worst vs SeasonalNaive | mean coverage |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {pipeline} | {v['mean_vs_reference']:+.1%} | {v['worst_vs_reference']:+.1%} | "
        f"{v['worst_vs_snaive']:+.1%} | {v['mean_coverage']:.1f} % |"
        for pipeline, v in summary.iterrows()
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--synthetic-series", type=int, default=200)
    parser.add_argument("--save", type=Path, help="also write the printed tables to this text file")
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown (for docs/benchmarks)")
    parser.add_argument("--skip-families", default="", help="families to leave out, with every candidate using them")
    args = parser.parse_args()
    console = Console(record=True, width=200)
    started = dt.datetime.now(dt.UTC)
    tables = []
    titles: list[str] = []
    for name in args.datasets.split(","):
        data = build(name.strip(), args)
        if data is None:
            continue
        clock = time.perf_counter()
        table = score(data, {name.strip() for name in args.skip_families.split(",") if name.strip()})
        tables.append(table)
        points = int(table["points"].iloc[0])
        titles.append(f"{data.name}: {data.description}; hold-out {data.horizon} {data.unit}, {points:,} points")
        out = Table(title=titles[-1])
        for column in (
            "pipeline",
            "MASE",
            "vs ref",
            "vs snaive",
            "WAPE",
            "bias",
            "p10-p90 cov.",
            "s (3 windows)",
            "weights",
        ):
            out.add_column(column, justify="left" if column in ("pipeline", "weights") else "right")
        for row in table.itertuples():
            out.add_row(
                str(row.pipeline),
                f"{row.mase:.3f}",
                f"{row.vs_reference:+.1%}",
                f"{row.vs_snaive:+.1%}",
                f"{row.wape:.1f} %",
                f"{row.bias:+.1f} %",
                f"{row.coverage:.1f} %",
                f"{row.seconds:.1f}",
                str(row.weights),
            )
        console.print(out)
        console.print(f"({time.perf_counter() - clock:.0f} s)")
    if tables:
        everything = pd.concat(tables, ignore_index=True)
        summary = everything.groupby("pipeline", sort=False).agg(
            mean_vs_reference=("vs_reference", "mean"),
            worst_vs_reference=("vs_reference", "max"),
            worst_vs_snaive=("vs_snaive", "max"),
            mean_coverage=("coverage", "mean"),
        )
        out = Table(title="across data sets (negative = better)")
        for column in ("pipeline", "mean vs ref", "worst vs ref", "worst vs snaive", "mean coverage"):
            out.add_column(column, justify="left" if column == "pipeline" else "right")
        for pipeline, values in summary.iterrows():
            out.add_row(
                str(pipeline),
                f"{values['mean_vs_reference']:+.1%}",
                f"{values['worst_vs_reference']:+.1%}",
                f"{values['worst_vs_snaive']:+.1%}",
                f"{values['mean_coverage']:.1f} %",
            )
        console.print(out)
    console.print(f"started {started:%Y-%m-%d %H:%M} UTC, command: {' '.join(sys.argv)}")
    if args.markdown and tables:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(titles, tables, summary, started))
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(console.export_text())


if __name__ == "__main__":
    main()
