"""One JSON POST with retries: how the webhook, Slack and PagerDuty alert sinks talk to their receivers.

Connection errors, 429 and 5xx (but 501) are retried after a delay that doubles from `backoff_seconds`,
or after the server's `Retry-After`, both capped at `max_delay_seconds`. Any other non-2xx answer fails
at once: repeating a request the receiver rejected would only repeat the rejection.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from salescast.errors import AlertDeliveryError, ConfigurationError

_BODY_SHOWN = 200  # characters of a refusal's body in the error (Slack says why there: "invalid_blocks")


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` after the first attempt (so at most `retries + 1`), the first delay, one request's timeout."""

    retries: int = 3
    backoff_seconds: float = 1.0
    timeout: float = 5.0
    max_delay_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_seconds < 0 or self.timeout <= 0:
            raise ConfigurationError("alert retries and backoff must be >= 0 and the timeout > 0")


def post_json(url: str, payload: dict[str, Any] | bytes, policy: RetryPolicy, what: str, event: str) -> httpx.Response:
    """POST `payload` (a dict is encoded as JSON) to `url` under `policy` and return the 2xx response.

    Args:
        url: the receiver; errors show only its scheme, host and port (paths often hold a token).
        payload: the JSON body, as a dict or already encoded.
        policy: retries, backoff and timeout.
        what: the receiver's kind in errors ("webhook", "Slack", "PagerDuty").
        event: the alert's event name, for errors.

    Raises:
        AlertDeliveryError: refused (4xx) or not taken after every attempt.
    """
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": "salescast-alerts"}
    target = redact(url)
    failure = ""
    with httpx.Client(timeout=policy.timeout) as client:
        for attempt in range(policy.retries + 1):
            retry_after: float | None = None
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return response
                failure = f"HTTP {response.status_code}"
                shown = " ".join(response.text.split())[:_BODY_SHOWN]
                if shown:
                    failure = f"{failure} {shown}"
                if not _is_retryable(response.status_code):
                    raise AlertDeliveryError(f"{what} {target} refused alert {event}: {failure}")
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < policy.retries:
                delay = retry_after if retry_after is not None else policy.backoff_seconds * 2**attempt
                time.sleep(min(delay, policy.max_delay_seconds))
    raise AlertDeliveryError(
        f"{what} {target} did not take alert {event} after {policy.retries + 1} attempts: {failure}"
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


def redact(url: str) -> str:
    """scheme://host[:port] only: webhook paths and queries often carry the secret token."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
