"""Plumbing shared by the accuracy and speed benchmarks: child processes, peak memory, frames on disk."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from salescast.features.frame import ID, SeriesFrame, prepare

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def peak_rss_mib(pid: int | str = "self") -> float:
    """A process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if pid == "self" else 0.0


def workers_peak_rss_mib() -> float:
    """Summed peak RSS of this process's live descendants (Prophet's joblib workers): an upper bound on
    what they held at once. Call it before the workers exit."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return sum(peak_rss_mib(pid) for pid in found)


def run_child(script: str, task: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run `script --child <task>` in a fresh interpreter; it writes its result as JSON to task["out"].

    The child's stderr (its progress lines) passes through; a failed child stops the benchmark."""
    out = folder / f"result-{time.monotonic_ns()}.json"
    task = {**task, "out": str(out)}
    done = subprocess.run([sys.executable, script, "--child", json.dumps(task)], stdout=subprocess.DEVNULL, check=False)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"child {task.get('label', task)} failed with exit status {done.returncode}")
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return result


def write_result(task: dict[str, Any], result: dict[str, Any]) -> None:
    Path(task["out"]).write_text(json.dumps(result))


def progress_printer(label: str) -> Callable[[str], None]:
    """A `train(progress=...)` callback: stamped lines on stderr, with the time the previous step took."""
    started = last = time.perf_counter()
    previous = ""

    def report(step: str) -> None:
        nonlocal last, previous
        now = time.perf_counter()
        took = f" ({previous} took {now - last:.1f} s)" if previous else ""
        print(f"[{label} {now - started:7.1f} s] {step}{took}", file=sys.stderr, flush=True)
        last, previous = now, step

    return report


def warm_up(models: list[str]) -> None:
    """Import every family's libraries before a clock starts: a fresh process spends seconds on imports
    (and more where no bytecode cache is written) that a long-lived trainer pays once."""
    import importlib

    from salescast.models.catalog import model_factory

    for name in [*models, "snaive"]:
        model_factory(name)
    if "prophet" in models:
        importlib.import_module("prophet")  # salescast imports it lazily, at the first fit


def synthetic_frame(stores: int, products: int, days: int, seed: int) -> SeriesFrame:
    """The generator's sales as a series frame, as tests/models/conftest.py builds it."""
    from salescast.data.synthetic import SyntheticConfig, generate_sales

    sales = generate_sales(SyntheticConfig(stores=stores, products=products, days=days, seed=seed))
    sales["unique_id"] = sales["store"] + "/" + sales["product"]
    data = sales.rename(columns={"date": "ds", "units": "y", "unit_price": "price"})
    data["on_promotion"] = data["on_promotion"].astype(float)
    static = sales.drop_duplicates("unique_id")[["unique_id", "product", "store", "category", "subcategory"]]
    del sales
    return prepare(data[["unique_id", "ds", "y", "price", "on_promotion"]], static=static)


def save_frame(frame: SeriesFrame, folder: Path) -> None:
    """A prepared frame as two parquet files and its frequency."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.data.to_parquet(folder / "data.parquet", index=False)
    frame.static.to_parquet(folder / "static.parquet", index=False)
    (folder / "freq.txt").write_text(frame.freq)


def load_frame(folder: Path) -> SeriesFrame:
    """A frame `save_frame` wrote. It was prepared before it was saved, so it is not checked again."""
    data = pd.read_parquet(folder / "data.parquet")
    data[ID] = data[ID].astype(object)
    static = pd.read_parquet(folder / "static.parquet")
    return SeriesFrame(data, (folder / "freq.txt").read_text(), static)


POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def fresh_database_url(kind: str, folder: Path, name: str) -> str:
    """A new, empty store for a benchmark: a SQLite file in `folder`, or PostgreSQL database `name`
    (dropped first if an earlier run left it)."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}"
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
