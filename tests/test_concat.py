"""Concat(branches): every branch gets x, outputs joined on the last axis, dx the sum of the branches' dx;
checked against NumPy by hand, gradients in both modes, shape errors at build and at the first batch by path,
nesting, summary, input_grad handed to every branch, files."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from lamina import layers


def dense(n_in, n_out, seed=0, dtype=np.float64):
    return layers.Dense.init(np.random.default_rng(seed), n_in, n_out, dtype=dtype)


@attrs.frozen
class AddAxis(layers.Layer):
    """(n, f) -> (n, f, 1), output shape unknown to the combinators (a misfit shows at the first batch)."""

    def forward(self, x, mode):
        return x[:, :, None], None

    def backward(self, cache, dy, mode):
        return dy[:, :, 0], self


@attrs.frozen
class InputGradSpy(layers.Layer):
    """Identity that records the input_grad each backward was handed."""

    seen: list = attrs.field(factory=list, eq=False)

    def forward(self, x, mode):
        return x, None

    def backward(self, cache, dy, mode):
        self.seen.append(mode.input_grad)
        return (dy if mode.input_grad else None), self


x4 = np.random.default_rng(1).normal(size=(6, 4))


def test_outputs_are_joined_on_the_last_axis():
    a, b = dense(4, 3, 1), dense(4, 2, 2)
    model = layers.Concat([a, layers.Sequence([b, layers.Tanh()]), layers.Identity()])
    expected = np.concatenate([x4 @ a.weight + a.bias, np.tanh(x4 @ b.weight + b.bias), x4], axis=1)
    np.testing.assert_allclose(model(x4), expected, rtol=1e-12)
    assert model.output_shape((4,)) == (9,) and model(x4).shape == (6, 9)


def test_backward_sums_the_branches_input_gradients_by_hand():
    a, b = dense(4, 3, 1), dense(4, 2, 2)
    model = layers.Concat([a, b, layers.Identity()])
    y, cache = model.forward(x4, layers.EVAL)
    dy = np.random.default_rng(5).normal(size=y.shape)
    dx, grads = model.backward(cache, dy, layers.EVAL)
    np.testing.assert_allclose(dx, dy[:, :3] @ a.weight.T + dy[:, 3:5] @ b.weight.T + dy[:, 5:], rtol=1e-12)
    np.testing.assert_allclose(grads.branches[0].weight, x4.T @ dy[:, :3], rtol=1e-12)
    np.testing.assert_allclose(grads.branches[1].bias, dy[:, 3:5].sum(axis=0), rtol=1e-12)
    assert isinstance(grads, layers.Concat) and len(grads.branches) == 3


def test_channels_last_images_join_on_the_channel_axis():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4))
    model = layers.Concat([layers.ReLU(), layers.BatchNorm.init(4, dtype=np.float64)])
    y = model(x)
    assert y.shape == (2, 3, 3, 8)
    np.testing.assert_allclose(y[..., :4], np.maximum(x, 0))
    assert model.output_shape((3, 3, 4)) == (3, 3, 8)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_gradients_in_both_modes(train, gradient_record):
    model = layers.Concat([
        dense(4, 3, 1),
        layers.Sequence([dense(4, 5, 2), layers.GELU(), layers.BatchNorm.init(5, dtype=np.float64)]),
        layers.Sequence([layers.Dropout(0.4), layers.LayerNorm.init(4, dtype=np.float64)]),
        layers.Residual(layers.Sequence([dense(4, 4, 3), layers.Tanh()]), shortcut=dense(4, 4, 4)),
    ])
    errors = layers.check_gradients(model, x4, train=train)
    assert {"input", "branches[0].weight", "branches[1].layers[2].weight",
            "branches[3].shortcut.bias"} <= set(errors)
    gradient_record.add(errors, f"Concat train={train}")


def test_a_shortcut_as_concat_of_residuals_passes_the_gradient_check_in_a_model(gradient_record):
    model = layers.Sequence([dense(4, 6, 1), layers.LeakyReLU(0.1),
                             layers.Concat([layers.Residual(dense(6, 6, 2)), dense(6, 2, 3)]),
                             dense(8, 3, 4)])
    errors = layers.check_gradients(model, x4, train=True)
    gradient_record.add(errors, "Concat inside a Sequence")


# ---- shape errors -------------------------------------------------------------------------------------

@attrs.frozen
class Widen(AddAxis):
    """AddAxis that says its output shape, so the misfit is known at build."""

    def output_shape(self, s):
        return None if s is None else (*s, 1)


def test_branches_that_cannot_be_joined_fail_at_build_with_path_and_both_shapes():
    with pytest.raises(layers.ShapeError) as caught:
        layers.Sequence([dense(3, 4), layers.ReLU(), layers.Concat([dense(4, 2), Widen()])])
    error = caught.value
    assert error.path == "layers[2]" and error.source == "layers[2].branches[1]"
    assert str(error).startswith("layers[2] Concat(2 branches) expects every branch's output shaped like "
                                 "branches[0]'s")
    assert "(n, ...)" in str(error) and str(error).endswith("layers[2].branches[1] gives (n, 4, 1)")


def test_a_misfit_inside_a_branch_is_named_by_path():
    with pytest.raises(layers.ShapeError) as caught:
        layers.Sequence([dense(3, 4),
                         layers.Concat([dense(4, 2), layers.Sequence([layers.ReLU(), dense(5, 1)])])])
    assert caught.value.path == "layers[1].branches[1].layers[1]"
    assert "layers[1].branches[1].layers[0] ReLU() gives (n, 4)" in str(caught.value)
    assert "expects input (n, 5)" in str(caught.value)


def test_a_misfit_known_only_at_the_first_batch_fails_there_with_path():
    model = layers.Sequence([dense(3, 4), layers.Concat([dense(4, 2), layers.Sequence([AddAxis()])])])
    with pytest.raises(layers.ShapeError) as caught:
        model(np.ones((2, 3)))
    assert caught.value.path == "layers[1]"
    assert str(caught.value).startswith("layers[1] Concat(2 branches)")
    assert "(n, 4, 1)" in str(caught.value)
    with pytest.raises(layers.ShapeError, match=r"^layers\[1\] Concat"):
        model.forward(np.ones((2, 3)), layers.TRAIN)


def test_a_deep_misfit_is_named_through_every_combinator():
    deep = layers.Concat([layers.Identity(), layers.Residual(layers.Sequence([layers.Tanh(), dense(9, 4)]))])
    with pytest.raises(layers.ShapeError) as caught:
        layers.Sequence([dense(3, 4), layers.ReLU(), layers.Residual(deep, shortcut=dense(4, 8))])
    assert caught.value.path == "layers[2].inner.branches[1].inner.layers[1]"


def test_an_empty_or_single_record_argument_is_refused():
    with pytest.raises(ValueError, match="at least one branch"):
        layers.Concat([])
    with pytest.raises(TypeError, match=r"Concat\(\[a, b, \.\.\.\]\)"):
        layers.Concat(dense(2, 2))


# ---- nesting, summary, input_grad, files ----------------------------------------------------------------

def nested():
    return layers.Sequence([
        dense(3, 4, 1),
        layers.Concat([layers.Sequence([dense(4, 2, 2), layers.ReLU()]),
                       layers.Concat([dense(4, 1, 3), layers.Residual(dense(4, 4, 4))])]),
        dense(7, 2, 5),
    ])


def test_nested_concat_computes_as_written():
    model = nested()
    x = np.random.default_rng(3).normal(size=(5, 3))
    d0, cat, d2 = model.layers
    a, b, r = cat.branches[0].layers[0], cat.branches[1].branches[0], cat.branches[1].branches[1].inner
    h = x @ d0.weight + d0.bias
    h = np.concatenate([np.maximum(h @ a.weight + a.bias, 0), h @ b.weight + b.bias,
                        h @ r.weight + r.bias + h], 1)
    np.testing.assert_allclose(model(x), h @ d2.weight + d2.bias, rtol=1e-12)


def test_summary_of_nested_concat():
    text = nested().summary((3,))
    rows = {row.split()[0]: row for row in text.splitlines()[1:-1]}
    assert "  layers[1].branches[1]" in text and "    layers[1].branches[1].branches[1]" in text
    assert "      layers[1].branches[1].branches[1].inner" in text
    counts = {p: int(r.split()[-1]) for p, r in rows.items()}
    assert counts["layers[1]"] == counts["layers[1].branches[0]"] + counts["layers[1].branches[1]"] == 10 + 25
    assert "(n, 7)" in rows["layers[1]"] and "(n, 5)" in rows["layers[1].branches[1]"]
    assert text.splitlines()[-1] == f"total: {16 + 35 + 16} parameters (float64)"


@pytest.mark.parametrize("input_grad", [True, False])
def test_input_grad_is_handed_to_every_branch(input_grad):
    spies = [InputGradSpy(), InputGradSpy(), InputGradSpy()]
    model = layers.Concat(spies)
    mode = layers.Mode(input_grad=input_grad)
    y, cache = model.forward(x4, mode)
    dx, _ = model.backward(cache, np.ones_like(y), mode)
    assert [s.seen for s in spies] == [[input_grad]] * 3
    assert (dx is None) if not input_grad else np.array_equal(dx, 3 * np.ones_like(x4))


def test_save_and_load_round_trip(tmp_path):
    model = layers.Sequence([nested(),
                             layers.Concat([layers.BatchNorm.init(2, dtype=np.float64), layers.GELU()])])
    layers.save(tmp_path / "c.npz", model)
    loaded = layers.load(tmp_path / "c.npz")
    assert loaded == model and repr(loaded) == repr(model)
    x = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_array_equal(loaded(x), model(x))
