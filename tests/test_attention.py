"""MultiHeadAttention: against a hand-written NumPy attention (one sample and one head at a time), causal
and not; gradients (alone, in a pre-norm residual block), initialisers, shapes, errors, float32, files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamina import layers
from lamina.layers.attention import causal_mask

seeds = st.integers(0, 2**32 - 1)


def attention(rng, dim: int, heads: int, causal: bool = False, dtype=np.float64) -> layers.MultiHeadAttention:
    """A layer with biases that are not zero."""
    layer = layers.MultiHeadAttention.init(rng, dim, heads, causal=causal, dtype=dtype)
    return layers.map_parameters(lambda p: (p + 0.2 * rng.standard_normal(p.shape)).astype(dtype), layer)


def reference(layer, x: np.ndarray) -> np.ndarray:
    """torch's nn.MultiheadAttention written out: one sample, one head at a time."""
    n, t, dim = x.shape
    size = dim // layer.n_heads
    y = np.zeros_like(x)
    for sample in range(n):
        qkv = x[sample] @ layer.weight_qkv + layer.bias_qkv
        q, k, v = qkv[:, :dim], qkv[:, dim:2 * dim], qkv[:, 2 * dim:]
        heads = []
        for head in range(layer.n_heads):
            part = slice(head * size, (head + 1) * size)
            scores = q[:, part] @ k[:, part].T / math.sqrt(size)
            if layer.causal:
                scores[np.triu_indices(t, 1)] = -np.inf
            weights = np.exp(scores - scores.max(axis=1, keepdims=True))
            weights /= weights.sum(axis=1, keepdims=True)
            heads.append(weights @ v[:, part])
        y[sample] = np.concatenate(heads, axis=1) @ layer.weight_out + layer.bias_out
    return y


# ---- construction -----------------------------------------------------------------------------------------

def test_init_layout_repr_and_zero_biases():
    layer = layers.MultiHeadAttention.init(np.random.default_rng(0), 64, 4)
    assert layer.weight_qkv.shape == (64, 192) and layer.bias_qkv.shape == (192,)
    assert layer.weight_out.shape == (64, 64) and layer.bias_out.shape == (64,)
    assert not layer.bias_qkv.any() and not layer.bias_out.any()
    assert all(a.dtype == np.float32 for a in layers.parameters(layer))
    assert repr(layer) == "MultiHeadAttention(64, heads=4, float32)"
    causal = layers.MultiHeadAttention.init(np.random.default_rng(0), 8, 2, causal=True, dtype=np.float64)
    assert repr(causal) == "MultiHeadAttention(8, heads=2, causal, float64)"


@pytest.mark.parametrize("init,std_qkv,std_out", [
    ("he", math.sqrt(2 / 256), math.sqrt(2 / 256)),
    ("glorot", math.sqrt(2 / (256 + 768)), math.sqrt(2 / (256 + 256))),
    (0.02, 0.02, 0.02),
])
def test_initialisers(init, std_qkv, std_out):
    layer = layers.MultiHeadAttention.init(np.random.default_rng(1), 256, 8, init=init, dtype=np.float64)
    assert layer.weight_qkv.std() == pytest.approx(std_qkv, rel=0.02)
    assert layer.weight_out.std() == pytest.approx(std_out, rel=0.02)


def test_bad_settings_are_refused():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match=r"MultiHeadAttention: dim 10 is not divisible by n_heads 3; each "
                                         r"head takes dim / n_heads features"):
        layers.MultiHeadAttention.init(rng, 10, 3)
    with pytest.raises(ValueError, match=r"MultiHeadAttention: n_heads must be a positive int, got 0"):
        layers.MultiHeadAttention.init(rng, 10, 0)
    with pytest.raises(ValueError, match=r'MultiHeadAttention.init: init must be "he", "glorot" or a float'):
        layers.MultiHeadAttention.init(rng, 8, 2, init="xavier")
    with pytest.raises(TypeError, match=r"MultiHeadAttention: causal must be True or False, got 1"):
        layers.MultiHeadAttention.init(rng, 8, 2, causal=1)
    with pytest.raises(TypeError, match=r"MultiHeadAttention.init needs a numpy.random.Generator first"):
        layers.MultiHeadAttention.init(8, 2, 2)


# ---- the maths --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape", [(2, 5, 8, 2), (1, 1, 6, 3), (3, 7, 4, 1), (2, 4, 6, 6)])
def test_forward_is_the_hand_written_attention(causal, shape):
    n, t, dim, heads = shape
    rng = np.random.default_rng(3)
    layer = attention(rng, dim, heads, causal)
    x = rng.standard_normal((n, t, dim))
    y = layer(x)
    np.testing.assert_allclose(y, reference(layer, x), rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(layer.forward(x, layers.EVAL)[0], y)


def test_causal_outputs_never_see_later_steps():
    rng = np.random.default_rng(4)
    layer = attention(rng, 8, 2, causal=True)
    x = rng.standard_normal((2, 6, 8))
    later = x.copy()
    later[:, 4:] += 10 * rng.standard_normal((2, 2, 8))
    np.testing.assert_array_equal(layer(x)[:, :4], layer(later)[:, :4])
    assert not np.allclose(attention(np.random.default_rng(4), 8, 2)(later)[:, :4],
                           attention(np.random.default_rng(4), 8, 2)(x)[:, :4])


def test_the_causal_mask_is_made_once_per_length_and_read_only():
    mask = causal_mask(5, np.dtype(np.float32))
    assert mask is causal_mask(5, np.dtype(np.float32)) and not mask.flags.writeable
    assert mask.dtype == np.float32 and np.isneginf(mask[0, 1]) and mask[1, 0] == 0 and mask[2, 2] == 0


@pytest.mark.parametrize("causal", [False, True])
def test_float32_stays_float32_and_nothing_changes(causal):
    rng = np.random.default_rng(5)
    layer = attention(rng, 8, 2, causal, dtype=np.float32)
    x = rng.standard_normal((3, 5, 8)).astype(np.float32)
    dy = rng.standard_normal((3, 5, 8)).astype(np.float32)
    x0, dy0 = x.copy(), dy.copy()
    y, cache = layer.forward(x, layers.TRAIN)
    assert all(a.dtype == np.float32 for a in cache)
    dx, grads = layer.backward(cache, dy, layers.TRAIN)
    assert y.dtype == dx.dtype == np.float32
    assert all(a.dtype == np.float32 for a in layers.parameters(grads))
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)
    again_dx, again = layer.backward(cache, dy, layers.TRAIN)
    np.testing.assert_array_equal(again_dx, dx)
    assert again == grads


def test_no_input_gradient_when_the_mode_needs_none():
    rng = np.random.default_rng(6)
    layer = attention(rng, 4, 2, dtype=np.float32)
    y, cache = layer.forward(rng.standard_normal((2, 3, 4)).astype(np.float32), layers.TRAIN)
    dx, grads = layer.backward(cache, y, layers.Mode(train=True, input_grad=False))
    assert dx is None and isinstance(grads, layers.MultiHeadAttention) and grads.n_heads == 2


@given(n=st.integers(1, 3), t=st.integers(1, 5), heads=st.integers(1, 3), size=st.integers(1, 3),
       causal=st.booleans(), seed=seeds, training=st.booleans())
def test_gradients(gradient_record, n, t, heads, size, causal, seed, training):
    rng = np.random.default_rng(seed)
    layer = attention(rng, heads * size, heads, causal)
    x = rng.standard_normal((n, t, heads * size))
    errors = layers.check_gradients(layer, x, train=training, seed=seed)
    gradient_record.add(errors, "MultiHeadAttention")


@settings(max_examples=10)
@given(seed=seeds, causal=st.booleans(), training=st.booleans())
def test_gradients_in_a_pre_norm_residual_block(gradient_record, seed, causal, training):
    """A GPT block: x + attention(norm(x)), then x + mlp(norm(x)) with Dense on every step."""
    rng = np.random.default_rng(seed)
    block = layers.Sequence([
        layers.Residual(layers.Sequence([layers.LayerNorm.init(4, dtype=np.float64),
                                         attention(rng, 4, 2, causal)])),
        layers.Residual(layers.Sequence([layers.LayerNorm.init(4, dtype=np.float64),
                                         layers.Dense.init(rng, 4, 5, dtype=np.float64), layers.GELU(),
                                         layers.Dense.init(rng, 5, 4, dtype=np.float64)])),
    ])
    errors = layers.check_gradients(block, rng.standard_normal((2, 3, 4)), train=training, seed=seed)
    gradient_record.add(errors, "MultiHeadAttention in Residual")


# ---- shapes and errors ------------------------------------------------------------------------------------

def test_output_shape_and_errors_name_the_layer():
    rng = np.random.default_rng(7)
    layer = layers.MultiHeadAttention.init(rng, 8, 2, causal=True)
    assert layer.output_shape((5, 8)) == (5, 8) and layer.output_shape((None, 8)) == (None, 8)
    assert layer.output_shape(None) == (None, 8)
    message = (r"^MultiHeadAttention\(8, heads=2, causal, float32\) expects a sequence batch \(n, t, 8\) "
               r"\(sequences are \(n, t, features\)\), but the input is \(n, 8\)$")
    with pytest.raises(layers.ShapeError, match=message):
        layer(np.ones((2, 8)))
    message = (r"^layers\[1\] MultiHeadAttention\(8, heads=2, causal, float32\) expects a sequence batch "
               r"\(n, t, 8\) .*, but layers\[0\] LSTM\(3 -> 4, float32\) gives \(n, \?, 4\)$")
    with pytest.raises(layers.ShapeError, match=message):
        layers.Sequence([layers.LSTM.init(rng, 3, 4), layer])


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    model = layers.Sequence([attention(rng, 8, 2, causal=True, dtype=np.float32),
                             attention(rng, 8, 4, dtype=np.float32)])
    layers.save(tmp_path / "attention.npz", model)
    loaded = layers.load(tmp_path / "attention.npz")
    assert loaded == model and loaded.layers[0].causal and loaded.layers[1].n_heads == 4
    x = rng.standard_normal((3, 5, 8)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))
