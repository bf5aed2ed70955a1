"""losses.Multi: a tuple of predictions against a tuple of targets, the value the weighted sum of the
parts."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import layers, losses

rng = np.random.default_rng(0)
pred = (rng.standard_normal((5, 2)), rng.standard_normal((5, 3)))
target = (rng.standard_normal((5, 2)), np.array([0, 1, 2, 1, 0]))


def test_the_value_is_the_weighted_sum_and_parts_are_unweighted():
    multi = losses.Multi([losses.MSE(), losses.SoftmaxCrossEntropy()], weights=[0.5, 2.0])
    value, cache = multi.forward(pred, target)
    a = losses.MSE().forward(pred[0], target[0])[0]
    b = losses.SoftmaxCrossEntropy().forward(pred[1], target[1])[0]
    assert value == pytest.approx(0.5 * a + 2.0 * b, rel=1e-15) and multi.parts(cache) == (a, b)
    unweighted = losses.Multi([losses.MSE(), losses.SoftmaxCrossEntropy()])
    assert unweighted.forward(pred, target)[0] == pytest.approx(a + b)


def test_backward_agrees_with_finite_differences_part_by_part():
    multi = losses.Multi([losses.Huber(), losses.SoftmaxCrossEntropy()], weights=[3.0, 0.25])
    grads = multi.backward(multi.forward(pred, target)[1])
    for i in range(2):
        def value(v, i=i):
            return multi.forward(tuple(v if j == i else p for j, p in enumerate(pred)), target)[0]
        numeric = np.zeros_like(pred[i])
        for k in np.ndindex(pred[i].shape):
            step = np.zeros_like(pred[i])
            step[k] = 1e-6
            numeric[k] = (value(pred[i] + step) - value(pred[i] - step)) / 2e-6
        assert layers.gradient_check.relative_error(grads[i], numeric) < 1e-7


def test_parts_that_do_not_match_the_outputs_are_refused_by_position():
    multi = losses.Multi([losses.MSE(), losses.MSE()])
    with pytest.raises(ValueError, match="2 losses take a tuple of 2 predictions, got 3"):
        multi.forward(pred + (pred[0],), target)
    with pytest.raises(ValueError, match=r"got list \(pass a tuple: \(y0, y1\)\)"):
        multi.forward(pred, list(target))
    with pytest.raises(ValueError, match=r"part 1 \(MSE\)"):
        multi.forward(pred, (target[0], np.zeros((5, 4))))
    with pytest.raises(ValueError, match="2 losses but 3 weights"):
        losses.Multi([losses.MSE(), losses.MSE()], weights=[1, 2, 3])
    with pytest.raises(TypeError, match=r"losses\[1\] is a str, not a loss"):
        losses.Multi([losses.MSE(), "mse"])
