"""A user's own combinator (GatedSum, y = a(x) * sigmoid(b(x))) on the public seam: gradients, paths in
errors,
observe, summary, sharing and model files, as the built-ins."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from lamina import layers
from lamina.layers.layer import describe
from user_layers import GatedSum

rng = np.random.default_rng(0)


def dense(n_in, n_out, seed=0):
    return layers.Dense.init(np.random.default_rng(seed), n_in, n_out, dtype=np.float64)


def gated(n=4, m=3):
    return GatedSum(dense(n, m, 1), layers.Sequence([dense(n, m, 2), layers.Tanh()]))


def test_forward_computes_the_gated_sum():
    model = gated()
    x = rng.standard_normal((6, 4))
    a, b = model.a, model.b.layers[0]
    expected = (x @ a.weight + a.bias) / (1 + np.exp(-np.tanh(x @ b.weight + b.bias)))
    np.testing.assert_allclose(model(x), expected, rtol=1e-12)


@pytest.mark.parametrize("train", [False, True])
def test_gradients_agree_with_finite_differences_nested_and_alone(gradient_record, train):
    x = rng.standard_normal((5, 4))
    for model in (gated(), layers.Sequence([dense(4, 4, 3), layers.ReLU(), gated(), layers.Dropout(0.3)])):
        gradient_record.add(layers.check_gradients(model, x, train=train), f"GatedSum train={train}")


def test_input_grad_false_gives_no_dx_and_the_same_parameter_gradients():
    model, x = gated(), rng.standard_normal((5, 4))
    y, cache = model.forward(x, layers.EVAL)
    dx, grads = model.backward(cache, np.ones_like(y), layers.EVAL)
    none, same = model.backward(cache, np.ones_like(y), layers.Mode(input_grad=False))
    assert dx.shape == x.shape and none is None
    for g, h in zip(layers.parameters(grads), layers.parameters(same)):
        np.testing.assert_array_equal(g, h)


def test_a_misfit_inside_is_named_by_its_path_at_build():
    with pytest.raises(layers.ShapeError) as caught:
        layers.Sequence([dense(3, 4), GatedSum(dense(4, 2), layers.Sequence([layers.ReLU(), dense(5, 2)]))])
    assert caught.value.path == "layers[1].b.layers[1]"
    assert "layers[1].b.layers[0] ReLU() gives (n, 4)" in str(caught.value)


def test_branches_that_do_not_combine_are_refused_naming_the_branch():
    with pytest.raises(layers.ShapeError) as caught:
        GatedSum(dense(4, 2), dense(4, 3))
    assert caught.value.source == "b" and str(caught.value).endswith("b gives (n, 3)")
    with pytest.raises(layers.ShapeError) as caught:
        layers.Sequence([dense(3, 4), GatedSum(dense(4, 2), layers.ReLU())])
    assert caught.value.path == "layers[1]" and caught.value.source == "layers[1].b"


def test_observe_sees_every_child_by_its_full_path():
    seen = []
    model = layers.Sequence([dense(4, 4), gated()])
    model.forward(rng.standard_normal((2, 4)), layers.Mode(observe=lambda path, layer, y: seen.append(path)))
    assert seen == ["layers[0]", "layers[1].a", "layers[1].b.layers[0]", "layers[1].b.layers[1]",
                    "layers[1].b", "layers[1]"]


def test_summary_has_a_row_per_child_with_shapes_and_counts():
    text = layers.Sequence([dense(4, 4), gated()]).summary((4,))
    assert "  layers[1].a  " in text and "    layers[1].b.layers[1]" in text
    row = next(line for line in text.splitlines() if line.startswith("layers[1] "))
    assert row.endswith("(n, 3)          30")
    assert text.splitlines()[-1] == "total: 50 parameters (float64)"


def test_it_saves_and_loads_with_register_and_shares_a_record(tmp_path):
    d = dense(4, 4)
    model = layers.Sequence([d, GatedSum(d, layers.Sequence([d, layers.Tanh()]))])
    layers.save(tmp_path / "g.npz", model)
    back = layers.load(tmp_path / "g.npz")
    assert back == model and back.layers[0] is back.layers[1].a is back.layers[1].b.layers[0]
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(back(x), model(x))
    layers.check_gradients(model, x)


def test_the_seam_needs_no_private_name():
    import inspect
    source = inspect.getsource(GatedSum)
    assert "self._" not in source and "layers._" not in source


@attrs.frozen(repr=False)
class Plain(layers.Layer):
    """A record with object's repr: '<test_user_combinator.Plain object at 0x...>', under 60 characters."""

    def forward(self, x, mode):
        return x, None

    def backward(self, cache, dy, mode):
        return dy, self


def test_a_record_without_a_repr_of_its_own_is_named_by_its_class_in_messages():
    assert len(repr(Plain())) <= 60
    assert describe(Plain()) == "Plain"
    assert "object at 0x" not in layers.Sequence([Plain()]).summary((3,))
