"""Which model version answers a request: the traffic plan every request reads, and its refresh.

A request never touches the database to decide: it reads `PlanHolder.current()`, a plain attribute,
and `TrafficPlan.route` hashes its sticky key. A background task reloads the plan every few seconds
and swaps the reference in one assignment, so a version switch (blue-green) fails no request: each
request sees either the old plan or the new one, whole.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine, and_, select

from salescast.data.schema import Deployment, ModelVersion
from salescast.monitoring.metrics import MODEL_VERSION, TRAFFIC, TRAFFIC_SHARE
from salescast.registry.versions import CHALLENGER, PRODUCTION, ModelRegistry

if TYPE_CHECKING:
    from salescast.registry.deployments import DeploymentService

Routed = Literal["production", "challenger"]
logger = logging.getLogger(__name__)

_BUCKETS = float(2**64)


@dataclass(frozen=True)
class ServedVersion:
    id: int  # model_versions.id, the key of its stored forecasts
    version: int


def bucket(deployment_id: int | None, sticky_key: str) -> float:
    """A stable position in [0, 1) for a key within one deployment: the same on every replica and every
    restart (unlike `hash()`), and independent across deployments so that the same keys are not always
    the first to try a new candidate."""
    digest = hashlib.blake2b(f"{deployment_id}:{sticky_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _BUCKETS


@dataclass(frozen=True)
class TrafficPlan:
    """Production, and the candidate of the active deployment with its share of traffic (if any)."""

    model: str
    production: ServedVersion
    candidate: ServedVersion | None = None
    share: float = 0.0
    shadow: bool = False
    deployment_id: int | None = None
    strategy: str | None = None

    def route(self, sticky_key: str) -> tuple[ServedVersion, Routed]:
        """The version that serves `sticky_key` and its variant name (`production` or `challenger`).

        The challenger gets the keys whose bucket is below the share: as the share grows, keys only
        move from production to the challenger, never back, so a user does not flip between versions.
        Counted in the TRAFFIC metric (one labelled counter increment).
        """
        served: ServedVersion = self.production
        variant: Routed = "production"
        if self.candidate is not None and not self.shadow and bucket(self.deployment_id, sticky_key) < self.share:
            served, variant = self.candidate, "challenger"
        _traffic(self.model, variant).inc()
        return served, variant

    def count_shadow(self) -> None:
        """Count a shadow computation in the TRAFFIC metric (variant `shadow`): the candidate computes every
        request production serves, though none of its answers is returned."""
        _traffic(self.model, "shadow").inc()

    @property
    def shadow_version(self) -> ServedVersion | None:
        """The candidate to compute on the side and log, never to return (shadow deployments only)."""
        return self.candidate if self.shadow else None


@functools.cache
def _traffic(model: str, variant: str) -> Any:
    # Bound once per model and variant: labels() on every request is a measurable share of a cached answer.
    return TRAFFIC.labels(model=model, variant=variant)


def load_plan(engine: Engine, registry: ModelRegistry, name: str) -> TrafficPlan | None:
    """The plan as the database has it now (None when `name` has no production version): the production
    alias, then the active deployment joined to its candidate's row."""
    production = registry.current(name, PRODUCTION)
    if production is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(Deployment.id, Deployment.strategy, Deployment.share, ModelVersion.id, ModelVersion.version)
            .join(
                ModelVersion,
                and_(ModelVersion.name == Deployment.name, ModelVersion.version == Deployment.candidate_version),
            )
            .where(Deployment.name == name, Deployment.status == "active")
        ).first()
    plan = TrafficPlan(model=name, production=ServedVersion(production.id, production.version))
    if row is None:
        return plan
    deployment_id, strategy, share, candidate_id, candidate_version = row
    if candidate_version == production.version:
        return plan  # promoted by hand while the deployment ran: nothing else to send traffic to
    return TrafficPlan(
        model=name,
        production=plan.production,
        candidate=ServedVersion(candidate_id, candidate_version),
        share=0.0 if strategy == "shadow" else float(share),
        shadow=strategy == "shadow",
        deployment_id=deployment_id,
        strategy=strategy,
    )


class PlanHolder:
    """The current traffic plan of one model, reloaded in the background; reading it is free."""

    def __init__(
        self,
        engine: Engine,
        registry: ModelRegistry,
        name: str,
        deployments: DeploymentService | None = None,
        plan: TrafficPlan | None = None,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.name = name
        self.deployments = deployments
        self._plan = plan

    def current(self) -> TrafficPlan | None:
        return self._plan

    def refresh(self) -> TrafficPlan | None:
        """Run one controller step (when a DeploymentService was given), then reload the plan. Any error
        is logged and the last good plan stays: serving on a plan a few seconds old beats not serving."""
        if self.deployments is not None:
            try:
                self.deployments.evaluate(self.name)
            except Exception:
                logger.exception("deployment.evaluate_failed %s", self.name)
        try:
            plan = load_plan(self.engine, self.registry, self.name)
        except Exception:
            logger.exception("routing.refresh_failed %s: keeping the last plan", self.name)
            return self._plan
        if plan != self._plan:
            _publish(self.name, plan)
            self._plan = plan  # one reference swap: requests see the old plan or the new, never a mix
        return plan

    async def refresh_forever(self, interval: float) -> None:
        """Refresh every `interval` seconds until cancelled; the database calls run in a worker thread
        so that the event loop keeps answering requests meanwhile."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # refresh catches its own; this is the last line that keeps the loop alive
                logger.exception("routing.refresh_failed %s", self.name)
            await asyncio.sleep(interval)


def _publish(name: str, plan: TrafficPlan | None) -> None:
    """The versions this replica now serves, as the MODEL_VERSION gauge (0 = none)."""
    MODEL_VERSION.labels(model=name, alias=PRODUCTION).set(plan.production.version if plan else 0)
    candidate = plan.candidate if plan else None
    MODEL_VERSION.labels(model=name, alias=CHALLENGER).set(candidate.version if candidate else 0)
    # A shadow's share is 0: it computes every request, but serves none.
    share = plan.share if plan is not None and candidate is not None else 0.0
    TRAFFIC_SHARE.labels(model=name, variant="challenger").set(share)
    TRAFFIC_SHARE.labels(model=name, variant="production").set(1.0 - share if plan is not None else 0.0)
