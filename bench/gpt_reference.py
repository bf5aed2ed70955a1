"""The yardstick for bench/gpt.py: a careful hand-written NumPy GPT, its training step, and in-place AdamW.

What a careful person writes with NumPy alone, in the spirit of bench/reference.py for the MLP: one
dtype throughout (float32, or float64 for the agreement check), Python-float constants (no silent
float64 step), the matrix products on 2-D views of the (n, t, c) activations, the softmax and its
backward fused in place, the causal mask added once from a prepared table, the fused
softmax-cross-entropy gradient, the tied output layer's gradient added to the embedding's, the
embedding's lookup gradient as one (vocab, n t) one-hot product, torch's clip_grad_norm_ and AdamW
written in place on the parameter arrays with buffers made once.

The model is nanoGPT's (model.py) with biases and the tanh GELU, as lamina's examples/shakespeare_gpt.py
and bench/gpt_torch.py build it. Parameters arrive as a dict in nanoGPT's names and torch's layouts
(a Linear weight (out, in)); they are kept as (in, out) so that every product reads ``x @ w``.
"""

from __future__ import annotations

import math

import numpy as np

GELU_C = math.sqrt(2.0 / math.pi)


def layer_norm(x, weight, bias, eps=1e-5):
    """(m, c) -> (y, (xhat, rstd)): (x - mean) / sqrt(var + eps) * weight + bias over the last axis."""
    mean = x.mean(axis=-1, keepdims=True)
    xhat = x - mean
    var = np.einsum("ij,ij->i", xhat, xhat)[:, None]
    var *= 1.0 / x.shape[-1]
    var += eps
    rstd = np.sqrt(var, out=var)
    np.reciprocal(rstd, out=rstd)
    xhat *= rstd
    return xhat * weight + bias, (xhat, rstd)


def layer_norm_backward(cache, dy, weight):
    """(dx, dweight, dbias) of layer_norm for dy (m, c)."""
    xhat, rstd = cache
    dweight, dbias = np.einsum("ij,ij->j", dy, xhat), dy.sum(axis=0)
    dxhat = dy * weight
    c = dy.shape[-1]
    a = dxhat.sum(axis=-1, keepdims=True)
    b = np.einsum("ij,ij->i", dxhat, xhat)[:, None]
    a *= 1.0 / c
    b *= 1.0 / c
    dxhat -= a
    dxhat -= xhat * b
    dxhat *= rstd
    return dxhat, dweight, dbias


def gelu(u):
    """(y, tanh term): 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3)))."""
    inner = u * u                                 # u (c + c 0.044715 u^2): the tanh's argument
    inner *= GELU_C * 0.044715
    inner += GELU_C
    inner *= u
    th = np.tanh(inner, out=inner)
    y = np.multiply(th + 1.0, u)
    y *= 0.5
    return y, th


def gelu_backward(u, th, dy):
    """d gelu(u) / du * dy."""
    d = th * th                                   # 1 - th^2, built in place
    np.subtract(1.0, d, out=d)
    w = u * u
    w *= 3 * 0.044715
    w += 1.0
    w *= GELU_C * 0.5
    d *= w
    d *= u
    th1 = th + 1.0
    th1 *= 0.5
    d += th1
    d *= dy
    return d


class GPT:
    """nanoGPT's GPT as plain arrays: ``step(x, y, lr)`` trains on a batch of ids (n, t), returns its loss."""

    def __init__(self, state: dict, *, heads: int, dtype=np.float32, weight_decay=0.1, betas=(0.9, 0.99),
                 eps=1e-8, clip=1.0):
        cast = lambda a: np.array(a, dtype=dtype, order="C")      # noqa: E731  (a copy: trained in place)
        self.heads, self.dtype = heads, np.dtype(dtype)
        self.layers = len({k.split(".")[1] for k in state if k.startswith("h.")})
        self.p = {}
        for name, value in state.items():
            linear = name.endswith(".weight") and ("c_attn" in name or "c_proj" in name or "c_fc" in name)
            self.p[name] = cast(value.T if linear else value)       # Linear weights as (in, out)
        self.names = list(self.p)
        self.decay = {name: self.p[name].ndim >= 2 for name in self.names}
        self.weight_decay, self.betas, self.eps, self.clip = weight_decay, betas, eps, clip
        self.m = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.tmp = {k: np.empty_like(v) for k, v in self.p.items()}
        self.steps = 0
        self._mask = {}

    def state(self) -> dict:
        """The parameters back in nanoGPT's names and torch's layouts."""
        return {name: (v.T if v.ndim == 2 and name.startswith("h.") else v).copy()
                for name, v in self.p.items()}

    def mask(self, t: int) -> np.ndarray:
        """(t, t): 0 on and below the diagonal, -inf above (a later key is never seen)."""
        if t not in self._mask:
            self._mask[t] = np.triu(np.full((t, t), -np.inf, self.dtype), 1)
        return self._mask[t]

    def attention(self, h, n, t, i):
        """(n t, c) -> (out (n t, c), cache): causal multi-head self-attention of block i."""
        p, H = self.p, self.heads
        c = h.shape[-1]
        d = c // H
        qkv = h @ p[f"h.{i}.attn.c_attn.weight"]
        qkv += p[f"h.{i}.attn.c_attn.bias"]
        q, k, v = qkv.reshape(n, t, 3, H, d).transpose(2, 0, 3, 1, 4)       # (n, H, t, d) views each
        s = q @ k.transpose(0, 1, 3, 2)                                      # (n, H, t, t)
        s *= 1.0 / math.sqrt(d)
        s += self.mask(t)
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        a = (s @ v).transpose(0, 2, 1, 3).reshape(n * t, c)               # heads joined: (n t, c)
        out = a @ p[f"h.{i}.attn.c_proj.weight"]
        out += p[f"h.{i}.attn.c_proj.bias"]
        return out, (q, k, v, s, a)

    def attention_backward(self, cache, dout, n, t, i, g):
        """d attention / d input (n t, c), the block's attention gradients written into g."""
        p, H = self.p, self.heads
        q, k, v, s, a = cache
        c = dout.shape[-1]
        d = c // H
        g[f"h.{i}.attn.c_proj.weight"] = a.T @ dout
        g[f"h.{i}.attn.c_proj.bias"] = dout.sum(axis=0)
        da = (dout @ p[f"h.{i}.attn.c_proj.weight"].T).reshape(n, t, H, d).transpose(0, 2, 1, 3)
        dqkv = np.empty((n, t, 3, H, d), self.dtype)
        dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)
        np.matmul(s.transpose(0, 1, 3, 2), da, out=dv)
        ds = da @ v.transpose(0, 1, 3, 2)                                    # d loss / d probabilities
        dot = np.einsum("nhij,nhij->nhi", ds, s)[..., None]
        ds -= dot
        ds *= s                                                              # softmax backward, in place
        ds *= 1.0 / math.sqrt(d)
        np.matmul(ds, k, out=dq)
        np.matmul(ds.transpose(0, 1, 3, 2), q, out=dk)
        dqkv = dqkv.reshape(n * t, 3 * c)
        g[f"h.{i}.attn.c_attn.weight"] = self._h[i][0].T @ dqkv
        g[f"h.{i}.attn.c_attn.bias"] = dqkv.sum(axis=0)
        return dqkv @ p[f"h.{i}.attn.c_attn.weight"].T

    def loss_and_grads(self, ids, targets):
        """(mean cross-entropy, gradients by name) of a batch of ids (n, t) and next ids (n, t)."""
        p = self.p
        n, t = ids.shape
        x = p["wte.weight"][ids.reshape(-1)]
        x.reshape(n, t, -1)[:] += p["wpe.weight"][:t]
        self._h = []
        caches = []
        for i in range(self.layers):
            h, ln1 = layer_norm(x, p[f"h.{i}.ln_1.weight"], p[f"h.{i}.ln_1.bias"])
            self._h.append((h,))
            out, att = self.attention(h, n, t, i)
            x += out
            h2, ln2 = layer_norm(x, p[f"h.{i}.ln_2.weight"], p[f"h.{i}.ln_2.bias"])
            u = h2 @ p[f"h.{i}.c_fc.weight"]
            u += p[f"h.{i}.c_fc.bias"]
            act, th = gelu(u)
            m = act @ p[f"h.{i}.c_proj.weight"]
            m += p[f"h.{i}.c_proj.bias"]
            x += m
            caches.append((ln1, att, ln2, h2, u, th, act))
        xf, lnf = layer_norm(x, p["ln_f.weight"], p["ln_f.bias"])
        logits = xf @ p["wte.weight"].T                                      # (n t, vocab), tied
        rows = np.arange(n * t)
        flat = targets.reshape(-1)
        logits -= logits.max(axis=-1, keepdims=True)
        np.exp(logits, out=logits)
        total = logits.sum(axis=-1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - np.log(logits[rows, flat])))
        logits /= total                                                      # probabilities
        logits[rows, flat] -= 1.0
        logits *= 1.0 / (n * t)                                              # d loss / d logits
        g = {"wte.weight": logits.T @ xf}
        dx, g["ln_f.weight"], g["ln_f.bias"] = layer_norm_backward(lnf, logits @ p["wte.weight"],
                                                                   p["ln_f.weight"])
        for i in reversed(range(self.layers)):
            ln1, att, ln2, h2, u, th, act = caches[i]
            g[f"h.{i}.c_proj.weight"] = act.T @ dx
            g[f"h.{i}.c_proj.bias"] = dx.sum(axis=0)
            du = gelu_backward(u, th, dx @ p[f"h.{i}.c_proj.weight"].T)
            g[f"h.{i}.c_fc.weight"] = h2.T @ du
            g[f"h.{i}.c_fc.bias"] = du.sum(axis=0)
            dh2, g[f"h.{i}.ln_2.weight"], g[f"h.{i}.ln_2.bias"] = layer_norm_backward(
                ln2, du @ p[f"h.{i}.c_fc.weight"].T, p[f"h.{i}.ln_2.weight"])
            dx += dh2
            dh = self.attention_backward(att, dx, n, t, i, g)
            dh1, g[f"h.{i}.ln_1.weight"], g[f"h.{i}.ln_1.bias"] = layer_norm_backward(
                ln1, dh, p[f"h.{i}.ln_1.weight"])
            dx += dh1
        onehot = np.zeros((len(p["wte.weight"]), n * t), self.dtype)
        onehot[ids.reshape(-1), rows] = 1.0
        g["wte.weight"] += onehot @ dx                                      # the lookup's rows, summed per id
        g["wpe.weight"] = np.zeros_like(p["wpe.weight"])
        g["wpe.weight"][:t] = dx.reshape(n, t, -1).sum(axis=0)
        self._h = None
        return loss, g

    def update(self, g: dict, lr: float) -> None:
        """clip_grad_norm_(clip) then torch's AdamW, in place on the parameters."""
        norm = math.sqrt(sum(float(np.vdot(a, a)) for a in g.values()))
        scale = min(1.0, self.clip / (norm + 1e-6))
        self.steps += 1
        b1, b2 = self.betas
        bc1, bc2 = 1.0 - b1 ** self.steps, 1.0 - b2 ** self.steps
        step, root = lr / bc1, math.sqrt(bc2)
        for name in self.names:
            p, m, v, tmp, grad = self.p[name], self.m[name], self.v[name], self.tmp[name], g[name]
            if scale < 1.0:
                grad *= scale
            if self.decay[name]:
                p *= 1.0 - lr * self.weight_decay
            m *= b1
            np.multiply(grad, 1.0 - b1, out=tmp)
            m += tmp
            v *= b2
            np.multiply(grad, grad, out=tmp)
            tmp *= 1.0 - b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp *= 1.0 / root
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step
            p -= tmp

    def step(self, ids, targets, lr: float) -> float:
        """One training step on a batch; the loss before the update."""
        loss, g = self.loss_and_grads(ids, targets)
        self.update(g, lr)
        return loss
