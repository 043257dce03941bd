"""Where the deployment tests find their tools, and how they run them.

The linters are installed by scripts/deploy-tools.sh (run by scripts/test.sh) into `.tools/`, pinned; a test
whose tool is missing fails with the command that installs it rather than skipping, so a green suite always
means the check ran. Terraform is the exception the issue names: its tests skip only on a machine that has
neither the `terraform` binary nor a provider mirror (docs/deploy.md says how CI gets both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
DEPLOY = ROOT / "deploy"
TERRAFORM_DIR = DEPLOY / "terraform"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE_FILE = DEPLOY / "compose.yaml"
WORKFLOWS = ROOT / ".github" / "workflows"
# The provider mirror of this machine kind (shared/TOOLING.md); TF_PLUGIN_DIR names another one.
PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))
INSTALL_HINT = "run `bash scripts/deploy-tools.sh` (scripts/test.sh does)"


def tool(relative: str) -> Path:
    """A tool under .tools/, or a test failure that says how to install it."""
    path = TOOLS / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: {INSTALL_HINT}")
    return path


def run(
    args: Sequence[str | Path], *, cwd: Path = ROOT, timeout: float = 120, env: dict[str, str] | None = None
) -> str:
    """Run a command; fail the test with its output when it exits non-zero. Returns stdout."""
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        command = " ".join(map(str, args))
        pytest.fail(f"{command} exited {result.returncode}:\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
    return result.stdout


def terraform() -> str:
    """The terraform binary, when this machine can run terraform offline.

    Skips only when neither terraform nor a provider mirror exists (a machine without any Terraform tooling);
    fails when just one of them is there, since that is a broken setup rather than a missing one.
    """
    binary = shutil.which("terraform")
    mirror = PLUGIN_DIR.is_dir() and any(PLUGIN_DIR.rglob("terraform-provider-aws*"))
    if binary is None and not mirror:
        pytest.skip(f"neither terraform nor a provider mirror ({PLUGIN_DIR}) is on this machine")
    if binary is None:
        pytest.fail(f"a provider mirror is at {PLUGIN_DIR} but no terraform binary is on PATH")
    if not mirror:
        pytest.fail(f"terraform is at {binary} but no AWS provider mirror is at {PLUGIN_DIR} (set TF_PLUGIN_DIR)")
    return binary


def terraform_env(tmp: Path) -> dict[str, str]:
    """An environment for terraform that reads no user config and never reaches a registry."""
    rc = tmp / "terraformrc"
    rc.write_text("")
    return {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(rc),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }


def terraform_copy(tmp: Path) -> Path:
    """deploy/terraform copied into tmp (without state or .terraform), so init and apply leave the tree clean."""
    target = tmp / "terraform"
    shutil.copytree(
        TERRAFORM_DIR, target, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*")
    )
    return target


def terraform_config(folder: Path = TERRAFORM_DIR) -> dict[str, Any]:
    """Variables and module calls of every folder of a Terraform tree, parsed by python-hcl2 (scripts/hcl_dump.py)."""
    out = run([tool("py/bin/python"), ROOT / "scripts" / "hcl_dump.py", folder])
    parsed: dict[str, Any] = json.loads(out)
    return parsed
