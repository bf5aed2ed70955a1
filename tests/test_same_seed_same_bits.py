"""fit at a pinned thread count gives the same bits on every run; the epoch line says which count ran."""

from __future__ import annotations

import numpy as np

from comparisons import same_bits

from lamina import data, layers, losses, optim


def train(threads, progress=False):
    (x, y), _ = data.mnist()
    rng = np.random.default_rng(3)
    model = layers.mlp(rng, [784, 64, 10])
    return optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.1, momentum=0.9), x[:2048], y[:2048],
                     epochs=2, batch_size=64, rng=rng, progress=progress, threads=threads)


def test_fit_at_one_thread_twice_gives_the_same_bits():
    (first, history), (second, again) = train(1), train(1)
    assert same_bits(first, second) and history["loss"] == again["loss"] and history["threads"] == [1, 1]


def test_every_epoch_line_prints_its_thread_count(capsys):
    train(1, progress=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and all(line.endswith("s  1 thread") for line in lines), lines
