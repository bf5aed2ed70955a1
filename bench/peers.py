"""lamina against its peers at their own defaults: PyTorch eager and JAX (jit), one MNIST epoch on W1 and W2.

    python bench/peers.py                         # idle: 3 rounds; then contention: 3 rounds
    python bench/peers.py --rounds 5 --no-contention
    python bench/peers.py --torch-python /work/torchvenv/bin/python --jax-python /work/jaxvenv/bin/python

Every library runs in a process of its own (a worker that loads MNIST, builds its model from the
same initial weights and runs one epoch on command, over the same batches in the same order:
lamina's ``fit`` draws them from ``default_rng(1).permutation(60000)``, the others index with that
permutation). Each library is used as its users would, at its defaults: lamina ``optim.fit(...)``
(threads="auto"), PyTorch eager ``nn.Sequential`` + ``F.cross_entropy`` + ``torch.optim.SGD``
(its default thread count), JAX a ``jax.jit`` step with the SGD update written in it (XLA's
default thread pool). lamina also runs pinned at 1 and 2 BLAS threads, so "auto" can be held
against the best fixed choice. PyTorch and JAX are never lamina dependencies: each runs with the
interpreter of an environment that has it (``--torch-python``, ``--jax-python``; by default this
interpreter if it imports them, else /work/torchvenv and /work/jaxvenv when they exist) and is left
out when none does.

A round runs one epoch of every column, one after another, in an order that rotates from round
to round; the ratios are medians of each round's own ratios (its columns ran seconds apart), so
a disturbance that lasts a round cancels out. Every epoch is a fresh fit from the same weights:
lamina's "auto" pays its first measuring round in every epoch.

Contention (``--contention``, on by default): the same rounds while one CPU-bound process (a
busy Python loop) runs for the whole phase, as another user's job would; each library's epoch
is reported against its own idle epoch from the first phase, and every lamina epoch against
lamina's own one-thread idle epoch (issue 22: at most 1.3x, the first epoch of a fit included).
lamina pinned at 2 threads is left out there (two OpenBLAS threads collapse 10-100x when a core is
taken: a round would take minutes), and so is any column named in ``--busy-skip``.

Memory: each worker resets its peak RSS (Linux /proc/self/clear_refs) before every epoch and reads
VmHWM after it, data included (the 188 MB of float32 MNIST that every library holds the same way);
the table gives the largest of the idle rounds.

``--compare PATH`` adds a column "lamina@PATH": lamina at its defaults imported from another checkout
(e.g. ``git worktree add /tmp/before <commit>``), for a same-run before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as H  # noqa: E402

WARM_SAMPLES = 2048
MNIST_FILE = "mnist-uint8.npz"  # beside the workers' data files


# ---------------------------------------------------------------- workers (one process per library)

def build_lamina(arrays, w, threads):
    from lamina import layers, losses, optim
    parts = []
    for i, (weight, bias) in enumerate(arrays):
        if i:
            parts.append(layers.ReLU())
        parts.append(layers.Dense(weight=weight, bias=bias))
    model0 = layers.Sequence(parts)
    loss, opt = losses.SoftmaxCrossEntropy(), optim.SGD(learning_rate=w["learning_rate"],
                                                        momentum=w["momentum"])
    setting = optim.threads.parse(threads)
    state = {}

    def epoch(x, y, order):
        model, history = optim.fit(model0, loss, opt, x, y, epochs=1, batch_size=w["batch_size"],
                                   rng=np.random.default_rng(H.SHUFFLE_SEED), progress=False, threads=setting)
        state["model"] = model
        return {"threads": history["threads"][-1]}

    def predict(x):
        return state["model"](x)

    return epoch, predict


def build_torch(arrays, w, threads):
    import torch

    def make():
        mods = []
        for i, (weight, bias) in enumerate(arrays):
            lin = torch.nn.Linear(*weight.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight.T)))
                lin.bias.copy_(torch.from_numpy(bias))
            if i:
                mods.append(torch.nn.ReLU())
            mods.append(lin)
        return torch.nn.Sequential(*mods)

    state = {}

    def epoch(x, y, order):
        model = make()
        opt = torch.optim.SGD(model.parameters(), lr=w["learning_rate"], momentum=w["momentum"])
        xt, yt, bs = torch.from_numpy(x), torch.from_numpy(y), w["batch_size"]
        total = 0.0
        for start in range(0, len(x), bs):
            idx = torch.from_numpy(order[start:start + bs])
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        state["model"] = model
        return {"threads": torch.get_num_threads(), "version": torch.__version__}

    def predict(x):
        with torch.no_grad():
            return state["model"](torch.from_numpy(x)).numpy()

    return epoch, predict


def build_jax(arrays, w, threads):
    import jax
    import jax.numpy as jnp

    lr, mu = w["learning_rate"], w["momentum"]

    def forward(params, x):
        for weight, bias in params[:-1]:
            x = jax.nn.relu(x @ weight + bias)
        weight, bias = params[-1]
        return x @ weight + bias

    def loss_fn(params, x, y):
        logp = jax.nn.log_softmax(forward(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def step(params, velocity, x, y):
        value, grads = jax.value_and_grad(loss_fn)(params, x, y)
        if mu:
            velocity = jax.tree_util.tree_map(lambda v, g: mu * v + g, velocity, grads)
            grads = velocity
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        return params, velocity, value

    state = {}
    predict_jit = jax.jit(forward)

    def epoch(x, y, order):
        params = [(jnp.asarray(weight), jnp.asarray(bias)) for weight, bias in arrays]
        velocity = jax.tree_util.tree_map(jnp.zeros_like, params)
        bs, values = w["batch_size"], []
        for start in range(0, len(x), bs):
            idx = order[start:start + bs]
            params, velocity, value = step(params, velocity, x[idx], y[idx])
            values.append(value)
        jax.block_until_ready(params)
        state["params"] = params
        return {"threads": os.cpu_count(), "version": jax.__version__}

    def predict(x):
        return np.asarray(predict_jit(state["params"], x))

    return epoch, predict


BUILDERS = {"lamina": build_lamina, "torch": build_torch, "jax": build_jax}


def worker(library, workload, threads, data_file):
    """Load, warm up, print "ready"; then per line "epoch": one timed epoch as JSON; "accuracy": the test
    accuracy."""
    w = H.WORKLOADS[workload]
    with np.load(Path(data_file).parent / MNIST_FILE) as f:  # saved by the parent: no lamina import here
        x, y, x_test, y_test = f["x"], f["y"], f["x_test"], f["y_test"]
    scale = np.float32(1 / 255)
    x, x_test = x.astype(np.float32) * scale, x_test.astype(np.float32) * scale
    saved = np.load(data_file)
    arrays = [(saved[f"w{i}"], saved[f"b{i}"]) for i in range(len(w["sizes"]) - 1)]
    order = saved["order"]
    epoch, predict = BUILDERS[library](arrays, w, threads)
    warm = WARM_SAMPLES + len(x) % w["batch_size"]  # the same last-batch size as a whole epoch (jit shapes)
    epoch(x[:warm], y[:warm], np.random.default_rng(H.SHUFFLE_SEED).permutation(warm))
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "epoch":
            reset = H.reset_peak_rss()
            t0, c0 = time.perf_counter(), time.process_time()
            info = epoch(x, y, order)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            peak = H.proc_status()["VmHWM"] if reset else None
            print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_kb": peak, **info}), flush=True)
        elif command == "accuracy":
            logits = np.concatenate([predict(x_test[i:i + 1000]) for i in range(0, len(x_test), 1000)])
            print(json.dumps({"accuracy": float(np.mean(logits.argmax(axis=1) == y_test))}), flush=True)
        elif command == "quit":
            return


# ---------------------------------------------------------------- the parent

class Worker:
    def __init__(self, python, library, workload, threads, data_file, root=None):
        env = {k: v for k, v in os.environ.items() if k != "LAMINA_THREADS"}
        paths = [str(H.ROOT / "bench"), root, env.get("PYTHONPATH")]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        self.proc = subprocess.Popen([python, __file__, "--worker", library, workload, str(threads),
                                      data_file],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"{library} worker ({python}) failed to start: {line!r}")

    def ask(self, command) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def find_python(module: str, given: str | None, fallback: str) -> str | None:
    """An interpreter that imports ``module``: the one given, this one, or the fallback venv's."""
    for python in ([given] if given else [sys.executable, fallback]):
        if python and Path(python).exists() and subprocess.run(
                [python, "-c", f"import {module}"], capture_output=True).returncode == 0:
            return python
    return None


def columns(args) -> list[tuple]:
    """[(column name, interpreter, library, threads, lamina's checkout or None)]."""
    cols = [(name, sys.executable, "lamina", threads, None)
            for name, threads in (("lamina", "auto"), ("lamina 1", "1"), ("lamina 2", "2"))]
    if args.compare:
        root = str(Path(args.compare).resolve())
        cols.append((f"lamina@{args.compare}", sys.executable, "lamina", "auto", root))
    for library, given, fallback, label in (("torch", args.torch_python, "/work/torchvenv/bin/python",
                                             "torch"),
                                            ("jax", args.jax_python, "/work/jaxvenv/bin/python", "jax")):
        python = None if library in args.skip else find_python(library, given, fallback)
        if python:
            cols.append((label, python, library, "default", None))
        else:
            print(f"- {library}: not importable here or in {fallback}: no column")
    return cols


def run_phase(cols, workloads, rounds, data_files, label, budget) -> dict:
    """{workload: {column: [epoch reports]}}, plus the test accuracies after the last epoch (a column whose
    epoch took over ``budget`` seconds runs no more rounds)."""
    out = {}
    for wl in workloads:
        workers = {name: Worker(python, library, wl, threads, data_files[wl], root)
                   for name, python, library, threads, root in cols}
        names = list(workers)
        times = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                if not times[name] or times[name][-1]["seconds"] <= budget:
                    times[name].append(workers[name].ask("epoch"))
            print(f"  {label} round {r + 1}/{rounds} {wl}: "
                  + ", ".join(f"{n} {times[n][-1]['seconds']:.2f}s" for n in names), flush=True)
        accuracy = {name: workers[name].ask("accuracy")["accuracy"] for name in names}
        for worker_ in workers.values():
            worker_.close()
        out[wl] = {"times": times, "accuracy": accuracy}
    return out


def seconds(reports):
    return [r["seconds"] for r in reports]


def round_ratio(a, b):
    """Median over rounds of each round's own ratio a / b."""
    return statistics.median(x / y for x, y in zip(seconds(a), seconds(b)))


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def peak_mb(reports) -> float | None:
    """The largest peak RSS of the epochs (MB), None where unknown."""
    peaks = [r["peak_kb"] for r in reports if r.get("peak_kb")]
    return max(peaks) / 1024 if peaks else None


def memory_table(phase, names, peers) -> str:
    rows = []
    for wl, got in phase.items():
        peak = {n: peak_mb(got["times"][n]) for n in names}
        rows.append([wl, *(f"{peak[n]:.0f}" if peak[n] else "?" for n in names),
                     *(f"{peak['lamina'] / peak[p]:.2f}" if peak["lamina"] and peak[p] else "?"
                       for p in peers)])
    return table(["workload", *(f"{n} (MB)" for n in names), *(f"lamina / {p}" for p in peers)], rows)


def idle_report(phase, names, rounds) -> str:
    peers = [n for n in names if n in ("torch", "jax")]
    header = ["workload", *(f"{n} (s)" for n in names), *(f"lamina / {p}" for p in peers),
              "lamina / best of lamina 1, 2", "lamina's threads"]
    rows = []
    for wl, got in phase.items():
        t = got["times"]
        best_fixed = statistics.median(min(a, b) / c for a, b, c in zip(
            seconds(t["lamina 1"]), seconds(t["lamina 2"]), seconds(t["lamina"])))
        rows.append([H.WORKLOADS[wl]["label"], *(f"{statistics.median(seconds(t[n])):.2f}" for n in names),
                     *(f"{round_ratio(t['lamina'], t[p]):.2f}" for p in peers), f"{1 / best_fixed:.2f}",
                     ",".join(str(r["threads"]) for r in t["lamina"])])
    out = [f"### One epoch of MNIST, idle, each library at its defaults (median of {rounds} rounds; ratios: "
           "median of the rounds' own ratios)", "", table(header, rows), ""]
    out.append("test accuracy after the epoch: " + "; ".join(
        f"{wl} " + ", ".join(f"{n} {100 * a:.2f}%" for n, a in got["accuracy"].items())
        for wl, got in phase.items()))
    out += ["", "Peak RSS during the epoch, data included (largest of the rounds; reset before each epoch):",
            "", memory_table(phase, names, peers)]
    return "\n".join(out)


def contention_report(idle, busy, names, rounds) -> str:
    header = ["workload", *(f"{n} idle / busy (s)" for n in names), *(f"{n} busy / idle" for n in names)]
    rows = []
    for wl in busy:
        i, b = idle[wl]["times"], busy[wl]["times"]
        med = {n: (statistics.median(seconds(i[n])), statistics.median(seconds(b[n]))) for n in names}
        rows.append([wl, *(f"{med[n][0]:.2f} / {med[n][1]:.2f}" for n in names),
                     *(f"{med[n][1] / med[n][0]:.2f}" for n in names)])
    lamina = [n for n in names if n == "lamina" or n.startswith("lamina@")]
    every = []
    for wl in busy:
        one = statistics.median(seconds(idle[wl]["times"]["lamina 1"]))
        every.append([wl, f"{one:.2f}", *(", ".join(f"{r['seconds'] / one:.2f} ({r['threads']})"
                                                    for r in busy[wl]["times"][n]) for n in lamina)])
    return "\n".join([f"### The same epoch while one CPU-bound process runs for the whole phase ({rounds} "
                      "rounds), against each library's own idle epoch", "", table(header, rows), "",
                      "Every busy epoch (a fresh fit each: the first epoch of a fit) against lamina's idle "
                      "one-thread epoch (issue 22: at most 1.3), with the thread count of most of its "
                      "batches:", "",
                      table(["workload", "lamina 1 idle (s)", *(f"{n} busy / lamina 1 idle" for n in lamina)],
                            every)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy-rounds", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2"], choices=sorted(H.WORKLOADS))
    parser.add_argument("--no-contention", dest="contention", action="store_false")
    parser.add_argument("--torch-python")
    parser.add_argument("--jax-python")
    parser.add_argument("--skip", nargs="*", default=[], choices=["torch", "jax"])
    parser.add_argument("--busy-skip", nargs="*", default=[], metavar="COLUMN",
                        help="columns left out of the contention phase (e.g. torch: 10-30x slower there)")
    parser.add_argument("--compare", metavar="PATH",
                        help="another lamina checkout: a column of lamina at its defaults imported from it")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="a column whose epoch took longer than this (s) runs no more rounds in that "
                             "phase")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return

    start = time.perf_counter()
    print("# lamina and its peers: bench/peers.py " + " ".join(sys.argv[1:]))
    print()
    print("(idle: no process of this benchmark but the workers; the rest of the machine as it was, see the "
          "CPU-seconds of other processes below)")
    for line in H.machine_header():
        print(f"- {line}")
    cols = columns(args)
    names = [c[0] for c in cols]
    print(f"- columns: {', '.join(names)} (lamina: threads=\"auto\", its default; lamina 1, 2: pinned)")
    print(f"- load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    busy0, own0 = H.cpu_ticks(), H.own_cpu_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        data_files = {}
        (x, y), (x_test, y_test) = H.mnist_uint8()
        np.savez(Path(tmp) / MNIST_FILE, x=x, y=y, x_test=x_test, y_test=y_test)
        for wl in args.workloads:
            arrays = H.lamina_arrays(H.lamina_model(H.WORKLOADS[wl]["sizes"]))
            data_files[wl] = str(Path(tmp) / f"{wl}.npz")
            np.savez(data_files[wl], order=np.random.default_rng(H.SHUFFLE_SEED).permutation(60000),
                     **{f"w{i}": w for i, (w, _) in enumerate(arrays)},
                     **{f"b{i}": b for i, (_, b) in enumerate(arrays)})
        idle = run_phase(cols, args.workloads, args.rounds, data_files, "idle", args.budget)
        idle_ticks = H.describe_ticks(busy0, H.cpu_ticks(), H.own_cpu_seconds() - own0)
        busy = None
        if args.contention:
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                busy0b, own0b = H.cpu_ticks(), H.own_cpu_seconds()
                busy = run_phase([c for c in cols if c[0] != "lamina 2" and c[0] not in args.busy_skip],
                                 args.workloads, args.busy_rounds, data_files, "contention", args.budget)
                busy_ticks = H.describe_ticks(busy0b, H.cpu_ticks(), H.own_cpu_seconds() - own0b)
            finally:
                hog.kill()
                hog.wait()
    print()
    print(idle_report(idle, names, args.rounds))
    print(f"\nidle phase: {idle_ticks}")
    if busy:
        print()
        print(contention_report(idle, busy, [n for n in names if n != "lamina 2" and n not in args.busy_skip],
                                args.busy_rounds))
        print(f"\ncontention phase: {busy_ticks} (the busy loop counts as another process)")
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; whole run "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
