"""Bidirectional: the second layer reads the sequence backwards and its output, re-reversed, joins the
first's on the last axis (torch's bidirectional=True); gradients, shapes, paths in errors, files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers

seeds = st.integers(0, 2**32 - 1)
KINDS = [layers.RNN, layers.LSTM, layers.GRU]


@pytest.mark.parametrize("kind", KINDS)
def test_forward_is_both_directions_joined(kind):
    rng = np.random.default_rng(0)
    both = layers.Bidirectional.init(rng, kind, 3, 4, dtype=np.float64)
    assert isinstance(both.forward_layer, kind) and isinstance(both.backward_layer, kind)
    assert both.forward_layer != both.backward_layer  # two independent draws
    x = rng.standard_normal((2, 6, 3))
    y, _ = both.forward(x, layers.EVAL)
    assert y.shape == (2, 6, 8)
    np.testing.assert_array_equal(y[..., :4], both.forward_layer(x))
    np.testing.assert_array_equal(y[..., 4:], both.backward_layer(x[:, ::-1])[:, ::-1])
    # the backward half at step 0 has read the whole sequence; at the last step only that step
    np.testing.assert_array_equal(y[:, -1, 4:], both.backward_layer(x[:, -1:])[:, 0])


def test_options_reach_the_layers_and_the_repr_shows_both():
    both = layers.Bidirectional.init(np.random.default_rng(1), layers.RNN, 3, 4, nonlinearity="relu")
    assert both.forward_layer.nonlinearity == both.backward_layer.nonlinearity == "relu"
    assert repr(both) == "Bidirectional(\n    RNN(3 -> 4, relu, float32),\n    RNN(3 -> 4, relu, float32),\n)"


def test_a_kind_that_is_not_a_layer_class_is_refused():
    with pytest.raises(TypeError, match=r"Bidirectional.init: kind must be a layer class with init, such as "
                                        r"layers.LSTM, got 'lstm'"):
        layers.Bidirectional.init(np.random.default_rng(2), "lstm", 3, 4)


@given(kind=st.sampled_from(KINDS), n=st.integers(1, 3), t=st.integers(1, 4), seed=seeds,
       training=st.booleans())
def test_gradients(gradient_record, kind, n, t, seed, training):
    rng = np.random.default_rng(seed)
    both = layers.Bidirectional(kind.init(rng, 2, 3), kind.init(rng, 2, 2))  # widths may differ
    errors = layers.check_gradients(both, rng.standard_normal((n, t, 2)), train=training, seed=seed)
    gradient_record.add(errors, "Bidirectional")


@given(seed=seeds, training=st.booleans())
def test_gradients_stacked_in_a_sequence_and_a_residual(gradient_record, seed, training):
    rng = np.random.default_rng(seed)
    model = layers.Sequence([
        layers.Bidirectional.init(rng, layers.GRU, 3, 2),
        layers.Residual(layers.Bidirectional.init(rng, layers.LSTM, 4, 2)),
    ])
    errors = layers.check_gradients(model, rng.standard_normal((2, 4, 3)), train=training, seed=seed)
    gradient_record.add(errors, "Bidirectional in Sequence/Residual")


def test_no_input_gradient_when_the_mode_needs_none():
    rng = np.random.default_rng(3)
    both = layers.Bidirectional.init(rng, layers.LSTM, 3, 4)
    y, cache = both.forward(rng.standard_normal((2, 5, 3)).astype(np.float32), layers.TRAIN)
    dx, grads = both.backward(cache, np.ones_like(y), layers.Mode(train=True, input_grad=False))
    assert dx is None and isinstance(grads, layers.Bidirectional)
    assert [a.dtype for a in layers.parameters(grads)] == [np.float32] * 8


def test_output_shape_summary_and_paths_in_errors():
    rng = np.random.default_rng(4)
    both = layers.Bidirectional(layers.LSTM.init(rng, 3, 4), layers.GRU.init(rng, 3, 2))
    assert both.output_shape((7, 3)) == (7, 6)
    assert both.output_shape(None) == (None, 6)
    summary = layers.Sequence([both, layers.LSTM.init(rng, 6, 1)]).summary((7, 3))
    assert "layers[0]                   Bidirectional          (n, 7, 6)         186" in summary
    assert "  layers[0].backward_layer  GRU(3 -> 2, float32)   (n, 7, 2)          42" in summary
    with pytest.raises(layers.ShapeError, match=r"^backward_layer GRU\(2 -> 2, float32\) expects a sequence "
                                                r"batch \(n, t, 2\)"):
        layers.Bidirectional(layers.GRU.init(rng, 3, 2), layers.GRU.init(rng, 2, 2)).output_shape((7, 3))
    message = (r"^layers\[0\]\.forward_layer LSTM\(3 -> 4, float32\) expects a sequence batch "
               r"\(n, t, 3\) .*, but the input is \(n, 3\)$")
    with pytest.raises(layers.ShapeError, match=message):
        layers.Sequence([both])(np.ones((2, 3)))


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    model = layers.Sequence([layers.Bidirectional.init(rng, layers.GRU, 3, 4), layers.LSTM.init(rng, 8, 2)])
    layers.save(tmp_path / "bi.npz", model)
    loaded = layers.load(tmp_path / "bi.npz")
    assert loaded == model
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))


def test_observe_sees_each_direction_by_its_path():
    rng = np.random.default_rng(6)
    model = layers.Sequence([layers.Bidirectional.init(rng, layers.GRU, 3, 2)])
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    seen = []
    y, _ = model.forward(x, layers.Mode(observe=lambda path, layer, out: seen.append((path, out.shape))))
    assert seen == [("layers[0].forward_layer", (2, 4, 2)), ("layers[0].backward_layer", (2, 4, 2)),
                    ("layers[0]", (2, 4, 4))]
    np.testing.assert_array_equal(y, model(x))
