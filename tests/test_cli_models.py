"""`salescast models` as a user runs it (through its entry point): stored metrics print even when some are missing,
and every refused alias move ends with its error's exit code and one line, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import Engine

from salescast import cli as cli_module
from salescast.config import get_settings
from salescast.errors import ArtifactIntegrityError, ConflictError
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.versions import PRODUCTION, ModelRegistry, UnknownAliasError
from tests.registry.test_versions import candidate, model_folder, truncate_artifact

NAME = "demand"


class Result(NamedTuple):
    code: int
    out: str
    err: str  # whitespace collapsed: rich wraps long lines


@pytest.fixture
def registry(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    """v1 (production) and v2 in the database and the artifact folder the CLI uses by default."""
    monkeypatch.setenv("SALESCAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SALESCAST_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("SALESCAST_ARTIFACT_URI", raising=False)
    get_settings.cache_clear()
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "home" / "artifacts"))
    for content in "ab":
        registry.register(candidate(NAME), model_folder(tmp_path, content))
    registry.set_alias(NAME, PRODUCTION, 1, actor="test")
    yield registry
    get_settings.cache_clear()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Runs `salescast models ARGS` through the CLI's entry point, in this process (one start-up for all)."""
    monkeypatch.setattr(cli_module.console, "width", 200)

    def run(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["salescast", "models", *args])
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli_module.main()  # an exception other than the mapped ones would fail the test here
        out, err = capsys.readouterr()
        return Result(int(exited.value.code or 0), out, " ".join(err.split()))

    return run


def test_missing_metrics_print_as_a_dash(registry: ModelRegistry, cli: Callable[..., Result], tmp_path: Path) -> None:
    compared = candidate(NAME)
    # What the pipeline stores once a champion's coverage could not be computed (non-finite -> null).
    compared.metrics = {
        "candidate": {"mase": 0.8, "coverage": None},
        "baseline": {"mase": None},
        "champion": {"mase": 0.9, "coverage": None},
    }
    registry.register(compared, model_folder(tmp_path, "c"))

    show = cli("show", NAME, "3")
    listed = cli("list", NAME)
    diff = cli("diff", NAME, "production", "3")

    assert show[0] == 0, show[2]
    assert "mase 0.800, coverage –" in show[1] and "mase 0.900, coverage –" in show[1] and "mase –" in show[1]
    assert listed[0] == 0, listed[2]
    row = next(line for line in listed[1].splitlines() if "│ 3 " in line)
    assert "0.800" in row and row.rstrip(" │").endswith("–")
    assert diff[0] == 0, diff[2]
    coverage = next(line for line in diff[1].splitlines() if "coverage" in line).split("│")
    mase = next(line for line in diff[1].splitlines() if "│ mase " in line).split("│")
    assert [cell.strip() for cell in coverage[1:4]] == ["coverage", "–", "–"]
    assert [cell.strip() for cell in mase[1:4]] == ["mase", "0.800", "0.800"]


def test_refused_alias_moves_exit_with_their_errors_code(
    registry: ModelRegistry, cli: Callable[..., Result], tmp_path: Path
) -> None:
    registry.register(candidate(NAME, status="rejected"), model_folder(tmp_path, "c"))

    assert cli("promote", NAME, "2", "--alias", "7")[::2] == (
        UnknownAliasError.exit_code,
        "error: alias '7' is a number: every lookup would read it as a version; use a name such as candidate, "
        "challenger, production, staging",
    )
    unknown = cli("promote", NAME, "2", "--alias", "a")
    assert unknown[0] == UnknownAliasError.exit_code and "unknown alias 'a'" in unknown[2]
    rejected = cli("promote", NAME, "3", "--alias", "candidate")
    assert rejected[0] == ConflictError.exit_code and "demand v3 was rejected" in rejected[2]
    nothing = cli("rollback", NAME)
    assert nothing[0] == ConflictError.exit_code
    assert "'demand' production has no earlier version than v1 to roll back to" in nothing[2]

    registry.set_alias(NAME, PRODUCTION, 2, actor="test")
    registry.set_alias(NAME, PRODUCTION, 1, actor="test")
    truncate_artifact(registry.version(NAME, 2))
    events = len(registry.history(NAME))
    for args in (("rollback", NAME), ("promote", NAME, "2", "--alias", "staging")):
        code, _, message = cli(*args)
        assert code == ArtifactIntegrityError.exit_code, message
        assert "demand v2 cannot be" in message and "its artifact is corrupt or was replaced" in message

    assert registry.aliases(NAME) == {PRODUCTION: 1}
    assert len(registry.history(NAME)) == events


def test_a_move_that_changes_nothing_says_so(registry: ModelRegistry, cli: Callable[..., Result]) -> None:
    first = cli("promote", NAME, "2", "--alias", "staging")
    again = cli("promote", NAME, "2", "--alias", "staging")

    assert first[:2] == (0, "demand @staging -> v2\n")
    assert again[:2] == (0, "demand @staging is v2 already: nothing changed\n")
    assert len(registry.history(NAME, "staging")) == 1
