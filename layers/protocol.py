"""The optional parts of the layer protocol, and how lamina finds out whether a record has them.

A layer needs only ``forward(x) -> (y, cache)`` and ``backward(cache, dy) -> (dx, grads)``. It
may also declare, and lamina then uses:

- ``output_shape(input_shape)``: per-sample shapes, so a Sequence checks its wiring when built;
- ``needs_rng = True`` with ``forward(x, *, rng)``: randomness in training (Dropout and friends);
- ``backward(..., *, input_grad=True)``: skip dx when the layer comes first in training;
- ``backward(..., *, out=None)``: write the gradients into a dead gradient record (donation);
- ``forward(..., *, check=True)`` (models and losses): skip entry checks on data checked once;
- ``fresh_outputs = True``: ``forward``'s y (and ``__call__``'s) and ``backward``'s dx are new
  arrays that the layer keeps no reference to (not in its cache): in a Sequence the next layer
  may then be handed y to overwrite. A class that sets it promises exactly that (Dense does);
  a subclass does not inherit the promise (it may keep y), it has to declare it again;
- ``forward(x, *, overwrite=False)`` and ``__call__(x, *, overwrite=False)``: with True, x is
  dead after the call and y may be written into its buffer (the activations do, so ReLU after
  Dense works in Dense's output instead of allocating). A Sequence passes it only when the
  layer before declares ``fresh_outputs``; it never hands over the caller's input.

Arrays may arrive in any memory order: the softmax cross-entropy's gradient, for one, is a
transposed view (F-ordered), so a layer should not assume C order (``np.ascontiguousarray``
where it matters).
"""

from __future__ import annotations

import functools
import inspect


@functools.lru_cache(maxsize=None)
def takes_keyword(cls: type, method: str, keyword: str) -> bool:
    """Whether ``cls.method`` accepts the keyword argument ``keyword`` (looked up once per class)."""
    try:
        return keyword in inspect.signature(getattr(cls, method)).parameters
    except (AttributeError, TypeError, ValueError):
        return False
