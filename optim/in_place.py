"""The in-place update of a chain: what makes an optimizer fast, written once for every transform.

The training loop owns its model and optimizer state: their arrays are read-only views over
writable buffers (made inside ``layers.parameter.owning()``, e.g. by ``owned``).
``update_in_place`` writes the chain's arithmetic into those buffers:

- the plan (each parameter's buffer, its state buffers, the transforms that apply to its path,
  its blocks) is made once and kept in the state, reused while the same records come back;
- the gradients are only read (callbacks read them after the step): the transforms that
  overwrite what they are handed get a copy in one small work array per dtype, shared by every
  block so that it stays in cache; a scaling writes its product there directly, and a transform
  declaring ``writes_grad = False`` reads the gradient itself;
- a parameter larger than BLOCK_BYTES whose transforms are all element-wise goes block by block
  (flat views of p, g and each state array): all the passes over one block are made before the
  next, so the block stays in a core's L2 cache instead of each pass streaming the whole arrays
  from memory;
- every FLUSH_EVERY updates the state arrays' subnormal entries become 0, block by block after
  the step, with |s| made in the work array.

The numbers are bit for bit those of the pure ``Chain.update``: the same transforms run on the
same values (element-wise maths does not care where a block starts).
"""

from __future__ import annotations

import functools

import attrs
import numpy as np

from lamina.layers.records.parameter import field_kind, owned_buffer, owning
from lamina.layers.records.tree import buffers, check_same_structure, named_parameters, parameters, structure
from lamina.optim.chain import ChainState, _applies, check_update, flush_due, flush_subnormals

BLOCK_BYTES = 512 * 1024
"""Parameters larger than this go in blocks of this size (tests patch it to reach the blocked path with small arrays)."""


@attrs.define
class _Piece:
    """A parameter, or one block of it: the views the transforms work on."""

    param: np.ndarray        # read-only view, handed to the transforms
    target: np.ndarray       # the writable buffer (or block) the update is added to
    states: list             # per applying transform: the tuple of its state buffers (or blocks)
    span: slice | None       # the block's place in the flat gradient; None: the whole array
    scratch: np.ndarray | None  # the chain's work array for this piece (shared by all pieces): the transforms overwrite it


@attrs.define
class _Param:
    path: str
    buffer: np.ndarray
    view: np.ndarray         # read-only, the whole parameter (for the whole-tree transforms)
    transforms: list         # the per-array transforms that apply to this path, in order
    calls: list              # and their (update, factor or None, writes_grad)
    pieces: list
    full: np.ndarray | None = None   # a whole-parameter work array, made when the gradients must be copied first


@attrs.define
class _Plan:
    model: object
    states: tuple
    structure: tuple
    params: list
    buffers: list            # the writable buffers behind the model's buffers (running statistics)
    owned: frozenset         # ids of every buffer above and of the state buffers
    tree_transforms: tuple
    walk: tuple = ()         # how to reach each param and buffer of a record of this structure (_walk)
    checked: bool = False    # whether a gradient record's whole structure was checked against the model


@functools.lru_cache(maxsize=None)
def _fields(cls: type) -> tuple:
    """(name, 'param' | 'buffer' | None) of each init field of a record class."""
    return tuple((f.name, field_kind(f)) for f in attrs.fields(cls) if f.init)


def _walk(record, path: tuple = ()) -> tuple:
    """(is a param, (field or index, ...)) for each param and buffer of the record, in forward order."""
    steps = []
    for name, kind in _fields(type(record)):
        value = getattr(record, name)
        if kind in ("param", "buffer"):          # (a constant() stays as it is)
            steps.append((kind == "param", path + (name,)))
        elif type(value) is tuple:
            if value and all(attrs.has(type(v)) for v in value):
                for i, child in enumerate(value):
                    steps.extend(_walk(child, path + (name, i)))
        elif attrs.has(type(value)):
            steps.extend(_walk(value, path + (name,)))
    return tuple(steps)


def _leaves_along(record, walk: tuple, params: list, buffers: list) -> None:
    """The arrays ``walk`` reaches in a record of the plan's structure (checked once per plan): no walk of the tree."""
    for is_param, path in walk:
        value = record
        for key in path:
            value = getattr(value, key) if type(key) is str else value[key]
        (params if is_param else buffers).append(value)


def _dead_buffers(grads: list) -> list | None:
    """The writable buffer behind each gradient (None where there is none), or None if two gradients share one."""
    found = [owned_buffer(g) for g in grads]
    ids = [id(b) for b in found if b is not None]
    return found if len(ids) == len(set(ids)) else None


def _next_state(step: int, states: tuple, plan) -> ChainState:
    """ChainState(step, states) with its plan, built without running the validators again (they held for ``states``)."""
    state = object.__new__(ChainState)
    object.__setattr__(state, "step", step)
    object.__setattr__(state, "states", states)
    object.__setattr__(state, "plan", plan)
    return state


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.setflags(write=False)
    return view


def _blocks(size: int, itemsize: int) -> list[slice]:
    block = max(BLOCK_BYTES // itemsize, 1)
    return [slice(i, min(i + block, size)) for i in range(0, size, block)]


def make_plan(chain, model, state: ChainState) -> _Plan | None:
    """The plan for these records, or None when an array of the model or the state has no owned buffer."""
    model_structure = structure(model)
    for records in state.states:
        for record in records:
            if structure(record) != model_structure:
                check_same_structure(model, record, names=("model", "optimizer state"))
    named = list(named_parameters(model))
    params = [owned_buffer(p) for _, p in named]
    state_buffers = [[[owned_buffer(a) for a in parameters(record)] for record in records] for records in state.states]
    model_buffers = [owned_buffer(b) for b in buffers(model)]
    every = params + model_buffers + [b for records in state_buffers for column in records for b in column]
    owned = frozenset(id(b) for b in every if b is not None)
    if any(b is None for b in every) or len(owned) != len(every):
        return None  # not owned, or two arrays share a buffer: the pure update
    plan_params = []
    for i, ((path, _), buffer) in enumerate(zip(named, params)):
        transforms, columns, k = [], [], 0
        for t in chain.array_transforms:
            names = t.state_names
            if _applies(t, path):
                transforms.append(t)
                columns.append(tuple(column[i] for column in state_buffers[k]) if names else ())
            k += 1 if names else 0
        whole = _Piece(param=_read_only(buffer), target=buffer, states=columns, span=None, scratch=None)
        if buffer.nbytes <= BLOCK_BYTES or not all(getattr(t, "elementwise", False) for t in transforms):
            pieces = [whole]
        else:
            flat = buffer.reshape(-1)
            flat_states = [tuple(a.reshape(-1) for a in s) for s in columns]
            pieces = [_Piece(param=_read_only(flat[span]), target=flat[span],
                             states=[tuple(a[span] for a in s) for s in flat_states], span=span, scratch=None)
                      for span in _blocks(buffer.size, buffer.itemsize)]
        plan_params.append(_Param(path=path, buffer=buffer, view=whole.param, transforms=transforms,
                                  calls=[(t.update, getattr(t, "factor", None), getattr(t, "writes_grad", True))
                                         for t in transforms], pieces=pieces))
    # one work array per dtype, as large as the largest piece, shared by every piece: it stays in cache
    largest = {}
    for param in plan_params:
        for piece in param.pieces:
            largest[piece.target.dtype] = max(largest.get(piece.target.dtype, 0), piece.target.size)
    work = {dtype: np.empty(size, dtype) for dtype, size in largest.items()}
    for param in plan_params:
        for piece in param.pieces:
            piece.scratch = work[piece.target.dtype][:piece.target.size].reshape(piece.target.shape)
    return _Plan(model=model, states=state.states, structure=model_structure, params=plan_params,
                 buffers=model_buffers, owned=owned, tree_transforms=chain.tree_transforms, walk=_walk(model))


def update_in_place(chain, model, grads, state, *, reuse_gradients: bool = False):
    """``chain``'s update written into the owned buffers of ``model`` and ``state``: (the same model, the next state).

    ``reuse_gradients``: the caller's promise that ``grads`` is dead after the call (the training
    loop, when no callback may read the gradients): a gradient's own writable buffer then serves as
    its work array, as a hand-written loop would (one array fewer in the cache).
    """
    if not isinstance(state, ChainState):
        return chain.update(model, grads, state)  # (which says what is wrong)
    plan = state.plan
    if plan is None or plan.model is not model or plan.states is not state.states:
        if [len(s) for s in state.states] != [len(t.state_names) for t in chain.stateful]:
            return chain.update(model, grads, state)  # (which says what is wrong)
        plan = make_plan(chain, model, state)
        if plan is None:
            return chain.update(model, grads, state)
    if not plan.checked:  # the first gradients of a plan are checked whole, later ones by their arrays
        if structure(grads) != plan.structure:
            check_same_structure(model, grads)
        plan.checked = True
    step = state.step
    grad_params, grad_buffers = [], []
    _leaves_along(grads, plan.walk, grad_params, grad_buffers)
    if len(grad_params) != len(plan.params) or len(grad_buffers) != len(plan.buffers) or any(
            g.shape != param.buffer.shape or g.dtype != param.buffer.dtype for g, param in zip(grad_params, plan.params)):
        check_same_structure(model, grads)
    # the gradients are read, never written (callbacks read them after the step). A gradient in one of
    # the buffers about to be written (a user layer handing back its parameter), or a whole-tree
    # transform (it scales them), makes every gradient go into a whole copy of the chain's own first.
    owned = plan.owned  # (a view of a buffer, whatever its shape, has that buffer as its base)
    early = bool(plan.tree_transforms) or any(id(g.base) in owned or id(g) in owned for g in grad_params)
    if early:
        for param, g in zip(plan.params, grad_params):
            if param.full is None:
                param.full = np.empty_like(param.buffer)
            np.copyto(param.full, g)
    for target, new in zip(plan.buffers, grad_buffers):   # running statistics: taken, not stepped
        if new is not target:
            np.copyto(target, new)
    for t in plan.tree_transforms:
        chosen = [param for param in plan.params if _applies(t, param.path)]
        out = t.update([param.full for param in chosen], [param.view for param in chosen], step)
        for param, g in zip(chosen, out):
            if g is not param.full:
                np.copyto(param.full, g)
    flush = flush_due(step)
    factors = {}  # each schedule asked once a step
    dead = _dead_buffers(grad_params) if reuse_gradients and not early else None
    for i, (param, g) in enumerate(zip(plan.params, grad_params)):
        mine = early or (dead is not None and dead[i] is not None)
        source = param.full if early else (dead[i] if mine else g)
        flat = source if len(param.pieces) == 1 else source.reshape(-1)
        for piece in param.pieces:
            scratch = piece.scratch
            if mine:  # the chain's own copy, or a dead gradient's buffer: it may be overwritten
                u, own = (flat if piece.span is None else flat[piece.span]), True
            else:  # the caller's gradient: read only (a transform that writes gets a copy in the scratch)
                u, own = (flat if piece.span is None else flat[piece.span]), False
            for (update, factor, writes_grad), s in zip(param.calls, piece.states):
                if not own:  # the gradient, or a state array: into the scratch before anything overwrites it
                    if factor is not None:
                        value = factors.get(factor)
                        if value is None:
                            value = factors[factor] = factor(step)
                        u, own = np.multiply(u, value, out=scratch), True
                        continue
                    if writes_grad:
                        np.copyto(scratch, u)
                        u, own = scratch, True
                given = u
                u, new = update(u, s, piece.param, step)
                if new is not s:
                    for a, b in zip(s, new):
                        if b is not a:
                            np.copyto(a, b)
                own = (own or u is not given) and not any(u is a for a in s)
            if u is not scratch and own:
                check_update(u, piece.param, param.path)
            piece.target += u
            if flush:  # after the step; the work array is free now and holds |s|
                for s in piece.states:
                    for a in s:
                        flush_subnormals(a, scratch=scratch)
    return model, _next_state(step + 1, state.states, plan)


def owned(value):
    """``value`` (a record, a tuple of them, a ChainState) rebuilt with every array copied into a fresh writable buffer,
    held through a read-only view: what the training loop trains in place (``owned_buffer`` finds the buffers).
    """
    with owning():
        return _owned(value)


def _owned(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if type(value) is tuple:
        return tuple(_owned(v) for v in value)
    if attrs.has(type(value)):
        changes = {f.alias: _owned(getattr(value, f.name)) for f in attrs.fields(type(value)) if f.init}
        return attrs.evolve(value, **changes)
    return value
