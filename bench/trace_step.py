"""How much machinery one training step of fit runs, and how large fit is: sizes, not times.

    python bench/trace_step.py            # this checkout
    python bench/trace_step.py --root /some/other/checkout

Traces, with ``sys.setprofile``, the Python calls made between the end of one batch and the end of
the next (a callback starts and stops the trace at ``on_batch_end``: the loop's own per-batch
code, the training step and the hooks of one batch) on a small MLP with SGD, and prints the
distinct library files entered (the checkout's folders) and the number of Python calls. Then
``fit``'s size from its source: lines of its body without the docstring, and branches (``if``,
conditional expressions, ``for``, ``while``, ``and``/``or``, ``except``, comprehension ``for``/``if``,
counted as ast nodes), and the longest function body in the optim and estimators folders.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import sys
from pathlib import Path


def branches(node) -> int:
    """if / conditional expression / for / while / and-or / except / comprehension for and if, as ast
    nodes."""
    count = 0
    for n in ast.walk(node):
        if isinstance(n, (ast.If, ast.IfExp, ast.For, ast.While, ast.ExceptHandler)):
            count += 1
        elif isinstance(n, ast.BoolOp):
            count += len(n.values) - 1
        elif isinstance(n, ast.comprehension):
            count += 1 + len(n.ifs)
    return count


def body_lines(fn: ast.FunctionDef) -> int:
    """Lines of a function's body, its docstring left out."""
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def sizes(root: Path) -> dict:
    tree = ast.parse((root / "optim" / "training.py").read_text())
    fit = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "fit")
    longest = (0, "")
    for folder in ("optim", "estimators"):
        for path in sorted((root / folder).glob("*.py")):
            for n in ast.walk(ast.parse(path.read_text())):
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    longest = max(longest, (body_lines(n), f"{folder}/{path.name}:{n.name}"))
    return {"fit body lines": body_lines(fit), "fit branches": branches(fit),
            "longest function body (optim, estimators)": f"{longest[0]} lines ({longest[1]})"}


class Tracer:
    """A fit callback tracing every Python call from the end of batch ``start`` to the end of the next."""

    def __init__(self, root: Path, start: int = 2):
        self.root, self.start = str(root) + os.sep, start
        self.files, self.calls, self.on = set(), 0, False

    def _profile(self, frame, event, arg):
        if event == "call":
            self.calls += 1
            name = frame.f_code.co_filename
            if name.startswith(self.root) and name != __file__:   # (the tracer's own callback left out)
                self.files.add(os.path.relpath(name, self.root))

    def on_batch_end(self, run):
        if self.on:
            sys.setprofile(None)
            self.on = False
        elif run.epoch == 1 and run.batch == self.start:
            self.on = True
            sys.setprofile(self._profile)


def trace(root: Path) -> Tracer:
    import numpy as np
    layers, losses, optim = (importlib.import_module(f"lamina.{name}")
                             for name in ("layers", "losses", "optim"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 20)).astype(np.float32)
    y = rng.integers(0, 4, size=256)
    tracer = Tracer(root)
    optim.fit(layers.mlp(rng, [20, 32, 4]), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y, epochs=1,
              batch_size=32, rng=rng, progress=False, threads=1, callbacks=[tracer])
    return tracer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout to measure (imported from there)")
    root = parser.parse_args().root.resolve()
    sys.path.insert(0, str(root))
    tracer = trace(root)
    print(f"# one fit step, traced ({root})")
    print(f"library files entered: {len(tracer.files)}; Python calls: {tracer.calls}")
    for name in sorted(tracer.files):
        print(f"  {name}")
    for key, value in sizes(root).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
