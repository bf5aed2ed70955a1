"""What a transform is, what it declares (``Needs``), ``masked``, and ``describe``: the one place reading it.

A transform is written for one array, as optax writes one, and that is enough:

    init(param) -> state                                 None, a number, an array, or a tuple or dict of them
    update(grad, state, param, step) -> (update, state)    step: 0 for the first update

Such a transform runs on copies (nothing it is handed is anyone else's) and checkpoints store its
state. A transform that says what it does, in one declared place, lets the chain run it in
place on the training loop's own arrays: ``needs = optim.Needs(...)``, a class attribute (or a
property, when it depends on the settings). Deriving from ``optim.Transform`` declares
``Needs()`` (no state, whole arrays, may overwrite ``grad``) and gives ``init``: zeros shaped like
the parameter, one array per name in ``Needs.state``; ``update`` then gets and returns that tuple
and may overwrite its arrays, and ``grad`` unless ``writes_grad=False``. It must not write ``param``.
The update it returns is ``grad`` (overwritten), a new array, or one of its state arrays as it is
(momentum's trace: no copy). A whole-tree transform (``Needs(whole_tree=True)``, or derive from
``optim.TreeTransform``) has ``update(grads, params, step) -> grads`` over the lists of every
parameter's gradient (its own to overwrite) and value; it keeps no state and runs first.

``describe(t)`` checks a transform when the chain is built, and is the only code that looks at
one: anything missing or half declared is a TypeError that says what to add.
"""

from __future__ import annotations

import inspect
from typing import Callable, ClassVar

import attrs
import numpy as np

OLD_FLAGS = ("state_names", "elementwise", "writes_grad", "whole_tree")
"""lamina 0.2's class flags, read no more: a transform still setting them is told to declare ``needs``."""


def _names(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _are_names(instance, attribute, value) -> None:
    if type(value) is not tuple or not all(type(n) is str and n.isidentifier() for n in value) \
            or len(set(value)) != len(value):
        raise TypeError(f"Needs: state must be a tuple of distinct names (str), one per state array, "
                        f"got {value!r}")


def _is_flag(instance, attribute, value) -> None:
    if type(value) is not bool:
        raise TypeError(f"Needs: {attribute.name} must be True or False, got {value!r}")


@attrs.frozen
class Needs:
    """What a transform needs from the chain and what it promises; the chain reads nothing else about it.

    state: names of its state arrays (zeros shaped like the parameter); elementwise: each entry's update
    depends on that entry alone, so it may run on blocks of the arrays; writes_grad: it may overwrite the
    grad it is handed (False: it only reads it, and the chain hands it the caller's, saving a copy);
    scales: the update is ``factor(step) * grad`` and nothing else (it has ``factor``; the chain writes the
    product itself); rate: it has ``rate(step)``, the learning rate; whole_tree: see the module docstring.
    """

    state: tuple = attrs.field(default=(), converter=_names, validator=_are_names)
    elementwise: bool = attrs.field(default=False, validator=_is_flag)
    writes_grad: bool = attrs.field(default=True, validator=_is_flag)
    scales: bool = attrs.field(default=False, validator=_is_flag)
    rate: bool = attrs.field(default=False, validator=_is_flag)
    whole_tree: bool = attrs.field(default=False, validator=_is_flag)

    def __attrs_post_init__(self):
        if self.whole_tree and (self.state or self.scales or self.rate):
            raise TypeError("Needs: a whole-tree transform keeps no state and is no scaling or rate: "
                            f"got {self!r}")


class Transform:
    """Base of the per-array transforms: declares ``Needs()``, zeros for its state, reprs as optax spells."""

    name: ClassVar[str] = "transform"
    needs: ClassVar[Needs] = Needs()

    def init(self, param: np.ndarray) -> tuple:
        """Zeros shaped like ``param``, one array per name in ``needs.state``."""
        return tuple(np.zeros_like(param) for _ in self.needs.state)

    def __repr__(self) -> str:
        shown = attrs.fields(type(self)) if attrs.has(type(self)) else ()
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in shown if f.repr)
        return f"{self.name}({fields})"


class TreeTransform(Transform):
    """Base of the whole-tree transforms (stateless, run first, never blocked)."""

    needs: ClassVar[Needs] = Needs(whole_tree=True)

    def update(self, grads: list, params: list, step: int) -> list:
        raise NotImplementedError


def predicate_repr(predicate) -> str:
    """A function by its qualified name (a lambda's address would change the repr every run)."""
    return getattr(predicate, "__qualname__", None) or repr(predicate)


def _takes_two(where) -> bool:
    """Whether ``where`` takes (path, param); else it takes the path alone (read when masked is made)."""
    try:
        inspect.signature(where).bind("path", None)
    except (TypeError, ValueError):   # one argument, or no signature to read (a builtin): the path alone
        return False
    return True


@attrs.frozen(repr=False)
class Masked:
    """``inner`` acting only on the parameters for which ``where(path, param)`` (or ``where(path)``) is true.

    ``where`` is asked once per parameter, when the optimizer's state is made (``init``) or, for a state
    from elsewhere (a checkpoint), at its first update; the others pass through, their state untouched.
    """

    inner: object
    where: Callable
    two: bool = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self):
        describe(self.inner, who="masked")
        if not callable(self.where):
            raise TypeError(f"masked: where must be a callable of the parameter's path and value, "
                            f"where(path, param) -> bool, got {self.where!r}")
        object.__setattr__(self, "two", _takes_two(self.where))

    def chooses(self, path: str, param: np.ndarray) -> bool:
        """Whether ``inner`` acts on the parameter at ``path``."""
        return bool(self.where(path, param) if self.two else self.where(path))

    def __repr__(self) -> str:
        return f"masked({self.inner!r}, where={predicate_repr(self.where)})"


masked = Masked


@attrs.frozen
class Described:
    """A transform as ``describe`` read it: what computes, what it declared, the masks around it."""

    transform: object          # as given (masks included): for reprs and errors
    inner: object              # the transform that computes
    needs: Needs | None        # None: undeclared (optax's kind): its state is what init gives, run on copies
    masks: tuple = ()          # the Masked around it, outermost first

    def applies(self, path: str, param: np.ndarray) -> bool:
        """Whether it acts on this parameter (every mask around it chooses it)."""
        return all(m.chooses(path, param) for m in self.masks)

    @property
    def stateful(self) -> bool:
        return self.needs is None or bool(self.needs.state)

    def call(self) -> tuple:
        """(update, factor or None, writes_grad, self if undeclared else None, self): read by the executor."""
        needs = self.needs
        if needs is None:
            return self.inner.update, None, True, self, self
        return self.inner.update, self.inner.factor if needs.scales else None, needs.writes_grad, None, self

    def init(self, param: np.ndarray):
        return self.inner.init(param)

    def update_tree(self, grads: list, params: list, step: int) -> list:
        return self.inner.update(grads, params, step)

    def rate(self, step: int) -> float:
        return self.inner.rate(step)


_MISSING = object()


def describe(t, who: str = "chain") -> Described:
    """``t`` checked and read: a TypeError saying what to add when something is missing or half declared."""
    masks = []
    while isinstance(t, Masked):
        masks.append(t)
        t = t.inner
    transform = masks[0] if masks else t
    if not callable(getattr(t, "update", None)):
        raise TypeError(f"{who}: {t!r} is not a transform: it needs update(grad, state, param, step) -> "
                        f"(update, state) and init(param) -> state")
    needs = getattr(t, "needs", _MISSING)
    old = [flag for flag in OLD_FLAGS if hasattr(t, flag)]
    if old:
        raise TypeError(f"{who}: {t!r} sets {', '.join(old)}, which lamina no longer reads; declare them "
                        f"in one place instead: needs = optim.Needs(state=(...), elementwise=..., "
                        f"writes_grad=..., whole_tree=...)")
    if needs is _MISSING or needs is None:
        if not callable(getattr(t, "init", None)) or getattr(type(t), "init", None) is Transform.init:
            raise TypeError(f"{who}: {t!r} declares no needs and has no init of its own; add init(param) "
                            f"-> state (None when it keeps none), or declare needs = optim.Needs(...)")
        return Described(transform, t, None, tuple(masks))
    if not isinstance(needs, Needs):
        raise TypeError(f"{who}: {t!r}.needs must be an optim.Needs, got {needs!r}")
    _check_declared(t, needs, who)
    return Described(transform, t, needs, tuple(masks))


def _check_declared(t, needs: Needs, who: str) -> None:
    """The methods a declaration promises are there; an init of its own goes with declared state."""
    for flag, method, signature in (("scales", "factor", "factor(step) -> float"),
                                    ("rate", "rate", "rate(step) -> float")):
        if getattr(needs, flag) and not callable(getattr(t, method, None)):
            raise TypeError(f"{who}: {t!r} declares {flag}=True but has no {method}; add {signature}")
    own_init = getattr(type(t), "init", None)
    if needs.state and not callable(getattr(t, "init", None)):
        raise TypeError(f"{who}: {t!r} declares state {needs.state} but has no init; add init(param) -> "
                        f"tuple of arrays, or derive from optim.Transform (zeros)")
    if not needs.state and not needs.whole_tree and callable(own_init) and own_init is not Transform.init:
        raise TypeError(f"{who}: {t!r} has an init of its own but its needs declare no state; declare "
                        f"needs = optim.Needs(state=('name', ...)) for arrays shaped like the parameter, or "
                        f"needs = None for a state of any form (run on copies)")
