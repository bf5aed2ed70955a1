"""The estimators' settings by name: optimizer, activation and loss names -> lamina classes, with errors
listing the valid ones."""

from __future__ import annotations

import numpy as np

from lamina import layers, losses, optim
from lamina.layers.settings import fraction_right_open, is_int, non_negative_number, positive_number
from lamina.layers.settings import positive_int  # noqa: F401 (estimators.base calls settings.positive_int)

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop}
"""optimizer name -> optimizer class; "sgd" and "rmsprop" take ``momentum``, "adam" and "adamw" have none."""

ACTIVATIONS = {"relu": layers.ReLU, "leaky_relu": layers.LeakyReLU, "tanh": layers.Tanh,
               "sigmoid": layers.Sigmoid,
               "gelu": layers.GELU, "identity": layers.Identity}
"""activation name -> layer class, placed between the hidden Dense layers."""

REGRESSION_LOSSES = {"mse": losses.MSE, "huber": losses.Huber, "l1": losses.L1}
"""NetRegressor's loss name -> loss class."""

WITH_MOMENTUM = ("sgd", "rmsprop")


def choice(who: str, setting: str, value, table: dict, plural: str | None = None):
    """``table[value]``, or a ValueError that names the setting, what came and every valid name."""
    if isinstance(value, str) and value in table:
        return table[value]
    valid = ", ".join(repr(name) for name in table)
    raise ValueError(f"{who}: unknown {setting} {value!r}; valid {plural or setting + 's'} are {valid}")


def optimizer(who: str, name, learning_rate, momentum, weight_decay):
    """The lamina optimizer for a name and the flat settings; ``momentum`` goes only to "sgd" and
    "rmsprop"."""
    cls = choice(who, "optimizer", name, OPTIMIZERS)
    positive_number(who, "learning_rate", learning_rate)
    fraction_right_open(who, "momentum", momentum)
    non_negative_number(who, "weight_decay", weight_decay)
    settings = {"learning_rate": float(learning_rate), "weight_decay": float(weight_decay)}
    if name in WITH_MOMENTUM:
        settings["momentum"] = float(momentum)
    try:
        return cls(**settings)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{who}: {error}") from None


def activation(who: str, name):
    """The activation layer class for a name."""
    return choice(who, "activation", name, ACTIVATIONS)


def regression_loss(who: str, name):
    """The regression loss record for a name."""
    return choice(who, "loss", name, REGRESSION_LOSSES, "losses")()


def hidden_sizes(who: str, hidden) -> tuple[int, ...]:
    """The hidden widths as a tuple of positive ints; one int is one hidden layer, () none (a linear
    model)."""
    sizes = (hidden,) if is_int(hidden) else hidden
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(is_int(s) and s > 0 for s in sizes):
        raise ValueError(f"{who}: hidden must be a tuple of positive ints such as (100,) or (128, 64), "
                         f"got {hidden!r}")
    return tuple(int(s) for s in sizes)


def float_dtype(who: str, dtype) -> np.dtype:
    """np.float32 or np.float64 (a name or a type)."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{who}: dtype must be np.float32 or np.float64, got {dtype!r}")
    return resolved


def generator(random_state) -> np.random.Generator:
    """A fresh numpy Generator from ``random_state``: None (fresh entropy), an int seed, a RandomState
    (one seed drawn from it, as scikit-learn draws) or a Generator (a copy: the caller's is not advanced)."""
    if random_state is None or is_int(random_state):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        copy = np.random.Generator(type(random_state.bit_generator)())
        copy.bit_generator.state = random_state.bit_generator.state
        return copy
    raise ValueError("random_state must be None, an int, a numpy RandomState or Generator, got "
                     f"{random_state!r}")
