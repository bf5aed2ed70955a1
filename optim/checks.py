"""Checks of targets against a model and loss, done once before training or evaluation (never per layer per
batch)."""

from __future__ import annotations

import numpy as np
from lamina.data.checks import check_inputs, first_nonfinite_row  # noqa: F401 (re-exported)
from lamina.losses.targets import check_labels

from lamina import losses


def _is_binary_loss(loss) -> bool:
    binary = getattr(losses, "BinaryCrossEntropy", None)
    return binary is not None and isinstance(loss, binary)


def _ignored(loss) -> int | None:
    return loss.ignore_index if isinstance(loss, losses.SoftmaxCrossEntropy) else None


def _zeros_and_ones(y) -> bool:
    """Every entry of the non-empty ``y`` is 0 or 1 (ints: by two reductions, no copy of a strided view
    such as a corpus' windows, which ``np.isin`` would make)."""
    if y.dtype.kind in "biu":
        return bool(y.min() >= 0 and y.max() <= 1)
    return bool(np.isin(y, (0, 1)).all())


def check_targets(y, n: int, n_outputs: int | None, loss=None, name: str = "y",
                  who: str = "fit") -> np.ndarray:
    """y as labels (n,) in [0, n_outputs) (or (n, ...) under SoftmaxCrossEntropy), or a numeric array with n
    rows, all finite."""
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != n:
        got = f"{len(y)} targets" if y.ndim else "a scalar"
        raise ValueError(f"{who}: {name} must have one target per sample: x has {n} samples, "
                         f"{name} has {got}")
    if _is_binary_loss(loss):  # 0/1 (int, bool or float) or probabilities, of the prediction's shape
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{who}: {name} must hold 0/1 or probabilities for {type(loss).__name__}, "
                            f"got dtype {y.dtype}")
        return y if y.dtype.kind == "f" else y.astype(np.float64)
    if y.ndim == 1:  # class labels; a regression target has shape (n, 1)
        if y.dtype.kind == "f":
            raise ValueError(f"{who}: {name} is 1-D float (shape {y.shape}); class labels must be integers, "
                             f"and a regression target has shape (n, k): use {name}[:, None] for one output")
        if n_outputs is None:
            raise ValueError(f"{who}: {name} holds class labels, but the model's number of outputs is "
                             f"unknown")
        if n_outputs == 1 and isinstance(loss, losses.SoftmaxCrossEntropy):
            raise ValueError(f"{who}: the model has 1 output, but softmax cross-entropy needs one output per "
                             "class (2 or more; e.g. the last Dense with n_out = "
                             f"{max(2, int(y.max()) + 1)}); for a yes/no problem with one output use "
                             "losses.BinaryCrossEntropy()")
        if n_outputs == 1 and loss is not None:
            raise ValueError(f"{who}: {name} holds int labels (shape {y.shape}), but the model has 1 output: "
                             f"for {type(loss).__name__} on numbers use {name}[:, None].astype(float)")
        return check_labels(y, n, n_outputs, who if name == "y" else f"{who}: {name}", _ignored(loss))
    if y.dtype.kind != "f":
        hint = ""
        if y.ndim == 2 and y.shape[1] == 1:
            hint = (f"; for class labels use {name}.ravel() (shape (n,))" if n_outputs != 1 else
                    f"; for {type(loss).__name__} on 0/1 or other numbers use {name}.astype(float)")
        elif (y.ndim == 2 and y.size and n_outputs in (None, y.shape[1]) and _zeros_and_ones(y)
              and (y.sum(axis=1) == 1).all()):                 # one-hot rows: one column per output
            hint = f"; these look like one-hot rows: use {name}.argmax(1) for labels (n,)"
        if not hint and y.dtype.kind in "iu" and isinstance(loss, losses.SoftmaxCrossEntropy) and n_outputs:
            who = who if name == "y" else f"{who}: {name}"
            return check_labels(y, y.shape, n_outputs, who, _ignored(loss))
        raise TypeError(f"{who}: {name} must be int class labels (n,) or a float array, got dtype {y.dtype} "
                        f"with shape {y.shape}{hint}")
    row = first_nonfinite_row(y if y.ndim > 1 else y[:, None])
    if row is not None:
        raise ValueError(f"{who}: {name} row {row} holds NaN or inf; expected finite values")
    return y
