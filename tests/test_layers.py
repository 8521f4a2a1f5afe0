"""The import graph of optreg's modules, function-level imports included: no cycles, and the
TensorFlow runtime never reaches up to the catalogue that builds it."""

from __future__ import annotations

import ast
from pathlib import Path

import optreg

PACKAGE = Path(optreg.__file__).parent

#: The modules that run optimizers in TensorFlow. The registry builds them through one seam
#: (``OptimizerEntry.build``); they reach it back only through :mod:`optreg.lookup`.
RUNTIME = (
    "optreg.optimizer", "optreg.spec_optimizer", "optreg.keras_options", "optreg.weight_decay", "optreg.ema",
    "optreg.gradients", "optreg.schedules", "optreg.configs", "optreg.lookahead", "optreg.prodigy",
    "optreg.expr_compile", "optreg.expr_errors",
)
#: What the runtime must not import: the package's root (the default registry), the catalogue,
#: the plugin host, and everything above them (``optreg.bench`` and its modules too).
ABOVE_THE_RUNTIME = (
    "optreg", "optreg.registry", "optreg.catalog", "optreg.discovery", "optreg.entries", "optreg.plugins",
    "optreg.builtin", "optreg.serialization", "optreg.cli", "optreg.keras", "optreg.bench", "optreg.show",
)


def module_names() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


def _target(package: str, name: str, modules: dict[str, Path]) -> str:
    """What ``from package import name`` depends on: the submodule, unless the package's
    ``__init__`` binds that name to something else (``optreg.registry`` is the default Registry)."""
    candidate = f"{package}.{name}"
    if candidate in modules and name not in _bound_in_init(modules.get(package)):
        return candidate
    return package


def _bound_in_init(init: Path | None) -> set[str]:
    """The names a package's ``__init__`` assigns at its top level (they shadow submodules)."""
    if init is None or init.name != "__init__.py":
        return set()
    tree = ast.parse(init.read_text(encoding="utf-8"))
    return {
        target.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The optreg modules one module imports, anywhere in it (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "optreg")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            if base.split(".")[0] == "optreg":
                found.update(_target(base, alias.name, modules) for alias in node.names)
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    """Module → the optreg modules it imports."""
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_a_cycle_is_found_where_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_runtime_never_imports_the_catalogue_or_anything_above_it():
    graph = import_graph()
    upward = {
        (module, imported)
        for module in RUNTIME
        for imported in graph[module]
        if imported in ABOVE_THE_RUNTIME or imported.startswith("optreg.bench.")
    }
    assert not upward


def test_from_optreg_import_registry_is_the_instance_not_the_module():
    """The trap the graph has to see through: the package's ``registry`` attribute shadows the
    submodule of that name."""
    modules = module_names()
    assert _target("optreg", "registry", modules) == "optreg"
    assert _target("optreg", "lookup", modules) == "optreg.lookup"
