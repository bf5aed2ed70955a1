"""The library's modules import one another without a circle (every ``from lamina.X import`` line of each)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("layers", "losses", "optim", "data", "estimators", "diagnostics")
IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(lamina(?:\.\w+)*)[ \t]+import[ \t]+(\([^)]*\)|[\w \t,]+)"
                    r"|import[ \t]+(lamina(?:\.\w+)+))", re.M)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("lamina",) + (parts[:-1] if parts[-1] == "__init__" else parts))
            found[name] = path
    return found


def imports(text: str, known: dict) -> set[str]:
    """The library modules a module's text imports.

    ``from lamina.optim import hyper`` imports the module lamina.optim.hyper (the package itself is always
    imported first, as for any of its modules); ``from lamina.optim import fit`` imports the package's
    ``__init__``.
    """
    out = set()
    for source, names, plain in IMPORT.findall(text):
        target = source or plain
        parts = re.sub(r"#[^\n]*", "", names).strip("()").split(",")
        names = [part.split()[0] for part in parts if part.split()]      # "a as b": a
        modules_named = [f"{target}.{name}" for name in names if f"{target}.{name}" in known]
        out.update(modules_named)
        if plain or len(modules_named) < len(names):
            out.add(target)
    return {m for m in out if m in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path.read_text(encoding="utf-8"), known) - {name} for name, path in known.items()}


def circle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle (a list of modules, the first repeated at the end), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_finder_finds_a_circle():
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    known = {"lamina.optim.chain": None, "lamina.optim.hyper": None, "lamina.optim": None}
    text = "from lamina.optim import hyper\n    from lamina.optim.chain import (Chain,\n  chain)  # x\n"
    assert imports(text, known) == \
        {"lamina.optim.chain", "lamina.optim.hyper"}
    assert imports("from lamina.optim import hyper, fit\n", known) == {"lamina.optim", "lamina.optim.hyper"}
    assert imports("from lamina import optim\nimport lamina.optim.chain as c\n", known) == \
        {"lamina.optim", "lamina.optim.chain"}


def test_the_library_has_no_import_circle():
    edges = graph()
    assert "lamina.optim.executor" in edges["lamina.optim.chain"]      # the graph is read
    assert circle(edges) is None, " -> ".join(circle(edges))
