"""The README as a newcomer meets it: short, its links lead somewhere, and every block it marks runnable
runs as written on a temporary home (a SQLite file and a local artifact folder in a temp dir)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# A block runs when the line before its ```bash fence is `<!-- runnable expect="TEXT" -->`; TEXT must
# appear in what the block prints.
RUNNABLE = re.compile(r'^<!-- runnable expect="(?P<expect>[^"]+)" -->\n```bash\n(?P<code>.*?)^```$', re.M | re.S)
LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")
DEMO_PORT = "8000"  # the port the README's serve block uses; the test swaps in a free one


@dataclass(frozen=True)
class Block:
    code: str
    expect: str


def runnable_blocks(markdown: str) -> list[Block]:
    return [Block(m["code"], m["expect"]) for m in RUNNABLE.finditer(markdown)]


def test_runnable_blocks_are_found_by_their_marker_and_nothing_else() -> None:
    text = (
        'intro\n<!-- runnable expect="ok" -->\n```bash\necho ok\necho two\n```\n\n```bash\nnot marked\n```\n'
        '<!-- runnable expect="x" -->\n```python\nprint(1)\n```\n'
    )

    assert runnable_blocks(text) == [Block("echo ok\necho two\n", "ok")]


def test_the_readme_is_a_short_front_door_whose_links_lead_somewhere() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [
        target
        for target in (m["target"] for m in LINK.finditer(text))
        # Pictures are produced apart (the dashboard's screenshot comes from its own tooling).
        if "://" not in target and not target.endswith(".png") and not (ROOT / target).exists()
    ]

    assert len(text.encode()) < 10_000
    assert missing == []
    assert "bash scripts/test.sh" in text
    assert "bash scripts/demo.sh" in text


def _tour_environment(home: Path) -> dict[str, str]:
    # Nothing of the caller's salescast settings leaks in: the tour runs on the embedded defaults.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESCAST_")}
    env.update(
        SALESCAST_HOME=str(home),
        SALESCAST_LOG_FORMAT="text",
        SALESCAST_ACCESS_LOG="false",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        COLUMNS="160",
    )
    return env


def _run(code: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Its own session, so a server a block starts in the background is stopped whatever happens.
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"README block timed out:\n{code}\n{stdout}\n{stderr}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_every_runnable_block_of_the_readme_runs_on_a_temporary_home(tmp_path: Path) -> None:
    blocks = runnable_blocks(README.read_text(encoding="utf-8"))
    env = _tour_environment(tmp_path / "home")
    port = str(free_port())

    assert len(blocks) >= 3, "the tour's blocks lost their runnable markers"
    for block in blocks:
        done = _run(block.code.replace(DEMO_PORT, port), tmp_path, env)

        assert done.returncode == 0, f"README block failed:\n{block.code}\n{done.stdout}\n{done.stderr}"
        assert block.expect in done.stdout, f"{block.expect!r} not printed by:\n{block.code}\n{done.stdout}"
    # The tour left what it says it makes: a store, a registered model and its artifact under the home.
    assert (tmp_path / "home" / "salescast.db").is_file()
    assert any((tmp_path / "home" / "artifacts").rglob("*.tar*"))
