"""MultiHeadAttention: self-attention (n, t, dim) -> (n, t, dim), as torch's
``nn.MultiheadAttention(dim, n_heads, batch_first=True)`` called with query = key = value = x.

Torch's ``in_proj_weight`` is ``weight_qkv.T`` (q, k, v in that order along its 3 * dim axis, the heads in
order within each) and ``out_proj.weight`` is ``weight_out.T``. Every head is computed at once, as batched
matrix products over (n, heads, t, head_dim).
"""

from __future__ import annotations

import functools
import math

import attrs
import numpy as np

from lamina.layers.errors import ShapeError
from lamina.layers.initializers import check_rng, normal
from lamina.layers.layer import Layer
from lamina.layers import split_rows
from lamina.layers.maths import softmax_
from lamina.layers.mode import Mode
from lamina.layers.records.parameter import param
from lamina.layers.records.registry import register
from lamina.layers.settings import positive_int


@functools.lru_cache(maxsize=16)
def causal_mask(t: int, dtype: np.dtype) -> np.ndarray:
    """(t, t), added to the scores: 0 on and below the diagonal, -inf above (every later key); read-only."""
    mask = np.triu(np.full((t, t), -np.inf, dtype), k=1)
    mask.setflags(write=False)
    return mask


def _check(layer: "MultiHeadAttention", attribute, value) -> None:
    dim = layer.weight_out.shape[0] if layer.weight_out.ndim == 2 else -1
    expected = {"weight_qkv": (dim, 3 * dim), "bias_qkv": (3 * dim,),
                "weight_out": (dim, dim), "bias_out": (dim,)}
    for field, shape in expected.items():
        if getattr(layer, field).shape != shape:
            raise ShapeError("MultiHeadAttention", f"{field} of shape {shape} (dim = weight_out's rows)",
                             f"shape {getattr(layer, field).shape}")
    if len({getattr(layer, field).dtype for field in expected}) > 1:
        raise TypeError("MultiHeadAttention: weight_qkv, bias_qkv, weight_out, bias_out must share a dtype")
    heads = layer.n_heads
    positive_int("MultiHeadAttention", "n_heads", heads)
    if dim % heads:
        raise ValueError(f"MultiHeadAttention: dim {dim} is not divisible by n_heads {heads}; each head "
                         f"takes dim / n_heads features")
    if not isinstance(layer.causal, bool):
        raise TypeError(f"MultiHeadAttention: causal must be True or False, got {layer.causal!r}")


@register
@attrs.frozen(repr=False)
class MultiHeadAttention(Layer):
    """q, k, v = split(x @ weight_qkv + bias_qkv) into heads; y = concat_heads(softmax(q k^T / sqrt(head_dim)
    (+ causal mask)) v) @ weight_out + bias_out; x (n, t, dim)."""

    weight_qkv: np.ndarray = param()
    bias_qkv: np.ndarray = param()
    weight_out: np.ndarray = param()
    bias_out: np.ndarray = param()
    n_heads: int = attrs.field(kw_only=True)
    causal: bool = attrs.field(default=False, kw_only=True, validator=_check)

    @classmethod
    def init(cls, rng: np.random.Generator, dim: int, n_heads: int, *, causal: bool = False, dtype=np.float32,
             init="he") -> "MultiHeadAttention":
        """A fresh layer: both weights drawn as ``init`` says ("he", "glorot" or a std), biases zero."""
        who = "MultiHeadAttention.init"
        check_rng(rng, who, f"{who}(rng, dim, n_heads)")
        dim = positive_int(who, "dim", dim)
        return cls(weight_qkv=normal(rng, (dim, 3 * dim), init, dim, 3 * dim, dtype, who),
                   bias_qkv=np.zeros(3 * dim, dtype),
                   weight_out=normal(rng, (dim, dim), init, dim, dim, dtype, who),
                   bias_out=np.zeros(dim, dtype), n_heads=n_heads, causal=causal)

    @property
    def dim(self) -> int:
        """The width of each step, in and out."""
        return self.weight_out.shape[0]

    def __repr__(self) -> str:
        causal = ", causal" if self.causal else ""
        return f"MultiHeadAttention({self.dim}, heads={self.n_heads}{causal}, {self.weight_out.dtype})"

    def _refuse(self, sample_shape) -> None:
        raise ShapeError(repr(self), f"a sequence batch (n, t, {self.dim}) (sequences are (n, t, features))",
                         tuple(sample_shape))

    def output_shape(self, input_shape):
        """(t, dim) -> (t, dim); t may be None (any length)."""
        if input_shape is not None and (len(input_shape) != 2 or input_shape[1] not in (None, self.dim)):
            self._refuse(input_shape)
        return (None, self.dim) if input_shape is None else tuple(input_shape)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, t, dim) -> y (n, t, dim); the cache: x, the scaled q, k, v, the attention, the heads' out."""
        if x.ndim != 3 or x.shape[2] != self.dim:
            self._refuse(x.shape[1:])
        n, t, dim = x.shape
        heads = self.n_heads
        qkv = x.reshape(-1, dim) @ self.weight_qkv
        qkv += self.bias_qkv
        qkv[:, :dim] *= 1 / math.sqrt(dim // heads)    # q scaled in place: q k^T / sqrt(head_dim)
        # q, k and v, each (n, heads, t, head_dim): views of qkv
        q, k, v = qkv.reshape(n, t, 3, heads, dim // heads).transpose(2, 0, 3, 1, 4)
        attention = np.empty((n, heads, t, t), qkv.dtype)
        heads_out = np.empty((n, t, heads, dim // heads), qkv.dtype)   # the heads side by side
        mask = causal_mask(t, qkv.dtype) if self.causal else None

        def rows(a, b):     # samples [a, b): the same bits whole or in parts
            scores = np.matmul(q[a:b], k[a:b].swapaxes(-1, -2), out=attention[a:b])
            if mask is not None:
                scores += mask
            softmax_(scores)
            np.matmul(scores, v[a:b], out=heads_out[a:b].transpose(0, 2, 1, 3))

        split_rows.run(rows, n, attention.size)
        heads_out = heads_out.reshape(n * t, dim)
        y = heads_out @ self.weight_out
        y += self.bias_out
        return y.reshape(n, t, dim), (x, q, k, v, attention, heads_out)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, t, dim) -> dx (n, t, dim) (None when the mode needs none), gradients as this record."""
        x, q, k, v, attention, heads_out = cache
        if dy.shape != x.shape:
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {x.shape}",
                             f"one of shape {dy.shape}")
        n, t, dim = x.shape
        heads = self.n_heads
        dy2 = dy.reshape(-1, dim)
        d_out = (dy2 @ self.weight_out.T).reshape(n, t, heads, dim // heads).transpose(0, 2, 1, 3)
        d_qkv = np.empty((n, t, 3, heads, dim // heads), np.result_type(q, dy))
        dq, dk, dv = d_qkv.transpose(2, 0, 3, 1, 4)  # views, each (n, heads, t, head_dim)
        d_scores = np.empty(attention.shape, d_qkv.dtype)
        scale = 1 / math.sqrt(dim // heads)

        def rows(a, b):     # samples [a, b): the same bits whole or in parts
            p = attention[a:b]
            np.matmul(p.swapaxes(-1, -2), d_out[a:b], out=dv[a:b])
            ds = np.matmul(d_out[a:b], v[a:b].swapaxes(-1, -2), out=d_scores[a:b])   # d attention
            ds -= np.einsum("nhij,nhij->nhi", ds, p)[..., None]     # then d scores of the softmax
            ds *= p
            np.matmul(ds, k[a:b], out=dq[a:b])
            dq[a:b] *= scale
            np.matmul(ds.swapaxes(-1, -2), q[a:b], out=dk[a:b])

        split_rows.run(rows, n, attention.size)
        d_qkv = d_qkv.reshape(n * t, 3 * dim)
        grads = attrs.evolve(self, weight_qkv=x.reshape(-1, dim).T @ d_qkv, bias_qkv=d_qkv.sum(axis=0),
                             weight_out=heads_out.T @ dy2, bias_out=dy2.sum(axis=0))
        return ((d_qkv @ self.weight_qkv.T).reshape(n, t, dim) if mode.input_grad else None), grads
