"""The estimators' settings by name: optimizer, activation and loss names -> lamina classes, with errors listing the valid ones."""

from __future__ import annotations

import numbers

import numpy as np

from lamina import layers, losses, optim

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop}
"""optimizer name -> optimizer class; "sgd" and "rmsprop" take ``momentum``, "adam" and "adamw" have none."""

ACTIVATIONS = {"relu": layers.ReLU, "leaky_relu": layers.LeakyReLU, "tanh": layers.Tanh, "sigmoid": layers.Sigmoid,
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
    """The lamina optimizer for a name and the flat settings; ``momentum`` goes only to "sgd" and "rmsprop"."""
    cls = choice(who, "optimizer", name, OPTIMIZERS)
    number(who, "learning_rate", learning_rate, positive=True)
    number(who, "momentum", momentum)
    if momentum >= 1:
        raise ValueError(f"{who}: momentum must be in [0, 1), got {momentum!r}")
    number(who, "weight_decay", weight_decay)
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


def number(who: str, setting: str, value, *, positive: bool = False) -> None:
    """A real number, >= 0 (> 0 when ``positive``)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value)
            or value < 0 or (positive and value == 0)):
        raise ValueError(f"{who}: {setting} must be a {'positive' if positive else 'non-negative'} number, "
                         f"got {value!r}")


def positive_int(who: str, setting: str, value, *, allow_none: bool = False) -> None:
    """A positive int (or None where allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{who}: {setting} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


def hidden_sizes(who: str, hidden) -> tuple[int, ...]:
    """The hidden widths as a tuple of positive ints; one int is one hidden layer, () none (a linear model)."""
    sizes = (hidden,) if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool) else hidden
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                                for s in sizes):
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
    if random_state is None or isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        copy = np.random.Generator(type(random_state.bit_generator)())
        copy.bit_generator.state = random_state.bit_generator.state
        return copy
    raise ValueError(f"random_state must be None, an int, a numpy RandomState or Generator, got {random_state!r}")
