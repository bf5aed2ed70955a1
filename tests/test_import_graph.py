"""The library's import graph: dependencies point one way (DESIGN's layout) and no module imports itself
back."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("layers", "losses", "optim", "data", "estimators", "diagnostics")

MAY_IMPORT = {
    "layers": set(),
    "losses": {"layers"},
    "data": {"layers"},
    "optim": {"layers", "losses", "data"},
    "estimators": {"optim", "layers", "losses", "data"},
    "diagnostics": {"optim", "layers", "losses", "data"},
}
"""package -> the sibling packages it may import (estimators, diagnostics -> optim -> layers, losses,
data)."""

LEAF_MODULES_OF_LAYERS = ("lamina.layers.errors", "lamina.layers.settings", "lamina.layers.records.finite",
                          "lamina.layers.maths", "lamina.layers.split_rows")
"""What losses and data may take from layers: the error types, the setting checks, the NaN scan, the maths."""


def library_imports():
    """(package, file, imported module) for every ``lamina.`` import of a library module, lazy ones
    included."""
    for package in PACKAGES:
        for source in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text(), str(source))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names
                                             if node.module == "lamina"]
                else:
                    continue
                for name in names:
                    if name.startswith("lamina."):
                        yield package, source.relative_to(ROOT), name


def test_packages_import_only_the_packages_below_them():
    wrong = [f"{file} imports {name}" for package, file, name in library_imports()
             if name.split(".")[1] in PACKAGES and name.split(".")[1] != package
             and name.split(".")[1] not in MAY_IMPORT[package]]
    graph = "estimators, diagnostics -> optim -> layers, losses, data"
    assert not wrong, f"imports against {graph}:\n" + "\n".join(wrong)


def test_losses_and_data_take_only_errors_settings_and_maths_from_layers():
    wrong = [f"{file} imports {name}" for package, file, name in library_imports()
             if package in ("losses", "data") and name.split(".")[1] == "layers"
             and not name.startswith(LEAF_MODULES_OF_LAYERS)]
    assert not wrong, "\n".join(wrong)


def module_name(source: Path) -> str:
    parts = source.relative_to(ROOT).with_suffix("").parts
    return "lamina." + ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph() -> dict[str, set[str]]:
    """module -> the library modules it imports, lazy imports inside functions included (they hide a circle).

    ``from package import name`` points at the submodule ``package.name`` when there is one, else at the
    package.
    """
    sources = {module_name(source): source
               for package in PACKAGES for source in (ROOT / package).rglob("*.py")}
    graph = {}
    for module, source in sources.items():
        graph[module] = set()
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            absolute = isinstance(node, ast.ImportFrom) and node.level == 0
            if absolute and (node.module or "").startswith("lamina."):
                graph[module].update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in sources
                                     else node.module for alias in node.names)
            elif isinstance(node, ast.Import):
                graph[module].update(alias.name for alias in node.names)
        graph[module] &= set(sources) - {module}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph (its modules, the first repeated at the end), or None."""
    done, path = set(), []

    def visit(module):
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        path.append(module)
        for name in sorted(graph[module]):
            circle = visit(name)
            if circle:
                return circle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        circle = visit(module)
        if circle:
            return circle
    return None


def test_find_circle_finds_a_circle_and_only_a_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_library_module_imports_itself_back():
    circle = find_circle(module_graph())
    assert circle is None, "import circle: " + " -> ".join(circle)
