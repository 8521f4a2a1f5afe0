"""The import graph of optreg's modules, function-level imports included: no cycles, and the
TensorFlow runtime never reaches up to the catalogue that builds it."""

from __future__ import annotations

import ast
from pathlib import Path

import optreg

PACKAGE = Path(optreg.__file__).parent

#: Each module's layer, by the longest matching prefix of its dotted name.
LAYERS = {
    "optreg.errors": "base", "optreg.version": "base", "optreg.settings": "base", "optreg.hookspecs": "base",
    "optreg.text": "base",
    "optreg.lang": "lang",
    "optreg.model": "model",
    "optreg.spec": "spec",
    "optreg.problems": "problems",
    "optreg.runtime": "runtime",
    "optreg.plugins": "plugins",
    "optreg.catalog": "catalog",
    "optreg.serialization": "serialization",
    "optreg": "root",
    "optreg.keras": "keras",
    "optreg.bench": "bench",
    "optreg.cli": "cli", "optreg.__main__": "cli",
}
_PURE = {"base", "lang", "model", "spec"}
#: Which layers each layer may import (its own included). The runtime and the plugin host and
#: catalogue are side by side: neither imports the other, but for the one seam below.
MAY_IMPORT = {
    "base": {"base"},
    "lang": {"base", "lang"},
    "model": {"base", "lang", "model"},
    "spec": _PURE,
    "problems": {"base", "problems"},
    "runtime": _PURE | {"runtime"},
    "plugins": _PURE | {"problems", "plugins"},
    "catalog": _PURE | {"problems", "plugins", "catalog"},
    "serialization": _PURE | {"runtime", "serialization"},
    "root": _PURE | {"problems", "plugins", "catalog", "runtime", "serialization", "root"},
    "keras": _PURE | {"runtime", "root", "keras"},
    "bench": _PURE | {"problems", "plugins", "catalog", "runtime", "serialization", "root", "bench"},
    "cli": set(LAYERS.values()),
}
#: The catalogue builds optimizers through this module only (imported lazily, inside the function
#: that builds, so that listing never imports TensorFlow).
SEAM = ("optreg.catalog.entries", "optreg.runtime.build")
#: The root's one reach into the runtime: installing the catalogue's lookups.
ROOT_INTO_RUNTIME = ("optreg", "optreg.runtime.lookup")


def layer_of(module: str) -> str:
    """The layer of a dotted module name (its longest listed prefix)."""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise KeyError(module)


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


def upward_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The imports that break the layers (the seam and the root's lookup excepted)."""
    return {
        (module, imported)
        for module, targets in graph.items()
        for imported in targets
        if layer_of(imported) not in MAY_IMPORT[layer_of(module)]
        and (module, imported) not in (SEAM, ROOT_INTO_RUNTIME)
    }


def test_every_module_has_a_layer():
    assert all(layer_of(name) for name in module_names())


def test_imports_point_down_the_layers_only():
    assert upward_edges(import_graph()) == set()


def test_the_runtime_is_reached_from_the_catalogue_through_the_seam_only():
    graph = import_graph()
    into_runtime = {
        (module, imported)
        for module, targets in graph.items()
        for imported in targets
        if layer_of(module) in {"plugins", "catalog", "root"} and layer_of(imported) == "runtime"
    }
    assert into_runtime <= {SEAM, ROOT_INTO_RUNTIME}


def test_an_upward_edge_is_found_where_there_is_one():
    assert upward_edges({"optreg.runtime.optimizer": {"optreg.catalog.registry"}}) == {
        ("optreg.runtime.optimizer", "optreg.catalog.registry")
    }


def test_from_optreg_import_registry_is_the_instance_not_the_module():
    """The trap the graph has to see through: the package's ``registry`` attribute shadows the
    submodule of that name."""
    modules = module_names()
    assert _target("optreg", "registry", modules) == "optreg"
    assert _target("optreg.runtime", "lookup", modules) == "optreg.runtime.lookup"
