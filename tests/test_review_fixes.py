"""Cases a review found: dtypes of targets and hyper-parameters, user layers in the donated update,
nested models, unknown output widths, and the errors at fit's door."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from user_layers import Scale

from lamina import layers, losses, optim


def data(n=64, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, rng.integers(0, k, size=n)


def test_float64_regression_targets_train_a_float32_model():
    x, _ = data()
    y = np.random.default_rng(1).normal(size=(64, 1))  # float64, as NumPy makes them
    model, history = optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 1]), losses.MSE(), optim.SGD(0.01),
                               x, y, epochs=2, batch_size=16, rng=np.random.default_rng(0), validation=(x, y),
                               progress=False)
    assert all(p.dtype == np.float32 for p in layers.parameters(model))
    assert len(history["loss"]) == 2


def test_numpy_float64_hyper_parameters_keep_a_float32_model_float32():
    x, y = data()
    opt = optim.SGD(np.float64(0.1), momentum=np.float64(0.9), weight_decay=np.float64(1e-3))
    model, _ = optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 3]), losses.SoftmaxCrossEntropy(), opt,
                         x, y, epochs=2, batch_size=16, rng=np.random.default_rng(0), progress=False)
    assert all(p.dtype == np.float32 for p in layers.parameters(model))


@attrs.frozen
class Pull:
    """A user layer whose gradient is its own parameter array (an L2 pull towards zero): y = x."""

    gain: np.ndarray = layers.param()

    def forward(self, x, mode):
        return x, None

    def backward(self, cache, dy, mode):
        return dy, Pull(gain=self.gain)


@pytest.mark.parametrize("block_bytes", [None, 8], ids=["default blocks", "blocks of 2 floats"])
def test_a_gradient_that_is_a_parameter_array_is_never_written_by_the_update(block_bytes, monkeypatch):
    from lamina.optim import executor
    if block_bytes is not None:
        monkeypatch.setattr(executor, "BLOCK_BYTES", block_bytes)
    x, y = data()
    model = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 5, 3), Pull(gain=np.ones(3, np.float32))])
    loss, opt = losses.SoftmaxCrossEntropy(), optim.SGD(0.1, momentum=0.5, weight_decay=0.01)
    fitted, _ = optim.fit(model, loss, opt, x, y, epochs=2, batch_size=16, rng=np.random.default_rng(3),
                          progress=False)
    hand, state, rng = model, opt.init(model), np.random.default_rng(3)
    for _ in range(2):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 16):
            idx = order[start:start + 16]
            pred, cache = hand.forward(x[idx], layers.EVAL)
            _, lc = loss.forward(pred, y[idx])
            hand, state = opt.update(hand, hand.backward(cache, loss.backward(lc), layers.EVAL)[1], state)
    assert fitted == hand
    assert 0 < fitted.layers[1].gain[0] < 1


def test_a_nested_model_does_not_check_what_its_outer_model_made():
    """An overflow inside the model is the model's, not bad input: inf comes out, no ValueError."""
    huge = layers.Dense(weight=np.full((4, 4), 1e38, np.float32), bias=np.zeros(4, np.float32))
    model = layers.Sequence([huge, layers.mlp(np.random.default_rng(0), [4, 3])])
    with np.errstate(all="ignore"):
        with pytest.warns(RuntimeWarning, match="the model overflows"):
            out = model(np.ones((2, 4), np.float32))
        assert not np.isfinite(out).all()
        with pytest.raises(optim.NonFiniteLossError):
            optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.1), np.ones((4, 4), np.float32),
                      np.array([0, 1, 2, 0]), epochs=1, batch_size=2, rng=np.random.default_rng(0), progress=False)


def test_labels_for_a_model_whose_last_layer_has_no_output_shape():
    x, y = data()
    model = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 5, 3), Scale(gain=np.ones(3, np.float32))])
    fitted, history = optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y, epochs=1,
                                batch_size=16, rng=np.random.default_rng(0), progress=False)
    assert "accuracy" in history
    with pytest.raises(ValueError, match=r"labels\[0\] is 3"):
        optim.evaluate(fitted, losses.SoftmaxCrossEntropy(), x[:2], np.array([3, 0]))


def test_a_validation_loss_that_is_not_finite_stops_training_with_the_epoch():
    x, y = data()
    with np.errstate(all="ignore"), pytest.raises(optim.NonFiniteLossError, match="validation loss is nan after epoch 1"):
        optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 3]), losses.SoftmaxCrossEntropy(),
                  optim.SGD(0.1), x, y, epochs=5, batch_size=16, rng=np.random.default_rng(0),
                  validation=(np.clip(x, -1, 1) * np.float32(3e38), y), patience=2, progress=False)


def test_a_checkpoint_folder_of_another_run_is_refused_and_epochs_count_from_the_start(tmp_path):
    x, y = data()
    kwargs = dict(batch_size=16, progress=False, checkpoint=tmp_path)
    optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 3]), losses.SoftmaxCrossEntropy(), optim.SGD(0.1),
              x, y, epochs=3, rng=np.random.default_rng(0), **kwargs)
    with pytest.raises(FileExistsError, match="holds checkpoints of another run"):
        optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 3]), losses.SoftmaxCrossEntropy(), optim.SGD(0.1),
                  x, y, epochs=3, rng=np.random.default_rng(0), **kwargs)
    with pytest.raises(ValueError, match="checkpoint is at epoch 3, past epochs=2"):
        optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 3]), losses.SoftmaxCrossEntropy(), optim.SGD(0.1),
                  x, y, epochs=2, rng=np.random.default_rng(0), resume=tmp_path, **kwargs)


def test_clear_errors_at_the_door():
    x, y = data()
    with pytest.raises(TypeError, match=r"validation must be a pair \(x_val, y_val\), got tuple of length 1"):
        optim.fit(layers.mlp(np.random.default_rng(0), [5, 3]), losses.MSE(), optim.SGD(0.1), x, y, epochs=1,
                  batch_size=8, rng=np.random.default_rng(0), validation=(x,), progress=False)
    dense = layers.Dense.init(np.random.default_rng(0), 2, 3)
    np.testing.assert_array_equal(dense([[1.0, 2.0]]), dense(np.array([[1.0, 2.0]], np.float32)))  # cast on entry
    with pytest.raises(TypeError, match=r"layers.ReLU, not layers.ReLU\(\)"):
        layers.mlp(np.random.default_rng(0), [2, 3, 1], activation=layers.ReLU())
    with pytest.raises(ValueError, match="^evaluate: batch_size must be a positive int"):
        optim.evaluate(dense, losses.MSE(), x[:, :2], np.zeros((64, 3), np.float32), batch_size=0)
