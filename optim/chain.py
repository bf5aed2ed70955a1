"""optim.chain: an optimizer made of transforms (optax's shape), and its state.

    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.scale_by_adam(), optim.scale_by_learning_rate(1e-3))
    state = opt.init(model)
    model, state = opt.update(model, grads, state)     # pure: nothing given is changed

The whole-tree transforms run first, on every gradient; then, parameter by parameter, the
per-array transforms that apply to its path, in order; the parameter becomes p + u. Buffers
(running statistics) are taken from the gradient record, never stepped. ``update_in_place`` is
the same arithmetic written into buffers the caller owns (see in_place.py).
"""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import StructureError
from lamina.layers.records.registry import register
from lamina.layers.records.tree import fold_gradients
from lamina.layers.records.tree import (check_same_structure, named_parameters, parameters, replace_arrays, structure,
                                update_buffers)


def frozen(array: np.ndarray) -> np.ndarray:
    """A fresh array made read-only in place: a record takes it without a copy, and nobody can own it."""
    array.setflags(write=False)
    return array


def _is_count(instance, attribute, value) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"ChainState: step must be an int >= 0, got {value!r}")


def _is_states(instance, attribute, value) -> None:
    if type(value) is not tuple or not all(type(s) is tuple for s in value):
        raise ValueError(f"ChainState: states must be a tuple of tuples of records, got {str(value)[:80]}")


@register
@attrs.frozen
class ChainState:
    """The number of updates done, and per stateful transform (in chain order) one model-shaped record per state array."""

    step: int = attrs.field(default=0, validator=_is_count)
    states: tuple = attrs.field(default=(), validator=_is_states)
    # the in-place path's plan for the records it was made for (never saved, never compared)
    plan: object = attrs.field(default=None, init=False, eq=False, repr=False)


def _flatten(transforms) -> tuple:
    flat = []
    for t in transforms:
        if isinstance(t, Chain):
            flat.extend(t.transforms)
        elif callable(getattr(t, "update", None)) and callable(getattr(t, "init", None)) or getattr(t, "whole_tree", False):
            flat.append(t)
        else:
            raise TypeError(f"chain: {t!r} is not a transform (it needs init and update)")
    return tuple(flat)


def _check_order(instance, attribute, transforms) -> None:
    seen_per_array = None
    for t in transforms:
        if getattr(t, "whole_tree", False):
            if seen_per_array is not None:
                raise ValueError(f"chain: the whole-tree transform {t!r} comes after the per-array transform "
                                 f"{seen_per_array!r}; whole-tree transforms (clipping) run first, put them first")
        else:
            seen_per_array = t


@attrs.frozen(repr=False)
class Chain:
    """An optimizer: ``transforms`` applied in order (whole-tree ones first); see ``chain``."""

    transforms: tuple = attrs.field(converter=_flatten, validator=_check_order)

    def __repr__(self) -> str:
        return f"chain({', '.join(map(repr, self.transforms))})"

    @property
    def tree_transforms(self) -> tuple:
        return tuple(t for t in self.transforms if getattr(t, "whole_tree", False))

    @property
    def array_transforms(self) -> tuple:
        return tuple(t for t in self.transforms if not getattr(t, "whole_tree", False))

    @property
    def stateful(self) -> tuple:
        """The per-array transforms that keep state, in order: ChainState.states has one entry per each."""
        return tuple(t for t in self.array_transforms if getattr(t, "state_names", ()))

    def rate(self, step: int) -> float | None:
        """The learning rate at ``step`` when the chain has one ``scale_by_learning_rate``; else None."""
        rates = [t for t in self.array_transforms if hasattr(_innermost(t), "rate")]
        return _innermost(rates[0]).rate(step) if len(rates) == 1 else None

    def init(self, model) -> ChainState:
        """Step 0 and each stateful transform's initial state, one model-shaped record per state array."""
        ps = parameters(model)
        states = []
        for t in self.stateful:
            per_param = [tuple(t.init(p)) for p in ps]
            names = tuple(t.state_names)
            if any(len(s) != len(names) for s in per_param):
                raise ValueError(f"chain: {t!r}.init gave a state of another length than its state_names {names}")
            states.append(tuple(replace_arrays(model, iter([frozen(np.array(s[j])) for s in per_param]))
                                for j in range(len(names))))
        return ChainState(step=0, states=tuple(states))

    def check(self, model, grads, state) -> None:
        """Raise StructureError (or ValueError) when grads or the state do not fit the model."""
        if not isinstance(state, ChainState):
            raise ValueError(f"chain: the optimizer state must be a ChainState, got {type(state).__name__}; "
                             f"make it with opt.init(model)")
        model_structure = structure(model)
        if structure(grads) != model_structure:
            check_same_structure(model, grads)
        expected = [len(t.state_names) for t in self.stateful]
        if [len(s) for s in state.states] != expected:
            raise ValueError(f"chain: the state holds {[len(s) for s in state.states]} state arrays per transform, "
                             f"this optimizer keeps {expected} ({', '.join(map(repr, self.stateful)) or 'none'}); "
                             f"make the state with opt.init(model)")
        for records in state.states:
            for record in records:
                if structure(record) != model_structure:
                    check_same_structure(model, record, names=("model", "optimizer state"))

    def update(self, model, grads, state: ChainState):
        """(model, gradients, state) -> (new model, new state); nothing given is changed."""
        grads = fold_gradients(model, grads)  # a shared record's parts summed: stepped once
        self.check(model, grads, state)
        step = state.step
        named = list(named_parameters(model))
        ps = [p for _, p in named]
        tree = self.tree_transforms
        gs = parameters(grads)
        if tree:  # they scale the gradients in place: copies of their own
            gs = [np.array(g) for g in gs]
        for t in tree:
            chosen = [i for i, (path, _) in enumerate(named) if _applies(t, path)]
            out = t.update([gs[i] for i in chosen], [ps[i] for i in chosen], step)
            for i, g in zip(chosen, out):
                gs[i] = g
        columns = [[parameters(record) for record in records] for records in state.states]
        new_columns = [[[] for _ in records] for records in state.states]
        flush = flush_due(step)
        new_ps = []
        for i, (path, p) in enumerate(named):
            u, k, own, made = gs[i], 0, bool(tree), []   # own: the update may be overwritten
            for t in self.array_transforms:
                names = t.state_names
                if not _applies(t, path):       # its state stays as it is
                    for j in range(len(names)):
                        new_columns[k][j].append(columns[k][j][i])
                    k += 1 if names else 0
                    continue
                s = tuple(np.array(column[i]) for column in columns[k]) if names else ()
                factor = getattr(t, "factor", None)
                if not own and factor is not None:  # the gradient or a state array times a number: a new array
                    u, own = np.multiply(u, factor(step)), True
                else:
                    if not own and getattr(t, "writes_grad", True):
                        u, own = u.copy(), True
                    given = u
                    u, s = t.update(u, s, p, step)
                    own = (own or u is not given) and not any(u is a for a in s)
                for j, a in enumerate(s):
                    new_columns[k][j].append(a)
                    made.append(a)
                k += 1 if names else 0
            check_update(u, p, path)
            new_ps.append(frozen(p + u))
            for a in made:  # after the step used them
                if flush:
                    flush_subnormals(a)
                frozen(a)
        new_states = tuple(tuple(replace_arrays(record, iter(column))
                                 for record, column in zip(records, new_records))
                           for records, new_records in zip(state.states, new_columns))
        new_model = update_buffers(replace_arrays(model, iter(new_ps)), grads)
        return new_model, ChainState(step=step + 1, states=new_states)

    def update_in_place(self, model, grads, state: ChainState):
        """The update written into the buffers behind ``model``'s and ``state``'s arrays; see in_place.py.

        ``model`` and ``state`` hold read-only views over writable buffers the caller owns (made
        inside ``layers.parameter.owning()``, e.g. ``optim.in_place.owned``); ``grads`` is read,
        never written. Returns the same model record and a state holding the same records (the
        model's buffers copied from ``grads``), bit for bit what ``update`` gives. Anything not
        owned, or two arrays sharing a buffer: the pure ``update``.
        """
        from lamina.optim.in_place import update_in_place
        return update_in_place(self, model, grads, state)


def chain(*transforms) -> Chain:
    """An optimizer applying ``transforms`` in order: ``init(model)``, ``update(model, grads, state)``."""
    return Chain(transforms)


def _innermost(t):
    while hasattr(t, "inner"):
        t = t.inner
    return t


def _applies(t, path: str) -> bool:
    applies = getattr(t, "applies", None)
    return True if applies is None else applies(path)


def check_update(u, p, path: str) -> None:
    if not isinstance(u, np.ndarray) or u.shape != p.shape or u.dtype != p.dtype:
        got = f"{u.dtype}{u.shape}" if isinstance(u, np.ndarray) else type(u).__name__
        raise StructureError(f"chain: the update of {path} is {got}, the parameter {p.dtype}{p.shape}; "
                             f"a transform changed its shape or dtype (a NumPy scalar such as np.float64 "
                             f"promotes float32: use a Python float)")


FLUSH_EVERY = 64
"""After every this many updates, every state array's subnormal entries (0 < |s| below the
smallest normal float, 1.2e-38 in float32) are set to 0. A moment whose gradient stays 0 (a
pixel blank in every batch of a while) shrinks by its decay factor each step and spends
hundreds of steps among the subnormals, where each operation costs the CPU 10-100x more; such
a value moves no weight by anything a float32 weight can hold."""


def flush_due(step: int) -> bool:
    """Whether update number ``step`` (0-based) ends with the subnormal flush."""
    return (step + 1) % FLUSH_EVERY == 0


def flush_subnormals(s: np.ndarray, scratch: np.ndarray | None = None) -> None:
    """s's subnormal entries set to 0, in place (NaN and inf stay); |s| goes into ``scratch`` if given."""
    np.multiply(s, np.abs(s, out=scratch) >= np.finfo(s.dtype).tiny, out=s)
