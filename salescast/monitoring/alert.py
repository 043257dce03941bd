"""An alert: one thing to tell a person, as every alert sink (log, webhook, SNS, Slack, PagerDuty) takes it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from salescast.errors import ConfigurationError

Severity = Literal["info", "warning", "critical"]
Status = Literal["firing", "resolved"]


@dataclass(frozen=True)
class Alert:
    """One thing to tell a person; `event` is a dotted name such as `model.rejected`.

    `dedup_key` names an episode (say `drift/demand/beverages`): sinks that keep incidents (PagerDuty) make
    alerts with the same key one incident, and an alert with `status="resolved"` closes it. Without one,
    the event name is the key.
    """

    event: str
    severity: Severity
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    status: Status = "firing"
    dedup_key: str = ""

    def __post_init__(self) -> None:
        if self.severity not in get_args(Severity):
            raise ConfigurationError(f"alert severity must be one of {get_args(Severity)}, not {self.severity!r}")
        if self.status not in get_args(Status):
            raise ConfigurationError(f"alert status must be one of {get_args(Status)}, not {self.status!r}")

    @property
    def episode(self) -> str:
        """The key that makes repeated alerts one incident."""
        return self.dedup_key or self.event

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "severity": self.severity,
            "summary": self.summary,
            "details": self.details,
            "created_at": self.created_at.isoformat(),
            "status": self.status,
            "dedup_key": self.episode,
        }

    def to_json(self) -> str:
        # default=str: details often hold dates, paths or numpy scalars, and an alert must never fail to render.
        return json.dumps(self.to_dict(), sort_keys=True, default=str, ensure_ascii=False)
