"""The pieces of fit's loop that are not a user's business: validation, the history, checkpoints, Ctrl-C and
SIGTERM.

Each is a callback (optim/callbacks.py says what a callback is). On every hook the pieces run in this order:
Validation, History, the progress bar and epoch line (ProgressBar), the divergence watch (DivergenceWatch),
keep_best and early stopping (BestModel); then the user's callbacks in the order given; then Checkpoints, then
Interrupts (a Ctrl-C acts once the checkpoint of that boundary is written).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import attrs
import numpy as np
from lamina.optim.callbacks import learning_rate_of
from lamina.optim.checkpoints import Checkpoint, save_checkpoint
from lamina.optim.errors import NonFiniteLossError, TrainingInterrupted
from lamina.optim.evaluation import scores
from lamina.optim.loop import check_parameters
from lamina.optim.run import Run, Running
from lamina.optim.threads import BlasThreads
from lamina.optim.tuples import part_means


@attrs.define
class Validation:
    """After each epoch: the loss (and accuracy) on (x, y) -> history's val_loss (and val_accuracy)."""

    loss: object
    x: np.ndarray
    y: np.ndarray
    transform: object = None
    threads: BlasThreads = attrs.field(factory=lambda: BlasThreads(None))

    def on_epoch_end(self, run: Run) -> None:
        result = scores(run.live()[0], self.loss, self.x, self.y, 1000, self.transform, self.threads)
        if not math.isfinite(result["loss"]):
            raise NonFiniteLossError(run.epoch, run.batch, result["loss"], None, validation=True)
        for key, value in result.items():   # loss, accuracy where the targets decide one, and each part's
            run.history[f"val_{key}"].append(value)


@attrs.define
class History:
    """After each epoch: the means of its batches (loss, accuracy), its seconds, learning rate and BLAS
    threads; then the running sums start over."""

    optimizer: object
    blas: object                # the loop's BlasThreads

    def on_epoch_end(self, run: Run) -> None:
        history, running = run.history, run.running
        history["loss"].append(running.loss_sum / running.batches)
        for key, value in part_means(running.parts, running.batches).items():   # losses.Multi's parts
            history[key].append(value)
        if "accuracy" in history:
            history["accuracy"].append(running.correct / running.seen)
        history["seconds"].append(time.perf_counter() - run.started)
        if "learning_rate" in history:
            history["learning_rate"].append(learning_rate_of(self.optimizer, run.live()[1]))
        if "threads" in history:
            history["threads"].append(self.blas.epoch())
        run.running = Running()


@attrs.define
class Checkpoints:
    """Writes a checkpoint into ``folder`` after every epoch, every ``every`` batches, and at a batch boundary
    where training stops (run.stop, Ctrl-C, SIGTERM); the last ``keep`` are kept. Never one of a model that
    went NaN or inf: the last good checkpoint stays."""

    folder: Path
    keep: int
    every: int | None
    rng: object
    settings: dict
    callbacks: list             # the user's, whose state() the checkpoint carries
    best: object = None         # the BestModel piece, whose best model it carries

    def on_batch_end(self, run: Run) -> None:
        due = self.every is not None and run.position % self.every == 0
        if run.position < run.batches and (due or run.stop or run.signal):
            self.write(run)

    def on_epoch_end(self, run: Run) -> None:
        self.write(run)

    def write(self, run: Run) -> None:
        check_parameters(run)
        states = [c.state() if callable(getattr(c, "state", None)) else None for c in self.callbacks]
        model, state = run.live()
        ckpt = Checkpoint.of(run.saved(), model=model, state=state, rng_state=self.rng.bit_generator.state,
                             settings=self.settings, best=self.best.best if self.best is not None else None,
                             callbacks=states if any(s is not None for s in states) else None)
        run.checkpoint = save_checkpoint(self.folder, ckpt, keep=self.keep, protect=run.resumed_from)


@attrs.define
class Interrupts:
    """Ctrl-C (SIGINT) and SIGTERM stop training at the next batch boundary, once its checkpoint is written:
    ``TrainingInterrupted`` for Ctrl-C, the signal's own end for SIGTERM (``requests``: the StopRequests that
    sets ``run.signal``)."""

    requests: object
    close: tuple = ()           # pieces to close first (the progress bar)

    def on_batch_end(self, run: Run) -> None:
        if run.signal and run.position < run.batches:
            self.act(run)

    def on_epoch_end(self, run: Run) -> None:
        if run.signal:
            self.act(run)

    def act(self, run: Run) -> None:
        for piece in self.close:
            piece.on_train_end(run)
        self.requests.act(TrainingInterrupted(run.live()[0], run.history, run.checkpoint))
