"""Losses against the formulas torch.nn.functional uses, written out here in plain float64 NumPy.

torch is not a dependency; each reference below is the textbook formula, computed a different
way from lamina's code (np.logaddexp.reduce, math.log1p, explicit one-hot rows, Python loops).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lamina import layers, losses

sce = losses.SoftmaxCrossEntropy()
mse = losses.MSE()


def reference_cross_entropy(logits, target):
    """torch.nn.functional.cross_entropy (mean over the batch): labels (n,) or probabilities (n, k)."""
    logits = np.asarray(logits, dtype=np.float64)
    log_softmax = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    if np.ndim(target) == 1:
        return -np.mean([log_softmax[i, t] for i, t in enumerate(target)])
    return -np.sum(np.asarray(target, dtype=np.float64) * log_softmax) / len(logits)


def reference_cross_entropy_grad(logits, target):
    logits = np.asarray(logits, dtype=np.float64)
    p = np.exp(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))
    t = np.eye(logits.shape[1])[target] if np.ndim(target) == 1 else np.asarray(target, dtype=np.float64)
    return (p * t.sum(axis=1, keepdims=True) - t) / len(logits)


@st.composite
def classification(draw, max_n=6, max_k=6, scale=5.0):
    n, k = draw(st.integers(1, max_n)), draw(st.integers(1, max_k))
    logits = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-scale, scale)))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return logits, labels


# --- SoftmaxCrossEntropy ---------------------------------------------------------------------

@given(classification())
def test_cross_entropy_labels_match_torch_formula(case):
    logits, labels = case
    value, cache = sce.forward(logits, labels)
    assert isinstance(value, float)
    assert value == pytest.approx(reference_cross_entropy(logits, labels), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(sce.backward(cache), reference_cross_entropy_grad(logits, labels),
                               rtol=1e-12, atol=1e-15)


@given(classification(), st.data())
def test_cross_entropy_probabilities_match_torch_formula(case, data):
    logits, _ = case
    weights = data.draw(hnp.arrays(np.float64, logits.shape, elements=st.floats(0, 1)))
    weights[:, -1] += 0.5
    target = weights / weights.sum(axis=1, keepdims=True)
    value, cache = sce.forward(logits, target)
    assert value == pytest.approx(reference_cross_entropy(logits, target), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(sce.backward(cache), reference_cross_entropy_grad(logits, target),
                               rtol=1e-12, atol=1e-15)


def test_cross_entropy_is_a_mean_over_the_batch():
    """Hand numbers: uniform logits over k classes cost log k per sample, whatever n."""
    for n, k in [(1, 2), (4, 10), (7, 3)]:
        value, _ = sce.forward(np.zeros((n, k)), np.zeros(n, dtype=np.int64))
        assert value == pytest.approx(math.log(k), rel=1e-15, abs=0)
    # two samples, losses log(1 + e^-2) and log(1 + e^2): the value is their mean, not their sum
    value, cache = sce.forward(np.array([[2.0, 0.0], [2.0, 0.0]]), np.array([0, 1]))
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(2))) / 2
    assert value == pytest.approx(expected, rel=1e-14, abs=0)
    p = 1 / (1 + math.exp(-2))
    np.testing.assert_allclose(sce.backward(cache), [[(p - 1) / 2, (1 - p) / 2], [p / 2, -p / 2]], rtol=1e-14)


def test_labels_equal_their_one_hot_probabilities():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((8, 5)), rng.integers(0, 5, 8)
    v1, c1 = sce.forward(logits, labels)
    v2, c2 = sce.forward(logits, np.eye(5)[labels])
    assert v1 == pytest.approx(v2, rel=1e-14, abs=0)
    np.testing.assert_allclose(sce.backward(c1), sce.backward(c2), rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_is_stable_at_magnitude_1e4(dtype):
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((16, 10)) * 1e4).astype(dtype)
    labels = rng.integers(0, 10, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value, cache = sce.forward(logits, labels)
            grad = sce.backward(cache)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert grad.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert value == pytest.approx(reference_cross_entropy(logits, labels), rel=rtol, abs=0)
    np.testing.assert_allclose(grad, reference_cross_entropy_grad(logits, labels), atol=rtol / 16)


def test_cross_entropy_keeps_small_losses_exact_beside_huge_logits():
    """Confident rows near 1e4: the loss log(1 + sum_j e^-(margin_j)) must not be rounded to the logits' ulp."""
    margins = np.array([[8.0, 12.0], [10.0, 9.0], [11.0, 15.0]])
    logits = np.column_stack([np.full(3, 1e4), 1e4 - margins])  # label 0 is the largest logit
    value, _ = sce.forward(logits, np.zeros(3, dtype=np.int64))
    exact = sum(math.log1p(math.fsum(math.exp(-m) for m in row)) for row in margins) / 3
    assert value == pytest.approx(exact, rel=1e-10, abs=0)


def test_softmax():
    z = np.array([[1.0, 2.0, 3.0], [1e4, 0.0, -1e4]])
    p = losses.softmax(z)
    e = [math.exp(v) for v in (1.0, 2.0, 3.0)]
    np.testing.assert_allclose(p[0], [v / sum(e) for v in e], rtol=1e-15)
    np.testing.assert_array_equal(p[1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)


# --- MSE -------------------------------------------------------------------------------------

@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_mse_matches_torch_formula(n, k, data):
    pred = data.draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-10, 10)))
    target = data.draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-10, 10)))
    value, cache = mse.forward(pred, target)
    squares = [(pred[i, j] - target[i, j]) ** 2 for i in range(n) for j in range(k)]
    assert value == pytest.approx(math.fsum(squares) / (n * k), rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(mse.backward(cache), 2 * (pred - target) / (n * k), rtol=1e-15)


def test_mse_is_a_mean_over_all_elements():
    """Hand numbers: errors 1, 2, 3, 4 over a (2, 2) prediction cost (1 + 4 + 9 + 16) / 4."""
    value, cache = mse.forward(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2)))
    assert value == 7.5
    np.testing.assert_array_equal(mse.backward(cache), [[0.5, 1.0], [1.5, 2.0]])


@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_mse_labels_equal_one_hot_targets(n, k, data):
    pred = data.draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-3, 3)))
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    one_hot = np.zeros((n, k))
    for i, label in enumerate(labels):
        one_hot[i, label] = 1.0
    v1, c1 = mse.forward(pred, labels)
    v2, c2 = mse.forward(pred, one_hot)
    assert v1 == v2
    np.testing.assert_array_equal(mse.backward(c1), mse.backward(c2))


def test_mse_float32_stays_float32():
    pred = np.ones((3, 2), dtype=np.float32)
    value, cache = mse.forward(pred, np.array([0, 1, 0]))
    assert isinstance(value, float) and value == pytest.approx(0.5)
    assert mse.backward(cache).dtype == np.float32
    _, cache = mse.forward(pred, np.zeros((3, 2)))  # a float64 target is cast to the prediction's dtype
    assert mse.backward(cache).dtype == np.float32


# --- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", [sce, mse], ids=["SoftmaxCrossEntropy", "MSE"])
@pytest.mark.parametrize("labels, match", [
    ([0, 2, -1, 1], r"labels\[2\] is -1"),              # NumPy would wrap -1 to the last class
    ([0, 1, 3, 5], r"labels\[2\] is 3"),                # the first too-large one, not the largest
    ([0.0, 1.0, 2.0, 0.0], r"float64.*labels\[0\] is 0\.0"),
    ([True, False, True, False], r"bool.*labels\[0\] is True"),
    ([0, 1, 2], r"expected 4 labels.*\(3,\)"),
    ([0, 1, 2, 0, 1], r"expected 4 labels.*\(5,\)"),
], ids=["negative", "too large", "float", "bool", "too few", "too many"])
def test_bad_labels_are_named(loss, labels, match):
    pred = np.zeros((4, 3))
    with pytest.raises(ValueError, match=match) as caught:
        loss.forward(pred, np.array(labels))
    assert type(loss).__name__ in str(caught.value)


@pytest.mark.parametrize("loss", [sce, mse], ids=["SoftmaxCrossEntropy", "MSE"])
def test_bad_predictions_and_targets(loss):
    with pytest.raises(layers.ShapeError, match=r"\(0, 3\)"):
        loss.forward(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    with pytest.raises(layers.ShapeError, match=r"\(4,\)"):
        loss.forward(np.zeros(4), np.zeros(4, dtype=np.int64))
    with pytest.raises(TypeError, match="float"):
        loss.forward(np.zeros((2, 3), dtype=np.int64), np.array([0, 1]))
    with pytest.raises(layers.ShapeError, match=r"\(2, 4\)"):
        loss.forward(np.zeros((2, 3)), np.zeros((2, 4)))
    pred = np.zeros((3, 2))
    pred[1, 0] = np.nan
    with pytest.raises(ValueError, match="row 1"):
        loss.forward(pred, np.array([0, 1, 0]))
    target = np.full((3, 2), 0.5)
    target[2, 1] = np.inf
    with pytest.raises(ValueError, match="target row 2"):
        loss.forward(np.zeros((3, 2)), target)
