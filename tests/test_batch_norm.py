"""BatchNorm: batch statistics in training (running statistics returned by backward), running statistics in
inference.

Expected values are worked out here from the formulas with NumPy, on the input reshaped to
(values per feature, features): an independent route from the layer's reduction over axes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lamina import layers

F = 3
seeds = st.integers(0, 2**32 - 1)
TRAIN = layers.Mode(train=True)


def batch_norm(rng, f=F, momentum=0.1, eps=1e-5, dtype=np.float64) -> layers.BatchNorm:
    """A BatchNorm with non-trivial weight, bias and running statistics."""
    return layers.BatchNorm(weight=rng.uniform(0.5, 2, f).astype(dtype),
                            bias=rng.standard_normal(f).astype(dtype),
                            running_mean=rng.standard_normal(f).astype(dtype),
                            running_var=rng.uniform(0.5, 2, f).astype(dtype), momentum=momentum, eps=eps)


def by_feature(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1])


def normalized(layer, x, mean, var):
    return layer.weight * (x - mean) / np.sqrt(var + layer.eps) + layer.bias


sample_shapes = st.sampled_from([(F,), (2, 2, F), (1, 3, F)])


@st.composite
def batches(draw, min_n=2):
    shape = draw(sample_shapes)
    n = draw(st.integers(min_n, 6))
    return draw(hnp.arrays(np.float64, (n, *shape), elements=st.floats(-3, 3), unique=True))


# ---- construction --------------------------------------------------------------------------------

def test_init_gives_torch_s_initial_state():
    layer = layers.BatchNorm.init(4)
    np.testing.assert_array_equal(layer.weight, np.ones(4))
    np.testing.assert_array_equal(layer.bias, np.zeros(4))
    np.testing.assert_array_equal(layer.running_mean, np.zeros(4))
    np.testing.assert_array_equal(layer.running_var, np.ones(4))
    assert (layer.momentum, layer.eps) == (0.1, 1e-5)
    assert {a.dtype for a in layers.parameters(layer) + layers.buffers(layer)} == {np.dtype(np.float32)}
    assert [name for name, _ in layers.named_parameters(layer)] == ["weight", "bias"]
    assert [name for name, _ in layers.named_buffers(layer)] == ["running_mean", "running_var"]
    assert layers.BatchNorm.init(2, dtype=np.float64).weight.dtype == np.float64


def test_repr_is_short_and_names_settings_that_are_not_the_default():
    assert repr(layers.BatchNorm.init(16)) == "BatchNorm(16, float32)"
    assert repr(layers.BatchNorm.init(8, momentum=0.01, eps=1e-3, dtype=np.float64)) == \
        "BatchNorm(8, momentum=0.01, eps=0.001, float64)"


@pytest.mark.parametrize("momentum", [-0.1, 1.5, float("nan"), "0.1", True, None])
def test_momentum_outside_0_1_is_refused(momentum):
    with pytest.raises(ValueError, match=r"BatchNorm: momentum must be a number in \[0, 1\]"):
        layers.BatchNorm.init(3, momentum=momentum)


@pytest.mark.parametrize("momentum", [0, 1, 0.5])
def test_momentum_0_and_1_are_allowed(momentum):
    assert layers.BatchNorm.init(3, momentum=momentum).momentum == momentum


@pytest.mark.parametrize("eps", [0, -1e-5, float("inf"), float("nan"), "1e-5"])
def test_eps_must_be_positive(eps):
    with pytest.raises(ValueError, match=r"BatchNorm: eps must be a number in \(0, inf\)"):
        layers.BatchNorm.init(3, eps=eps)


@pytest.mark.parametrize("n", [0, -1, 2.5, True, "3"])
def test_n_features_must_be_a_positive_int(n):
    with pytest.raises(ValueError, match=r"BatchNorm.init: n_features must be a positive int"):
        layers.BatchNorm.init(n)


def test_arrays_of_different_widths_are_refused():
    with pytest.raises(layers.ShapeError, match=r"BatchNorm expects running_var of shape \(3,\) to match "
                                                r"weight"):
        layers.BatchNorm(weight=np.ones(3), bias=np.zeros(3), running_mean=np.zeros(3),
                         running_var=np.ones(4))


# ---- shapes ------------------------------------------------------------------------------------------

def test_output_shape_keeps_the_shape_and_checks_the_last_axis():
    layer = layers.BatchNorm.init(4)
    assert layer.output_shape((4,)) == (4,)
    assert layer.output_shape((8, 8, 4)) == (8, 8, 4)
    assert layer.output_shape(None) is None
    assert layer.output_shape((8, 8, None)) == (8, 8, None)
    for shape in [(5,), (4, 8), ()]:
        with pytest.raises(layers.ShapeError):
            layer.output_shape(shape)


def test_a_width_mismatch_is_a_shape_error_when_built():
    rng = np.random.default_rng(0)
    with pytest.raises(layers.ShapeError, match=r"^layers\[1\] BatchNorm\(5, float32\) expects input \(n, "
                                                r"\.\.\., 5\) \(features on the last axis\), but layers\[0\] "
                                                r"Dense\(3 -> 4, float32\) gives \(n, 4\)$"):
        layers.Sequence([layers.Dense.init(rng, 3, 4), layers.BatchNorm.init(5)])


@pytest.mark.parametrize("mode", [layers.TRAIN, layers.EVAL])
def test_a_width_mismatch_is_a_shape_error_at_forward(mode):
    with pytest.raises(layers.ShapeError, match=r"^BatchNorm\(5, float32\) expects input \(n, \.\.\., 5\) .* "
                                                r"the input is \(n, 2, 2, 4\)$"):
        layers.BatchNorm.init(5).forward(np.ones((3, 2, 2, 4), np.float32), mode)
    with pytest.raises(layers.ShapeError, match=r"the input is \(n\)$"):
        layers.BatchNorm.init(5).forward(np.ones(5, np.float32), mode)


# ---- training ----------------------------------------------------------------------------------------

@given(x=batches(), seed=seeds)
def test_training_normalizes_with_the_batch_mean_and_biased_variance(x, seed):
    layer = batch_norm(np.random.default_rng(seed))
    y, _ = layer.forward(x, TRAIN)
    values = by_feature(x)
    np.testing.assert_allclose(y, normalized(layer, x, values.mean(axis=0), values.var(axis=0)), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("sample_shape", [(F,), (4, 5, F)])
def test_running_statistics_after_several_steps_follow_torch_s_update(sample_shape):
    rng = np.random.default_rng(0)
    momentum = 0.3
    layer = layers.BatchNorm.init(F, momentum=momentum, dtype=np.float64)
    mean, var = np.zeros(F), np.ones(F)  # worked by hand alongside
    for step in range(5):
        x = rng.normal(step, 1 + step, (6, *sample_shape))
        y, cache = layer.forward(x, TRAIN)
        _, grads = layer.backward(cache, rng.standard_normal(y.shape), TRAIN)
        layer = layers.update_buffers(layer, grads)
        values = by_feature(x)
        m = len(values)
        mean = (1 - momentum) * mean + momentum * values.mean(axis=0)
        # unbiased, as torch keeps it
        var = (1 - momentum) * var + momentum * values.var(axis=0) * m / (m - 1)
        np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-13)
        np.testing.assert_allclose(layer.running_var, var, rtol=1e-13)


@pytest.mark.parametrize("momentum", [0.0, 1.0])
def test_momentum_0_keeps_the_running_statistics_and_1_takes_the_batch_s(momentum):
    layer = batch_norm(np.random.default_rng(1), momentum=momentum)
    x = np.random.default_rng(2).standard_normal((10, F))
    y, cache = layer.forward(x, TRAIN)
    _, grads = layer.backward(cache, np.ones_like(y), TRAIN)
    if momentum == 0:
        np.testing.assert_array_equal(grads.running_mean, layer.running_mean)
        np.testing.assert_array_equal(grads.running_var, layer.running_var)
    else:
        np.testing.assert_allclose(grads.running_mean, x.mean(axis=0), rtol=1e-14)
        np.testing.assert_allclose(grads.running_var, x.var(axis=0, ddof=1), rtol=1e-14)


def test_training_backward_leaves_the_layer_and_its_arguments_alone():
    layer = batch_norm(np.random.default_rng(3))
    before = batch_norm(np.random.default_rng(3))
    x = np.random.default_rng(4).standard_normal((5, 2, 2, F))
    dy = np.random.default_rng(5).standard_normal(x.shape)
    x0, dy0 = x.copy(), dy.copy()
    y, cache = layer.forward(x, TRAIN)
    dx, grads = layer.backward(cache, dy, TRAIN)
    assert layer == before
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)
    assert not np.array_equal(grads.running_mean, layer.running_mean)


@pytest.mark.parametrize("shape", [(1, F), (1, 1, 1, F)])
def test_training_refuses_one_value_per_feature_with_the_layer_named(shape):
    with pytest.raises(layers.LayerError, match=r"^BatchNorm\(3, float32\): training needs more than one "
                                                r"value per feature for the batch statistics, but the batch "
                                                rf"of shape \({shape[0]}, .*\) has 1"):
        layers.BatchNorm.init(F).forward(np.ones(shape, np.float32), TRAIN)


def test_one_value_per_feature_is_named_by_path_in_a_model_and_fine_in_inference():
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Dense.init(rng, 2, F), layers.Residual(layers.BatchNorm.init(F))])
    x = np.ones((1, 2), np.float32)
    with pytest.raises(layers.LayerError, match=r"^layers\[1\]\.inner BatchNorm\(3, float32\): training "
                                                r"needs more"):
        model.forward(x, TRAIN)
    assert model(x).shape == (1, F)


def test_one_sample_of_an_image_is_enough_for_training():
    y, _ = layers.BatchNorm.init(F).forward(np.arange(12.0, dtype=np.float32).reshape(1, 2, 2, F), TRAIN)
    assert y.shape == (1, 2, 2, F)


# ---- inference ---------------------------------------------------------------------------------------

@given(x=batches(min_n=1), seed=seeds)
def test_inference_normalizes_with_the_running_statistics_and_returns_them_unchanged(x, seed):
    layer = batch_norm(np.random.default_rng(seed))
    y, cache = layer.forward(x, layers.EVAL)
    np.testing.assert_allclose(y, normalized(layer, x, layer.running_mean, layer.running_var), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_array_equal(layer(x), y)
    dy = np.random.default_rng(seed).standard_normal(x.shape)
    dx, grads = layer.backward(cache, dy, layers.EVAL)
    np.testing.assert_allclose(dx, dy * layer.weight / np.sqrt(layer.running_var + layer.eps), rtol=1e-13)
    assert grads.running_mean is layer.running_mean and grads.running_var is layer.running_var


def test_train_and_eval_differ_exactly_by_the_statistics_they_use():
    rng = np.random.default_rng(6)
    layer = batch_norm(rng)
    x = rng.normal(2.0, 3.0, (8, 2, 2, F))
    y_train, _ = layer.forward(x, TRAIN)
    y_eval, _ = layer.forward(x, layers.EVAL)
    assert not np.allclose(y_train, y_eval)
    # with the batch's own mean and biased variance as running statistics, inference is training's forward
    values = by_feature(x)
    as_batch = layers.BatchNorm(weight=layer.weight, bias=layer.bias, running_mean=values.mean(axis=0),
                                running_var=values.var(axis=0))
    np.testing.assert_allclose(as_batch.forward(x, layers.EVAL)[0], y_train, rtol=1e-12, atol=1e-12)


def test_fresh_layer_in_inference_is_x_over_sqrt_1_plus_eps():
    x = np.random.default_rng(7).standard_normal((4, F))
    np.testing.assert_allclose(layers.BatchNorm.init(F, dtype=np.float64)(x), x / np.sqrt(1 + 1e-5),
                               rtol=1e-15)


# ---- dtypes and input_grad ------------------------------------------------------------------------------

@pytest.mark.parametrize("train", [True, False])
def test_float32_stays_float32(train):
    layer = batch_norm(np.random.default_rng(8), dtype=np.float32)
    mode = layers.Mode(train=train)
    x = np.random.default_rng(9).standard_normal((6, 2, 2, F)).astype(np.float32)
    y, cache = layer.forward(x, mode)
    dx, grads = layer.backward(cache, np.ones_like(y), mode)
    assert y.dtype == dx.dtype == np.float32
    assert {a.dtype for a in layers.parameters(grads) + layers.buffers(grads)} == {np.dtype(np.float32)}


def test_input_grad_false_gives_no_dx_and_the_same_gradients():
    layer = batch_norm(np.random.default_rng(10))
    x = np.random.default_rng(11).standard_normal((5, F))
    y, cache = layer.forward(x, TRAIN)
    dy = np.random.default_rng(12).standard_normal(y.shape)
    dx, grads = layer.backward(cache, dy, layers.Mode(train=True, input_grad=False))
    assert dx is None
    assert grads == layer.backward(cache, dy, TRAIN)[1]


# ---- gradient checks -------------------------------------------------------------------------------------

@given(x=batches(min_n=3), seed=seeds, training=st.booleans())
def test_gradients(gradient_record, x, seed, training):
    errors = layers.check_gradients(batch_norm(np.random.default_rng(seed)), x, train=training, seed=seed)
    gradient_record.add(errors, "BatchNorm")


def test_gradients_of_a_float32_layer_are_checked_in_float64(gradient_record):
    x = np.random.default_rng(13).standard_normal((6, 2, 2, F))
    errors = layers.check_gradients(batch_norm(np.random.default_rng(14), dtype=np.float32), x, train=True)
    gradient_record.add(errors, "BatchNorm float32")


@given(seed=seeds, training=st.booleans())
def test_gradients_inside_sequence_and_residual(gradient_record, seed, training):
    rng = np.random.default_rng(seed)
    model = layers.Sequence([
        layers.Dense.init(rng, 4, F, dtype=np.float64),
        layers.Tanh(),  # (a bias right before a BatchNorm in training has gradient 0: nothing to check)
        batch_norm(rng),
        layers.Residual(layers.Sequence([batch_norm(rng), layers.Tanh()])),
        layers.Dense.init(rng, F, 2, dtype=np.float64),
    ])
    x = rng.standard_normal((6, 4))
    # tolerance 1e-5: through three normalizations some draws (small running variances) amplify the
    # finite differences' rounding to a few 1e-6; a wrong gradient is off by far more
    errors = layers.check_gradients(model, x, train=training, seed=seed, tol=1e-5)
    gradient_record.add(errors, "BatchNorm in Sequence/Residual")


# ---- model files -------------------------------------------------------------------------------------------

def test_save_and_load_round_trip_with_the_running_statistics(tmp_path):
    rng = np.random.default_rng(15)
    model = layers.Sequence([layers.Dense.init(rng, 4, F), layers.BatchNorm.init(F, momentum=0.2, eps=1e-3)])
    x = rng.standard_normal((8, 4)).astype(np.float32)
    y, cache = model.forward(x, TRAIN)
    _, grads = model.backward(cache, np.ones_like(y), TRAIN)
    model = layers.update_buffers(model, grads)
    assert not np.array_equal(model.layers[1].running_mean, np.zeros(F))
    layers.save(tmp_path / "bn.npz", model)
    loaded = layers.load(tmp_path / "bn.npz")
    assert loaded == model
    assert (loaded.layers[1].momentum, loaded.layers[1].eps) == (0.2, 1e-3)
    np.testing.assert_array_equal(loaded(x), model(x))
