"""The ONNX forms of the built-in layers: a table from layer class to ``(layer, graph, x) -> y``.

A form is registered with ``@form(Class)`` in the module of its family (``dense``, ``normalization``,
``convolution``, ``reshape``, ``combinators``, ``sequences``, ``recurrent``, ``attention``); ``FORMS`` is
complete once ``load()`` has imported them all.
"""

from __future__ import annotations

import importlib

FORMS: dict = {}

FAMILIES = ("dense", "normalization", "convolution", "reshape", "combinators", "sequences", "recurrent",
            "attention")


def form(*classes):
    """Register the decorated function as the ONNX form of ``classes``."""
    def register(function):
        for cls in classes:
            FORMS[cls] = function
        return function
    return register


def load() -> dict:
    """FORMS, with every family's module imported."""
    for family in FAMILIES:
        importlib.import_module(f"lamina.layers.onnx.{family}")
    return FORMS
