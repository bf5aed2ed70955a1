"""A newcomer is guided: habits from PyTorch and Keras get a pointer, training that goes wrong says so, work
is kept."""

from __future__ import annotations

import signal
import warnings

import attrs
import numpy as np
import pytest

from lamina import data, layers, losses, optim


def blobs(n=256, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = (rng.normal(size=(n, d)) + 2.0 * np.eye(k, d)[y]).astype(np.float32)
    return x, y


def model(sizes=(5, 16, 3), seed=0):
    return layers.mlp(np.random.default_rng(seed), list(sizes))


def quiet_fit(m, loss, opt, x, y, **kwargs):
    kwargs = {"epochs": 1, "batch_size": 16, "rng": np.random.default_rng(0), "progress": False, **kwargs}
    return optim.fit(m, loss, opt, x, y, **kwargs)


# ---- habits from PyTorch and Keras ------------------------------------------------------------------

def test_sizes_where_the_arrays_go_point_to_init():
    with pytest.raises(TypeError, match=r"Dense\(784, 10\) gives the record's arrays.*Dense\.init\(rng, 784, "
                                        r"10\)"):
        layers.Dense(784, 10)


@pytest.mark.parametrize("make, match", [
    (lambda: optim.SGD(lr=0.1), r"SGD takes no lr= \(did you mean learning_rate=\?\)"),
    (lambda: optim.Adam(lr=1e-3), r"Adam takes no lr= \(did you mean learning_rate=\?\)"),
    (lambda: layers.Dropout(p=0.2), r"Dropout takes no p= \(did you mean rate=\?\)"),
    (lambda: layers.LeakyReLU(negative_slop=0.2), r"did you mean negative_slope=\?"),
])
def test_a_keyword_from_another_library_names_the_one_meant(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_sequence_of_several_arguments_asks_for_a_list():
    with pytest.raises(TypeError, match=r"Sequence\(\[a, b, \.\.\.\]\), not Sequence\(a, b, \.\.\.\)"):
        layers.Sequence(layers.ReLU(), layers.Tanh())


def test_mlp_takes_an_activation_by_name_and_lists_the_names_it_knows():
    assert isinstance(layers.mlp(np.random.default_rng(0), [3, 4, 2], activation="tanh").layers[1],
                      layers.Tanh)
    with pytest.raises(ValueError, match=r"unknown activation 'swish'; expected one of \['gelu', 'identity'"):
        layers.mlp(np.random.default_rng(0), [3, 4, 2], activation="swish")


def test_a_float64_layer_in_a_float32_model_is_named_with_both_dtypes():
    f64 = layers.Dense.init(np.random.default_rng(0), 4, 4, dtype=np.float64)
    with pytest.raises(TypeError, match=r"share one dtype.*float32.*float64.*\(layers\[1\] is float64\)"):
        layers.Sequence([layers.Dense.init(np.random.default_rng(0), 3, 4), f64, layers.Dense.init(
            np.random.default_rng(0), 4, 2)])


# ---- targets that do not fit the loss -----------------------------------------------------------------

def test_int_one_hot_targets_suggest_argmax():
    x, y = blobs()
    with pytest.raises(TypeError, match=r"look like one-hot rows: use y\.argmax\(1\)"):
        quiet_fit(model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, np.eye(3, dtype=np.int64)[y])


def test_a_column_of_int_labels_suggests_ravel():
    x, y = blobs()
    with pytest.raises(TypeError, match=r"y\.ravel\(\)"):
        quiet_fit(model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y[:, None])


def test_float_one_hot_targets_get_an_accuracy_by_argmax():
    x, y = blobs()
    _, history = quiet_fit(model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x,
                           np.eye(3, dtype=np.float32)[y])
    _, by_labels = quiet_fit(model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y)
    assert history["accuracy"] == by_labels["accuracy"]


def test_one_output_under_softmax_cross_entropy_asks_for_one_per_class():
    x, y = blobs(k=2)
    with pytest.raises(ValueError, match=r"1 output, but softmax cross-entropy needs one output per class.*"
                                         r"BinaryCrossEntropy"):
        quiet_fit(model((5, 8, 1)), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y)


# ---- training that goes wrong says so ----------------------------------------------------------------

def test_unscaled_pixels_get_a_warning_that_names_the_fix():
    x, y = blobs()
    with pytest.warns(optim.TrainingWarning, match=r"up to \d+.*x / 255.*data\.Rescale"):
        quiet_fit(model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.01), np.abs(x) * 255, y)


def test_scaled_inputs_get_no_warning():
    x, y = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error", optim.TrainingWarning)
        quiet_fit(model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y, epochs=3)


def test_divergence_is_a_warning_naming_the_learning_rate_and_training_goes_on():
    # as `python examples/mnist.py --lr 100` did: loss 1e4 and more, accuracy at chance
    (x, y), _ = data.mnist()
    with np.errstate(all="ignore"), pytest.warns(optim.TrainingWarning,
                                                 match=r"diverging.*learning rate.*now 100"):
        _, history = quiet_fit(layers.mlp(np.random.default_rng(0), [784, 32, 10]),
                               losses.SoftmaxCrossEntropy(),
                               optim.SGD(100.0), x[:6400], y[:6400], epochs=2, batch_size=64)
    assert len(history["loss"]) == 2 and history["loss"][0] > 100


# ---- work is kept ------------------------------------------------------------------------------------

@attrs.frozen
class InterruptAt:
    """A callback that sends SIGINT to this process after batch ``at`` of epoch 2."""

    at: int

    def on_batch_end(self, run):
        if run.epoch == 2 and run.batch == self.at:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_without_a_checkpoint_folder_keeps_the_model_and_history():
    x, y = blobs()
    with pytest.raises(KeyboardInterrupt) as caught:
        quiet_fit(model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y, epochs=5,
                  callbacks=[InterruptAt(3)])
    error = caught.value
    assert isinstance(error, optim.TrainingInterrupted) and error.checkpoint is None
    # epoch 1 complete, epoch 2 stopped after batch 4 (the next boundary)
    assert len(error.history["loss"]) == 1
    assert error.model != model()           # trained: not the initial weights
    assert all(not p.flags.writeable for p in layers.parameters(error.model))


def test_an_unwritable_checkpoint_folder_fails_before_the_first_batch(tmp_path):
    x, y = blobs()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=r"cannot make the checkpoint folder .*file/run"):
        quiet_fit(model(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y, checkpoint=blocker / "run",
                  callbacks=[InterruptAt(1)])  # (never reached: nothing trains)


def test_a_non_finite_loss_without_checkpoints_promises_none():
    x, y = blobs()
    with np.errstate(all="ignore"), pytest.raises(optim.NonFiniteLossError) as caught:
        quiet_fit(model(), losses.SoftmaxCrossEntropy(), optim.SGD(1e38), x, y)
    assert "checkpoint" not in str(caught.value) and "learning rate" in str(caught.value)


def random_data(n=64, d=5, k=3, seed=0):
    """x float32 (n, d) from a normal, y int labels (n,) in [0, k)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, size=n)


def test_a_validation_loss_that_is_not_finite_stops_training_with_the_epoch():
    x, y = random_data()
    with np.errstate(all="ignore"), pytest.raises(optim.NonFiniteLossError,
                                                  match="validation loss is nan after epoch 1"):
        optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 3]), losses.SoftmaxCrossEntropy(),
                  optim.SGD(0.1), x, y, epochs=5, batch_size=16, rng=np.random.default_rng(0),
                  validation=(np.clip(x, -1, 1) * np.float32(3e38), y), patience=2, progress=False)


def test_a_checkpoint_folder_of_another_run_is_refused_and_epochs_count_from_the_start(tmp_path):
    x, y = random_data()
    kwargs = dict(batch_size=16, progress=False, checkpoint=tmp_path)
    optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 3]), losses.SoftmaxCrossEntropy(), optim.SGD(0.1),
              x, y, epochs=3, rng=np.random.default_rng(0), **kwargs)
    with pytest.raises(FileExistsError, match="holds checkpoints of another run"):
        optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 3]), losses.SoftmaxCrossEntropy(),
                  optim.SGD(0.1),
                  x, y, epochs=3, rng=np.random.default_rng(0), **kwargs)
    with pytest.raises(ValueError, match="checkpoint is at epoch 3, past epochs=2"):
        optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 3]), losses.SoftmaxCrossEntropy(),
                  optim.SGD(0.1),
                  x, y, epochs=2, rng=np.random.default_rng(0), resume=tmp_path, **kwargs)
