"""lamina's Conv2D, pooling and Flatten against PyTorch, forward and backward, in float64.

    PYTHONPATH=/work/torchvenv/lib/python3.11/site-packages \
        /work/venvs/conv/bin/python bench/torch_agreement/conv.py

lamina is channels-last (n, h, w, c) and torch NCHW: inputs go to torch through permute(0, 3, 1, 2)
and outputs come back through permute(0, 2, 3, 1); lamina's weight (kh, kw, in, out) is torch's
(out, in, kh, kw) permuted. "same" padding with an even kernel is asymmetric (the extra row and
column at the bottom and right), which torch's conv2d only does after F.pad. Every case is run in
training and in inference mode; each prints the largest relative error (max |a - b| / max |b|)
over y, dx and the parameter gradients, and the script exits 1 when one is above 1e-9.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from lamina import layers

TOLERANCE = 1e-9
torch.set_default_dtype(torch.float64)
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x).permute(0, 3, 1, 2).contiguous().requires_grad_(True)


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).numpy()


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def lamina_pass(layer, x, dy, train):
    mode = layers.Mode(train=train)
    y, cache = layer.forward(x, mode)
    dx, grads = layer.backward(cache, dy, mode)
    return y, dx, grads


def conv_case(rng, n, h, w, c_in, c_out, kernel, stride, padding):
    layer = layers.Conv2D.init(rng, c_in, c_out, kernel, stride=stride, padding=padding, dtype=np.float64)
    layer = layers.Conv2D(weight=layer.weight, bias=rng.standard_normal(c_out), stride=stride,
                          padding=padding)
    x = rng.standard_normal((n, h, w, c_in))
    top, bottom, left, right = layer.pads
    errors = []
    for train in (True, False):
        y0 = layer.forward(x, layers.Mode(train=train))[0]
        dy = rng.standard_normal(y0.shape)
        y, dx, grads = lamina_pass(layer, x, dy, train)
        xt = nchw(x)
        wt = torch.tensor(layer.weight).permute(3, 2, 0, 1).contiguous().requires_grad_(True)
        bt = torch.tensor(layer.bias).requires_grad_(True)
        yt = F.conv2d(F.pad(xt, (left, right, top, bottom)), wt, bt, stride=layer.stride)
        yt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
        errors += [rel(y, nhwc(yt)), rel(dx, nhwc(xt.grad)),
                   rel(grads.weight, wt.grad.permute(2, 3, 1, 0).numpy()), rel(grads.bias, bt.grad.numpy())]
        if padding == "same":  # torch's own "same" puts the extra row and column at the bottom and right too
            errors.append(rel(y, nhwc(F.conv2d(xt, wt, bt, padding="same"))))
    return max(errors)


def pool_case(rng, layer, torch_fn, x):
    errors = []
    for train in (True, False):
        y0 = layer.forward(x, layers.Mode(train=train))[0]
        dy = rng.standard_normal(y0.shape)
        y, dx, _ = lamina_pass(layer, x, dy, train)
        xt = nchw(x)
        yt = torch_fn(xt)
        if yt.ndim == 4:
            yt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
            errors += [rel(y, nhwc(yt))]
        else:
            yt.backward(torch.tensor(dy))
            errors += [rel(y, yt.detach().numpy())]
        errors += [rel(dx, nhwc(xt.grad))]
    return max(errors)


def tied(rng, shape, levels=3):
    """Integers from a few levels: a window often holds its maximum more than once (and all zeros, as MNIST's
    background)."""
    return rng.integers(0, levels, size=shape).astype(np.float64)


def main() -> int:
    rng = np.random.default_rng(0)
    rows = []
    conv_cases = [
        # (n, h, w, c_in, c_out, kernel, stride, padding)
        (3, 9, 8, 2, 4, 3, 1, 0),
        (2, 10, 11, 3, 5, (3, 2), (2, 1), (1, 2)),
        (2, 12, 12, 4, 3, 5, 3, 2),
        (2, 7, 9, 2, 3, 3, 1, "same"),
        (2, 8, 7, 2, 3, 4, 1, "same"),
        (2, 8, 8, 3, 2, (2, 4), 1, "same"),
        (2, 6, 6, 2, 2, 1, 1, "valid"),
        (1, 5, 5, 1, 2, 5, 1, 0),
        (64, 28, 28, 1, 8, 3, 1, 0),     # enough work for several blocks of im2col (transposed: 1 channel)
        (32, 12, 12, 8, 16, 3, 1, 1),    # several blocks, im2col not transposed (8 channels)
    ]
    for case in conv_cases:
        rows.append((f"Conv2D n,h,w,cin,cout,kernel,stride,padding={case}", conv_case(rng, *case)))
    pools = [
        ("MaxPool2D(2) ties", layers.MaxPool2D(2), lambda t: F.max_pool2d(t, 2), tied(rng, (3, 8, 8, 4))),
        ("MaxPool2D(2) odd size", layers.MaxPool2D(2),
         lambda t: F.max_pool2d(t, 2), rng.standard_normal((2, 7, 9, 3))),
        ("MaxPool2D(3, stride 2) overlapping, ties", layers.MaxPool2D(3, 2), lambda t: F.max_pool2d(t, 3, 2),
         tied(rng, (2, 9, 8, 3))),
        ("MaxPool2D((2, 3), stride 1) ties", layers.MaxPool2D((2, 3), 1),
         lambda t: F.max_pool2d(t, (2, 3), 1),
         tied(rng, (2, 6, 7, 2), levels=2)),
        ("MaxPool2D(2, stride 3) gaps", layers.MaxPool2D(2, 3), lambda t: F.max_pool2d(t, 2, 3),
         rng.standard_normal((2, 8, 8, 2))),
        ("AvgPool2D(2)", layers.AvgPool2D(2),
         lambda t: F.avg_pool2d(t, 2), rng.standard_normal((3, 7, 8, 3))),
        ("AvgPool2D(3, stride 2)", layers.AvgPool2D(3, 2), lambda t: F.avg_pool2d(t, 3, 2),
         rng.standard_normal((2, 9, 8, 2))),
        ("AvgPool2D((3, 2), stride (1, 2))", layers.AvgPool2D((3, 2), (1, 2)),
         lambda t: F.avg_pool2d(t, (3, 2), (1, 2)),
         rng.standard_normal((2, 6, 7, 2))),
        ("MaxPool2D(3, stride 1, padding 1) ties", layers.MaxPool2D(3, 1, 1),
         lambda t: F.max_pool2d(t, 3, 1, 1), tied(rng, (2, 6, 7, 3))),
        ("MaxPool2D(3, stride 2, padding (1, 0))", layers.MaxPool2D(3, 2, (1, 0)),
         lambda t: F.max_pool2d(t, 3, 2, (1, 0)), rng.standard_normal((2, 7, 8, 3))),
        ("AvgPool2D(3, stride 2, padding 1)", layers.AvgPool2D(3, 2, 1),
         lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=True), rng.standard_normal((2, 7, 8, 3))),
        ("AvgPool2D(2, padding 1)", layers.AvgPool2D(2, padding=1),
         lambda t: F.avg_pool2d(t, 2, padding=1), rng.standard_normal((2, 5, 6, 3))),
        ("GlobalAvgPool2D", layers.GlobalAvgPool2D(),
         lambda t: t.mean(dim=(2, 3)), rng.standard_normal((3, 5, 6, 4))),
        # Flatten: lamina flattens (h, w, c) row-major; torch's NCHW tensor permuted to NHWC, then flattened
        ("Flatten", layers.Flatten(),
         lambda t: torch.flatten(t.permute(0, 2, 3, 1), 1), rng.standard_normal((3, 4, 5, 2))),
    ]
    for name, layer, fn, x in pools:
        rows.append((name, pool_case(rng, layer, fn, x)))
    width = max(len(name) for name, _ in rows)
    print(f"torch {torch.__version__}, float64; max relative error over y, dx and parameter gradients, "
          f"training and inference (tolerance {TOLERANCE:g})")
    for name, error in rows:
        print(f"{name.ljust(width)}  {error:.2e}{'' if error <= TOLERANCE else '  FAIL'}")
    worst = max(error for _, error in rows)
    print(f"largest: {worst:.2e}")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
