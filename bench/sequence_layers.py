"""Forward and backward of the recurrent layers and of attention alone, float32, one BLAS thread: lamina and,
when the interpreter has torch, PyTorch eager on the same shapes, with their ratio.

    PYTHONPATH=$PWD python bench/sequence_layers.py                       # lamina only
    PYTHONPATH=$PWD /work/torchvenv/bin/python bench/sequence_layers.py   # with torch's column

Times are the median over rounds of the thread's CPU time (``time.thread_time``), so a machine busy with
other processes inflates them less than wall-clock time; the two libraries alternate round by round.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from lamina import layers

CASES = [  # (name, lamina layer, torch module, input shape)
    ("LSTM(64 -> 128)", lambda rng: layers.LSTM.init(rng, 64, 128), "LSTM", (32, 64, 64)),
    ("GRU(64 -> 128)", lambda rng: layers.GRU.init(rng, 64, 128), "GRU", (32, 64, 64)),
    ("RNN(64 -> 128)", lambda rng: layers.RNN.init(rng, 64, 128), "RNN", (32, 64, 64)),
    ("MultiHeadAttention(128, 4, causal)",
     lambda rng: layers.MultiHeadAttention.init(rng, 128, 4, causal=True), "MultiheadAttention",
     (12, 64, 128)),
]


def seconds(f) -> float:
    start = time.thread_time()
    f()
    return time.thread_time() - start


def lamina_steps(layer, x):
    """(forward, backward) callables of one layer on x."""
    y, cache = layer.forward(x, layers.TRAIN)
    dy = np.ones_like(y)
    return (lambda: layer.forward(x, layers.TRAIN)), (lambda: layer.backward(cache, dy, layers.TRAIN))


def torch_steps(kind: str, shape):
    """(forward, backward) of torch's module of the same size, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    n, t, f = shape
    if kind == "MultiheadAttention":
        module = torch.nn.MultiheadAttention(f, 4, batch_first=True)
        mask = torch.nn.Transformer.generate_square_subsequent_mask(t)

        def run(x):
            return module(x, x, x, attn_mask=mask, need_weights=False)[0]
    else:
        module = getattr(torch.nn, kind)(f, 128, batch_first=True)

        def run(x):
            return module(x)[0]
    x = torch.randn(n, t, f, requires_grad=True)
    state = {}

    def forward():
        state["y"] = run(x)

    def backward():
        state["y"].backward(torch.ones_like(state["y"]), retain_graph=True)
    forward()
    return forward, backward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| layer, input | lamina forward ms | lamina backward ms | torch forward ms | torch backward ms "
          "| lamina / torch (forward + backward) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    with threadpool_limits(1):
        for name, make, kind, shape in CASES:
            x = rng.standard_normal(shape).astype(np.float32)
            ours, theirs = lamina_steps(make(rng), x), torch_steps(kind, shape)
            times = {key: [] for key in ("f", "b", "tf", "tb")}
            for _ in range(args.rounds):
                times["f"].append(seconds(ours[0]))
                times["b"].append(seconds(ours[1]))
                if theirs is not None:
                    times["tf"].append(seconds(theirs[0]))
                    times["tb"].append(seconds(theirs[1]))
            ms = {key: statistics.median(value) * 1e3 if value else float("nan")
                  for key, value in times.items()}
            ratio = (ms["f"] + ms["b"]) / (ms["tf"] + ms["tb"])
            print(f"| {name}, {shape} | {ms['f']:.2f} | {ms['b']:.2f} | {ms['tf']:.2f} | {ms['tb']:.2f} "
                  f"| {ratio:.2f} |")


if __name__ == "__main__":
    main()
