"""Resume with Dropout (the rng) and BatchNorm (running statistics): bit for bit the uninterrupted run, at an
epoch's end and mid-epoch, with SGD momentum and with Adam; the NaN guard covers buffers."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons import same_bits, without_seconds

from lamina import layers, losses, optim

N, BATCH, EPOCHS = 60, 8, 3                 # 8 batches an epoch, the last one short
x = np.random.default_rng(0).normal(size=(N, 5)).astype(np.float32)
labels = np.random.default_rng(1).integers(0, 3, size=N)


def model_():
    rng = np.random.default_rng(2)
    block = layers.Residual(layers.Sequence([layers.Dense.init(rng, 8, 8), layers.BatchNorm.init(8),
                                             layers.ReLU(),
                                             layers.Dropout(0.3), layers.Dense.init(rng, 8, 8)]))
    return layers.Sequence([layers.Dense.init(rng, 5, 8), layers.BatchNorm.init(8), layers.ReLU(),
                            layers.Dropout(0.2),
                            block, layers.Concat([layers.Dense.init(rng, 8, 2), layers.Sequence([
                                layers.BatchNorm.init(8), layers.Dense.init(rng, 8, 1)])]),
                                layers.Dense.init(rng, 3, 3)])


OPTIMIZERS = {"SGD-momentum": lambda: optim.SGD(0.05, momentum=0.9), "Adam": lambda: optim.Adam(3e-3)}


class StopAt:
    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, run):
        run.stop = run.stop or (run.epoch, run.batch) == self.at


def fit(opt, rng, **kwargs):
    return optim.fit(model_(), losses.SoftmaxCrossEntropy(), opt, x, labels, epochs=EPOCHS, batch_size=BATCH,
                     rng=rng,
                     progress=False, threads=1, validation=(x[:20], labels[:20]), **kwargs)


def buffer_bytes(model):
    return [b.tobytes() for b in layers.buffers(model)]


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("stop, every", [((1, 8), None), ((2, 3), None), ((2, 5), 5), ((1, 2), 1)],
                         ids=["epoch-end", "stop-mid-epoch", "checkpoint_every-5", "checkpoint_every-1"])
def test_resume_is_bit_for_bit_the_uninterrupted_run(tmp_path, name, stop, every):
    rng_whole = np.random.default_rng(42)
    whole, history = fit(OPTIMIZERS[name](), rng_whole)

    first, _ = fit(OPTIMIZERS[name](), np.random.default_rng(42), checkpoint=tmp_path, checkpoint_every=every,
                   callbacks=[StopAt(*stop)])
    saved = optim.load_checkpoint(tmp_path)
    assert (saved.epoch, saved.position) == ((stop[0], 0) if stop[1] == 8 else (stop[0] - 1, stop[1]))
    assert buffer_bytes(saved.model) == buffer_bytes(first)
    assert not same_bits(first, whole)

    rng_resumed = np.random.default_rng(12345)          # the generator's state comes from the checkpoint
    resumed, resumed_history = fit(OPTIMIZERS[name](), rng_resumed, checkpoint=tmp_path, resume=tmp_path)
    assert same_bits(resumed, whole) and buffer_bytes(resumed) == buffer_bytes(whole)
    assert without_seconds(resumed_history) == without_seconds(history)
    assert rng_resumed.bit_generator.state == rng_whole.bit_generator.state


def test_the_running_statistics_move_and_dropout_draws_from_the_run_generator():
    trained, _ = fit(optim.SGD(0.05, momentum=0.9), np.random.default_rng(42))
    fresh = model_()
    assert all(a.tobytes() != b.tobytes() for a, b in zip(layers.buffers(trained), layers.buffers(fresh)))
    other, _ = fit(optim.SGD(0.05, momentum=0.9), np.random.default_rng(43))
    assert not same_bits(trained, other)


def test_a_running_variance_that_becomes_inf_is_reported_by_path_and_never_checkpointed(tmp_path):
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Dense.init(rng, 5, 4), layers.ReLU(),
                             layers.Residual(layers.Sequence([layers.BatchNorm.init(4), layers.Tanh()])),
                             layers.Dense.init(rng, 4, 3)])
    big = x.copy()
    big[7] *= 1e20                              # one huge sample: its batch's variance is inf in float32
    with pytest.raises(optim.NonFiniteLossError) as caught, np.errstate(all="ignore"), \
            pytest.warns(optim.TrainingWarning,
                         match="far outside the range"):  # (the huge sample, said up front)
        optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.01), big, labels, epochs=2,
                  batch_size=BATCH,
                  rng=np.random.default_rng(0), progress=False, threads=1, checkpoint=tmp_path,
                  checkpoint_every=1)
    error = caught.value
    assert error.layer == "layers[2].inner.layers[0].running_var"
    assert "layers[2].inner.layers[0].running_var" in str(error) and error.epoch == 1
    for path in tmp_path.glob("checkpoint-*.npz"):       # the ones written before it are all finite
        assert all(np.isfinite(b).all() for b in layers.buffers(layers.load(path)))
    assert error.batch > 1                                # a checkpoint was written before it
    assert str(sorted(tmp_path.glob("checkpoint-*.npz"))[-1]) in str(error)
