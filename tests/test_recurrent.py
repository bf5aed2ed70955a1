"""RNN (tanh, relu), LSTM and GRU: torch's gate layouts and formulas against a hand-written NumPy step loop,
backward through time against finite differences (alone, in a Sequence, in a Residual), shapes, errors and
model files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lamina import layers, losses, optim

seeds = st.integers(0, 2**32 - 1)
KINDS = {"rnn_tanh": (layers.RNN, {"nonlinearity": "tanh"}),
         "rnn_relu": (layers.RNN, {"nonlinearity": "relu"}),
         "lstm": (layers.LSTM, {}), "gru": (layers.GRU, {})}


def make(kind: str, rng, n_in: int, n_hidden: int, dtype=np.float64):
    cls, options = KINDS[kind]
    return cls.init(rng, n_in, n_hidden, dtype=dtype, **options)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def reference(layer, x: np.ndarray) -> np.ndarray:
    """torch's formulas, one sample and one step at a time, gate blocks split by hand."""
    k = layer.n_hidden
    out = np.zeros((*x.shape[:2], k))
    for sample in range(x.shape[0]):
        h, c = np.zeros(k), np.zeros(k)
        for step in range(x.shape[1]):
            gi = x[sample, step] @ layer.weight_input + layer.bias_input
            gh = h @ layer.weight_hidden + layer.bias_hidden
            if isinstance(layer, layers.RNN):
                h = np.tanh(gi + gh) if layer.nonlinearity == "tanh" else np.maximum(gi + gh, 0)
            elif isinstance(layer, layers.LSTM):
                i, f, g, o = np.split(gi + gh, 4)
                c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
                h = sigmoid(o) * np.tanh(c)
            else:
                (ri, zi, ni), (rh, zh, nh) = np.split(gi, 3), np.split(gh, 3)
                r, z = sigmoid(ri + rh), sigmoid(zi + zh)
                n = np.tanh(ni + r * nh)
                h = (1 - z) * n + z * h
            out[sample, step] = h
    return out


# ---- construction ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,gates", [("rnn_tanh", 1), ("lstm", 4), ("gru", 3)])
def test_init_has_torchs_layout_and_bounds(kind, gates):
    layer = make(kind, np.random.default_rng(0), 5, 7, dtype=np.float32)
    assert layer.weight_input.shape == (5, gates * 7) and layer.weight_hidden.shape == (7, gates * 7)
    assert layer.bias_input.shape == layer.bias_hidden.shape == (gates * 7,)
    for array in layers.parameters(layer):
        assert array.dtype == np.float32 and not array.flags.writeable
        assert np.abs(array).max() <= 1 / np.sqrt(7) and np.abs(array).max() > 0.5 / np.sqrt(7)
    assert (layer.n_in, layer.n_hidden) == (5, 7)


def test_reprs_are_short():
    rng = np.random.default_rng(0)
    assert repr(layers.LSTM.init(rng, 3, 4)) == "LSTM(3 -> 4, float32)"
    assert repr(layers.GRU.init(rng, 3, 4, dtype=np.float64)) == "GRU(3 -> 4, float64)"
    assert repr(layers.RNN.init(rng, 3, 4, nonlinearity="relu")) == "RNN(3 -> 4, relu, float32)"


def test_bad_settings_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r'RNN: nonlinearity must be "tanh" or "relu", got \'sigmoid\''):
        layers.RNN.init(rng, 3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"LSTM.init: n_hidden must be a positive int, got 0"):
        layers.LSTM.init(rng, 3, 0)
    with pytest.raises(TypeError, match=r"GRU.init needs a numpy.random.Generator first"):
        layers.GRU.init(3, 4, 5)


def test_arrays_of_the_wrong_shape_or_dtype_are_refused():
    lstm = layers.LSTM.init(np.random.default_rng(0), 3, 4, dtype=np.float64)
    with pytest.raises(layers.ShapeError, match=r"LSTM expects weight_hidden of shape \(n_hidden, 4 \* n_"):
        layers.LSTM(weight_input=lstm.weight_input, weight_hidden=lstm.weight_hidden[:, :12],
                    bias_input=lstm.bias_input, bias_hidden=lstm.bias_hidden)
    with pytest.raises(layers.ShapeError, match=r"LSTM expects bias_input of shape \(16,\)"):
        layers.LSTM(weight_input=lstm.weight_input, weight_hidden=lstm.weight_hidden,
                    bias_input=lstm.bias_input[:4], bias_hidden=lstm.bias_hidden)
    with pytest.raises(TypeError, match=r"LSTM: all four arrays must share a dtype"):
        layers.LSTM(weight_input=lstm.weight_input, weight_hidden=lstm.weight_hidden,
                    bias_input=lstm.bias_input.astype(np.float32), bias_hidden=lstm.bias_hidden)


# ---- the maths --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(3, 6, 2, 5), (1, 1, 4, 3), (5, 2, 1, 1)])
def test_forward_is_torchs_formula_step_by_step(kind, shape):
    n, t, n_in, n_hidden = shape
    rng = np.random.default_rng(1)
    layer = make(kind, rng, n_in, n_hidden)
    x = rng.standard_normal((n, t, n_in))
    y, _ = layer.forward(x, layers.EVAL)
    np.testing.assert_allclose(y, reference(layer, x), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(layer(x), y)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_stays_float32_and_nothing_changes(kind):
    rng = np.random.default_rng(2)
    layer = make(kind, rng, 3, 4, dtype=np.float32)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 5, 4)).astype(np.float32)
    x0, dy0 = x.copy(), dy.copy()
    y, cache = layer.forward(x, layers.TRAIN)
    dx, grads = layer.backward(cache, dy, layers.TRAIN)
    assert y.dtype == dx.dtype == np.float32 and y.shape == (2, 5, 4) and dx.shape == x.shape
    assert all(array.dtype == np.float32 for array in layers.parameters(grads))
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)
    again_dx, again = layer.backward(cache, dy, layers.TRAIN)  # the cache is untouched by backward
    np.testing.assert_array_equal(again_dx, dx)
    assert again == grads


def test_no_input_gradient_when_the_mode_needs_none():
    rng = np.random.default_rng(3)
    layer = layers.GRU.init(rng, 3, 4)
    y, cache = layer.forward(rng.standard_normal((2, 5, 3)).astype(np.float32), layers.TRAIN)
    dx, grads = layer.backward(cache, np.ones_like(y), layers.Mode(train=True, input_grad=False))
    assert dx is None and isinstance(grads, layers.GRU)


@given(kind=st.sampled_from(list(KINDS)), n=st.integers(1, 3), t=st.integers(1, 5), n_in=st.integers(1, 3),
       n_hidden=st.integers(1, 4), seed=seeds, training=st.booleans())
def test_gradients_through_time(gradient_record, kind, n, t, n_in, n_hidden, seed, training):
    rng = np.random.default_rng(seed)
    layer = make(kind, rng, n_in, n_hidden)
    x = rng.standard_normal((n, t, n_in))
    if kind == "rnn_relu":  # every pre-activation away from relu's kink, where differences are one-sided
        y = layer(x)
        h_before = np.concatenate([np.zeros((n, 1, n_hidden)), y[:, :-1]], axis=1)
        a = x @ layer.weight_input + layer.bias_input + h_before @ layer.weight_hidden + layer.bias_hidden
        assume(np.abs(a).min() > 1e-4)
    errors = layers.check_gradients(layer, x, train=training, seed=seed)
    gradient_record.add(errors, f"{kind} alone")


@given(seed=seeds, training=st.booleans())
def test_gradients_of_stacked_layers_in_a_sequence_and_a_residual(gradient_record, seed, training):
    rng = np.random.default_rng(seed)
    model = layers.Sequence([
        layers.LSTM.init(rng, 3, 4),
        layers.Residual(layers.Sequence([layers.GRU.init(rng, 4, 4), layers.Tanh()])),
        layers.RNN.init(rng, 4, 2),
    ])
    errors = layers.check_gradients(model, rng.standard_normal((2, 4, 3)), train=training, seed=seed)
    gradient_record.add(errors, "recurrent in Sequence/Residual")


# ---- shapes and errors ------------------------------------------------------------------------------------

def test_output_shape_and_summary():
    rng = np.random.default_rng(4)
    lstm = layers.LSTM.init(rng, 3, 5)
    assert lstm.output_shape((7, 3)) == (7, 5)
    assert lstm.output_shape((None, 3)) == (None, 5)
    assert lstm.output_shape(None) == (None, 5)
    model = layers.Sequence([lstm, layers.GRU.init(rng, 5, 2)])
    summary = model.summary((7, 3))
    assert "LSTM(3 -> 5, float32)  (n, 7, 5)" in summary and "GRU(5 -> 2, float32)   (n, 7, 2)" in summary
    assert summary.endswith("total: 254 parameters (float32)")


def test_a_table_into_an_lstm_says_sequences_are_n_t_f():
    lstm = layers.LSTM.init(np.random.default_rng(5), 3, 4)
    message = (r"^LSTM\(3 -> 4, float32\) expects a sequence batch \(n, t, 3\) "
               r"\(sequences are \(n, t, features\)\), but the input is \(n, 3\)$")
    with pytest.raises(layers.ShapeError, match=message):
        lstm.forward(np.ones((2, 3), np.float32), layers.EVAL)
    with pytest.raises(layers.ShapeError, match=message):
        lstm.output_shape((3,))
    with pytest.raises(layers.ShapeError, match=r"LSTM\(3 -> 4, float32\) expects a sequence batch"):
        lstm(np.ones((2, 3)))


def test_a_wrong_feature_count_names_the_layer_by_its_path():
    rng = np.random.default_rng(6)
    message = (r"^layers\[1\] GRU\(5 -> 2, float32\) expects a sequence batch \(n, t, 5\) .*, "
               r"but layers\[0\] LSTM\(3 -> 4, float32\) gives \(n, \?, 4\)$")
    with pytest.raises(layers.ShapeError, match=message):
        layers.Sequence([layers.LSTM.init(rng, 3, 4), layers.GRU.init(rng, 5, 2)])  # refused when built
    model = layers.Sequence([layers.Tanh(), layers.RNN.init(rng, 5, 2)])
    message = (r"^layers\[1\] RNN\(5 -> 2, tanh, float32\) expects a sequence batch \(n, t, 5\) .*, "
               r"but layers\[0\] Tanh\(\) gives \(n, 7, 4\)$")
    with pytest.raises(layers.ShapeError, match=message):
        model(np.ones((2, 7, 4)))


# ---- model files ------------------------------------------------------------------------------------------

def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    model = layers.Sequence([layers.RNN.init(rng, 3, 4, nonlinearity="relu"), layers.LSTM.init(rng, 4, 4),
                             layers.GRU.init(rng, 4, 2)])
    layers.save(tmp_path / "recurrent.npz", model)
    loaded = layers.load(tmp_path / "recurrent.npz")
    assert loaded == model and loaded.layers[0].nonlinearity == "relu"
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))


# ---- training -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [layers.LSTM, layers.GRU])
def test_fit_learns_to_remember_the_first_step(kind):
    """The sign of the first of 8 noisy steps decides the class: the layer must carry it through time."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((512, 8, 2)).astype(np.float32)
    y = (x[:, 0, 0] > 0).astype(np.int64)
    model = layers.Sequence([kind.init(rng, 2, 8), layers.LastStep(), layers.Dense.init(rng, 8, 2)])
    model, history = optim.fit(model, losses.SoftmaxCrossEntropy(), optim.Adam(learning_rate=0.02), x, y,
                               epochs=12, batch_size=32, rng=rng, progress=False)
    assert history["accuracy"][-1] > 0.9 > 0.6 > history["accuracy"][0]
