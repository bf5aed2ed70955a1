"""The estimators' epoch loop: one shuffle per epoch from the estimator's Generator, optim.train_step per batch."""

from __future__ import annotations

import numpy as np

from lamina import data, layers, optim


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
    """((x_train, y_train), (x_held, y_held)): ``data.split``, its refusal phrased for the estimator's setting."""
    try:
        return data.split(x, y, fraction, rng)
    except ValueError:
        n, n_held = len(x), round(fraction * len(x))
        raise ValueError(f"{who}: validation_fraction={fraction} of {n} samples holds out {n_held}; "
                         f"expected at least one sample for validation and one for training") from None
