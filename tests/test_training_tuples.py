"""fit, evaluate and train_step with several inputs and outputs (tuples) and with shared weights."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import layers, losses, optim

rng = np.random.default_rng(0)
N = 96
image = rng.standard_normal((N, 6, 6, 1))
table = rng.standard_normal((N, 3))
labels = (image.mean(axis=(1, 2, 3)) + table[:, 0] > 0).astype(np.int64)
amount = (table[:, 1:2] * 2 + image.std(axis=(1, 2, 3))[:, None])


def dense(n_in, n_out, seed=0):
    return layers.Dense.init(np.random.default_rng(seed), n_in, n_out, dtype=np.float64)


def two_inputs():
    """An image through a small CNN beside a few tabular features, joined, then a classifier."""
    cnn = layers.Sequence([layers.Conv2D.init(np.random.default_rng(1), 1, 4, 3, padding=1, dtype=np.float64),
                           layers.ReLU(), layers.MaxPool2D(2), layers.Flatten(), dense(36, 8, 2)])
    return layers.Sequence([layers.Parallel([cnn, dense(3, 8, 3)]), layers.Join("concat"), layers.ReLU(),
                            dense(16, 2, 4)])


def two_heads():
    """One trunk, two heads: a class and an amount."""
    return layers.Sequence([dense(3, 16, 5), layers.ReLU(), layers.Fork([dense(16, 2, 6), dense(16, 1, 7)])])


def test_fit_and_evaluate_take_a_tuple_input():
    model, history = optim.fit(two_inputs(), losses.SoftmaxCrossEntropy(), optim.Adam(1e-2), (image, table),
                               labels, epochs=3, batch_size=16, rng=np.random.default_rng(0), progress=False,
                               validation=((image[:32], table[:32]), labels[:32]))
    assert history["loss"][-1] < history["loss"][0] and "val_accuracy" in history
    result = optim.evaluate(model, losses.SoftmaxCrossEntropy(), (image, table), labels)
    assert set(result) == {"loss", "accuracy"} and result["accuracy"] > 0.6


def test_fit_trains_two_heads_with_losses_multi_and_reports_each_part():
    loss = losses.Multi([losses.SoftmaxCrossEntropy(), losses.MSE()], weights=[1.0, 0.5])
    model, history = optim.fit(two_heads(), loss, optim.Adam(1e-2), table, (labels, amount), epochs=4,
                               batch_size=16, rng=np.random.default_rng(0), progress=False,
                               validation=(table[:32], (labels[:32], amount[:32])))
    for key in ("loss", "loss[0]", "loss[1]", "accuracy[0]", "val_loss", "val_loss[0]", "val_loss[1]",
                "val_accuracy[0]"):
        assert len(history[key]) == 4, key
    assert "accuracy[1]" not in history and "accuracy" not in history
    parts = np.array(history["loss[0]"]) + 0.5 * np.array(history["loss[1]"])
    np.testing.assert_allclose(history["loss"], parts, rtol=1e-10)
    result = optim.evaluate(model, loss, table, (labels, amount))
    assert {"loss", "loss[0]", "loss[1]", "accuracy[0]"} <= set(result)


def test_train_step_takes_tuples():
    model, loss, opt = two_heads(), losses.Multi([losses.SoftmaxCrossEntropy(), losses.MSE()]), optim.SGD(0.1)
    y = (labels[:8], amount[:8])
    new, _, value, pred = optim.train_step(model, loss, opt, opt.init(model), table[:8], y, layers.TRAIN)
    assert type(pred) is tuple and np.isfinite(value) and new != model


def test_bad_tuples_are_refused_before_training_naming_the_part_and_row():
    bad = table.copy()
    bad[5, 1] = np.nan
    fit = dict(epochs=1, batch_size=16, rng=np.random.default_rng(0), progress=False)
    with pytest.raises(ValueError, match=r"x\[1\] row 5 holds NaN"):
        optim.fit(two_inputs(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), (image, bad), labels, **fit)
    with pytest.raises(ValueError, match=r"x\[1\] has 95 samples but x\[0\] has 96"):
        optim.fit(two_inputs(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), (image, table[1:]), labels,
                  **fit)
    with pytest.raises(TypeError, match=r"pass a tuple: \(x0, x1\)"):
        optim.fit(two_inputs(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), [image, table], labels, **fit)
    loss = losses.Multi([losses.SoftmaxCrossEntropy(), losses.MSE()])
    with pytest.raises(ValueError, match="2 losses take a tuple of 2 targets"):
        optim.fit(two_heads(), loss, optim.SGD(0.1), table, (labels,), **fit)


class Grads:
    """A callback keeping the last batch's gradients (run.grads(): folded)."""

    def on_batch_end(self, run):
        self.grads = run.grads()


def test_fit_keeps_a_shared_record_one_record_and_hands_callbacks_folded_gradients():
    d = dense(3, 3)
    model = layers.Sequence([d, layers.Tanh(), layers.Transposed.init(d, bias=True)])
    seen = Grads()
    trained, _ = optim.fit(model, losses.MSE(), optim.SGD(0.05, momentum=0.9), table, table, epochs=2,
                           batch_size=16, rng=np.random.default_rng(0), progress=False, callbacks=[seen])
    assert trained.layers[2].layer is trained.layers[0] and trained.layers[0] != d
    assert seen.grads.layers[2].layer is seen.grads.layers[0]
    # the same two epochs by train_step (the pure step) give the same numbers
    opt, state, step_model = optim.SGD(0.05, momentum=0.9), None, model
    state = opt.init(model)
    run = np.random.default_rng(0)
    for _ in range(2):
        order = run.permutation(N)
        for start in range(0, N, 16):
            rows = order[start:start + 16]
            step_model, state, _, _ = optim.train_step(step_model, losses.MSE(), opt, state, table[rows],
                                                       table[rows], layers.Mode(train=True, rng=run))
    np.testing.assert_allclose(trained.layers[0].weight, step_model.layers[0].weight, rtol=1e-12)


def test_resume_is_bit_for_bit_with_tuples_and_sharing(tmp_path):
    d = dense(3, 3, 9)
    model = layers.Sequence([layers.Parallel([d, layers.Sequence([d, layers.Tanh()])]), layers.Join("sum"),
                             layers.Fork([dense(3, 2, 10), layers.Transposed(d)])])
    loss = losses.Multi([losses.SoftmaxCrossEntropy(), losses.MSE()])
    x, y = (table, table[::-1].copy()), (labels, amount.repeat(3, axis=1))
    fit = dict(batch_size=16, progress=False, threads=1)
    whole, _ = optim.fit(model, loss, optim.Adam(1e-2), x, y, epochs=3, rng=np.random.default_rng(4), **fit)
    optim.fit(model, loss, optim.Adam(1e-2), x, y, epochs=1, rng=np.random.default_rng(4),
              checkpoint=tmp_path / "run", **fit)
    resumed, _ = optim.fit(model, loss, optim.Adam(1e-2), x, y, epochs=3, rng=np.random.default_rng(4),
                           resume=tmp_path / "run", checkpoint=tmp_path / "run", **fit)
    tied = resumed.layers[0].branches[0]
    assert tied is resumed.layers[0].branches[1].layers[0] is resumed.layers[2].branches[1].layer
    for a, b in zip(layers.parameters(whole), layers.parameters(resumed)):
        np.testing.assert_array_equal(a, b)
