"""Alert sinks against real peers: an HTTP receiver on 127.0.0.1, SNS and SQS on moto's server, logging."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from salescast.config import Settings
from salescast.errors import AlertDeliveryError, ConfigurationError
from salescast.monitoring.alerts import (
    Alert,
    LogAlertSink,
    SnsAlertSink,
    WebhookAlertSink,
    alert_sink,
    sns_subject,
)
from tests.conftest import free_port
from tests.monitoring.conftest import Receiver
from tests.registry.conftest import REGION, reset_moto, running_moto_server

ALERT = Alert(
    event="model.rejected",
    severity="warning",
    summary="demand v4 is worse than production on WAPE",
    details={"model": "demand", "version": 4, "wape": 0.31, "baseline_wape": 0.27},
    created_at=dt.datetime(2026, 3, 1, 6, 30, tzinfo=dt.UTC),
)


def webhook(url: str, retries: int = 3) -> WebhookAlertSink:
    return WebhookAlertSink(url, retries=retries, backoff_seconds=0.01, timeout=2.0)


# -- webhook ------------------------------------------------------------------------------------------------


def test_webhook_posts_the_alert_as_json(receiver: Receiver) -> None:
    webhook(receiver.url).send(ALERT)

    [(headers, body)] = receiver.received
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "event": "model.rejected",
        "severity": "warning",
        "summary": "demand v4 is worse than production on WAPE",
        "details": {"model": "demand", "version": 4, "wape": 0.31, "baseline_wape": 0.27},
        "created_at": "2026-03-01T06:30:00+00:00",
        "status": "firing",
        "dedup_key": "model.rejected",
    }


def test_webhook_retries_server_errors_until_delivered(receiver: Receiver) -> None:
    receiver.answer(503, 503, 200)

    webhook(receiver.url, retries=3).send(ALERT)

    assert len(receiver.received) == 3
    assert all(json.loads(body)["event"] == "model.rejected" for _, body in receiver.received)


def test_webhook_gives_up_after_the_configured_retries(receiver: Receiver) -> None:
    receiver.answer(500)

    with pytest.raises(AlertDeliveryError, match="after 3 attempts: HTTP 500") as raised:
        webhook(receiver.url, retries=2).send(ALERT)

    assert len(receiver.received) == 3
    assert "secret-token" not in str(raised.value)


def test_webhook_client_errors_fail_at_once(receiver: Receiver) -> None:
    receiver.answer(400)

    with pytest.raises(AlertDeliveryError, match="HTTP 400"):
        webhook(receiver.url, retries=3).send(ALERT)

    assert len(receiver.received) == 1


def test_webhook_honours_retry_after(receiver: Receiver) -> None:
    receiver.answer((429, {"Retry-After": "1"}), 200)

    webhook(receiver.url, retries=1).send(ALERT)

    assert len(receiver.received) == 2
    assert receiver.times[1] - receiver.times[0] >= 0.9


def test_webhook_retries_connection_errors_then_fails() -> None:
    sink = webhook(f"http://127.0.0.1:{free_port()}/hook", retries=2)

    with pytest.raises(AlertDeliveryError, match="after 3 attempts: ConnectError"):
        sink.send(ALERT)


# -- log ----------------------------------------------------------------------------------------------------


def test_log_sink_writes_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="salescast.alerts")

    LogAlertSink().send(ALERT)

    [record] = caplog.records
    assert record.name == "salescast.alerts"
    assert record.levelno == logging.WARNING
    assert "\n" not in record.getMessage()
    assert json.loads(record.getMessage()) == ALERT.to_dict()


# -- SNS ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with running_moto_server() as endpoint:
        yield endpoint


def test_sns_sink_publishes_to_subscribed_queues(moto_endpoint: str, tmp_path: Path) -> None:
    reset_moto(moto_endpoint)
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    topic_arn = sns.create_topic(Name="salescast-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="on-call")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    settings = Settings(_env_file=None, home=tmp_path, sns_endpoint_url=moto_endpoint)

    sink = alert_sink(f"sns://{topic_arn}", settings)
    sink.send(ALERT)

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    [message] = messages
    envelope = json.loads(message["Body"])
    assert envelope["TopicArn"] == topic_arn
    assert envelope["Subject"] == "[WARNING] model.rejected: demand v4 is worse than production on WAPE"
    assert json.loads(envelope["Message"]) == ALERT.to_dict()
    assert envelope["MessageAttributes"]["severity"]["Value"] == "warning"


def test_sns_sink_reports_a_missing_topic(moto_endpoint: str) -> None:
    reset_moto(moto_endpoint)
    client = boto3.client("sns", endpoint_url=moto_endpoint, region_name=REGION)
    sink = SnsAlertSink("arn:aws:sns:us-east-1:123456789012:nobody-home", client)

    with pytest.raises(AlertDeliveryError, match="nobody-home"):
        sink.send(ALERT)


def test_sns_subject_is_one_short_ascii_line() -> None:
    alert = Alert(event="drift.detected", severity="critical", summary="Größe\nchanged " + "x" * 200)

    subject = sns_subject(alert)

    assert len(subject) <= 100
    assert subject.startswith("[CRITICAL] drift.detected: Gr??e changed xxx")
    assert subject.isascii() and "\n" not in subject


# -- the chooser and the alert ------------------------------------------------------------------------------


def test_chooser_maps_schemes_to_sinks() -> None:
    settings = Settings(_env_file=None, alert_retries=5, alert_backoff_seconds=0.5, alert_timeout_seconds=3)

    hook = alert_sink("https://hooks.example.com/T000/B000", settings)

    assert isinstance(alert_sink("log://", settings), LogAlertSink)
    assert isinstance(alert_sink("", settings), LogAlertSink)
    assert isinstance(hook, WebhookAlertSink)
    assert (hook.retries, hook.backoff_seconds, hook.timeout) == (5, 0.5, 3)
    sns = alert_sink("sns://arn:aws:sns:eu-west-1:123456789012:alerts", settings)
    assert isinstance(sns, SnsAlertSink)
    assert sns.topic_arn == "arn:aws:sns:eu-west-1:123456789012:alerts"
    assert sns.client.meta.region_name == "eu-west-1"


@pytest.mark.parametrize(
    "url", ["ftp://alerts.example.com", "sns://not-an-arn", "sns://arn:aws:sns:us-east-1:1:t.fifo", "slack"]
)
def test_chooser_rejects_unknown_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        alert_sink(url, Settings(_env_file=None))


def test_alert_severity_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="severity"):
        Alert(event="x", severity="urgent", summary="y")  # type: ignore[arg-type]
