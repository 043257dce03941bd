"""Monitoring: alert sinks (log, webhook, Slack, PagerDuty, SNS)."""

from salescast.monitoring.alerts import (
    Alert,
    AlertSink,
    LogAlertSink,
    SnsAlertSink,
    WebhookAlertSink,
    alert_sink,
)
from salescast.monitoring.pagerduty import PagerDutyAlertSink
from salescast.monitoring.slack import SlackAlertSink

__all__ = [
    "Alert",
    "AlertSink",
    "LogAlertSink",
    "PagerDutyAlertSink",
    "SlackAlertSink",
    "SnsAlertSink",
    "WebhookAlertSink",
    "alert_sink",
]
