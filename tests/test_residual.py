"""Residual(inner, shortcut=None): y = inner(x) + shortcut(x), checked against NumPy written by hand;
gradients in both modes; shape errors at build and at the first batch, named by path through any nesting;
summary; input_grad; files."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from lamina import layers


def dense(n_in, n_out, seed=0, dtype=np.float64):
    return layers.Dense.init(np.random.default_rng(seed), n_in, n_out, dtype=dtype)


def relu(v):
    return np.maximum(v, 0)


@attrs.frozen
class AddAxis(layers.Layer):
    """(n, f) -> (n, f, 1); says nothing about its output shape, so a misfit shows only at the first batch."""

    def forward(self, x, mode):
        return x[:, :, None], None

    def backward(self, cache, dy, mode):
        return dy[:, :, 0], self


x4 = np.random.default_rng(1).normal(size=(6, 4))


# ---- the numbers --------------------------------------------------------------------------------

def test_identity_shortcut_adds_the_input():
    d = dense(4, 4)
    model = layers.Residual(layers.Sequence([d, layers.ReLU()]))
    expected = relu(x4 @ d.weight + d.bias) + x4
    np.testing.assert_allclose(model(x4), expected, rtol=1e-12)
    np.testing.assert_allclose(model.forward(x4, layers.TRAIN)[0], expected, rtol=1e-12)


def test_dense_shortcut_changes_the_width():
    inner, shortcut = dense(4, 3, seed=1), dense(4, 3, seed=2)
    model = layers.Residual(layers.Sequence([inner, layers.Tanh()]), shortcut=shortcut)
    expected = np.tanh(x4 @ inner.weight + inner.bias) + (x4 @ shortcut.weight + shortcut.bias)
    np.testing.assert_allclose(model(x4), expected, rtol=1e-12)
    assert model.output_shape((4,)) == (3,)


def test_backward_by_hand_with_identity_shortcut():
    d = dense(4, 4)
    model = layers.Residual(d)
    dy = np.random.default_rng(3).normal(size=(6, 4))
    y, cache = model.forward(x4, layers.EVAL)
    dx, grads = model.backward(cache, dy, layers.EVAL)
    np.testing.assert_allclose(dx, dy @ d.weight.T + dy, rtol=1e-12)
    np.testing.assert_allclose(grads.inner.weight, x4.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(grads.inner.bias, dy.sum(axis=0), rtol=1e-12)
    assert isinstance(grads, layers.Residual) and grads.shortcut is None


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("shortcut", [None, "dense"])
def test_gradients_in_both_modes(train, shortcut, gradient_record):
    inner = layers.Sequence([dense(4, 5, 1), layers.Tanh(), layers.BatchNorm.init(5, dtype=np.float64),
                             layers.Dropout(0.3), dense(5, 3 if shortcut else 4, 2)])
    model = layers.Residual(inner, shortcut=dense(4, 3, 3) if shortcut else None)
    errors = layers.check_gradients(model, x4, train=train)
    assert set(errors) >= {"input", "inner.layers[0].weight", "inner.layers[2].weight"}
    if shortcut:
        assert "shortcut.weight" in errors
    gradient_record.add(errors, f"Residual train={train} shortcut={shortcut}")


# ---- shape errors -------------------------------------------------------------------------------

def test_inner_changing_the_width_without_shortcut_fails_at_build_with_path_and_both_shapes():
    with pytest.raises(layers.ShapeError) as caught:
        layers.Sequence([dense(3, 4), layers.ReLU(),
                         layers.Residual(layers.Sequence([dense(4, 5), layers.ReLU()]))])
    message = str(caught.value)
    assert caught.value.path == "layers[2]"
    assert message.startswith("layers[2] Residual expects")
    assert "(n, 4)" in message and "(n, 5)" in message and "shortcut" in message


def test_shortcut_of_the_wrong_width_fails_when_the_block_is_built():
    with pytest.raises(layers.ShapeError, match=r"^Residual.*shortcut's output.*\(n, 2\).*inner gives \(n, "
                                                r"3\)$"):
        layers.Residual(dense(4, 3), shortcut=dense(4, 2))     # both widths known without an input


def test_shortcut_of_the_wrong_width_fails_at_build_of_the_model_with_path():
    with pytest.raises(layers.ShapeError,
                       match=r"^layers\[1\] Residual.*shortcut's output.*\(n, 2\).*layers\[1\]\.inner gives "
                             r"\(n, 4\)$"):
        layers.Sequence([dense(3, 4), layers.Residual(layers.ReLU(), shortcut=dense(4, 2))])


def test_misfit_inside_the_inner_part_is_named_by_its_path():
    with pytest.raises(layers.ShapeError) as caught:
        layers.Sequence([dense(3, 4), layers.ReLU(),
                         layers.Residual(layers.Sequence([dense(5, 4)]))])
    assert caught.value.path == "layers[2].inner.layers[0]"
    assert str(caught.value).startswith("layers[2].inner.layers[0] Dense(5 -> 4")
    assert "(n, 5)" in str(caught.value) and "(n, 4)" in str(caught.value)


def test_a_shape_known_only_at_the_first_batch_fails_there_with_path():
    model = layers.Sequence([dense(3, 4),
                             layers.Residual(layers.Sequence([AddAxis()]))])  # builds: shape unknown
    with pytest.raises(layers.ShapeError) as caught:
        model(np.ones((2, 3)))
    assert caught.value.path == "layers[1]"
    assert "(n, 4)" in str(caught.value) and "(n, 4, 1)" in str(caught.value)
    with pytest.raises(layers.ShapeError, match=r"layers\[1\] Residual"):
        model.forward(np.ones((2, 3)), layers.TRAIN)


def test_a_misfit_deep_in_the_tree_is_named_by_its_full_path():
    deep = layers.Sequence([layers.ReLU(), layers.Residual(layers.Sequence([layers.Tanh(), dense(7, 4)]))])
    with pytest.raises(layers.ShapeError) as caught:
        layers.Sequence([dense(3, 4), layers.Sigmoid(), layers.Residual(deep)])
    assert caught.value.path == "layers[2].inner.layers[1].inner.layers[1]"
    assert "layers[2].inner.layers[1].inner.layers[0] Tanh" in str(caught.value)


# ---- nesting, summary, input_grad, files ------------------------------------------------------------

def nested():
    block = layers.Residual(layers.Sequence([dense(4, 4, 1), layers.ReLU(), layers.Residual(dense(4, 4, 2))]))
    return layers.Sequence([dense(3, 4, 3), block, layers.Residual(block, shortcut=dense(4, 4, 4)),
                            dense(4, 2, 5)])


def test_nesting_to_any_depth_computes_as_written():
    model = nested()
    x = np.random.default_rng(2).normal(size=(5, 3))
    d0, block, outer, d3 = model.layers
    b0, b2 = block.inner.layers[0], block.inner.layers[2].inner

    def block_f(h):
        a = relu(h @ b0.weight + b0.bias)
        return (a + (a @ b2.weight + b2.bias)) + h

    h = x @ d0.weight + d0.bias
    h = block_f(h)
    s = outer.shortcut
    h = block_f(h) + (h @ s.weight + s.bias)
    np.testing.assert_allclose(model(x), h @ d3.weight + d3.bias, rtol=1e-12)


def test_summary_of_a_nested_model_indents_rows_shows_shapes_and_counts_that_add_up():
    model = nested()
    text = model.summary((3,))
    rows = text.splitlines()
    assert rows[0].split() == ["path", "layer", "output", "parameters"]
    by_path = {row.split()[0]: row for row in rows[1:-1]}
    assert "  layers[1].inner" in text and "    layers[1].inner.layers[2]" in text
    assert "      layers[1].inner.layers[2].inner" in text
    assert "  layers[2].shortcut" in text
    count = {path: int(row.split()[-1].replace(",", "")) for path, row in by_path.items()}
    assert count["layers[1]"] == count["layers[1].inner"] == 2 * 20
    assert count["layers[2]"] == count["layers[2].shortcut"] == 20     # the block is shared with layers[1]
    assert count["layers[2].inner"] == 0 and "shared with layers[1]" in by_path["layers[2].inner"]
    total = sum(count[f"layers[{i}]"] for i in range(4))
    assert total == sum(p.size for p in layers.parameters(model))
    assert rows[-1] == f"total: {total:,} parameters (float64)"
    assert all("(n, 4)" in by_path[p] for p in ("layers[1]", "layers[2]", "layers[2].shortcut"))
    assert "(n, 2)" in by_path["layers[3]"]


@attrs.frozen
class InputGradSpy(layers.Layer):
    """Identity that records the input_grad it was handed (in a list it shares with its copies)."""

    seen: list = attrs.field(factory=list, eq=False)

    def forward(self, x, mode):
        return x, None

    def backward(self, cache, dy, mode):
        self.seen.append(mode.input_grad)
        return (dy if mode.input_grad else None), self


@pytest.mark.parametrize("input_grad", [True, False])
def test_input_grad_is_handed_to_the_inner_part_and_the_shortcut(input_grad):
    inner, shortcut = InputGradSpy(), InputGradSpy()
    model = layers.Residual(inner, shortcut=shortcut)
    mode = layers.Mode(input_grad=input_grad)
    y, cache = model.forward(x4, mode)
    dx, _ = model.backward(cache, np.ones_like(y), mode)
    assert inner.seen == [input_grad] and shortcut.seen == [input_grad]
    if input_grad:
        np.testing.assert_array_equal(dx, 2 * np.ones_like(y))
    else:
        assert dx is None


def test_input_grad_false_still_gives_parameter_gradients():
    model = layers.Residual(dense(4, 4))
    y, cache = model.forward(x4, layers.Mode(input_grad=False))
    dx, grads = model.backward(cache, np.ones_like(y), layers.Mode(input_grad=False))
    _, full = model.backward(cache, np.ones_like(y), layers.EVAL)
    assert dx is None
    np.testing.assert_array_equal(grads.inner.weight, full.inner.weight)


def test_save_and_load_round_trip(tmp_path):
    inner = layers.Sequence([layers.BatchNorm.init(2, dtype=np.float64), layers.Dropout(0.2)])
    model = layers.Sequence([nested(), layers.Residual(inner)])
    layers.save(tmp_path / "r.npz", model)
    loaded = layers.load(tmp_path / "r.npz")
    assert loaded == model and repr(loaded) == repr(model)
    x = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_array_equal(loaded(x), model(x))
