"""Serving throughput and latency with wrk on 127.0.0.1 (Debian: `apt-get install wrk`).

    .venv/bin/python bench/serve.py                          # 1 and 2 workers, uvicorn and granian, SQLite
    .venv/bin/python bench/serve.py --database postgres --seconds 10 --workers 1 --servers granian

Rows, each measured in the same run and under each HTTP server:
  (a) a bare FastAPI route returning the same JSON bytes as (b), under the same server: the ceiling;
  (b) cached top-products, in-process cache (auth, rate limit, routing, prediction log all on);
  (c) the same with the Redis cache and the Redis rate limiter;
  (d) uncached top-products of a 1,000-product category (cache_url none://: every request queries).

The store holds synthetic sales (3,334 products, about 1,000 of them in Grocery, 2 stores, 120 days)
and a registered production version whose stored forecasts are seasonal-naive stand-ins: the serving
path reads stored forecasts whatever model made them, so no training is needed to measure it. Runs are
bounded (`--seconds` each) and only ever target 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import fresh_database_url

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = "salescast_bench_serve"
CATEGORY = "Grocery"
TOP = "/api/v1/forecast/top-products?time_period=month&category=Grocery&limit=10"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_store(url: str, folder: Path) -> str:
    """Ingest synthetic sales, register a production version with stored forecasts; return an API key."""
    from salescast.config import Settings
    from salescast.data.database import open_database
    from salescast.data.ingest import ingest_file
    from salescast.data.presets import resolve_spec
    from salescast.data.schema import Product, Store, StoredForecast
    from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
    from salescast.registry.artifacts import LocalArtifactStore
    from salescast.registry.versions import PRODUCTION, Candidate, ModelRegistry
    from salescast.serving.auth import KeyStore

    settings = Settings(home=folder / "home", database_url=url)
    engine = open_database(url)
    sales = generate_sales(SyntheticConfig(stores=2, products=3334, days=120, seed=3))
    path = folder / "sales.parquet"
    write_sales(sales, path)
    ingest_file(engine, path, resolve_spec(None), settings)

    model_folder = folder / "model"
    model_folder.mkdir()
    (model_folder / "README").write_text("stand-in artifact for the serving benchmark\n")
    registry = ModelRegistry(engine, LocalArtifactStore(folder / "artifacts"))
    version = registry.register(
        Candidate(
            name="demand",
            families=["snaive"],
            weights={"snaive": 1.0},
            params={},
            features=[],
            freq="D",
            horizon=91,
            data_fingerprint="0" * 64,
            data_start=None,
            data_end=None,
            series=int(sales.groupby(["store", "product"]).ngroups),
            package_version="bench",
            git_commit=None,
            metrics={},
        ),
        model_folder,
    )
    # Seasonal-naive stand-in forecasts: each series' last 7 days repeated over 91 days.
    last = pd.Timestamp(sales["date"].max())
    recent = sales[pd.to_datetime(sales["date"]) > last - pd.Timedelta(days=7)]
    weekly = recent.assign(dow=pd.to_datetime(recent["date"]).dt.dayofweek)[["store", "product", "dow", "units"]]
    days = pd.DataFrame({"date": pd.date_range(last + pd.Timedelta(days=1), periods=91, freq="D")})
    days["dow"] = days["date"].dt.dayofweek
    future = weekly.merge(days, on="dow")
    with engine.begin() as conn:
        products = dict(conn.execute(select(Product.sku, Product.id)).all())
        stores = dict(conn.execute(select(Store.code, Store.id)).all())
        p50 = future["units"].to_numpy(dtype=float)
        rows = pd.DataFrame(
            {
                "version_id": version.id,
                "product_id": future["product"].map(products).astype(int),
                "store_id": future["store"].map(stores).astype(int),
                "date": future["date"].dt.date,
                "p10": np.maximum(p50 * 0.6, 0.0),
                "p50": p50,
                "p90": p50 * 1.5 + 1.0,
                "method": "model",
            }
        )
        conn.execute(insert(StoredForecast), [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")])
    registry.set_alias("demand", PRODUCTION, version.version, "bench", "serving benchmark")
    key = KeyStore(engine).create("bench", ["read"])
    engine.dispose()
    return key.secret


@contextlib.contextmanager
def server(command: list[str], env: dict[str, str], port: int, path: str, headers: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {' '.join(command)}")
            time.sleep(0.3)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def warmed_wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    """wrk after a discarded 3-second warm-up: what a server does once at start (its prediction-log
    process importing, the first cache fill, lazily bound metrics) is not measured as serving."""
    wrk(url, 3, connections, headers)
    return wrk(url, seconds, connections, headers)


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--servers", nargs="+", choices=["uvicorn", "granian"], default=["uvicorn", "granian"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")

    with tempfile.TemporaryDirectory(prefix="salescast-bench-serve-") as tmp:
        folder = Path(tmp)
        url = fresh_database_url(args.database, folder, BENCH_DB)
        print(f"preparing the store ({args.database}) ...", file=sys.stderr)
        secret = prepare_store(url, folder)
        auth = {"Authorization": f"Bearer {secret}"}
        base_env = {
            **os.environ,
            "SALESCAST_HOME": str(folder / "home"),
            "SALESCAST_DATABASE_URL": url,
            "SALESCAST_ARTIFACT_URI": f"file://{folder / 'artifacts'}",
            "SALESCAST_ACCESS_LOG": "false",
            "SALESCAST_LOG_LEVEL": "WARNING",
            # The benchmark measures serving, not the limiter's refusals: one key sends every request.
            "SALESCAST_RATE_LIMIT_PER_SECOND": "1000000",
            "SALESCAST_RATE_LIMIT_BURST": "1000000",
        }
        body = httpx_body(base_env, folder, auth)
        (folder / "body.json").write_bytes(body)
        rows: list[tuple[str, str, int, dict[str, float]]] = []
        for server_name in args.servers:
            for workers in args.workers:
                port = free_port()
                bare = bare_command(folder, port, workers, server_name)
                with server(bare, {**base_env, "PYTHONPATH": str(ROOT)}, port, "/bare", {}):
                    result = warmed_wrk(f"http://127.0.0.1:{port}/bare", args.seconds, args.connections, {})
                    rows.append(("(a) bare route, same body", server_name, workers, result))
                variants = [
                    ("(b) cached, in-process", "memory://", "memory://"),
                    ("(c) cached, Redis", args.redis, args.redis),
                    ("(d) uncached, 1,000-product category", "none://", "memory://"),
                ]
                for label, cache_url, limiter_url in variants:
                    extra = {"SALESCAST_CACHE_URL": cache_url, "SALESCAST_RATE_LIMIT_URL": limiter_url}
                    port = free_port()
                    command = [
                        sys.executable, "-m", "salescast.cli", "serve", "--port", str(port),
                        "--workers", str(workers), "--server", server_name,
                    ]  # fmt: skip
                    url_top = f"http://127.0.0.1:{port}{TOP}"
                    with server(command, {**base_env, **extra}, port, TOP, auth):
                        rows.append(
                            (label, server_name, workers, warmed_wrk(url_top, args.seconds, args.connections, auth))
                        )
        print_table(rows, args)


def bare_command(folder: Path, port: int, workers: int, server_name: str) -> list[str]:
    # A factory takes no arguments: a module-level factory in the temp folder names the body.
    (folder / "bare_app.py").write_text(
        "from bench.serve_bare import create_app as make\n"
        f"def create_app():\n    return make({str(folder / 'body.json')!r})\n"
    )
    if server_name == "granian":
        return [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop",
            "--working-dir", str(folder), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning", "bare_app:create_app",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", "--factory", "bare_app:create_app", "--app-dir", str(folder),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip


def httpx_body(env: dict[str, str], folder: Path, auth: dict[str, str]) -> bytes:
    """(b)'s response body, fetched once from a server, so that (a) returns exactly the same bytes."""
    port = free_port()
    command = [sys.executable, "-m", "salescast.cli", "serve", "--port", str(port), "--workers", "1"]
    with server(command, env, port, TOP, auth):
        return httpx.get(f"http://127.0.0.1:{port}{TOP}", headers=auth, timeout=10).content


def print_table(rows: list[tuple[str, str, int, dict[str, float]]], args: argparse.Namespace) -> None:
    print(f"\nwrk -t2 -c{args.connections} -d{args.seconds}s, {args.database} store, {os.cpu_count()} cores, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    print("| row | server | workers | req/s | p50 ms | p99 ms | non-2xx | vs (a) |")
    print("|---|---|---|---|---|---|---|---|")
    ceilings = {(name, w): r["rps"] for label, name, w, r in rows if label.startswith("(a)")}
    for label, server_name, workers, result in rows:
        ceiling = ceilings.get((server_name, workers))
        ratio = result["rps"] / ceiling if ceiling else float("nan")
        print(
            f"| {label} | {server_name} | {workers} | {result['rps']:,.0f} | {result['p50']:.2f} "
            f"| {result['p99']:.2f} | {result['errors']:.0f} | {ratio:.0%} |"
        )


if __name__ == "__main__":
    main()
