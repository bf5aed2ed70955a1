"""GELU (tanh form) and LeakyReLU against PyTorch in float64: forward and backward (both modes: they are the
same).

    PYTHONPATH=/work/torchvenv/lib/python3.11/site-packages python bench/torch_agreement/activations.py

Prints max |lamina - torch| / max |torch| per comparison; exit status 1 above 1e-9.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from lamina import layers

TOLERANCE = 1e-9


def main() -> int:
    rng = np.random.default_rng(0)
    # wide values (GELU's tails, where tanh saturates), plus exact zeros (LeakyReLU's kink: both take the
    # slope there)
    x = np.concatenate([rng.normal(0, 3, 500), rng.uniform(-30, 30, 200), np.zeros(4)]).reshape(-1, 4)
    dy = rng.standard_normal(x.shape)
    cases = [
        (layers.GELU(), lambda v: torch.nn.functional.gelu(v, approximate="tanh")),
        (layers.LeakyReLU(), lambda v: torch.nn.functional.leaky_relu(v)),
        (layers.LeakyReLU(0.2), lambda v: torch.nn.functional.leaky_relu(v, 0.2)),
        (layers.LeakyReLU(-1.5), lambda v: torch.nn.functional.leaky_relu(v, -1.5)),
    ]
    worst = 0.0
    for layer, torch_fn in cases:
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        yt = torch_fn(xt)
        yt.backward(torch.tensor(dy, dtype=torch.float64))
        for mode, label in ((layers.Mode(train=True), "train"), (layers.EVAL, "eval")):
            y, cache = layer.forward(x, mode)
            dx, _ = layer.backward(cache, dy, mode)
            for what, a, b in (("y", y, yt), ("dx", dx, xt.grad)):
                b = b.detach().numpy()
                error = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
                worst = max(worst, error)
                print(f"{layer!r:31} {label:5} {what:2}  "
                      f"{error:.2e}{'  FAIL' if not error <= TOLERANCE else ''}")
    print(f"largest relative error {worst:.2e} (tolerance {TOLERANCE:.0e}), torch {torch.__version__}")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
