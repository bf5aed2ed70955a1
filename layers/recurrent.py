"""Recurrent layers RNN, LSTM and GRU: (n, t, n_in) -> every step's hidden state (n, t, n_hidden), as torch's
``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` with ``batch_first=True``, one layer, from a zero initial state.

Each computes the input projection of every step at once (one matrix product) and only the hidden
recurrence step by step; backward runs through time exactly, then forms each weight gradient with one
matrix product. Inside, arrays are time-major (t, n, ...), so that one step is one contiguous block.
Torch's ``weight_ih_l0`` is ``weight_input.T`` and ``weight_hh_l0`` is ``weight_hidden.T``.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from lamina.layers.errors import ShapeError
from lamina.layers.initializers import check_rng
from lamina.layers.maths import relu
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.parameter import param
from lamina.layers.records.registry import register
from lamina.layers.settings import positive_int


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-z)) as (1 + tanh(z / 2)) / 2: never overflows, stays in z's dtype; ``out`` may be z."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _flat(a: np.ndarray) -> np.ndarray:
    """(t, n, k) -> (t * n, k)."""
    return a.reshape(-1, a.shape[-1])


def _check_arrays(layer: "_Recurrent", attribute, value) -> None:
    name, g = type(layer).__name__, layer.gates
    hidden = layer.weight_hidden
    if hidden.ndim != 2 or hidden.shape[1] != g * hidden.shape[0]:
        raise ShapeError(name, f"weight_hidden of shape (n_hidden, {g} * n_hidden)", f"shape {hidden.shape}")
    width = hidden.shape[1]
    if layer.weight_input.ndim != 2 or layer.weight_input.shape[1] != width:
        raise ShapeError(name, f"weight_input of shape (n_in, {width})", f"shape {layer.weight_input.shape}")
    for field in ("bias_input", "bias_hidden"):
        if getattr(layer, field).shape != (width,):
            raise ShapeError(name, f"{field} of shape ({width},)", f"shape {getattr(layer, field).shape}")
    dtypes = {getattr(layer, f).dtype for f in ("weight_input", "weight_hidden", "bias_input", "bias_hidden")}
    if len(dtypes) > 1:
        raise TypeError(f"{name}: all four arrays must share a dtype, got {sorted(map(str, dtypes))}")


def _uniform(rng: np.random.Generator, who: str, n_in: int, n_hidden: int, gates: int, dtype) -> dict:
    """The four arrays, uniform in +-1/sqrt(n_hidden) as torch draws them."""
    who = f"{who}.init"
    check_rng(rng, who, f"{who}(rng, n_in, n_hidden)")
    n_in, n_hidden = positive_int(who, "n_in", n_in), positive_int(who, "n_hidden", n_hidden)
    bound = 1 / math.sqrt(n_hidden)
    shapes = {"weight_input": (n_in, gates * n_hidden), "weight_hidden": (n_hidden, gates * n_hidden),
              "bias_input": (gates * n_hidden,), "bias_hidden": (gates * n_hidden,)}
    return {name: rng.uniform(-bound, bound, shape).astype(dtype) for name, shape in shapes.items()}


@attrs.frozen(repr=False)
class _Recurrent(Layer):
    """What RNN, LSTM and GRU share: the fields, shapes, the input projection and the weight gradients."""

    gates = 1  # G: the blocks of n_hidden columns in each array

    weight_input: np.ndarray = param()
    weight_hidden: np.ndarray = param()
    bias_input: np.ndarray = param()
    bias_hidden: np.ndarray = param(validator=_check_arrays)

    @classmethod
    def init(cls, rng: np.random.Generator, n_in: int, n_hidden: int, *, dtype=np.float32):
        """A fresh layer: every array uniform in +-1/sqrt(n_hidden), as torch."""
        return cls(**_uniform(rng, cls.__name__, n_in, n_hidden, cls.gates, dtype))

    @property
    def n_in(self) -> int:
        """The features of each step of the input."""
        return self.weight_input.shape[0]

    @property
    def n_hidden(self) -> int:
        """The width of the hidden state, each step's output."""
        return self.weight_hidden.shape[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n_in} -> {self.n_hidden}, {self.weight_input.dtype})"

    def _refuse(self, sample_shape) -> None:
        raise ShapeError(repr(self), f"a sequence batch (n, t, {self.n_in}) (sequences are (n, t, features))",
                         tuple(sample_shape))

    def output_shape(self, input_shape):
        """(t, n_in) -> (t, n_hidden); t may be None (any length)."""
        if input_shape is None:
            return (None, self.n_hidden)
        if len(input_shape) != 2 or input_shape[1] not in (None, self.n_in):
            self._refuse(input_shape)
        return (input_shape[0], self.n_hidden)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, t, n_in) -> every step's hidden state (n, t, n_hidden); the cache: the time-major steps."""
        if x.ndim != 3 or x.shape[2] != self.n_in:
            self._refuse(x.shape[1:])
        xs = np.ascontiguousarray(x.transpose(1, 0, 2))  # (t, n, n_in)
        projected = (_flat(xs) @ self.weight_input).reshape(*xs.shape[:2], self.weight_input.shape[1])
        hs, state = self._steps(projected)
        return np.ascontiguousarray(hs[1:].transpose(1, 0, 2)), (xs, hs, state)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, t, n_hidden) -> dx (n, t, n_in) (None when the mode needs none), gradients as this class."""
        xs, hs, state = cache
        if dy.shape != (xs.shape[1], xs.shape[0], self.n_hidden):
            expected = (xs.shape[1], xs.shape[0], self.n_hidden)
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {expected}",
                             f"one of shape {dy.shape}")
        d_input, d_hidden = self._steps_back(hs, state, dy.transpose(1, 0, 2))
        grads = attrs.evolve(self, weight_input=_flat(xs).T @ _flat(d_input),
                             weight_hidden=_flat(hs[:-1]).T @ _flat(d_hidden),
                             bias_input=_flat(d_input).sum(axis=0), bias_hidden=_flat(d_hidden).sum(axis=0))
        if not mode.input_grad:
            return None, grads
        dx = (_flat(d_input) @ self.weight_input.T).reshape(xs.shape)
        return np.ascontiguousarray(dx.transpose(1, 0, 2)), grads

    # a subclass writes the recurrence, time-major:
    #   _steps(projected (t, n, G*H): x's part, its own to overwrite) -> (hs (t + 1, n, H), hs[0] = 0; state)
    #   _steps_back(hs, state, dys (t, n, H)) -> (d input projection, d hidden projection), each (t, n, G*H)


@register
@attrs.frozen(repr=False)
class RNN(_Recurrent):
    """h_t = act(x_t @ weight_input + bias_input + h_{t-1} @ weight_hidden + bias_hidden) (tanh or relu)."""

    nonlinearity: str = attrs.field(default="tanh", kw_only=True)

    @nonlinearity.validator
    def _check_nonlinearity(self, attribute, value) -> None:
        if value not in ("tanh", "relu"):
            raise ValueError(f'RNN: nonlinearity must be "tanh" or "relu", got {value!r}')

    @classmethod
    def init(cls, rng: np.random.Generator, n_in: int, n_hidden: int, *, nonlinearity: str = "tanh",
             dtype=np.float32) -> "RNN":
        """A fresh layer: every array uniform in +-1/sqrt(n_hidden), as torch."""
        return cls(**_uniform(rng, "RNN", n_in, n_hidden, 1, dtype), nonlinearity=nonlinearity)

    def __repr__(self) -> str:
        return f"RNN({self.n_in} -> {self.n_hidden}, {self.nonlinearity}, {self.weight_input.dtype})"

    def _steps(self, a):
        t, n, width = a.shape
        a += self.bias_input + self.bias_hidden
        hs = np.zeros((t + 1, n, width), a.dtype)
        for s in range(t):
            if s:
                a[s] += hs[s] @ self.weight_hidden
            if self.nonlinearity == "tanh":
                np.tanh(a[s], out=hs[s + 1])
            else:
                relu(a[s], out=hs[s + 1])
        return hs, None

    def _steps_back(self, hs, state, dys):
        h = hs[1:]
        slope = 1 - h * h if self.nonlinearity == "tanh" else (h > 0).astype(h.dtype)  # d h / d a
        da = np.empty_like(h)
        carry = None
        for s in reversed(range(len(h))):
            np.multiply(dys[s] if carry is None else dys[s] + carry, slope[s], out=da[s])
            if s:
                carry = da[s] @ self.weight_hidden.T
        return da, da


@register
@attrs.frozen(repr=False)
class LSTM(_Recurrent):
    """Gates [i, f, g, o] = [sigmoid, sigmoid, tanh, sigmoid](x_t @ weight_input + bias_input
    + h_{t-1} @ weight_hidden + bias_hidden); c_t = f c_{t-1} + i g; h_t = o tanh(c_t)."""

    gates = 4

    def _steps(self, a):
        t, n, width = a.shape
        k = width // 4
        a += self.bias_input + self.bias_hidden
        hs, cs = np.zeros((t + 1, n, k), a.dtype), np.zeros((t + 1, n, k), a.dtype)
        tanh_c = np.empty((t, n, k), a.dtype)
        for s in range(t):
            z = a[s]  # its pre-activations become the gates, in place
            if s:
                z += hs[s] @ self.weight_hidden
            sigmoid(z[:, :2 * k], out=z[:, :2 * k])
            np.tanh(z[:, 2 * k:3 * k], out=z[:, 2 * k:3 * k])
            sigmoid(z[:, 3 * k:], out=z[:, 3 * k:])
            i, f, g, o = z[:, :k], z[:, k:2 * k], z[:, 2 * k:3 * k], z[:, 3 * k:]
            np.multiply(f, cs[s], out=cs[s + 1])
            cs[s + 1] += i * g
            np.tanh(cs[s + 1], out=tanh_c[s])
            np.multiply(o, tanh_c[s], out=hs[s + 1])
        return hs, (a, cs, tanh_c)

    def _steps_back(self, hs, state, dys):
        gates, cs, tanh_c = state
        t, n, width = gates.shape
        k = width // 4
        i, f, g, o = (gates[..., j * k:(j + 1) * k] for j in range(4))
        dc_per_dh = tanh_c * tanh_c
        np.subtract(1, dc_per_dh, out=dc_per_dh)
        dc_per_dh *= o
        # the pre-activations' gradients are dc (for i, f, g) or dh (for o) times these factors:
        # [i (1 - i) g, f (1 - f) c_{t-1}, (1 - g^2) i, o (1 - o) tanh c_t]
        factors = np.subtract(1, gates)
        factors *= gates
        factors4 = factors.reshape(t, n, 4, k)
        np.multiply(g, g, out=factors4[:, :, 2])
        np.subtract(1, factors4[:, :, 2], out=factors4[:, :, 2])
        for j, other in enumerate((g, cs[:-1], i, tanh_c)):
            factors4[:, :, j] *= other
        dz = np.empty_like(gates)
        dz4 = dz.reshape(t, n, 4, k)
        dh_carry = dc_carry = None
        for s in reversed(range(t)):
            dh = dys[s] if dh_carry is None else dys[s] + dh_carry
            dc = dh * dc_per_dh[s]
            if dc_carry is not None:
                dc += dc_carry
            np.multiply(dc[:, None, :], factors4[s, :, :3], out=dz4[s, :, :3])
            np.multiply(dh, factors4[s, :, 3], out=dz4[s, :, 3])
            if s:
                dc_carry = dc * f[s]
                dh_carry = dz[s] @ self.weight_hidden.T
        return dz, dz


@register
@attrs.frozen(repr=False)
class GRU(_Recurrent):
    """Gates r, z = sigmoid(x_t W_i + b_i + h_{t-1} W_h + b_h) (their blocks); n = tanh(x_t W_in + b_in
    + r (h_{t-1} W_hn + b_hn)); h_t = (1 - z) n + z h_{t-1}."""

    gates = 3

    def _steps(self, a):
        t, n, width = a.shape
        k = width // 3
        a += self.bias_input
        a[..., :2 * k] += self.bias_hidden[:2 * k]
        hs = np.zeros((t + 1, n, k), a.dtype)
        hidden_n = np.empty((t, n, k), a.dtype)  # h_{t-1} W_hn + b_hn
        for s in range(t):
            z = a[s]  # its pre-activations become [r, z, n], in place
            if s:
                hidden = hs[s] @ self.weight_hidden
                z[:, :2 * k] += hidden[:, :2 * k]
                np.add(hidden[:, 2 * k:], self.bias_hidden[2 * k:], out=hidden_n[s])
            else:
                hidden_n[s] = self.bias_hidden[2 * k:]
            sigmoid(z[:, :2 * k], out=z[:, :2 * k])
            candidate = z[:, 2 * k:]
            candidate += z[:, :k] * hidden_n[s]
            np.tanh(candidate, out=candidate)
            np.subtract(hs[s], candidate, out=hs[s + 1])  # h_t = n + z (h_{t-1} - n)
            hs[s + 1] *= z[:, k:2 * k]
            hs[s + 1] += candidate
        return hs, (a, hidden_n)

    def _steps_back(self, hs, state, dys):
        gates, hidden_n = state
        t, n, width = gates.shape
        k = width // 3
        r, z, candidate = (gates[..., j * k:(j + 1) * k] for j in range(3))
        dn_per_dh = (1 - z) * (1 - candidate * candidate)  # d (n's pre-activation) / d h_t
        # the hidden projection's gradient is dh_t times these factors ([r, z, n] blocks)
        factors = np.empty_like(gates)
        factors[..., :k] = dn_per_dh * hidden_n * r * (1 - r)
        factors[..., k:2 * k] = (hs[:-1] - candidate) * z * (1 - z)
        factors[..., 2 * k:] = dn_per_dh * r
        factors3 = factors.reshape(t, n, 3, k)
        d_hidden = np.empty_like(gates)
        d_hidden3 = d_hidden.reshape(t, n, 3, k)
        dh = np.empty_like(hs[1:])
        carry = None
        for s in reversed(range(t)):
            if carry is None:
                dh[s] = dys[s]
            else:
                np.add(dys[s], carry, out=dh[s])
            np.multiply(dh[s][:, None, :], factors3[s], out=d_hidden3[s])
            if s:
                carry = dh[s] * z[s]
                carry += d_hidden[s] @ self.weight_hidden.T
        d_input = d_hidden.copy()
        np.multiply(dh, dn_per_dh, out=d_input[..., 2 * k:])
        return d_input, d_hidden
