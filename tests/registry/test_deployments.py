"""Deployments: rollouts walk their steps after baking, roll back on bad health, and two replicas running
the controller at once move a rollout exactly one step."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Connection, Engine, insert, select, update

from salescast.data.database import make_engine
from salescast.data.schema import AliasEvent, Deployment, LiveAccuracy, ModelVersion, PredictionLogEntry
from salescast.errors import ArtifactIntegrityError, ConfigurationError, ConflictError, NotFoundError
from salescast.monitoring.alerts import Alert, WebhookAlertSink
from salescast.monitoring.live_accuracy import AccuracyRow
from salescast.monitoring.live_stats import VariantStats
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.deployments import DeploymentService, LiveAccuracyGuard, judge
from salescast.registry.versions import CHALLENGER, PRODUCTION, AliasTarget, ModelRegistry, RejectedVersionError
from tests.registry.test_versions import candidate, model_folder, truncate_artifact

NAME = "demand"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves by hand: baking takes no real time."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


class MemorySink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)


class ForecastRecorder:
    """The ensure_forecasts callback: records which versions it was asked to make servable."""

    def __init__(self) -> None:
        self.versions: list[int] = []

    def __call__(self, row: ModelVersion) -> None:
        self.versions.append(row.version)


@pytest.fixture
def registry(engine: Engine, tmp_path: Path) -> ModelRegistry:
    """v1 (production), v2 and v3 registered, v4 rejected by the gate."""
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    for content in "abc":
        registry.register(candidate(NAME), model_folder(tmp_path, content))
    registry.register(candidate(NAME, status="rejected"), model_folder(tmp_path, "d"))
    registry.set_alias(NAME, PRODUCTION, 1, actor="test")
    return registry


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def recorder() -> ForecastRecorder:
    return ForecastRecorder()


@pytest.fixture
def service(
    engine: Engine, registry: ModelRegistry, sink: MemorySink, recorder: ForecastRecorder, clock: Clock
) -> DeploymentService:
    return DeploymentService(engine, registry, sink, recorder, clock=clock)


def log(
    engine: Engine,
    version: int,
    requests: int,
    at: dt.datetime,
    *,
    errors: int = 0,
    latency_ms: float = 10.0,
    served: bool = True,
) -> None:
    """`requests` prediction-log rows of `version` at `at`, the first `errors` of them 5xx."""
    rows: list[dict[str, object]] = [
        {
            "at": at,
            "request_id": uuid.uuid4().hex,
            "key_id": None,
            "model_name": NAME,
            "model_version": version,
            "variant": "challenger" if version != 1 else "production",
            "served": served,
            "route": "/forecast",
            "params": {},
            "status_code": 500 if i < errors else 200,
            "latency_ms": latency_ms,
            "result": None,
        }
        for i in range(requests)
    ]
    with engine.begin() as conn:
        conn.execute(insert(PredictionLogEntry), rows)


def healthy_traffic(engine: Engine, candidate_version: int, at: dt.datetime) -> None:
    log(engine, 1, 60, at)
    log(engine, candidate_version, 30, at)


def events(name: str, event: str) -> float:
    return REGISTRY.get_sample_value("salescast_deployment_events_total", {"model": name, "event": event}) or 0.0


# ------------------------------------------------------------------------------------------- rollouts


def test_a_canary_bakes_each_step_then_makes_the_candidate_production(
    service: DeploymentService, registry: ModelRegistry, engine: Engine, clock: Clock, recorder: ForecastRecorder
) -> None:
    started = service.start(NAME, 2, "canary", bake_seconds=600, actor="alice")

    assert (started.status, started.step, started.share, started.steps) == ("active", 0, 0.1, [0.1, 1.0])
    assert recorder.versions == [2]
    assert registry.aliases(NAME) == {PRODUCTION: 1, CHALLENGER: 2}

    healthy_traffic(engine, 2, clock.advance(60))
    early = service.evaluate(NAME, now=clock.advance(500))  # 560 s of 600: still baking
    assert early is not None and (early.step, early.share) == (0, 0.1)

    advanced = service.evaluate(NAME, now=clock.advance(40))
    assert advanced is not None and (advanced.status, advanced.step, advanced.share) == ("active", 1, 1.0)
    assert advanced.step_started_at.replace(tzinfo=dt.UTC) == clock.now

    # All traffic on the candidate now: it is compared with the baseline's requests since the start.
    log(engine, 2, 40, clock.advance(30))
    assert service.evaluate(NAME, now=clock.advance(300)).step == 1  # type: ignore[union-attr]
    done = service.evaluate(NAME, now=clock.advance(300))

    assert done is not None and (done.status, done.share) == ("completed", 1.0)
    assert registry.aliases(NAME) == {PRODUCTION: 2}
    last = registry.history(NAME, PRODUCTION)[-1]
    versions: dict[int | None, int] = {row.id: row.version for row in registry.versions(NAME)}
    assert (versions[last.from_version_id], versions[last.to_version_id], last.actor) == (1, 2, "controller")
    assert [(e.alias, e.to_version_id) for e in registry.history(NAME, CHALLENGER)][-1] == (CHALLENGER, None)
    assert service.active(NAME) is None
    assert service.evaluate(NAME) is None


def test_a_linear_rollout_walks_a_quarter_at_a_time(
    service: DeploymentService, registry: ModelRegistry, engine: Engine, clock: Clock
) -> None:
    service.start(NAME, 3, "linear", bake_seconds=60, actor="alice")
    shares = []
    for _ in range(4):
        healthy_traffic(engine, 3, clock.advance(1))
        deployment = service.evaluate(NAME, now=clock.advance(60))
        assert deployment is not None
        shares.append((deployment.share, deployment.status))

    assert shares == [(0.5, "active"), (0.75, "active"), (1.0, "active"), (1.0, "completed")]
    assert registry.alias(NAME, PRODUCTION).version == 3


def test_custom_steps_are_checked(service: DeploymentService) -> None:
    for strategy, steps, message in [
        ("canary", [0.5, 0.2, 1.0], "steps must increase"),
        ("linear", [0.3, 0.6], "ends with all traffic on the candidate"),
        ("canary", [0.0, 1.0], "each step is a share of traffic in (0, 1]"),
        ("split", [1.0], "a split takes one share between 0 and 1"),
        ("shadow", [0.2], "takes no --steps"),
        ("blue_green", None, "unknown strategy 'blue_green'"),
    ]:
        with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            service.start(NAME, 2, strategy, steps=steps, actor="alice")
    assert service.history(NAME) == []


def test_without_enough_candidate_requests_there_is_no_verdict_and_no_advance(
    service: DeploymentService, engine: Engine, clock: Clock, sink: MemorySink
) -> None:
    service.start(NAME, 2, "canary", bake_seconds=60, actor="alice")
    log(engine, 1, 100, clock.advance(1))
    log(engine, 2, 10, clock.now, errors=10)  # all failed, but only 10 of the 20 needed to judge

    waiting = service.evaluate(NAME, now=clock.advance(600))

    assert waiting is not None and (waiting.status, waiting.step, waiting.share) == ("active", 0, 0.1)
    assert service.health(waiting).outcome == "insufficient"
    assert sink.alerts == []

    log(engine, 2, 10, clock.advance(1))  # 20 requests now, 50 % of them failed
    assert service.evaluate(NAME, now=clock.now).status == "rolled_back"  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------- rollback


def test_a_candidate_with_more_errors_is_rolled_back_while_baking(
    service: DeploymentService, registry: ModelRegistry, engine: Engine, clock: Clock, sink: MemorySink
) -> None:
    before = events(NAME, "rolled_back")
    service.start(NAME, 2, "canary", bake_seconds=600, actor="alice")
    log(engine, 1, 100, clock.advance(5))
    log(engine, 2, 25, clock.now, errors=5)

    rolled = service.evaluate(NAME, now=clock.advance(10))

    assert rolled is not None and (rolled.status, rolled.share) == ("rolled_back", 0.0)
    assert rolled.reason is not None and "error rate 20.0%" in rolled.reason and "vs 0.0%" in rolled.reason
    assert registry.aliases(NAME) == {PRODUCTION: 1}
    assert [(a.event, a.severity) for a in sink.alerts] == [("deployment.rolled_back", "critical")]
    assert sink.alerts[0].details["candidate_version"] == 2
    assert events(NAME, "rolled_back") == before + 1
    assert service.evaluate(NAME, now=clock.advance(10)) is None
    assert len(sink.alerts) == 1


def test_a_slower_candidate_is_rolled_back(
    service: DeploymentService, registry: ModelRegistry, engine: Engine, clock: Clock, sink: MemorySink
) -> None:
    service.start(NAME, 2, "linear", max_latency_ratio=1.5, actor="alice")
    log(engine, 1, 50, clock.advance(5), latency_ms=10.0)
    log(engine, 2, 30, clock.now, latency_ms=16.0)

    rolled = service.evaluate(NAME, now=clock.advance(5))

    assert rolled is not None and rolled.status == "rolled_back"
    assert rolled.reason is not None and "mean latency 16.0 ms" in rolled.reason and "10.0 ms" in rolled.reason
    assert registry.alias(NAME, PRODUCTION).version == 1 and len(sink.alerts) == 1


def test_a_slow_tail_is_caught_by_the_p99_when_the_mean_looks_fine(
    service: DeploymentService, engine: Engine, clock: Clock
) -> None:
    service.start(NAME, 2, "canary", max_latency_ratio=1.5, actor="alice")
    log(engine, 1, 200, clock.advance(5), latency_ms=10.0)
    log(engine, 2, 196, clock.now, latency_ms=10.0)
    log(engine, 2, 4, clock.now, latency_ms=100.0)  # mean 11.8 ms (fine), p99 100 ms (not)

    rolled = service.evaluate(NAME, now=clock.advance(5))

    assert rolled is not None and rolled.status == "rolled_back"
    assert rolled.reason is not None and rolled.reason.startswith("p99 latency 100.0 ms")


def test_shadow_results_and_rows_before_the_step_do_not_count(
    service: DeploymentService, engine: Engine, clock: Clock
) -> None:
    log(engine, 2, 50, START - dt.timedelta(hours=1), errors=50)  # an earlier experiment's failures
    service.start(NAME, 2, "canary", actor="alice")
    log(engine, 2, 50, clock.advance(1), errors=50, served=False)  # never returned to anyone
    healthy_traffic(engine, 2, clock.now)

    assert service.evaluate(NAME, now=clock.advance(1)).status == "active"  # type: ignore[union-attr]


def test_a_manual_rollback_warns_and_leaves_production(
    service: DeploymentService, registry: ModelRegistry, sink: MemorySink
) -> None:
    service.start(NAME, 2, "split", steps=[0.3], actor="alice")

    rolled = service.rollback(NAME, "bob", "customers complained")

    assert (rolled.status, rolled.share, rolled.reason) == ("rolled_back", 0.0, "customers complained")
    assert registry.aliases(NAME) == {PRODUCTION: 1}
    assert [(a.severity, a.details["actor"]) for a in sink.alerts] == [("warning", "bob")]
    with pytest.raises(NotFoundError, match="has no active deployment"):
        service.rollback(NAME, "bob", "again")


def test_a_rollback_stands_when_the_alert_cannot_be_delivered(
    engine: Engine, registry: ModelRegistry, recorder: ForecastRecorder, clock: Clock
) -> None:
    unreachable = WebhookAlertSink("http://127.0.0.1:9/hook", retries=0, timeout=1)
    service = DeploymentService(engine, registry, unreachable, recorder, clock=clock)
    service.start(NAME, 2, "canary", actor="alice")
    log(engine, 1, 50, clock.advance(1))
    log(engine, 2, 50, clock.now, errors=50)

    assert service.evaluate(NAME, now=clock.advance(1)).status == "rolled_back"  # type: ignore[union-attr]
    assert registry.aliases(NAME) == {PRODUCTION: 1}


# ------------------------------------------------------------------------------------------- replicas


@pytest.fixture
def second_engine(engine: Engine) -> Iterator[Engine]:
    """Another replica's own connection pool on the same database."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    yield other
    other.dispose()


def test_two_replicas_evaluating_at_once_advance_a_step_exactly_once(
    service: DeploymentService,
    registry: ModelRegistry,
    second_engine: Engine,
    engine: Engine,
    clock: Clock,
    sink: MemorySink,
    recorder: ForecastRecorder,
) -> None:
    other = DeploymentService(second_engine, ModelRegistry(second_engine, registry.store), sink, recorder, clock=clock)
    replicas = [service, other]
    service.start(NAME, 2, "linear", bake_seconds=60, actor="alice")
    advanced_before, completed_before = events(NAME, "advanced"), events(NAME, "completed")

    def race() -> list[Deployment | None]:
        barrier = threading.Barrier(len(replicas))
        results: list[Deployment | None] = [None] * len(replicas)
        failures: list[BaseException] = []

        def run(index: int) -> None:
            try:
                barrier.wait()
                results[index] = replicas[index].evaluate(NAME, now=clock.now)
            except BaseException as exc:  # collected: a thread's exception would otherwise vanish
                failures.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(replicas))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        return results

    seen = []
    for _ in range(4):
        healthy_traffic(engine, 2, clock.advance(1))
        clock.advance(60)
        race()
        deployment = service.history(NAME)[-1]
        seen.append((deployment.step, deployment.share, deployment.status))

    assert seen == [(1, 0.5, "active"), (2, 0.75, "active"), (3, 1.0, "active"), (3, 1.0, "completed")]
    assert events(NAME, "advanced") == advanced_before + 3
    assert events(NAME, "completed") == completed_before + 1
    # One alias flip, audited once: the replica that lost the race touched nothing.
    assert [e.actor for e in registry.history(NAME, PRODUCTION)] == ["test", "controller"]
    assert registry.aliases(NAME) == {PRODUCTION: 2}


# ------------------------------------------------------------------------------------------- starting


def test_only_one_deployment_of_a_model_runs_at_a_time(service: DeploymentService) -> None:
    service.start(NAME, 2, "canary", actor="alice")

    with pytest.raises(ConflictError, match=r"already has an active canary deployment #\d+ \(v1 -> v2, 10%"):
        service.start(NAME, 3, "linear", actor="bob")
    assert len(service.history(NAME)) == 1


def test_unservable_candidates_are_refused(
    service: DeploymentService, registry: ModelRegistry, recorder: ForecastRecorder
) -> None:
    with pytest.raises(RejectedVersionError, match="v4 was rejected"):
        service.start(NAME, 4, "canary", actor="alice")
    assert recorder.versions == []  # refused before its forecasts were computed
    with pytest.raises(ConflictError, match="v1 is production already"):
        service.start(NAME, 1, "canary", actor="alice")
    with pytest.raises(NotFoundError, match="has no version 9"):
        service.start(NAME, 9, "canary", actor="alice")
    registry.remove_alias(NAME, PRODUCTION, actor="test")
    with pytest.raises(NotFoundError, match="has no production version"):
        service.start(NAME, 2, "canary", actor="alice")
    assert service.history(NAME) == []


def test_a_candidate_with_a_corrupt_artifact_is_refused_before_any_work(
    service: DeploymentService, registry: ModelRegistry, recorder: ForecastRecorder
) -> None:
    truncate_artifact(registry.version(NAME, 2))

    with pytest.raises(ArtifactIntegrityError, match="demand v2 cannot be challenger: its artifact is corrupt"):
        service.start(NAME, 2, "all_at_once", actor="alice")

    assert recorder.versions == [] and service.history(NAME) == []
    assert registry.aliases(NAME) == {PRODUCTION: 1}


def test_a_rollout_does_not_complete_onto_an_artifact_corrupted_meanwhile(
    service: DeploymentService, registry: ModelRegistry
) -> None:
    service.start(NAME, 3, "canary", actor="alice")
    truncate_artifact(registry.version(NAME, 3))

    with pytest.raises(ArtifactIntegrityError, match="demand v3 cannot be production"):
        service.promote_candidate(NAME, "bob")

    running = service.active(NAME)
    assert running is not None and running.status == "active"
    assert registry.aliases(NAME) == {PRODUCTION: 1, CHALLENGER: 3}


def test_a_candidate_whose_forecasts_cannot_be_stored_gets_no_traffic(
    engine: Engine, registry: ModelRegistry, sink: MemorySink
) -> None:
    def broken(row: ModelVersion) -> None:
        raise NotFoundError(f"{row.name} v{row.version} has no recorded artifact")

    with pytest.raises(NotFoundError, match="no recorded artifact"):
        DeploymentService(engine, registry, sink, broken).start(NAME, 2, "canary", actor="alice")
    assert DeploymentService(engine, registry, sink, broken).history(NAME) == []
    assert registry.aliases(NAME) == {PRODUCTION: 1}


def test_all_at_once_flips_production_immediately(
    service: DeploymentService, registry: ModelRegistry, recorder: ForecastRecorder
) -> None:
    deployment = service.start(NAME, 3, "all_at_once", actor="alice")

    assert (deployment.status, deployment.share, deployment.steps) == ("completed", 1.0, [1.0])
    assert recorder.versions == [3]
    assert registry.aliases(NAME) == {PRODUCTION: 3}
    assert registry.history(NAME, PRODUCTION)[-1].actor == "alice"


def test_two_operators_starting_at_once_get_one_deployment(
    service: DeploymentService,
    registry: ModelRegistry,
    second_engine: Engine,
    sink: MemorySink,
    recorder: ForecastRecorder,
    clock: Clock,
) -> None:
    other = DeploymentService(second_engine, ModelRegistry(second_engine, registry.store), sink, recorder, clock=clock)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def start(replica: DeploymentService, version: int) -> None:
        barrier.wait()
        try:
            replica.start(NAME, version, "canary", actor=f"operator-{version}")
            outcomes.append("started")
        except ConflictError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=start, args=pair) for pair in ((service, 2), (other, 3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes)[-1] == "started" and "already has an active" in sorted(outcomes)[0]
    (running,) = service.history(NAME)
    assert registry.aliases(NAME) == {PRODUCTION: 1, CHALLENGER: running.candidate_version}


def test_an_all_at_once_interrupted_before_its_flip_is_finished_by_the_controller(
    service: DeploymentService, registry: ModelRegistry, engine: Engine, clock: Clock
) -> None:
    # What start() leaves when the process dies between recording the deployment and flipping the alias.
    with engine.begin() as conn:
        conn.execute(
            insert(Deployment).values(
                name=NAME,
                strategy="all_at_once",
                baseline_version=1,
                candidate_version=3,
                steps=[1.0],
                step=0,
                share=1.0,
                bake_seconds=0.0,
                step_started_at=clock.now,
                max_error_rate_increase=0.01,
                max_latency_ratio=1.5,
                status="active",
                actor="alice",
                created_at=clock.now,
                updated_at=clock.now,
            )
        )

    finished = service.evaluate(NAME)

    assert finished is not None and finished.status == "completed"
    assert registry.aliases(NAME) == {PRODUCTION: 3}


def test_a_split_never_advances_and_ends_by_hand(
    service: DeploymentService, registry: ModelRegistry, engine: Engine, clock: Clock
) -> None:
    service.start(NAME, 2, "split", steps=[0.2], bake_seconds=1, actor="alice")
    for _ in range(3):
        healthy_traffic(engine, 2, clock.advance(1))
        split = service.evaluate(NAME, now=clock.advance(3600))
        assert split is not None and (split.status, split.share) == ("active", 0.2)

    promoted = service.promote_candidate(NAME, "bob", "the split looked good")

    assert (promoted.status, promoted.share) == ("completed", 1.0)
    assert registry.aliases(NAME) == {PRODUCTION: 2}
    assert registry.history(NAME, PRODUCTION)[-1].actor == "bob"


def test_a_split_is_rolled_back_on_a_breach_and_a_failing_shadow_is_left_running(
    service: DeploymentService, registry: ModelRegistry, engine: Engine, clock: Clock, sink: MemorySink
) -> None:
    service.start(NAME, 2, "split", steps=[0.1], actor="alice")
    log(engine, 1, 100, clock.advance(5))
    log(engine, 2, 25, clock.now, errors=5)

    rolled = service.evaluate(NAME, now=clock.advance(10))

    assert rolled is not None and (rolled.status, rolled.share) == ("rolled_back", 0.0)
    assert rolled.reason is not None and "error rate 20.0%" in rolled.reason
    assert registry.aliases(NAME) == {PRODUCTION: 1}
    assert [(a.event, a.severity) for a in sink.alerts] == [("deployment.rolled_back", "critical")]

    service.start(NAME, 3, "shadow", actor="alice")
    log(engine, 1, 100, clock.advance(5))
    log(engine, 3, 25, clock.now, errors=25, served=False)  # computed after the response, never returned

    shadow = service.evaluate(NAME, now=clock.advance(10))

    assert shadow is not None and shadow.status == "active"
    assert len(sink.alerts) == 1


def test_stopping_a_shadow_leaves_production_alone(service: DeploymentService, registry: ModelRegistry) -> None:
    shadow = service.start(NAME, 2, "shadow", actor="alice")
    assert (shadow.share, shadow.steps) == (0.0, [0.0])

    stopped = service.stop(NAME, "bob")

    assert (stopped.status, stopped.reason) == ("stopped", "stopped by bob")
    assert registry.aliases(NAME) == {PRODUCTION: 1}
    assert service.start(NAME, 2, "canary", actor="alice").status == "active"  # the slot is free again


# ------------------------------------------------------------------------------------------- judging


def test_judging_compares_rates_and_latencies_with_the_limits() -> None:
    deployment = Deployment(
        baseline_version=1, candidate_version=2, max_error_rate_increase=0.01, max_latency_ratio=1.5
    )

    def stats(requests: int, errors: int, mean: float, p99: float | None = None) -> VariantStats:
        return VariantStats(requests, errors, errors / requests, mean, p99)

    base = stats(1000, 10, 10.0, 30.0)
    assert judge(deployment, stats(100, 2, 14.0, 40.0), base).outcome == "healthy"  # +1 point, 1.4x
    assert judge(deployment, stats(100, 3, 10.0), base).outcome == "breach"  # +2 points
    assert judge(deployment, stats(100, 0, 15.1), base).outcome == "breach"
    assert judge(deployment, stats(100, 0, 10.0, 46.0), base).outcome == "breach"
    assert judge(deployment, stats(19, 19, 99.0), base).outcome == "insufficient"
    assert judge(deployment, None, base).outcome == "insufficient"
    # No baseline to compare with: errors are judged against zero, latency not at all.
    assert judge(deployment, stats(100, 0, 500.0), None).outcome == "healthy"
    assert judge(deployment, stats(100, 2, 10.0), None).outcome == "breach"


def test_judging_live_accuracy_needs_enough_actuals_on_both_sides() -> None:
    deployment = Deployment(
        baseline_version=1, candidate_version=2, max_error_rate_increase=0.01, max_latency_ratio=1.5
    )
    fine = VariantStats(100, 0, 0.0, 10.0, None)

    def row(version: int, points: int, wape: float | None) -> AccuracyRow:
        return AccuracyRow(
            NAME, version, None, None, points, 1.0, wape, None, 0.0, dt.date(2026, 3, 1), dt.date(2026, 3, 2)
        )

    def verdict(candidate: AccuracyRow | None, baseline: AccuracyRow | None) -> str:
        live = LiveAccuracyGuard(candidate, baseline, min_actuals=100, max_wape_ratio=1.25)
        return judge(deployment, fine, fine, live=live).outcome

    assert verdict(row(2, 100, 40.0), row(1, 100, 30.0)) == "breach"  # 1.33x
    assert verdict(row(2, 100, 37.0), row(1, 100, 30.0)) == "healthy"  # 1.23x
    assert verdict(row(2, 99, 90.0), row(1, 100, 30.0)) == "healthy"  # too few actuals to say
    assert verdict(row(2, 100, 90.0), None) == "healthy"
    assert verdict(row(2, 100, None), row(1, 100, 30.0)) == "healthy"  # nothing sold: no WAPE
    # The actuals judge even before the requests do.
    live = LiveAccuracyGuard(row(2, 100, 90.0), row(1, 100, 30.0), 100, 1.25)
    assert judge(deployment, None, fine, live=live).outcome == "breach"


def test_ending_a_deployment_and_moving_its_aliases_commit_together(
    service: DeploymentService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.start(NAME, 3, "canary", actor="alice")
    seen_by_others: list[str | None] = []
    flip = ModelRegistry.set_alias_in

    def observed_flip(conn: Connection, target: AliasTarget, actor: str, reason: str | None = None) -> AliasEvent:
        # Another connection sees only what has committed: the deployment must not read ended yet.
        with engine.connect() as other:
            seen_by_others.append(other.scalar(select(Deployment.status).where(Deployment.name == NAME)))
        return flip(conn, target, actor, reason)

    monkeypatch.setattr(ModelRegistry, "set_alias_in", staticmethod(observed_flip))
    done = service.promote_candidate(NAME, "bob")

    assert done.status == "completed"
    assert seen_by_others == ["active"]


@pytest.mark.parametrize("ending", ["promote", "rollback", "stop"])
def test_a_failure_while_moving_the_aliases_leaves_the_deployment_running(
    ending: str, service: DeploymentService, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.start(NAME, 3, "canary", actor="alice")
    aliases, events = registry.aliases(NAME), [event.id for event in registry.history(NAME)]

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(ModelRegistry, "set_alias_in", staticmethod(broken))
    monkeypatch.setattr(ModelRegistry, "remove_alias_in", staticmethod(broken))
    ends: dict[str, Callable[[], Deployment]] = {
        "promote": lambda: service.promote_candidate(NAME, "bob"),
        "rollback": lambda: service.rollback(NAME, "bob", "why not"),
        "stop": lambda: service.stop(NAME, "bob"),
    }
    end = ends[ending]
    with pytest.raises(RuntimeError, match="connection lost"):
        end()

    running = service.active(NAME)
    assert running is not None and (running.status, running.share, running.reason) == ("active", 0.1, None)
    assert registry.aliases(NAME) == aliases == {PRODUCTION: 1, CHALLENGER: 3}
    assert [event.id for event in registry.history(NAME)] == events
    monkeypatch.undo()
    assert end().status in {"completed", "rolled_back", "stopped"}
    assert registry.aliases(NAME) == ({PRODUCTION: 3} if ending == "promote" else {PRODUCTION: 1})


# ------------------------------------------------------------------------------------------- live accuracy


def scored(engine: Engine, registry: ModelRegistry, version: int, points: int, wape: float) -> None:
    """A live-accuracy cell of `version`: `points` actuals summing to 1000 units, off by `wape` percent."""
    row = registry.version(NAME, version)
    abs_error = 1000 * wape / 100
    with engine.begin() as conn:
        conn.execute(
            insert(LiveAccuracy).values(
                version_id=row.id,
                category="snacks",
                horizon_day=1,
                model_name=NAME,
                version=version,
                points=points,
                abs_error=abs_error,
                error=-abs_error,
                actual_abs=1000.0,
                scaled_abs_error=0.0,
                scaled_points=0,
                mae=abs_error / points,
                wape=wape,
                mase=None,
                bias=-wape,
                first_date=dt.date(2026, 3, 1),
                last_date=dt.date(2026, 3, 1),
                updated_at=START,
            )
        )


def test_a_candidate_whose_live_wape_is_much_worse_is_rolled_back_once_enough_actuals_exist(
    engine: Engine, registry: ModelRegistry, sink: MemorySink, recorder: ForecastRecorder, clock: Clock
) -> None:
    service = DeploymentService(
        engine, registry, sink, recorder, clock=clock, min_actuals=300, max_live_wape_ratio=1.25
    )
    service.start(NAME, 2, "canary", bake_seconds=600, actor="alice")
    healthy_traffic(engine, 2, clock.advance(5))
    scored(engine, registry, 1, 400, wape=30.0)
    scored(engine, registry, 2, 299, wape=60.0)  # twice as bad, one actual short of being judged

    assert service.evaluate(NAME, now=clock.advance(10)).status == "active"  # type: ignore[union-attr]
    assert service.health(service.get(1)).outcome == "healthy"

    with engine.begin() as conn:
        conn.execute(update(LiveAccuracy).where(LiveAccuracy.version == 2).values(points=300))
    rolled = service.evaluate(NAME, now=clock.advance(10))

    assert rolled is not None and rolled.status == "rolled_back"
    assert rolled.reason is not None and "live WAPE 60.0 %" in rolled.reason and "30.0 %" in rolled.reason
    assert registry.aliases(NAME) == {PRODUCTION: 1}
    assert [a.event for a in sink.alerts] == ["deployment.rolled_back"]


def test_a_candidate_within_the_live_wape_ratio_keeps_rolling_out(
    engine: Engine, registry: ModelRegistry, sink: MemorySink, recorder: ForecastRecorder, clock: Clock
) -> None:
    service = DeploymentService(engine, registry, sink, recorder, clock=clock, min_actuals=300)
    service.start(NAME, 2, "canary", bake_seconds=60, actor="alice")
    healthy_traffic(engine, 2, clock.advance(5))
    scored(engine, registry, 1, 400, wape=30.0)
    scored(engine, registry, 2, 400, wape=37.0)  # 1.23x: inside 1.25x

    advanced = service.evaluate(NAME, now=clock.advance(120))

    assert advanced is not None and (advanced.status, advanced.step) == ("active", 1)
    assert sink.alerts == []
