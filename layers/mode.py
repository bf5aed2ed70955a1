"""Mode: what a forward or backward pass is for (training or inference), passed to every layer."""

from __future__ import annotations

from typing import Callable

import attrs
import numpy as np


def _check_rng(mode, attribute, rng) -> None:
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"Mode: rng must be a numpy.random.Generator or None, got {type(rng).__name__}")


@attrs.frozen(kw_only=True)
class Mode:
    """How to run a pass; every layer's ``forward(x, mode)`` and ``backward(cache, dy, mode)`` gets one.

    - ``train``: training (dropout on, batch statistics) or inference;
    - ``rng``: where a layer that needs randomness in training draws it from;
    - ``input_grad``: whether ``backward`` must return dx (False: it may return None);
    - ``observe``: ``observe(path, layer, y)``, called by the combinators after each child's
      forward; it must not change ``y`` or draw from ``rng``;
    - ``keep_cache``: whether a backward may follow; False (inference) lets the combinators drop each
      child's cache as soon as the child has run, so memory holds one layer's work at a time.
    """

    train: bool = False
    rng: np.random.Generator | None = attrs.field(default=None, validator=_check_rng)
    input_grad: bool = True
    observe: Callable | None = None
    keep_cache: bool = True
    _inner: "Mode | None" = attrs.field(default=None, init=False, eq=False, repr=False)

    def needing_input_grad(self) -> "Mode":
        """This mode with ``input_grad=True`` (itself when it already is): for the layers after the first."""
        if self.input_grad:
            return self
        if self._inner is None:
            object.__setattr__(self, "_inner", attrs.evolve(self, input_grad=True))
        return self._inner

    def require_rng(self, layer) -> np.random.Generator:
        """The rng, or a clear error naming ``layer`` when a training pass has none."""
        if self.rng is None:
            from lamina.layers.errors import LayerError
            raise LayerError(repr(layer), "draws random numbers in training, but the mode has no rng: pass "
                             "layers.Mode(train=True, rng=np.random.default_rng(seed))")
        return self.rng


TRAIN = Mode(train=True)
"""Training without randomness (a layer that draws random numbers refuses it)."""

EVAL = Mode()
"""Inference: running statistics, no dropout, no randomness."""

INFER = Mode(keep_cache=False)
"""EVAL with no backward to follow: what ``model(x)`` and ``evaluate`` run (the same numbers, no caches)."""
