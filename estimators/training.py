"""The estimators' training: fit's epoch loop (optim/loop.py) with the estimators' pieces, and their held-out
split."""

from __future__ import annotations

import attrs
import numpy as np
from lamina.optim.callbacks import BestModel
from lamina.optim.loop import Loop, hooks_of
from lamina.optim.metrics import accuracy_rule
from lamina.optim.pieces import History, Validation
from lamina.optim.run import Run
from lamina.optim.step import OwnedStep, in_place, owned_copy
from lamina.optim.threads import BlasThreads

from lamina import data

LINE_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")


@attrs.define
class EpochLine:
    """``verbose``: one line per epoch, ``NetClassifier epoch 3: loss 0.1234, accuracy 0.9876, seconds
    0.0123``."""

    who: str

    def on_epoch_end(self, run: Run) -> None:
        history = run.history
        shown = ", ".join(f"{key} {history[key][-1]:.4f}" for key in LINE_KEYS if history.get(key))
        print(f"{self.who} epoch {len(history['loss'])}: {shown}", flush=True)


def train(model, state, loss, optimizer, x, y, *, epochs: int, batch_size: int, rng: np.random.Generator,
          history: dict, classify: bool, validation=None, patience=None, threads=1, verbose=False, who=""):
    """``epochs`` epochs of fit's loop on (x, y) from ``model`` and optimizer ``state`` -> (model, state).

    ``history`` grows (loss, accuracy when ``classify``, val_loss and val_accuracy with
    ``validation=(x_val, y_val)``, seconds); ``patience``: stop after that many epochs without a
    lower val_loss (the training loss without validation), keeping the best model with validation.
    """
    keys = ["loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    for key in keys[:2 if classify else 1] + (keys[2:4 if classify else 3] if validation else []) + keys[4:]:
        history.setdefault(key, [])
    run = Run(epochs, -(-len(x) // batch_size), history, owned_copy(model, model),
              owned_copy(state, model))
    best = None
    if patience is not None:
        best = BestModel(validation is not None, patience, "val_loss" if validation else "loss",
                         since=len(history["loss"]))
    with BlasThreads(threads, who=who) as blas:
        pieces = [validation and Validation(loss, *validation), History(optimizer, blas), best,
                  verbose and EpochLine(who)]
        step = OwnedStep(loss, in_place(optimizer, reuse_gradients=True), blas)
        Loop(x, y, batch_size, rng, step, hooks_of([p for p in pieces if p]),
             accuracy_rule(loss, y) if classify else None, dtype=x.dtype, keep_grads=False)(run)
    model, state = run.live()
    return (best.best if best is not None and best.best is not None else model), state


def held_out(x, y, fraction: float, rng: np.random.Generator, who: str):
    """((x_train, y_train), (x_held, y_held)): ``data.split``, its refusal phrased for the estimator's
    setting."""
    try:
        return data.split(x, y, fraction, rng)
    except ValueError:
        n, n_held = len(x), round(fraction * len(x))
        raise ValueError(f"{who}: validation_fraction={fraction} of {n} samples holds out {n_held}; "
                         f"expected at least one sample for validation and one for training") from None
