"""BatchNorm: normalization over the batch (and every other axis but the last), as torch's BatchNorm1d / BatchNorm2d."""

from __future__ import annotations

import math
import numbers

import attrs
import numpy as np

from lamina.layers.errors import LayerError, ShapeError
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.parameter import buffer, param
from lamina.layers.records.registry import register


def _number(name: str, low: float, high: float, closed_low: bool):
    """A converter to float that refuses anything outside [low, high] (or (low, high] when not ``closed_low``)."""
    def convert(value) -> float:
        ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
              and (low <= value if closed_low else low < value) and value <= high)
        if not ok:
            interval = f"{'[' if closed_low else '('}{low}, {high}{']' if math.isfinite(high) else ')'}"
            raise ValueError(f"BatchNorm: {name} must be a number in {interval}, got {value!r}")
        return float(value)
    return convert


def feature_arrays(layer_name: str, record, *groups: tuple[str, ...]) -> None:
    """ShapeError unless the named arrays of ``record`` are all (n_features,); TypeError unless each group shares a dtype."""
    first_name = groups[0][0]
    first = getattr(record, first_name)
    if first.ndim != 1:
        raise ShapeError(layer_name, f"a 1-D {first_name} (n_features,)", f"{first_name} of shape {first.shape}")
    for group in groups:
        for name in group:
            array = getattr(record, name)
            if array.shape != first.shape:
                raise ShapeError(layer_name, f"{name} of shape {first.shape} to match {first_name}",
                                 f"{name} of shape {array.shape}")
            if array.dtype != getattr(record, group[0]).dtype:
                raise TypeError(f"{layer_name}: {group[0]} and {name} must share a dtype, "
                                f"got {getattr(record, group[0]).dtype} and {array.dtype}")


def check_features(layer, shape) -> None:
    """ShapeError unless the per-sample ``shape`` has ``layer.n_features`` on its last axis (None: unknown)."""
    if shape is not None and (len(shape) == 0 or shape[-1] not in (None, layer.n_features)):
        raise ShapeError(repr(layer), f"input (n, ..., {layer.n_features}) (features on the last axis)", tuple(shape))


def _check_arrays(layer: "BatchNorm", attribute, value) -> None:
    # params and buffers are checked apart: casting a record (map_parameters, then map_buffers) passes through both dtypes
    feature_arrays("BatchNorm", layer, ("weight", "bias"), ("running_mean", "running_var"))
    if (value < 0).any():       # a variance never is: a damaged or hand-made record
        raise ValueError(f"BatchNorm: running_var holds {int((value < 0).sum())} negative value(s); "
                         f"a variance is >= 0")


@register
@attrs.frozen(repr=False)
class BatchNorm(Layer):
    """y = weight * (x - mean) / sqrt(var + eps) + bias per feature (the last axis), x (n, ..., n_features).

    Training: mean and biased var of the batch, over every axis but the last; backward returns the
    running statistics updated as torch does. Inference: the running statistics.
    """

    weight: np.ndarray = param()
    bias: np.ndarray = param()
    running_mean: np.ndarray = buffer()
    running_var: np.ndarray = buffer(validator=_check_arrays)
    momentum: float = attrs.field(default=0.1, converter=_number("momentum", 0, 1, closed_low=True))
    eps: float = attrs.field(default=1e-5, converter=_number("eps", 0, math.inf, closed_low=False))

    @classmethod
    def init(cls, n_features: int, momentum: float = 0.1, eps: float = 1e-5, dtype=np.float32) -> "BatchNorm":
        """A fresh layer: weight 1, bias 0, running mean 0, running variance 1, all (n_features,)."""
        if not isinstance(n_features, (int, np.integer)) or isinstance(n_features, bool) or n_features < 1:
            raise ValueError(f"BatchNorm.init: n_features must be a positive int, got {n_features!r}")
        ones, zeros = np.ones(n_features, dtype), np.zeros(n_features, dtype)
        return cls(weight=ones, bias=zeros, running_mean=zeros, running_var=ones, momentum=momentum, eps=eps)

    @property
    def n_features(self) -> int:
        return self.weight.shape[0]

    def __repr__(self) -> str:
        settings = "".join(f", {name}={value:g}" for name, value, default in
                           (("momentum", self.momentum, 0.1), ("eps", self.eps, 1e-5)) if value != default)
        return f"BatchNorm({self.n_features}{settings}, {self.weight.dtype})"

    def output_shape(self, input_shape):
        """(..., n_features) -> the same; another width is a ShapeError."""
        check_features(self, input_shape)
        return input_shape

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, ..., n_features) -> y of the same shape; the cache is (x_hat, 1 / sigma, batch statistics or None)."""
        if x.ndim < 2 or x.shape[-1] != self.n_features:
            check_features(self, x.shape[1:] if x.ndim else ())
        if not mode.train:
            inv_sigma = 1 / np.sqrt(self.running_var + self.eps)
            x_hat = (x - self.running_mean) * inv_sigma
            return self.weight * x_hat + self.bias, (x_hat, inv_sigma, None)
        m = x.size // self.n_features  # values per feature: n * h * w
        if m < 2:
            raise LayerError(repr(self), f"training needs more than one value per feature for the batch statistics, "
                                         f"but the batch of shape {x.shape} has {m}; train on larger batches "
                                         f"(or run inference: mode.train=False)")
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axis=axes)
        centered = x - mean
        var = (centered * centered).mean(axis=axes)  # biased, as used for normalizing
        inv_sigma = 1 / np.sqrt(var + self.eps)
        x_hat = centered * inv_sigma
        return self.weight * x_hat + self.bias, (x_hat, inv_sigma, (mean, var, m))

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, ..., n_features) -> dx, and a BatchNorm holding d weight, d bias and the new running statistics."""
        x_hat, inv_sigma, batch = cache
        axes = tuple(range(dy.ndim - 1))
        d_bias = dy.sum(axis=axes)
        d_weight = (dy * x_hat).sum(axis=axes)
        if batch is None:  # inference: the statistics are constants
            dx = (self.weight * inv_sigma) * dy if mode.input_grad else None
            running_mean, running_var = self.running_mean, self.running_var
        else:
            mean, var, m = batch
            dx = ((self.weight * inv_sigma) * (dy - d_bias / m - x_hat * (d_weight / m))
                  if mode.input_grad else None)
            running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
            running_var = (1 - self.momentum) * self.running_var + self.momentum * (m / (m - 1)) * var
        return dx, attrs.evolve(self, weight=d_weight, bias=d_bias, running_mean=running_mean, running_var=running_var)
