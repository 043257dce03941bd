"""A model's traffic plan as the dashboard's Deployments page shows it: the active deployment (who gets
what share, which step, how long the step still bakes), how the candidate and production served in the
prediction log, and how past deployments ended (their rollback reasons)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from salescast.data.database import as_utc
from salescast.data.schema import Deployment
from salescast.errors import NotFoundError
from salescast.monitoring.live_stats import VariantStats
from salescast.registry.deployments import DeploymentService, utcnow
from salescast.registry.versions import PRODUCTION, ModelRegistry

Json = dict[str, Any]
# Without an active deployment, production's health is read over this window of the prediction log.
HEALTH_WINDOW = dt.timedelta(hours=24)
HISTORY_SHOWN = 20


def _stats(stats: VariantStats | None) -> Json | None:
    if stats is None:
        return None
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "error_rate": round(stats.error_rate, 6),
        "mean_latency_ms": round(stats.mean_latency_ms, 3),
        "p99_latency_ms": None if stats.p99_latency_ms is None else round(stats.p99_latency_ms, 3),
    }


def _deployment(row: Deployment) -> Json:
    return {
        "id": row.id,
        "strategy": row.strategy,
        "status": row.status,
        "production_version": row.baseline_version,
        "candidate_version": row.candidate_version,
        "steps": list(row.steps),
        "step": row.step,
        "share": row.share,
        "bake_seconds": row.bake_seconds,
        "reason": row.reason,
        "actor": row.actor,
        "created_at": as_utc(row.created_at).isoformat(),
        "updated_at": as_utc(row.updated_at).isoformat(),
    }


def deployment_status(
    registry: ModelRegistry, deployments: DeploymentService, name: str, now: dt.datetime | None = None
) -> Json:
    """The plan of model `name` now: production, the active deployment (or null) with its bake time left
    and the controller's verdict, each variant's served requests, and the latest deployments newest first."""
    if not registry.versions(name):
        raise NotFoundError(f"no model named {name!r}")
    now = now or utcnow()
    production = registry.current(name, PRODUCTION)
    active = deployments.active(name)
    plan: Json | None = None
    if active is not None:
        verdict = deployments.health(active)
        started = as_utc(active.step_started_at)
        left = max(0.0, active.bake_seconds - (now - started).total_seconds())
        plan = {
            **_deployment(active),
            "step_started_at": started.isoformat(),
            "bake_seconds_left": round(left, 1),
            "verdict": verdict.outcome,
            "verdict_reason": verdict.reason,
        }
        candidate, baseline = _stats(verdict.candidate), _stats(verdict.baseline)
        since = started
    else:
        since = now - HEALTH_WINDOW
        versions = [production.version] if production is not None else []
        stats = deployments.stats(deployments.engine, name, since, versions)
        candidate, baseline = None, _stats(stats.get(production.version)) if production is not None else None
    history = deployments.history(name)
    return {
        "name": name,
        "production_version": production.version if production is not None else None,
        "active": plan,
        "health_since": since.isoformat(),
        "candidate": candidate,
        "production": baseline,
        "history": [_deployment(row) for row in reversed(history[-HISTORY_SHOWN:])],
    }
