"""deploy/monitoring/alertmanager: amtool accepts the config, each severity reaches the receivers the
on-call doc promises, critical inhibits warning of the same alert and service, and no secret is committed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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
