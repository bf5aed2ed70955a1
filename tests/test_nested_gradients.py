"""Property: backward agrees with finite differences for randomly nested Sequence / Residual / Concat trees of
every layer (Dense, the activations, Dropout with the mask of a seeded rng, BatchNorm, LayerNorm), in training
and inference.

In training, BatchNorm makes its output independent of any constant shift of a feature, so a bias that reaches
it only through affine layers has a gradient of exactly zero, which a relative error reads as 1.0: the trees
put an activation right before every BatchNorm. LayerNorm over fewer than three features is left out: over one
its output is its bias, over two it is +-1 whatever the input, so the input's gradient is all rounding.

The tolerance is 1e-3: the property hunts wiring mistakes (a branch's gradient lost, a mode not passed on, a
cache mixed up), which give errors of order 1; deep random trees of normalizations now and then cancel a
gradient down to where finite differences keep only a few digits (1e-4 at worst in thousands of trees). Each
layer's own tests check it alone at 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lamina import layers

ELEMENTWISE = [layers.ReLU, layers.Sigmoid, layers.Tanh, layers.GELU, layers.Identity,
               lambda: layers.LeakyReLU(0.1)]
SMOOTH = [layers.Tanh, layers.Sigmoid, layers.GELU]


@st.composite
def trees(draw, n_in: int, depth: int):
    """(layer, n_out): a random layer taking (n, n_in)."""
    kinds = ["dense", "elementwise", "dropout", "batch_norm", "layer_norm"]
    if depth > 0:
        kinds += ["sequence", "residual", "concat"] * 2
    kind = draw(st.sampled_from(kinds))
    if kind == "dense":
        n_out = draw(st.integers(1, 4))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        dense = layers.Dense.init(rng, n_in, n_out, dtype=np.float64)
        bias = rng.normal(size=n_out) * 0.5                      # a bias that is not zero
        return layers.Dense(weight=dense.weight, bias=bias), n_out
    if kind == "elementwise":
        return draw(st.sampled_from(ELEMENTWISE))(), n_in
    if kind == "dropout":
        return layers.Dropout(draw(st.sampled_from([0.2, 0.5]))), n_in
    if kind == "batch_norm":
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        norm = layers.BatchNorm(weight=1 + 0.3 * rng.normal(size=n_in), bias=0.3 * rng.normal(size=n_in),
                                running_mean=0.3 * rng.normal(size=n_in), running_var=0.5 + rng.random(n_in),
                                momentum=0.1)
        # an activation right before it
        return layers.Sequence([draw(st.sampled_from(SMOOTH))(), norm]), n_in
    if kind == "layer_norm":
        # over one feature the output is its bias alone; over two, +-1 whatever x: no gradient to check
        if n_in < 3:
            return layers.Tanh(), n_in
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        weight, bias = 1 + 0.3 * rng.normal(size=n_in), 0.3 * rng.normal(size=n_in)
        return layers.LayerNorm(weight=weight, bias=bias), n_in
    if kind == "sequence":
        children, width = [], n_in
        for _ in range(draw(st.integers(1, 3))):
            child, width = draw(trees(width, depth - 1))
            children.append(child)
        return layers.Sequence(children), width
    if kind == "residual":
        inner, n_out = draw(trees(n_in, depth - 1))
        shortcut = None
        if n_out != n_in or draw(st.booleans()):
            shortcut, _ = draw(trees_of_width(n_in, n_out))
        return layers.Residual(inner, shortcut=shortcut), n_out
    branches, width = [], 0
    for _ in range(draw(st.integers(1, 3))):
        branch, n_out = draw(trees(n_in, depth - 1))
        branches.append(branch)
        width += n_out
    return layers.Concat(branches), width


@st.composite
def trees_of_width(draw, n_in, n_out):
    """A shortcut from n_in to n_out: a Dense, or a Dense then an activation."""
    dense = layers.Dense.init(np.random.default_rng(draw(st.integers(0, 2**16))), n_in, n_out,
                              dtype=np.float64)
    if draw(st.booleans()):
        return dense, n_out
    return layers.Sequence([dense, draw(st.sampled_from(SMOOTH))()]), n_out


@st.composite
def models(draw):
    n_in = draw(st.integers(1, 3))
    tree, _ = draw(trees(n_in, depth=3))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).normal(size=(draw(st.integers(3, 5)), n_in))
    return tree, x, seed


def few_values_into_batch_norm(tree, x, seed) -> bool:
    """Whether a BatchNorm in training gets a feature with fewer than three distinct values in the batch
    (dropout can zero all but one or two): its output is then the same whatever they are, and its input's
    gradient all rounding."""
    found = []

    def observe(path, layer, y):
        if isinstance(layer, layers.BatchNorm):
            found.extend(len(np.unique(np.round(column, 9))) < 3 for column in y.T)

    tree.forward(x, layers.Mode(train=True, rng=np.random.default_rng(seed), observe=observe))
    return any(found)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@settings(max_examples=40)
@given(case=models())
def test_nested_trees_pass_the_gradient_check(case, train, gradient_record):
    tree, x, seed = case
    if train:
        assume(not few_values_into_batch_norm(tree, x, seed))
    errors = layers.check_gradients(tree, x, train=train, seed=seed, tol=1e-3)
    assert "input" in errors and len(errors) == 1 + len(layers.parameters(tree))
    gradient_record.add(errors, f"nested tree train={train}")
