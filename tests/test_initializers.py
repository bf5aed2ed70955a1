"""The one initialiser: "he", "glorot" or a std for every init that draws weights; biases zero; bad values
refused."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import layers

INITS = [
    ("Dense", lambda rng, init: layers.Dense.init(rng, 300, 200, init=init), 300, 200),
    ("Conv2D", lambda rng, init: layers.Conv2D.init(rng, 8, 16, 3, init=init), 72, 144),
    ("Conv1D", lambda rng, init: layers.Conv1D.init(rng, 20, 30, 5, init=init), 100, 150),
]


@pytest.mark.parametrize("name, make, fan_in, fan_out", INITS, ids=[c[0] for c in INITS])
@pytest.mark.parametrize("init", ["he", "glorot", 0.02, 0.0])
def test_each_init_draws_the_std_it_names_and_a_zero_bias(name, make, fan_in, fan_out, init):
    layer = make(np.random.default_rng(0), init)
    expected = {"he": np.sqrt(2 / fan_in), "glorot": np.sqrt(2 / (fan_in + fan_out))}.get(init, init)
    assert abs(layer.weight.std() - expected) <= 0.05 * expected + 1e-12
    assert abs(layer.weight.mean()) <= 0.05 * max(expected, 1e-12)
    assert not layer.bias.any()


def test_he_is_the_default_and_draws_as_before():
    """The default keeps 0.2's draws: weight = rng.normal(0, sqrt(2 / n_in)) cast to float32."""
    layer = layers.Dense.init(np.random.default_rng(5), 30, 7)
    expected = np.random.default_rng(5).normal(0.0, np.sqrt(2 / 30), size=(30, 7)).astype(np.float32)
    np.testing.assert_array_equal(layer.weight, expected)


def test_embeddings_default_to_torchs_standard_normal_and_take_a_std():
    rng = np.random.default_rng(0)
    assert abs(layers.Embedding.init(rng, 500, 200).weight.std() - 1) < 0.01
    assert abs(layers.PositionalEmbedding.init(rng, 500, 200, init=0.02).weight.std() - 0.02) < 0.0005


@pytest.mark.parametrize("init", ["lecun", -0.1, float("nan"), True, None, "He"])
@pytest.mark.parametrize("name, make, fan_in, fan_out", INITS, ids=[c[0] for c in INITS])
def test_a_bad_init_is_refused_naming_the_layer_and_the_choices(name, make, fan_in, fan_out, init):
    with pytest.raises(ValueError, match=rf'{name}.init: init must be "he", "glorot" or a float >= 0 .*got'):
        make(np.random.default_rng(0), init)
