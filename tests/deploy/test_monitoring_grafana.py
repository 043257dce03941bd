"""deploy/monitoring/grafana and the compose stack: every panel query is PromQL that promtool parses, panels use the
provisioned datasource, and the files point at each other (mount paths, service names, ports)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import yaml  # type: ignore[import-untyped]  # pyyaml is in the lock, its stubs are not

from tests.deploy.monitoring_files import (
    MONITORING,
    PROMETHEUS_CONFIG,
    dashboard,
    dashboard_queries,
    load_yaml,
    tool,
)

COMPOSE = MONITORING.parent / "compose.yaml"  # the stack that runs the monitoring beside the API
DATASOURCES = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = MONITORING / "grafana" / "provisioning" / "dashboards" / "salescast.yml"


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool has no "parse this expression" command: each query becomes a recording rule it checks.
    queries = dashboard_queries()
    as_rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query:{n}", "expr": expr} for n, (_, expr) in enumerate(queries)],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(as_rules))

    checked = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout
    assert len(queries) >= 20


def test_panels_use_the_provisioned_datasource_and_have_unique_ids() -> None:
    [source] = load_yaml(DATASOURCES)["datasources"]
    panels = dashboard()["panels"]

    assert source["uid"] == "prometheus" and source["type"] == "prometheus"
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["datasource"] == panel["datasource"] for target in panel["targets"]), panel["title"]


def test_compose_mounts_what_the_configs_expect() -> None:
    services = load_yaml(COMPOSE)["services"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (COMPOSE.parent / source).exists(), volume

    def mount_target(service: str, source: str) -> str:
        [volume] = [v for v in services[service]["volumes"] if v.split(":")[0] == source]
        return str(volume.split(":")[1])

    # Prometheus: the config's alertmanager and Grafana's datasource name compose services and ports.
    [alertmanagers] = load_yaml(PROMETHEUS_CONFIG)["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert (
        "alertmanager" in services
        and "--config.file=/etc/alertmanager/alertmanager.yml" in (services["alertmanager"]["command"])
    )
    assert mount_target("alertmanager", "./monitoring/alertmanager") == "/etc/alertmanager"
    assert mount_target("prometheus", "./monitoring/prometheus") == "/etc/prometheus"
    [source] = load_yaml(DATASOURCES)["datasources"]
    assert urlsplit(source["url"]).netloc == "prometheus:9090"
    # Grafana: provisioning where Grafana reads it, dashboards where the provider looks.
    assert mount_target("grafana", "./monitoring/grafana/provisioning") == "/etc/grafana/provisioning"
    [provider] = load_yaml(PROVIDERS)["providers"]
    assert mount_target("grafana", "./monitoring/grafana/dashboards") == provider["options"]["path"]
    # Alertmanager's secret files are the compose secrets, mounted under /run/secrets/.
    assert set(services["alertmanager"]["secrets"]) == set(load_yaml(COMPOSE)["secrets"])
    alertmanager_text = (MONITORING / "alertmanager" / "alertmanager.yml").read_text()
    for secret in services["alertmanager"]["secrets"]:
        assert f"/run/secrets/{secret}" in alertmanager_text
