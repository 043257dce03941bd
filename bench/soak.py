"""Soak: bounded mixed traffic against a real `salescast serve` on 127.0.0.1 for a set duration, while its
Redis is killed and restarted, a new version is promoted and a canary rolls out.

    .venv/bin/python bench/soak.py --duration 300                 # the 5-minute soak (docs/benchmarks/soak.md)
    .venv/bin/python bench/soak.py --duration 10 --json out.json  # a smoke run (tests/test_soak.py)

Traffic (paced to `--rate` requests a second over `--threads` clients): cached reads (two hot top-products
queries), varied reads (top-products with a random limit and period: mostly first-time misses), what-ifs
(random product, horizon and price change; computed by the model) and bad requests (422, 404, 401).

Timeline, as shares of the duration: steady; at 15 % Redis is killed (SIGKILL by pid) and at 25 % started
again; at 45 % version 2 is promoted over the API; at 65 % a canary of version 3 starts (as
`salescast deploy start demand 3 --strategy canary --steps 0.2,0.5,1.0` would). Printed: requests, 5xx,
p50 and p99 per phase, the model versions that answered, the canary's state at the end, and the
prediction-log rows sent (answers that log one) against those stored once the server has shut down
(lost = sent and not stored; doubled = stored more than once).

Everything runs on 127.0.0.1: a SQLite store and artifacts in a temporary folder, a redis-server of its
own on a free port, the server as a child process. The store is trained first (three small LightGBM
versions on 16 series, about half a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
TOP = "/api/v1/forecast/top-products"
WHAT_IF = "/api/v1/forecast/what-if"
PRODUCT = "/api/v1/forecast/products/"
PHASES = ("steady", "redis down", "redis back", "promoted v2", "canary v3")
# When each phase starts, as a share of the duration.
STARTS = (0.0, 0.15, 0.25, 0.45, 0.65)
CLIENT_KEYS = 16  # read keys and predict keys each
KINDS = (("cached", 0.45), ("varied", 0.15), ("what-if", 0.25), ("bad", 0.15))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_store(folder: Path, small: bool = False) -> tuple[str, dict[str, str], list[str]]:
    """Train versions 1 (production), 2 and 3 (registered, forecasts stored); one key per scope; SKUs.
    `small`: 4 series and tiny models, for a smoke run whose figures matter less than its wiring."""
    from salescast.config import Settings
    from salescast.data.database import make_engine, migrate
    from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
    from salescast.monitoring.alerts import LogAlertSink
    from salescast.pipeline import PipelineConfig, run_pipeline
    from salescast.registry.artifacts import LocalArtifactStore
    from salescast.registry.versions import ModelRegistry
    from salescast.serving.auth import KeyStore
    from salescast.serving.stored_forecasts import ensure_stored_forecasts

    url = f"sqlite:///{folder / 'soak.db'}"
    engine = make_engine(url)
    migrate(engine)
    sales = folder / "sales.csv"
    shape = (
        SyntheticConfig(stores=1, products=4, days=200, seed=11)
        if small
        else SyntheticConfig(stores=2, products=8, days=400, seed=11)
    )
    write_sales(generate_sales(shape), sales)
    settings = Settings(home=folder / "home")
    registry = ModelRegistry(engine, LocalArtifactStore(folder / "artifacts"))
    fast = {"lgbm": {"n_estimators": 10 if small else 30}}
    windows = 1 if small else 2
    for number in (1, 2, 3):
        config = PipelineConfig(models=["lgbm"], horizon=14, windows=windows, model_params=fast, promote=number == 1)
        files = [sales] if number == 1 else []
        version = run_pipeline(engine, registry, LogAlertSink(), config, settings, new_files=files).version
        if version.status != "registered":
            raise SystemExit(f"soak store: version {number} was {version.status}: {version.reason}")
        ensure_stored_forecasts(engine, registry, version, settings)
    keys = KeyStore(engine, cache_seconds=0)
    # Many clients: a rollout's share is drawn per key, so with two keys a 20 % canary could get nothing.
    secrets = {
        f"{scope}-{n}": keys.create(f"soak-{scope}-{n}", [scope]).secret
        for scope in ("read", "predict")
        for n in range(CLIENT_KEYS)
    }
    secrets["admin"] = keys.create("soak-admin", ["admin"]).secret
    with engine.connect() as conn:
        skus = [row[0] for row in conn.exec_driver_sql("SELECT sku FROM products ORDER BY sku")]
    engine.dispose()
    return url, secrets, skus


class RedisProcess:
    """A redis-server of the soak alone, killed and started again by pid."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None


@dataclass
class Sample:
    phase: str
    kind: str
    status: int
    ms: float
    version: str
    request_id: str
    logs_prediction: bool


@dataclass
class Traffic:
    url: str
    keys: dict[str, str]
    skus: list[str]
    rate: float
    threads: int
    phase: str = PHASES[0]
    samples: list[Sample] = field(default_factory=list)
    transport_errors: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, seed: int) -> None:
        chooser = random.Random(seed)
        names = [name for name, _ in KINDS]
        weights = [weight for _, weight in KINDS]
        pause = self.threads / self.rate
        next_at = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                kind = chooser.choices(names, weights)[0]
                phase = self.phase
                started = time.perf_counter()
                try:
                    response, logs = self._send(client, kind, chooser)
                except httpx.HTTPError as exc:  # counted apart: no status to report
                    with self._lock:
                        self.transport_errors[type(exc).__name__] += 1
                    continue
                ms = (time.perf_counter() - started) * 1000
                sample = Sample(
                    phase,
                    kind,
                    response.status_code,
                    ms,
                    response.headers.get("X-Model-Version", ""),
                    response.headers.get("X-Request-Id", ""),
                    logs and response.status_code == 200,
                )
                with self._lock:
                    self.samples.append(sample)
                next_at += pause
                time.sleep(max(0.0, next_at - time.monotonic()))

    def _send(self, client: httpx.Client, kind: str, chooser: random.Random) -> tuple[httpx.Response, bool]:
        read = {"Authorization": f"Bearer {self.keys[f'read-{chooser.randrange(CLIENT_KEYS)}']}"}
        predict = f"Bearer {self.keys[f'predict-{chooser.randrange(CLIENT_KEYS)}']}"
        if kind == "cached":
            return client.get(TOP, params={"limit": chooser.choice((5, 10))}, headers=read), True
        if kind == "varied":
            params = {"limit": chooser.randint(1, 200), "time_period": chooser.choice(("week", "month", "quarter"))}
            return client.get(TOP, params=params, headers=read), True
        if kind == "what-if":
            body = {
                "product": chooser.choice(self.skus),
                "horizon": chooser.randint(1, 7),
                "price_change_pct": round(chooser.uniform(-30, 30), 1),
            }
            return client.post(WHAT_IF, json=body, headers={"Authorization": predict}), True
        which = chooser.randrange(4)
        if which == 0:
            return client.get(TOP, params={"limit": 0}, headers=read), False
        if which == 1:
            return client.get(PRODUCT + "NO-SUCH-SKU", headers=read), False
        if which == 2:
            headers = {"Authorization": predict, "Content-Type": "application/json"}
            return client.post(WHAT_IF, content=b'{"product": ', headers=headers), False
        return client.get(TOP, headers={"Authorization": "Bearer sc_00000000_" + "x" * 43}), False

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.run, args=(seed,), daemon=True) for seed in range(self.threads)]
        for thread in threads:
            thread.start()
        return threads

    def stop(self, threads: list[threading.Thread]) -> None:
        self._stop.set()
        for thread in threads:
            thread.join(timeout=60)


def serve(folder: Path, url: str, redis_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SALESCAST_HOME": str(folder / "home"),
        "SALESCAST_DATABASE_URL": url,
        "SALESCAST_ARTIFACT_URI": f"file://{folder / 'artifacts'}",
        "SALESCAST_REDIS_URL": redis_url,
        "SALESCAST_CACHE_NEAR_SECONDS": "0",  # every lookup goes to Redis: its restart is felt
        "SALESCAST_RATE_LIMIT_PER_SECOND": "1000",
        "SALESCAST_RATE_LIMIT_BURST": "2000",
        "SALESCAST_DEPLOYMENT_CHECK_SECONDS": "1",
        "SALESCAST_PREDICTION_LOG_MAX_RETRY_SECONDS": "2",
        "SALESCAST_ACCESS_LOG": "false",
        "SALESCAST_LOG_FORMAT": "json",
    }
    log = (folder / "server.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "salescast.cli", "serve", "--port", str(port), "--drain-seconds", "10"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the server did not become ready; see {folder / 'server.log'}")
        time.sleep(0.2)


def start_canary(folder: Path, url: str, bake_seconds: float) -> None:
    """What `salescast deploy start demand 3 --strategy canary --steps 0.2,0.5,1.0` does, called in this
    process (the same service; a CLI process would spend most of its time importing on a busy machine)."""
    from salescast.cli.services import open_deployments
    from salescast.config import Settings

    settings = Settings(home=folder / "home", database_url=url, artifact_uri=f"file://{folder / 'artifacts'}")
    deployments = open_deployments(settings)
    try:
        deployments.start("demand", 3, "canary", steps=[0.2, 0.5, 1.0], bake_seconds=bake_seconds, actor="soak")
    finally:
        deployments.engine.dispose()


def stored_rows(url: str, request_ids: set[str]) -> tuple[int, int]:
    """Rows of the prediction log with one of `request_ids`, and how many distinct ids they carry."""
    from salescast.data.database import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            found = [row[0] for row in conn.exec_driver_sql("SELECT request_id FROM prediction_log")]
    finally:
        engine.dispose()
    ours = [request_id for request_id in found if request_id in request_ids]
    return len(ours), len(set(ours))


def deployment_outcome(url: str) -> str:
    """The canary's state when the soak ended: status, step and share, and why."""
    from salescast.data.database import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT candidate_version, status, step, share, reason FROM deployments ORDER BY id DESC LIMIT 1"
            ).first()
    finally:
        engine.dispose()
    if row is None:
        return "no deployment"
    version, status, step, share, reason = row
    return f"v{version} {status} at step {step + 1}, share {share:.0%}" + (f" ({reason})" if reason else "")


def summarise(traffic: Traffic, url: str, seconds: float) -> dict[str, Any]:
    phases = []
    for phase in PHASES:
        rows = [s for s in traffic.samples if s.phase == phase]
        ms = np.array([s.ms for s in rows]) if rows else np.array([0.0])
        phases.append(
            {
                "phase": phase,
                "requests": len(rows),
                "5xx": sum(s.status >= 500 for s in rows),
                "4xx": sum(400 <= s.status < 500 for s in rows),
                "p50_ms": round(float(np.percentile(ms, 50)), 1),
                "p99_ms": round(float(np.percentile(ms, 99)), 1),
                "versions": dict(Counter(s.version for s in rows if s.version)),
            }
        )
    sent = {s.request_id for s in traffic.samples if s.logs_prediction}
    stored, distinct = stored_rows(url, sent)
    return {
        "seconds": round(seconds, 1),
        "requests": len(traffic.samples),
        "requests_per_second": round(len(traffic.samples) / seconds, 1) if seconds else 0.0,
        "transport_errors": dict(traffic.transport_errors),
        "phases": phases,
        "log_rows_sent": len(sent),
        "log_rows_stored": stored,
        "log_rows_lost": len(sent) - distinct,
        "log_rows_doubled": stored - distinct,
        "canary": deployment_outcome(url),
    }


def print_report(report: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"soak: {args.duration:.0f} s, {args.threads} clients paced to {args.rate:.0f} req/s, 127.0.0.1")
    header = f"{'phase':<13} {'requests':>8} {'5xx':>5} {'4xx':>5} {'p50 ms':>8} {'p99 ms':>8}  versions served"
    print(header)
    print("-" * len(header))
    for row in report["phases"]:
        versions = ", ".join(f"{name} {count}" for name, count in sorted(row["versions"].items()))
        print(
            f"{row['phase']:<13} {row['requests']:>8} {row['5xx']:>5} {row['4xx']:>5} "
            f"{row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f}  {versions}"
        )
    total_5xx = sum(row["5xx"] for row in report["phases"])
    print(f"{'all':<13} {report['requests']:>8} {total_5xx:>5}  ({report['requests_per_second']} req/s)")
    if report["transport_errors"]:
        print(f"transport errors (no answer): {report['transport_errors']}")
    print(f"canary at the end: {report['canary']}")
    print(
        f"prediction-log rows: sent {report['log_rows_sent']}, stored {report['log_rows_stored']}, "
        f"lost {report['log_rows_lost']}, doubled {report['log_rows_doubled']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="Seconds of traffic (default 300)")
    parser.add_argument("--rate", type=float, default=40.0, help="Requests a second, all clients together")
    parser.add_argument("--threads", type=int, default=4, help="Concurrent clients")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder (store, server log)")
    parser.add_argument("--small", action="store_true", help="A tiny store (4 series): for smoke runs")
    args = parser.parse_args()
    if args.duration <= 0 or args.rate <= 0 or args.threads <= 0:
        raise SystemExit("--duration, --rate and --threads must be > 0")

    folder = Path(tempfile.mkdtemp(prefix="salescast-soak-"))
    redis_server = RedisProcess(free_port())
    server: subprocess.Popen[bytes] | None = None
    try:
        print("soak: training the store (three small versions)...", file=sys.stderr)
        url, keys, skus = prepare_store(folder, args.small)
        redis_server.start()
        port = free_port()
        server = serve(folder, url, f"redis://127.0.0.1:{redis_server.port}/0", port)
        base = f"http://127.0.0.1:{port}"
        traffic = Traffic(base, keys, skus, args.rate, args.threads)
        events = [
            (STARTS[1], PHASES[1], redis_server.kill),
            (STARTS[2], PHASES[2], redis_server.start),
            (STARTS[3], PHASES[3], lambda: promote(base, keys["admin"])),
            (STARTS[4], PHASES[4], lambda: start_canary(folder, url, max(1.0, args.duration * 0.1))),
        ]
        print(f"soak: {args.duration:.0f} s of traffic on {base}", file=sys.stderr)
        started = time.monotonic()
        threads = traffic.start()
        for share, phase, action in events:
            time.sleep(max(0.0, started + share * args.duration - time.monotonic()))
            traffic.phase = phase  # from the moment the change begins: its cost shows in its phase
            action()
        time.sleep(max(0.0, started + args.duration - time.monotonic()))
        traffic.stop(threads)
        seconds = time.monotonic() - started
        # A graceful stop writes what the log still holds; then every row has had its chance.
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        server = None
        report = summarise(traffic, url, seconds)
    finally:
        if server is not None:
            server.kill()
        redis_server.kill()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"soak: kept {folder}", file=sys.stderr)
    print_report(report, args)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


def promote(base: str, admin_key: str) -> None:
    response = httpx.post(
        f"{base}/api/v1/models/demand/aliases",
        json={"alias": "production", "version": 2, "reason": "soak"},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=120,
    )
    if response.status_code != 200:
        raise SystemExit(f"promoting v2 failed: {response.status_code} {response.text}")


if __name__ == "__main__":
    main()
