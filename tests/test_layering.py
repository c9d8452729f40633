"""Dependencies run one way: no module imports one from a layer above it (README: Layout)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (prefix, layer): the longest matching prefix decides a module's layer.
LAYERS = [
    ("roon.errors", 0),
    ("roon.progress", 0),
    ("roon.schema", 0),
    ("roon.mlp", 1),
    ("roon.kernels", 2),
    ("roon.ingest.loaders", 3),
    ("roon.ingest.normalize", 3),
    ("roon.ingest.tokenize", 3),
    ("roon.ingest.rows", 3),
    ("roon.ingest.derived", 3),
    ("roon.ingest.spaces", 3),
    ("roon.store", 4),
    ("roon.ingest", 5),  # the package and its jobs: pipeline, reindex, normalize_job
    ("roon.query", 5),
    # the zoo trains and plants model files (through loaders only); above ingest and query
    # so that neither can import it
    ("roon.zoo", 6),
    ("roon.zoo.demo", 7),  # `roon demo`: trains, ingests and runs where/recurring
    ("roon.cli", 8),
    ("roon.__main__", 8),
]


def layer_of(module: str) -> int | None:
    hits = [(len(p), rank) for p, rank in LAYERS if module == p or module.startswith(p + ".")]
    return max(hits)[1] if hits else None


def test_the_demo_sits_above_what_it_runs_and_nothing_below_reaches_the_zoo():
    below = ["roon.store", "roon.ingest.pipeline", "roon.query.match", "roon.query.recurring"]
    assert all(layer_of("roon.zoo.demo") > layer_of(m) for m in [*below, "roon.zoo.plant"])
    assert all(layer_of(m) < layer_of("roon.zoo.train") for m in below)
    assert layer_of("roon.cli") > layer_of("roon.zoo.demo")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "schema":
        parts = ["roon", "schema", *parts[1:]]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
            found.append((node.module, node.lineno))
    return [(m, line) for m, line in found if m.startswith("roon.")]


SOURCES = sorted([*(ROOT / "roon").rglob("*.py"), *(ROOT / "schema").rglob("*.py")])


def test_every_module_has_a_layer():
    missing = [
        _module_name(p) for p in SOURCES if p.name != "__init__.py" or p.parent.name != "roon"
    ]
    assert [m for m in missing if m != "roon" and layer_of(m) is None] == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_downwards(path: Path):
    me = _module_name(path)
    mine = layer_of(me)
    if mine is None:  # roon/__init__.py: the public API re-exports every layer lazily
        return
    upward = []
    for target, line in _imports(path):
        theirs = layer_of(target)
        # `from roon.ingest.loaders import x` names a module or an attribute: either way
        # its layer is that of the longest known prefix
        if theirs is not None and theirs > mine:
            upward.append(f"line {line}: {target} (layer {theirs} > {mine})")
    assert not upward, f"{me} imports upwards: {upward}"


def _from_imports(path: Path) -> list[tuple[str, list[str], int]]:
    """Every ``import``/``from ... import`` of a file as (module, names, line), relative
    imports made absolute (``from . import x`` in package ``p``: module ``p``)."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, *([module] if module else [])])
            found.append((module, [alias.name for alias in node.names], node.lineno))
    return found


def _is_module(name: str) -> bool:
    parts = name.split(".")
    base = ROOT / ("schema" if parts[:2] == ["roon", "schema"] else "roon")
    rest = parts[2:] if parts[:2] == ["roon", "schema"] else parts[1:]
    path = base.joinpath(*rest) if rest else base
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


PACKAGES = [p for p in SOURCES if p.name == "__init__.py" and p.parent != ROOT / "roon"]
# a package whose __init__ imports its own modules (roon.cli registers every command
# module): none of them may import a name from that __init__, which is only half run
# when they are imported — an import cycle that works or fails by import order
HUBS = {
    _module_name(p)
    for p in PACKAGES
    if any(m.startswith(_module_name(p) + ".") for m, _, _ in _from_imports(p))
}


def test_the_cli_package_is_a_hub():
    assert "roon.cli" in HUBS  # the check below covers `from roon.cli import RoonGroup`


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_the_package_that_imports_it(path: Path):
    me = _module_name(path)
    hubs = [h for h in HUBS if me.startswith(h + ".")]
    cycles = []
    for module, names, line in _from_imports(path):
        if module not in hubs:
            continue
        defined = [n for n in names if not _is_module(f"{module}.{n}")] if names else [module]
        cycles += [f"line {line}: {module} ({n})" for n in defined]
    assert not cycles, f"{me} imports from a package __init__ that imports it: {cycles}"


TESTS = sorted((ROOT / "tests").glob("*.py"))
TEST_MODULES = {p.stem for p in TESTS if p.stem.startswith("test_") or p.stem == "conftest"}


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_no_test_module_imports_another(path: Path):
    """Shared helpers live in tests/fixtures.py; a test module is never imported."""
    imported = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.append((node.module, node.lineno))
    hits = [
        f"line {line}: {name}"
        for name, line in imported
        if name.removeprefix("tests.").split(".")[0] in TEST_MODULES
    ]
    assert not hits, f"{path.name} imports a test module: {hits}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_is_imported_from_another_module(path: Path):
    """A helper two modules share is public (e.g. ``roon.cli._common.parse_int_list``)."""
    private = [
        f"line {line}: {module}.{name}"
        for module, names, line in _from_imports(path)
        for name in names
        if module.startswith("roon") and name.startswith("_") and not name.startswith("__")
    ]
    assert not private, f"{_module_name(path)} imports private names: {private}"
