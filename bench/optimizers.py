"""The optimizer update alone, in place, on W2's parameters: lamina's chain against hand-written NumPy.

W2 is 784-512-512-10: parameters (784, 512), (512,), (512, 512), (512,), (512, 10), (10,), float32.
Each round refills every contender's gradients (untimed: lamina 0.1's SGD rule overwrites
them) and times one update of each, in turn, so that a
busy machine slows them alike; the report gives each median and the ratios to the hand-written
rule of the same maths.

- Adam: ``optim.Adam(1e-3).update_in_place`` against a careful hand-written in-place Adam
  (whole arrays, one preallocated scratch per parameter, the gradient only read, as the chain
  reads it, the moments' subnormals flushed every 64 steps as the chain does).
- SGD momentum 0.9: ``optim.SGD(0.05, momentum=0.9).update_in_place`` against lamina 0.1's own
  hand-written in-place rule (blocks of 512 KB, the flush every 64 steps; it overwrote the dead
  gradient, which the chain no longer does: callbacks read the gradients after the step).

    python bench/optimizers.py [--rounds 400]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from lamina import layers, optim
from lamina.layers.records.parameter import owned_buffer
from lamina.optim.executor import flush_subnormals
from lamina.optim.in_place import owned

SIZES = (784, 512, 512, 10)
BLOCK = 512 * 1024


class HandAdam:
    """Adam written out for these arrays: m, v, a scratch per parameter; p, g, m, v, s are whole arrays."""

    def __init__(self, params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.s = [np.empty_like(p) for p in params]

    def update(self, params, grads):
        self.t += 1
        b1, b2 = self.b1, self.b2
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        flush = self.t % 64 == 0
        for p, g, m, v, s in zip(params, grads, self.m, self.v, self.s):
            np.multiply(g, g, out=s)
            s *= 1 - b2
            v *= b2
            v += s
            m *= b1
            np.multiply(g, 1 - b1, out=s)
            m += s
            np.sqrt(v, out=s)
            s *= 1 / math.sqrt(c2)
            s += self.eps
            np.divide(m, s, out=s)
            s *= self.lr / c1
            p -= s
            if flush:
                flush_subnormals(m, scratch=s)
                flush_subnormals(v, scratch=s)


class HandSGD:
    """lamina 0.1's in-place SGD momentum rule: per 512 KB block, v = m v + g; p -= lr v; flush every 64."""

    def __init__(self, params, lr=0.05, momentum=0.9):
        self.lr, self.m, self.t = lr, momentum, 0
        self.v = [np.zeros_like(p) for p in params]

    def blocks(self, params, grads):
        out = []
        for p, g, v in zip(params, grads, self.v):
            size = BLOCK // p.itemsize
            if p.size <= size:
                out.append((p, g, v))
            else:
                fp, fg, fv = p.reshape(-1), g.reshape(-1), v.reshape(-1)
                out.extend((fp[i:i + size], fg[i:i + size], fv[i:i + size]) for i in range(0, p.size, size))
        return out

    def update(self, blocks):
        self.t += 1
        flush = self.t % 64 == 0
        for p, s, v in blocks:      # s: the gradient, dead after it is added to v
            v *= self.m
            v += s
            np.multiply(v, self.lr, out=s)
            p -= s
            if flush:
                flush_subnormals(v, scratch=s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    model = layers.mlp(rng, list(SIZES))
    source = [(rng.standard_normal(p.shape) * 1e-3).astype(np.float32) for p in layers.parameters(model)]

    def refill(arrays):
        for a, b in zip(arrays, source):
            np.copyto(a, b)

    contenders = {}
    for name, opt in (("chain Adam", optim.Adam(1e-3)), ("chain SGD", optim.SGD(0.05, momentum=0.9))):
        net, state = owned(model), owned(opt.init(model))
        grads = owned(layers.map_parameters(np.zeros_like, model))
        writable = [owned_buffer(g) for g in layers.parameters(grads)]
        box = {"state": state}

        def run(opt=opt, net=net, grads=grads, box=box):
            _, box["state"] = opt.update_in_place(net, grads, box["state"])
        contenders[name] = (run, lambda writable=writable: refill(writable))
    hand_params = [p.copy() for p in layers.parameters(model)]
    hand_grads = [np.empty_like(p) for p in hand_params]
    adam = HandAdam(hand_params)
    contenders["hand Adam"] = (lambda: adam.update(hand_params, hand_grads), lambda: refill(hand_grads))
    sgd_params = [p.copy() for p in layers.parameters(model)]
    sgd_grads = [np.empty_like(p) for p in sgd_params]
    sgd = HandSGD(sgd_params)
    sgd_blocks = sgd.blocks(sgd_params, sgd_grads)
    contenders["hand SGD (0.1)"] = (lambda: sgd.update(sgd_blocks), lambda: refill(sgd_grads))

    times = {name: [] for name in contenders}
    with threadpool_limits(1):
        for r in range(args.rounds + 20):
            for name, (run, prepare) in contenders.items():
                prepare()
                start = time.perf_counter()
                run()
                elapsed = time.perf_counter() - start
                if r >= 20:  # warm-up rounds left out
                    times[name].append(elapsed)
    median = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    print(f"update alone, W2 parameters {SIZES}, float32, {args.rounds} interleaved rounds, median ms:")
    for name, ms in median.items():
        print(f"  {name:16s} {ms:7.3f} ms")
    print(f"  Adam ratio chain / hand-written:   {median['chain Adam'] / median['hand Adam']:.3f}")
    print(f"  SGD ratio chain / lamina 0.1 rule: {median['chain SGD'] / median['hand SGD (0.1)']:.3f}")


if __name__ == "__main__":
    main()
