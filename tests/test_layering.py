"""The package's layers follow the data's way: a lower layer never imports a higher one, and no two
modules import each other (directly or round a loop), whether at the top of a module or inside a
function.

data < features < models < training < monitoring < registry < serving < pipeline < worker, cli; config
and errors sit below everything, web beside serving.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "salescast"

RANKS = {
    "config": 0,
    "errors": 0,
    "__init__": 0,
    "data": 1,
    "features": 2,
    "models": 3,
    "training": 4,
    "monitoring": 5,
    "registry": 6,
    "serving": 7,
    "web": 7,
    "pipeline": 8,
    "worker": 9,
    "cli": 9,
    "__main__": 10,
}


def _modules(root: Path) -> dict[str, Path]:
    package = root.name
    return {
        ".".join((package, *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): path
        for path in root.rglob("*.py")
        if "migrations" not in path.parts
    }


def _imports(path: Path, package: str) -> set[str]:
    """Every module of `package` that `path` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == package or name.startswith(f"{package}.")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward_imports(root: Path) -> list[str]:
    """`a (layer) -> b (layer)` for every import of a higher layer from a lower one under `root`."""
    modules = _modules(root)
    problems = []
    for module, path in sorted(modules.items()):
        mine = _layer(module)
        for imported in sorted(_imports(path, root.name)):
            if imported not in modules:
                continue  # a name imported from a module, listed with its module already
            theirs = _layer(imported)
            if theirs != mine and RANKS.get(theirs, 99) > RANKS.get(mine, 99):
                problems.append(f"{module} ({mine}) -> {imported} ({theirs})")
    return problems


def import_cycles(root: Path) -> list[list[str]]:
    """Groups of modules that import each other round a loop (strongly connected, more than one)."""
    modules = _modules(root)
    graph = {m: sorted(i for i in _imports(p, root.name) if i in modules and i != m) for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in graph[node]:
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_layer_imports_a_higher_one() -> None:
    assert upward_imports(PACKAGE) == []


def test_no_modules_import_each_other() -> None:
    assert import_cycles(PACKAGE) == []


def test_every_top_level_part_of_the_package_has_a_layer() -> None:
    parts = {
        path.stem
        for path in PACKAGE.iterdir()
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert parts - set(RANKS) == set()


@pytest.fixture
def tiny_package(tmp_path: Path) -> Path:
    root = tmp_path / "salescast"
    for folder in ("data", "serving", "models"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "serving" / "app.py").write_text("from salescast.data.store import load\n")
    (root / "data" / "store.py").write_text("def load():\n    return 1\n")
    return root


def test_the_check_catches_an_upward_import_added_inside_a_function(tiny_package: Path) -> None:
    assert upward_imports(tiny_package) == []

    (tiny_package / "data" / "store.py").write_text(
        "def load():\n    from salescast.serving.app import load as again\n    return again\n"
    )

    assert upward_imports(tiny_package) == ["salescast.data.store (data) -> salescast.serving.app (serving)"]


def test_the_check_catches_two_modules_importing_each_other(tiny_package: Path) -> None:
    (tiny_package / "models" / "catalog.py").write_text("from salescast.models import ensemble\n")
    (tiny_package / "models" / "ensemble.py").write_text("def load():\n    from salescast.models.catalog import x\n")

    assert import_cycles(tiny_package) == [["salescast.models.catalog", "salescast.models.ensemble"]]
