"""lamina: a small functional neural-network library on NumPy and attrs.

    import lamina as lm
    model = lm.layers.mlp(rng, [784, 128, 10])

The subpackages (``layers``, ``losses``, ``optim``, ``data``, ``estimators``, ``diagnostics``)
are imported on first use, so ``import lamina`` stays cheap and never imports an extra.
"""

from __future__ import annotations

import importlib
import os

__version__ = "0.3.0.dev0"

SUBPACKAGES = ("layers", "losses", "optim", "data", "estimators", "diagnostics")

# In a source checkout the subpackages are the folders beside this one (setup.cfg maps them the same way
# when installing): the checkout's root joins the package's path, so ``python -c "import lamina"`` works
# from the repository root and pytest imports the checkout it runs in.
_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_root, "layers", "__init__.py")) and _root not in __path__:
    __path__.append(_root)

__all__ = ["__version__", *SUBPACKAGES]


def __getattr__(name: str):
    if name in SUBPACKAGES:
        module = importlib.import_module(f"lamina.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'lamina' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(SUBPACKAGES))
