"""PagerDuty Events API v2: an alert triggers an incident, and a resolved alert with the same dedup key
resolves it (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/)."""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING, Any

from salescast.errors import ConfigurationError
from salescast.monitoring.http_delivery import RetryPolicy, post_json

if TYPE_CHECKING:
    from salescast.monitoring.alert import Alert

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_SUMMARY_MAX = 1024  # PagerDuty truncates beyond; cut ourselves so the end says so
_DEDUP_KEY_MAX = 255


class PagerDutyAlertSink:
    """Sends `pagerduty_event(alert)` to the events endpoint (PagerDuty answers 202 when it took it)."""

    def __init__(
        self,
        routing_key: str,
        events_url: str = PAGERDUTY_EVENTS_URL,
        policy: RetryPolicy | None = None,
        source: str | None = None,
    ) -> None:
        if not routing_key.strip():
            raise ConfigurationError("a PagerDuty routing key is required")
        self.routing_key = routing_key
        self.events_url = events_url
        self.policy = policy or RetryPolicy()
        # PagerDuty shows the source as "where it happened": this host (a container's id in compose).
        self.source = source or socket.gethostname()

    def send(self, alert: Alert) -> None:
        event = pagerduty_event(alert, self.routing_key, self.source)
        post_json(self.events_url, event, self.policy, "PagerDuty", alert.event)

    def __repr__(self) -> str:  # never the routing key
        return f"PagerDutyAlertSink(events_url={self.events_url!r})"


def pagerduty_event(alert: Alert, routing_key: str, source: str) -> dict[str, Any]:
    """A trigger event for a firing alert, a resolve event (key only, as PagerDuty wants) for a resolved one."""
    dedup_key = alert.episode[:_DEDUP_KEY_MAX]
    if alert.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    summary = f"[{alert.event}] {alert.summary}"
    if len(summary) > _SUMMARY_MAX:
        summary = summary[: _SUMMARY_MAX - 1] + "…"
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "salescast",
        "payload": {
            "summary": summary,
            "source": source,
            "severity": alert.severity,  # salescast's three levels are PagerDuty's names too
            "timestamp": alert.created_at.isoformat(),
            "class": alert.event,
            # Through JSON with default=str, as the other sinks: dates, paths and numpy scalars become text.
            "custom_details": json.loads(json.dumps(alert.details, default=str)),
        },
    }
