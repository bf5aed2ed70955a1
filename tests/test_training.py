"""optim.fit and optim.evaluate: learning, the history, validation, early stopping, keep_best, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lamina import layers, losses, optim


def blobs(n=400, seed=0, d=5, k=3):
    """k Gaussian blobs in d dimensions, well separated: (x float32 (n, d), labels int64 (n,))."""
    centers = np.random.default_rng(1234).normal(0, 4, size=(k, d))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    x = centers[y] + rng.normal(0, 1, size=(n, d))
    return x.astype(np.float32), y.astype(np.int64)


def small_model(seed=0, sizes=(5, 16, 3)):
    return layers.mlp(np.random.default_rng(seed), list(sizes))


def arrays_of(model):
    return [a.copy() for a in layers.parameters(model)]


def test_fit_learns_blobs_and_history_is_json():
    x, y = blobs()
    x_val, y_val = blobs(200, seed=1)
    model, history = optim.fit(small_model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1, momentum=0.9),
                               x, y, epochs=5, batch_size=32, rng=np.random.default_rng(0),
                               validation=(x_val, y_val), progress=False)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds", "learning_rate",
                            "threads"}
    assert all(len(v) == 5 for v in history.values())
    assert history["accuracy"][-1] > 0.95 and history["val_accuracy"][-1] > 0.95
    assert history["loss"][-1] < history["loss"][0]
    assert history["learning_rate"] == [0.1] * 5
    assert json.loads(json.dumps(history)) == history
    assert optim.evaluate(model, losses.SoftmaxCrossEntropy(), x_val, y_val)["accuracy"] > 0.95


def test_history_loss_is_the_mean_of_the_batch_losses_of_a_hand_loop():
    """fit = one permutation per epoch from rng, one update per batch: replay it by hand."""
    x, y = blobs(100)
    loss, opt = losses.SoftmaxCrossEntropy(), optim.SGD(0.05, momentum=0.5)
    model, history = optim.fit(small_model(), loss, opt, x, y, epochs=2, batch_size=16,
                               rng=np.random.default_rng(7), progress=False)
    rng, hand, state = np.random.default_rng(7), small_model(), None
    state = opt.init(hand)
    for epoch in range(2):
        order, values, correct = rng.permutation(len(x)), [], 0
        for start in range(0, len(x), 16):
            idx = order[start:start + 16]
            pred, cache = hand.forward(x[idx], layers.EVAL)
            value, lc = loss.forward(pred, y[idx])
            _, grads = hand.backward(cache, loss.backward(lc), layers.EVAL)
            hand, state = opt.update(hand, grads, state)
            values.append(value)
            correct += int((pred.argmax(axis=1) == y[idx]).sum())
        assert history["loss"][epoch] == pytest.approx(np.mean(values), rel=1e-12)
        assert history["accuracy"][epoch] == correct / len(x)
    assert hand == model  # bit-identical: the donated in-place update computes the same numbers


def test_fit_advances_the_generator_and_is_reproducible():
    x, y = blobs(120)
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(3)
        before = rng.bit_generator.state
        model, _ = optim.fit(small_model(), losses.MSE(), optim.SGD(0.01), x, y, epochs=2,
                             batch_size=10, rng=rng, progress=False)
        assert rng.bit_generator.state != before
        runs.append(model)
    assert runs[0] == runs[1]


def test_fit_never_changes_the_callers_model_or_data():
    x, y = blobs(64)
    model = small_model()
    before, x0, y0 = arrays_of(model), x.copy(), y.copy()
    optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.1, momentum=0.9), x, y, epochs=3,
              batch_size=8, rng=np.random.default_rng(0), progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, layers.parameters(model)))
    assert np.array_equal(x, x0) and np.array_equal(y, y0)


def gradients(model, x, y, loss=losses.SoftmaxCrossEntropy()):
    pred, cache = model.forward(x, layers.EVAL)
    _, lc = loss.forward(pred, y)
    return model.backward(cache, loss.backward(lc), layers.EVAL)[1]


def test_regression_targets_have_no_accuracy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    w = np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    y = x @ w + 0.3
    model = layers.Sequence([layers.Dense.init(rng, 3, 1)])
    model, history = optim.fit(model, losses.MSE(), optim.SGD(0.1), x, y, epochs=30, batch_size=20,
                               rng=rng, validation=(x, y), progress=False)
    assert "accuracy" not in history and "val_accuracy" not in history
    assert history["val_loss"][-1] < 1e-4
    np.testing.assert_allclose(model.layers[0].weight, w, atol=1e-2)
    assert set(optim.evaluate(model, losses.MSE(), x, y)) == {"loss"}


def test_a_bare_layer_can_be_fitted_and_comes_back_bare():
    x, y = blobs(64, d=5, k=3)
    dense = layers.Dense.init(np.random.default_rng(0), 5, 3)
    trained, _ = optim.fit(dense, losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y, epochs=2,
                           batch_size=16, rng=np.random.default_rng(0), progress=False)
    assert isinstance(trained, layers.Dense) and trained != dense


def test_early_stopping_and_keep_best():
    """Validation labels that disagree with training: val_loss rises after the first epochs."""
    x, y = blobs(300)
    x_val, y_val = x[:100], (y[:100] + 1) % 3
    model, history = optim.fit(small_model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y,
                               epochs=20, batch_size=16, rng=np.random.default_rng(0),
                               validation=(x_val, y_val), patience=2, keep_best=True, progress=False)
    epochs_run = len(history["loss"])
    best = int(np.argmin(history["val_loss"]))
    assert history["stopped_early"] is True and epochs_run < 20
    assert history["best_epoch"] == best + 1 and epochs_run == best + 3  # best_epoch counts from 1
    returned = optim.evaluate(model, losses.SoftmaxCrossEntropy(), x_val, y_val)["loss"]
    assert returned == pytest.approx(history["val_loss"][best], rel=1e-6)


def test_keep_best_needs_validation():
    x, y = blobs(32)
    with pytest.raises(ValueError, match="validation"):
        optim.fit(small_model(), losses.MSE(), optim.SGD(0.1), x, y, epochs=1, batch_size=8,
                  rng=np.random.default_rng(0), keep_best=True, progress=False)


def test_non_finite_loss_names_epoch_batch_and_first_layer():
    x, y = blobs(64)
    with pytest.raises(optim.NonFiniteLossError) as info, np.errstate(all="ignore"):
        optim.fit(small_model(), losses.SoftmaxCrossEntropy(), optim.SGD(1e38), x, y, epochs=5, batch_size=8,
                  rng=np.random.default_rng(0), progress=False)
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert not np.isfinite(error.loss)
    # the first update overflowed; the next prediction is not finite: the first layer that made NaN or inf is
    # named
    assert error.layer in {"layers[0]", "layers[1]",
                           "layers[2]"}  # the first layer whose output is not finite
    assert error.layer in str(error) and f"epoch {error.epoch}, batch {error.batch}" in str(error)


@pytest.mark.parametrize("x, y, error, match", [
    (np.ones((4, 5, 2), np.float32), np.zeros(4, np.int64), layers.ShapeError, r"input \(n, \.\.\., 5\)"),
    (np.ones(5, np.float32), np.zeros(1, np.int64), layers.ShapeError, r"2-D"),
    (np.ones((0, 5), np.float32), np.zeros(0, np.int64), layers.ShapeError, r"at least one sample"),
    (np.array([["a"] * 5] * 4), np.zeros(4, np.int64), TypeError, r"dtype <U1"),
    (np.ones((4, 5), complex), np.zeros(4, np.int64), TypeError, r"complex"),
    (np.ones((4, 5), np.float32), np.zeros(3, np.int64), ValueError, r"x has 4 samples, y has 3"),
    (np.ones((4, 5), np.float32), np.array([0, 1, 3, 2]), ValueError, r"labels\[2\] is 3"),
    (np.ones((4, 5), np.float32), np.array([0, -1, 0, 2]), ValueError, r"labels\[1\] is -1"),
    (np.ones((4, 5), np.float32), np.array([0.0, 1.0, 0.0, 2.0]), ValueError,
     r"1-D float.*class labels must be integers"),
])
def test_fit_rejects_bad_data_before_training(x, y, error, match):
    model = small_model()
    with pytest.raises(error, match=match):
        optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y, epochs=1, batch_size=2,
                  rng=np.random.default_rng(0), progress=False)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fit_names_the_row_with_a_non_finite_value(bad):
    x, y = blobs(50)
    x[37, 2] = bad
    with pytest.raises(ValueError, match=r"x row 37 holds NaN or inf"):
        optim.fit(small_model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y, epochs=1,
                  batch_size=8, rng=np.random.default_rng(0), progress=False)


def test_a_float32_sum_that_overflows_on_finite_data_is_not_an_error():
    x = np.full((10, 5), 3e38, dtype=np.float32)
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.ones(10, np.float32) @ x).any()  # the fast check overflows
    assert optim.checks.first_nonfinite_row(x) is None
    x[6, 1] = np.nan
    assert optim.checks.first_nonfinite_row(x) == 6


def test_evaluate_matches_a_direct_computation():
    x, y = blobs(2500)
    model, loss = small_model(), losses.SoftmaxCrossEntropy()
    result = optim.evaluate(model, loss, x, y, batch_size=1000)
    pred = model(x)
    assert result["loss"] == pytest.approx(loss.forward(pred, y)[0], rel=1e-5)
    assert result["accuracy"] == np.mean(pred.argmax(axis=1) == y)


def test_fit_settings_are_validated():
    x, y = blobs(16)
    kwargs = dict(epochs=1, batch_size=4, rng=np.random.default_rng(0), progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        optim.fit(small_model(), losses.MSE(), optim.SGD(0.1), x, y, **{**kwargs, "batch_size": 0})
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        optim.fit(small_model(), losses.MSE(), optim.SGD(0.1), x, y, **{**kwargs, "rng": 0})


def test_transform_converts_each_batch():
    """uint8 images in, float32 in [0, 1] per batch: the same result as converting up front."""
    from lamina import data

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 5), dtype=np.uint8)
    y = (images[:, 0] > 127).astype(np.int64)
    as_float = images.astype(np.float32) / np.float32(255)
    a, _ = optim.fit(small_model(sizes=(5, 8, 2)), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), images, y,
                     epochs=2, batch_size=16, rng=np.random.default_rng(1), progress=False,
                     transform=data.Rescale(np.float32, 1 / 255))
    b, _ = optim.fit(small_model(sizes=(5, 8, 2)), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), as_float, y,
                     epochs=2, batch_size=16, rng=np.random.default_rng(1), progress=False)
    assert a == b


def test_short_real_mnist_run_is_well_above_chance():
    from lamina import data

    (x, y), (x_test, y_test) = data.mnist()
    model, _ = optim.fit(layers.mlp(np.random.default_rng(0), [784, 64, 10]), losses.SoftmaxCrossEntropy(),
                         optim.SGD(0.05, momentum=0.9), x[:6000], y[:6000], epochs=1, batch_size=32,
                         rng=np.random.default_rng(0), progress=False)
    assert optim.evaluate(model, losses.SoftmaxCrossEntropy(), x_test[:2000], y_test[:2000])["accuracy"] > 0.8


def _forward_for_backward(model, x, y, loss=losses.SoftmaxCrossEntropy()):
    pred, cache = model.forward(x, layers.EVAL)
    _, lc = loss.forward(pred, y)
    return cache, loss.backward(lc)
