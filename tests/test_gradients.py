"""Every backward against central finite differences (the public helpers in layers/gradient_check.py).

Shapes and values come from hypothesis. Values are kept where a float64 finite difference is
trustworthy: magnitudes in [0.1, 2] (no tiny entries whose gradient would drown in rounding),
distinct Dense weights scaled by 1/n_in (no saturated Sigmoid or Tanh, no gradient cancelled to
exactly 0), and every ReLU input at least 0.01 away from the kink (the bias before it is shifted
where needed).

Deep stacks are checked with a step of 1e-4 instead of the helper's default 1e-6: their input
gradients can be ~1e-5 of the loss, where the rounding of a 1e-6 difference (u |L| / eps) reaches
~1e-6 of the gradient; with 1e-4 it is 100 times smaller, while the truncation error (eps^2 f''')
stays below 1e-8 for these smooth or piecewise-linear layers, and 1e-4 moves no ReLU input across
its kink.
"""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from user_layers import Scale

from lamina import layers, losses

TOL = 1e-6
KINK_MARGIN = 1e-2
DEEP_EPS = 1e-4


# --- strategies -------------------------------------------------------------------------------

def magnitudes(low=0.1, high=2.0):
    """Floats v with low <= |v| <= high, either sign."""
    return st.tuples(st.booleans(), st.floats(low, high)).map(lambda t: -t[1] if t[0] else t[1])


def arrays(shape, low=0.1, high=2.0, unique=False):
    return hnp.arrays(np.float64, shape, elements=magnitudes(low, high), unique=unique)


sizes = st.integers(1, 4)
seeds = st.integers(0, 2**16)


@st.composite
def dense_layers(draw, n_in, n_out, dtype=np.float64):
    # distinct weights: repeated ones can cancel a gradient to exactly 0, where a relative error means nothing
    weight = draw(arrays((n_in, n_out), 0.1, 1.0, unique=True)) / n_in
    bias = draw(arrays((n_out,), 0.1, 1.0))
    return layers.Dense(weight=weight.astype(dtype), bias=bias.astype(dtype))


def off_kink(dense: layers.Dense, x: np.ndarray) -> layers.Dense:
    """``dense`` with each bias entry moved by a multiple of 0.05 so no output is within KINK_MARGIN of 0.

    With n samples at most n of the n + 1 candidate shifts are ruled out, so one always fits.
    """
    h = x @ dense.weight + dense.bias
    bias = np.array(dense.bias)
    for j in range(dense.n_out):
        bias[j] += next(d for d in 0.05 * np.arange(len(h) + 1) if np.all(np.abs(h[:, j] + d) > KINK_MARGIN))
    return layers.Dense(weight=dense.weight, bias=bias)


def nest(draw, items: list) -> list:
    """Group a drawn run of consecutive layers into an inner Sequence, recursively."""
    items = list(items)
    if len(items) >= 2 and draw(st.booleans()):
        i = draw(st.integers(0, len(items) - 1))
        j = draw(st.integers(i + 1, len(items)))
        items = items[:i] + [layers.Sequence(nest(draw, items[i:j]))] + items[j:]
    return items


@st.composite
def networks(draw, max_depth=3):
    """(model, x): Dense layers with drawn activations between them, an optional user Scale before
    a Dense, grouped into randomly nested Sequences; every ReLU input kept off the kink."""
    widths = draw(st.lists(sizes, min_size=2, max_size=max_depth + 1))
    n = draw(sizes)
    x = draw(arrays((n, widths[0])))
    flat, h = [], x
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        if draw(st.booleans()):
            scale = Scale(gain=draw(arrays((n_in,), 0.5, 1.5)))
            flat.append(scale)
            h = scale.forward(h, layers.EVAL)[0]
        dense = draw(dense_layers(n_in, n_out))
        if i < len(widths) - 2:
            activation = draw(st.sampled_from([layers.ReLU, layers.Sigmoid, layers.Tanh]))()
            if isinstance(activation, layers.ReLU):
                dense = off_kink(dense, h)
            h = activation(dense(h))
            flat += [dense, activation]
        else:
            flat.append(dense)
    return layers.Sequence(nest(draw, flat)), x


def kink_distance(model: layers.Sequence, x: np.ndarray) -> float:
    """Smallest |input| of any ReLU in a flat Sequence (inf without ReLU)."""
    distance, h = np.inf, np.asarray(x, dtype=np.float64)
    for layer in model.layers:
        if isinstance(layer, layers.ReLU):
            distance = min(distance, float(np.abs(h).min()))
        h = layer(h)
    return distance


def check(record, layer, x, seed, where, eps=1e-6):
    """check_gradients, with the errors recorded and each one asserted below TOL."""
    errors = layers.check_gradients(layer, x, seed=seed, eps=eps)
    record.add(errors, where)
    expected = {"input"} | {path for path, _ in layers.named_parameters(layer)}
    assert set(errors) == expected, "the helper must check the input and every parameter"
    assert max(errors.values()) < TOL, errors
    return errors


# --- layers ----------------------------------------------------------------------------------

@given(st.data(), sizes, sizes, sizes, seeds, st.sampled_from([np.float32, np.float64]))
def test_dense_gradients_match_finite_differences(gradient_record, data, n, n_in, n_out, seed, dtype):
    dense = data.draw(dense_layers(n_in, n_out, dtype))
    x = data.draw(arrays((n, n_in)))
    errors = check(gradient_record, dense, x, seed, "Dense")
    assert set(errors) == {"input", "weight", "bias"}


@given(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4).flatmap(arrays), seeds,
       st.sampled_from([layers.ReLU, layers.Sigmoid, layers.Tanh]))
def test_activation_gradients_match_finite_differences(gradient_record, x, seed, activation):
    """Element-wise layers, on 1-D to 3-D inputs (|x| >= 0.1, so ReLU is off its kink)."""
    errors = check(gradient_record, activation(), x, seed, activation.__name__)
    assert set(errors) == {"input"}


@given(st.data(), sizes, sizes, seeds)
def test_a_user_layers_gradients_match_finite_differences(gradient_record, data, n, k, seed):
    scale = Scale(gain=data.draw(arrays((k,))))
    check(gradient_record, scale, data.draw(arrays((n, k))), seed, "Scale")


@given(networks(), seeds)
def test_nested_sequences(gradient_record, case, seed):
    model, x = case
    check(gradient_record, model, x, seed, "nested Sequence", eps=DEEP_EPS)


@given(st.data(), st.lists(st.integers(1, 5), min_size=2, max_size=4), sizes, seeds,
       st.sampled_from([layers.ReLU, layers.Sigmoid, layers.Tanh]))
def test_mlp_gradients_match_finite_differences(gradient_record, data, widths, n, seed, activation):
    model = layers.mlp(np.random.default_rng(seed), widths, activation=activation)
    model = layers.map_parameters(lambda p: p / 2, model)  # keeps Sigmoid and Tanh off saturation
    x = data.draw(arrays((n, widths[0])))
    assume(kink_distance(model, x) > KINK_MARGIN)
    check(gradient_record, model, x, seed, "mlp", eps=DEEP_EPS)


def test_nested_paths_are_checked(gradient_record):
    """The errors of a nested model are keyed by the parameters' paths."""
    rng = np.random.default_rng(1)
    model = layers.Sequence([
        Scale(gain=np.linspace(0.5, 1.5, 3)),
        layers.Sequence([layers.Dense.init(rng, 3, 4, dtype=np.float64), layers.Tanh()]),
        layers.Dense.init(rng, 4, 2, dtype=np.float64),
    ])
    errors = check(gradient_record, model, rng.standard_normal((5, 3)), 0, "nested paths")
    assert set(errors) == {"input", "layers[0].gain", "layers[1].layers[0].weight",
                           "layers[1].layers[0].bias", "layers[2].weight", "layers[2].bias"}


def test_any_memory_layout(gradient_record):
    """Fortran-ordered inputs and parameters are checked like C-ordered ones."""
    rng = np.random.default_rng(2)
    weight = np.asfortranarray(rng.standard_normal((3, 4)))
    weight.flags.writeable = False  # taken as it is, so the layer keeps the Fortran layout
    dense = layers.Dense(weight=weight, bias=rng.standard_normal(4))
    assert dense.weight.flags.f_contiguous and not dense.weight.flags.c_contiguous
    x = np.asfortranarray(rng.standard_normal((5, 3)))
    check(gradient_record, dense, x, 0, "Fortran layout")


# --- losses ----------------------------------------------------------------------------------

@st.composite
def logits_and_labels(draw):
    n, k = draw(sizes), draw(st.integers(1, 5))
    logits = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-2, 2)))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return logits, labels


@st.composite
def logits_and_probabilities(draw):
    n, k = draw(sizes), draw(st.integers(1, 5))
    logits = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-2, 2)))
    weights = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(0, 1)))
    weights[:, 0] += 1e-3  # no all-zero row
    target = weights / weights.sum(axis=1, keepdims=True)
    # at target = softmax(logits) the gradient is 0 and a finite difference is all rounding
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assume(k == 1 or np.abs(p - target).max() > 0.05)
    return logits, target


# the difference pred - target is drawn apart from pred, so it is 0 or of a size rounding cannot drown
differences = st.one_of(st.just(0.0), magnitudes(0.1, 2.0))


@given(logits_and_labels())
def test_cross_entropy_labels(gradient_record, case):
    error = layers.check_loss_gradient(losses.SoftmaxCrossEntropy(), *case)
    gradient_record.add(error, "SoftmaxCrossEntropy, labels")
    assert error < TOL


@given(logits_and_probabilities())
def test_cross_entropy_probabilities(gradient_record, case):
    error = layers.check_loss_gradient(losses.SoftmaxCrossEntropy(), *case)
    gradient_record.add(error, "SoftmaxCrossEntropy, probabilities")
    assert error < TOL


@given(st.data(), sizes, sizes)
def test_mse_same_shape(gradient_record, data, n, k):
    pred = data.draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-3, 3)))
    diff = data.draw(hnp.arrays(np.float64, (n, k), elements=differences))
    error = layers.check_loss_gradient(losses.MSE(), pred, pred - diff)
    gradient_record.add(error, "MSE, same shape")
    assert error < TOL


@given(st.data(), sizes, sizes)
def test_mse_labels(gradient_record, data, n, k):
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    diff = data.draw(hnp.arrays(np.float64, (n, k), elements=differences))
    pred = np.eye(k)[labels] + diff
    error = layers.check_loss_gradient(losses.MSE(), pred, labels)
    gradient_record.add(error, "MSE, labels")
    assert error < TOL


@pytest.mark.parametrize("value", [1.0, -2.0, 0.3, -0.75, 0.0])
def test_a_zero_gradient_is_no_error(gradient_record, value):
    """At a perfect fit MSE's gradient is exactly 0; the finite difference must agree (no rounding
    asymmetry)."""
    pred = np.full((2, 3), value)
    error = layers.check_loss_gradient(losses.MSE(), pred, pred.copy())
    gradient_record.add(error, "MSE at a perfect fit")
    assert error == 0.0


# --- the helper catches mistakes -------------------------------------------------------------

@attrs.frozen
class WrongGain(Scale):
    """Scale with a parameter gradient 1% too large."""

    def backward(self, x, dy, mode):
        return dy * self.gain, WrongGain(gain=(dy * x).sum(axis=0) * 1.01)


@attrs.frozen
class WrongInput(Scale):
    """Scale whose input gradient forgets the gain."""

    def backward(self, x, dy, mode):
        return dy, WrongInput(gain=(dy * x).sum(axis=0))


def test_catches_a_wrong_parameter_gradient():
    x = np.random.default_rng(3).standard_normal((4, 3))
    layer = WrongGain(gain=np.array([0.5, 1.5, 2.0]))
    with pytest.raises(layers.GradientCheckError, match=r"gain: \d\.\d+e-0[23]"):
        layers.check_gradients(layer, x)
    errors = layers.gradient_errors(layer, x)
    assert errors["gain"] > 1e-3 and errors["input"] < TOL


def test_catches_a_wrong_input_gradient_inside_a_sequence():
    rng = np.random.default_rng(4)
    model = layers.Sequence([layers.Dense.init(rng, 3, 3, dtype=np.float64),
                             layers.Sequence([layers.Tanh(), WrongInput(gain=np.array([0.5, 1.5, 2.0]))])])
    x = rng.standard_normal((4, 3))
    with pytest.raises(layers.GradientCheckError, match=r"input") as caught:
        layers.check_gradients(model, x)
    # the wrong dx flows into every parameter before it; the layer's own gain stays right
    assert "layers[0].weight" in str(caught.value)
    assert "layers[1].layers[1].gain" not in str(caught.value)


def test_catches_a_wrong_loss_gradient():
    @attrs.frozen
    class HalfMSE(losses.MSE):
        def backward(self, diff):
            return diff / diff.size  # the factor 2 forgotten

    pred = np.random.default_rng(5).standard_normal((3, 2))
    with pytest.raises(layers.GradientCheckError, match="HalfMSE"):
        layers.check_loss_gradient(HalfMSE(), pred, np.zeros((3, 2)))


@pytest.mark.parametrize("activation", [layers.ReLU(), layers.Sigmoid(), layers.Tanh()], ids=repr)
@pytest.mark.parametrize("y_dtype, dy_dtype",
                         [(np.float32, np.float64), (np.float64, np.float32), (np.float32, np.float32)])
def test_an_activation_gradient_has_the_dtype_numpy_would_give(activation, y_dtype, dy_dtype):
    x = np.linspace(-2, 2, 6).astype(y_dtype).reshape(2, 3)
    y, cache = activation.forward(x, layers.EVAL)
    dy = np.linspace(1, 2, 6).astype(dy_dtype).reshape(2, 3)
    dx, _ = activation.backward(cache, dy, layers.EVAL)
    assert dx.dtype == np.result_type(y_dtype, dy_dtype)
