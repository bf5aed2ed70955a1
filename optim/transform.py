"""What a transform is: the two kinds the chain composes (per array, whole tree) and ``masked``.

A **per-array transform** is written for one array, as JAX's ``optimizers.py`` writes an optimizer:

    init(param) -> state                                  a tuple of arrays shaped like param
    update(grad, state, param, step) -> (update, state)   step: 0 for the first update

``update`` may overwrite the arrays of ``state`` (they are its own: the pure update of the
chain hands it copies, the in-place path the owned buffers or blocks of them), and ``grad``
unless it declares ``writes_grad = False`` (then the chain may hand it the caller's gradient
itself, which must stay as it is, and saves a copy); it must not write ``param``. The update it
returns is ``grad`` (overwritten), a new array, or one of its state arrays as they are
(momentum's trace: no copy); the chain copies the last two kinds before a later transform may
overwrite them, and a transform that only multiplies by a number (it has ``factor(step)``)
writes the product straight into the chain's scratch instead.
``state_names`` names the state arrays.
``elementwise = True`` declares that the update of each entry depends on that entry alone (and
on scalars), so the in-place path may run it on blocks of the arrays; anything else (a norm of
the whole array) keeps the default False and always sees whole arrays.

A **whole-tree transform** (``whole_tree = True``) has ``update(grads, params, step) -> grads``
over the lists of every parameter's gradient (its own, to overwrite) and value; it keeps no
state and runs before the per-array transforms (the global-norm clip).
"""

from __future__ import annotations

from typing import Callable, ClassVar

import attrs
import numpy as np


class Transform:
    """Base of the per-array transforms: no state, not element-wise, reprs in optax's spelling."""

    name: ClassVar[str] = "transform"
    whole_tree: ClassVar[bool] = False
    elementwise: ClassVar[bool] = False
    writes_grad: ClassVar[bool] = True
    state_names: ClassVar[tuple[str, ...]] = ()

    def init(self, param: np.ndarray) -> tuple:
        """Zeros shaped like ``param``, one array per state name."""
        return tuple(np.zeros_like(param) for _ in self.state_names)

    def applies(self, path: str) -> bool:
        """Whether this transform acts on the parameter at ``path`` (see ``masked``)."""
        return True

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in attrs.fields(type(self)) if f.repr)
        return f"{self.name}({fields})"


class TreeTransform(Transform):
    """Base of the whole-tree transforms (stateless, run first, never blocked)."""

    whole_tree: ClassVar[bool] = True

    def update(self, grads: list, params: list, step: int) -> list:
        raise NotImplementedError


def _predicate_repr(predicate) -> str:
    """A function by its qualified name (a lambda's address would change the repr every run)."""
    return getattr(predicate, "__qualname__", None) or repr(predicate)


@attrs.frozen(repr=False)
class Masked(Transform):
    """``inner`` acting only on the parameters whose path satisfies ``where`` (the others pass through)."""

    name: ClassVar[str] = "masked"
    inner: object
    where: Callable[[str], bool]

    def __attrs_post_init__(self):
        if not callable(getattr(self.inner, "update", None)):
            raise TypeError(f"masked: the first argument must be a transform, got {self.inner!r}")
        if not callable(self.where):
            raise TypeError(f"masked: where must be a callable of the parameter's path (a str), got {self.where!r}")

    @property
    def whole_tree(self) -> bool:
        return getattr(self.inner, "whole_tree", False)

    @property
    def elementwise(self) -> bool:
        return getattr(self.inner, "elementwise", False)

    @property
    def state_names(self) -> tuple:
        return tuple(getattr(self.inner, "state_names", ()))

    @property
    def writes_grad(self) -> bool:
        return getattr(self.inner, "writes_grad", True)

    @property
    def factor(self):
        return getattr(self.inner, "factor", None)

    def applies(self, path: str) -> bool:
        inner = getattr(self.inner, "applies", None)
        return bool(self.where(path)) and (inner is None or inner(path))

    def init(self, param):
        return self.inner.init(param)

    def update(self, *args):
        return self.inner.update(*args)

    def __repr__(self) -> str:
        return f"masked({self.inner!r}, where={_predicate_repr(self.where)})"


masked = Masked
