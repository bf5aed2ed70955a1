"""BinaryCrossEntropy (from logits, with pos_weight) and sigmoid, against hand-worked values and the
definition.

The reference is the definition, -[pw t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))] per element, computed in
Python's math for moderate logits; hand values are worked out in the docstrings.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lamina import layers, losses

bce = losses.BinaryCrossEntropy()
LN2 = math.log(2)


def reference_bce(logits, target, pos_weight=None):
    """The mean over all elements of -[pw t log s + (1 - t) log(1 - s)], s = 1 / (1 + e^-z), element by
    element.

    log s = -log(1 + e^-z) and log(1 - s) = -log(1 + e^z), each in math.log1p (exact for the moderate z
    drawn).
    """
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64).T).T
    t = np.atleast_2d(np.asarray(target, float).T).T
    pw = np.broadcast_to(1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64), z.shape)
    total = 0.0
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            log_s, log_1_minus_s = -math.log1p(math.exp(-z[i, j])), -math.log1p(math.exp(z[i, j]))
            total -= pw[i, j] * t[i, j] * log_s + (1 - t[i, j]) * log_1_minus_s
    return total / z.size


def reference_bce_grad(logits, target, pos_weight=None):
    """d/dz of the mean: ((1 - t) s - pw t (1 - s)) / N."""
    z, t = np.asarray(logits, dtype=np.float64), np.asarray(target, dtype=np.float64)
    s = 1 / (1 + np.exp(-z))
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    return ((1 - t) * s - pw * t * (1 - s)) / z.size


shapes = st.one_of(st.tuples(st.integers(1, 6)), st.tuples(st.integers(1, 6), st.integers(1, 4)))


@st.composite
def binary_problem(draw, scale=15.0, soft=False):
    shape = draw(shapes)
    logits = draw(hnp.arrays(np.float64, shape, elements=st.floats(-scale, scale)))
    if soft:
        target = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    else:
        target = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 1)))
    k = shape[1] if len(shape) == 2 else 1
    pos_weight = draw(st.one_of(st.none(), st.floats(0, 5),
                                hnp.arrays(np.float64, (k,), elements=st.floats(0, 5))))
    return logits, target, pos_weight


# --- values and gradients --------------------------------------------------------------------

def test_zero_logits_cost_log_2():
    """sigmoid(0) = 1/2: every element costs log 2 whatever its target; the gradient is (1/2 - t) / N."""
    t = np.array([[1.0, 0.0, 0.25], [0.0, 1.0, 1.0]])
    value, cache = bce.forward(np.zeros((2, 3)), t)
    assert value == pytest.approx(LN2, rel=1e-15)
    np.testing.assert_allclose(bce.backward(cache), (0.5 - t) / 6, rtol=1e-15)


def test_by_hand():
    """z = (2, -1), t = (1, 0): -log sigmoid(2) = log(1 + e^-2) and -log(1 - sigmoid(-1)) = log(1 + e^-1)."""
    value, cache = bce.forward(np.array([2.0, -1.0]), np.array([1, 0]))
    assert value == pytest.approx((math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))) / 2, rel=1e-15)
    s2, s_1 = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))
    np.testing.assert_allclose(bce.backward(cache), [(s2 - 1) / 2, s_1 / 2], rtol=1e-14)


def test_probability_targets_by_hand():
    """z = log 3, so sigmoid(z) = 3/4; t = 1/4: -(1/4 log(3/4) + 3/4 log(1/4)); the gradient 3/4 - 1/4."""
    value, cache = bce.forward(np.array([[math.log(3)]]), np.array([[0.25]]))
    assert value == pytest.approx(-(0.25 * math.log(0.75) + 0.75 * math.log(0.25)), rel=1e-15)
    np.testing.assert_allclose(bce.backward(cache), [[0.5]], rtol=1e-14)


def test_pos_weight_by_hand():
    """pw = 3 at z = 0: a positive costs 3 log 2, a negative log 2; gradients -3 (1/2) / 2 and (1/2) / 2."""
    loss = losses.BinaryCrossEntropy(pos_weight=3.0)
    value, cache = loss.forward(np.zeros(2), np.array([1, 0]))
    assert value == pytest.approx(2 * LN2, rel=1e-15)
    np.testing.assert_allclose(loss.backward(cache), [-0.75, 0.25], rtol=1e-15)


def test_pos_weight_per_output_by_hand():
    """pw = (2, 5) on the last axis, z = 0, t = ((1, 1), (0, 1)): (2 + 5 + 1 + 5) log 2 / 4."""
    loss = losses.BinaryCrossEntropy(pos_weight=[2, 5])
    value, cache = loss.forward(np.zeros((2, 2)), np.array([[1, 1], [0, 1]]))
    assert value == pytest.approx(13 / 4 * LN2, rel=1e-15)
    np.testing.assert_allclose(loss.backward(cache), [[-2 / 8, -5 / 8], [1 / 8, -5 / 8]], rtol=1e-15)


@given(binary_problem())
def test_matches_the_definition(case):
    logits, target, pos_weight = case
    loss = losses.BinaryCrossEntropy(pos_weight=pos_weight)
    value, cache = loss.forward(logits, target)
    assert isinstance(value, float)
    assert value == pytest.approx(reference_bce(logits, target, pos_weight), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(loss.backward(cache), reference_bce_grad(logits, target, pos_weight),
                               rtol=1e-12, atol=1e-15)


@given(binary_problem(soft=True))
def test_probability_targets_match_the_definition(case):
    logits, target, pos_weight = case
    loss = losses.BinaryCrossEntropy(pos_weight=pos_weight)
    value, cache = loss.forward(logits, target)
    assert value == pytest.approx(reference_bce(logits, target, pos_weight), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(loss.backward(cache), reference_bce_grad(logits, target, pos_weight),
                               rtol=1e-12, atol=1e-15)


@given(binary_problem(scale=5.0, soft=True))
def test_gradient_matches_finite_differences(gradient_record, case):
    logits, target, pos_weight = case
    loss = losses.BinaryCrossEntropy(pos_weight=pos_weight)
    assume(np.abs(reference_bce_grad(logits, target, pos_weight)).max() > 1e-3)  # else all rounding
    error = layers.check_loss_gradient(loss, logits, target)
    gradient_record.add(error, "BinaryCrossEntropy")
    assert error < 1e-6


def test_targets_as_bool_int_and_float_agree():
    rng = np.random.default_rng(0)
    logits, target = rng.standard_normal((5, 3)), rng.random((5, 3)) < 0.5
    results = [bce.forward(logits, t) for t in (target, target.astype(np.int64), target.astype(np.float64),
                                                 target.astype(np.uint8))]
    for value, cache in results:
        assert value == results[0][0]
        np.testing.assert_array_equal(bce.backward(cache), bce.backward(results[0][1]))


def test_shapes_n_and_n_1_give_the_same_numbers():
    z, t = np.array([0.5, -2.0, 3.0]), np.array([1, 0, 0])
    (v1, c1), (v2, c2) = bce.forward(z, t), bce.forward(z[:, None], t[:, None])
    assert v1 == v2
    np.testing.assert_array_equal(bce.backward(c1), bce.backward(c2)[:, 0])
    loss = losses.BinaryCrossEntropy(pos_weight=[2.0])
    assert loss.forward(z, t)[0] == loss.forward(z[:, None], t[:, None])[0] == \
        losses.BinaryCrossEntropy(pos_weight=2.0).forward(z, t)[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("pos_weight", [None, 2.0, [0.5, 1.0, 2.0, 3.0]])
def test_logits_1e4_give_exact_numbers_without_overflow(dtype, pos_weight):
    """z = +-1e4: a right answer costs 0 (log(1 + e^-1e4)), a wrong one 1e4 times its weight; gradients 0 or
    +-1/N."""
    logits = np.array([[1e4, -1e4, 1e4, -1e4], [-1e4, 1e4, 1e4, -1e4]], dtype=dtype)
    target = np.array([[1, 0, 0, 1], [1, 1, 0, 0]])
    loss = losses.BinaryCrossEntropy(pos_weight=pos_weight)
    pw = np.broadcast_to(1.0 if pos_weight is None else np.asarray(pos_weight), (2, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value, cache = loss.forward(logits, target)
            grad = loss.backward(cache)
    # wrong: (0, 2) negative, (0, 3) positive, (1, 0) positive, (1, 2) negative
    assert value == pytest.approx(1e4 * (1 + pw[0, 3] + pw[1, 0] + 1) / 8, rel=1e-15)
    expected = np.zeros((2, 4))
    expected[0, 2], expected[0, 3] = 1 / 8, -pw[0, 3] / 8
    expected[1, 0], expected[1, 2] = -pw[1, 0] / 8, 1 / 8
    np.testing.assert_allclose(grad, expected, rtol=1e-15, atol=0)
    assert grad.dtype == dtype


def test_tiny_losses_stay_exact():
    """z = -30, t = 0 costs log(1 + e^-30) ~ 9.4e-14: not lost to rounding beside |z| (z + softplus(-z) would
    be)."""
    value, cache = bce.forward(np.array([-30.0, 40.0]), np.array([0, 1]))
    assert value == pytest.approx((math.log1p(math.exp(-30)) + math.log1p(math.exp(-40))) / 2, rel=1e-14)
    np.testing.assert_allclose(bce.backward(cache), [1 / (1 + math.exp(30)) / 2, -1 / (1 + math.exp(40)) / 2],
                               rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_prediction_dtype(dtype):
    for pos_weight in (None, 2.0, [1.0, 3.0]):
        loss = losses.BinaryCrossEntropy(pos_weight=pos_weight)
        value, cache = loss.forward(np.zeros((3, 2), dtype=dtype), np.ones((3, 2)))
        assert isinstance(value, float)
        assert loss.backward(cache).dtype == dtype


# --- sigmoid ---------------------------------------------------------------------------------

def test_sigmoid_is_exact_and_never_overflows():
    z = np.array([[0.0, math.log(3), -math.log(3)], [1e4, -1e4, -745.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            p = losses.sigmoid(z)
    np.testing.assert_allclose(p[0], [0.5, 0.75, 0.25], rtol=1e-15)
    np.testing.assert_array_equal(p[1, :2], [1.0, 0.0])
    assert 0 < p[1, 2] < 1e-300  # e^-745, not rounded to 0 by 1 / (1 + e^745)
    assert losses.sigmoid(np.float32(2.0)).dtype == np.float32


@given(hnp.arrays(np.float64, st.integers(1, 20), elements=st.floats(-50, 50)))
def test_sigmoid_is_the_formula_and_symmetric(z):
    p = losses.sigmoid(z)
    np.testing.assert_allclose(p, [1 / (1 + math.exp(-v)) for v in z], rtol=1e-14)
    np.testing.assert_allclose(p + losses.sigmoid(-z), 1.0, rtol=1e-15)


# --- the record and bad input ----------------------------------------------------------------

def test_settings_are_a_value():
    weights = np.array([1.0, 2.0])
    loss = losses.BinaryCrossEntropy(pos_weight=weights)
    weights[0] = 100.0
    assert loss.pos_weight.tolist() == [1.0, 2.0] and not loss.pos_weight.flags.writeable
    assert loss == losses.BinaryCrossEntropy(pos_weight=[1, 2])
    assert loss != losses.BinaryCrossEntropy(pos_weight=[1, 3])
    assert losses.BinaryCrossEntropy(pos_weight=2) == losses.BinaryCrossEntropy(pos_weight=2.0)
    assert losses.BinaryCrossEntropy(pos_weight=2.0) != losses.BinaryCrossEntropy()
    assert hash(losses.BinaryCrossEntropy(pos_weight=2.0)) == hash(losses.BinaryCrossEntropy(pos_weight=2))


@pytest.mark.parametrize("pos_weight, match", [
    (-1.0, r"pos_weight must be finite and >= 0, but pos_weight is -1.0"),
    (float("nan"), r"pos_weight must be finite and >= 0, but pos_weight is nan"),
    ([1.0, -2.0], r"pos_weight must be finite and >= 0, but pos_weight\[1\] is -2.0"),
    ([1.0, float("inf")], r"pos_weight must be finite and >= 0, but pos_weight\[1\] is inf"),
    ([[1.0, 2.0]], r"pos_weight must be a number or a 1-D sequence of numbers"),
    ("2", r"pos_weight must be a number or a 1-D sequence of numbers"),
    (True, r"pos_weight must be a number or a 1-D sequence of numbers"),
], ids=["negative", "nan", "negative entry", "inf entry", "2-D", "a string", "a bool"])
def test_bad_pos_weight_is_refused_at_construction(pos_weight, match):
    with pytest.raises(ValueError, match="BinaryCrossEntropy: " + match):
        losses.BinaryCrossEntropy(pos_weight=pos_weight)


def test_pos_weight_of_the_wrong_length_fails_at_the_first_batch():
    loss = losses.BinaryCrossEntropy(pos_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"pos_weight has 3 entries, one per output, but the predictions "
                                         r"\(2, 4\) have 4 outputs"):
        loss.forward(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"pos_weight has 3 entries.*\(2,\) have 1 output$"):
        loss.forward(np.zeros(2), np.zeros(2))


@pytest.mark.parametrize("target, match", [
    (np.array([[0, 1], [2, 0], [0, 1]]), r"target\[1, 0\] is 2"),
    (np.array([[0, 1], [1, 0], [-1, 0]]), r"target\[2, 0\] is -1"),
    (np.array([[0.0, 1.0], [0.5, 1.5], [0.0, 3.0]]), r"target\[1, 1\] is 1.5"),
    (np.array([[0.0, np.nan], [0.5, 1.5], [0.0, 0.0]]), r"target\[0, 1\] is nan"),
    (np.array([[0.0, 1.0], [0.5, 0.0], [-np.inf, 0.0]]), r"target\[2, 0\] is -inf"),
], ids=["int 2", "int -1", "float 1.5", "nan", "-inf"])
def test_targets_outside_0_1_are_named_by_index(target, match):
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy: targets must be in \[0, 1\].*" + match):
        bce.forward(np.zeros((3, 2)), target)


def test_a_1d_target_is_named_by_its_index():
    with pytest.raises(ValueError, match=r"target\[2\] is 3"):
        bce.forward(np.zeros(4), np.array([0, 1, 3, 5]))


@pytest.mark.parametrize("pred_shape, target_shape", [((4, 1), (4,)), ((4,), (4, 1)), ((4, 2), (4,)),
                                                      ((4, 2), (2, 4))])
def test_a_target_of_another_shape_is_refused(pred_shape, target_shape):
    with pytest.raises(layers.ShapeError, match="BinaryCrossEntropy expects a target of the prediction's "
                                                f"shape {re.escape(str(pred_shape))}, but the target gives "
                                                f"{re.escape(str(target_shape))}"):
        bce.forward(np.zeros(pred_shape), np.zeros(target_shape))


def test_bad_predictions_and_target_types():
    with pytest.raises(TypeError, match="BinaryCrossEntropy: predictions must be a float array, got dtype "
                                        "int64"):
        bce.forward(np.zeros(3, dtype=np.int64), np.zeros(3))
    with pytest.raises(layers.ShapeError, match=r"predictions \(n,\) or \(n, k\).*\(2, 2, 2\)"):
        bce.forward(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(layers.ShapeError, match=r"\(0,\)"):
        bce.forward(np.zeros(0), np.zeros(0))
    with pytest.raises(TypeError, match="targets must be 0/1 .* got dtype <U1"):
        bce.forward(np.zeros(2), np.array(["0", "1"]))
