"""What every loss checks on every batch (labels, predictions, targets), what it leaves alone, and its
protocol."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from lamina import layers, losses

sce, mse = losses.SoftmaxCrossEntropy(), losses.MSE()
WEIGHTED = losses.SoftmaxCrossEntropy(label_smoothing=0.1, class_weights=[1.0, 2.0, 3.0])

# every loss with a prediction (4, 3) and a target it takes
CASES = {
    "SoftmaxCrossEntropy labels": (sce, np.array([0, 2, 1, 1])),
    "SoftmaxCrossEntropy probabilities": (sce, np.full((4, 3), 1 / 3)),
    "SoftmaxCrossEntropy weighted labels": (WEIGHTED, np.array([0, 2, 1, 1])),
    "SoftmaxCrossEntropy weighted probabilities": (WEIGHTED, np.full((4, 3), 1 / 3)),
    "MSE labels": (mse, np.array([0, 2, 1, 1])),
    "MSE": (mse, np.ones((4, 3))),
    "BinaryCrossEntropy": (losses.BinaryCrossEntropy(pos_weight=[1.0, 2.0, 0.5]), np.eye(4, 3)),
    "Huber": (losses.Huber(delta=0.5), np.ones((4, 3))),
    "L1": (losses.L1(), np.ones((4, 3))),
}


@pytest.mark.parametrize("loss", [sce, WEIGHTED, mse], ids=["SoftmaxCrossEntropy", "weighted", "MSE"])
@pytest.mark.parametrize("labels, match", [
    ([0, 2, -1, 1], r"labels\[2\] is -1"),              # NumPy would wrap -1 to the last class
    ([0, 1, 3, 5], r"labels\[2\] is 3"),                # the first too-large one, not the largest
    ([0.0, 1.0, 2.0, 0.0], r"float64.*labels\[0\] is 0\.0"),
    ([True, False, True, False], r"bool.*labels\[0\] is True"),
    ([0, 1, 2], r"expected 4 labels.*\(3,\)"),
    ([0, 1, 2, 0, 1], r"expected 4 labels.*\(5,\)"),
], ids=["negative", "too large", "float", "bool", "too few", "too many"])
def test_bad_labels_are_named(loss, labels, match):
    with pytest.raises(ValueError, match=match) as caught:
        loss.forward(np.zeros((4, 3)), np.array(labels))
    assert str(caught.value).startswith(type(loss).__name__)


@pytest.mark.parametrize("loss", [sce, WEIGHTED, mse], ids=["SoftmaxCrossEntropy", "weighted", "MSE"])
def test_bad_predictions_and_targets(loss):
    with pytest.raises(layers.ShapeError, match=r"\(0, 3\)"):
        loss.forward(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    with pytest.raises(layers.ShapeError, match=r"predictions \(n, (\.\.\., )?k\).*\(4,\)"):
        loss.forward(np.zeros(4), np.zeros(4, dtype=np.int64))
    with pytest.raises(TypeError, match="predictions must be a float array, got dtype int64"):
        loss.forward(np.zeros((2, 3), dtype=np.int64), np.array([0, 1]))
    with pytest.raises(layers.ShapeError, match=r"shape \(2, 3\) or int labels \(2,\), but the target gives "
                                                r"\(2, 4\)"):
        loss.forward(np.zeros((2, 3)), np.zeros((2, 4)))
    target = np.full((3, 3), 0.5)
    target[2, 1] = np.inf
    with pytest.raises(ValueError, match="target row 2 holds NaN or inf"):
        loss.forward(np.zeros((3, 3)), target)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_nan_prediction_gives_a_nan_loss_not_an_error(case):
    """As torch: a non-finite loss is a result, which the training loop reports (NonFiniteLossError)."""
    loss, target = case
    pred = np.zeros((4, 3))
    pred[1, 2] = np.nan
    with np.errstate(invalid="ignore"):
        value, cache = loss.forward(pred, target)
        grad = loss.backward(cache)
    assert np.isnan(value)
    assert grad.shape == pred.shape


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_forward_and_backward_change_no_argument(case):
    loss, target = case
    pred = np.random.default_rng(0).standard_normal((4, 3))
    pred_before, target_before = pred.copy(), target.copy()
    value, cache = loss.forward(pred, target)
    grad = loss.backward(cache)
    np.testing.assert_array_equal(pred, pred_before)
    np.testing.assert_array_equal(target, target_before)
    assert loss.backward(cache).tolist() == grad.tolist()  # backward leaves its cache as it was
    assert loss.forward(pred, target)[0] == value


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_protocol_is_forward_pred_target_and_backward_cache(case):
    """No ``check=`` keyword: forward always validates (the training loop calls it as it is, every batch)."""
    loss, _ = case
    assert list(inspect.signature(loss.forward).parameters) == ["pred", "target"]
    assert len(inspect.signature(loss.backward).parameters) == 1  # the cache
    with pytest.raises(TypeError):
        loss.forward(np.zeros((4, 3)), np.ones((4, 3)), check=False)


def test_the_package_exports_every_loss():
    assert set(losses.__all__) == {"SoftmaxCrossEntropy", "BinaryCrossEntropy", "MSE", "Huber", "L1", "Multi",
                                   "softmax", "sigmoid"}
