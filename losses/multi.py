"""Multi: several losses on a tuple of predictions against a tuple of targets, added with weights."""

from __future__ import annotations


import attrs

from lamina.layers.errors import LayerError
from lamina.layers.settings import non_negative_number


def _as_losses(value) -> tuple:
    if not isinstance(value, (tuple, list)) or not value:
        raise TypeError(f"losses.Multi takes a non-empty list of losses, one per output: Multi([a, b]), "
                        f"got {type(value).__name__}")
    for i, loss in enumerate(value):
        if not (callable(getattr(loss, "forward", None)) and callable(getattr(loss, "backward", None))):
            raise TypeError(f"losses.Multi: losses[{i}] is a {type(loss).__name__}, not a loss "
                            f"(forward(pred, target), backward(cache))")
    return tuple(value)


def _as_weights(value):
    if value is None:
        return None
    weights = tuple(value)
    for i, w in enumerate(weights):
        non_negative_number("losses.Multi", f"weights[{i}]", w)
    return tuple(float(w) for w in weights)


@attrs.frozen
class Multi:
    """L = sum_i weights[i] * losses[i](pred[i], target[i]) (weights default to 1); d L / d pred[i] =
    weights[i] * d losses[i] / d pred[i]. ``parts(cache)`` gives each part's unweighted value."""

    losses: tuple = attrs.field(converter=_as_losses)
    weights: tuple | None = attrs.field(default=None, converter=_as_weights)

    def __attrs_post_init__(self):
        if self.weights is not None and len(self.weights) != len(self.losses):
            raise ValueError(f"losses.Multi: {len(self.losses)} losses but {len(self.weights)} weights; "
                             f"give one weight per loss")

    def weight(self, i: int) -> float:
        return 1.0 if self.weights is None else self.weights[i]

    def _check(self, value, what: str) -> tuple:
        k = len(self.losses)
        if type(value) is not tuple:
            hint = " (pass a tuple: (y0, y1))" if type(value) is list else ""
            raise LayerError("losses.Multi", f"{k} losses take a tuple of {k} {what}s, got "
                             f"{type(value).__name__}{hint}")
        if len(value) != k:
            raise LayerError("losses.Multi", f"{k} losses take a tuple of {k} {what}s, got {len(value)}")
        return value

    def forward(self, pred, target):
        """(pred (p_0, ...), target (t_0, ...)) -> (the weighted sum as a Python float, cache)."""
        pred, target = self._check(pred, "prediction"), self._check(target, "target")
        values, caches = [], []
        for i, loss in enumerate(self.losses):
            try:
                value, cache = loss.forward(pred[i], target[i])
            except ValueError as error:
                raise ValueError(f"losses.Multi: part {i} ({type(loss).__name__}): {error}") from None
            values.append(value)
            caches.append(cache)
        total = sum(self.weight(i) * v for i, v in enumerate(values))
        return float(total), (tuple(caches), tuple(values))

    def parts(self, cache) -> tuple:
        """Each part's unweighted loss value (for the history's ``loss[i]``)."""
        return cache[1]

    def backward(self, cache) -> tuple:
        """The tuple of d L / d pred[i]."""
        caches, _ = cache
        grads = []
        for i, loss in enumerate(self.losses):
            g = loss.backward(caches[i])
            grads.append(g if self.weight(i) == 1.0 else g * self.weight(i))
        return tuple(grads)
