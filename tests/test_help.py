"""help() on a public record class reads well: its docstring, then its constructor and fields, before attrs'
generated methods."""

from __future__ import annotations

import pydoc

import attrs
import numpy as np
import pytest

from lamina import layers


def first_lines(cls) -> str:
    """What help(cls) shows before its first section (the method resolution order or the methods)."""
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    return text[: min(text.find(s) % len(text) for s in ("Method resolution order", "Methods defined here"))]


def test_help_of_dense_shows_its_docstring_then_init_and_the_fields_before_any_attrs_name():
    text = pydoc.render_doc(layers.Dense, renderer=pydoc.plaintext)
    head = first_lines(layers.Dense)
    assert head.index("y = x @ weight + bias") < head.index("Dense.init(rng, n_in, n_out, dtype=np.float32")
    assert "fields: weight (trainable), bias (trainable)" in head
    assert "__attrs_" not in head and "__eq__" not in head
    assert text.index("Dense.init(") < text.index("__eq__") < text.index("__attrs_attrs__")


@pytest.mark.parametrize("cls, shown", [
    (layers.BatchNorm, "running_mean (buffer)"),
    (layers.Conv2D, "Conv2D.init(rng, in_channels, out_channels, kernel_size, *, stride=1"),
    (layers.Sequence, "fields: layers (setting)"),
    (layers.Residual, "fields: inner (setting), shortcut (setting)"),
    (layers.ReLU, "fields: none"),
])
def test_every_registered_class_gets_the_outline(cls, shown):
    assert shown in first_lines(cls)


def test_a_user_class_registered_twice_keeps_one_outline():
    @attrs.frozen
    class Twice:
        """y = x."""

        gain: np.ndarray = layers.param()

    layers.register(Twice, name="HelpTwice")
    layers.register(Twice, name="HelpTwice")
    assert Twice.__doc__.count("At a glance:") == 1
    assert Twice.__doc__.startswith("y = x.\n\nAt a glance:\n    fields: gain (trainable)")
