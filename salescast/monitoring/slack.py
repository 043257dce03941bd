"""Slack incoming webhooks: an alert as a message Slack renders (Block Kit `blocks`, with `text` as the
notification and fallback). Slack refuses a plain JSON alert, hence a sink of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from salescast.errors import ConfigurationError
from salescast.monitoring.http_delivery import RetryPolicy, post_json, redact

if TYPE_CHECKING:
    from salescast.monitoring.alert import Alert

SLACK_WEBHOOK_HOST = "hooks.slack.com"
# Block Kit limits: a header's text, a section's text, a field's text, fields per section.
_HEADER_MAX = 150
_SECTION_MAX = 3000
_FIELD_MAX = 2000
_FIELDS_MAX = 10
_ICONS = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
_RESOLVED_ICON = ":white_check_mark:"


def is_slack_webhook(url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() == SLACK_WEBHOOK_HOST


class SlackAlertSink:
    """POSTs `slack_message(alert)` to an incoming webhook URL (`https://hooks.slack.com/services/…`)."""

    def __init__(self, url: str, policy: RetryPolicy | None = None) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigurationError(f"a Slack webhook URL must be http(s)://, not {redact(url)!r}")
        self.url = url
        self.policy = policy or RetryPolicy()

    def send(self, alert: Alert) -> None:
        post_json(self.url, slack_message(alert), self.policy, "Slack", alert.event)


def slack_message(alert: Alert) -> dict[str, Any]:
    """The webhook body: a header (icon, severity or RESOLVED, event), the summary, up to ten details as
    fields, and a context line with the time. `text` is what notifications and old clients show."""
    resolved = alert.status == "resolved"
    icon = _RESOLVED_ICON if resolved else _ICONS[alert.severity]
    level = "RESOLVED" if resolved else alert.severity.upper()
    title = f"{icon} [{level}] {alert.event}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, _HEADER_MAX), "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(escape(alert.summary), _SECTION_MAX)}},
    ]
    if alert.details:
        blocks.append({"type": "section", "fields": _fields(alert.details)})
    when = alert.created_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"salescast · {escape(when)}"}]})
    text = _cut(f"[{level}] {alert.event}: {escape(alert.summary)}", _SECTION_MAX)
    return {"text": text, "blocks": blocks}


def _fields(details: dict[str, Any]) -> list[dict[str, str]]:
    items = list(details.items())
    shown = items if len(items) <= _FIELDS_MAX else items[: _FIELDS_MAX - 1]
    fields = [_field(str(name), _value(value)) for name, value in shown]
    if len(shown) < len(items):
        rest = ", ".join(str(k) for k, _ in items[len(shown) :])
        fields.append(_field("more", rest))
    return fields


def _field(name: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _cut(f"*{escape(name)}*\n{escape(value)}", _FIELD_MAX)}


def _value(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def escape(text: str) -> str:
    """Slack's mrkdwn control characters; anything else (`*`, `_`) is left as formatting."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
