"""The files of deploy/monitoring/ and what the tests read from them: tool paths, rule and dashboard queries,
and the metric names a PromQL expression reads."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # pyyaml is in the lock, its stubs are not

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
RULES_FILE = MONITORING / "prometheus" / "rules" / "salescast.rules.yml"
RULE_TESTS = sorted((MONITORING / "prometheus" / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "salescast.json"
ALERTING_DOC = ROOT / "docs" / "operations" / "alerting.md"

# Grafana's variables, replaced by what they stand for so that promtool can parse a panel's query.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$service": "salescast-api"}

_FUNCTION_OR_KEYWORD = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "and",
        "or",
        "unless",
        "atan2",
        "inf",
        "nan",
    ]
)
_IDENTIFIER = re.compile(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def tool(name: str) -> str:
    """The path of a Prometheus command-line tool; scripts/test.sh installs them (Debian packages)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: scripts/test.sh installs Debian's prometheus packages")
    return path


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES_FILE)["groups"] for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL with Grafana's variables filled in) of every target of every panel."""
    queries = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((panel["title"], expr))
    for variable in dashboard().get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            # label_values(metric, label) reads `metric`; keep it as a selector promtool parses.
            match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query)
            assert match, f"dashboard variable {variable['name']}: unexpected query {query!r}"
            queries.append((f"variable {variable['name']}", match[1]))
    return queries


def metric_names(expr: str) -> set[str]:
    """The metric (and recorded series) names a PromQL expression reads.

    Strings, label matchers `{...}`, ranges `[...]` and the label lists of by/without/on/ignoring/group_*
    are removed first; of what is left, an identifier followed by `(` is a function or an aggregation,
    and the keywords are known. What remains is a name: a mistake here shows up as an unknown "metric"
    in the tests, never as a name silently skipped.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\boffset\s+-?\w+", "", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.groups()
        if call or name in _FUNCTION_OR_KEYWORD or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names
