"""Alert episodes: a monitored condition alerts when it starts being breached and when it is back under its
threshold, never on the checks in between, whichever process (worker, CLI) checks.

Each condition has one row keyed by the alerts' dedup key. A transition is one conditional UPDATE (or the
INSERT of a first breach), so of two checkers that see the same breach at once, only the one whose write
changed the row sends the alert.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import IntegrityError

from salescast.data.schema import MonitorEpisode
from salescast.errors import SalescastError
from salescast.monitoring.alert import Alert, Severity
from salescast.monitoring.alerts import AlertSink

log = logging.getLogger(__name__)

Transition = Literal["started", "ongoing", "resolved", "quiet"]


@dataclass(frozen=True)
class Condition:
    """One check's reading: `key` names the condition (and is the alerts' dedup key)."""

    key: str
    event: str  # the alert's event name, e.g. drift.detected
    breached: bool
    value: float | None
    threshold: float | None
    summary: str
    severity: Severity = "warning"
    details: dict[str, Any] = field(default_factory=dict)


class Episodes:
    """Turns readings of conditions into alerts, once per episode (see the module docstring)."""

    def __init__(
        self, engine: Engine, alerts: AlertSink, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    ) -> None:
        self.engine = engine
        self.alerts = alerts
        self.clock = clock

    def observe(self, condition: Condition) -> Transition:
        """Record `condition`'s reading; alert when it starts firing or resolves. Returns what happened."""
        now = self.clock()
        values = {"value": condition.value, "threshold": condition.threshold, "summary": condition.summary[:2000]}
        ep = MonitorEpisode
        with self.engine.begin() as conn:
            if condition.breached:
                started = conn.execute(
                    update(ep)
                    .where(ep.key == condition.key, ep.status == "resolved")
                    .values(status="firing", started_at=now, updated_at=now, resolved_at=None, **values)
                ).rowcount
                if not started:
                    ongoing = conn.execute(
                        update(ep)
                        .where(ep.key == condition.key, ep.status == "firing")
                        .values(updated_at=now, **values)
                    ).rowcount
                    if ongoing:
                        return "ongoing"
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                insert(ep).values(
                                    key=condition.key, status="firing", started_at=now, updated_at=now, **values
                                )
                            )
                    except IntegrityError:
                        return "ongoing"  # another checker recorded the start (and alerts for it)
                transition: Transition = "started"
            else:
                resolved = conn.execute(
                    update(ep)
                    .where(ep.key == condition.key, ep.status == "firing")
                    .values(status="resolved", updated_at=now, resolved_at=now, **values)
                ).rowcount
                if not resolved:
                    return "quiet"
                transition = "resolved"
        self._send(condition, transition)
        return transition

    def _send(self, condition: Condition, transition: Transition) -> None:
        status: Literal["firing", "resolved"] = "firing" if transition == "started" else "resolved"
        summary = condition.summary if status == "firing" else f"resolved: {condition.summary}"
        alert = Alert(
            event=condition.event,
            severity=condition.severity,
            summary=summary,
            details={**condition.details, "value": condition.value, "threshold": condition.threshold},
            status=status,
            dedup_key=condition.key,
        )
        # The transition is recorded: a sink that is down must not stop the other checks (it is logged).
        try:
            self.alerts.send(alert)
        except SalescastError as exc:
            log.error("alert %s (%s) not delivered: %s", condition.key, status, exc)
