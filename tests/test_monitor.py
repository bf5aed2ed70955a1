"""diagnostics.Monitor: its statistics against hand-worked values, its records through fit, and that it
changes nothing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lamina import diagnostics, layers, losses, optim
from lamina.diagnostics.monitor import activation_statistics, parameter_statistics


def dense(weight, bias, dtype=np.float64):
    return layers.Dense(weight=np.array(weight, dtype=dtype), bias=np.array(bias, dtype=dtype))


# ---- the statistics, by hand ----------------------------------------------------------------------


def test_relu_statistics_count_units_that_never_fire_as_dead():
    y = np.array([[0.0, 2.0, 0.0],
                  [0.0, 0.0, 0.0],
                  [0.0, 1.0, 3.0]])       # unit 0 never fires; units 1 and 2 fire on some sample
    stats = activation_statistics(layers.ReLU(), y)
    assert stats == {"kind": "ReLU", "mean": pytest.approx(6 / 9), "std": pytest.approx(math.sqrt(10) / 3),
                     "dead": pytest.approx(1 / 3)}


def test_relu_statistics_of_images_count_channels():
    y = np.zeros((2, 3, 3, 4))            # (n, h, w, channels)
    y[1, 2, 0, 1] = 5.0                   # channel 1 fires at one position of one sample
    y[0, 0, 0, 3] = 0.5
    assert activation_statistics(layers.ReLU(), y)["dead"] == 0.5


def test_sigmoid_and_tanh_saturation_at_the_stated_thresholds():
    sigmoid = 1 / (1 + np.exp(-np.array([[-10.0, 0.0, 10.0, 3.0]])))   # 4.5e-5, 0.5, 0.99995, 0.953
    assert activation_statistics(layers.Sigmoid(), sigmoid)["saturated"] == 0.5
    # |tanh 2.7| = 0.9910, |tanh 2.6| = 0.9890
    tanh = np.tanh(np.array([[-3.0, 0.5, 2.7], [2.6, 0.0, -2.7]]))
    assert activation_statistics(layers.Tanh(), tanh)["saturated"] == pytest.approx(3 / 6)
    assert "dead" not in activation_statistics(layers.Sigmoid(), sigmoid)
    assert set(activation_statistics(layers.Dense.init(np.random.default_rng(0), 2, 2), np.ones((2, 2)))) == {
        "kind", "mean", "std"}


def test_parameter_statistics_by_hand():
    before, after, grad = np.array([[3.0, 4.0]]), np.array([[3.0, 4.5]]), np.array([[0.0, 2.0]])
    assert parameter_statistics(before, after, grad) == {"shape": [1, 2], "grad_norm": 2.0,
                                                         "weight_norm": 5.0,
                                                         "update_ratio": pytest.approx(0.1)}
    assert parameter_statistics(np.zeros(3), np.ones(3), np.ones(3))["update_ratio"] is None


def test_by_epoch_averages_each_epochs_recorded_steps():
    records = {"epoch": [1, 1, 2, 3], "layers": {"a": {"dead": [0.0, 0.5, None, 0.25]}}}
    assert diagnostics.by_epoch(records, "layers", "a", "dead") == [(1, 0.25), (3, 0.25)]


@pytest.mark.parametrize("every", [0, -1, 1.5, True, "10"])
def test_every_must_be_a_positive_int(every):
    with pytest.raises(ValueError, match="every must be a positive int"):
        diagnostics.Monitor(every=every)


# ---- through fit ----------------------------------------------------------------------------------


def blobs(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(n, 2))
    return x, (x[:, 0] > x[:, 1]).astype(np.int64)


def test_a_dead_unit_is_recorded_at_the_first_batch():
    x, y = blobs()
    # inputs are in [0, 1]: unit 1 (weights -1, bias -5) is negative for every sample: dead
    model = layers.Sequence([dense([[1.0, -1.0, 0.5], [0.5, -1.0, 1.0]], [0.0, -5.0, 0.0]), layers.ReLU(),
                             dense(np.ones((3, 2)), np.zeros(2))])
    monitor = diagnostics.Monitor(every=100)
    optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.01), x, y, epochs=1, batch_size=16,
              rng=np.random.default_rng(1), progress=False, callbacks=[monitor])
    records = monitor.records
    assert records["step"] == [1, 4]                                   # the first batch and the epoch's last
    assert records["layers"]["layers[1]"]["dead"][0] == pytest.approx(1 / 3)
    assert records["layers"]["layers[1]"]["kind"] == "ReLU"
    assert set(records["layers"]) == {"layers[0]", "layers[1]", "layers[2]"}


def test_saturated_sigmoid_is_recorded():
    x, y = blobs()
    model = layers.Sequence([dense([[100.0, 0.0], [0.0, 0.0]], [-50.0, 0.0]), layers.Sigmoid(),
                             dense(np.ones((2, 2)), np.zeros(2))])
    monitor = diagnostics.Monitor(every=100)
    optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.0001), x, y, epochs=1, batch_size=64,
              rng=np.random.default_rng(1), progress=False, callbacks=[monitor])
    # unit 0 is sigmoid(100 x - 50): saturated unless x is within 0.046 of 0.5; unit 1 is 0.5, never saturated
    z = 100 * x[:, 0] - 50
    expected = np.mean(np.abs(z) > np.log(99)) / 2
    assert monitor.records["layers"]["layers[1]"]["saturated"] == [pytest.approx(expected)]


class Spy:
    """Notes, at the batches the monitor records, the model before and after the update and the gradients."""

    def __init__(self, steps):
        self.steps, self.step, self.seen, self.before = set(steps), 0, {}, None

    def on_train_begin(self, run):
        self.before = run.model()

    def on_batch_end(self, run):
        self.step += 1
        if self.step in self.steps:
            self.seen[self.step] = (self.before, run.model(), run.grads(), run.loss)
        self.before = run.model()


def mixed_model(seed=0):
    rng = np.random.default_rng(seed)
    return layers.Sequence([
        layers.Dense.init(rng, 2, 8, dtype=np.float64), layers.ReLU(),
        layers.Residual(layers.Sequence([layers.Dense.init(rng, 8, 8, dtype=np.float64), layers.Tanh()])),
        layers.Dropout(0.2), layers.BatchNorm.init(8, dtype=np.float64),
        layers.Dense.init(rng, 8, 2, dtype=np.float64)])


def train(callbacks, epochs=2, **kwargs):
    x, y = blobs(96)
    return optim.fit(mixed_model(), losses.SoftmaxCrossEntropy(), optim.Adam(0.01), x, y, epochs=epochs,
                     batch_size=16, rng=np.random.default_rng(3), progress=False, threads=1,
                     callbacks=callbacks, **kwargs)


def test_records_are_json_at_the_promised_steps_and_match_the_run():
    monitor, spy = diagnostics.Monitor(every=4), Spy([1, 5, 6, 9, 12])
    train([monitor, spy])
    records = json.loads(json.dumps(monitor.records, allow_nan=False))
    assert records == monitor.records
    # 6 batches an epoch, 2 epochs: steps 1, 5, 9 (across epochs) and each epoch's last, 6 and 12
    assert (records["step"], records["epoch"], records["batch"]) == ([1, 5, 6, 9, 12], [1, 1, 1, 2, 2],
                                                                     [1, 5, 6, 3, 6])
    assert records["batches_per_epoch"] == 6 and records["every"] == 4
    assert "layers[2].inner.layers[1]" in records["layers"]            # nested paths through Residual
    assert records["layers"]["layers[2].inner.layers[1]"]["kind"] == "Tanh"
    for i, step in enumerate(records["step"]):
        before, after, grads, loss = spy.seen[step]
        assert records["loss"][i] == loss
        b, a = dict(layers.named_parameters(before)), dict(layers.named_parameters(after))
        for path, grad in layers.named_parameters(grads):
            stats = records["parameters"][path]
            assert stats["grad_norm"][i] == pytest.approx(np.linalg.norm(grad), rel=1e-12)
            assert stats["weight_norm"][i] == pytest.approx(np.linalg.norm(b[path]), rel=1e-12)
            if np.linalg.norm(b[path]) > 0:
                assert stats["update_ratio"][i] == pytest.approx(
                    np.linalg.norm(a[path] - b[path]) / np.linalg.norm(b[path]), rel=1e-9)
    assert set(records["parameters"]) == {path for path, _ in layers.named_parameters(mixed_model())}
    weights = records["weights"]
    assert (weights["first"]["epoch"], weights["last"]["epoch"]) == (1, 2)
    histogram = weights["last"]["histograms"]["layers[0].weight"]
    assert sum(histogram["counts"]) == 16 and len(histogram["edges"]) == 31
    assert "layers[0].bias" not in weights["last"]["histograms"]   # 1-D: not a weight matrix


def test_observing_never_changes_the_runs_numbers():
    plain_model, plain_history = train([])
    model, history = train([diagnostics.Monitor(every=1)])
    for (path, a), (_, b) in zip(layers.named_parameters(plain_model), layers.named_parameters(model)):
        assert np.array_equal(a, b), path
    for (path, a), (_, b) in zip(layers.named_buffers(plain_model), layers.named_buffers(model)):
        assert np.array_equal(a, b), path
    assert {k: v for k, v in history.items() if k != "seconds"} == {
        k: v for k, v in plain_history.items() if k != "seconds"}


def test_a_resumed_run_goes_on_with_the_checkpoints_records(tmp_path):
    straight = diagnostics.Monitor(every=4)
    train([straight], epochs=3)
    first = diagnostics.Monitor(every=4)
    train([first], epochs=1, checkpoint=tmp_path)
    resumed = diagnostics.Monitor(every=4)
    train([resumed], epochs=3, checkpoint=tmp_path, resume=tmp_path)
    assert resumed.records == straight.records
    assert resumed.records["step"] == [1, 5, 6, 9, 12, 13, 17, 18]


def test_the_observer_is_removed_when_training_ends():
    class Check:
        def on_train_end(self, run):
            self.observe = run.observe
    check = Check()
    train([diagnostics.Monitor(every=1), check], epochs=1)
    assert check.observe is None
