"""deploy/monitoring/alertmanager: amtool accepts the config, each severity reaches the receivers the
on-call doc promises, critical inhibits warning of the same alert and service, and no secret is committed."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # pyyaml is in the lock, its stubs are not

from tests.conftest import answers_200, free_port
from tests.deploy.monitoring_files import ALERTMANAGER_CONFIG, load_yaml, tool

SECRETS = "/run/secrets/"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("amtool"), *args], capture_output=True, text=True, timeout=60, check=False)


def test_amtool_accepts_the_config_and_its_templates() -> None:
    checked = amtool("check-config", str(ALERTMANAGER_CONFIG))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "4 receivers" in checked.stdout and "1 templates" in checked.stdout
    assert "FAILED" not in checked.stdout


def test_amtool_rejects_an_unknown_field(tmp_path: Path) -> None:
    # Strict parsing is what makes the check above catch a misspelt secret file field.
    config = tmp_path / "alertmanager.yml"
    config.write_text(ALERTMANAGER_CONFIG.read_text().replace("routing_key_file", "routing_kee_file"))

    assert amtool("check-config", str(config)).returncode != 0


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical"], "incident-webhook,pagerduty,slack"),
        (["severity=warning"], "incident-webhook,slack"),
        (["severity=info"], "incident-webhook,blackhole"),
        ([], "slack"),  # a rule without a severity is still seen by a person
    ],
)
def test_each_severity_reaches_its_receivers(labels: list[str], receivers: str) -> None:
    routed = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        "alertname=SalescastHigh5xxRate",
        "service=salescast-api",
        *labels,
    )

    assert routed.returncode == 0, routed.stderr
    assert routed.stdout.strip() == receivers


def test_grouping_repeats_and_inhibition() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    route = config["route"]
    pagerduty = next(r for r in route["routes"] if r["receiver"] == "pagerduty")

    assert route["group_by"] == ["alertname", "service"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "4h")
    assert pagerduty["repeat_interval"] == "1h"
    assert {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": ["alertname", "service"],
    } in config["inhibit_rules"]


def test_secrets_are_read_from_mounted_files_not_committed() -> None:
    text = ALERTMANAGER_CONFIG.read_text()
    config = load_yaml(ALERTMANAGER_CONFIG)
    receivers = {r["name"]: r for r in config["receivers"]}

    assert config["global"]["slack_api_url_file"].startswith(SECRETS)
    assert receivers["pagerduty"]["pagerduty_configs"][0]["routing_key_file"].startswith(SECRETS)
    webhook = receivers["incident-webhook"]["webhook_configs"][0]
    assert webhook["http_config"]["authorization"]["credentials_file"].startswith(SECRETS)
    inline_secrets = ("slack_api_url:", "api_url:", "routing_key:", "service_key:", "credentials:", "hooks.slack.com")
    assert [secret for secret in inline_secrets if secret in text] == []


# -- the real Alertmanager ----------------------------------------------------------------------------------


@dataclass
class Recorder:
    """An HTTP server on 127.0.0.1 recording each POST as (path, headers, JSON body); it answers 200."""

    url: str = ""
    received: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)

    def bodies(self, path: str) -> list[Any]:
        return [body for p, _, body in self.received if p == path]


@contextmanager
def recorder() -> Iterator[Recorder]:
    state = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append((self.path, dict(self.headers.items()), json.loads(body)))
            self.send_response(202 if self.path == "/pagerduty" else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def local_copy(folder: Path, receivers: str) -> Path:
    """The committed config with its secrets as files in `folder`, the receivers on `receivers`, and waits of
    a second instead of minutes; routes, grouping and inhibition are the committed ones."""
    secrets = folder / "secrets"
    secrets.mkdir()
    (secrets / "slack_webhook_url").write_text(f"{receivers}/slack\n")
    (secrets / "pagerduty_routing_key").write_text("TESTROUTINGKEY\n")
    (secrets / "incident_webhook_token").write_text("webhook-token\n")
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text().replace("/run/secrets/", f"{secrets}/"))
    config["global"]["pagerduty_url"] = f"{receivers}/pagerduty"
    config["templates"] = [str(ALERTMANAGER_CONFIG.parent / "templates" / "*.tmpl")]
    [webhook] = next(r for r in config["receivers"] if r["name"] == "incident-webhook")["webhook_configs"]
    webhook["url"] = f"{receivers}/webhook"
    for route in [config["route"], *config["route"]["routes"]]:
        if "group_wait" in route:
            route["group_wait"] = "1s"
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_real_alertmanager_pages_critical_and_inhibits_the_warning_of_the_same_alert(tmp_path: Path) -> None:
    binary = tool("prometheus-alertmanager")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    five_xx = {"alertname": "SalescastHigh5xxRate", "service": "salescast-api"}
    alerts = [
        {"labels": {**five_xx, "severity": "critical"}, "annotations": {"summary": "9% of answers are 5xx"}},
        {"labels": {**five_xx, "severity": "warning"}, "annotations": {"summary": "9% of answers are 5xx"}},
        {
            "labels": {"alertname": "SalescastCanaryRolledBack", "service": "salescast-api", "severity": "warning"},
            "annotations": {"summary": "A rollout of demand was rolled back"},
        },
    ]
    with recorder() as receivers:
        config = local_copy(tmp_path, receivers.url)
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 20
            assert answers_200(f"{base}/-/ready", process, timeout=20, interval=0.1), "alertmanager did not start"
            assert httpx.post(f"{base}/api/v2/alerts", json=alerts, timeout=5).status_code == 200
            while len(receivers.received) < 5 and time.monotonic() < deadline + 20:
                time.sleep(0.1)
            time.sleep(1.0)  # anything sent that should not have been arrives too
        finally:
            process.terminate()
            process.wait(timeout=10)
        received = list(receivers.received)

    assert sorted(path for path, _, _ in received) == ["/pagerduty", "/slack", "/slack", "/webhook", "/webhook"]
    [page] = receivers.bodies("/pagerduty")
    assert page["routing_key"] == "TESTROUTINGKEY" and page["event_action"] == "trigger"
    assert page["payload"]["severity"] == "critical"
    assert page["payload"]["summary"] == "[FIRING:1] SalescastHigh5xxRate (critical, salescast-api)"
    # The warning of the 5xx alert is inhibited everywhere: each receiver sees the critical one only.
    webhook_alerts = [alert["labels"] for body in receivers.bodies("/webhook") for alert in body["alerts"]]
    assert sorted((labels["alertname"], labels["severity"]) for labels in webhook_alerts) == [
        ("SalescastCanaryRolledBack", "warning"),
        ("SalescastHigh5xxRate", "critical"),
    ]
    slack_titles = sorted(body["attachments"][0]["title"] for body in receivers.bodies("/slack"))
    assert slack_titles == [
        "[FIRING:1] SalescastCanaryRolledBack (warning, salescast-api)",
        "[FIRING:1] SalescastHigh5xxRate (critical, salescast-api)",
    ]
    [webhook_headers, _] = [headers for path, headers, _ in received if path == "/webhook"]
    assert webhook_headers["Authorization"] == "Bearer webhook-token"
