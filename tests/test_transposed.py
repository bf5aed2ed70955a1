"""Transposed(layer, bias=None): y = x @ layer.weight.T (+ a bias of its own); tied weights when shared."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import layers, losses, optim

rng = np.random.default_rng(0)


def dense(n_in, n_out, seed=0):
    return layers.Dense.init(np.random.default_rng(seed), n_in, n_out, dtype=np.float64)


def test_it_applies_the_weight_transposed_with_its_own_bias_on_any_rank():
    d = dense(5, 3)
    t = layers.Transposed.init(d, bias=True)
    assert t.bias.shape == (5,) and not t.bias.any() and t.bias.dtype == d.weight.dtype
    t = layers.Transposed(d, rng.standard_normal(5))
    x = rng.standard_normal((4, 2, 3))
    np.testing.assert_allclose(t(x), x @ d.weight.T + t.bias, rtol=1e-13)
    assert t.output_shape((2, 3)) == (2, 5) and layers.Transposed(d).bias is None
    np.testing.assert_allclose(layers.Transposed(d)(x), x @ d.weight.T, rtol=1e-13)


@pytest.mark.parametrize("train", [False, True])
def test_gradients_alone_and_tied_in_an_autoencoder(train, gradient_record):
    d = dense(6, 3)
    x = rng.standard_normal((5, 6))
    gradient_record.add(layers.check_gradients(layers.Transposed.init(d, bias=True), x[:, :3], train=train),
                        "Transposed")
    tied = layers.Sequence([d, layers.Tanh(), layers.Transposed.init(d, bias=True)])
    errors = layers.check_gradients(tied, x, train=train)
    assert set(errors) == {"input", "layers[0].weight", "layers[0].bias", "layers[2].bias"}
    gradient_record.add(errors, "tied autoencoder")


def test_a_layer_used_only_transposed_gets_zero_gradients_for_its_own_bias():
    d = dense(4, 3)
    t = layers.Transposed(d)
    y, cache = t.forward(rng.standard_normal((2, 3)), layers.EVAL)
    _, grads = t.backward(cache, np.ones_like(y), layers.EVAL)
    assert not grads.layer.bias.any() and grads.layer.weight.shape == (4, 3) and grads.bias is None


def test_training_keeps_the_weights_tied():
    d = dense(6, 3)
    model = layers.Sequence([d, layers.Tanh(), layers.Transposed.init(d, bias=True)])
    x = rng.standard_normal((8, 6))
    opt = optim.Adam(1e-2)
    new, _, _, _ = optim.train_step(model, losses.MSE(), opt, opt.init(model), x, x, layers.TRAIN)
    assert new.layers[2].layer is new.layers[0] and not np.array_equal(new.layers[0].weight, d.weight)


def test_bad_input_is_refused_clearly():
    with pytest.raises(TypeError, match="Transposed needs a layer with a 2-D weight .*got Tanh"):
        layers.Transposed(layers.Tanh())
    with pytest.raises(layers.ShapeError, match=r"expects a bias float64\(4,\)"):
        layers.Transposed(dense(4, 3), np.zeros(3))
    with pytest.raises(layers.ShapeError) as caught:
        layers.Sequence([dense(2, 5), layers.Transposed(dense(4, 3))])
    assert caught.value.path == "layers[1]" and "expects input (n, 3)" in str(caught.value)
    assert "layers[0] Dense(2 -> 5, float64) gives (n, 5)" in str(caught.value)
