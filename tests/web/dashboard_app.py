"""A live salescast server with 1,000 products for the browser tests: generated sales (one store, 120
days), a run that rejected some rows, two small trained versions (v1 production, v2 registered with its
forecasts stored), a canary of v2 rolled back with a reason, and one key per scope. Training is kept
small (LightGBM with 10 trees, one backtest window, a 7-day horizon): the pages, not the model, are
under test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from salescast.config import Settings
from salescast.data.database import make_engine, migrate
from salescast.data.ingest import ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.schema import ModelVersion
from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
from salescast.monitoring.alerts import LogAlertSink
from salescast.pipeline import PipelineConfig, run_pipeline
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.deployments import DeploymentService
from salescast.registry.versions import Candidate, ModelRegistry
from salescast.serving.auth import KeyStore
from salescast.serving.stored_forecasts import ensure_stored_forecasts
from tests.conftest import answers_200, free_port

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = 1000
STORED_DAYS = 35  # a month of top products and the product page's 28 days fit
HORIZON = 7
FAST = {"lgbm": {"n_estimators": 10}}
ROLLBACK_REASON = "error rate 4.0% vs 0.0%: more than 1.0% higher"


@dataclass(frozen=True)
class LiveServer:
    url: str
    env: dict[str, str]
    keys: dict[str, str]

    def api(self, key: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {self.keys[key]}"})


@dataclass(frozen=True)
class LiveDashboard(LiveServer):
    rejected_run: int
    bundle_origin: str  # where a static bundle may be served from and call this server (CORS)


def _bad_rows_file(folder: Path) -> Path:
    """12 rows of corrections, 2 of them bad (lines 5 and 9 of the file): under the refusal limit."""
    good = [f"2023-02-{day:02d},S001,P00001,{day}" for day in range(1, 11)]
    lines = [*good[:3], "2023-02-20,S001,P00001,many", *good[3:6], "2023-02-31,S001,P00001,1", *good[6:]]
    path = folder / "corrections.csv"
    path.write_text("date,store,product,units\n" + "\n".join(lines) + "\n")
    return path


def _register_again(registry: ModelRegistry, row: ModelVersion, folder: Path) -> ModelVersion:
    """Version 2: version 1's model and lineage registered again (a second training would double the
    fixture's time and test nothing more of the pages)."""
    model = registry.fetch(row, folder)
    fields = ("name", "families", "weights", "params", "features", "freq", "horizon", "data_fingerprint")
    lineage = ("data_start", "data_end", "series", "package_version", "git_commit", "metrics", "gate")
    candidate = Candidate(**{name: getattr(row, name) for name in (*fields, *lineage)})
    return registry.register(candidate, model)


def build_store(folder: Path) -> tuple[Settings, dict[str, str], int]:
    settings = Settings(home=folder / "home", stored_forecast_days=STORED_DAYS, pipeline_horizon=HORIZON)
    engine = make_engine(f"sqlite:///{folder / 'salescast.db'}")
    migrate(engine)
    sales = folder / "sales.csv"
    write_sales(generate_sales(SyntheticConfig(stores=1, products=PRODUCTS, days=120, seed=11)), sales)
    ingest_file(engine, sales, resolve_spec(None), settings)
    rejected_run = ingest_file(engine, _bad_rows_file(folder), resolve_spec(None), settings).run_id
    registry = ModelRegistry(engine, LocalArtifactStore(folder / "artifacts"))
    config = PipelineConfig(models=["lgbm"], horizon=HORIZON, windows=1, model_params=FAST)
    first = run_pipeline(engine, registry, LogAlertSink(), config, settings).version
    assert first.status == "registered", first.reason
    version = _register_again(registry, first, folder / "v1")
    ensure_stored_forecasts(engine, registry, version, settings)
    deployments = DeploymentService(engine, registry, LogAlertSink(), lambda row: None)
    deployments.start("demand", 2, "canary", bake_seconds=300, actor="test")
    deployments.rollback("demand", "controller", ROLLBACK_REASON)
    store = KeyStore(engine, cache_seconds=0)
    keys = {scope: store.create(f"browser-{scope}", [scope]).secret for scope in ("read", "predict", "admin")}
    engine.dispose()
    assert rejected_run is not None
    return settings, keys, rejected_run


def server_env(folder: Path, home: Path, **settings: str) -> dict[str, str]:
    """The environment of a `salescast` subprocess over the SQLite store and artifacts in `folder`."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SALESCAST_HOME": str(home),
        "SALESCAST_DATABASE_URL": f"sqlite:///{folder / 'salescast.db'}",
        "SALESCAST_ARTIFACT_URI": f"file://{folder / 'artifacts'}",
        "SALESCAST_LOG_FORMAT": "text",
        "SALESCAST_ACCESS_LOG": "false",
        "SALESCAST_PREDICTION_LOG_PROCESS": "false",
        "SALESCAST_RATE_LIMIT_PER_SECOND": "1000",
        "SALESCAST_RATE_LIMIT_BURST": "1000",
        **{f"SALESCAST_{name.upper()}": value for name, value in settings.items()},
    }


@contextmanager
def serving(folder: Path, env: dict[str, str], probe: str = "/ready") -> Iterator[str]:
    """`salescast serve` in a subprocess on a free port with `env`; yields its URL once `probe` answers
    200 (`/ready` needs a production model; a store without one answers only `/health`)."""
    port = free_port()
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "salescast.cli", "serve", "--port", str(port), "--drain-seconds", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not answers_200(f"{url}/api/v1{probe}", server, timeout=60):
            raise RuntimeError(f"the server did not become ready:\n{(folder / 'server.log').read_text()[-3000:]}")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@contextmanager
def live_dashboard(folder: Path) -> Iterator[LiveDashboard]:
    """`salescast serve` in a subprocess on a free port over the store `build_store` makes in `folder`."""
    settings, keys, rejected_run = build_store(folder)
    bundle_origin = f"http://127.0.0.1:{free_port()}"
    env = server_env(
        folder,
        settings.home,
        stored_forecast_days=str(STORED_DAYS),
        pipeline_horizon=str(HORIZON),
        dashboard_origins=bundle_origin,
    )
    with serving(folder, env) as url:
        yield LiveDashboard(url, env, keys, rejected_run, bundle_origin)


def cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    """`salescast ARGS` as an operator runs it; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "salescast.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"salescast {' '.join(args)} failed: {done.stderr[-2000:]}"
    return done.stdout


@contextmanager
def empty_server(folder: Path) -> Iterator[LiveServer]:
    """A live server over a store just made by `salescast init`: no sales, no model, one admin key
    (made with `salescast keys create`, as an operator would)."""
    env = server_env(folder, folder / "home")
    cli(env, "init")
    key = cli(env, "keys", "create", "empty-admin", "--scope", "admin").strip()
    with serving(folder, env, probe="/health") as url:
        yield LiveServer(url, env, {"admin": key})
