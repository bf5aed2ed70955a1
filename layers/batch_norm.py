"""BatchNorm: normalization over the batch (and every other axis but the last), as torch's BatchNorm1d /
BatchNorm2d."""

from __future__ import annotations

import math

import attrs
import numpy as np

from lamina.layers.errors import LayerError
from lamina.layers.features import PerFeature, feature_arrays
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.parameter import buffer, param
from lamina.layers.records.registry import register
from lamina.layers.settings import is_real, positive_int


def _number(name: str, low: float, high: float, closed_low: bool):
    """A converter to float that refuses anything outside [low, high] (or (low, high] when not
    ``closed_low``)."""
    def convert(value) -> float:
        ok = (is_real(value) and math.isfinite(value)
              and (low <= value if closed_low else low < value) and value <= high)
        if not ok:
            interval = f"{'[' if closed_low else '('}{low}, {high}{']' if math.isfinite(high) else ')'}"
            raise ValueError(f"BatchNorm: {name} must be a number in {interval}, got {value!r}")
        return float(value)
    return convert


def _check_arrays(layer: "BatchNorm", attribute, value) -> None:
    # params and buffers are checked apart: casting a record (map_parameters, then map_buffers) passes through
    # both dtypes
    feature_arrays("BatchNorm", layer, ("weight", "bias"), ("running_mean", "running_var"))
    if (value < 0).any():       # a variance never is: a damaged or hand-made record
        raise ValueError(f"BatchNorm: running_var holds {int((value < 0).sum())} negative value(s); "
                         f"a variance is >= 0")


@register
@attrs.frozen(repr=False)
class BatchNorm(PerFeature, Layer):
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
        n_features = positive_int("BatchNorm.init", "n_features", n_features)
        ones, zeros = np.ones(n_features, dtype), np.zeros(n_features, dtype)
        return cls(weight=ones, bias=zeros, running_mean=zeros, running_var=ones, momentum=momentum, eps=eps)

    def __repr__(self) -> str:
        settings = "".join(f", {name}={value:g}" for name, value, default in
                           (("momentum", self.momentum, 0.1), ("eps", self.eps, 1e-5)) if value != default)
        return f"BatchNorm({self.n_features}{settings}, {self.weight.dtype})"

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, ..., n_features) -> y of the same shape; the cache is (x_hat, 1 / sigma, batch statistics or
        None)."""
        self.check_input(x)
        if not mode.train:
            inv_sigma = 1 / np.sqrt(self.running_var + self.eps)
            x_hat = (x - self.running_mean) * inv_sigma
            return self.weight * x_hat + self.bias, (x_hat, inv_sigma, None)
        m = x.size // self.n_features  # values per feature: n * h * w
        if m < 2:
            raise LayerError(repr(self), "training needs more than one value per feature for the batch "
                                         f"statistics, but the batch of shape {x.shape} has {m}; train on "
                                         "larger batches (or run inference: mode.train=False)")
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axis=axes)
        centered = x - mean
        var = (centered * centered).mean(axis=axes)  # biased, as used for normalizing
        inv_sigma = 1 / np.sqrt(var + self.eps)
        x_hat = centered * inv_sigma
        return self.weight * x_hat + self.bias, (x_hat, inv_sigma, (mean, var, m))

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, ..., n_features) -> dx, and a BatchNorm holding d weight, d bias and the new running
        statistics."""
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
        return dx, attrs.evolve(self, weight=d_weight, bias=d_bias, running_mean=running_mean,
                                running_var=running_var)
