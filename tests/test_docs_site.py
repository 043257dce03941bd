"""The documentation site: `mkdocs build --strict` passes offline, the pages generated from the code
hold what the code holds, and every `salescast ...` command the docs show is a real one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
import typer
from mkdocs.config import load_config

from salescast.cli import app
from salescast.config import Settings

ROOT = Path(__file__).resolve().parents[1]
KEY_PAGES = (
    "index.html",
    "getting-started/index.html",
    "ingestion/index.html",
    "forecasting/index.html",
    "registry/index.html",
    "serving/index.html",
    "dashboard/index.html",
    "operations/worker/index.html",
    "operations/monitoring/index.html",
    "operations/alerting/index.html",
    "deploy/index.html",
    "benchmarks/forecasting/index.html",
    "benchmarks/serving/index.html",
    "reference/cli/index.html",
    "reference/settings/index.html",
    "reference/openapi/index.html",
    "reference/python/index.html",
    "reference/openapi.json",
)
# Plugins that fetch from the internet while building (fonts, avatars, cards): the site must build offline.
ONLINE_PLUGINS = {"social", "privacy", "optimize", "blog", "git-revision-date-localized", "git-committers"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESCAST_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    return out


def test_the_site_builds_strict_with_every_key_page(site: Path) -> None:
    missing = [page for page in KEY_PAGES if not (site / page).is_file()]

    assert missing == []


def test_the_site_uses_no_plugin_that_needs_the_internet() -> None:
    # Material's own plugins are named material/NAME.
    names = {name.removeprefix("material/") for name in load_config(str(ROOT / "mkdocs.yml")).plugins}

    assert names & ONLINE_PLUGINS == set()
    assert "search" in names and "mkdocstrings" in names


def test_the_settings_page_lists_every_setting(site: Path) -> None:
    page = (site / "reference/settings/index.html").read_text()
    absent = [name for name in Settings.model_fields if f"SALESCAST_{name.upper()}" not in page]

    assert absent == []


def test_the_openapi_page_carries_the_apps_document_and_a_row_per_route(site: Path) -> None:
    document = json.loads((site / "reference/openapi.json").read_text())
    page = (site / "reference/openapi/index.html").read_text()
    routes = [f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops]

    assert "/api/v1/forecast/top-products" in document["paths"]
    assert document["info"]["title"] == "salescast API"
    assert [route for route in routes if route not in page] == []


def test_the_python_reference_renders_the_docstrings(site: Path) -> None:
    page = (site / "reference/python/index.html").read_text()

    assert "salescast.data.ingest.ingest_file" in page
    assert "salescast.registry.versions.ModelRegistry" in page
    assert "Base of every error salescast raises on purpose" in page


def cli_commands() -> set[tuple[str, ...]]:
    """Every command path a user can type: ('ingest',), ('models', 'list'), ... and the groups."""
    found: set[tuple[str, ...]] = set()

    def walk(prefix: tuple[str, ...], command: object) -> None:
        found.add(prefix)
        for name, sub in getattr(command, "commands", {}).items():
            walk((*prefix, name), sub)

    walk((), typer.main.get_command(app))
    return found


# `salescast WORD [WORD]` inside code (fenced blocks and inline spans); upper-case words are placeholders.
COMMAND = re.compile(r"(?<![\w./$-])salescast((?: [a-z][a-z_-]*){1,2})")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE = re.compile(r"`[^`\n]+`")


def unknown_commands(text: str, known: set[tuple[str, ...]]) -> list[str]:
    code = [m.group(0) for m in FENCE.finditer(text)]
    code += [m.group(0) for m in INLINE.finditer(FENCE.sub("", text))]
    bad = []
    for snippet in code:
        for match in COMMAND.finditer(snippet):
            words = tuple(match.group(1).split())
            # The first word must be a command or a group; after a group, the second its command.
            is_group = any(len(k) == 2 and k[0] == words[0] for k in known)
            if (words[0],) not in known or (is_group and len(words) > 1 and words not in known):
                bad.append("salescast " + " ".join(words))
    return bad


# Commands the docs name as planned, each with where it is planned; nothing else may be missing.
PLANNED: set[str] = set()


def documents() -> Iterable[Path]:
    yield ROOT / "README.md"
    yield ROOT / "scripts" / "demo.sh"
    yield from sorted((ROOT / "docs").rglob("*.md"))


def test_a_made_up_command_is_caught() -> None:
    known = cli_commands()
    text = "run `salescast models lsit` then\n```bash\nsalescast trian --models lgbm\nsalescast ingest x.csv\n```\n"

    assert unknown_commands(text, known) == ["salescast trian", "salescast models lsit"]


def test_every_salescast_command_the_docs_show_is_a_real_command() -> None:
    known = cli_commands()
    text_of = {path: path.read_text(encoding="utf-8") for path in documents()}
    # demo.sh is a script: all of it is code.
    demo = ROOT / "scripts" / "demo.sh"
    text_of[demo] = "```\n" + text_of[demo] + "\n```"
    bad = {
        str(path.relative_to(ROOT)): [c for c in unknown_commands(text, known) if c not in PLANNED]
        for path, text in text_of.items()
    }

    assert {path: cmds for path, cmds in bad.items() if cmds} == {}
    assert ("models", "list") in known and ("ingest",) in known
