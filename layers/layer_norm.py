"""LayerNorm: normalization of each sample over its last axis, as ``torch.nn.LayerNorm(n_features)``."""

from __future__ import annotations

import warnings

import attrs
import numpy as np

from lamina.layers.features import PerFeature, feature_arrays
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.parameter import param
from lamina.layers.records.registry import register
from lamina.layers.settings import converter, positive_int, positive_number


def _check_arrays(layer: "LayerNorm", attribute, value) -> None:
    feature_arrays("LayerNorm", layer, ("weight", "bias"))


@register
@attrs.frozen(repr=False)
class LayerNorm(PerFeature, Layer):
    """y = weight * (x - mean) / sqrt(var + eps) + bias, mean and biased var over the last axis of each
    sample; x (n, ..., n_features). The same in training and inference."""

    weight: np.ndarray = param()
    bias: np.ndarray = param(validator=_check_arrays)
    eps: float = attrs.field(default=1e-5, converter=converter(positive_number, "LayerNorm", "eps"))

    @classmethod
    def init(cls, n_features: int, eps: float = 1e-5, dtype=np.float32) -> "LayerNorm":
        """A fresh layer: weight 1, bias 0, both (n_features,)."""
        n_features = positive_int("LayerNorm.init", "n_features", n_features)
        if n_features == 1:
            warnings.warn("LayerNorm.init(1): normalizing over one feature always gives 0, so the layer "
                          "outputs its bias whatever the input; normalize over more features, or use "
                          "BatchNorm",
                          stacklevel=2)
        return cls(weight=np.ones(n_features, dtype), bias=np.zeros(n_features, dtype), eps=eps)

    def __repr__(self) -> str:
        eps = "" if self.eps == 1e-5 else f", eps={self.eps:g}"
        return f"LayerNorm({self.n_features}{eps}, {self.weight.dtype})"

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, ..., n_features) -> y of the same shape; the cache is (x_hat, 1 / sigma), both 2-D: (m,
        n_features) and (m, 1), m the samples times their positions."""
        self.check_input(x)
        flat = x.reshape(-1, x.shape[-1])
        size = 1 / flat.shape[1]
        mean = np.add.reduce(flat, axis=1, keepdims=True)
        mean *= size
        x_hat = flat - mean                                      # centered, then scaled in place
        var = np.einsum("ij,ij->i", x_hat, x_hat)[:, None]      # biased: the squares summed in one pass
        var *= size
        var += self.eps
        inv_sigma = np.sqrt(var, out=var)
        np.divide(1, inv_sigma, out=inv_sigma)
        x_hat *= inv_sigma
        y = x_hat * self.weight
        y += self.bias
        return y.reshape(x.shape), (x_hat, inv_sigma)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, ..., n_features) -> dx = (g - mean(g) - x_hat mean(g x_hat)) / sigma with g = weight dy;
        grads as a LayerNorm."""
        x_hat, inv_sigma = cache
        flat = dy.reshape(x_hat.shape)
        grads = attrs.evolve(self, weight=np.einsum("ij,ij->j", flat, x_hat),
                             bias=np.add.reduce(flat, axis=0))
        if not mode.input_grad:
            return None, grads
        size = 1 / x_hat.shape[1]
        g = flat * self.weight
        mean_g = np.add.reduce(g, axis=1, keepdims=True)
        mean_g *= size
        mean_gx = np.einsum("ij,ij->i", g, x_hat)[:, None]
        mean_gx *= size
        g -= mean_g
        g -= x_hat * mean_gx
        g *= inv_sigma
        return g.reshape(dy.shape), grads
