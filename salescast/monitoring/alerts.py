"""Alert sinks: where salescast says that something needs a person (a model rejected, drift, a failed job).

`alert_sink` is the one place that maps a URL scheme to a sink: `log://` (the embedded default),
`http(s)://` webhooks, Slack incoming webhooks, PagerDuty Events API v2 and `sns://arn:aws:sns:…` topics.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from salescast.config import Settings
from salescast.errors import AlertDeliveryError, ConfigurationError
from salescast.monitoring.alert import Alert, Severity, Status
from salescast.monitoring.http_delivery import RetryPolicy, post_json, redact
from salescast.monitoring.pagerduty import PagerDutyAlertSink
from salescast.monitoring.slack import SlackAlertSink, is_slack_webhook

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient

_LOG_LEVELS: dict[str, int] = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_SNS_ARN = re.compile(r"arn:aws[a-z-]*:sns:(?P<region>[a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}")
_SNS_SUBJECT_MAX = 100


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None:
        """Deliver `alert` or raise `AlertDeliveryError`."""
        ...


class LogAlertSink:
    """Writes each alert as one JSON line to the `salescast.alerts` logger, at the alert's severity."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("salescast.alerts")

    def send(self, alert: Alert) -> None:
        self.logger.log(_LOG_LEVELS[alert.severity], alert.to_json())


class WebhookAlertSink:
    """POSTs the alert as JSON, retrying connection errors, 429 and 5xx (see `http_delivery`)."""

    def __init__(
        self,
        url: str,
        retries: int = 3,
        backoff_seconds: float = 1.0,
        timeout: float = 5.0,
        max_delay_seconds: float = 60.0,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigurationError(f"a webhook URL must be http:// or https://, not {redact(url)!r}")
        self.url = url
        self.policy = RetryPolicy(retries, backoff_seconds, timeout, max_delay_seconds)

    @property
    def retries(self) -> int:
        return self.policy.retries

    @property
    def backoff_seconds(self) -> float:
        return self.policy.backoff_seconds

    @property
    def timeout(self) -> float:
        return self.policy.timeout

    def send(self, alert: Alert) -> None:
        post_json(self.url, alert.to_json().encode("utf-8"), self.policy, "webhook", alert.event)


class SnsAlertSink:
    """Publishes to an SNS topic: the subject is the severity, event and summary, the message the alert's
    JSON, and `severity` and `event` travel as message attributes so subscriptions can filter on them."""

    def __init__(self, topic_arn: str, client: SNSClient) -> None:
        self.topic_arn = topic_arn
        self.client = client

    def send(self, alert: Alert) -> None:
        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Subject=sns_subject(alert),
                Message=alert.to_json(),
                MessageAttributes={
                    "severity": {"DataType": "String", "StringValue": alert.severity},
                    "event": {"DataType": "String", "StringValue": alert.event or "-"},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise AlertDeliveryError(f"SNS topic {self.topic_arn} did not take alert {alert.event}: {exc}") from exc


def sns_subject(alert: Alert) -> str:
    """A subject SNS accepts: printable ASCII on one line, at most 100 characters."""
    text = f"[{alert.severity.upper()}] {alert.event}: {alert.summary}"
    printable = "".join(char if " " <= char <= "~" else " " if not char.isprintable() else "?" for char in text)
    subject = " ".join(printable.split())
    if len(subject) > _SNS_SUBJECT_MAX:
        subject = subject[: _SNS_SUBJECT_MAX - 3].rstrip() + "..."
    return subject


def alert_sink(url: str, settings: Settings) -> AlertSink:
    """The sink a URL names (the one place that reads the scheme):

    - empty or `log://`: the `salescast.alerts` logger;
    - `slack+https://…` (or `slack+http://…`), and any `https://hooks.slack.com/…`: a Slack incoming webhook;
      the prefix names a Slack-compatible receiver that is not on hooks.slack.com;
    - `http(s)://…`: a JSON webhook;
    - `pagerduty://ROUTING_KEY`, or `pagerduty://` with `pagerduty_routing_key` set: PagerDuty Events API v2
      at `pagerduty_events_url`;
    - `sns://arn:aws:sns:REGION:ACCOUNT:TOPIC`: an SNS topic.
    """
    if url in ("", "log://"):
        return LogAlertSink()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    policy = RetryPolicy(settings.alert_retries, settings.alert_backoff_seconds, settings.alert_timeout_seconds)
    if scheme in ("slack+http", "slack+https"):
        return SlackAlertSink(url.split("+", 1)[1], policy)
    if scheme in ("http", "https"):
        if is_slack_webhook(url):
            return SlackAlertSink(url, policy)
        return WebhookAlertSink(url, policy.retries, policy.backoff_seconds, policy.timeout)
    if scheme == "pagerduty":
        configured = settings.pagerduty_routing_key.get_secret_value() if settings.pagerduty_routing_key else ""
        routing_key = url.split("://", 1)[1] or configured
        if not routing_key:
            raise ConfigurationError(
                "pagerduty:// needs a routing key: pagerduty://ROUTING_KEY or SALESCAST_PAGERDUTY_ROUTING_KEY"
            )
        return PagerDutyAlertSink(routing_key, settings.pagerduty_events_url, policy)
    if scheme == "sns":
        arn = url.split("://", 1)[1]
        match = _SNS_ARN.fullmatch(arn)
        if match is None:
            raise ConfigurationError(
                f"{url!r} is not sns://arn:aws:sns:REGION:ACCOUNT:TOPIC (FIFO topics are not supported)"
            )
        # The topic's own region, not a default one: SNS only accepts publishes in the topic's region.
        client = boto3.client("sns", region_name=match["region"], endpoint_url=settings.sns_endpoint_url)
        return SnsAlertSink(arn, client)
    shown = f"{scheme}://…" if scheme else url
    raise ConfigurationError(
        f"unsupported alert URL {shown!r}: use log://, http(s)://…, slack+https://…, pagerduty://… or sns://arn:aws:sns:…"
    )


# Alert, Severity and Status live in monitoring/alert (the sinks' modules import them without importing
# this chooser); callers keep importing them from here with the sinks.
__all__ = [
    "Alert",
    "AlertSink",
    "LogAlertSink",
    "Severity",
    "SnsAlertSink",
    "Status",
    "WebhookAlertSink",
    "alert_sink",
    "sns_subject",
]
