"""``optim.Run``: the state of fit's epoch loop, declared in one record; what callbacks see and checkpoints
store."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
from lamina.layers.records.tree import map_arrays


def frozen_copy(record):
    """A copy of a record whose arrays are read-only and belong to nobody else."""
    def copy(array):
        array = array.copy()
        array.setflags(write=False)
        return array
    return map_arrays(copy, record)


@attrs.define
class Running:
    """Running sums of the epoch in progress (checkpointed, so a resumed epoch ends with the same means)."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    batches: int = 0
    parts: list = attrs.field(factory=list)   # losses.Multi: [loss sum, right, count] of each part

    def add(self, value: float, right: int, count: int) -> None:
        """One more batch: its loss, and (right, count) of its accuracy."""
        self.loss_sum += value
        self.batches += 1
        self.correct += right
        self.seen += count

    def postfix(self) -> dict:
        """The means so far, as a progress bar shows them."""
        shown = {"loss": f"{self.loss_sum / max(self.batches, 1):.4f}"}
        if self.seen:
            shown["accuracy"] = f"{self.correct / self.seen:.4f}"
        return shown


@attrs.define
class Order:
    """Where the shuffled order stands: the permutation in use is ``rng.permutation(n)`` drawn from the
    Generator state ``rng_state``, and its first ``offset`` rows are used (a new one is drawn when it is used
    up, or when ``offset`` is None: none in use)."""

    rng_state: dict | None = None
    offset: int | None = None
    _permutation: np.ndarray | None = attrs.field(default=None, alias="permutation", repr=False)

    def rows(self, rng: np.random.Generator, n: int, size: int, full: bool) -> np.ndarray:
        """The next ``size`` rows of the order (n,) -> (size,) int: fewer at a permutation's end unless
        ``full``."""
        parts, wanted = [], size
        while wanted:
            if self._permutation is None or self.offset is None or self.offset >= n:
                self._permutation = self._draw(rng, n)
            part = self._permutation[self.offset:self.offset + wanted]
            self.offset += len(part)
            parts.append(part)
            wanted = wanted - len(part) if full else 0
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """A new permutation from ``rng`` (advancing it), or the one in use replayed after a resume."""
        in_use = self.offset is not None and self.offset < n
        if self.rng_state is not None and self._permutation is None and in_use:
            replay = np.random.Generator(type(rng.bit_generator)())
            replay.bit_generator.state = self.rng_state
            return replay.permutation(n)
        self.rng_state, self.offset = rng.bit_generator.state, 0
        return rng.permutation(n)


@attrs.define(eq=False)
class Run:
    """A training run as ``fit``'s loop keeps it, callbacks see it and checkpoints store it.

    ``epoch`` and ``batch`` count from 1 (``batch`` within the epoch: the batch just trained);
    ``epochs`` and ``batches`` are the totals (``batches`` per epoch); ``loss`` and
    ``prediction`` are the last batch's; ``history`` is the history so far. ``model()`` and
    ``grads()`` are read-only copies made on demand. Setting ``stop = True`` ends training after
    the current batch; setting ``observe`` to a function ``observe(path, layer, y)`` has it
    called for each layer's output from the next batch on (``None`` again to stop).

    Where the loop stands (what a checkpoint stores with the model, the optimizer state and the
    history): ``done`` epochs finished, ``position`` batches of the next one trained, ``order``
    (the shuffled order: see ``Order``), ``running`` (the epoch's sums). ``signal`` is the
    Ctrl-C / SIGTERM received (stop at the next batch boundary), ``started`` the
    ``time.perf_counter()`` at which the epoch in progress began, ``checkpoint`` the last file
    written (None), ``resumed_from`` the checkpoint the run started from (None).
    """

    epochs: int
    batches: int
    history: dict
    _model: object = attrs.field(alias="model", repr=False)
    _state: object = attrs.field(alias="state", repr=False)
    epoch: int = 0
    batch: int = 0
    loss: float = math.nan
    prediction: np.ndarray | None = attrs.field(default=None, repr=False)
    stop: bool = False
    observe: Callable | None = None
    done: int = 0
    position: int = 0
    order: Order = attrs.field(factory=Order)
    running: Running = attrs.field(factory=Running)
    signal: int | None = None
    started: float = 0.0
    checkpoint: Path | None = None
    resumed_from: Path | None = None
    _grads: object = attrs.field(default=None, alias="grads", repr=False)

    def model(self):
        """The model as it is now (after the last update): a read-only copy."""
        return frozen_copy(self._model)

    def grads(self):
        """The last batch's gradients (params hold gradients, buffers their new values): a read-only copy."""
        if self._grads is None:
            raise RuntimeError("run.grads(): no batch has been trained yet")
        return frozen_copy(self._grads)

    def live(self):
        """(model, optimizer state) as the loop trains them: not copies (they change with the next step), for
        the loop's own pieces; callbacks use ``model()``."""
        return self._model, self._state

    def optimizer_state(self):
        """The optimizer's state as it is now: a read-only copy."""
        return frozen_copy(self._state)

    def saved(self) -> dict:
        """Where the loop stands, as a checkpoint stores it (JSON but the Generator state): {key: value}."""
        return {"epoch": self.done, "position": self.position, "history": self.history,
                "running": attrs.asdict(self.running), "epoch_rng_state": self.order.rng_state,
                "offset": self.order.offset}

    @classmethod
    def resumed(cls, checkpoint, model, state, *, epochs: int, batches: int) -> Run:
        """The run where ``checkpoint`` left it, training ``model`` and ``state`` (the loop's own copies)."""
        return cls(epochs, batches, checkpoint.history, model, state, done=checkpoint.epoch,
                   position=checkpoint.position, order=Order(checkpoint.epoch_rng_state, checkpoint.offset),
                   running=Running(**checkpoint.running), resumed_from=checkpoint.path,
                   stop=bool(checkpoint.history.get("stopped_early")))  # (stopped early: stays stopped)

    def stepped(self, model, state, grads, value: float, prediction) -> None:
        """One batch trained: its results, and the loop one batch further."""
        self._model, self._state, self._grads = model, state, grads
        self.position += 1
        self.batch, self.loss, self.prediction = self.position, value, prediction

    def ended_epoch(self) -> None:
        """The epoch in progress is over: the loop stands at the start of the next."""
        self.done, self.position = self.epoch, 0
