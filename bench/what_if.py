"""What-if latency against the size of the model's catalogue.

    PYTHONPATH=. .venv/bin/python bench/what_if.py                       # 300, 1,000 and 3,000 series
    PYTHONPATH=. .venv/bin/python bench/what_if.py --series 3000 --calls 5

For each size: synthetic daily sales (10 stores, two years) are ingested into a SQLite store and the
default pipeline trains, gates and promotes a model (one backtest window). Then, with the model loaded,
each row times:
  - the whole catalogue's forecast under a promotion plan (`predict(h, plan)`): the baseline, measured
    in the same run. A what-if used to make four of these (two plans, the ensemble and its members);
  - one product's series under the same plan (`predict(h, plan, ids)`), checked equal to its rows of
    the whole forecast;
  - `what_if` end to end (the database reads, both plans, the responsive-family check) for a product
    sold in every store: two predictions of its series now; the median of `--calls` products.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STORES, DAYS, HORIZON = 10, 730, 28


def measure(series: int, calls: int, folder: Path) -> dict[str, float]:
    from salescast.config import Settings
    from salescast.data.database import open_database
    from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
    from salescast.features.frame import ID
    from salescast.monitoring.alerts import LogAlertSink
    from salescast.pipeline import PipelineConfig, run_pipeline
    from salescast.registry.artifacts import LocalArtifactStore
    from salescast.registry.versions import PRODUCTION, ModelRegistry
    from salescast.serving.models import LoadedModels, what_if

    products = math.ceil(series / STORES)
    engine = open_database(f"sqlite:///{folder / 'store.db'}")
    sales = generate_sales(SyntheticConfig(stores=STORES, products=products, days=DAYS, seed=11))
    path = folder / "sales.parquet"
    write_sales(sales, path)
    settings = Settings(home=folder / "home")
    registry = ModelRegistry(engine, LocalArtifactStore(folder / "artifacts"))
    print(f"  training on {STORES * products:,} series ...", file=sys.stderr)
    run_pipeline(engine, registry, LogAlertSink(), PipelineConfig(windows=1), settings, new_files=[path])
    version = registry.alias("demand", PRODUCTION)
    models = LoadedModels(registry, folder / "models")
    skus = sorted(sales["product"].unique())

    with models.predicting(version) as model:
        # The plan of the whole catalogue: every series promoted on its first forecast day.
        last = model.members[next(iter(model.members))]._last_exog  # type: ignore[attr-defined]
        plan = pd.DataFrame({ID: last[ID], "ds": last["ds"] + pd.Timedelta(days=1), "on_promotion": 1.0})
        model.predict(HORIZON, plan)  # warm: first-call imports and caches are not the model's cost
        started = time.perf_counter()
        whole = model.predict(HORIZON, plan)
        whole_seconds = time.perf_counter() - started
        ids = [f"{store}/{skus[0]}" for store in sorted(sales["store"].unique())]
        subset_times = []
        for _ in range(calls):
            started = time.perf_counter()
            part = model.predict(HORIZON, plan, ids)
            subset_times.append(time.perf_counter() - started)
    expected = whole[whole[ID].isin(ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.reset_index(drop=True), expected)

    call_times = []
    first_day = dt.date.fromisoformat(str(sales["date"].max())[:10]) + dt.timedelta(days=1)
    for sku in skus[1 : calls + 1]:
        started = time.perf_counter()
        answer = what_if(engine, models, version, sku, None, HORIZON, promotion_days=[first_day])
        call_times.append(time.perf_counter() - started)
        assert len(answer["scenario_forecast"]) == HORIZON
    engine.dispose()
    return {
        "series": STORES * products,
        "whole_s": whole_seconds,
        "subset_ms": statistics.median(subset_times) * 1000,
        "what_if_ms": statistics.median(call_times) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, nargs="+", default=[300, 1000, 3000])
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for series in args.series:
        with tempfile.TemporaryDirectory(prefix="salescast-bench-what-if-") as tmp:
            rows.append(measure(series, args.calls, Path(tmp)))
    print(f"\nhorizon {HORIZON} days, {STORES} stores x {DAYS} days, default pipeline, median of {args.calls} calls")
    print(
        "| series | whole-catalogue predict ms | one product's predict ms | ratio "
        "| what-if ms, end to end | before: 4 whole-catalogue predicts ms |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        whole_ms = row["whole_s"] * 1000
        print(
            f"| {row['series']:,} | {whole_ms:.0f} | {row['subset_ms']:.0f} | {whole_ms / row['subset_ms']:.1f}x "
            f"| {row['what_if_ms']:.0f} | {4 * whole_ms:.0f} |"
        )


if __name__ == "__main__":
    main()
