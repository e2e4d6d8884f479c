"""The shape of ``ralis/`` against ``docs/architecture.md``: layers, import direction, size.

Every import of every module, including those inside functions, goes from a layer to a lower one
(or stays in its own package), only to the packages its row of the table names, and no two
modules import each other through any chain. No module is over :data:`MAX_LINES` lines.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
ROW = re.compile(r"^\|\s*(\d+)\s*\|([^|]*)\|[^|]*\|([^|]*)\|\s*$")
NAME = re.compile(r"`(ralis(?:\.\w+)*)`")
MAX_LINES = 400


@dataclass(frozen=True)
class Unit:
    """One row of the table: a package (or the foundation's modules), its layer, what it may
    import (None: everything below)."""

    layer: int
    names: tuple[str, ...]
    may: frozenset[str] | None

    @property
    def key(self) -> str:
        return self.names[0]


def read_layers() -> list[Unit]:
    rows = []
    for line in DOC.read_text().splitlines():
        found = ROW.match(line)
        if found:
            layer, packages, may = int(found[1]), NAME.findall(found[2]), found[3]
            rows.append((layer, tuple(packages), may))
    foundation = next(names for layer, names, _ in rows if layer == 0)
    units = []
    for layer, names, may in rows:
        if "everything below" in may:
            allowed = None
        else:
            allowed = {n for n in NAME.findall(may)}
            if "foundation" in may or "each other" in may:
                allowed.add(foundation[0])
        units.append(Unit(layer, names, None if allowed is None else frozenset(allowed)))
    return units


def module_files() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / "ralis").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """``[(imported ralis module, line)]`` of every import statement anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        while parts:
            if ".".join(parts) in modules:
                return ".".join(parts)
            parts.pop()
        return None

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            target = resolve(name) if name.split(".")[0] == "ralis" else None
            if target is not None and target != module:
                found.append((target, node.lineno))
    return found


def unit_of(module: str, units: list[Unit]) -> Unit | None:
    best = None
    for unit in units:
        for name in unit.names:
            covers = module == name or (name != "ralis" and module.startswith(name + "."))
            if covers and (best is None or len(name) > len(best[0])):
                best = (name, unit)
    return None if best is None else best[1]


@functools.cache
def graph() -> tuple[list[Unit], dict[str, Path], dict[str, list[tuple[str, int]]]]:
    units = read_layers()
    modules = module_files()
    return units, modules, {m: imports_of(m, p, modules) for m, p in modules.items()}


def test_the_table_names_every_package_once():
    units, modules, _ = graph()
    assert units, f"no layer table found in {DOC}"
    names = [n for u in units for n in u.names]
    assert len(names) == len(set(names)), "a package is listed twice"
    unlisted = sorted(m for m in modules if unit_of(m, units) is None)
    assert not unlisted, (f"modules in no layer of {DOC.name}: {unlisted}; add their package "
                          "to the table")
    stale = sorted(n for n in names if n not in modules)
    assert not stale, f"{DOC.name} lists packages that do not exist: {stale}"
    keys = {u.key for u in units}
    for unit in units:
        unknown = sorted((unit.may or set()) - keys)
        assert not unknown, f"{unit.key} may import unknown packages {unknown}"


def test_every_import_goes_down_to_an_allowed_package():
    units, modules, edges = graph()
    wrong = []
    for module, targets in edges.items():
        mine = unit_of(module, units)
        for target, line in targets:
            theirs = unit_of(target, units)
            if theirs is mine:
                continue
            where = f"{modules[module].relative_to(ROOT)}:{line} imports {target}"
            if theirs.layer >= mine.layer:
                wrong.append(f"{where}: layer {theirs.layer} is not below {mine.key}'s layer "
                             f"{mine.layer}")
            elif mine.may is not None and theirs.key not in mine.may:
                wrong.append(f"{where}: {theirs.key} is not among what {mine.key} may import")
    assert not wrong, "imports against docs/architecture.md:\n" + "\n".join(wrong)


def test_no_import_cycles():
    _, _, edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in module_files().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"


def test_no_benchmark_script_over_400_lines():
    long = {p.name: n for p in sorted((ROOT / "benchmarks").glob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"benchmark scripts over {MAX_LINES} lines (split them by concept): {long}"


@pytest.mark.parametrize("module, source, expected", [
    ("ralis.files.probe", "from ralis.loop.simulate import simulate\n", "layer"),
    ("ralis.files.probe", "def f():\n    from ralis.cli import main\n", "layer"),
    ("ralis.models.probe", "from ralis.run.names import MODEL_NAME\n", "not among"),
    ("ralis.models.probe", "from ralis.data.base import ClassInfo\n", None),
])
def test_the_check_catches_a_wrong_import(tmp_path, module, source, expected):
    """A known-bad import, inside a function too, is reported (the check can fail), and an
    allowed one is not."""
    units, modules, _ = graph()
    fake = tmp_path / "probe.py"
    fake.write_text(source)
    mine = unit_of(module, units)
    reasons = []
    for target, _ in imports_of(module, fake, modules):
        theirs = unit_of(target, units)
        if theirs.layer >= mine.layer:
            reasons.append("layer")
        elif mine.may is not None and theirs.key not in mine.may:
            reasons.append("not among")
    assert reasons == ([] if expected is None else [expected])
