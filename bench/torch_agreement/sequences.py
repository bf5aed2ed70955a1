"""The sequence layers against PyTorch in float64: forward, input gradient, parameter gradients, both modes.

    PYTHONPATH=$PWD /work/torchvenv/bin/python bench/torch_agreement/sequences.py

Embedding (padding_idx), PositionalEmbedding, Dense on (n, t, f), LayerNorm and GELU on (n, t, f), Conv1D
(stride, padding int/same/causal, dilation; torch's Conv1d on the transposed input, F.pad first for causal),
MaxPool1D, AvgPool1D, GlobalAvgPool1D, GlobalMaxPool1D, LastStep. Prints max |lamina - torch| / max |torch|
per comparison; exit status 1 above 1e-9.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F

from lamina import layers

TOLERANCE = 1e-9


def t64(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def relative(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours - theirs| / max |theirs|."""
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


def channels_first(fn):
    """A torch function of (n, c, t) applied to (n, t, c), its output moved back to (n, t', c)."""
    return lambda x, *p: fn(x.transpose(1, 2), *p).transpose(1, 2)


def cases(rng):
    """(name, layer, input, torch function of (input, *params), params in the layer's field order)."""
    x = rng.standard_normal((3, 11, 4))
    ids = rng.integers(0, 7, (3, 11))
    ids[0, :3] = 2   # repeated ids add up, and padding_idx 2 gets none
    emb = layers.Embedding.init(rng, 7, 5, padding_idx=2, dtype=np.float64)
    yield "Embedding", emb, ids, lambda v, w: F.embedding(v, w, padding_idx=2), [emb.weight]
    emb = layers.Embedding.init(rng, 7, 5, dtype=np.float64)
    yield "Embedding, no padding", emb, ids, lambda v, w: F.embedding(v, w), [emb.weight]
    pos = layers.PositionalEmbedding.init(rng, 16, 4, dtype=np.float64)
    yield "PositionalEmbedding", pos, x, lambda v, w: v + w[:v.shape[1]], [pos.weight]
    dense = layers.Dense.init(rng, 4, 6, dtype=np.float64)
    yield "Dense (n, t, f)", dense, x, lambda v, w, b: F.linear(v, w.T, b), [dense.weight, dense.bias]
    norm = layers.LayerNorm(weight=rng.normal(1, 0.1, 4), bias=rng.normal(0, 0.1, 4))
    yield ("LayerNorm (n, t, f)", norm, x, lambda v, w, b: F.layer_norm(v, (4,), w, b, 1e-5),
           [norm.weight, norm.bias])
    yield "GELU (n, t, f)", layers.GELU(), x, lambda v: F.gelu(v, approximate="tanh"), []
    for kw in (dict(kernel_size=3), dict(kernel_size=3, stride=2, padding=1),
               dict(kernel_size=4, padding="same"),
               dict(kernel_size=3, padding="same", dilation=2),
               dict(kernel_size=3, padding="causal", dilation=2),
               dict(kernel_size=2, stride=3, dilation=3)):
        conv = layers.Conv1D.init(rng, 4, 6, dtype=np.float64, **kw)
        start, end = conv.pads

        def torch_conv(v, w, b, conv=conv, start=start, end=end):
            v = F.pad(v.transpose(1, 2), (start, end))
            v = F.conv1d(v, w.permute(2, 1, 0), b, stride=conv.stride, dilation=conv.dilation)
            return v.transpose(1, 2)
        yield repr(conv), conv, x, torch_conv, [conv.weight, conv.bias]
    for size, stride in ((2, None), (3, 2), (3, 1)):
        step = size if stride is None else stride
        yield (f"MaxPool1D({size}, {stride})", layers.MaxPool1D(size, stride), x,
               channels_first(lambda v, s=size, st=step: F.max_pool1d(v, s, st)), [])
        yield (f"AvgPool1D({size}, {stride})", layers.AvgPool1D(size, stride), x,
               channels_first(lambda v, s=size, st=step: F.avg_pool1d(v, s, st)), [])
    yield "GlobalAvgPool1D", layers.GlobalAvgPool1D(), x, lambda v: v.mean(dim=1), []
    yield ("GlobalMaxPool1D", layers.GlobalMaxPool1D(), x,
           lambda v: F.adaptive_max_pool1d(v.transpose(1, 2), 1)[..., 0], [])
    yield "LastStep", layers.LastStep(), x, lambda v: v[:, -1], []


def main() -> int:
    worst = 0.0
    for name, layer, x, fn, params in cases(np.random.default_rng(0)):
        ids = x.dtype.kind == "i"
        xt = torch.tensor(x) if ids else t64(x).requires_grad_(True)
        pt = [t64(p).requires_grad_(True) for p in params]
        yt = fn(xt, *pt)
        dy = np.random.default_rng(1).standard_normal(tuple(yt.shape))
        yt.backward(t64(dy))
        train = layers.Mode(train=True, rng=np.random.default_rng(0))
        for mode, label in ((train, "train"), (layers.EVAL, "eval")):
            y, cache = layer.forward(x, mode)
            dx, grads = layer.backward(cache, dy, mode)
            pairs = [("y", y, yt)] + ([] if ids else [("dx", dx, xt.grad)])
            pairs += [(f"d{f}", getattr(grads, f), p.grad) for f, p in zip(("weight", "bias"), pt)]
            for what, ours, theirs in pairs:
                error = relative(ours, theirs.detach().numpy())
                worst = max(worst, error)
                print(f"{name:58} {label:5} {what:7} {error:.2e}{'  FAIL' if not error <= TOLERANCE else ''}")
    print(f"largest relative error {worst:.2e} (tolerance {TOLERANCE:.0e}), torch {torch.__version__}")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
