"""docs/deploy.md matches the files: every repository path it names exists, every `salescast` command and flag
in its code blocks exists, every `terraform -chdir=DIR` file argument exists in DIR, every image target exists."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import typer

from salescast.cli import app
from tests.deploy.test_compose import MONITORING
from tests.deploy.test_docker import stages
from tests.deploy.tooling import DOCKERFILE, ROOT

DOC = ROOT / "docs" / "deploy.md"
CODE_BLOCK = re.compile(r"^```(?:bash|sh|console)\n(?P<body>.*?)^```", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
REPO_PATH = re.compile(r"^(?:deploy|scripts|docs|tests|salescast|bench|\.github)/[\w./{}+-]*$|^buildspec\.yml$")
TERRAFORM_FILE_FLAGS = ("-var-file=", "-backend-config=")


def commands(markdown: str) -> list[list[str]]:
    """The shell commands of the document's code blocks, split into words (comments and continuations handled)."""
    found = []
    for block in CODE_BLOCK.finditer(markdown):
        text = block["body"].replace("\\\n", " ")
        for line in text.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                found.append(words)
    return found


def ignored_by_git(path: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False).returncode == 0


def path_problems(candidates: list[str], base: Path = ROOT) -> list[str]:
    problems = []
    for candidate in candidates:
        path = candidate.rstrip("/")
        # deploy/monitoring/ is written in the monitoring branch: checked once it has landed (as in test_compose).
        if path.startswith("deploy/monitoring") and not MONITORING.exists():
            continue
        # A file the reader makes (deploy/.env) is git-ignored; it need not exist in the repository.
        if not (base / path).exists() and not ignored_by_git(path):
            problems.append(f"{candidate} does not exist")
    return problems


def cli_problems(words: list[str]) -> list[str]:
    """Subcommands and --options of one `salescast ...` command that the CLI does not have."""
    # Any: typer vendors its own click, whose classes are not click's; only .params and .commands are read.
    command: Any = typer.main.get_command(app)
    name = "salescast"
    problems = []
    for word in words[1:]:
        if word.startswith("--"):
            options = {opt for p in command.params for opt in getattr(p, "opts", [])}
            if word.split("=", 1)[0] not in options:
                problems.append(f"{' '.join(words)}: {name} has no option {word.split('=', 1)[0]}")
        elif hasattr(command, "commands"):  # a group: the word names a subcommand
            sub = command.commands.get(word)
            if sub is None:
                problems.append(f"{' '.join(words)}: no command {word!r} under {name}")
                break
            command, name = sub, word
    return problems


def doc_problems(markdown: str) -> list[str]:
    problems = []
    inline = [m for m in INLINE_CODE.findall(markdown) if REPO_PATH.match(m)]
    problems += path_problems(inline)
    for words in commands(markdown):
        problems += path_problems([w for w in words if REPO_PATH.match(w)])
        if words[0] == "salescast":
            problems += cli_problems(words)
        if words[0] == "terraform":
            chdir = next((w.split("=", 1)[1] for w in words if w.startswith("-chdir=")), ".")
            problems += path_problems([chdir])
            files = [w.split("=", 1)[1] for w in words if w.startswith(TERRAFORM_FILE_FLAGS)]
            problems += path_problems(files, ROOT / chdir)
        if words[:2] == ["docker", "build"] and "--target" in words:
            target = words[words.index("--target") + 1]
            if target not in stages(DOCKERFILE.read_text()):
                problems.append(f"docker build --target {target}: no such stage")
    return problems


def test_every_path_command_and_flag_of_the_deploy_doc_exists() -> None:
    markdown = DOC.read_text()
    found = commands(markdown)
    assert any(w[0] == "salescast" for w in found) and any(w[0] == "terraform" for w in found)
    assert doc_problems(markdown) == []


def test_a_stale_path_command_or_flag_is_reported() -> None:
    stale = (
        "See `deploy/terraform/envs/staging.tfvars`.\n\n```bash\n"
        "terraform -chdir=deploy/terraform plan -var-file=envs/qa.tfvars\n"
        "salescast deploy start demand 4 --canary-share 0.1\n"
        "salescast deploy launch demand\n"
        "docker build -f deploy/docker/Dockerfile --target gpu .\n"
        "bash scripts/rollout.sh  # gone\n```\n"
    )
    assert doc_problems(stale) == [
        "deploy/terraform/envs/staging.tfvars does not exist",
        "envs/qa.tfvars does not exist",
        "salescast deploy start demand 4 --canary-share 0.1: start has no option --canary-share",
        "salescast deploy launch demand: no command 'launch' under deploy",
        "docker build --target gpu: no such stage",
        "scripts/rollout.sh does not exist",
    ]
