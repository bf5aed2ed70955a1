"""SoftmaxCrossEntropy (plain, label smoothing, class weights) and softmax, against torch's formulas written
out here.

torch is not a dependency; each reference is the formula torch.nn.functional.cross_entropy documents and
computes, written a different way from lamina's code (np.logaddexp.reduce, Python loops, the two terms of
label smoothing kept apart as torch keeps them), or a value worked out by hand.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lamina import layers, losses

sce = losses.SoftmaxCrossEntropy()
LN2 = math.log(2)


def log_softmax(logits):
    logits = np.asarray(logits, dtype=np.float64)
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def reference_cross_entropy(logits, target, eps=0.0, weight=None):
    """torch.nn.functional.cross_entropy(logits, target, weight=weight, label_smoothing=eps), mean reduction.

    Labels: (1 - eps) * nll + eps / k * smooth, where nll = sum_i w[y_i] (-log p_i,y_i) / sum_i w[y_i] and
    smooth = sum_i sum_j w[j] (-log p_ij) / sum_i w[y_i] (torch divides the smoothing term by the labels'
    weights too). Probabilities: t' = t (1 - eps) + eps / k, then -sum_ij w[j] t'_ij log p_ij / n.
    """
    log_p = log_softmax(logits)
    n, k = log_p.shape
    w = np.ones(k) if weight is None else np.asarray(weight, dtype=np.float64)
    if np.ndim(target) == 1:
        total_weight = sum(w[y] for y in target)
        nll = sum(w[y] * -log_p[i, y] for i, y in enumerate(target)) / total_weight
        smooth = sum(w[j] * -log_p[i, j] for i in range(n) for j in range(k)) / total_weight
        return (1 - eps) * nll + eps / k * smooth
    smoothed = np.asarray(target, dtype=np.float64) * (1 - eps) + eps / k
    return -sum(w[j] * smoothed[i, j] * log_p[i, j] for i in range(n) for j in range(k)) / n


def reference_cross_entropy_grad(logits, target):
    """d/dz of the plain loss: (p sum_j t_ij - t) / n."""
    p = np.exp(log_softmax(logits))
    t = np.eye(p.shape[1])[target] if np.ndim(target) == 1 else np.asarray(target, dtype=np.float64)
    return (p * t.sum(axis=1, keepdims=True) - t) / len(p)


@st.composite
def classification(draw, max_n=6, max_k=6, scale=5.0):
    n, k = draw(st.integers(1, max_n)), draw(st.integers(1, max_k))
    logits = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-scale, scale)))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return logits, labels


def probabilities_like(data, logits):
    weights = data.draw(hnp.arrays(np.float64, logits.shape, elements=st.floats(0, 1)))
    weights[:, -1] += 0.5
    return weights / weights.sum(axis=1, keepdims=True)


smoothing = st.floats(0, 1)
class_weights = st.integers(1, 6).flatmap(lambda k: hnp.arrays(np.float64, (k,), elements=st.floats(0.1, 5)))


# --- plain (the fast path) -------------------------------------------------------------------

@given(classification())
def test_labels_match_torch_formula(case):
    logits, labels = case
    value, cache = sce.forward(logits, labels)
    assert isinstance(value, float)
    assert value == pytest.approx(reference_cross_entropy(logits, labels), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(sce.backward(cache), reference_cross_entropy_grad(logits, labels),
                               rtol=1e-12, atol=1e-15)


@given(classification(), st.data())
def test_probabilities_match_torch_formula(case, data):
    logits, _ = case
    target = probabilities_like(data, logits)
    value, cache = sce.forward(logits, target)
    assert value == pytest.approx(reference_cross_entropy(logits, target), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(sce.backward(cache), reference_cross_entropy_grad(logits, target),
                               rtol=1e-12, atol=1e-15)


def test_is_a_mean_over_the_batch():
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


LOSSES_AT_1E4 = [sce, losses.SoftmaxCrossEntropy(label_smoothing=0.1, class_weights=np.arange(1.0, 11.0))]


@pytest.mark.parametrize("loss", LOSSES_AT_1E4, ids=["plain", "smoothing and weights"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_is_stable_at_magnitude_1e4(loss, dtype):
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((16, 10)) * 1e4).astype(dtype)
    labels = rng.integers(0, 10, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value, cache = loss.forward(logits, labels)
            grad = loss.backward(cache)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert grad.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    expected = reference_cross_entropy(logits, labels, loss.label_smoothing, loss.class_weights)
    assert value == pytest.approx(expected, rel=rtol, abs=0)
    if loss == sce:
        np.testing.assert_allclose(grad, reference_cross_entropy_grad(logits, labels), atol=rtol / 16)


def test_keeps_small_losses_exact_beside_huge_logits():
    """Confident rows near 1e4: the loss log(1 + sum_j e^-(margin_j)) must not be rounded to the logits'
    ulp."""
    margins = np.array([[8.0, 12.0], [10.0, 9.0], [11.0, 15.0]])
    logits = np.column_stack([np.full(3, 1e4), 1e4 - margins])  # label 0 is the largest logit
    value, _ = sce.forward(logits, np.zeros(3, dtype=np.int64))
    exact = sum(math.log1p(math.fsum(math.exp(-m) for m in row)) for row in margins) / 3
    assert value == pytest.approx(exact, rel=1e-10, abs=0)


def test_softmax_is_exact_and_stable_for_large_logits():
    z = np.array([[1.0, 2.0, 3.0], [1e4, 0.0, -1e4]])
    p = losses.softmax(z)
    e = [math.exp(v) for v in (1.0, 2.0, 3.0)]
    np.testing.assert_allclose(p[0], [v / sum(e) for v in e], rtol=1e-15)
    np.testing.assert_array_equal(p[1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)


# --- label smoothing -------------------------------------------------------------------------

def test_label_smoothing_by_hand():
    """p = (1/4, 3/4), label 1, eps = 0.2, k = 2: the target becomes (0.1, 0.9); the gradient p - target."""
    loss = losses.SoftmaxCrossEntropy(label_smoothing=0.2)
    value, cache = loss.forward(np.array([[0.0, math.log(3)]]), np.array([1]))
    assert value == pytest.approx(-(0.1 * math.log(1 / 4) + 0.9 * math.log(3 / 4)), rel=1e-14)
    np.testing.assert_allclose(loss.backward(cache), [[0.25 - 0.1, 0.75 - 0.9]], rtol=1e-13)


def test_full_smoothing_ignores_the_labels():
    """eps = 1: every class counts 1/k, so the loss is the mean over samples of -(1/k) sum_j log p_ij."""
    logits = np.array([[0.0, math.log(3)], [1.0, 1.0]])
    loss = losses.SoftmaxCrossEntropy(label_smoothing=1.0)
    by_hand = (-(math.log(1 / 4) + math.log(3 / 4)) / 2 + LN2) / 2
    for labels in ([0, 0], [1, 0], [1, 1]):
        assert loss.forward(logits, np.array(labels))[0] == pytest.approx(by_hand, rel=1e-14)


@given(classification(), smoothing)
def test_label_smoothing_matches_torch_formula(case, eps):
    logits, labels = case
    loss = losses.SoftmaxCrossEntropy(label_smoothing=eps)
    value, _ = loss.forward(logits, labels)
    assert value == pytest.approx(reference_cross_entropy(logits, labels, eps), rel=1e-12, abs=1e-14)


@given(classification(), smoothing)
def test_smoothed_labels_equal_smoothed_one_hot_probabilities(case, eps):
    logits, labels = case
    loss = losses.SoftmaxCrossEntropy(label_smoothing=eps)
    v1, c1 = loss.forward(logits, labels)
    v2, c2 = loss.forward(logits, np.eye(logits.shape[1])[labels])
    assert v1 == pytest.approx(v2, rel=1e-13, abs=1e-15)
    np.testing.assert_allclose(loss.backward(c1), loss.backward(c2), rtol=1e-12, atol=1e-15)


@given(classification(), smoothing, st.data())
def test_smoothed_probabilities_match_torch_formula(case, eps, data):
    logits, _ = case
    target = probabilities_like(data, logits)
    loss = losses.SoftmaxCrossEntropy(label_smoothing=eps)
    value, _ = loss.forward(logits, target)
    assert value == pytest.approx(reference_cross_entropy(logits, target, eps), rel=1e-12, abs=1e-14)


# --- class weights ---------------------------------------------------------------------------

# two samples, k = 2: sample 0 has p = (1/4, 3/4) and label 0, sample 1 has p = (1/2, 1/2) and label 1
HAND_LOGITS = np.array([[0.0, math.log(3)], [0.0, 0.0]])
HAND_LABELS = np.array([0, 1])


def test_class_weights_by_hand():
    """w = (1, 3): L = (1 * log 4 + 3 * log 2) / (1 + 3) = 5/4 log 2, not the plain mean 3/2 log 2.

    The gradient (p sum_j s_ij - s) / D with s = ((1, 0), (0, 3)) and D = 4.
    """
    loss = losses.SoftmaxCrossEntropy(class_weights=[1.0, 3.0])
    value, cache = loss.forward(HAND_LOGITS, HAND_LABELS)
    assert value == pytest.approx(5 / 4 * LN2, rel=1e-14)
    np.testing.assert_allclose(loss.backward(cache), [[(0.25 - 1) / 4, 0.75 / 4], [1.5 / 4, (1.5 - 3) / 4]],
                               rtol=1e-14)


def test_class_weights_with_smoothing_by_hand():
    """w = (1, 3), eps = 0.5, k = 2, as torch: (1 - eps) nll + (eps / k) smooth, both divided by w[0] + w[1] =
    4.

    nll = (1 log 4 + 3 log 2) / 4; smooth = (1 log 4 + 3 log(4/3) + 1 log 2 + 3 log 2) / 4 (every class of
    every sample, weighted by its class's weight; divided by the labels' weights, not by n or by sum w).
    """
    loss = losses.SoftmaxCrossEntropy(label_smoothing=0.5, class_weights=[1.0, 3.0])
    value, cache = loss.forward(HAND_LOGITS, HAND_LABELS)
    nll = (math.log(4) + 3 * LN2) / 4
    smooth = (math.log(4) + 3 * math.log(4 / 3) + LN2 + 3 * LN2) / 4
    assert value == pytest.approx(0.5 * nll + 0.25 * smooth, rel=1e-14)
    # s = w_j (0.5 [j = y] + 0.25): ((0.75, 0.75), (0.25, 2.25)); rows of s sum to 1.5 and 2.5
    np.testing.assert_allclose(loss.backward(cache), [[(0.25 * 1.5 - 0.75) / 4, (0.75 * 1.5 - 0.75) / 4],
                                                      [(0.5 * 2.5 - 0.25) / 4, (0.5 * 2.5 - 2.25) / 4]],
                                                      rtol=1e-14)


def test_class_weights_with_smoothed_probabilities_by_hand():
    """Probability targets: t' = 0.8 t + 0.1, weighted per class, divided by n = 2 (not by any weights).

    Sample 0: t = (0.5, 0.5) stays (0.5, 0.5): 2 * 0.5 log 4 + 1 * 0.5 log(4/3).
    Sample 1: t = (1, 0) becomes (0.9, 0.1): (2 * 0.9 + 1 * 0.1) log 2.
    """
    loss = losses.SoftmaxCrossEntropy(label_smoothing=0.2, class_weights=[2.0, 1.0])
    value, _ = loss.forward(HAND_LOGITS, np.array([[0.5, 0.5], [1.0, 0.0]]))
    assert value == pytest.approx((math.log(4) + 0.5 * math.log(4 / 3) + 1.9 * LN2) / 2, rel=1e-14)


@given(classification(), smoothing, st.data())
def test_class_weights_match_torch_formula(case, eps, data):
    logits, labels = case
    w = data.draw(hnp.arrays(np.float64, (logits.shape[1],), elements=st.floats(0.1, 5)))
    loss = losses.SoftmaxCrossEntropy(label_smoothing=eps, class_weights=w)
    value, _ = loss.forward(logits, labels)
    assert value == pytest.approx(reference_cross_entropy(logits, labels, eps, w), rel=1e-12, abs=1e-14)
    target = probabilities_like(data, logits)
    value, _ = loss.forward(logits, target)
    assert value == pytest.approx(reference_cross_entropy(logits, target, eps, w), rel=1e-12, abs=1e-14)


@given(classification(), smoothing, st.data())
def test_weighted_labels_divide_by_their_weights_and_probabilities_by_n(case, eps, data):
    """The same one-hot targets as labels and as probabilities: the two values differ by sum_i w[y_i] / n."""
    logits, labels = case
    w = data.draw(hnp.arrays(np.float64, (logits.shape[1],), elements=st.floats(0.1, 5)))
    loss = losses.SoftmaxCrossEntropy(label_smoothing=eps, class_weights=w)
    as_labels, _ = loss.forward(logits, labels)
    as_probabilities, _ = loss.forward(logits, np.eye(logits.shape[1])[labels])
    assert as_labels * w[labels].sum() == pytest.approx(as_probabilities * len(labels), rel=1e-12, abs=1e-14)


def test_unit_class_weights_equal_no_weights():
    rng = np.random.default_rng(3)
    logits, labels = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    for eps in (0.0, 0.3):
        plain = losses.SoftmaxCrossEntropy(label_smoothing=eps)
        ones = losses.SoftmaxCrossEntropy(label_smoothing=eps, class_weights=np.ones(4))
        (v1, c1), (v2, c2) = plain.forward(logits, labels), ones.forward(logits, labels)
        assert v1 == pytest.approx(v2, rel=1e-14)
        np.testing.assert_allclose(plain.backward(c1), ones.backward(c2), rtol=1e-13, atol=1e-16)


@given(classification(max_n=4, max_k=4), smoothing, st.data())
def test_gradients_with_smoothing_and_weights(gradient_record, case, eps, data):
    logits, labels = case
    w = data.draw(hnp.arrays(np.float64, (logits.shape[1],), elements=st.floats(0.1, 5)))
    loss = losses.SoftmaxCrossEntropy(label_smoothing=eps, class_weights=w)
    for target, what in [(labels, "labels"), (probabilities_like(data, logits), "probabilities")]:
        # where the gradient is ~0 (one class, or p at the smoothed target) a finite difference is all
        # rounding
        assume(np.abs(loss.backward(loss.forward(logits, target)[1])).max() > 1e-2)
        error = layers.check_loss_gradient(loss, logits, target)
        gradient_record.add(error, f"SoftmaxCrossEntropy, smoothing and weights, {what}")
        assert error < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_prediction_dtype(dtype):
    loss = losses.SoftmaxCrossEntropy(label_smoothing=0.1, class_weights=[1.0, 2.0, 0.5])
    logits = np.zeros((4, 3), dtype=dtype)
    for target in (np.array([0, 1, 2, 0]), np.full((4, 3), 1 / 3)):
        value, cache = loss.forward(logits, target)
        assert isinstance(value, float)
        assert loss.backward(cache).dtype == dtype


# --- the record and its settings -------------------------------------------------------------

def test_settings_are_a_value():
    weights = np.array([1.0, 2.0])
    loss = losses.SoftmaxCrossEntropy(label_smoothing=0.1, class_weights=weights)
    weights[0] = 100.0  # the caller's array stays theirs
    assert loss.class_weights.tolist() == [1.0, 2.0]
    assert not loss.class_weights.flags.writeable
    assert loss == losses.SoftmaxCrossEntropy(label_smoothing=0.1, class_weights=[1, 2])
    assert loss != losses.SoftmaxCrossEntropy(label_smoothing=0.1, class_weights=[1, 3])
    assert loss != losses.SoftmaxCrossEntropy(label_smoothing=0.1)
    assert hash(loss) == hash(losses.SoftmaxCrossEntropy(label_smoothing=0.1, class_weights=[1, 2]))
    with pytest.raises(AttributeError):
        loss.label_smoothing = 0.2


@pytest.mark.parametrize("eps", [-0.1, 1.5, float("nan"), float("inf"), "0.1", None, True])
def test_label_smoothing_outside_0_1_is_refused(eps):
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy: label_smoothing must be a number in \[0, "
                                         r"1\]"):
        losses.SoftmaxCrossEntropy(label_smoothing=eps)


@pytest.mark.parametrize("weights, match", [
    ([1.0, -0.5, 2.0], r"class_weights must be finite and >= 0, but class_weights\[1\] is -0.5"),
    ([1.0, 2.0, float("nan")], r"class_weights must be finite and >= 0, but class_weights\[2\] is nan"),
    ([float("inf"), 1.0], r"class_weights must be finite and >= 0, but class_weights\[0\] is inf"),
    ([0.0, 0.0], r"class_weights are all 0"),
    ([], r"class_weights must be a 1-D sequence of numbers, one per class, got"),
    ([[1.0, 2.0]], r"class_weights must be a 1-D sequence"),
    (2.0, r"class_weights must be a 1-D sequence"),
    (["a", "b"], r"class_weights must be a 1-D sequence"),
], ids=["negative", "nan", "inf", "all zero", "empty", "2-D", "a number", "strings"])
def test_bad_class_weights_are_refused_at_construction(weights, match):
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy: " + match):
        losses.SoftmaxCrossEntropy(class_weights=weights)


def test_class_weights_of_the_wrong_length_fail_at_the_first_batch():
    loss = losses.SoftmaxCrossEntropy(class_weights=[1.0, 2.0, 3.0])
    for target in (np.array([0, 1]), np.full((2, 4), 0.25)):
        with pytest.raises(ValueError, match=r"class_weights has 3 entries, one per class, but the "
                                             r"predictions \(2, 4\) have 4 classes"):
            loss.forward(np.zeros((2, 4)), target)


def test_a_batch_whose_labels_all_weigh_0_is_an_error():
    """torch gives NaN (0 / 0); lamina says why."""
    loss = losses.SoftmaxCrossEntropy(class_weights=[0.0, 1.0])
    assert loss.forward(np.zeros((2, 2)), np.array([0, 1]))[0] == pytest.approx(LN2)
    with pytest.raises(ValueError, match="every label in this batch has class weight 0"):
        loss.forward(np.zeros((2, 2)), np.array([0, 0]))
