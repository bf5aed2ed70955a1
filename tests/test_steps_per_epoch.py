"""fit(..., steps_per_epoch=k): epochs of k full batches, the shuffled order carried on across epochs (a new
permutation when one is used up, a batch at its end continuing into the next), and exact resume mid-epoch."""

from __future__ import annotations

import numpy as np
import pytest
from comparisons import same_bits, without_seconds

from lamina import layers, losses, optim

N, BATCH, STEPS = 22, 4, 3          # 5.5 batches a permutation: batches cross into the next one
x = np.random.default_rng(0).normal(size=(N, 5)).astype(np.float32)
labels = np.random.default_rng(1).integers(0, 3, size=N)


def model_(seed=0):
    rng = np.random.default_rng(seed)
    return layers.Sequence([layers.Dense.init(rng, 5, 8), layers.BatchNorm.init(8), layers.ReLU(),
                            layers.Dropout(0.2), layers.Dense.init(rng, 8, 3)])


def fit(rng, epochs=4, **kwargs):
    return optim.fit(model_(), losses.SoftmaxCrossEntropy(), optim.SGD(0.05, momentum=0.9), x, labels,
                     epochs=epochs, batch_size=BATCH, rng=rng, progress=False, threads=1,
                     steps_per_epoch=STEPS, **kwargs)


def test_epochs_of_k_full_batches_from_a_stream_of_permutations_equal_a_loop_of_train_step():
    trained, history = fit(np.random.default_rng(3))
    rng, model, opt = np.random.default_rng(3), model_(), optim.SGD(0.05, momentum=0.9)
    state, stream, means = opt.init(model), np.empty(0, np.int64), []
    mode = layers.Mode(train=True, rng=rng)
    for _ in range(4):
        values = []
        for _ in range(STEPS):
            if len(stream) < BATCH:             # drawn when the one in use is used up, as fit draws it
                stream = np.concatenate([stream, rng.permutation(N)])
            rows, stream = stream[:BATCH], stream[BATCH:]
            model, state, value, _ = optim.train_step(model, losses.SoftmaxCrossEntropy(), opt, state,
                                                      x[rows], labels[rows], mode)
            values.append(value)
        total = 0.0
        for value in values:
            total += value
        means.append(total / STEPS)
    assert same_bits(trained, model) and history["loss"] == means and len(history["accuracy"]) == 4


class Sizes:
    def __init__(self):
        self.seen = []

    def on_batch_end(self, run):
        self.seen.append((run.epoch, run.batch, len(run.prediction), run.batches))


def test_every_batch_is_full_and_an_epoch_has_k_of_them():
    sizes = Sizes()
    fit(np.random.default_rng(0), epochs=3, callbacks=[sizes])
    assert sizes.seen == [(e, b, BATCH, STEPS) for e in (1, 2, 3) for b in (1, 2, 3)]


@pytest.mark.parametrize("start", ["checkpoint-00001-0000002.npz", "checkpoint-00002-0000001.npz",
                                   "checkpoint-00003-0000000.npz"])
def test_resume_mid_epoch_is_bit_for_bit_the_uninterrupted_run(tmp_path, start):
    reference_rng = np.random.default_rng(5)
    reference, history = fit(reference_rng, epochs=5)
    fit(np.random.default_rng(5), epochs=5, checkpoint=tmp_path / "all", checkpoint_every=1, keep=100)
    saved = optim.load_checkpoint(tmp_path / "all" / start)
    assert saved.offset is not None and saved.epoch_rng_state is not None   # the carried-over order is saved
    rng = np.random.default_rng(999)
    model, h = fit(rng, epochs=5, resume=tmp_path / "all" / start, checkpoint=tmp_path / "again")
    assert same_bits(model, reference) and [b.tobytes() for b in layers.buffers(model)] == \
        [b.tobytes() for b in layers.buffers(reference)]
    assert without_seconds(h) == without_seconds(history)
    assert rng.bit_generator.state == reference_rng.bit_generator.state


def test_resuming_with_another_steps_per_epoch_is_refused(tmp_path):
    fit(np.random.default_rng(0), epochs=1, checkpoint=tmp_path)
    with pytest.raises(ValueError, match=r"\n  steps_per_epoch: checkpoint has 3, this run has 4"):
        optim.fit(model_(), losses.SoftmaxCrossEntropy(), optim.SGD(0.05, momentum=0.9), x, labels, epochs=2,
                  batch_size=BATCH, rng=np.random.default_rng(0), progress=False, threads=1,
                  steps_per_epoch=4, resume=tmp_path)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_steps_per_epoch_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match=f"steps_per_epoch must be a positive int or None, got {bad!r}"):
        optim.fit(model_(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, labels, epochs=1,
                  batch_size=BATCH, rng=np.random.default_rng(0), progress=False, steps_per_epoch=bad)
