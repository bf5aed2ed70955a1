"""The named optimizers' common part: a record of hyper-parameters whose ``transforms()`` are chained once."""

from __future__ import annotations

import attrs

from lamina.layers.records.hints import KeywordHints
from lamina.layers.records.pickling import BuiltOnLoad
from lamina.optim import hyper
from lamina.optim.chain import Chain
from lamina.optim.clipping import clip_by_global_norm
from lamina.optim.transform import masked, predicate_repr
from lamina.optim.transforms import add_decayed_weights, scale_by_learning_rate

QUIET = "lamina.shown unless None"


@attrs.frozen(repr=False)
class Optimizer(KeywordHints, BuiltOnLoad):
    """Base of SGD, Adam, AdamW, RMSprop: init, update, update_in_place, rate of their chain.

    A subclass is an ``attrs.frozen(repr=False)`` record of its hyper-parameters (``learning_rate``,
    ``weight_decay`` and ``clip_norm``, positional, among them) with a ``scaling()`` method: the transforms
    between the clipping and the learning rate (None entries are left out). ``decay`` is keyword-only.
    """

    # which parameters the weight decay reaches: None (all), or where(path, param) -> bool, asked once each
    decay: object = attrs.field(default=None, validator=hyper.optional_predicate, repr=predicate_repr,
                                metadata={QUIET: True}, kw_only=True)
    _chain = attrs.field(init=False, eq=False, repr=False, default=None)

    def __attrs_post_init__(self):
        object.__setattr__(self, "_chain", Chain(tuple(t for t in self.transforms() if t is not None)))

    def transforms(self) -> tuple:
        """clip (if ``clip_norm``), the subclass's ``scaling()``, then the learning rate."""
        clip = clip_by_global_norm(self.clip_norm) if self.clip_norm is not None else None
        return (clip, *self.scaling(), scale_by_learning_rate(self.learning_rate))

    def scaling(self) -> tuple:
        raise NotImplementedError

    def decayed(self):
        """The weight decay transform (None without decay), on the parameters ``decay`` chooses if given."""
        if not self.weight_decay:
            return None
        decay = add_decayed_weights(self.weight_decay)
        return decay if self.decay is None else masked(decay, self.decay)

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

    def __repr__(self) -> str:
        """As attrs writes it, the subclass's fields first; ``decay`` only when set (the reprs of 0.2, which
        checkpoints hold)."""
        fields = sorted(attrs.fields(type(self)), key=lambda f: f.inherited)
        values = [(f, getattr(self, f.name)) for f in fields if f.repr]
        shown = [f"{f.name}={f.repr(value) if callable(f.repr) else repr(value)}" for f, value in values
                 if not (f.metadata.get(QUIET) and value is None)]
        return f"{type(self).__name__}({', '.join(shown)})"

