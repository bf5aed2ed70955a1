"""Callbacks of ``fit``, and the built-in ones a user may also add: the progress bar, keep_best and early
stopping, the divergence watch.

A callback is any object with some of ``on_train_begin(run)``, ``on_batch_end(run)``,
``on_epoch_end(run)``, ``on_train_end(run)`` (``run``: an ``optim.Run``); one that keeps state
has ``state()`` and ``load_state(s)`` (JSON), and checkpoints carry it. On every event fit's
built-in pieces run first, in this order: Validation, History, ProgressBar, DivergenceWatch,
BestModel; then the user's callbacks in the order given; then Checkpoints and Interrupts
(optim/pieces.py).
"""

from __future__ import annotations

import math
import warnings

from lamina.optim.run import Run

HOOKS = ("on_train_begin", "on_batch_end", "on_epoch_end", "on_train_end")


def learning_rate_of(optimizer, state) -> float | None:
    """The learning rate of the last update, where the optimizer tells it (its ``rate(step)``); None
    otherwise."""
    rate = getattr(optimizer, "rate", None)
    step = getattr(state, "step", None)
    return rate(step - 1) if callable(rate) and isinstance(step, int) and step > 0 else None


class ProgressBar:
    """A tqdm bar over each epoch's batches (none with ``bars=False``) and one summary line per epoch."""

    def __init__(self, bars: bool = True):
        self.bars, self.bar = bars, None

    def on_batch_end(self, run: Run) -> None:
        if not self.bars:
            return
        if self.bar is None:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=run.batches, initial=run.batch - 1, desc=f"epoch {run.epoch}/{run.epochs}",
                            unit="batch", leave=False, dynamic_ncols=True, mininterval=0.2)
        if run.batch % 25 == 0 or run.batch == run.batches:
            self.bar.update(run.batch - self.bar.n)
            self.bar.set_postfix(run.running.postfix(), refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_epoch_end(self, run: Run) -> None:
        self.close()
        from tqdm.auto import tqdm
        parts = [f"epoch {run.epoch}/{run.epochs}"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in run.history:
                parts.append(f"{key} {run.history[key][-1]:.4f}")
        parts.append(f"{run.history['seconds'][-1]:.1f} s")
        if run.history.get("threads"):          # BLAS rounds differently by count: the count that ran
            count = run.history["threads"][-1]
            parts.append(f"{count} thread{'s' if count != 1 else ''}" if count else "BLAS threads as set")
        tqdm.write("  ".join(parts))

    def on_train_end(self, run: Run) -> None:
        self.close()


class BestModel:
    """keep_best (keep the model of the lowest ``watch``, val_loss by default) and patience (stop after that
    many epochs without a new best).

    Sets ``history["best_epoch"]`` (counted from 1, as the history's lists count) and, with patience,
    ``history["stopped_early"]``. ``since``: epochs already in the history that do not compete (an
    estimator's earlier fits).
    """

    def __init__(self, keep_best: bool, patience: int | None, watch: str = "val_loss", since: int = 0):
        self.keep_best, self.patience, self.watch, self.since = keep_best, patience, watch, since
        self.best = None

    def on_epoch_end(self, run: Run) -> None:
        history, values = run.history, run.history[self.watch]
        best, epoch = history.get("best_epoch"), len(values)
        if best is None or best <= self.since or values[-1] < values[best - 1]:
            history["best_epoch"] = best = epoch
            if self.keep_best:
                self.best = run.model()
        if self.patience:
            history["stopped_early"] = epoch - best >= self.patience
            run.stop = run.stop or history["stopped_early"]


class DivergenceWatch:
    """Warns (``TrainingWarning``, once) when the loss climbs far above where it started: training is
    diverging.

    The mean loss of each window of ``window`` batches (by default a fifth of an epoch, 5 to 50) is compared
    with the first batch's loss; ten times as large (and larger by more than 1) is divergence. Training goes
    on: the warning names the likely cause.
    """

    def __init__(self, optimizer, window: int | None = None, factor: float = 10.0):
        self.optimizer, self.window, self.factor = optimizer, window, factor
        self.first, self.sum, self.count, self.warned = None, 0.0, 0, False

    def on_batch_end(self, run: Run) -> None:
        if self.warned:
            return
        if self.window is None:
            self.window = max(5, min(50, run.batches // 5))
        if self.first is None:
            self.first = run.loss
        self.sum += run.loss
        self.count += 1
        if self.count < self.window:
            return
        mean, self.sum, self.count = self.sum / self.count, 0.0, 0
        if mean > self.factor * self.first and mean > self.first + 1 or not math.isfinite(mean):
            from lamina.optim.errors import TrainingWarning
            lr = learning_rate_of(self.optimizer, run.live()[1])
            now = f" (now {lr:g})" if lr is not None else ""
            warnings.warn(f"training is diverging: the mean batch loss rose from {self.first:.4g} to "
                          f"{mean:.4g} by epoch {run.epoch}, batch {run.batch}; the learning rate is most "
                          f"likely too large{now}: "
                          f"try one ten times smaller, or clip_norm=1.0", TrainingWarning, stacklevel=2)
            self.warned = True
