"""Routing: sticky, monotone splits by a stable hash; the plan follows aliases and deployments; a failed
refresh keeps serving the last good plan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine

from salescast.data.database import make_engine, migrate
from salescast.monitoring.alerts import LogAlertSink
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.deployments import DeploymentService
from salescast.registry.versions import PRODUCTION, ModelRegistry
from salescast.serving.routing import PlanHolder, ServedVersion, TrafficPlan, bucket, load_plan
from tests.registry.test_deployments import NAME, Clock, ForecastRecorder, healthy_traffic
from tests.registry.test_versions import candidate, model_folder

KEYS = [f"key-{i}" for i in range(2000)]
PRODUCTION_V1 = ServedVersion(id=11, version=1)
CANDIDATE_V2 = ServedVersion(id=12, version=2)


def split(share: float, deployment_id: int = 7) -> TrafficPlan:
    return TrafficPlan(NAME, PRODUCTION_V1, CANDIDATE_V2, share, False, deployment_id, "split")


def challenger_keys(plan: TrafficPlan) -> set[str]:
    return {key for key in KEYS if plan.route(key)[1] == "challenger"}


# ------------------------------------------------------------------------------------------- route()


def test_a_90_10_split_sends_a_tenth_of_keys_to_the_challenger() -> None:
    plan = split(0.1)
    chosen = challenger_keys(plan)

    tolerance = 3 * math.sqrt(0.1 * 0.9 / len(KEYS))  # three binomial standard deviations, about 2 points
    assert abs(len(chosen) / len(KEYS) - 0.1) <= tolerance
    assert all(plan.route(key) == (CANDIDATE_V2, "challenger") for key in chosen)
    assert all(plan.route(key) == (PRODUCTION_V1, "production") for key in set(KEYS) - chosen)


def test_a_key_always_routes_the_same_way_on_every_replica() -> None:
    # Another replica builds its own plan object for the same deployment: the answer must not change.
    assert challenger_keys(split(0.1)) == challenger_keys(split(0.1))
    assert [split(0.5).route("user-42") for _ in range(20)] == [split(0.5).route("user-42")] * 20
    assert 0.0 <= bucket(7, "user-42") < 1.0 and bucket(7, "user-42") == bucket(7, "user-42")


def test_keys_on_the_challenger_stay_there_as_its_share_grows() -> None:
    at_10, at_50, at_100 = challenger_keys(split(0.1)), challenger_keys(split(0.5)), challenger_keys(split(1.0))

    assert at_10 < at_50 < at_100 == set(KEYS)
    assert challenger_keys(split(0.0)) == set()


def test_another_deployment_draws_other_keys() -> None:
    first, second = challenger_keys(split(0.1, deployment_id=1)), challenger_keys(split(0.1, deployment_id=2))

    assert len(first & second) < len(first) / 2  # independent draws overlap by about a tenth


def test_a_shadow_never_serves_the_candidate_but_names_it() -> None:
    shadow = TrafficPlan(NAME, PRODUCTION_V1, CANDIDATE_V2, 0.0, True, 3, "shadow")

    assert {shadow.route(key) for key in KEYS} == {(PRODUCTION_V1, "production")}
    assert shadow.shadow_version == CANDIDATE_V2
    assert split(0.1).shadow_version is None


def test_routing_counts_each_variant() -> None:
    def counted(variant: str) -> float:
        sample = REGISTRY.get_sample_value("salescast_traffic_assignments_total", {"model": NAME, "variant": variant})
        return sample or 0.0

    before = counted("production"), counted("challenger")
    chosen = len(challenger_keys(split(0.1)))

    assert (counted("production"), counted("challenger")) == (
        before[0] + len(KEYS) - chosen,
        before[1] + chosen,
    )


# ------------------------------------------------------------------------------------------- the plan


@pytest.fixture
def registry(engine: Engine, tmp_path: Path) -> ModelRegistry:
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    for content in "abc":
        registry.register(candidate(NAME), model_folder(tmp_path, content))
    return registry


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(engine: Engine, registry: ModelRegistry, clock: Clock) -> DeploymentService:
    return DeploymentService(engine, registry, LogAlertSink(), ForecastRecorder(), clock=clock)


def served(registry: ModelRegistry, version: int) -> ServedVersion:
    return ServedVersion(registry.version(NAME, version).id, version)


def test_the_plan_follows_the_aliases_and_the_active_deployment(
    engine: Engine, registry: ModelRegistry, service: DeploymentService
) -> None:
    assert load_plan(engine, registry, NAME) is None  # nothing to serve yet

    registry.set_alias(NAME, PRODUCTION, 1, actor="test")
    assert load_plan(engine, registry, NAME) == TrafficPlan(NAME, served(registry, 1))

    canary = service.start(NAME, 2, "canary", actor="alice")
    assert load_plan(engine, registry, NAME) == TrafficPlan(
        NAME, served(registry, 1), served(registry, 2), 0.1, False, canary.id, "canary"
    )

    service.rollback(NAME, "alice", "changed my mind")
    assert load_plan(engine, registry, NAME) == TrafficPlan(NAME, served(registry, 1))

    shadow = service.start(NAME, 3, "shadow", actor="alice")
    plan = load_plan(engine, registry, NAME)
    assert plan is not None and (plan.shadow, plan.share, plan.deployment_id) == (True, 0.0, shadow.id)
    assert plan.shadow_version == served(registry, 3)


def test_the_holder_swaps_in_each_new_plan_and_publishes_the_versions(
    engine: Engine, registry: ModelRegistry, service: DeploymentService, clock: Clock
) -> None:
    registry.set_alias(NAME, PRODUCTION, 1, actor="test")
    holder = PlanHolder(engine, registry, NAME, deployments=service)
    assert holder.current() is None

    first = holder.refresh()
    assert holder.current() is first and first == TrafficPlan(NAME, served(registry, 1))

    service.start(NAME, 2, "canary", bake_seconds=60, actor="alice")
    healthy_traffic(engine, 2, clock.advance(1))
    clock.advance(60)
    # The holder runs the controller before reloading: the baked canary step advances to 100 %.
    plan = holder.refresh()

    assert plan is not None and plan.candidate == served(registry, 2) and plan.share == 1.0
    assert holder.current() is plan
    assert _gauge("production") == 1 and _gauge("challenger") == 2


def _gauge(alias: str) -> float | None:
    return REGISTRY.get_sample_value("salescast_model_version_served", {"model": NAME, "alias": alias})


def test_a_failed_refresh_keeps_the_last_good_plan(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = tmp_path / "serving.db"
    engine = make_engine(f"sqlite:///{database}")
    migrate(engine)
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    registry.register(candidate(NAME), model_folder(tmp_path, "a"))
    registry.set_alias(NAME, PRODUCTION, 1, actor="test")
    service = DeploymentService(engine, registry, LogAlertSink(), ForecastRecorder())
    holder = PlanHolder(engine, registry, NAME, deployments=service)
    good = holder.refresh()
    assert good is not None

    # The database goes away under the server: every query now fails (no such table).
    engine.dispose()
    for path in tmp_path.glob("serving.db*"):
        path.unlink()

    with caplog.at_level(logging.ERROR, logger="salescast.serving.routing"):
        assert holder.refresh() is good
    assert holder.current() is good
    assert "routing.refresh_failed" in caplog.text and "no such table" in caplog.text
    engine.dispose()


def test_refreshing_forever_loads_the_plan_in_the_background(
    engine: Engine, registry: ModelRegistry, service: DeploymentService
) -> None:
    registry.set_alias(NAME, PRODUCTION, 1, actor="test")
    holder = PlanHolder(engine, registry, NAME, deployments=service)

    async def serve_until_loaded() -> TrafficPlan | None:
        task = asyncio.create_task(holder.refresh_forever(0.01))
        try:
            for _ in range(1000):
                if holder.current() is not None:
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return holder.current()

    assert asyncio.run(serve_until_loaded()) == TrafficPlan(NAME, served(registry, 1))
