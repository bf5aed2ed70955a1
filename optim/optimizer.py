"""The named optimizers' common part: each one is a record of hyper-parameters whose ``transforms()`` are chained once."""

from __future__ import annotations

import attrs

from lamina.layers.records.hints import KeywordHints
from lamina.layers.records.pickling import BuiltOnLoad
from lamina.optim.chain import Chain


class Optimizer(KeywordHints, BuiltOnLoad):
    """Base of SGD, Adam, AdamW, RMSprop: init / update / update_in_place / rate of ``chain(*self.transforms())``.

    A subclass is an ``attrs.frozen`` record with a ``_chain`` field (init=False, eq=False,
    repr=False) and a ``transforms()`` method; None entries are left out.
    """

    def __attrs_post_init__(self):
        object.__setattr__(self, "_chain", Chain(tuple(t for t in self.transforms() if t is not None)))

    def transforms(self) -> tuple:
        raise NotImplementedError

    @property
    def chain(self) -> Chain:
        """The chain of transforms this optimizer is."""
        return self._chain

    def init(self, model):
        """The state before the first update (a ChainState: step 0, zero moments shaped like the model)."""
        return self._chain.init(model)

    def update(self, model, grads, state):
        """(model, gradients, state) -> (new model, new state); nothing given is changed."""
        return self._chain.update(model, grads, state)

    def update_in_place(self, model, grads, state):
        """The same update written into buffers the caller owns (see ``Chain.update_in_place``)."""
        return self._chain.update_in_place(model, grads, state)

    def rate(self, step: int) -> float:
        """The learning rate for update number ``step`` (0-based)."""
        return self._chain.rate(step)


def chain_field():
    return attrs.field(init=False, eq=False, repr=False, default=None)
