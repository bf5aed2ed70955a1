"""fit's epoch loop: batches from the shuffled order, one owned step each, the pieces' hooks around them."""

from __future__ import annotations

import contextlib
import time

import attrs
import numpy as np
from lamina.layers.mode import Mode
from lamina.layers.records.tree import named_buffers
from lamina.optim import tuples
from lamina.optim.callbacks import HOOKS
from lamina.optim.errors import NonFiniteLossError, TrainingInterrupted
from lamina.optim.run import Run
from lamina.optim.step import first_nonfinite


def hooks_of(objects) -> dict:
    """{hook: [the objects' bound methods of that name, in order]} for each of HOOKS."""
    return {hook: [method for method in (getattr(o, hook, None) for o in objects) if callable(method)]
            for hook in HOOKS}


def take(x, y, rows: np.ndarray, transform, dtype):
    """The batch of ``rows``: (xb, yb), xb converted by ``transform`` and cast to the model's ``dtype`` (one
    cast)."""
    if type(x) is np.ndarray and transform is None and (dtype is None or x.dtype == dtype):
        return x[rows], tuples.rows(y, rows)   # (the common case, without the calls)
    xb, yb = tuples.rows(x, rows), tuples.rows(y, rows)
    if transform is not None:
        xb = transform(xb)
    return tuples.cast(xb, dtype), yb


def check_parameters(run: Run) -> None:
    """NonFiniteLossError when the last update made a parameter or buffer NaN or inf (never validate,
    checkpoint or return a broken model)."""
    model, _ = run.live()
    bad = first_nonfinite(model)
    if bad is not None:
        raise NonFiniteLossError(run.epoch, run.batch, run.loss, bad, parameter=True,
                                 buffer=bad in dict(named_buffers(model)),
                                 checkpoint=run.checkpoint and str(run.checkpoint))


@attrs.frozen
class Loop:
    """The epoch loop over (x, y): ``steps`` batches an epoch (None: every sample once, the last batch maybe
    short; an int: full batches, the shuffled order carried on across epochs), each one ``step``; ``hooks``
    from ``hooks_of(pieces + callbacks)``."""

    x: np.ndarray
    y: np.ndarray
    batch_size: int
    rng: np.random.Generator
    step: object                    # OwnedStep
    hooks: dict
    accuracy: object = None         # (pred, yb) -> (right, count), or None
    steps: int | None = None
    transform: object = None
    dtype: np.dtype | None = None
    keep_grads: bool = True         # False: the update may have worked in the gradients' memory
    parts: list | None = None       # losses.Multi: each part's accuracy rule (or None), from part_rules

    def __call__(self, run: Run) -> Run:
        """Train ``run`` to its end (epochs done or stopped); attach the work to any error on its way out."""
        try:
            self._call("on_train_begin", run)
            while run.done < run.epochs and not run.stop:
                self.epoch(run)
            if run.stop and run.done < run.epochs:
                run.history["stopped_early"] = True
            self._call("on_train_end", run)
        except BaseException as error:
            if not isinstance(error, TrainingInterrupted):   # (which carries them already)
                with contextlib.suppress(AttributeError):    # (an exception class with __slots__)
                    error.model, error.history, error.checkpoint = run.live()[0], run.history, run.checkpoint
            raise
        return run

    def _call(self, hook: str, run: Run) -> None:
        for method in self.hooks[hook]:
            method(run)

    def epoch(self, run: Run) -> None:
        """One epoch (or the rest of one, on resume); an early stop ends it after the current batch."""
        run.epoch, run.started = run.done + 1, time.perf_counter()
        mode = Mode(train=True, rng=self.rng, input_grad=False)
        while run.position < run.batches:
            if run.observe is not mode.observe:
                mode = attrs.evolve(mode, observe=run.observe)
            self.batch(run, mode)
            self._call("on_batch_end", run)
            if run.stop and run.position < run.batches:
                return
        check_parameters(run)
        run.ended_epoch()
        self._call("on_epoch_end", run)

    def batch(self, run: Run, mode: Mode) -> None:
        """One training step on the next batch of the order; the epoch's running sums grow."""
        n = tuples.n_samples(self.x)
        rows = run.order.rows(self.rng, n, self.batch_size, full=self.steps is not None)
        xb, yb = take(self.x, self.y, rows, self.transform, self.dtype)
        model, state = run.live()
        where = (run.epoch, run.position + 1, run.checkpoint and str(run.checkpoint))
        model, state, value, pred, grads = self.step(model, state, xb, yb, mode, where)
        right, count = self.accuracy(pred, yb) if self.accuracy is not None else (0, 0)
        run.running.add(value, right, count)
        if self.parts is not None:    # losses.Multi: each part's loss and accuracy
            scores = tuples.part_scores(self.step.loss, self.parts, pred, yb)
            run.running.parts = tuples.add_scores(run.running.parts, scores)
        run.stepped(model, state, grads if self.keep_grads else None, value, pred)
