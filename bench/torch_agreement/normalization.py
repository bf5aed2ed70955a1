"""Dropout, BatchNorm and LayerNorm against PyTorch in float64: forward and backward, training and inference.

PyTorch is the oracle here, never a dependency of lamina. Run it with torch on the path, e.g.

    PYTHONPATH=/work/torchvenv/lib/python3.11/site-packages python bench/torch_agreement/normalization.py

Each line prints the largest relative error of a comparison, max |lamina - torch| / max |torch|
over the compared array (relative to the array's scale, so an entry near 0 does not inflate
it); the script exits with status 1 when any exceeds 1e-9.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from agreement import report

from lamina import layers

F64 = np.float64
results: list[tuple[str, float]] = []


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def agree(name: str, lamina_value, torch_value) -> None:
    """Record max |a - b| / max |b| for one comparison."""
    a = np.asarray(lamina_value, dtype=F64)
    b = torch_value.detach().numpy() if isinstance(torch_value, torch.Tensor) else np.asarray(torch_value,
                                                                                              F64)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    results.append((name, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))))


# ---- Dropout ------------------------------------------------------------------------------------

def dropout(rng: np.random.Generator) -> None:
    x = rng.standard_normal((64, 33))
    dy = rng.standard_normal(x.shape)
    for rate in (0.1, 0.5, 0.9):
        layer = layers.Dropout(rate)
        seed = int(rng.integers(2**31))
        y, cache = layer.forward(x, layers.Mode(train=True, rng=np.random.default_rng(seed)))
        dx, _ = layer.backward(cache, dy, layers.Mode(train=True))
        # the mask lamina drew, redrawn from the same seed; torch's formula: x * mask / (1 - p)
        keep = t(np.random.default_rng(seed).random(x.shape) >= rate)
        xt = t(x).requires_grad_()
        yt = xt * keep / (1 - rate)
        yt.backward(t(dy))
        agree(f"Dropout({rate}) train: y = x * mask / (1 - p)", y, yt)
        agree(f"Dropout({rate}) train: dx", dx, xt.grad)
        # torch's own dropout keeps x / (1 - p) where it keeps (its mask is its own draw)
        torch.manual_seed(seed)
        yt = torch.nn.functional.dropout(t(x), p=rate, training=True)
        kept = yt != 0
        agree(f"Dropout({rate}) train: torch's kept values = x / (1 - p)", yt[kept], t(x)[kept] / (1 - rate))
        # inference: the identity
        xt = t(x).requires_grad_()
        yt = torch.nn.Dropout(p=rate).eval()(xt)
        yt.backward(t(dy))
        y, cache = layer.forward(x, layers.EVAL)
        agree(f"Dropout({rate}) eval: y", y, yt)
        agree(f"Dropout({rate}) eval: dx", layer.backward(cache, dy, layers.EVAL)[0], xt.grad)


# ---- BatchNorm ----------------------------------------------------------------------------------

def batch_norm(rng: np.random.Generator, sample_shape: tuple, steps: int = 4) -> None:
    """Several training steps then inference, torch's BatchNorm1d for (n, f), BatchNorm2d (NCHW, permuted) for
    (n, h, w, c)."""
    f = sample_shape[-1]
    image = len(sample_shape) == 3
    kind = "2d" if image else "1d"
    momentum, eps = 0.2, 1e-3
    weight, bias = rng.uniform(0.5, 1.5, f), rng.standard_normal(f)
    layer = layers.BatchNorm(weight=weight, bias=bias, running_mean=np.zeros(f), running_var=np.ones(f),
                             momentum=momentum, eps=eps)
    torch_layer = (torch.nn.BatchNorm2d if image else torch.nn.BatchNorm1d)(f, eps=eps, momentum=momentum,
                                                                              dtype=torch.float64)
    with torch.no_grad():
        torch_layer.weight.copy_(t(weight))
        torch_layer.bias.copy_(t(bias))
    to_torch = (lambda a: a.permute(0, 3, 1, 2)) if image else (lambda a: a)
    from_torch = (lambda a: a.permute(0, 2, 3, 1)) if image else (lambda a: a)

    def compare(train: bool, label: str) -> None:
        nonlocal layer
        x = rng.normal(3.0, 2.0, (8, *sample_shape))
        dy = rng.standard_normal(x.shape)
        mode = layers.Mode(train=train)
        y, cache = layer.forward(x, mode)
        dx, grads = layer.backward(cache, dy, mode)
        torch_layer.train(train)
        torch_layer.zero_grad()
        xt = t(x).requires_grad_()
        yt = from_torch(torch_layer(to_torch(xt)))
        yt.backward(t(dy))
        agree(f"BatchNorm{kind} {label}: y", y, yt)
        agree(f"BatchNorm{kind} {label}: dx", dx, xt.grad)
        agree(f"BatchNorm{kind} {label}: d weight", grads.weight, torch_layer.weight.grad)
        agree(f"BatchNorm{kind} {label}: d bias", grads.bias, torch_layer.bias.grad)
        layer = layers.update_buffers(layer, grads)
        agree(f"BatchNorm{kind} {label}: running mean", layer.running_mean, torch_layer.running_mean)
        agree(f"BatchNorm{kind} {label}: running var", layer.running_var, torch_layer.running_var)

    for step in range(1, steps + 1):
        compare(True, f"train step {step}")
    compare(False, "eval")


# ---- LayerNorm ----------------------------------------------------------------------------------

def layer_norm(rng: np.random.Generator, sample_shape: tuple) -> None:
    f = sample_shape[-1]
    weight, bias = rng.uniform(0.5, 1.5, f), rng.standard_normal(f)
    layer = layers.LayerNorm(weight=weight, bias=bias, eps=1e-3)
    torch_layer = torch.nn.LayerNorm(f, eps=1e-3, dtype=torch.float64)
    with torch.no_grad():
        torch_layer.weight.copy_(t(weight))
        torch_layer.bias.copy_(t(bias))
    for mode, label in ((layers.Mode(train=True), "train"), (layers.EVAL, "eval")):
        x = rng.normal(-1.0, 3.0, (8, *sample_shape))
        dy = rng.standard_normal(x.shape)
        y, cache = layer.forward(x, mode)
        dx, grads = layer.backward(cache, dy, mode)
        torch_layer.zero_grad()
        xt = t(x).requires_grad_()
        yt = torch_layer(xt)
        yt.backward(t(dy))
        name = f"LayerNorm {sample_shape} {label}"
        agree(f"{name}: y", y, yt)
        agree(f"{name}: dx", dx, xt.grad)
        agree(f"{name}: d weight", grads.weight, torch_layer.weight.grad)
        agree(f"{name}: d bias", grads.bias, torch_layer.bias.grad)


def main() -> int:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    dropout(rng)
    batch_norm(rng, (5,))
    batch_norm(rng, (4, 3, 6))
    layer_norm(rng, (7,))
    layer_norm(rng, (4, 3, 6))
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
