"""RNN (tanh, relu), LSTM, GRU and Bidirectional against PyTorch in float64: forward, input gradient and
parameter gradients, in training and inference (the same maths: recurrent layers have no mode-dependent part).

PyTorch is the oracle here, never a dependency of lamina. Run it as

    PYTHONPATH=$PWD /work/torchvenv/bin/python bench/torch_agreement/recurrent.py

Each line prints the largest relative error of a comparison, max |lamina - torch| / max |torch| over the
compared array; the script exits with status 1 when any exceeds 1e-9. torch's ``weight_ih_l0`` is
lamina's ``weight_input.T`` and ``weight_hh_l0`` its ``weight_hidden.T``, gate blocks in torch's order.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from agreement import agree, report, t

from lamina import layers

results: list[tuple[str, float]] = []
TORCH = {layers.RNN: torch.nn.RNN, layers.LSTM: torch.nn.LSTM, layers.GRU: torch.nn.GRU}


def torch_twin(layer, bidirectional_twin=None) -> torch.nn.Module:
    """torch's module holding the layer's arrays (and, with a second layer, its reverse direction)."""
    options = {"nonlinearity": layer.nonlinearity} if isinstance(layer, layers.RNN) else {}
    module = TORCH[type(layer)](layer.n_in, layer.n_hidden, batch_first=True, dtype=torch.float64,
                                bidirectional=bidirectional_twin is not None, **options)
    with torch.no_grad():
        for suffix, record in (("", layer), ("_reverse", bidirectional_twin)):
            if record is not None:
                getattr(module, f"weight_ih_l0{suffix}").copy_(t(record.weight_input.T))
                getattr(module, f"weight_hh_l0{suffix}").copy_(t(record.weight_hidden.T))
                getattr(module, f"bias_ih_l0{suffix}").copy_(t(record.bias_input))
                getattr(module, f"bias_hh_l0{suffix}").copy_(t(record.bias_hidden))
    return module


def compare(name: str, layer, module, parts: dict, x, dy) -> None:
    """Forward, dx and every parameter gradient of a lamina layer and its torch twin, in both modes."""
    for mode, label in ((layers.Mode(train=True), "train"), (layers.EVAL, "eval")):
        module.zero_grad()
        xt = t(x).requires_grad_()
        yt = module(xt)[0]
        yt.backward(t(dy))
        y, cache = layer.forward(x, mode)
        dx, grads = layer.backward(cache, dy, mode)
        agree(results, f"{name} {label}: y", y, yt)
        agree(results, f"{name} {label}: dx", dx, xt.grad)
        for torch_name, (path, transpose) in parts.items():
            grad = dict(layers.named_parameters(grads))[path]
            agree(results, f"{name} {label}: d {path}", grad.T if transpose else grad,
                  getattr(module, torch_name).grad)


def names(prefix: str, suffix: str) -> dict:
    """torch's parameter name -> (lamina path, whether it is transposed)."""
    return {f"weight_ih_l0{suffix}": (f"{prefix}weight_input", True),
            f"weight_hh_l0{suffix}": (f"{prefix}weight_hidden", True),
            f"bias_ih_l0{suffix}": (f"{prefix}bias_input", False),
            f"bias_hh_l0{suffix}": (f"{prefix}bias_hidden", False)}


def main() -> int:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    kinds = [(layers.RNN, {"nonlinearity": "tanh"}), (layers.RNN, {"nonlinearity": "relu"}),
             (layers.LSTM, {}), (layers.GRU, {})]
    sizes = [(4, 7, 3, 5)] * 4 + [(3, 12, 6, 9)] * 4
    for (kind, options), (n, steps, n_in, n_hidden) in zip(kinds * 2, sizes):
        label = f"{kind.__name__}{options.get('nonlinearity', '')}({n}, {steps}, {n_in} -> {n_hidden})"
        layer = kind.init(rng, n_in, n_hidden, dtype=np.float64, **options)
        x, dy = rng.standard_normal((n, steps, n_in)), rng.standard_normal((n, steps, n_hidden))
        compare(label, layer, torch_twin(layer), names("", ""), x, dy)
        both = layers.Bidirectional.init(rng, kind, n_in, n_hidden, dtype=np.float64, **options)
        dy = rng.standard_normal((n, steps, 2 * n_hidden))
        compare(f"Bidirectional {label}", both, torch_twin(both.forward_layer, both.backward_layer),
                {**names("forward_layer.", ""), **names("backward_layer.", "_reverse")}, x, dy)
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
