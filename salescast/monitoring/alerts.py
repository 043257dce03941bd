"""Alert sinks: where salescast says that something needs a person (a model rejected, drift, a failed job).

`alert_sink` is the one place that maps a URL scheme to a sink: `log://` (the embedded default),
`http(s)://` webhooks, `sns://arn:aws:sns:…` topics.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args
from urllib.parse import urlsplit

import boto3
import httpx
from botocore.exceptions import BotoCoreError, ClientError

from salescast.config import Settings
from salescast.errors import AlertDeliveryError, ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient

Severity = Literal["info", "warning", "critical"]

_LOG_LEVELS: dict[str, int] = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_SNS_ARN = re.compile(r"arn:aws[a-z-]*:sns:(?P<region>[a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}")
_SNS_SUBJECT_MAX = 100


@dataclass(frozen=True)
class Alert:
    """One thing to tell a person; `event` is a dotted name such as `model.rejected`."""

    event: str
    severity: Severity
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __post_init__(self) -> None:
        if self.severity not in get_args(Severity):
            raise ConfigurationError(f"alert severity must be one of {get_args(Severity)}, not {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "severity": self.severity,
            "summary": self.summary,
            "details": self.details,
            "created_at": self.created_at.isoformat(),
        }

    def to_json(self) -> str:
        # default=str: details often hold dates, paths or numpy scalars, and an alert must never fail to render.
        return json.dumps(self.to_dict(), sort_keys=True, default=str, ensure_ascii=False)


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
    """POSTs the alert as JSON. Connection errors, 429 and 5xx are retried `retries` times (so at most
    `retries + 1` attempts) after `backoff_seconds`, doubling each time, or after the server's
    `Retry-After`; both are capped at `max_delay_seconds`. Any other non-2xx answer fails at once:
    repeating a request the receiver rejected would only repeat the rejection."""

    def __init__(
        self,
        url: str,
        retries: int = 3,
        backoff_seconds: float = 1.0,
        timeout: float = 5.0,
        max_delay_seconds: float = 60.0,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigurationError(f"a webhook URL must be http:// or https://, not {_redact(url)!r}")
        if retries < 0 or backoff_seconds < 0 or timeout <= 0:
            raise ConfigurationError("webhook retries and backoff must be >= 0 and the timeout > 0")
        self.url = url
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.timeout = timeout
        self.max_delay_seconds = max_delay_seconds

    def send(self, alert: Alert) -> None:
        body = alert.to_json().encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "salescast-alerts"}
        target = _redact(self.url)
        failure = ""
        with httpx.Client(timeout=self.timeout) as client:
            for attempt in range(self.retries + 1):
                retry_after: float | None = None
                try:
                    response = client.post(self.url, content=body, headers=headers)
                except httpx.TransportError as exc:
                    failure = f"{type(exc).__name__}: {exc}"
                else:
                    if response.is_success:
                        return
                    failure = f"HTTP {response.status_code}"
                    if not _is_retryable(response.status_code):
                        raise AlertDeliveryError(f"webhook {target} refused alert {alert.event}: {failure}")
                    retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                if attempt < self.retries:
                    delay = retry_after if retry_after is not None else self.backoff_seconds * 2**attempt
                    time.sleep(min(delay, self.max_delay_seconds))
        raise AlertDeliveryError(
            f"webhook {target} did not take alert {alert.event} after {self.retries + 1} attempts: {failure}"
        )


def _is_retryable(status: int) -> bool:
    # 501 says the server will never handle this request; the rest of 5xx and 429 are about right now.
    return status == 429 or (500 <= status < 600 and status != 501)


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _redact(url: str) -> str:
    """scheme://host[:port] only: webhook paths and queries often carry the secret token."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


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
    """The sink a URL names: empty or `log://`, `http(s)://…`, or `sns://arn:aws:sns:REGION:ACCOUNT:TOPIC`."""
    if url in ("", "log://"):
        return LogAlertSink()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("http", "https"):
        return WebhookAlertSink(
            url,
            retries=settings.alert_retries,
            backoff_seconds=settings.alert_backoff_seconds,
            timeout=settings.alert_timeout_seconds,
        )
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
    raise ConfigurationError(f"unsupported alert URL {shown!r}: use log://, http(s)://… or sns://arn:aws:sns:…")
