"""Is the W1 gap in fit's loop or in the step's calls? CPU time per step, alternating rounds (one thread).

    PYTHONPATH=$PWD python bench/loop_variants.py W1 7 ref,fit,walk,keyed,raw,ws

ref: the careful NumPy loop; fit: optim.fit; by hand, lamina's calls alone: walk (the NaN guard walking
the gradient record), keyed (the guard along fit's cached leaf keys), raw (no guard), ws (raw, each Dense's
weight gradient written into one reused buffer: fresh arrays against a workspace). The first name is the
ratios' base. Process CPU time, not wall: on a shared machine only ratios from one run mean anything.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import profile_fit as P  # noqa: E402
from lamina import data, layers  # noqa: E402
from lamina.layers import dense  # noqa: E402
from lamina.layers.layer import forward_of  # noqa: E402
from lamina.layers.records.parameter import owning  # noqa: E402
from lamina.optim.step import Reach, checked_gradients, gradients, in_place, owned_copy  # noqa: E402

PLAIN_BACKWARD = dense.Dense.backward
WORKSPACE = {}


def workspace_backward(self, x, dy, mode):
    """Dense.backward with the weight gradient written into one buffer per shape."""
    shape, x, dy = x.shape, x.reshape(-1, self.n_in), dy.reshape(-1, self.n_out)
    gw = WORKSPACE.get((self.n_in, self.n_out))
    if gw is None:
        gw = WORKSPACE[(self.n_in, self.n_out)] = np.empty((self.n_in, self.n_out), x.dtype)
    np.matmul(x.T, dy, out=gw)
    grads = dense.Dense(weight=gw, bias=dy.sum(axis=0))
    return ((dy @ self.weight.T).reshape(shape) if mode.input_grad else None), grads


def by_hand(workload: str, x, y, variant: str) -> None:
    """One epoch of lamina's step calls without fit: the guard as ``variant`` says."""
    dense.Dense.backward = workspace_backward if variant == "ws" else PLAIN_BACKWARD
    model, loss, opt = P.H.lamina_setup(workload)
    net, bs = owned_copy(model, model), P.H.WORKLOADS[workload]["batch_size"]
    state, update = owned_copy(opt.init(net), net), in_place(opt, True)
    rng = np.random.default_rng(P.H.SHUFFLE_SEED)
    order, mode = rng.permutation(len(x)), layers.Mode(train=True, rng=rng, input_grad=False)
    forward, reach = forward_of(net), (Reach.of(net) if variant == "keyed" else None)
    for start in range(0, len(x) - bs + 1, bs):
        rows = order[start:start + bs]
        xb, yb = x[rows], y[rows]
        with owning():
            leaves = None
            if variant in ("raw", "ws"):
                _, _, grads = gradients(forward, net, loss, xb, yb, mode)
            else:
                _, _, grads, leaves = checked_gradients(net, loss, xb, yb, mode, reach=reach)
            net, state = update(net, grads, state, leaves=leaves)
    dense.Dense.backward = PLAIN_BACKWARD


def main() -> None:
    workload, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
    (x, y), _ = data.mnist()
    steps = len(x) // P.H.WORKLOADS[workload]["batch_size"]
    runs = {"ref": lambda: P.run_reference(workload, x, y), "fit": lambda: P.run_lamina(workload, x, y, 1)}
    found = {name: [] for name in names}
    with threadpool_limits(1):
        for _ in range(rounds):
            for name in names:
                start = time.process_time()
                runs[name]() if name in runs else by_hand(workload, x, y, name)
                found[name].append((time.process_time() - start) / steps * 1e6)
    base = np.median(found[names[0]])
    for name in names:
        us = np.median(found[name])
        print(f"{name:6s} CPU µs/step {us:7.1f}  / {names[0]} {us / base:.3f}  rounds "
              f"{np.round(found[name]).astype(int).tolist()}")


if __name__ == "__main__":
    main()
