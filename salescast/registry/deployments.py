"""Deployments: how traffic moves from a model's production version to a candidate, and the controller
that walks a rollout through its steps, rolls it back on bad health and completes it.

A deployment row is the one source of truth that every server replica reads (see
`salescast.serving.routing`). Replicas all run the controller (`evaluate`) every few seconds; every
state change is a conditional UPDATE on (id, step, status = 'active'), so whichever replica gets there
first wins and the others see zero rows changed and do nothing: no double advance, no skipped step,
one alias flip and one alert per event.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from salescast.data.database import as_utc
from salescast.data.schema import Deployment, ModelVersion
from salescast.errors import ConfigurationError, ConflictError, NotFoundError, SalescastError
from salescast.monitoring.alerts import Alert, AlertSink, Severity
from salescast.monitoring.live_accuracy import AccuracyRow, version_accuracy
from salescast.monitoring.live_stats import VariantStats, variant_stats
from salescast.monitoring.metrics import DEPLOYMENT_EVENTS
from salescast.registry.versions import CHALLENGER, PRODUCTION, AliasTarget, ModelRegistry, retry_conflicts

logger = logging.getLogger(__name__)

Strategy = Literal["all_at_once", "canary", "linear", "split", "shadow"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
ROLLOUTS = ("canary", "linear")  # the strategies whose steps advance on their own
DEFAULT_STEPS: dict[str, list[float]] = {
    "all_at_once": [1.0],
    "canary": [0.1, 1.0],
    "linear": [0.25, 0.5, 0.75, 1.0],
    "split": [0.1],
    "shadow": [0.0],
}
# Below this many served requests a rate or a mean says more about chance than about the model.
MIN_REQUESTS = 20
# Live accuracy judges a rollout once both versions have this many actuals (series-days) scored, and rolls
# back a candidate whose live WAPE is more than this factor of the baseline's (settings override both).
MIN_ACTUALS = 200
MAX_LIVE_WAPE_RATIO = 1.25

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ----------------------------------------------------------------------------------- health of variants


@dataclass(frozen=True)
class Verdict:
    """The controller's reading of a step: `breach` (roll back), `healthy`, or `insufficient` data."""

    outcome: Literal["healthy", "breach", "insufficient"]
    reason: str
    candidate: VariantStats | None
    baseline: VariantStats | None


@dataclass(frozen=True)
class LiveAccuracyGuard:
    """Live accuracy of both versions (None: no actuals scored yet) and the guardrail's limits."""

    candidate: AccuracyRow | None
    baseline: AccuracyRow | None
    min_actuals: int = MIN_ACTUALS
    max_wape_ratio: float = MAX_LIVE_WAPE_RATIO

    def breach(self, deployment: Deployment) -> str | None:
        """Why the candidate's live accuracy is a breach, or None (fine, or too few actuals to say)."""
        cand, base = self.candidate, self.baseline
        if cand is None or base is None or min(cand.points, base.points) < self.min_actuals:
            return None
        if cand.wape is None or base.wape is None or base.wape <= 0:
            return None
        if cand.wape > self.max_wape_ratio * base.wape:
            return (
                f"live WAPE {cand.wape:.1f} % (v{deployment.candidate_version}, {cand.points} actuals) vs "
                f"{base.wape:.1f} % (v{deployment.baseline_version}, {base.points} actuals): more than "
                f"{self.max_wape_ratio:g}x"
            )
        return None


def judge(
    deployment: Deployment,
    candidate: VariantStats | None,
    baseline: VariantStats | None,
    min_requests: int = MIN_REQUESTS,
    *,
    live: LiveAccuracyGuard | None = None,
) -> Verdict:
    """Compare the candidate's served requests with the baseline's against the deployment's limits, and
    (with `live`) its live accuracy with the baseline's once both have enough actuals.

    Without enough baseline requests (all traffic on the candidate, or nothing logged) the candidate's
    error rate is compared with zero and its latency is not judged: there is nothing to compare it to.
    Live accuracy breaches whatever the number of requests: the actuals, not the traffic, say it.
    """
    live_breach = live.breach(deployment) if live is not None else None
    if live_breach is not None:
        return Verdict("breach", live_breach, candidate, baseline)
    served = candidate.requests if candidate else 0
    if candidate is None or served < min_requests:
        return Verdict("insufficient", f"{served} of {min_requests} candidate requests so far", candidate, baseline)
    base = baseline if baseline is not None and baseline.requests >= min_requests else None
    base_error_rate = base.error_rate if base else 0.0
    if candidate.error_rate - base_error_rate > deployment.max_error_rate_increase:
        return Verdict(
            "breach",
            f"error rate {candidate.error_rate:.1%} (v{deployment.candidate_version}, {candidate.requests} requests) "
            f"vs {base_error_rate:.1%} (v{deployment.baseline_version}): more than "
            f"{deployment.max_error_rate_increase:.1%} higher",
            candidate,
            baseline,
        )
    if base is not None:
        limit = deployment.max_latency_ratio
        if base.mean_latency_ms > 0 and candidate.mean_latency_ms > limit * base.mean_latency_ms:
            return Verdict(
                "breach",
                f"mean latency {candidate.mean_latency_ms:.1f} ms (v{deployment.candidate_version}) vs "
                f"{base.mean_latency_ms:.1f} ms (v{deployment.baseline_version}): more than {limit:g}x",
                candidate,
                baseline,
            )
        if (
            candidate.p99_latency_ms is not None
            and base.p99_latency_ms is not None
            and base.p99_latency_ms > 0
            and candidate.p99_latency_ms > limit * base.p99_latency_ms
        ):
            return Verdict(
                "breach",
                f"p99 latency {candidate.p99_latency_ms:.1f} ms (v{deployment.candidate_version}) vs "
                f"{base.p99_latency_ms:.1f} ms (v{deployment.baseline_version}): more than {limit:g}x",
                candidate,
                baseline,
            )
    return Verdict(
        "healthy",
        f"error rate {candidate.error_rate:.1%} vs {base_error_rate:.1%}, mean latency "
        f"{candidate.mean_latency_ms:.1f} ms" + (f" vs {base.mean_latency_ms:.1f} ms" if base else ""),
        candidate,
        baseline,
    )


# ----------------------------------------------------------------------------------- the service

StatsReader = Callable[[Engine, str, dt.datetime, Sequence[int]], dict[int, VariantStats]]
AccuracyReader = Callable[[Engine, str, Sequence[int]], dict[int, AccuracyRow]]


def resolve_steps(strategy: str, steps: Sequence[float] | None) -> list[float]:
    """The candidate's share at each step: the strategy's default, or `steps` checked against it."""
    if strategy not in STRATEGIES:
        raise ConfigurationError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if steps is None:
        return list(DEFAULT_STEPS[strategy])
    chosen = [float(s) for s in steps]
    if strategy == "shadow":
        if any(s != 0.0 for s in chosen):
            raise ConfigurationError("a shadow deployment serves the candidate to nobody: it takes no --steps")
        return [0.0]
    if strategy == "all_at_once" and chosen != [1.0]:
        raise ConfigurationError("all_at_once moves all traffic at once: its only step is 1.0")
    if strategy == "split":
        if len(chosen) != 1 or not 0.0 < chosen[0] < 1.0:
            raise ConfigurationError(f"a split takes one share between 0 and 1 (exclusive), got {chosen}")
        return chosen
    if not chosen or any(not 0.0 < s <= 1.0 for s in chosen):
        raise ConfigurationError(f"each step is a share of traffic in (0, 1], got {chosen}")
    if any(b <= a for a, b in itertools.pairwise(chosen)):
        raise ConfigurationError(f"steps must increase, got {chosen}")
    if chosen[-1] != 1.0:
        raise ConfigurationError(f"a {strategy} rollout ends with all traffic on the candidate (1.0), got {chosen}")
    return chosen


class DeploymentService:
    """Starts, walks, completes and rolls back deployments; see the module docstring for the concurrency."""

    def __init__(
        self,
        engine: Engine,
        registry: ModelRegistry,
        alerts: AlertSink,
        ensure_forecasts: Callable[[ModelVersion], object],
        *,
        clock: Clock = utcnow,
        min_requests: int = MIN_REQUESTS,
        stats: StatsReader = variant_stats,
        accuracy: AccuracyReader = version_accuracy,
        min_actuals: int = MIN_ACTUALS,
        max_live_wape_ratio: float = MAX_LIVE_WAPE_RATIO,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.alerts = alerts
        self.ensure_forecasts = ensure_forecasts
        self.clock = clock
        self.min_requests = min_requests
        self.stats = stats
        self.accuracy = accuracy
        self.min_actuals = min_actuals
        self.max_live_wape_ratio = max_live_wape_ratio

    # ------------------------------------------------------------------------------- reading

    def active(self, name: str) -> Deployment | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.scalar(select(Deployment).where(Deployment.name == name, Deployment.status == "active"))

    def history(self, name: str) -> list[Deployment]:
        """Every deployment of `name`, oldest first."""
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(select(Deployment).where(Deployment.name == name).order_by(Deployment.id)))

    def get(self, deployment_id: int) -> Deployment:
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(Deployment, deployment_id)
        if row is None:
            raise NotFoundError(f"no deployment #{deployment_id}")
        return row

    def health(self, deployment: Deployment) -> Verdict:
        """The candidate's served requests since its step started against the baseline's, and both
        versions' live accuracy (see `judge`)."""
        since = as_utc(deployment.step_started_at)
        versions = [deployment.candidate_version, deployment.baseline_version]
        stats = self.stats(self.engine, deployment.name, since, versions)
        baseline = stats.get(deployment.baseline_version)
        if baseline is None or baseline.requests < self.min_requests:
            # At a share of 1.0 the baseline serves nothing in this step: compare with what it served
            # since the rollout began.
            earlier = self.stats(self.engine, deployment.name, as_utc(deployment.created_at), versions)
            baseline = earlier.get(deployment.baseline_version, baseline)
        scored = self.accuracy(self.engine, deployment.name, versions)
        live = LiveAccuracyGuard(
            scored.get(deployment.candidate_version),
            scored.get(deployment.baseline_version),
            self.min_actuals,
            self.max_live_wape_ratio,
        )
        return judge(deployment, stats.get(deployment.candidate_version), baseline, self.min_requests, live=live)

    # ------------------------------------------------------------------------------- starting

    def start(
        self,
        name: str,
        candidate_version: int,
        strategy: str,
        *,
        steps: list[float] | None = None,
        bake_seconds: float = 600,
        max_error_rate_increase: float = 0.01,
        max_latency_ratio: float = 1.5,
        actor: str,
    ) -> Deployment:
        """Begin moving traffic of `name` to `candidate_version`; all_at_once completes before returning."""
        shares = resolve_steps(strategy, steps)
        if bake_seconds < 0 or max_error_rate_increase < 0 or max_latency_ratio <= 0:
            raise ConfigurationError(
                "bake seconds and the error-rate increase must be >= 0 and the latency ratio > 0, got "
                f"{bake_seconds}, {max_error_rate_increase}, {max_latency_ratio}"
            )
        # Every check of an alias move (rejected? artifact intact?) before any work is done.
        target = self.registry.aliasable(name, candidate_version, CHALLENGER)
        candidate = target.version
        production = self.registry.current(name, PRODUCTION)
        if production is None:
            raise NotFoundError(
                f"model {name!r} has no production version to move traffic from; promote one first "
                "(salescast models promote)"
            )
        if production.version == candidate_version:
            raise ConflictError(f"{name} v{candidate_version} is production already")
        self._refuse_if_active(name)
        self.ensure_forecasts(candidate)  # the candidate must be able to serve before it gets traffic
        now = self.clock()

        def attempt() -> int:
            # The deployment and its challenger alias commit together: no replica ever reads one without
            # the other, and a crash in between leaves neither.
            try:
                with self.engine.begin() as conn:
                    deployment_id: int = conn.execute(
                        insert(Deployment)
                        .values(
                            name=name,
                            strategy=strategy,
                            baseline_version=production.version,
                            candidate_version=candidate_version,
                            steps=shares,
                            step=0,
                            share=shares[0],
                            bake_seconds=float(bake_seconds),
                            step_started_at=now,
                            max_error_rate_increase=float(max_error_rate_increase),
                            max_latency_ratio=float(max_latency_ratio),
                            status="active",
                            actor=actor,
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(Deployment.id)
                    ).scalar_one()
                    reason = f"deployment #{deployment_id} ({strategy})"
                    self.registry.set_alias_in(conn, target, actor, reason)
                    return deployment_id
            except IntegrityError:
                # Another caller started one between our check and our insert (the partial unique index
                # said no): refused. Else the alias row raced with another writer: tried again.
                self._refuse_if_active(name)
                raise

        deployment_id = retry_conflicts(attempt)
        self._count(name, "started")
        if strategy == "all_at_once":
            return self._complete(self.get(deployment_id), actor, "all at once", now)
        return self.get(deployment_id)

    def _refuse_if_active(self, name: str) -> None:
        running = self.active(name)
        if running is not None:
            raise ConflictError(
                f"model {name!r} already has an active {running.strategy} deployment #{running.id} "
                f"(v{running.baseline_version} -> v{running.candidate_version}, {running.share:.0%} on the "
                "candidate); promote, stop or roll it back first"
            )

    # ------------------------------------------------------------------------------- the controller

    def evaluate(self, name: str, now: dt.datetime | None = None) -> Deployment | None:
        """One controller step: roll back on a breach, else advance (or complete) a step that has baked
        for `bake_seconds` with enough candidate requests. A split is judged the same way but never
        advances (a person ends it); a shadow is not judged, since none of its answers reach a client.
        Returns the deployment as it is afterwards (no longer active when this step ended it), or None
        when `name` has no active deployment."""
        deployment = self.active(name)
        if deployment is None:
            return None
        now = as_utc(now or self.clock())
        if deployment.strategy == "all_at_once":
            # start() completes these at once; one still active was interrupted there: finish the job.
            return self._complete(deployment, "controller", "all at once (resumed)", now, at_step=deployment.step)
        if deployment.strategy == "shadow":
            return deployment
        verdict = self.health(deployment)
        if verdict.outcome == "breach":
            return self._roll_back(deployment, "controller", verdict.reason, now, automatic=True)
        if deployment.strategy not in ROLLOUTS:
            return deployment  # a healthy split runs until a person ends it
        baked = now - as_utc(deployment.step_started_at) >= dt.timedelta(seconds=deployment.bake_seconds)
        if not baked or verdict.outcome != "healthy":
            return deployment
        if deployment.step + 1 < len(deployment.steps):
            return self._advance(deployment, now)
        reason = f"all {len(deployment.steps)} step(s) baked; last: {verdict.reason}"
        return self._complete(deployment, "controller", reason, now, at_step=deployment.step)

    def _advance(self, deployment: Deployment, now: dt.datetime) -> Deployment:
        following = deployment.step + 1
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(Deployment)
                .where(
                    Deployment.id == deployment.id, Deployment.step == deployment.step, Deployment.status == "active"
                )
                .values(step=following, share=deployment.steps[following], step_started_at=now, updated_at=now)
            ).rowcount
        if changed:
            self._count(deployment.name, "advanced")
            logger.info(
                "deployment.advanced %s #%s step %s share %s",
                deployment.name,
                deployment.id,
                following,
                deployment.steps[following],
            )
        return self.get(deployment.id)

    # ------------------------------------------------------------------------------- ending

    def promote_candidate(self, name: str, actor: str, reason: str | None = None) -> Deployment:
        """Make the candidate production now, whatever step the deployment is at."""
        return self._complete(self._require_active(name), actor, reason or "promoted by hand", as_utc(self.clock()))

    def rollback(self, name: str, actor: str, reason: str) -> Deployment:
        """Take all traffic off the candidate now; production never moved, so it stays as it is."""
        return self._roll_back(self._require_active(name), actor, reason, as_utc(self.clock()), automatic=False)

    def stop(self, name: str, actor: str, reason: str | None = None) -> Deployment:
        """End a deployment (typically a split or a shadow) without promoting: production keeps all traffic."""
        deployment = self._require_active(name)
        now = as_utc(self.clock())
        why = reason or f"stopped by {actor}"
        if self._finish(deployment, None, "stopped", 0.0, why, now, actor, reason or "deployment stopped"):
            self._count(name, "stopped")
        return self.get(deployment.id)

    def _require_active(self, name: str) -> Deployment:
        deployment = self.active(name)
        if deployment is None:
            raise NotFoundError(f"model {name!r} has no active deployment")
        return deployment

    def _complete(
        self, deployment: Deployment, actor: str, reason: str, now: dt.datetime, *, at_step: int | None = None
    ) -> Deployment:
        target = self.registry.aliasable(deployment.name, deployment.candidate_version, PRODUCTION)
        label = f"deployment #{deployment.id} completed: {reason}"
        if self._finish(deployment, at_step, "completed", 1.0, reason, now, actor, label, promote=target):
            self._count(deployment.name, "completed")
            logger.info("deployment.completed %s #%s v%s", deployment.name, deployment.id, deployment.candidate_version)
        return self.get(deployment.id)

    def _roll_back(
        self, deployment: Deployment, actor: str, reason: str, now: dt.datetime, *, automatic: bool
    ) -> Deployment:
        step = deployment.step if automatic else None
        label = f"deployment #{deployment.id} rolled back: {reason}"
        if self._finish(deployment, step, "rolled_back", 0.0, reason, now, actor, label):
            self._count(deployment.name, "rolled_back")
            logger.warning("deployment.rolled_back %s #%s: %s", deployment.name, deployment.id, reason)
            severity: Severity = "critical" if automatic else "warning"
            self._alert(
                Alert(
                    event="deployment.rolled_back",
                    severity=severity,
                    summary=f"{deployment.name} v{deployment.candidate_version} rolled back "
                    f"({'automatically' if automatic else f'by {actor}'}): {reason}",
                    details={
                        "deployment": deployment.id,
                        "model": deployment.name,
                        "strategy": deployment.strategy,
                        "baseline_version": deployment.baseline_version,
                        "candidate_version": deployment.candidate_version,
                        "step": deployment.step,
                        "share": deployment.share,
                        "reason": reason,
                        "actor": actor,
                    },
                )
            )
        return self.get(deployment.id)

    def _finish(
        self,
        deployment: Deployment,
        step: int | None,
        status: str,
        share: float,
        reason: str,
        now: dt.datetime,
        actor: str,
        alias_reason: str,
        promote: AliasTarget | None = None,
    ) -> bool:
        """End an active deployment; True only for the one caller whose UPDATE did it. In the same
        transaction: production moves to `promote` (the candidate, when a deployment completes), and the
        challenger alias is removed while it still points at the candidate (pointed elsewhere by hand
        meanwhile, it is not ours to remove). So a crash leaves the deployment either active with its
        aliases as they were, or ended with its aliases moved, never ended with production not moved."""
        conditions: list[Any] = [Deployment.id == deployment.id, Deployment.status == "active"]
        if step is not None:
            conditions.append(Deployment.step == step)
        candidate = promote.version if promote else self.registry.version(deployment.name, deployment.candidate_version)

        def attempt() -> bool:
            with self.engine.begin() as conn:
                changed = conn.execute(
                    update(Deployment)
                    .where(*conditions)
                    .values(status=status, share=share, reason=reason, updated_at=now)
                ).rowcount
                if not changed:
                    return False
                if promote is not None:
                    self.registry.set_alias_in(conn, promote, actor, alias_reason)
                self.registry.remove_alias_in(
                    conn, deployment.name, CHALLENGER, actor, alias_reason, only_if_at=candidate.id
                )
                return True

        return retry_conflicts(attempt)

    def _alert(self, alert: Alert) -> None:
        # The rollback already happened; a sink that is down must not undo or hide it.
        try:
            self.alerts.send(alert)
        except SalescastError as exc:
            logger.error("alert %s not delivered: %s", alert.event, exc)

    @staticmethod
    def _count(name: str, event: str) -> None:
        DEPLOYMENT_EVENTS.labels(model=name, event=event).inc()
