"""Training speed and peak memory: the seed's design against salescast's default pipeline, and scale.

    .venv/bin/python bench/speed.py                  # table 1 (1,000 series) and table 2 (10,000 series)
    .venv/bin/python bench/speed.py --tables 1       # the seed comparison only
    .venv/bin/python bench/speed.py --series 2000    # table 2 on fewer series
    .venv/bin/python bench/speed.py --quick          # a small smoke run (< 2 min)
    .venv/bin/python bench/speed.py --save bench/out/speed.txt   # and keep the printed tables

Table 1: on the same synthetic daily series (10 stores x 100 products x 1,096 days by default), the
seed's design, XGBoost (mlforecast) + Prophet averaged with fixed weights 0.5/0.5, against the default
pipeline of daily data (`salescast.config.DEFAULT_MODELS` = auto, resolved by
`salescast.models.catalog.default_families("D")`: LightGBM and the seasonal average with robust weights;
the SeasonalNaive baseline is backtested in every run), plus one candidate pipeline (LightGBM + ETS
with learned weights, `--candidate ''` to leave it out). Table 2: the default pipeline on 10,000 series
x 1,096 days against the targets of 600 s (issue: train and backtest in under 10 minutes) and 4 GiB.

Every pipeline is `salescast.training.train.train(frame, models, BacktestSpec(horizon=28, windows=3))`,
the defaults of `salescast train`: backtest of each family and of SeasonalNaive on three rolling
windows, ensemble weights and conformal intervals, then the final refit on all history. The wall time
is that call alone: the synthetic data is
generated once, by a separate process, into a parquet file that each measuring process loads, and the
model libraries are imported, before its clock starts. Each measurement runs in a fresh process; its
peak RSS (VmHWM) includes the loaded data, and Prophet's joblib worker processes are added to it.
Accuracy is scored on the last window with weights and intervals calibrated on the two before it.

On 2 otherwise idle cores, table 1 takes about 10 minutes (the seed's Prophet most of it) and table 2
about 5 minutes more; table 2's data generation (not timed) needs about 4 GiB of memory.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
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
from salescast.config import DEFAULT_MODELS as DEFAULT_PIPELINE
from salescast.models.catalog import parse_models, resolve_models

HORIZON, WINDOWS = 28, 3
SEED_MODELS, SEED_WEIGHTS = ["xgb", "prophet"], {"xgb": 0.5, "prophet": 0.5}
# what `salescast train` trains on daily data with no options
DEFAULT_MODELS = resolve_models(parse_models(DEFAULT_PIPELINE), "D")
TARGET_SECONDS, TARGET_MIB = 600.0, 4096.0
STORES = 10


def shape(series: int) -> tuple[int, int]:
    """(stores, products) for about `series` series: every store sells every product."""
    stores = min(STORES, series)
    return stores, math.ceil(series / stores)


# --- in the child processes ---------------------------------------------------------------------------


def child_generate(task: dict[str, Any]) -> None:
    started = time.perf_counter()
    frame = synthetic_frame(int(task["stores"]), int(task["products"]), int(task["days"]), int(task["seed"]))
    save_frame(frame, Path(task["frame"]))
    write_result(
        task,
        {
            "series": len(frame.ids),
            "rows": len(frame.data),
            "seconds": time.perf_counter() - started,
            "peak_mib": peak_rss_mib(),
        },
    )


def child_train(task: dict[str, Any]) -> None:
    from salescast.training.backtest import BacktestSpec, seasonal_step
    from salescast.training.train import train

    warm_up(list(task["models"]))
    started = time.perf_counter()
    frame = load_frame(Path(task["frame"]))
    load_seconds = time.perf_counter() - started
    loaded_mib = peak_rss_mib()
    started = time.perf_counter()
    _, report = train(
        frame,
        list(task["models"]),
        BacktestSpec(horizon=HORIZON, windows=WINDOWS, step=seasonal_step(frame, HORIZON, WINDOWS)),
        fixed_weights=task.get("fixed_weights"),
        progress=progress_printer(task["label"]),
    )
    seconds = time.perf_counter() - started
    overall = report.overall()
    write_result(
        task,
        {
            "seconds": seconds,
            "breakdown": report.seconds,
            "load_seconds": load_seconds,
            "loaded_mib": loaded_mib,
            "peak_mib": peak_rss_mib(),
            "workers_mib": workers_peak_rss_mib(),
            "weights": report.weights,
            "series": len(frame.ids),
            "rows": len(frame.data),
            "metrics": {
                model: {m: float(overall[m].loc[model]) for m in ("mase", "wape", "coverage")}
                for model in ("ensemble", "snaive")
            },
        },
    )


# --- in the parent ------------------------------------------------------------------------------------


def generate(series: int, args: argparse.Namespace, folder: Path) -> Path:
    stores, products = shape(series)
    target = folder / f"frame-{stores}x{products}x{args.days}"
    if not target.exists():
        print(f"generating {stores} stores x {products} products x {args.days} days ...", file=sys.stderr)
        task = {"kind": "generate", "stores": stores, "products": products, "days": args.days, "seed": args.seed}
        made = run_child(__file__, {**task, "frame": str(target), "label": "generate"}, folder)
        print(
            f"  {made['series']:,} series, {made['rows']:,} rows in {made['seconds']:.0f} s (not timed below), "
            f"peak {made['peak_mib']:,.0f} MiB",
            file=sys.stderr,
        )
    return target


def measure(frame: Path, models: list[str], label: str, folder: Path, fixed: dict[str, float] | None = None) -> Any:
    task = {"kind": "train", "frame": str(frame), "models": models, "fixed_weights": fixed, "label": label}
    result = run_child(__file__, task, folder)
    print(
        f"  {label}: {result['seconds']:,.1f} s, peak {result['peak_mib'] + result['workers_mib']:,.0f} MiB",
        file=sys.stderr,
    )
    return result


def total_mib(result: dict[str, Any]) -> float:
    return float(result["peak_mib"] + result["workers_mib"])


def breakdown(label: str, result: dict[str, Any]) -> str:
    parts = ", ".join(f"{name} {seconds:,.1f}" for name, seconds in result["breakdown"].items())
    weights = ", ".join(f"{name} {weight:.2f}" for name, weight in result["weights"].items())
    return (
        f"{label}: {parts} s (backtest per family, then final_fit); weights {weights}; "
        f"data loaded in {result['load_seconds']:.1f} s, not timed "
        f"(RSS then {result['loaded_mib']:,.0f} MiB, libraries included)"
    )


def seed_table(args: argparse.Namespace, folder: Path) -> Any:
    from rich.table import Table

    frame = generate(args.seed_series, args, folder)
    default_models = args.default_models.split(",")
    runs: list[tuple[str, dict[str, Any]]] = [
        (
            "seed: xgb + prophet, fixed 0.5/0.5",
            measure(frame, SEED_MODELS, "seed xgb+prophet", folder, SEED_WEIGHTS),
        ),
        (f"default: {' + '.join(default_models)}", measure(frame, default_models, "default", folder)),
    ]
    if args.candidate:
        candidate = args.candidate.split(",")
        runs.append((f"candidate: {' + '.join(candidate)}", measure(frame, candidate, "candidate", folder)))
    seed = runs[0][1]
    series = seed["series"]
    notes = [breakdown(label, result) for label, result in runs]
    table = Table(
        title=f"table 1: seed design vs default pipeline, {series:,} daily series x {args.days} days, "
        f"BacktestSpec(horizon={HORIZON}, windows={WINDOWS})",
        caption="wall s: the whole train() call (backtest of every family and of SeasonalNaive, weights, "
        "intervals, final refit); peak RSS: the measuring process with its data (+ Prophet's workers); "
        "accuracy on the last window.\n" + "\n".join(notes),
        caption_justify="left",
    )
    for name in ("pipeline", "wall s", "peak RSS MiB", "MASE", "WAPE %", "p10-p90 cov. %", "speed-up vs seed"):
        table.add_column(name, justify="left" if name == "pipeline" else "right")
    for label, result in runs:
        scores = result["metrics"]["ensemble"]
        table.add_row(
            label,
            f"{result['seconds']:,.1f}",
            f"{total_mib(result):,.0f}",
            f"{scores['mase']:.3f}",
            f"{scores['wape']:.1f}",
            f"{scores['coverage']:.1f}",
            f"{seed['seconds'] / result['seconds']:.1f}x",
        )
    naive = runs[1][1]
    scores = naive["metrics"]["snaive"]
    table.add_row(
        "SeasonalNaive (baseline, in the default run)",
        f"{naive['breakdown']['snaive']:,.1f}",
        "",
        f"{scores['mase']:.3f}",
        f"{scores['wape']:.1f}",
        f"{scores['coverage']:.1f}",
        "",
    )
    return table


def scale_table(args: argparse.Namespace, folder: Path) -> Any:
    from rich.table import Table

    frame = generate(args.series, args, folder)
    default_models = args.default_models.split(",")
    result = measure(frame, default_models, "default at scale", folder)
    mib = total_mib(result)

    def check(ok: bool) -> str:
        return "[green]✓[/]" if ok else "[red]✗[/]"

    table = Table(
        title=f"table 2: default pipeline ({' + '.join(default_models)}) on {result['series']:,} daily series "
        f"x {args.days} days ({result['rows']:,} rows)",
        caption="wall s: the whole train() call; peak RSS: the measuring process with its data.\n"
        + breakdown("default", result),
        caption_justify="left",
    )
    for name in ("pipeline", "wall s", "target", "peak RSS MiB", "target", "MASE", "WAPE %", "p10-p90 cov. %"):
        table.add_column(name, justify="left" if name == "pipeline" else "right")
    scores = result["metrics"]["ensemble"]
    table.add_row(
        f"default: {' + '.join(default_models)}",
        f"{result['seconds']:,.1f}",
        f"< {TARGET_SECONDS:.0f} s {check(result['seconds'] < TARGET_SECONDS)}",
        f"{mib:,.0f}",
        f"< {TARGET_MIB / 1024:.0f} GiB {check(mib < TARGET_MIB)}",
        f"{scores['mase']:.3f}",
        f"{scores['wape']:.1f}",
        f"{scores['coverage']:.1f}",
    )
    naive = result["metrics"]["snaive"]
    table.add_row(
        "SeasonalNaive (baseline, same run)",
        f"{result['breakdown']['snaive']:,.1f}",
        "",
        "",
        "",
        f"{naive['mase']:.3f}",
        f"{naive['wape']:.1f}",
        f"{naive['coverage']:.1f}",
    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, nargs="+", choices=(1, 2), default=[1, 2])
    parser.add_argument("--seed-series", type=int, default=1_000, help="series in table 1")
    parser.add_argument("--series", type=int, default=10_000, help="series in table 2")
    parser.add_argument("--days", type=int, default=1_096)
    parser.add_argument("--seed", type=int, default=7, help="of the synthetic data")
    parser.add_argument("--default-models", default=",".join(DEFAULT_MODELS), help="the default pipeline")
    parser.add_argument("--candidate", default="lgbm,ets", help="an extra pipeline in table 1 ('' for none)")
    parser.add_argument("--quick", action="store_true", help="20 and 50 series over two years")
    parser.add_argument("--save", type=Path, help="also write the printed tables to this text file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task = json.loads(args.child)
        (child_generate if task["kind"] == "generate" else child_train)(task)
        return
    if args.quick:
        args.seed_series, args.series, args.days = 20, 50, 730
    from rich.console import Console

    started = time.perf_counter()
    console = Console(width=150, record=True)
    with tempfile.TemporaryDirectory(prefix="salescast-speed-") as tmp:
        folder = Path(tmp)
        if 1 in args.tables:
            console.print(seed_table(args, folder))
        if 2 in args.tables:
            console.print(scale_table(args, folder))
    print(f"done in {time.perf_counter() - started:,.0f} s", file=sys.stderr)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(console.export_text())


if __name__ == "__main__":
    main()
