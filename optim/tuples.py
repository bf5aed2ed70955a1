"""Several inputs and outputs in the loop: a tuple x (or y) is handled part by part, every array sliced alike;
``losses.Multi`` adds each part's loss (and accuracy, where its targets decide one) to the history."""

from __future__ import annotations

import numpy as np

from lamina.data.checks import check_inputs
from lamina.layers.errors import ShapeError


def n_samples(x) -> int:
    """The number of samples of an array or of a tuple of them."""
    return len(x[0]) if type(x) is tuple else len(x)


def rows(x, which):
    """Rows of an array, or of every array of a tuple."""
    return tuple(part[which] for part in x) if type(x) is tuple else x[which]


def cast(x, dtype):
    """An array, or every array of a tuple, in ``dtype`` (None: as it is; a tuple: one per part)."""
    if type(x) is tuple:
        dtypes = dtype if type(dtype) is tuple else (dtype,) * len(x)
        return tuple(cast(part, d) for part, d in zip(x, dtypes))
    return x if dtype is None or x.dtype == dtype else x.astype(dtype, copy=False)


def finite(y) -> bool:
    """Whether an output (a tuple: every part) holds no NaN or inf (an integer one always)."""
    if type(y) is tuple:
        return all(map(finite, y))
    return not np.issubdtype(y.dtype, np.floating) or bool(np.isfinite(y).all())


def first_rows(x, transform):
    """The first sample (as a batch of one), converted by ``transform``."""
    first = rows(x, slice(0, 1))
    return first if transform is None else transform(first)


def per_sample_shape(x):
    """The per-sample shape: a list of shapes for a tuple (as ``output_shape`` takes it)."""
    return [part.shape[1:] for part in x] if type(x) is tuple else x.shape[1:]


def check_x(x, name: str = "x", who: str = "fit"):
    """``check_inputs`` for an array, or for every part of a tuple (named ``x[i]``), the same number of
    samples."""
    if type(x) is list and x and all(isinstance(a, np.ndarray) for a in x):
        raise TypeError(f"{who}: {name} is a list of {len(x)} arrays; for several inputs pass a tuple: "
                        f"(x0, x1)")
    if type(x) is not tuple:
        return check_inputs(x, name)
    parts = tuple(check_inputs(part, f"{name}[{i}]") for i, part in enumerate(x))
    for i, part in enumerate(parts):
        if len(part) != len(parts[0]):
            raise ValueError(f"{who}: {name}[{i}] has {len(part)} samples but {name}[0] has {len(parts[0])}; "
                             f"expected the same number (axis 0)")
    return parts


def check_like(x_val, x, name: str = "validation x") -> None:
    """ShapeError unless the validation samples are shaped like x's (part by part)."""
    if type(x) is tuple:
        if type(x_val) is not tuple or len(x_val) != len(x):
            raise ShapeError("fit", f"a tuple of {len(x)} inputs, as x", type(x_val).__name__, source=name)
        for i, (a, b) in enumerate(zip(x_val, x)):
            check_like(a, b, f"{name}[{i}]")
    elif x_val.shape[1:] != x.shape[1:]:
        raise ShapeError("fit", f"validation samples shaped like x's {x.shape[1:]}", str(x_val.shape),
                         source=name)


def check_y(check, y, n: int, outputs, loss, name: str = "y", who: str = "fit"):
    """``check(y, n, outputs, loss, name, who)`` (the targets' check), part by part for several outputs (a
    tuple ``outputs`` of counts, ``loss`` a ``losses.Multi``)."""
    parts = getattr(loss, "losses", None)
    if parts is None:
        return check(y, n, outputs, loss, name, who)
    if type(y) is not tuple or len(y) != len(parts):
        got = f"a tuple of {len(y)}" if type(y) is tuple else type(y).__name__
        raise ValueError(f"{who}: losses.Multi's {len(parts)} losses take a tuple of {len(parts)} targets as "
                         f"{name}, got {got} (pass a tuple: (y0, y1))")
    counts = outputs if type(outputs) is tuple else (outputs,) * len(parts)
    return tuple(check(part, n, counts[i], parts[i], f"{name}[{i}]", who) for i, part in enumerate(y))


def count_of(shape) -> int | None:
    """The number of outputs of one per-sample output shape (its last axis), None when unknown."""
    return shape[-1] if shape and shape[-1] is not None else None


def part_keys(loss, rules, prefix: str = "") -> list[str]:
    """The history keys of the parts of a ``losses.Multi``: loss[i], then accuracy[i] where a rule applies."""
    if rules is None:
        return []
    keys = [f"{prefix}loss[{i}]" for i in range(len(rules))]
    return keys + [f"{prefix}accuracy[{i}]" for i, rule in enumerate(rules) if rule is not None]


def part_scores(loss, rules, pred, yb) -> list:
    """[[loss value, right, count]] of each part of a batch (right and count 0 where no accuracy applies)."""
    values = loss.parts(loss.forward(pred, yb)[1]) if rules is not None else ()
    return [[value, *(rule(p, t) if rule is not None else (0, 0))]
            for value, rule, p, t in zip(values, rules or (), pred, yb)]


def add_scores(sums: list, scores: list, weight: int = 1) -> list:
    """The running per-part sums with one batch's scores added (its loss weighted by ``weight``)."""
    sums = sums or [[0.0, 0, 0] for _ in scores]
    return [[s[0] + weight * b[0], s[1] + b[1], s[2] + b[2]] for s, b in zip(sums, scores)]


def part_means(sums: list, loss_count: int, prefix: str = "") -> dict:
    """{loss[i]: mean loss, accuracy[i]: right / count where counted} of the running per-part sums."""
    means = {f"{prefix}loss[{i}]": s[0] / loss_count for i, s in enumerate(sums)}
    means.update({f"{prefix}accuracy[{i}]": s[1] / s[2] for i, s in enumerate(sums) if s[2]})
    return means
