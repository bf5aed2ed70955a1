"""The one executor of a chain: its arithmetic written once, run in place or on copies.

Per parameter, the per-array transforms that act on its path run in order on a *slot*: the
parameter (read-only), where its new value goes, and its state arrays, which the transforms
overwrite. Two ways to fill the slots, one run:

- in place (``update_in_place``): the writable buffers behind the arrays of records the training
  loop owns (made inside ``owning()``, e.g. by ``owned``); the plan (slots, blocks, work arrays) is
  made once and kept in the state while the same records come back;
- pure (``update``, what ``Chain.update`` is): fresh arrays for the new parameters and copies of the
  state arrays the step changes, turned into new read-only records; nothing given is changed.

The run:
- the whole-tree transforms (clipping) first, on a whole copy of every gradient;
- the gradients are otherwise only read (callbacks read them after the step): a transform that
  overwrites what it is handed gets a copy in one small work array per dtype, shared by every
  slot so that it stays in cache; a scaling writes its product there directly, and a transform
  declaring ``writes_grad=False`` reads the gradient itself;
- a parameter larger than BLOCK_BYTES whose transforms are all element-wise goes block by block
  (flat views of p, g and each state array): every pass over one block is made before the next,
  so the block stays in a core's L2 cache;
- every FLUSH_EVERY updates the declared state arrays' subnormal entries become 0.

Which transform acts on which parameter (each ``masked``'s ``where``) is asked once, by the
chain's ``init`` or at the first update of a state from elsewhere, and kept (``Schedule``).
"""

from __future__ import annotations

import re

import attrs
import numpy as np

from lamina.layers.errors import StructureError
from lamina.layers.records.parameter import owned_buffer, owning
from lamina.layers.records.tree import (check_same_structure, map_arrays, named_buffers, named_parameters,
                                        parameters, replace_parameters, update_buffers)
from lamina.optim.chain_state import ChainState, FreeStates, frozen, restored, stored, with_plan

BLOCK_BYTES = 512 * 1024
"""Parameters larger than this go in blocks of this size (tests patch it to block small arrays)."""

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


def check_update(u, p, path: str) -> None:
    if not isinstance(u, np.ndarray) or u.shape != p.shape or u.dtype != p.dtype:
        got = f"{u.dtype}{u.shape}" if isinstance(u, np.ndarray) else type(u).__name__
        raise StructureError(f"chain: the update of {path} is {got}, the parameter {p.dtype}{p.shape}; "
                             f"a transform changed its shape or dtype (a NumPy scalar such as np.float64 "
                             f"promotes float32: use a Python float)")


# ---- the schedule: which transform acts where, and how to reach a gradient record's arrays -------------

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _keys(path: str) -> tuple:
    """The names and indices along a tree module's path: 'layers[2].weight' -> ('layers', 2, 'weight')."""
    return tuple(name or int(index) for name, index in _STEP.findall(path))


@attrs.frozen
class Schedule:
    """Which per-array transforms act on each parameter and which parameters each whole-tree one sees."""

    structure: tuple           # the model's structure it was made for
    paths: tuple               # each parameter's path, in named_parameters order
    acting: tuple              # per parameter: the indices in chain.arrays of the transforms acting on it
    chosen: tuple              # per whole-tree transform: the indices of the parameters it sees
    keys: tuple                # how to reach each parameter, then each buffer, in a record of this structure
    made_by: tuple = attrs.field(eq=False, repr=False)   # the chain's transforms as described (its identity)


def make_schedule(chain, model, model_structure: tuple) -> Schedule:
    """Each ``where`` asked once per parameter."""
    named = list(named_parameters(model))
    return Schedule(structure=model_structure, paths=tuple(path for path, _ in named),
                    acting=tuple(tuple(a for a, d in enumerate(chain.arrays) if d.applies(path, p))
                                 for path, p in named),
                    chosen=tuple(tuple(i for i, (path, p) in enumerate(named) if d.applies(path, p))
                                 for d in chain.tree),
                    keys=leaf_keys(model), made_by=chain.described)


def leaf_keys(record) -> tuple:
    """How to reach each parameter, then each buffer, of a record of this structure (for ``along``)."""
    return tuple(_keys(path) for path, _ in [*named_parameters(record), *named_buffers(record)])


def along(record, keys: tuple) -> list:
    """The arrays at ``keys`` (from ``leaf_keys``) in ``record``: no tree walk."""
    out = []
    for path in keys:
        value = record
        for key in path:
            value = getattr(value, key) if type(key) is str else value[key]
        out.append(value)
    return out


def gradient_arrays(schedule: Schedule, model, grads, slots: list | None = None,
                    leaves: list | None = None) -> tuple[list, list]:
    """(parameter gradients, new buffers) of ``grads``, reached along the schedule's paths (no tree walk), or
    ``leaves``: the same arrays, reached by the caller along the same keys.

    With ``slots``, each is checked against its slot (``grads`` of another structure: the StructureError
    naming where); without, ``grads`` was checked whole.
    """
    n = len(schedule.paths)
    arrays = leaves
    if arrays is None:
        try:
            arrays = along(grads, schedule.keys)
        except (AttributeError, IndexError, KeyError, TypeError):
            pass
    if arrays is None or slots is not None and not _fit(arrays, slots):
        check_same_structure(model, grads)
        raise StructureError("chain: the gradients do not fit the model")  # (check_same_structure says where)
    return arrays[:n], arrays[n:]


def _fit(arrays: list, slots: list) -> bool:
    """Whether each gradient is an array of its slot's shape and dtype, and each buffer an array."""
    for g, slot in zip(arrays, slots):
        if type(g) is not np.ndarray or g.shape != slot.target.shape or g.dtype != slot.target.dtype:
            return False
    for b in arrays[len(slots):]:
        if type(b) is not np.ndarray:
            return False
    return True


# ---- slots -----------------------------------------------------------------------------------------------

@attrs.define
class _Piece:
    """A parameter, or one block of it: the views the transforms work on."""

    param: np.ndarray          # read-only, handed to the transforms
    target: np.ndarray         # where p + u goes
    states: list               # per acting transform: its state here (arrays or blocks of them; a free state)
    flushed: tuple             # the declared state arrays (or blocks), flushed of subnormals
    span: slice | None         # the block's place in the flat gradient; None: the whole array
    in_place: bool             # whether target is the buffer behind param (p += u)
    scratch: np.ndarray | None = None   # the shared work array, this piece's size


@attrs.define
class _Slot:
    path: str
    view: np.ndarray           # the parameter, read-only, whole (for the whole-tree transforms)
    target: np.ndarray
    acting: tuple              # indices in chain.arrays
    calls: tuple               # per acting transform: Described.call()
    states: list               # per acting transform: its state, whole
    pieces: list
    full: np.ndarray | None = None   # a whole copy of the gradient, when the gradients must be copied first


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.setflags(write=False)
    return view


def _slot(chain, path: str, view, target, acting: tuple, states: list) -> _Slot:
    described = [chain.arrays[a] for a in acting]
    calls = tuple(d.call() for d in described)
    declared = [() if call[3] else s for s, call in zip(states, calls)]
    elementwise = all(d.needs is not None and d.needs.elementwise for d in described)
    blocked = target.nbytes > BLOCK_BYTES and elementwise
    in_place = view.base is target
    if not blocked:
        pieces = [_Piece(view, target, list(states), tuple(a for s in declared for a in s), None, in_place)]
    else:
        flat, flat_target = view.reshape(-1), target.reshape(-1)
        flat_states = [tuple(a.reshape(-1) for a in s) for s in states]
        block = max(BLOCK_BYTES // target.itemsize, 1)
        pieces = []
        for start in range(0, target.size, block):
            span = slice(start, min(start + block, target.size))
            blocks = [tuple(a[span] for a in s) for s in flat_states]
            flushed = tuple(a for s, call in zip(blocks, calls) if call[3] is None for a in s)
            pieces.append(_Piece(flat[span], flat_target[span], blocks, flushed, span, in_place))
    return _Slot(path, view, target, acting, calls, states, pieces)


def _share_work(slots: list) -> None:
    """One work array per dtype, as large as the largest piece, shared by every piece: it stays in cache."""
    largest = {}
    for slot in slots:
        for piece in slot.pieces:
            largest[piece.target.dtype] = max(largest.get(piece.target.dtype, 0), piece.target.size)
    work = {dtype: np.empty(size, dtype) for dtype, size in largest.items()}
    for slot in slots:
        for piece in slot.pieces:
            piece.scratch = work[piece.target.dtype][:piece.target.size].reshape(piece.target.shape)


# ---- the run: the chain's arithmetic, once -------------------------------------------------------------

def _run_tree(chain, schedule: Schedule, slots: list, step: int) -> None:
    """The whole-tree transforms on the slots' whole gradient copies (``full``)."""
    for d, chosen in zip(chain.tree, schedule.chosen):
        out = d.update_tree([slots[i].full for i in chosen], [slots[i].view for i in chosen], step)
        for i, g in zip(chosen, out):
            if g is not slots[i].full:
                np.copyto(slots[i].full, g)


def _run(slots: list, sources: list, mine: list, step: int) -> None:
    """Each slot's transforms on its gradient ``source`` (overwritable where ``mine``); p + u: target."""
    flush = flush_due(step)
    factors = {}  # each schedule asked once a step
    for slot, source, own_source in zip(slots, sources, mine):
        flat = source if len(slot.pieces) == 1 else source.reshape(-1)
        for piece in slot.pieces:
            scratch, states = piece.scratch, piece.states
            u, own = (flat if piece.span is None else flat[piece.span]), own_source
            start = u   # (checked against its slot already)
            for k, (update, factor, writes_grad, free, described) in enumerate(slot.calls):
                if factor is not None:  # a scaling: the product written here, in u if ours, else the scratch
                    value = factors.get(factor)
                    if value is None:
                        value = factors[factor] = factor(step)
                    u, own = np.multiply(u, value, out=u if own else scratch), True
                    continue
                if not own:  # the gradient, or a state array: into the scratch before anything overwrites it
                    if writes_grad:
                        np.copyto(scratch, u)
                        u, own = scratch, True
                s, given = states[k], u
                out = update(u, s, piece.param, step)
                if type(out) is not tuple or len(out) != 2:
                    raise TypeError(f"chain: {described.transform!r}.update gave {type(out).__name__} for "
                                    f"{slot.path}; it returns the pair (update, state)")
                u, new = out
                if free is not None:   # kept as data at once: it may hold the scratch
                    states[k] = _kept(new, free, slot.path)
                    own = own and u is given
                    continue
                if new is not s:
                    for a, b in zip(s, new):
                        if b is not a:
                            np.copyto(a, b)
                own = (own or u is not given) and not any(u is a for a in s)
            if u is not scratch and u is not start:
                check_update(u, piece.param, slot.path)
            if piece.in_place:
                piece.target += u
            else:
                np.add(piece.param, u, out=piece.target)
            if flush:  # after the step; the work array is free now and holds |s|
                for a in piece.flushed:
                    flush_subnormals(a, scratch=scratch)


def _kept(state, free, path: str):
    """An undeclared transform's new state as data (``stored``); a TypeError names the transform and path."""
    try:
        return stored(state, "")
    except TypeError as error:
        raise TypeError(f"chain: the state {free.transform!r} returned for {path}{error}") from None


# ---- pure: the run on copies -----------------------------------------------------------------------------

def schedule_of(chain, model, state: ChainState, model_structure: tuple) -> Schedule:
    """The state's schedule, or a new one when it has none (a state from a file) or is for other records."""
    plan = state.plan
    if plan is None:
        return make_schedule(chain, model, model_structure)
    schedule = plan.schedule
    if schedule.made_by is chain.described and schedule.structure == model_structure:
        return schedule
    return make_schedule(chain, model, model_structure)


def update(chain, model, grads, state: ChainState, model_structure: tuple):
    """(new model, new state): the run on fresh arrays; nothing given changes (checked by ``chain.check``)."""
    schedule = schedule_of(chain, model, state, model_structure)
    gs, _ = gradient_arrays(schedule, model, grads)
    columns = [records[0].values if type(records[0]) is FreeStates else [parameters(r) for r in records]
               for records in state.states]
    slots = []
    for i, p in enumerate(parameters(model)):
        acting = schedule.acting[i]
        states = [_copied_state(chain, columns, a, i) for a in acting]
        slots.append(_slot(chain, schedule.paths[i], p, np.empty_like(p), acting, states))
    _share_work(slots)
    if chain.tree:  # they scale the gradients in place: copies of the chain's own
        for slot, g in zip(slots, gs):
            slot.full = np.array(g)
        _run_tree(chain, schedule, slots, state.step)
        _run(slots, [slot.full for slot in slots], [True] * len(slots), state.step)
    else:
        _run(slots, gs, [False] * len(slots), state.step)
    stepped = replace_parameters(model, iter([frozen(slot.target) for slot in slots]))
    new_model = update_buffers(stepped, grads)
    return new_model, with_plan(state.step + 1, _new_states(chain, state, slots), Plan(schedule))


def _copied_state(chain, columns: list, a: int, i: int):
    """Transform ``a``'s state for parameter ``i``: copies the run may overwrite."""
    k = chain.state_index[a]
    if k is None:
        return ()
    if chain.arrays[a].needs is None:
        return restored(columns[k][i])
    return tuple(np.array(column[i]) for column in columns[k])


def _new_states(chain, state: ChainState, slots: list) -> tuple:
    """The state records after the run: the copies the run changed (made read-only), the rest as they were."""
    new = []
    for k, a in enumerate(chain.stateful):
        acting = [slot.acting.index(a) if a in slot.acting else None for slot in slots]
        records = state.states[k]
        if chain.arrays[a].needs is None:
            values = records[0].values
            new.append((FreeStates(values=tuple(values[i] if at is None else slot.pieces[0].states[at]
                                                for i, (slot, at) in enumerate(zip(slots, acting)))),))
            continue
        columns = []
        for j, record in enumerate(records):
            old = parameters(record)
            column = [old[i] if at is None else frozen(slot.states[at][j])
                      for i, (slot, at) in enumerate(zip(slots, acting))]
            columns.append(replace_parameters(record, iter(column)))
        new.append(tuple(columns))
    return tuple(new)


# ---- in place: the run on the loop's own buffers ---------------------------------------------------------

@attrs.define
class Plan:
    """The schedule and, in place, the slots bound to the buffers of the records it was made for."""

    schedule: Schedule
    model: object = None       # the records the slots are bound to (None: the schedule alone)
    states: tuple | None = None
    slots: list = attrs.Factory(list)
    buffers: list = attrs.Factory(list)   # the writable buffers behind the model's buffers (running stats)
    owned: frozenset = frozenset()        # ids of every buffer above and of the state buffers
    every: list = attrs.Factory(list)     # True per slot: each source may be overwritten


def bind(chain, model, state: ChainState, schedule: Schedule) -> Plan | None:
    """The plan for these records; None when an array of the model or state has no owned buffer of its own."""
    params = [owned_buffer(p) for p in parameters(model)]
    columns = [[[owned_buffer(a) for a in parameters(record)] for record in records]
               for records in state.states]
    model_buffers = [owned_buffer(b) for _, b in named_buffers(model)]
    every = params + model_buffers + [b for records in columns for column in records for b in column]
    owned = frozenset(id(b) for b in every if b is not None)
    if any(b is None for b in every) or len(owned) != len(every):
        return None  # not owned, or two arrays share a buffer: the pure update
    slots = []
    for i, (path, buffer) in enumerate(zip(schedule.paths, params)):
        acting = schedule.acting[i]
        entries = [chain.state_index[a] for a in acting]
        states = [() if k is None else tuple(column[i] for column in columns[k]) for k in entries]
        slots.append(_slot(chain, path, _read_only(buffer), buffer, acting, states))
    _share_work(slots)
    return Plan(schedule=schedule, model=model, states=state.states, slots=slots, buffers=model_buffers,
                owned=owned, every=[True] * len(slots))


def update_in_place(chain, model, grads, state, *, reuse_gradients: bool = False, leaves: list | None = None):
    """``chain``'s update written into the owned buffers of ``model`` and ``state``: (same model, next state).

    ``model`` and ``state`` hold read-only views over writable buffers the caller owns (``owned``);
    ``grads`` is read, never written, and the model's buffers take their new values from it. Bit for bit
    what ``chain.update`` gives. Anything not owned, two arrays sharing a buffer, or an undeclared
    transform in the chain: the pure ``chain.update``. ``reuse_gradients``: the caller's promise that
    ``grads`` is dead after the call (the training loop, when no callback may read the gradients): a
    gradient's own writable buffer then serves as its work array. ``leaves``: the arrays of ``grads`` along
    ``leaf_keys(model)`` when the caller has them (fit's guard read them), so they are not looked up again.
    """
    if not isinstance(state, ChainState) or not chain.declared:
        return chain.update(model, grads, state)  # (which says what is wrong)
    plan = state.plan
    if plan is None or plan.model is not model or plan.states is not state.states \
            or plan.schedule.made_by is not chain.described:
        model_structure = chain.check(model, grads, state)
        plan = bind(chain, model, state, schedule_of(chain, model, state, model_structure))
        if plan is None:
            return chain.update(model, grads, state)
    step, slots = state.step, plan.slots
    gs, bs = gradient_arrays(plan.schedule, model, grads, slots, leaves)
    # A gradient in one of the buffers about to be written (a user layer handing back its parameter),
    # or a whole-tree transform (it scales them), makes every gradient go into a whole copy first.
    dead = None if chain.tree else _sources(gs, plan.owned, reuse_gradients)
    early = dead is None
    if early:
        for slot, g in zip(slots, gs):
            if slot.full is None:
                slot.full = np.empty_like(slot.target)
            np.copyto(slot.full, g)
    for target, new in zip(plan.buffers, bs):   # running statistics: taken, not stepped
        if new is not target:
            np.copyto(target, new)
    if chain.tree:
        _run_tree(chain, plan.schedule, slots, step)
    if early:
        _run(slots, [slot.full for slot in slots], plan.every, step)
    else:
        _run(slots, dead[0], dead[1], step)
    return model, with_plan(step + 1, state.states, plan)


def _sources(grads: list, owned: frozenset, reuse: bool) -> tuple[list, list] | None:
    """(sources, mine) for the run: each gradient, or where ``reuse`` allows, the writable buffer behind it
    (mine: True) when no other gradient is a view of that buffer; None when a gradient lies in a buffer about
    to be written (``owned``: their ids; a view of a buffer, whatever its shape, has that buffer as base)."""
    bases = [id(g.base) for g in grads]
    for g, base in zip(grads, bases):
        if base in owned or id(g) in owned:
            return None
    sources, mine = list(grads), [False] * len(grads)
    if reuse:
        for i, (g, base) in enumerate(zip(grads, bases)):
            buffer = owned_buffer(g)
            if buffer is not None and bases.count(base) == 1:
                sources[i], mine[i] = buffer, True
    return sources, mine


def owned(value):
    """``value`` (a record, a tuple of them, a ChainState), every array copied into a fresh writable buffer.

    Each is held through a read-only view: what the training loop trains in place (``owned_buffer``
    finds the buffers). A state's schedule comes along (``where`` is not asked again).
    """
    with owning():
        return _owned(value)


def _owned(value):
    if isinstance(value, ChainState):
        plan = value.plan
        return with_plan(value.step, tuple(tuple(_owned(r) for r in records) for records in value.states),
                         None if plan is None else Plan(plan.schedule))
    if type(value) is tuple:
        return tuple(_owned(v) for v in value)
    if attrs.has(type(value)):
        return map_arrays(np.copy, value)
    return value
