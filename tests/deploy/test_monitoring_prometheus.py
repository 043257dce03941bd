"""deploy/monitoring/prometheus: the scrape config and the alert rules pass promtool's checks, and each
rule's unit tests (deploy/monitoring/prometheus/tests/) make it fire, and keep it quiet where it must be."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from salescast.serving.routes import API_PREFIX
from salescast.serving.routes.health import router as operations
from tests.deploy.monitoring_files import (
    ALERTING_DOC,
    PROMETHEUS_CONFIG,
    RULE_TESTS,
    RULES_FILE,
    alert_rules,
    load_yaml,
    rules,
    tool,
)

SEVERITIES = {"info", "warning", "critical"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120, check=False)


def test_prometheus_config_and_its_rules_pass_promtool_check() -> None:
    checked = promtool("check", "config", str(PROMETHEUS_CONFIG))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


def test_rules_pass_promtool_check_rules() -> None:
    checked = promtool("check", "rules", str(RULES_FILE))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool unit tests in deploy/monitoring/prometheus/tests"

    tested = promtool("test", "rules", *map(str, RULE_TESTS))

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_promtool_fails_a_rule_that_does_not_parse(tmp_path: Path) -> None:
    # The checks above are only worth something if promtool really rejects a bad expression.
    broken = tmp_path / "broken.rules.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(foo[5m] > 1\n")

    assert promtool("check", "rules", str(broken)).returncode != 0


def test_every_alert_and_severity_has_a_unit_test_that_fires_it() -> None:
    fired: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                if not check["exp_alerts"]:
                    quiet.add(check["alertname"])
                for alert in check["exp_alerts"]:
                    fired.add((check["alertname"], alert["exp_labels"]["severity"]))

    declared = {(rule["alert"], rule["labels"]["severity"]) for rule in alert_rules()}
    assert declared - fired == set()
    # At least the thresholds that must not page, low traffic, and a single version serving stay quiet.
    assert {"SalescastHigh5xxRate", "SalescastCanaryRegression"} <= quiet


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section() -> None:
    doc = ALERTING_DOC.read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in doc.splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        doc_path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert doc_path == "docs/operations/alerting.md", rule["alert"]
        assert anchor == rule["alert"].lower() and anchor in anchors, f"{rule['alert']}: no section {anchor} in the doc"


def test_the_scrape_config_reads_the_api_metrics_route() -> None:
    [job] = [job for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"] if job["job_name"] == "salescast-api"]
    routes = {getattr(route, "path", None) for route in operations.routes}

    assert job["metrics_path"] == f"{API_PREFIX}/metrics"
    assert job["metrics_path"] in routes
    assert job["dns_sd_configs"] == [{"names": ["api"], "type": "A", "port": 8000, "refresh_interval": "30s"}]
