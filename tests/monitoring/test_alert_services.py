"""The Slack and PagerDuty alert sinks against an HTTP receiver on 127.0.0.1: the exact JSON each one
posts, retries and refusals as the webhook has them, and how `alert_sink` picks them from a URL."""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
from pydantic import SecretStr

from salescast.config import Settings
from salescast.errors import AlertDeliveryError, ConfigurationError
from salescast.monitoring.alerts import Alert, WebhookAlertSink, alert_sink
from salescast.monitoring.http_delivery import RetryPolicy
from salescast.monitoring.pagerduty import PagerDutyAlertSink
from salescast.monitoring.slack import SlackAlertSink, slack_message
from tests.monitoring.conftest import Receiver

ALERT = Alert(
    event="deployment.rolled_back",
    severity="critical",
    summary="demand v5 rolled back: 5xx 4.1 % > 1 % <limit>",
    details={"model": "demand", "version": 5, "error_rate": 0.041},
    created_at=dt.datetime(2026, 3, 1, 6, 30, tzinfo=dt.UTC),
    dedup_key="rollout/demand/5",
)
FAST = RetryPolicy(retries=3, backoff_seconds=0.01, timeout=2.0)
ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"


def bodies(receiver: Receiver) -> list[object]:
    return [json.loads(body) for _, body in receiver.received]


# -- Slack --------------------------------------------------------------------------------------------------


def test_slack_posts_a_message_with_text_and_blocks(receiver: Receiver) -> None:
    receiver.body = b"ok"

    SlackAlertSink(receiver.url, FAST).send(ALERT)

    [(headers, _)] = receiver.received
    assert headers["Content-Type"] == "application/json"
    assert bodies(receiver) == [
        {
            "text": "[CRITICAL] deployment.rolled_back: demand v5 rolled back: 5xx 4.1 % &gt; 1 % &lt;limit&gt;",
            "blocks": [
                {
                    "type": "header",
                    "text": {
                        "type": "plain_text",
                        "text": ":rotating_light: [CRITICAL] deployment.rolled_back",
                        "emoji": True,
                    },
                },
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "demand v5 rolled back: 5xx 4.1 % &gt; 1 % &lt;limit&gt;"},
                },
                {
                    "type": "section",
                    "fields": [
                        {"type": "mrkdwn", "text": "*model*\ndemand"},
                        {"type": "mrkdwn", "text": "*version*\n5"},
                        {"type": "mrkdwn", "text": "*error_rate*\n0.041"},
                    ],
                },
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "salescast · 2026-03-01 06:30:00 UTC"}]},
            ],
        }
    ]


def test_slack_resolved_message_says_so_and_has_no_fields_without_details() -> None:
    resolved = Alert(
        event="drift.detected",
        severity="warning",
        summary="units back to normal",
        status="resolved",
        created_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
    )

    message = slack_message(resolved)

    assert message["text"] == "[RESOLVED] drift.detected: units back to normal"
    assert [block["type"] for block in message["blocks"]] == ["header", "section", "context"]
    assert message["blocks"][0]["text"]["text"] == ":white_check_mark: [RESOLVED] drift.detected"


def test_slack_message_keeps_to_block_kit_limits() -> None:
    alert = Alert(event="x." + "e" * 200, severity="info", summary="s" * 5000, details={f"k{i}": i for i in range(14)})

    message = slack_message(alert)

    header, summary, details, _ = message["blocks"]
    assert len(header["text"]["text"]) == 150 and header["text"]["text"].endswith("…")
    assert len(summary["text"]["text"]) == 3000
    assert len(message["text"]) == 3000
    assert len(details["fields"]) == 10
    assert details["fields"][-1]["text"] == "*more*\nk9, k10, k11, k12, k13"


def test_slack_retries_server_errors_until_delivered(receiver: Receiver) -> None:
    receiver.answer(503, (429, {"Retry-After": "0"}), 200)

    SlackAlertSink(receiver.url, FAST).send(ALERT)

    assert len(receiver.received) == 3
    assert bodies(receiver)[0] == bodies(receiver)[2] == slack_message(ALERT)


def test_slack_refusal_fails_at_once_with_slacks_reason_and_no_token(receiver: Receiver) -> None:
    receiver.answer(400)
    receiver.body = b"invalid_blocks"

    with pytest.raises(
        AlertDeliveryError, match=r"Slack http://127.0.0.1:[0-9]+ refused alert .*HTTP 400 invalid_blocks"
    ) as raised:
        SlackAlertSink(receiver.url, FAST).send(ALERT)

    assert len(receiver.received) == 1
    assert "secret-token" not in str(raised.value)


# -- PagerDuty ----------------------------------------------------------------------------------------------


def test_pagerduty_triggers_then_resolves_one_incident(receiver: Receiver) -> None:
    receiver.answer(202)
    sink = PagerDutyAlertSink(ROUTING_KEY, receiver.url, FAST, source="api-1")

    sink.send(ALERT)
    sink.send(
        Alert(
            event=ALERT.event, severity="critical", summary="recovered", status="resolved", dedup_key="rollout/demand/5"
        )
    )

    assert bodies(receiver) == [
        {
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": "rollout/demand/5",
            "client": "salescast",
            "payload": {
                "summary": "[deployment.rolled_back] demand v5 rolled back: 5xx 4.1 % > 1 % <limit>",
                "source": "api-1",
                "severity": "critical",
                "timestamp": "2026-03-01T06:30:00+00:00",
                "class": "deployment.rolled_back",
                "custom_details": {"model": "demand", "version": 5, "error_rate": 0.041},
            },
        },
        {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "rollout/demand/5"},
    ]


def test_pagerduty_dedup_key_defaults_to_the_event_and_details_become_json(receiver: Receiver) -> None:
    receiver.answer(202)
    alert = Alert(
        event="job.failed", severity="warning", summary="retrain failed", details={"day": dt.date(2026, 3, 1)}
    )

    PagerDutyAlertSink(ROUTING_KEY, receiver.url, FAST, source="worker").send(alert)

    [body] = bodies(receiver)
    assert isinstance(body, dict)
    assert body["dedup_key"] == "job.failed"
    assert body["payload"]["severity"] == "warning"
    assert body["payload"]["custom_details"] == {"day": "2026-03-01"}


def test_pagerduty_retries_rate_limits_and_server_errors(receiver: Receiver) -> None:
    receiver.answer((429, {"Retry-After": "0"}), 502, 202)

    PagerDutyAlertSink(ROUTING_KEY, receiver.url, FAST).send(ALERT)

    assert len(receiver.received) == 3


def test_pagerduty_gives_up_after_the_retries_without_showing_the_key(receiver: Receiver) -> None:
    receiver.answer(500)

    with pytest.raises(AlertDeliveryError, match=r"PagerDuty .* after 2 attempts: HTTP 500") as raised:
        PagerDutyAlertSink(ROUTING_KEY, receiver.url, RetryPolicy(1, 0.01, 2.0)).send(ALERT)

    assert len(receiver.received) == 2
    assert ROUTING_KEY not in str(raised.value)


def test_pagerduty_bad_request_fails_at_once(receiver: Receiver) -> None:
    receiver.answer(400)
    receiver.body = b'{"status":"invalid event","message":"Event object is invalid"}'

    with pytest.raises(AlertDeliveryError, match=r"HTTP 400 .*invalid event"):
        PagerDutyAlertSink(ROUTING_KEY, receiver.url, FAST).send(ALERT)

    assert len(receiver.received) == 1


# -- the chooser --------------------------------------------------------------------------------------------


def test_slack_urls_choose_the_slack_sink(receiver: Receiver) -> None:
    settings = Settings(_env_file=None, alert_retries=2, alert_backoff_seconds=0.01, alert_timeout_seconds=2)

    explicit = alert_sink(f"slack+{receiver.url}", settings)
    detected = alert_sink("https://hooks.slack.com/services/T000/B000/XXXX", settings)
    explicit.send(ALERT)

    assert isinstance(explicit, SlackAlertSink) and explicit.url == receiver.url
    assert explicit.policy == RetryPolicy(2, 0.01, 2.0)
    assert bodies(receiver) == [slack_message(ALERT)]
    assert isinstance(detected, SlackAlertSink)
    assert detected.url == "https://hooks.slack.com/services/T000/B000/XXXX"
    assert isinstance(alert_sink("https://hooks.example.com/slack", settings), WebhookAlertSink)


def test_pagerduty_url_takes_the_key_from_settings_and_the_endpoint_from_settings(receiver: Receiver) -> None:
    receiver.answer(202)
    settings = Settings(
        _env_file=None,
        pagerduty_routing_key=SecretStr(ROUTING_KEY),
        pagerduty_events_url=receiver.url,
        alert_backoff_seconds=0.01,
    )

    sink = alert_sink("pagerduty://", settings)
    sink.send(ALERT)

    assert isinstance(sink, PagerDutyAlertSink)
    [body] = bodies(receiver)
    assert isinstance(body, dict)
    assert body["routing_key"] == ROUTING_KEY
    assert body["payload"]["source"] == socket.gethostname()
    assert ROUTING_KEY not in repr(sink)


def test_pagerduty_url_may_carry_the_key() -> None:
    sink = alert_sink("pagerduty://INLINEKEY", Settings(_env_file=None, pagerduty_routing_key=SecretStr("OTHER")))

    assert isinstance(sink, PagerDutyAlertSink)
    assert sink.routing_key == "INLINEKEY"
    assert sink.events_url == "https://events.pagerduty.com/v2/enqueue"


def test_pagerduty_url_without_any_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="SALESCAST_PAGERDUTY_ROUTING_KEY"):
        alert_sink("pagerduty://", Settings(_env_file=None))


def test_alert_status_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="status"):
        Alert(event="x", severity="info", summary="y", status="closed")  # type: ignore[arg-type]
