"""The training pipeline: ingest -> features -> train -> backtest -> gate -> register -> promote.

The seed's weekly job as one function: every step is the same call the CLI makes. A candidate that
fails the gate is registered as rejected with its reasons and an alert goes out; one that passes is
registered, promoted to `production` (when asked) and its forecasts are stored for serving.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import math
import subprocess  # nosec B404: runs `git rev-parse` only
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

import salescast
from salescast.config import DEFAULT_MODELS, Settings
from salescast.data.ingest import IngestReport, ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.schema import ModelVersion
from salescast.features.frame import DS, ID, SeriesFrame, Y, load_series
from salescast.models.base import seasonal_period
from salescast.models.catalog import BASELINE, family_params, model_factory, resolve_models
from salescast.models.ensemble import DEFAULT_WEIGHT_METHOD, WeightMethod, combine
from salescast.monitoring.alerts import Alert, AlertSink
from salescast.monitoring.profiles import save_training_profile
from salescast.monitoring.training_runs import record_training_run
from salescast.registry.versions import PRODUCTION, Candidate, ModelRegistry
from salescast.serving.stored_forecasts import store_forecasts, stored_horizon
from salescast.training.backtest import BacktestSpec, cutoffs_of, run_backtest, seasonal_step
from salescast.training.card import model_card
from salescast.training.engine import compute_engine, train_on
from salescast.training.gate import GateConfig, GateVerdict, evaluate_gate
from salescast.training.metrics import evaluate, series_scales
from salescast.training.train import ENSEMBLE, TrainingReport

Progress = Callable[[str], None]
logger = logging.getLogger(__name__)


@dataclass
class PipelineConfig:
    name: str = "demand"
    models: list[str] = field(default_factory=lambda: DEFAULT_MODELS.split(","))
    horizon: int = 28
    windows: int = 3
    step: int | None = None  # None: seasonal_step (the first window a year before the hold-out)
    weight_method: WeightMethod = DEFAULT_WEIGHT_METHOD
    fixed_weights: dict[str, float] | None = None
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    gate: GateConfig = field(default_factory=GateConfig)
    promote: bool = True
    actor: str = "pipeline"
    compute_url: str = ""  # local:// or dask://…; empty: the settings' compute_url


@dataclass
class PipelineResult:
    version: ModelVersion
    verdict: GateVerdict
    promoted: bool
    forecasts_stored: int
    ingested: list[IngestReport]
    seconds: dict[str, float]
    report: TrainingReport


def frame_fingerprint(frame: SeriesFrame) -> str:
    """sha256 of the training frame's content: the same data gives the same fingerprint."""
    hashed = pd.util.hash_pandas_object(frame.data[[ID, DS, Y, *frame.exog]], index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )  # nosec B603 B607: a fixed command, git found on PATH as a developer's shell finds it
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _overall(metrics: pd.DataFrame, model: str) -> dict[str, float]:
    row = metrics[(metrics["level"] == "overall") & (metrics["model"] == model)].iloc[0]
    return {str(k): float(v) for k, v in row.drop(["level", "key", "model"]).items()}


def _json_metrics(metrics: dict[str, float] | None) -> dict[str, float | None] | None:
    """Metrics as JSON allows them: an undefined value (e.g. the coverage of a champion refit without
    intervals) is null, not NaN, which PostgreSQL's JSON type refuses."""
    if metrics is None:
        return None
    return {name: value if math.isfinite(value) else None for name, value in metrics.items()}


def champion_metrics(frame: SeriesFrame, champion: ModelVersion, spec: BacktestSpec) -> dict[str, float]:
    """The champion's configuration scored on the candidate's hold-out: its families refit up to the
    same cutoff and combined with its weights, so both are judged on the same periods."""
    holdout_spec = BacktestSpec(horizon=spec.horizon, windows=1, min_history=spec.min_history)
    factories = {name: model_factory(name, **champion.params.get(name, {})) for name in champion.weights}
    results = run_backtest(frame, factories, holdout_spec).results
    results = results.assign(champion=combine(results, champion.weights))
    history = frame.until(cutoffs_of(results)).data
    scores = evaluate(results, ["champion"], series_scales(history, seasonal_period(frame.freq)))
    return _overall(scores, "champion")


def run_pipeline(
    engine: Engine,
    registry: ModelRegistry,
    alerts: AlertSink,
    config: PipelineConfig,
    settings: Settings,
    new_files: Sequence[Path] = (),
    progress: Progress | None = None,
) -> PipelineResult:
    """Run the pipeline (see the module docstring) and record it as a training run: its duration, its
    outcome (registered, rejected or failed) and the gate's verdict, for /metrics."""
    started_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    try:
        result = _run_pipeline(engine, registry, alerts, config, settings, new_files, progress)
    except Exception as exc:
        _record_run(engine, config.name, started_at, started, "failed", message=f"{type(exc).__name__}: {exc}")
        raise
    outcome = "registered" if result.verdict.passed else "rejected"
    _record_run(engine, config.name, started_at, started, outcome, result.version.version, result.verdict.passed)
    return result


def _record_run(
    engine: Engine,
    name: str,
    started_at: dt.datetime,
    started: float,
    outcome: str,
    version: int | None = None,
    gate_passed: bool | None = None,
    message: str | None = None,
) -> None:
    # The run happened whatever this write does: a database that fails now must not turn a registered
    # version into a failed command (nor hide the error that failed the run).
    try:
        record_training_run(
            engine,
            name,
            started_at,
            time.perf_counter() - started,
            outcome,
            version=version,
            gate_passed=gate_passed,
            message=message,
        )
    except Exception:
        logger.exception("pipeline.training_run_not_recorded model=%s outcome=%s", name, outcome)


def _run_pipeline(
    engine: Engine,
    registry: ModelRegistry,
    alerts: AlertSink,
    config: PipelineConfig,
    settings: Settings,
    new_files: Sequence[Path] = (),
    progress: Progress | None = None,
) -> PipelineResult:
    seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(name: str) -> Iterator[None]:
        if progress:
            progress(name)
        started = time.perf_counter()
        yield
        seconds[name] = time.perf_counter() - started

    with timed("ingest"):
        ingested = [ingest_file(engine, path, resolve_spec(None), settings) for path in new_files]
    with timed("features"):
        frame = load_series(engine)
    models = resolve_models(config.models, frame.freq, settings.point_forecast)
    defaults = family_params(models, settings.holiday_country)
    params = {name: {**defaults.get(name, {}), **config.model_params.get(name, {})} for name in models}
    step = config.step or seasonal_step(frame, config.horizon, config.windows)
    spec = BacktestSpec(horizon=config.horizon, windows=config.windows, step=step)
    with timed("train"), compute_engine(config.compute_url or settings.compute_url) as compute:
        model, report = train_on(
            compute,
            frame,
            models,
            spec,
            weight_method=config.weight_method,
            fixed_weights=config.fixed_weights,
            model_params=params,
            progress=progress,
        )
    with timed("gate"):
        candidate = _overall(report.metrics, ENSEMBLE)
        baseline = _overall(report.metrics, BASELINE)
        champion_row = registry.current(config.name, PRODUCTION)
        champion = champion_metrics(frame, champion_row, spec) if champion_row is not None else None
        verdict = evaluate_gate(candidate, baseline, champion, config.gate)
    with timed("register"), tempfile.TemporaryDirectory(prefix="salescast-model-") as tmp:
        folder = Path(tmp) / "model"
        model.save(folder)
        report.metrics.to_csv(folder / "backtest_metrics.csv", index=False)
        version = registry.register(
            Candidate(
                name=config.name,
                families=list(models),
                weights=model.weights,
                params={name: dict(params.get(name, {})) for name in models},
                features=list(frame.exog),
                freq=frame.freq,
                horizon=config.horizon,
                data_fingerprint=frame_fingerprint(frame),
                data_start=frame.data[DS].min().date(),
                data_end=frame.data[DS].max().date(),
                series=len(frame.ids),
                package_version=salescast.__version__,
                git_commit=git_commit(),
                metrics={
                    "candidate": _json_metrics(candidate),
                    "baseline": _json_metrics(baseline),
                    "champion": _json_metrics(champion),
                    "card": model_card(report, list(models), params),
                },
                gate=verdict.as_dict(),
                status="registered" if verdict.passed else "rejected",
                reason=None if verdict.passed else "; ".join(verdict.reasons),
            ),
            folder,
        )
        # What live accuracy (MASE scales) and drift checks (the training window's profile) compare with.
        save_training_profile(engine, version.id, frame, settings.drift_reference_days)
    promoted, stored = False, 0
    if not verdict.passed:
        alerts.send(
            Alert(
                event="model.rejected",
                severity="warning",
                summary=f"{config.name} v{version.version} was rejected by the gate",
                details={"version": version.version, "reasons": verdict.reasons, "candidate": candidate},
            )
        )
    elif config.promote:
        with timed("promote"):
            periods = stored_horizon(frame.freq, config.horizon, settings.stored_forecast_days)
            stored = store_forecasts(engine, version, model, periods)
            registry.set_alias(config.name, PRODUCTION, version.version, config.actor, "passed the gate")
            promoted = True
    return PipelineResult(version, verdict, promoted, stored, ingested, seconds, report)
