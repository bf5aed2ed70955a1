"""mlp: the original notebook's shape list [784, 128, 10] as a Sequence."""

from __future__ import annotations

import numpy as np

from lamina.layers.activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from lamina.layers.dense import Dense
from lamina.layers.sequence import Sequence


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh, "gelu": GELU,
               "identity": Identity}


def mlp(rng: np.random.Generator, sizes, activation=ReLU, *, dtype=np.float32,
        init: str | None = None) -> Sequence:
    """Dense layers of the given sizes with ``activation()`` between them (none after the last).

    ``activation`` is a layer class (``layers.ReLU``) or its name ("relu", "sigmoid", "tanh", ...).
    ``init`` defaults to "he" for ReLU and "glorot" for other activations.
    """
    if isinstance(activation, str):
        if activation.lower() not in ACTIVATIONS:
            raise ValueError(f"mlp: unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)} "
                             f"or a layer class such as layers.ReLU")
        activation = ACTIVATIONS[activation.lower()]
    if not isinstance(activation, type):
        raise TypeError(f"mlp: activation must be a layer class such as layers.ReLU (not an instance: "
                        f"layers.ReLU, not layers.ReLU()), got {activation!r}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got {sizes}")
    if init is None:
        init = "he" if activation is ReLU else "glorot"
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(activation())
        layers.append(Dense.init(rng, n_in, n_out, dtype=dtype, init=init))
    return Sequence(layers)
