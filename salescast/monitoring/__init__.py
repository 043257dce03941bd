"""Monitoring: alert sinks (log, webhook, SNS)."""

from salescast.monitoring.alerts import (
    Alert,
    AlertSink,
    LogAlertSink,
    SnsAlertSink,
    WebhookAlertSink,
    alert_sink,
)

__all__ = ["Alert", "AlertSink", "LogAlertSink", "SnsAlertSink", "WebhookAlertSink", "alert_sink"]
