"""Shared weights against PyTorch in float64: a tied autoencoder trained a few steps, lamina against torch.

The model is x -> relu(x W1 + b1) -> relu(h W2 + b2) -> relu(z W2^T + c2) -> sigmoid(u W1^T + c1) with
W1, W2 each one set of weights used twice (lamina: the same Dense record placed again through
Transposed.init(layer, bias=True); torch: the same nn.Linear's weight in F.linear, transposed), trained
with MSE for STEPS steps of SGD with momentum, of Adam and of AdamW (weight decay once per shared
weight). Prints the largest relative error of the loss and of every weight after each step; exit
status 1 above 1e-9.

    PYTHONPATH=$PWD /work/torchvenv/bin/python bench/torch_agreement/sharing.py
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F

from lamina import layers, losses, optim

STEPS = 8
TOLERANCE = 1e-9
SIZES = (12, 7, 4)


def lamina_model(rng):
    e1, e2 = (layers.Dense.init(rng, a, b, dtype=np.float64) for a, b in zip(SIZES[:-1], SIZES[1:]))
    e1, e2 = (layers.Dense(weight=e.weight, bias=rng.normal(size=e.bias.shape) * 0.1) for e in (e1, e2))
    d2, d1 = (layers.Transposed(e, rng.normal(size=e.weight.shape[0]) * 0.1) for e in (e2, e1))
    return layers.Sequence([e1, layers.ReLU(), e2, layers.ReLU(), d2, layers.ReLU(), d1, layers.Sigmoid()])


def torch_forward(params, x):
    w1, b1, w2, b2, c2, c1 = params
    h = F.relu(x @ w1 + b1)
    z = F.relu(h @ w2 + b2)
    u = F.relu(z @ w2.T + c2)
    return torch.sigmoid(u @ w1.T + c1)


def cases():
    yield "SGD momentum", optim.SGD(0.3, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.3, momentum=0.9)
    yield "Adam", optim.Adam(1e-2), lambda ps: torch.optim.Adam(ps, lr=1e-2)
    yield "AdamW", optim.AdamW(1e-2, weight_decay=0.1), \
        lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1)


def run(opt, make_torch, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    model = lamina_model(rng)
    x = rng.random((16, SIZES[0]))
    e1, e2, d2, d1 = model.layers[0], model.layers[2], model.layers[4], model.layers[6]
    arrays = [e1.weight, e1.bias, e2.weight, e2.bias, d2.bias, d1.bias]
    params = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    torch_opt = make_torch(params)
    state, worst = opt.init(model), 0.0
    for _ in range(STEPS):
        model, state, value, _ = optim.train_step(model, losses.MSE(), opt, state, x, x, layers.TRAIN)
        torch_opt.zero_grad()
        loss = F.mse_loss(torch_forward(params, torch.tensor(x)), torch.tensor(x))
        loss.backward()
        torch_opt.step()
        worst = max(worst, abs(value - loss.item()) / abs(loss.item()))
        assert model.layers[4].layer is model.layers[2] and model.layers[6].layer is model.layers[0]
        e1, e2, d2, d1 = model.layers[0], model.layers[2], model.layers[4], model.layers[6]
        for mine, theirs in zip([e1.weight, e1.bias, e2.weight, e2.bias, d2.bias, d1.bias], params):
            expected = theirs.detach().numpy()
            worst = max(worst, float(np.max(np.abs(mine - expected) / np.maximum(np.abs(expected), 1e-12))))
    return worst


def main() -> int:
    torch.set_default_dtype(torch.float64)
    errors = {name: run(opt, make_torch) for name, opt, make_torch in cases()}
    print("\n".join(f"tied autoencoder, {name:14s} {STEPS} steps: max relative error (loss, weights) "
                    f"{error:.2e}" for name, error in errors.items()))
    print(f"largest: {max(errors.values()):.2e} (tolerance {TOLERANCE:g}, torch {torch.__version__})")
    return 0 if max(errors.values()) <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
