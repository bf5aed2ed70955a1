"""Mistakes that used to pass silently, each now a warning or an error that says what to do, before the first
batch wherever possible."""

from __future__ import annotations

import warnings

import attrs
import numpy as np
import pytest

from lamina import layers, losses, optim

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 4)).astype(np.float32)
LABELS = (X[:, 0] > 0).astype(np.int64)


def fit(model, loss, y, x=X, **settings):
    settings = {"epochs": 1, "batch_size": 16, "rng": np.random.default_rng(0), "progress": False, **settings}
    return optim.fit(model, loss, optim.SGD(0.1), x, y, **settings)


def mlp(*sizes, last=()):
    return layers.Sequence([*layers.mlp(np.random.default_rng(1), list(sizes)).layers, *last])


class FirstBatch:
    """Notes whether any batch ran."""

    ran = False

    def on_batch_end(self, run):
        self.ran = True


def test_a_sigmoid_before_binary_cross_entropy_is_told_it_takes_logits():
    with pytest.warns(optim.TrainingWarning, match="this loss takes logits.*remove the last Sigmoid"):
        fit(mlp(4, 8, 1, last=[layers.Sigmoid()]), losses.BinaryCrossEntropy(), LABELS[:, None])


def test_probabilities_before_softmax_cross_entropy_are_told_it_takes_logits():
    @layers.register
    @attrs.frozen
    class Softmax(layers.Layer):
        def forward(self, x, mode):
            return losses.softmax(x), None

        def backward(self, cache, dy, mode):
            return dy, self

    with pytest.warns(optim.TrainingWarning, match="takes logits.*remove the model's last softmax"):
        fit(mlp(4, 8, 2, last=[Softmax()]), losses.SoftmaxCrossEntropy(), LABELS)


def test_logits_get_no_such_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(mlp(4, 8, 2), losses.SoftmaxCrossEntropy(), LABELS)
        fit(mlp(4, 8, 1), losses.BinaryCrossEntropy(), LABELS[:, None])


@attrs.frozen
class Scale(layers.Layer):
    gain: np.ndarray = layers.param()
    offset: np.ndarray = attrs.field(factory=lambda: np.zeros(4, np.float32))     # declared with nothing

    def forward(self, x, mode):
        return x * self.gain + self.offset, x

    def backward(self, x, dy, mode):
        return dy * self.gain, attrs.evolve(self, gain=(dy * x).sum(axis=0))


@attrs.frozen
class Masked(layers.Layer):
    gain: np.ndarray = layers.param()
    mask: np.ndarray = layers.constant()

    def forward(self, x, mode):
        return x * self.gain * self.mask, x

    def backward(self, x, dy, mode):
        return dy * self.gain * self.mask, attrs.evolve(self, gain=(dy * x * self.mask).sum(axis=0))


def test_an_undeclared_float_array_field_is_named_with_the_choices():
    model = layers.Sequence([Scale(gain=np.ones(4, np.float32)), layers.Dense.init(RNG, 4, 2)])
    with pytest.warns(optim.TrainingWarning, match=r"model\.layers\[0\]\.offset \(Scale\).*"
                                                   r"layers\.param\(\).*layers\.buffer\(\).*layers\.constant\(\)"):
        fit(model, losses.SoftmaxCrossEntropy(), LABELS)


def test_a_constant_is_never_trained_and_is_saved(tmp_path):
    layers.register(Masked)
    mask = np.array([1, 0, 1, 1], np.float32)
    model = layers.Sequence([Masked(gain=np.ones(4, np.float32), mask=mask), layers.Dense.init(RNG, 4, 2)])
    assert [path for path, _ in layers.named_parameters(model)] == ["layers[0].gain", "layers[1].weight",
                                                                    "layers[1].bias"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trained, _ = fit(model, losses.SoftmaxCrossEntropy(), LABELS, epochs=2, checkpoint=tmp_path / "run")
    assert np.array_equal(trained.layers[0].mask, mask) and not trained.layers[0].mask.flags.writeable
    assert not np.array_equal(trained.layers[0].gain, model.layers[0].gain)
    layers.save(tmp_path / "m.npz", trained)
    assert np.array_equal(layers.load(tmp_path / "m.npz").layers[0].mask, mask)
    resumed, _ = fit(model, losses.SoftmaxCrossEntropy(), LABELS, epochs=3, checkpoint=tmp_path / "run",
                     resume=tmp_path / "run")
    assert np.array_equal(resumed.layers[0].mask, mask)


def test_a_backward_returning_a_dict_is_a_clear_error():
    @attrs.frozen
    class Dicts(layers.Layer):
        gain: np.ndarray = layers.param()

        def forward(self, x, mode):
            return x * self.gain, x

        def backward(self, x, dy, mode):
            return dy * self.gain, {"gain": (dy * x).sum(axis=0)}

    for model in (layers.Sequence([Dicts(gain=np.ones(4, np.float32)), layers.Dense.init(RNG, 4, 2)]),):
        with pytest.raises(TypeError, match=r"layers\[0\].*backward returned a dict as its gradients; "
                                            r"it must return \(dx, grads\) with grads a Dicts"):
            fit(model, losses.SoftmaxCrossEntropy(), LABELS)
    with pytest.raises(TypeError, match="backward returned a dict"):
        optim.fit(Dicts(gain=np.ones(4, np.float32)), losses.MSE(), optim.SGD(0.1), X, X, epochs=1,
                  batch_size=16, rng=np.random.default_rng(0), progress=False)


def test_flat_targets_against_one_output_get_the_hint_before_the_first_batch():
    spy = FirstBatch()
    for loss, y in ((losses.BinaryCrossEntropy(), LABELS.astype(np.float64)), (losses.MSE(), X[:, 0])):
        with pytest.raises(ValueError, match=r"y\[:, None\]"):
            fit(mlp(4, 8, 1), loss, y, callbacks=[spy])
    assert not spy.ran


def test_mse_on_int_targets_suggests_astype_float():
    with pytest.raises(TypeError, match=r"y\.astype\(float\)"):
        fit(mlp(4, 8, 1), losses.MSE(), LABELS[:, None])
    with pytest.raises(ValueError, match=r"y\[:, None\]\.astype\(float\)"):
        fit(mlp(4, 8, 1), losses.MSE(), LABELS)


def test_classes_for_instances_and_iterators_for_arrays_are_refused_with_the_fix():
    with pytest.raises(TypeError, match=r"loss is the class MSE, not an instance: call it"):
        optim.fit(mlp(4, 1), losses.MSE, optim.SGD(0.1), X, X[:, :1], epochs=1, batch_size=8,
                  rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"optimizer is the class Adam, not an instance"):
        optim.fit(mlp(4, 1), losses.MSE(), optim.Adam, X, X[:, :1], epochs=1, batch_size=8,
                  rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"x is a generator \(an iterator\); fit takes arrays"):
        optim.fit(mlp(4, 1), losses.MSE(), optim.SGD(0.1), (row for row in X), X[:, :1], epochs=1,
                  batch_size=8, rng=np.random.default_rng(0))


def test_concat_of_separate_layers_asks_for_a_list():
    with pytest.raises(TypeError, match=r"Concat\(\[a, b, \.\.\.\]\), not Concat\(a, b, \.\.\.\)"):
        layers.Concat(layers.Dense.init(RNG, 4, 2), layers.Dense.init(RNG, 4, 3))


def test_a_top_level_residual_that_cannot_fit_fails_at_summary():
    with pytest.raises(layers.ShapeError, match=r"identity shortcut.*\(n, 4\), but inner gives \(n, 3\)"):
        layers.Residual(layers.Dense.init(RNG, 4, 3)).summary(input_shape=(4,))


def test_layer_norm_over_one_feature_warns():
    with pytest.warns(UserWarning, match=r"LayerNorm.init\(1\).*outputs its bias"):
        layers.LayerNorm.init(1)


def test_a_concat_branch_that_changes_the_batch_is_named():
    @attrs.frozen
    class DropsARow(layers.Layer):
        def forward(self, x, mode):
            return x[1:], None

        def backward(self, cache, dy, mode):
            return dy, self

    model = layers.Concat([layers.Identity(), layers.Sequence([DropsARow(), layers.Identity()])])
    with pytest.raises(layers.ShapeError, match=r"every branch.s output to keep the batch.s 8 samples, "
                                                r"but branches\[1\] gives 7 samples"):
        model(X[:8])


def test_resuming_a_finished_run_warns_that_nothing_is_left(tmp_path):
    fit(mlp(4, 2), losses.SoftmaxCrossEntropy(), LABELS, epochs=2, checkpoint=tmp_path)
    with pytest.warns(optim.TrainingWarning, match=r"is finished \(epoch 2 of 2\): nothing is left"):
        fit(mlp(4, 2), losses.SoftmaxCrossEntropy(), LABELS, epochs=2, checkpoint=tmp_path, resume=tmp_path)


def test_monitor_keeps_the_last_epochs_row():
    from lamina import diagnostics
    monitor = diagnostics.Monitor()                     # every=50, on 4 batches an epoch
    fit(mlp(4, 8, 2), losses.SoftmaxCrossEntropy(), LABELS, epochs=3, callbacks=[monitor])
    assert sorted(set(monitor.records["epoch"])) == [1, 2, 3] and monitor.records["step"][-1] == 12


def test_evaluate_with_class_weights_is_the_global_weighted_mean():
    weights = np.array([1.0, 5.0])
    loss = losses.SoftmaxCrossEntropy(class_weights=weights)
    model = mlp(4, 8, 2)
    pred = model(X).astype(np.float64)
    shifted = pred - pred.max(axis=1, keepdims=True)
    nll = -(shifted[np.arange(len(X)), LABELS] - np.log(np.exp(shifted).sum(axis=1)))
    expected = (weights[LABELS] * nll).sum() / weights[LABELS].sum()       # torch's weighted mean
    for batch_size in (7, 64):
        result = optim.evaluate(model, loss, X, LABELS, batch_size=batch_size)
        assert result["loss"] == pytest.approx(expected, rel=1e-6)


def test_a_cnn_without_flatten_gets_the_hint_before_the_first_batch():
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Conv2D.init(rng, 1, 2, 3, padding="same"), layers.ReLU(),
                             layers.Dense.init(rng, 2, 2)])
    images = rng.normal(size=(16, 5, 5, 1)).astype(np.float32)
    spy = FirstBatch()
    with pytest.raises(layers.ShapeError, match=r"add layers\.Flatten\(\) or a global pooling"):
        fit(model, losses.SoftmaxCrossEntropy(), LABELS[:16], x=images, callbacks=[spy])
    assert not spy.ran
