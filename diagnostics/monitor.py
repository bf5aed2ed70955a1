"""Monitor: a ``fit`` callback that records, every few batches, what each layer and each parameter is
doing."""

from __future__ import annotations

import math

import numpy as np

from lamina import layers
from lamina.diagnostics.histograms import weight_histograms
from lamina.layers.settings import positive_int

DEFAULT_EVERY = 50
"""Batches between two recordings (bench/monitor.py: well under 5% of an epoch of the main job)."""

SIGMOID_SATURATED = 0.01
"""A sigmoid output below this or above 1 minus this is saturated (its slope is under 0.0099, a 25th of the
most)."""

TANH_SATURATED = 0.99
"""A tanh output beyond plus or minus this is saturated (its slope 1 - y² is under 0.02)."""


def activation_statistics(layer, y: np.ndarray) -> dict:
    """What one layer's output ``y`` (n, ..., units) says: {"kind", "mean", "std"}, and "dead" or "saturated"
    where they apply.

    - ``dead`` (ReLU): the fraction of units (the last axis; for images, channels) that are zero
      for every sample and position of the batch: such a unit passes no gradient back.
    - ``saturated`` (Sigmoid, Tanh): the fraction of outputs (sample by unit) in the flat tails,
      sigmoid below ``SIGMOID_SATURATED`` or above ``1 - SIGMOID_SATURATED``, tanh beyond
      ``±TANH_SATURATED``.
    """
    stats = {"kind": type(layer).__name__, "mean": float(y.mean()), "std": float(y.std())}
    if isinstance(layer, layers.ReLU):
        units = y.reshape(-1, y.shape[-1]) if y.ndim > 1 else y.reshape(-1, 1)
        stats["dead"] = float(np.mean(~(units > 0).any(axis=0)))
    elif isinstance(layer, layers.Sigmoid):
        stats["saturated"] = float(np.mean((y < SIGMOID_SATURATED) | (y > 1 - SIGMOID_SATURATED)))
    elif isinstance(layer, layers.Tanh):
        stats["saturated"] = float(np.mean(np.abs(y) > TANH_SATURATED))
    return stats


def parameter_statistics(before: np.ndarray, after: np.ndarray, grad: np.ndarray) -> dict:
    """{"shape", "grad_norm": ||g||, "weight_norm": ||w||, "update_ratio": ||w_after - w|| / ||w||} of one
    parameter (L2 norms).

    ``update_ratio`` is None while the weight is all zeros (a bias at its start).
    """
    weight_norm = float(np.linalg.norm(before.ravel()))
    update_norm = float(np.linalg.norm((after - before).ravel()))
    return {"shape": list(before.shape), "grad_norm": float(np.linalg.norm(grad.ravel())),
            "weight_norm": weight_norm,
            "update_ratio": update_norm / weight_norm if weight_norm > 0 else None}


def empty_records(every: int) -> dict:
    """Records before the first batch: the steps recorded and, per layer and per parameter, one list per
    statistic."""
    return {"every": every, "batches_per_epoch": None, "step": [], "epoch": [], "batch": [], "loss": [],
            "layers": {}, "parameters": {}, "weights": {}}


CONSTANT = ("kind", "shape")
"""What stays the same at every step (a layer's class, a parameter's shape): one value, not a list."""


def _append(table: dict, key: str, values: dict, length: int) -> None:
    """Add one step's ``values`` to ``table[key]``, column by column; a column that starts late is padded with
    None."""
    columns = table.setdefault(key, {})
    for name, value in values.items():
        if name in CONSTANT:
            columns[name] = value
            continue
        column = columns.setdefault(name, [])
        column.extend([None] * (length - len(column)))
        column.append(value)


def _pad(table: dict, length: int) -> None:
    """Bring every column of ``table`` to ``length`` (a layer not seen at a step gets None there)."""
    for columns in table.values():
        for name, column in columns.items():
            if name not in CONSTANT:
                column.extend([None] * (length - len(column)))


def by_epoch(records: dict, section: str, path: str, statistic: str) -> list:
    """The mean of one recorded statistic over each epoch's recorded steps: [(epoch, mean)], epochs in
    order."""
    values = records[section][path][statistic]
    sums: dict[int, list] = {}
    for epoch, value in zip(records["epoch"], values):
        if value is not None:
            sums.setdefault(epoch, []).append(value)
    return [(epoch, sum(v) / len(v)) for epoch, v in sorted(sums.items())]


class Monitor:
    """A ``fit`` callback: ``fit(..., callbacks=[monitor])``, then ``monitor.records`` (JSON as it stands).

    Every ``every`` batches (the first batch of the run, then each ``every``-th after it, counted
    across epochs) and on the last batch of each epoch (so every epoch has its row) it records:

    - per layer (each child of a combinator, by its path, through ``Mode.observe``): the mean and
      standard deviation of its output on that batch; for a ReLU the fraction of dead units (a
      unit is dead when it is zero for every sample of the batch); for a Sigmoid or Tanh the
      fraction of saturated outputs (sigmoid below 0.01 or above 0.99, tanh beyond ±0.99);
    - per parameter (by its path): the L2 norm of the batch's gradient, of the weight before the
      update, and the update-to-weight ratio ``||w_after - w_before|| / ||w_before||`` (around
      1e-3 is the usual healthy size; much larger is unstable, much smaller barely learns);
    - the batch's loss, its epoch, batch (from 1) and step (from 1);
    - and histograms of the weight matrices (parameters of two or more axes) at the end of the
      first and of the last epoch (``records["weights"]["first"]`` / ``["last"]``).

    ``records`` holds one list per statistic, aligned with ``records["step"]``: see
    ``empty_records``. Observing never changes the run's numbers. A resumed run goes on with the
    records of its checkpoint (``state()`` / ``load_state``).
    """

    def __init__(self, every: int = DEFAULT_EVERY, bins: int = 30):
        self.every = positive_int("Monitor", "every", every)
        self.bins = positive_int("Monitor", "bins", bins)
        self.records = empty_records(self.every)
        self._step = 0            # batches trained so far, across epochs
        self._before = None       # {path: weight} before the batch being recorded, while armed
        self._seen = {}           # {path: statistics} of the batch being recorded
        self._observe = self._observer  # one bound method, so fit builds its observing mode once

    # ---- the callback --------------------------------------------------------------------------

    def on_train_begin(self, run) -> None:
        self.records["batches_per_epoch"] = run.batches
        if self._due(run):
            self._arm(run)

    def on_batch_end(self, run) -> None:
        self._step += 1
        if self._before is not None:
            self._record(run)
        if self._due(run):
            self._arm(run)
        elif run.observe is self._observe:
            run.observe = None

    def on_epoch_end(self, run) -> None:
        histograms = {"epoch": run.epoch, "histograms": weight_histograms(run.model(), self.bins)}
        self.records["weights"].setdefault("first", histograms)
        self.records["weights"]["last"] = histograms

    def on_train_end(self, run) -> None:
        if run.observe is self._observe:
            run.observe = None
        self._before = None

    def state(self) -> dict:
        return {"records": self.records, "step": self._step}

    def load_state(self, state: dict) -> None:
        self.records, self._step = state["records"], int(state["step"])

    # ---- recording ------------------------------------------------------------------------------

    def _due(self, run) -> bool:
        """Whether the next batch is recorded: every ``every``-th, and the last of each epoch."""
        return self._step % self.every == 0 or run.position % run.batches + 1 == run.batches

    def _arm(self, run) -> None:
        """Get ready to record the next batch: note the weights before its update and observe its forward."""
        self._before = dict(layers.named_parameters(run.model()))
        self._seen = {}
        run.observe = self._observe

    def _observer(self, path, layer, y) -> None:
        if isinstance(y, np.ndarray) and np.issubdtype(y.dtype, np.floating) and y.size:
            self._seen[path] = activation_statistics(layer, y)

    def _record(self, run) -> None:
        records, n = self.records, len(self.records["step"])
        records["step"].append(self._step)
        records["epoch"].append(run.epoch)
        records["batch"].append(run.batch)
        records["loss"].append(float(run.loss) if math.isfinite(run.loss) else None)
        for path, stats in self._seen.items():
            _append(records["layers"], path, stats, n)
        after = dict(layers.named_parameters(run.model()))
        for path, grad in layers.named_parameters(run.grads()):
            _append(records["parameters"], path, parameter_statistics(self._before[path], after[path], grad),
                    n)
        _pad(records["layers"], n + 1)
        _pad(records["parameters"], n + 1)
        self._before, self._seen = None, {}
