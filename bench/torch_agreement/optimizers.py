"""lamina's optimizers against torch.optim in float64: a small MLP's parameters under random gradients.

Each case runs 25 updates with the same gradients through lamina and through torch (torch:
clip_grad_norm_ then step; a schedule sets the group's lr before each step) and prints the
largest relative error over every parameter and step. Exit status 1 above 1e-9.

    PYTHONPATH=/work/torchvenv/lib/python3.11/site-packages \
        /work/venvs/chain/bin/python bench/torch_agreement/optimizers.py
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from lamina import layers, optim

STEPS = 25
TOLERANCE = 1e-9


def cases():
    schedule = optim.Cosine(initial=0.05, total=20, warmup=3)
    for clip in (None, 0.5):
        yield f"SGD momentum clip={clip}", optim.SGD(0.05, momentum=0.9, clip_norm=clip), \
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)
        yield f"SGD nesterov wd clip={clip}", optim.SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.01,
                                                         clip_norm=clip), \
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)
        yield f"SGD plain schedule clip={clip}", optim.SGD(schedule, clip_norm=clip), \
            lambda ps: torch.optim.SGD(ps, lr=0.05)
        yield f"Adam clip={clip}", optim.Adam(1e-2, clip_norm=clip), lambda ps: torch.optim.Adam(ps, lr=1e-2)
        yield f"Adam wd betas schedule clip={clip}", optim.Adam(schedule, betas=(0.8, 0.99), eps=1e-6,
                                                                weight_decay=0.1, clip_norm=clip), \
            lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
        yield (f"AdamW clip={clip}", optim.AdamW(1e-2, clip_norm=clip),
               lambda ps: torch.optim.AdamW(ps, lr=1e-2))
        yield f"AdamW wd schedule clip={clip}", optim.AdamW(schedule, weight_decay=0.3, clip_norm=clip), \
            lambda ps: torch.optim.AdamW(ps, lr=0.05, weight_decay=0.3)
        yield (f"RMSprop clip={clip}", optim.RMSprop(1e-2, clip_norm=clip),
               lambda ps: torch.optim.RMSprop(ps, lr=1e-2))
        yield f"RMSprop centered momentum wd clip={clip}", optim.RMSprop(1e-2, alpha=0.9, eps=1e-6,
                                                                         weight_decay=0.05,
                                                                         momentum=0.7, centered=True,
                                                                         clip_norm=clip), \
            lambda ps: torch.optim.RMSprop(ps, lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=0.05, momentum=0.7,
                                           centered=True)
        yield f"RMSprop centered schedule clip={clip}", optim.RMSprop(schedule, centered=True,
                                                                      clip_norm=clip), \
            lambda ps: torch.optim.RMSprop(ps, lr=0.05, centered=True)


def trajectory_error(opt, make_torch, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    model = layers.mlp(rng, [5, 7, 6, 3], activation=layers.Tanh)
    model = layers.map_parameters(lambda p: p.astype(np.float64), model)
    grads = [layers.map_parameters(lambda p: rng.standard_normal(p.shape) * 0.5, model) for _ in range(STEPS)]
    tensors = [torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True)
               for p in layers.parameters(model)]
    torch_opt = make_torch(tensors)
    clip = getattr(opt, "clip_norm", None)
    state, worst = opt.init(model), 0.0
    for step, g in enumerate(grads):
        model, state = opt.update(model, g, state)
        for t, a in zip(tensors, layers.parameters(g)):
            t.grad = torch.tensor(a)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(tensors, clip)
        rate = opt.rate(step)
        for group in torch_opt.param_groups:
            group["lr"] = rate
        torch_opt.step()
        for p, t in zip(layers.parameters(model), tensors):
            expected = t.detach().numpy()
            worst = max(worst, float(np.max(np.abs(p - expected) / np.maximum(np.abs(expected), 1e-12))))
    return worst


def main() -> int:
    torch.set_default_dtype(torch.float64)
    worst_all = 0.0
    for name, opt, make_torch in cases():
        error = trajectory_error(opt, make_torch)
        worst_all = max(worst_all, error)
        print(f"{name:45s} max relative error {error:.2e}")
    print(f"{'all':45s} max relative error {worst_all:.2e} (tolerance {TOLERANCE:g}, torch "
          f"{torch.__version__})")
    return 0 if worst_all <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
