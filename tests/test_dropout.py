"""Dropout: inverted dropout as torch.nn.Dropout(p=rate); the mask from mode.rng in training, the identity in
inference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lamina import layers

seeds = st.integers(0, 2**32 - 1)
rates = st.sampled_from([0.0, 0.1, 0.5, 0.9])


def train(seed: int) -> layers.Mode:
    return layers.Mode(train=True, rng=np.random.default_rng(seed))


def inputs(min_dims=2, max_dims=4):
    shapes = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=5)
    return hnp.arrays(np.float64, shapes, elements=st.floats(-3, 3))


# ---- construction ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), float("inf"), "0.5", None, True])
def test_a_rate_outside_0_1_is_refused_at_construction(rate):
    with pytest.raises(ValueError, match=r"Dropout: rate must be a number in \[0, 1\)"):
        layers.Dropout(rate)


def test_the_rate_is_stored_as_a_plain_float():
    assert layers.Dropout().rate == 0.5
    rate = layers.Dropout(np.float32(0.25)).rate
    assert type(rate) is float and rate == 0.25


def test_repr_output_shape_and_no_parameters():
    layer = layers.Dropout(0.3)
    assert repr(layer) == "Dropout(rate=0.3)"
    assert layer.output_shape((28, 28, 1)) == (28, 28, 1)
    assert layer.output_shape(None) is None
    assert layers.parameters(layer) == [] and layers.buffers(layer) == []


# ---- training: the mask ---------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_zeroes_a_fraction_rate_and_scales_the_rest_by_1_over_1_minus_rate(rate, dtype):
    x = np.ones((400, 500), dtype)
    y, _ = layers.Dropout(rate).forward(x, train(7))
    assert y.dtype == dtype
    n = x.size
    zeroed = np.mean(y == 0)
    assert abs(zeroed - rate) < 5 * np.sqrt(rate * (1 - rate) / n)  # five standard deviations of the fraction
    kept = y[y != 0]
    np.testing.assert_array_equal(kept, dtype(1 / (1 - rate)))


def test_the_mask_is_drawn_from_mode_rng_and_the_same_seed_gives_the_same_mask():
    x = np.arange(1.0, 301.0).reshape(30, 10)
    layer = layers.Dropout(0.5)
    y1, _ = layer.forward(x, train(3))
    y2, _ = layer.forward(x, train(3))
    y3, _ = layer.forward(x, train(4))
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1 == 0, y3 == 0)


def test_training_advances_the_rng_so_two_layers_draw_two_masks():
    x = np.ones((50, 20))
    mode = train(0)
    y1, _ = layers.Dropout(0.5).forward(x, mode)
    y2, _ = layers.Dropout(0.5).forward(x, mode)
    assert not np.array_equal(y1, y2)


@given(x=inputs(), rate=rates, seed=seeds)
def test_backward_lets_the_gradient_through_exactly_where_the_forward_kept_x(x, rate, seed):
    layer = layers.Dropout(rate)
    x = x + 5.0  # no zeros in x: y == 0 exactly where the mask dropped
    y, cache = layer.forward(x, train(seed))
    dy = np.random.default_rng(seed).standard_normal(x.shape)
    dx, grads = layer.backward(cache, dy, train(seed))
    keep = y != 0
    scale = 1 / (1 - rate)  # torch's mask holds 1 / (1 - p) and multiplies: the same rounding, bit for bit
    np.testing.assert_array_equal(y, np.where(keep, x * scale, 0.0))
    np.testing.assert_array_equal(dx, np.where(keep, dy * scale, 0.0))
    assert grads == layer


def test_input_grad_false_gives_no_dx():
    layer = layers.Dropout(0.5)
    y, cache = layer.forward(np.ones((4, 3)), train(0))
    dx, grads = layer.backward(cache, np.ones((4, 3)), layers.Mode(train=True, input_grad=False))
    assert dx is None and grads == layer


def test_forward_and_backward_leave_their_arguments_alone():
    x = np.linspace(-1, 1, 24).reshape(6, 4)
    dy = np.linspace(2, 3, 24).reshape(6, 4)
    x0, dy0 = x.copy(), dy.copy()
    layer = layers.Dropout(0.5)
    y, cache = layer.forward(x, train(0))
    layer.backward(cache, dy, train(0))
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)


# ---- inference and rate 0: the identity, nothing drawn ---------------------------------------------

@pytest.mark.parametrize("layer, mode", [
    (layers.Dropout(0.5), layers.Mode(train=False, rng=None)),
    (layers.Dropout(0.5), "eval with an rng"),
    (layers.Dropout(0.0), "train"),
])
def test_the_identity_draws_nothing(layer, mode):
    rng = np.random.default_rng(11)
    before = rng.bit_generator.state
    if mode == "eval with an rng":
        mode = layers.Mode(train=False, rng=rng)
    elif mode == "train":
        mode = layers.Mode(train=True, rng=rng)
    x = np.linspace(-2, 2, 30).reshape(5, 6).astype(np.float32)
    y, cache = layer.forward(x, mode)
    dy = np.full_like(x, 3.0)
    dx, _ = layer.backward(cache, dy, mode)
    assert rng.bit_generator.state == before
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(dx, dy)
    assert y.dtype == dx.dtype == np.float32


def test_call_is_inference():
    x = np.linspace(-2, 2, 30).reshape(5, 6)
    np.testing.assert_array_equal(layers.Dropout(0.9)(x), x)


# ---- missing rng ------------------------------------------------------------------------------------

def test_training_without_an_rng_is_a_clear_error_naming_the_layer():
    with pytest.raises(layers.LayerError, match=r"^Dropout\(rate=0.5\): training draws a random mask, but "
                                                r"the mode has no rng: pass layers.Mode\(train=True, rng="):
        layers.Dropout(0.5).forward(np.ones((2, 3)), layers.TRAIN)


def test_the_missing_rng_error_names_the_layer_by_its_path():
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Dense.init(rng, 3, 4), layers.Residual(layers.Sequence([layers.ReLU(),
                                                                                             layers.Dropout(0.2)]))])
    with pytest.raises(layers.LayerError, match=r"^layers\[1\]\.inner\.layers\[1\] Dropout\(rate=0.2\): .*no "
                                                r"rng"):
        model.forward(np.ones((2, 3)), layers.TRAIN)


# ---- gradient checks ----------------------------------------------------------------------------------

@given(x=inputs(), rate=rates, seed=seeds, training=st.booleans())
def test_gradients(gradient_record, x, rate, seed, training):
    errors = layers.check_gradients(layers.Dropout(rate), x, train=training, seed=seed)
    gradient_record.add(errors, "Dropout")


@given(seed=seeds, training=st.booleans())
def test_gradients_inside_sequence_and_residual(gradient_record, seed, training):
    rng = np.random.default_rng(seed)
    model = layers.Sequence([
        layers.Dense.init(rng, 5, 6, dtype=np.float64),
        layers.Tanh(),
        layers.Dropout(0.3),
        layers.Residual(layers.Sequence([layers.Dense.init(rng, 6, 6, dtype=np.float64),
                                         layers.Dropout(0.5)])),
        layers.Dense.init(rng, 6, 2, dtype=np.float64),
    ])
    x = rng.standard_normal((7, 5))
    errors = layers.check_gradients(model, x, train=training, seed=seed)
    gradient_record.add(errors, "Dropout in Sequence/Residual")


def test_a_model_with_dropout_draws_one_mask_per_dropout_layer_in_training():
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Dense.init(rng, 4, 8, dtype=np.float64), layers.Dropout(0.5)])
    x = rng.standard_normal((16, 4))
    y_train, _ = model.forward(x, train(1))
    y_eval = model(x)
    dropped = y_train == 0
    assert dropped.any() and not dropped.all()
    np.testing.assert_allclose(y_train[~dropped], 2 * y_eval[~dropped], rtol=1e-15)


# ---- model files --------------------------------------------------------------------------------------

def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Dense.init(rng, 4, 3), layers.Dropout(0.25)])
    layers.save(tmp_path / "m.npz", model)
    loaded = layers.load(tmp_path / "m.npz")
    assert loaded == model
    assert type(loaded.layers[1].rate) is float and loaded.layers[1].rate == 0.25
