"""The estimators' epoch loop: one shuffle per epoch from the estimator's Generator, optim.train_step per batch."""

from __future__ import annotations

import numpy as np

from lamina import layers, optim


def train_epoch(model, loss, optimizer, state, x, y, batch_size: int, rng: np.random.Generator, classify: bool):
    """One epoch -> (model, state, mean batch loss, training accuracy or None).

    One ``rng.permutation(n)``, then batches of ``batch_size`` in that order, each one
    ``optim.train_step``; dropout and other random layers draw from the same ``rng``.
    """
    n = len(x)
    order = rng.permutation(n)
    mode = layers.Mode(train=True, rng=rng)
    total, correct, batches = 0.0, 0, 0
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        yb = y[rows]
        model, state, value, pred = optim.train_step(model, loss, optimizer, state, x[rows], yb, mode)
        total += value
        batches += 1
        if classify:
            correct += int(np.count_nonzero(pred.argmax(axis=1) == yb))
    return model, state, total / batches, (correct / n if classify else None)


def held_out(x, y, fraction: float, rng: np.random.Generator, who: str):
    """((x_train, y_train), (x_held, y_held)): ``round(fraction * n)`` samples held out, drawn with one
    ``rng.permutation(n)``; each part keeps the samples' order."""
    n = len(x)
    n_held = round(fraction * n)
    if not 0 < n_held < n:
        raise ValueError(f"{who}: validation_fraction={fraction} of {n} samples holds out {n_held}; "
                         f"expected at least one sample for validation and one for training")
    order = rng.permutation(n)
    train, held = np.sort(order[n_held:]), np.sort(order[:n_held])
    return (x[train], y[train]), (x[held], y[held])
