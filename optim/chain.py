"""optim.chain: an optimizer made of transforms (optax's shape), and its state.

    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.scale_by_adam(),
                      optim.scale_by_learning_rate(1e-3))
    state = opt.init(model)
    model, state = opt.update(model, grads, state)     # pure: nothing given is changed

The whole-tree transforms run first, on every gradient; then, parameter by parameter, the
per-array transforms that act on it, in order; the parameter becomes p + u. Buffers (running
statistics) are taken from the gradient record, never stepped. Every transform is read once, by
``describe``, when the chain is built; ``executor.py`` runs it, purely or in place.
"""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.records.tree import check_same_structure, named_parameters, replace_parameters, structure
from lamina.optim import executor
from lamina.optim.chain_state import ChainState, FreeStates, frozen, stored, with_plan
from lamina.optim.executor import FLUSH_EVERY, flush_subnormals  # noqa: F401  (their home before 0.3)
from lamina.optim.transform import Described, describe
from lamina.layers.records.tree import fold_gradients


def _flatten(transforms) -> tuple:
    flat = []
    for t in transforms:
        flat.extend(t.transforms if isinstance(t, Chain) else (t,))
    return tuple(flat)


def _described(chain) -> tuple:
    """Every transform read once (a TypeError saying what to add), whole-tree ones first."""
    described = tuple(describe(t) for t in chain.transforms)
    seen_per_array = None
    for d in described:
        if d.needs is not None and d.needs.whole_tree:
            if seen_per_array is not None:
                raise ValueError(f"chain: the whole-tree transform {d.transform!r} comes after the per-array "
                                 f"transform {seen_per_array!r}; whole-tree transforms (clipping) run first, "
                                 f"put them first")
        else:
            seen_per_array = d.transform
    return described


@attrs.frozen(repr=False)
class Chain:
    """An optimizer: ``transforms`` applied in order (whole-tree ones first); see ``chain``."""

    transforms: tuple = attrs.field(converter=_flatten)
    described: tuple = attrs.field(init=False, eq=False)   # each transform as describe read it
    tree: tuple = attrs.field(init=False, eq=False)        # the whole-tree ones
    arrays: tuple = attrs.field(init=False, eq=False)      # the per-array ones
    stateful: tuple = attrs.field(init=False, eq=False)    # indices in arrays of those keeping state
    state_index: tuple = attrs.field(init=False, eq=False)  # per array transform: its entry in states or None
    declared: bool = attrs.field(init=False, eq=False)     # every transform declares needs: in place allowed

    def __attrs_post_init__(self):
        described = _described(self)
        whole = [d.needs is not None and d.needs.whole_tree for d in described]
        arrays = tuple(d for d, w in zip(described, whole) if not w)
        stateful = tuple(a for a, d in enumerate(arrays) if d.stateful)
        for name, value in (("described", described), ("arrays", arrays), ("stateful", stateful),
                            ("tree", tuple(d for d, w in zip(described, whole) if w)),
                            ("state_index", tuple(stateful.index(a) if a in stateful else None
                                                  for a in range(len(arrays)))),
                            ("declared", all(d.needs is not None for d in described))):
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"chain({', '.join(map(repr, self.transforms))})"

    def rate(self, step: int) -> float | None:
        """The learning rate at ``step`` when the chain has one transform declaring ``rate``; else None."""
        rates = [d for d in self.arrays if d.needs is not None and d.needs.rate]
        return rates[0].rate(step) if len(rates) == 1 else None

    def init(self, model) -> ChainState:
        """Step 0 and each stateful transform's initial state; each ``masked``'s ``where`` asked here."""
        named = list(named_parameters(model))
        states = tuple(_initial(self.arrays[a], model, named) for a in self.stateful)
        schedule = executor.make_schedule(self, model, structure(model))
        return with_plan(0, ChainState(step=0, states=states).states, executor.Plan(schedule))

    def check(self, model, grads, state) -> tuple:
        """The model's structure; StructureError (or ValueError) when grads or the state do not fit it."""
        if not isinstance(state, ChainState):
            raise ValueError(f"chain: the optimizer state must be a ChainState, got {type(state).__name__}; "
                             f"make it with opt.init(model)")
        model_structure = structure(model)
        if structure(grads) != model_structure:
            check_same_structure(model, grads)
        expected = [_entry(self.arrays[a]) for a in self.stateful]
        found = [len(s) if all(type(r) is not FreeStates for r in s) else "free" for s in state.states]
        if found != expected:
            stateful = ", ".join(repr(self.arrays[a].transform) for a in self.stateful) or "none"
            raise ValueError(f"chain: the state holds {found} state arrays per transform, this optimizer "
                             f"keeps {expected} ({stateful}); make the state with opt.init(model)")
        for records in state.states:
            for record in records:
                if type(record) is FreeStates:
                    n = len(list(named_parameters(model)))
                    if len(record.values) != n:
                        raise ValueError(f"chain: a free state holds {len(record.values)} parameters' "
                                         f"states, the model has {n}; make the state with opt.init(model)")
                elif structure(record) != model_structure:
                    check_same_structure(model, record, names=("model", "optimizer state"))
        return model_structure

    def update(self, model, grads, state: ChainState):
        """(model, gradients, state) -> (new model, new state); nothing given is changed."""
        grads = fold_gradients(model, grads)  # a shared record's parts summed: stepped once
        return executor.update(self, model, grads, state, self.check(model, grads, state))

    def update_in_place(self, model, grads, state: ChainState):
        """The update written into the buffers behind ``model``'s and ``state``'s arrays; see executor.py.

        ``model`` and ``state`` hold read-only views over writable buffers the caller owns (made
        inside ``layers.records.parameter.owning()``, e.g. ``optim.in_place.owned``); ``grads`` is read,
        never written. Returns the same model record and a state holding the same records (the
        model's buffers copied from ``grads``), bit for bit what ``update`` gives. Anything not
        owned, or two arrays sharing a buffer: the pure ``update``.
        """
        return executor.update_in_place(self, model, grads, state)


def _entry(d: Described):
    """What a transform's entry in ChainState.states holds: its number of state arrays, or 'free'."""
    return "free" if d.needs is None else len(d.needs.state)


def _initial(d: Described, model, named: list) -> tuple:
    """A stateful transform's entry in ChainState.states, from its init of each parameter."""
    if d.needs is None:
        return (FreeStates(values=tuple(stored(d.init(p), f"chain: {d.transform!r}.init of {path}")
                                        for path, p in named)),)
    names = d.needs.state
    per_param = [tuple(d.init(p)) for _, p in named]
    if any(len(s) != len(names) for s in per_param):
        raise ValueError(f"chain: {d.transform!r}.init gave a state of another length than its "
                         f"needs.state {names}")
    return tuple(replace_parameters(model, iter([frozen(np.array(s[j])) for s in per_param]))
                 for j in range(len(names)))


def chain(*transforms) -> Chain:
    """An optimizer applying ``transforms`` in order: ``init(model)``, ``update(model, grads, state)``."""
    return Chain(transforms)
