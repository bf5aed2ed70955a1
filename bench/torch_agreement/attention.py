"""MultiHeadAttention against PyTorch in float64, causal and not: forward, input gradient and parameter
gradients, in training and inference (the same maths: attention has no mode-dependent part).

PyTorch is the oracle here, never a dependency of lamina. Run it as

    PYTHONPATH=$PWD /work/torchvenv/bin/python bench/torch_agreement/attention.py

Each line prints the largest relative error of a comparison, max |lamina - torch| / max |torch| over the
compared array; the script exits with status 1 when any exceeds 1e-9. The twin is
``torch.nn.MultiheadAttention(dim, n_heads, batch_first=True)`` called as ``mha(x, x, x)`` with
``in_proj_weight = weight_qkv.T`` and ``out_proj.weight = weight_out.T``; causal layers get torch's causal
``attn_mask`` (``nn.Transformer.generate_square_subsequent_mask``).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from agreement import agree, report, t

from lamina import layers

results: list[tuple[str, float]] = []


def compare(rng: np.random.Generator, n: int, steps: int, dim: int, heads: int, causal: bool) -> None:
    layer = layers.MultiHeadAttention.init(rng, dim, heads, causal=causal, dtype=np.float64)
    layer = layers.map_parameters(lambda p: p + 0.3 * rng.standard_normal(p.shape), layer)  # biases not zero
    module = torch.nn.MultiheadAttention(dim, heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        module.in_proj_weight.copy_(t(layer.weight_qkv.T))
        module.in_proj_bias.copy_(t(layer.bias_qkv))
        module.out_proj.weight.copy_(t(layer.weight_out.T))
        module.out_proj.bias.copy_(t(layer.bias_out))
    mask = None
    if causal:
        mask = torch.nn.Transformer.generate_square_subsequent_mask(steps, dtype=torch.float64)
    name = f"MultiHeadAttention(n={n}, t={steps}, dim={dim}, heads={heads}{', causal' if causal else ''})"
    x, dy = rng.standard_normal((n, steps, dim)), rng.standard_normal((n, steps, dim))
    for mode, label in ((layers.Mode(train=True), "train"), (layers.EVAL, "eval")):
        module.train(mode.train)
        module.zero_grad()
        xt = t(x).requires_grad_()
        yt = module(xt, xt, xt, attn_mask=mask, need_weights=False)[0]
        yt.backward(t(dy))
        y, cache = layer.forward(x, mode)
        dx, grads = layer.backward(cache, dy, mode)
        agree(results, f"{name} {label}: y", y, yt)
        agree(results, f"{name} {label}: dx", dx, xt.grad)
        agree(results, f"{name} {label}: d weight_qkv", grads.weight_qkv.T, module.in_proj_weight.grad)
        agree(results, f"{name} {label}: d bias_qkv", grads.bias_qkv, module.in_proj_bias.grad)
        agree(results, f"{name} {label}: d weight_out", grads.weight_out.T, module.out_proj.weight.grad)
        agree(results, f"{name} {label}: d bias_out", grads.bias_out, module.out_proj.bias.grad)


def main() -> int:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    for causal in (False, True):
        for n, steps, dim, heads in ((2, 5, 8, 2), (3, 9, 12, 4), (1, 1, 6, 6), (4, 16, 16, 1)):
            compare(rng, n, steps, dim, heads, causal)
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
