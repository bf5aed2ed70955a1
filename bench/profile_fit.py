"""Where does lamina's training step spend its time? One epoch of fit under cProfile and line_profiler.

    python bench/profile_fit.py                  # W1, 1 BLAS thread
    python bench/profile_fit.py --workload W2 --threads 2 --no-lines

Prints, per training step (one batch): the unprofiled time of lamina's fit, of the reference
and of the matmul floor (median of 3 epochs each); then cProfile's functions sorted by tottime
(time inside the function itself; NumPy operators such as ``@`` and ``+`` are not calls cProfile
sees, so their time lands in the Python function that uses them, e.g. Dense.forward); then, if
line_profiler is installed (``pip install line_profiler``, not a lamina dependency), the time
per line of the step's functions. Profilers add overhead per Python call, so their totals exceed
the unprofiled time; read them as shares.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as H  # noqa: E402
import reference as R  # noqa: E402


def run_lamina(workload, x, y, threads):
    model, loss, opt = H.lamina_setup(workload)
    w = H.WORKLOADS[workload]
    return H.lamina_fit(model, loss, opt, x, y, epochs=1, batch_size=w["batch_size"],
                        rng=np.random.default_rng(H.SHUFFLE_SEED), threads=threads)


def run_reference(workload, x, y):
    w = H.WORKLOADS[workload]
    mlp = R.MLP(H.lamina_arrays(H.lamina_model(w["sizes"])), w["learning_rate"], w["momentum"])
    mlp.train_epoch(x, y, w["batch_size"], np.random.default_rng(H.SHUFFLE_SEED))


def run_floor(workload, x, y):
    w = H.WORKLOADS[workload]
    R.floor_epoch([a for a, _ in H.lamina_arrays(H.lamina_model(w["sizes"]))], x, w["batch_size"])


def interleaved(fns, rounds):
    """For each fn, (median wall, fastest wall, median process CPU) in seconds over ``rounds`` interleaved
    calls."""
    walls, cpus = [[] for _ in fns], [[] for _ in fns]
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            walls[k].append(time.perf_counter() - t0)
            cpus[k].append(time.process_time() - c0)
    return [(statistics.median(w), min(w), statistics.median(c)) for w, c in zip(walls, cpus)]


STEP_MODULES = ("lamina.optim.loop", "lamina.optim.step", "lamina.optim.run", "lamina.optim.sgd",
                "lamina.layers.sequence", "lamina.layers.dense",
                "lamina.layers.activations", "lamina.layers.records.tree", "lamina.layers.records.parameter",
                "lamina.losses.cross_entropy", "lamina.losses.targets")


def _fit_loop_lines(text: str) -> str:
    """Only the lines of fit's report that were hit once per batch or more (the loop), plus the header."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if line.startswith(("Total time", "File", "Function", "Line #", "===")):
            out.append(line)
        elif len(parts) > 4 and parts[0].isdigit() and parts[1].isdigit() and int(parts[1]) >= 100:
            out.append(line)
        elif len(parts) > 4 and parts[0].isdigit() and parts[1].isdigit():
            try:
                if float(parts[4]) >= 0.5:  # one-off lines worth 0.5% or more (e.g. the input check)
                    out.append(line)
            except ValueError:
                pass
    return "\n".join(out)


def line_profile(workload, x, y, threads, share=0.01):
    """Two line_profiler runs: fit alone (accurate per-line shares of the loop), then every function
    of the step's modules (inner detail; instrumenting many small lines inflates them)."""
    try:
        from line_profiler import LineProfiler
    except ImportError:
        return "line_profiler is not installed (pip install line_profiler): no per-line profile"
    import importlib
    import re
    from lamina.optim import loop
    lp = LineProfiler()
    lp.add_function(loop.Loop.batch)   # fit's loop: the lines run once per batch
    lp.runcall(run_lamina, workload, x, y, threads)
    out = io.StringIO()
    lp.print_stats(stream=out, output_unit=1e-6, stripzeros=True)
    first = ("### fit's loop alone (only Loop.batch instrumented; lines run once per batch, and one-off "
             "lines "
             ">= 0.5%)\n\n" + _fit_loop_lines(out.getvalue()))

    lp = LineProfiler()
    for name in STEP_MODULES:
        try:
            lp.add_module(importlib.import_module(name))
        except ImportError:
            pass
    lp.runcall(run_lamina, workload, x, y, threads)
    out = io.StringIO()
    lp.print_stats(stream=out, output_unit=1e-6, stripzeros=True)
    blocks = re.split(r"\n(?=Total time: )", out.getvalue())
    timed = []
    for block in blocks:
        m = re.match(r"Total time: ([0-9.e+-]+) s", block)
        if m and "Function: batch at" not in block:
            timed.append((float(m.group(1)), block))
    top = max((t for t, _ in timed), default=0)
    kept = [b for t, b in sorted(timed, key=lambda tb: -tb[0]) if t >= share * top]
    return (first + "\n\n### inside the step: every function of " + ", ".join(STEP_MODULES)
            + f" taking >= {share:.0%} of the largest ({len(timed) - len(kept)} smaller ones left out; "
              "instrumentation inflates functions made of many short lines)\n\n" + "\n".join(kept))


def _best(fn, number=100, repeat=7) -> float:
    """Fastest of ``repeat`` timings of ``number`` calls, in µs per call (noise only ever adds time)."""
    import timeit
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def anatomy(workload, x, y):
    """Rows (part, µs per step): each piece of lamina's step and of the floor, timed alone on one real batch.

    lamina's pieces run as fit runs them: on a model and optimizer state the loop owns (built
    inside ``layers.parameter.owning``), with the training mode fit passes (no input gradient).
    """
    from lamina import layers
    from lamina.layers.records.parameter import owning
    from lamina.optim.in_place import owned
    w = H.WORKLOADS[workload]
    model, loss, opt = H.lamina_setup(workload)
    model = owned(model)
    order = np.random.default_rng(H.SHUFFLE_SEED).permutation(len(x))
    idx = order[:w["batch_size"]]
    xb, yb = x[idx], y[idx]
    mode = layers.Mode(train=True, rng=np.random.default_rng(0), input_grad=False)
    inner = mode.needing_input_grad()
    lamina, floor = [], []
    with owning():
        lamina.append(("gather x[idx], y[idx]", _best(lambda: (x[idx], y[idx]))))
        pred, cache = model.forward_unchecked(xb, mode)
        a = xb
        for i, (layer, c) in enumerate(zip(model.layers, cache)):
            a_in = a
            lamina.append((f"  layers[{i}] {layer!r}.forward", _best(lambda: layer.forward(a_in, mode))))
            a, _ = layer.forward(a_in, mode)
        lamina.append(("model.forward (all layers)", _best(lambda: model.forward_unchecked(xb, mode))))
        value, loss_cache = loss.forward(pred, yb)
        lamina.append(("loss.forward", _best(lambda: loss.forward(pred, yb))))
        lamina.append(("loss.backward", _best(lambda: loss.backward(loss_cache))))
        dy = loss.backward(loss_cache)
        d = dy
        for i in range(len(model.layers) - 1, -1, -1):
            layer, c, d_in, m = model.layers[i], cache[i], d, (mode if i == 0 else inner)
            lamina.append((f"  layers[{i}] {layer!r}.backward{' (no input gradient)' if i == 0 else ''}",
                           _best(lambda: layer.backward(c, d_in, m))))
            d, _ = layer.backward(c, d_in, m)
        lamina.append(("model.backward (no input gradient)", _best(lambda: model.backward(cache, dy, mode))))
        _, grads = model.backward(cache, dy, mode)
        lamina.append(("accuracy count (argmax == y)",
                       _best(lambda: int(np.count_nonzero(pred.argmax(axis=1) == yb)))))
        # the update as fit runs it: in place, on the owned model and state (the gradients are only read)
        box = {"net": model, "state": owned(opt.init(model))}

        def update():
            box["net"], box["state"] = opt.update_in_place(box["net"], grads, box["state"])
        update()
        lamina.append(("optimizer.update_in_place", _best(update)))
        state0 = opt.init(model)
        lamina.append(("  optimizer.update (pure, allocating)",
                       _best(lambda: opt.update(model, grads, state0))))

    ref = R.MLP(H.lamina_arrays(model), w["learning_rate"], w["momentum"])
    reference = [("gather x[idx], y[idx]", lamina[0][1])]
    reference.append(("forward_train (x @ w; += b; ReLU in place)", _best(lambda: ref.forward_train(xb))))
    logits = ref.forward_train(xb)[-1]
    copy_cost = _best(lambda: logits.copy())
    reference.append(("softmax_cross_entropy (in place; loss and correct count)",
                      _best(lambda: ref.softmax_cross_entropy(logits.copy(), yb)) - copy_cost))
    acts = ref.forward_train(xb)
    d = acts.pop()
    ref.softmax_cross_entropy(d, yb)
    reference.append(("backward (into preallocated gradient buffers)", _best(lambda: ref.backward(acts, d))))
    saved_ref = [g.copy() for g in ref.grads]

    def restore_ref():  # as for lamina: the in-place update scales the gradients it is given
        for g, s in zip(ref.grads, saved_ref):
            np.copyto(g, s)
    reference.append(("update (in place)", _best(lambda: (restore_ref(), ref.update())) - _best(restore_ref)))

    weights = [layer.weight for layer in model.layers if isinstance(layer, layers.Dense)]
    acts = [xb]
    for wt in weights:
        acts.append(acts[-1] @ wt)
    d = acts[-1]
    for k, wt in enumerate(weights):
        a_in = acts[k]
        floor.append((f"x{k} {a_in.shape} @ W{k} {wt.shape}", _best(lambda: a_in @ wt)))
    for k in range(len(weights) - 1, -1, -1):
        a_in, d_in, wt = acts[k], d, weights[k]
        floor.append((f"x{k}.T @ d{k} -> {wt.shape}", _best(lambda: a_in.T @ d_in)))
        if k > 0:
            floor.append((f"d{k} @ W{k}.T -> {a_in.shape}", _best(lambda: d_in @ wt.T)))
            d = d_in @ wt.T
    return lamina, reference, floor


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", default="W1", choices=sorted(H.WORKLOADS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved unprofiled epochs of each")
    parser.add_argument("--no-lines", action="store_true", help="skip line_profiler")
    args = parser.parse_args()

    from lamina import data
    (x, y), _ = data.mnist()
    w = H.WORKLOADS[args.workload]
    steps = -(-len(x) // w["batch_size"])
    print(f"# profile of one epoch of {w['label']}, BLAS threads = {args.threads}, {steps} steps")
    for line in H.machine_header():
        print(f"- {line}")
    with threadpool_limits(limits=args.threads):
        run_lamina(args.workload, x[:4096], y[:4096], args.threads)  # warm-up
        t_lamina, t_ref, t_floor = interleaved([lambda: run_lamina(args.workload, x, y, args.threads),
                                                lambda: run_reference(args.workload, x, y),
                                                lambda: run_floor(args.workload, x, y)], args.rounds)
        print()
        print(f"| per step, whole epochs, unprofiled, {args.rounds} interleaved rounds | median wall µs | "
              "fastest wall µs | median CPU µs | x floor (fastest) |")
        print("| --- | --- | --- | --- | --- |")
        for name, t in (("lamina fit", t_lamina), ("reference", t_ref), ("floor (matmuls only)", t_floor)):
            print(f"| {name} | {1e6 * t[0] / steps:.0f} | {1e6 * t[1] / steps:.0f} | "
                  f"{1e6 * t[2] / steps:.0f} | {t[1] / t_floor[1]:.2f} |")
        print(f"| lamina - floor | {1e6 * (t_lamina[0] - t_floor[0]) / steps:.0f} | "
              f"{1e6 * (t_lamina[1] - t_floor[1]) / steps:.0f} | "
              f"{1e6 * (t_lamina[2] - t_floor[2]) / steps:.0f} | |")
        print(f"| lamina - reference | {1e6 * (t_lamina[0] - t_ref[0]) / steps:.0f} | "
              f"{1e6 * (t_lamina[1] - t_ref[1]) / steps:.0f} | {1e6 * (t_lamina[2] - t_ref[2]) / steps:.0f} "
              "| |")
        t_lamina = t_lamina[1]

        lam, ref, flo = anatomy(args.workload, x, y)
        top_level = [t for name, t in lam if not name.startswith("  ")]
        print()
        print("## Step anatomy: each piece timed alone on one real batch (fastest of 7 x 100 calls, µs)")
        print()
        print("| lamina step | µs |")
        print("| --- | --- |")
        for name, t in lam:
            print(f"| {name.replace('  ', '&nbsp;&nbsp;') if name.startswith('  ') else name} | {t:.1f} |")
        print(f"| **sum of the top-level parts** | **{sum(top_level):.1f}** |")
        print()
        print("| reference step | µs |")
        print("| --- | --- |")
        for name, t in ref:
            print(f"| {name} | {t:.1f} |")
        print(f"| **sum** | **{sum(t for _, t in ref):.1f}** |")
        print()
        print("| floor: the step's matmuls | µs |")
        print("| --- | --- |")
        for name, t in flo:
            print(f"| {name} | {t:.1f} |")
        print(f"| **sum** | **{sum(t for _, t in flo):.1f}** |")

        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(run_lamina, args.workload, x, y, args.threads)
        t_prof = time.perf_counter() - t0
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        print()
        print(f"## cProfile, sorted by tottime (profiled epoch {t_prof:.2f} s vs {t_lamina:.2f} s "
              f"unprofiled, fastest; divide by {steps} for per-step)")
        text = out.getvalue()
        print(text[text.find("   ncalls"):].replace(str(H.ROOT) + "/", "").rstrip())
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(15)
        text = out.getvalue()
        print()
        print("## cProfile, sorted by cumulative time")
        print(text[text.find("   ncalls"):].replace(str(H.ROOT) + "/", "").rstrip())

        if not args.no_lines:
            print()
            print("## line_profiler (µs)")
            print(line_profile(args.workload, x, y, args.threads).replace(str(H.ROOT) + "/", ""))


if __name__ == "__main__":
    main()
