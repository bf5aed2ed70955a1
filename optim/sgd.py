"""SGD: the update of torch.optim.SGD with dampening 0.

With g = grad + weight_decay * p, and velocity v (zero before the first step):
    v <- momentum * v + g
    d = g + momentum * v   (nesterov)   or   d = v   (momentum)   or   d = g   (plain)
    p <- p - lr(t) * d
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from lamina.layers.parameter import owned_buffer as buffer_of


def frozen_view(array):
    view = array.view()
    view.setflags(write=False)
    return view
from lamina.layers.registry import register
from lamina.layers.tree import check_same_structure, flatten, map_parameters, replace_parameters
from lamina.optim.schedules import is_number


def _check_rate(instance, attribute, value) -> None:
    if callable(value):
        return
    if not is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"SGD: learning_rate must be a positive finite number or a schedule "
                         f"(a callable of the step), got {value!r}")


def _check_momentum(instance, attribute, value) -> None:
    if not is_number(value) or not 0 <= value < 1:
        raise ValueError(f"SGD: momentum must be in [0, 1), got {value!r}")


def _check_nesterov(instance, attribute, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"SGD: nesterov must be True or False, got {value!r}")
    if value and instance.momentum == 0:
        raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")


def _check_decay(instance, attribute, value) -> None:
    if not is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"SGD: weight_decay must be a finite number >= 0, got {value!r}")


@register
@attrs.frozen
class SGDState:
    """Optimizer state: the number of updates done, and the velocity (a record shaped like the model; None without momentum)."""

    step: int = 0
    velocity: object = None
    # What a donated update leaves for the next one (never saved, never compared): the records
    # it updated and the writable buffers behind their arrays, so that the next donated update
    # of the same records walks nothing again.
    donated: "_Donated | None" = attrs.field(default=None, init=False, eq=False, repr=False)


FLUSH_EVERY = 64
"""With momentum, after every this many updates the velocity's subnormal entries (0 < |v| below
the smallest normal float, 1.2e-38 in float32) are set to 0. A velocity whose gradient stays 0
(a pixel blank in every batch of a while) shrinks by the momentum factor each step and spends
150 steps (momentum 0.9) to 1,250 (0.99) among the subnormals, where each operation costs the
CPU 10-100x more: Fashion-MNIST's epochs took 2.3x longer after the first. Such a velocity
moves no weight by anything a float32 weight can hold."""


def _flush_subnormals(v: np.ndarray, scratch: np.ndarray | None = None) -> None:
    """v's subnormal entries set to 0, in place (NaN and inf stay); |v| goes into ``scratch`` if given."""
    np.multiply(v, np.abs(v, out=scratch) >= np.finfo(v.dtype).tiny, out=v)


BLOCK_BYTES = 512 * 1024
"""The in-place update takes a parameter larger than this in blocks of this size and makes all
its passes over one block before the next, so that the blocks of p, g and v stay in a core's L2
cache between the passes instead of streaming three arrays from memory four times (W2's momentum
update: about 0.66 instead of 0.78 ms a step). Smaller parameters (W1's 392 KB weight) are
already in cache and go whole. The numbers are the same either way."""


def _blocks(p, g, s, v, *, in_g: bool) -> list:
    """[(p, g, s, v, in_g)] for one parameter: itself, or flat views of BLOCK_BYTES of each array."""
    size = max(BLOCK_BYTES // p.itemsize, 1)
    if p.size <= size or not g.flags.c_contiguous:  # (p, s and v are C-contiguous buffers)
        return [(p, g, s, v, in_g)]
    flat = [a.reshape(-1) if a is not None else None for a in (p, g, s, v)]
    return [(*(a[i:i + size] if a is not None else None for a in flat), in_g) for i in range(0, p.size, size)]


@attrs.frozen
class _Donated:
    model: object
    params: list            # the writable buffers behind the model's parameters, in forward order
    velocities: list | None  # and behind the velocity's
    grads: object = None    # the gradient record of the last update
    # per parameter, or per block of a large one (_blocks), (p, g, s, v, in_g): its buffer,
    # gradient, scratch (where lr * direction is made: the gradient's own buffer if it has one),
    # velocity buffer (or None), and whether s is g's buffer
    steps: list | None = None


@attrs.frozen
class SGD:
    """Stochastic gradient descent, optionally with (Nesterov) momentum and L2 weight decay."""

    learning_rate: object = attrs.field(validator=_check_rate)
    momentum: float = attrs.field(default=0.0, validator=_check_momentum)
    nesterov: bool = attrs.field(default=False, validator=_check_nesterov)
    weight_decay: float = attrs.field(default=0.0, validator=_check_decay)

    def rate(self, step: int) -> float:
        """The learning rate for update number ``step`` (0-based)."""
        if not callable(self.learning_rate):
            return float(self.learning_rate)  # checked when the optimizer was made
        lr = self.learning_rate(step)
        if not (isinstance(lr, (int, float, np.floating)) and math.isfinite(lr) and lr >= 0):
            raise ValueError(f"SGD: the learning-rate schedule gave {lr!r} at step {step}; expected a finite number >= 0")
        return float(lr)

    def init(self, model) -> SGDState:
        """Step 0 and, with momentum, a zero velocity shaped like the model."""
        if self.momentum == 0:
            return SGDState(step=0, velocity=None)
        return SGDState(step=0, velocity=map_parameters(lambda p: frozen_view(np.zeros_like(p)), model))

    def update(self, model, grads, state: SGDState, *, donate: bool = False):
        """(model, gradients, state) -> (new model, new state); nothing given is changed.

        ``donate=True`` is the caller's promise that ``model``, ``grads`` and ``state`` are dead
        after this call, and with them every array they share with other records (as JAX's donated
        arguments): the update is then written into the buffers behind their arrays, and the
        same records come back holding the new values. The numbers are bit-identical either way.
        ``fit`` donates only what the optimizer made itself, never the caller's model.
        """
        if donate:
            donated = state.donated
            if donated is None or donated.model is not model or donated.grads is not grads:
                donated = self._donated(model, grads, state)  # new records: walk them once
            if donated is not None:
                lr = float(self.learning_rate) if not callable(self.learning_rate) else self.rate(state.step)
                self._step_in_place(lr, donated, flush=(state.step + 1) % FLUSH_EVERY == 0)
                next_state = SGDState(state.step + 1, state.velocity)
                object.__setattr__(next_state, "donated", donated)
                return model, next_state
        ps, vs = self._checked_leaves(model, state)
        gs = self._checked_gradients(model, grads)
        new_ps, new_vs = self._step(self.rate(state.step), ps, gs, vs, flush=(state.step + 1) % FLUSH_EVERY == 0)
        velocity = replace_parameters(state.velocity, iter(new_vs)) if self.momentum else None
        return replace_parameters(model, iter(new_ps)), SGDState(step=state.step + 1, velocity=velocity)

    def _checked_leaves(self, model, state):
        """The model's and the velocity's parameters, after checking that the velocity has the model's structure."""
        ps, structure = flatten(model)
        if not self.momentum:
            return ps, None
        if state.velocity is None:
            raise ValueError("SGD: this optimizer has momentum but the state has no velocity; "
                             "make the state with opt.init(model)")
        vs, velocity_structure = flatten(state.velocity)
        if velocity_structure != structure:
            check_same_structure(model, state.velocity, names=("model", "optimizer state"))
        return ps, vs

    @staticmethod
    def _checked_gradients(model, grads) -> list:
        """The gradients' arrays, after checking that they have the model's structure."""
        gs, structure = flatten(grads)
        if structure != flatten(model)[1]:
            check_same_structure(model, grads)
        return gs

    def _donated(self, model, grads, state) -> "_Donated | None":
        """The buffers behind a donated model and velocity, and the gradients; None if a parameter has no buffer."""
        last = state.donated
        if last is None or last.model is not model:
            ps, vs = self._checked_leaves(model, state)
            params = [buffer_of(p) for p in ps]
            velocities = [buffer_of(v) for v in vs] if vs is not None else None
            if any(b is None for b in params + (velocities or [])):
                return None
            last = _Donated(model=model, params=params, velocities=velocities)
        if last.grads is grads:
            return last  # the same records as the last step: nothing to walk
        gs = self._checked_gradients(model, grads)
        # a gradient's own buffer is the scratch, unless it is a parameter's or velocity's (a user
        # layer may hand back a parameter array as its gradient): then a scratch array of its own
        owned = {id(b) for b in last.params + (last.velocities or [])}
        scratch = [b if b is not None and id(b) not in owned else np.empty_like(p)
                   for b, p in ((buffer_of(g), p) for g, p in zip(gs, last.params))]
        velocities = last.velocities or [None] * len(gs)
        steps = [block for p, g, s, v in zip(last.params, gs, scratch, velocities)
                 for block in _blocks(p, g, s, v, in_g=g.base is s)]
        return attrs.evolve(last, grads=grads, steps=steps)

    def _step(self, lr, ps, gs, vs, flush=False):
        """The update on fresh arrays: returns (new parameters, new velocities)."""
        m, wd = float(self.momentum), float(self.weight_decay)
        if wd:
            gs = [g + wd * p for p, g in zip(ps, gs)]
        if m:
            vs = [m * v + g for v, g in zip(vs, gs)]
            directions = [g + m * v for g, v in zip(gs, vs)] if self.nesterov else vs
        else:
            directions = gs
        new_ps = [frozen_view(p - lr * d) for p, d in zip(ps, directions)]
        if m and flush:  # after this step used them: see FLUSH_EVERY
            for v in vs:
                _flush_subnormals(v)
        return new_ps, ([frozen_view(v) for v in vs] if m else vs)

    def _step_in_place(self, lr, donated: _Donated, flush: bool = False):
        """The same arithmetic as ``_step``, written into the buffers p and v through the scratch s (often g's own).

        ``flush``: v's subnormals are then set to 0 (FLUSH_EVERY), block by block while in cache.
        """
        m, wd = float(self.momentum), float(self.weight_decay)
        for p, g, s, v, in_g in donated.steps:  # in_g: s is g's buffer, g is read through s
            if wd:
                if in_g:
                    s += wd * p
                else:
                    np.multiply(p, wd, out=s)
                    s += g
                g, in_g = s, True               # g + wd p
            if m:
                v *= m
                v += g                          # v = m v + g
                if not self.nesterov:
                    np.multiply(v, lr, out=s)   # lr d, with d = v
                else:
                    if in_g:
                        s += m * v
                    else:
                        np.multiply(v, m, out=s)
                        s += g                  # d = g + m v
                    s *= lr
            elif in_g:
                s *= lr
            else:
                np.multiply(g, lr, out=s)       # lr d, with d = g
            p -= s                              # p = p - lr d
            if m and flush:                     # s is dead now: it holds |v|
                _flush_subnormals(v, scratch=s)
