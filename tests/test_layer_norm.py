"""LayerNorm: each sample normalized over its last axis, as torch.nn.LayerNorm(n_features); the same in both
modes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lamina import layers

F = 4
seeds = st.integers(0, 2**32 - 1)
TRAIN = layers.Mode(train=True)


def layer_norm(rng, f=F, eps=1e-5, dtype=np.float64) -> layers.LayerNorm:
    return layers.LayerNorm(weight=rng.uniform(0.5, 2, f).astype(dtype),
                            bias=rng.standard_normal(f).astype(dtype),
                            eps=eps)


@st.composite
def batches(draw):
    shape = draw(st.sampled_from([(F,), (2, 3, F), (1, F)]))
    n = draw(st.integers(1, 5))
    x = draw(hnp.arrays(np.float64, (n, *shape), elements=st.floats(-3, 3), unique=True))
    # each row spread well beyond eps (1e-5): rows of near-equal values normalize to ~0, leaving the weight a
    # gradient of ~0 that a relative error cannot judge
    assume(np.ptp(x, axis=-1).min() > 0.1)
    return x


# ---- construction ----------------------------------------------------------------------------------

def test_init_gives_ones_and_zeros_and_the_repr_is_short():
    layer = layers.LayerNorm.init(6)
    np.testing.assert_array_equal(layer.weight, np.ones(6))
    np.testing.assert_array_equal(layer.bias, np.zeros(6))
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    assert layer.eps == 1e-5 and layers.buffers(layer) == []
    assert repr(layer) == "LayerNorm(6, float32)"
    assert repr(layers.LayerNorm.init(6, eps=1e-6, dtype=np.float64)) == "LayerNorm(6, eps=1e-06, float64)"


@pytest.mark.parametrize("eps", [0, -1.0, float("inf"), float("nan"), "1e-5", True])
def test_eps_must_be_positive(eps):
    with pytest.raises(ValueError, match=r"LayerNorm: eps must be a positive finite number"):
        layers.LayerNorm.init(3, eps=eps)


@pytest.mark.parametrize("n", [0, -2, 1.5, False])
def test_n_features_must_be_a_positive_int(n):
    with pytest.raises(ValueError, match=r"LayerNorm.init: n_features must be a positive int"):
        layers.LayerNorm.init(n)


def test_weight_and_bias_of_different_widths_are_refused():
    with pytest.raises(layers.ShapeError, match=r"LayerNorm expects bias of shape \(3,\) to match weight"):
        layers.LayerNorm(weight=np.ones(3), bias=np.zeros(2))


# ---- shapes ---------------------------------------------------------------------------------------------

def test_output_shape_keeps_the_shape_and_checks_the_last_axis():
    layer = layers.LayerNorm.init(F)
    assert layer.output_shape((F,)) == (F,)
    assert layer.output_shape((5, 5, F)) == (5, 5, F)
    assert layer.output_shape(None) is None
    with pytest.raises(layers.ShapeError):
        layer.output_shape((F + 1,))


def test_a_width_mismatch_is_a_shape_error_when_built_and_at_forward():
    rng = np.random.default_rng(0)
    with pytest.raises(layers.ShapeError, match=r"^layers\[1\] LayerNorm\(5, float32\) expects input \(n, "
                                                r"\.\.\., 5\) \(features on the last axis\), but layers\[0\] "
                                                r"Dense\(3 -> 4, float32\) gives \(n, 4\)$"):
        layers.Sequence([layers.Dense.init(rng, 3, 4), layers.LayerNorm.init(5)])
    with pytest.raises(layers.ShapeError, match=r"^LayerNorm\(5, float32\) expects .* the input is \(n, "
                                                r"4\)$"):
        layers.LayerNorm.init(5).forward(np.ones((2, 4), np.float32), layers.EVAL)


# ---- the maths ---------------------------------------------------------------------------------------

@given(x=batches(), seed=seeds)
def test_each_sample_is_normalized_over_its_last_axis_in_both_modes(x, seed):
    layer = layer_norm(np.random.default_rng(seed))
    mean = np.array([[v.mean()] for v in x.reshape(-1, F)])  # worked row by row, not over an axis
    var = np.array([[v.var()] for v in x.reshape(-1, F)])
    normalized = (x.reshape(-1, F) - mean) / np.sqrt(var + layer.eps)
    expected = (layer.weight * normalized + layer.bias).reshape(x.shape)
    y_train, _ = layer.forward(x, TRAIN)
    y_eval, _ = layer.forward(x, layers.EVAL)
    np.testing.assert_allclose(y_train, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(y_eval, y_train)
    np.testing.assert_array_equal(layer(x), y_train)


def test_one_sample_and_a_constant_sample_are_fine():
    layer = layers.LayerNorm.init(F, dtype=np.float64)
    y, cache = layer.forward(np.full((1, F), 7.0), TRAIN)
    np.testing.assert_array_equal(y, np.zeros((1, F)))
    dx, _ = layer.backward(cache, np.ones((1, F)), TRAIN)
    assert np.isfinite(dx).all()


def test_backward_leaves_the_layer_and_its_arguments_alone_and_input_grad_false_gives_no_dx():
    layer = layer_norm(np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((3, 2, F))
    dy = np.random.default_rng(3).standard_normal(x.shape)
    x0, dy0 = x.copy(), dy.copy()
    y, cache = layer.forward(x, TRAIN)
    dx, grads = layer.backward(cache, dy, TRAIN)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)
    assert layer == layer_norm(np.random.default_rng(1))
    no_dx, same = layer.backward(cache, dy, layers.Mode(train=True, input_grad=False))
    assert no_dx is None and same == grads
    np.testing.assert_allclose(grads.bias, dy.sum(axis=(0, 1)), rtol=1e-14)


@pytest.mark.parametrize("train", [True, False])
def test_float32_stays_float32(train):
    layer = layer_norm(np.random.default_rng(4), dtype=np.float32)
    x = np.random.default_rng(5).standard_normal((6, 2, F)).astype(np.float32)
    mode = layers.Mode(train=train)
    y, cache = layer.forward(x, mode)
    dx, grads = layer.backward(cache, np.ones_like(y), mode)
    assert y.dtype == dx.dtype == grads.weight.dtype == grads.bias.dtype == np.float32


# ---- gradient checks --------------------------------------------------------------------------------------

@given(x=batches(), seed=seeds, training=st.booleans())
def test_gradients(gradient_record, x, seed, training):
    errors = layers.check_gradients(layer_norm(np.random.default_rng(seed)), x, train=training, seed=seed)
    gradient_record.add(errors, "LayerNorm")


@given(seed=seeds, training=st.booleans())
def test_gradients_inside_sequence_and_residual(gradient_record, seed, training):
    rng = np.random.default_rng(seed)
    model = layers.Sequence([
        layers.Dense.init(rng, 3, F),
        layer_norm(rng, dtype=np.float32),
        layers.Residual(layers.Sequence([layers.Dense.init(rng, F, F), layers.Tanh(),
                                         layer_norm(rng, dtype=np.float32)])),
        layers.Dense.init(rng, F, 2),
    ])
    errors = layers.check_gradients(model, rng.standard_normal((5, 3)), train=training, seed=seed)
    gradient_record.add(errors, "LayerNorm in Sequence/Residual")


# ---- model files ------------------------------------------------------------------------------------------

def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    model = layers.Sequence([layers.Dense.init(rng, 3, F), layer_norm(rng, eps=1e-3, dtype=np.float32)])
    layers.save(tmp_path / "ln.npz", model)
    loaded = layers.load(tmp_path / "ln.npz")
    assert loaded == model and loaded.layers[1].eps == 1e-3
