"""Training and inference speed of lamina against a careful NumPy MLP, the matmul floor and PyTorch if there.

    python bench/mlp.py                  # W1 and W2, 5 rounds, 1 and 2 BLAS threads
    python bench/mlp.py --threads 1      # one thread count only
    python bench/mlp.py --rounds 3 --workloads W1

Workloads (MNIST, one epoch of 60,000 samples, float32):
    W1: 784-128-10, batch 32, SGD lr 0.1
    W2: 784-512-512-10, batch 128, SGD momentum 0.9, lr 0.05

Every column starts from the same initial weights (layers.mlp with default_rng(0)) and sees the
same batches in the same order (a Generator seeded 1, one permutation(n) per epoch, as optim.fit
draws them). lamina trains through optim.fit with progress off; the reference and the floor are in
bench/reference.py. Within a round the implementations run one after another, their order
rotating from round to round; the table gives the median over rounds and ratios of medians
from this one run (only ratios within one run mean anything on a shared machine). All columns
of one table use the same BLAS thread count, set with threadpoolctl (and torch.set_num_threads).

Peak RSS: each implementation trains one epoch in a fresh child process that loads the data,
resets its peak (Linux /proc/self/clear_refs) and reports VmHWM after the epoch, so the numbers
are the peak while training, data included, and the implementations cannot inflate each other's.

Inference: model(x) on the 10,000 test images in batches of 1000 (lamina's __call__, the
reference's forward), in samples per second.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as H  # noqa: E402
import reference as R  # noqa: E402

IMPLS = ("lamina", "reference", "floor")
INFER_BATCH = 1000
INFER_PASSES = 3


# ---------------------------------------------------------------- implementations

class Lamina:
    name = "lamina"

    def __init__(self, workload, threads):
        self.w = H.WORKLOADS[workload]
        self.model0, self.loss, self.opt = H.lamina_setup(workload)
        self.threads = threads
        self.trained = None

    def epoch(self, x, y):
        model, _ = H.lamina_fit(self.model0, self.loss, self.opt, x, y, epochs=1,
                                batch_size=self.w["batch_size"],
                                rng=np.random.default_rng(H.SHUFFLE_SEED), threads=self.threads)
        self.trained = model

    def predict(self, x):
        return self.trained(x)

    def arrays(self):
        return H.lamina_arrays(self.trained)

    @staticmethod
    def data_check(x):
        """The check fit makes of x once per call before training (dtype, shape, NaN/inf: one pass over x)."""
        from lamina.optim.checks import check_inputs
        check_inputs(x)


class Reference:
    name = "reference"

    def __init__(self, workload, threads):
        self.w = H.WORKLOADS[workload]
        self.arrays0 = H.lamina_arrays(H.lamina_model(self.w["sizes"]))
        self.trained = None

    def epoch(self, x, y):
        mlp = R.MLP(self.arrays0, self.w["learning_rate"], self.w["momentum"], adam=self.w.get("adam", False))
        mlp.train_epoch(x, y, self.w["batch_size"], np.random.default_rng(H.SHUFFLE_SEED))
        self.trained = mlp

    def predict(self, x):
        return self.trained.forward(x)

    def arrays(self):
        return list(zip(self.trained.weights, self.trained.biases))


class Floor:
    name = "floor"

    def __init__(self, workload, threads):
        self.w = H.WORKLOADS[workload]
        self.weights = [w for w, _ in H.lamina_arrays(H.lamina_model(self.w["sizes"]))]

    def epoch(self, x, y):
        R.floor_epoch(self.weights, x, self.w["batch_size"])


class Torch:
    """PyTorch eager: nn.Sequential of Linear/ReLU, F.cross_entropy, optim.SGD; same weights and batches."""

    name = "torch"

    def __init__(self, workload, threads):
        import torch
        self.torch = torch
        torch.set_num_threads(threads)
        self.w = H.WORKLOADS[workload]
        self.arrays0 = H.lamina_arrays(H.lamina_model(self.w["sizes"]))
        self.trained = None

    def _model(self):
        torch = self.torch
        mods = []
        for i, (w, b) in enumerate(self.arrays0):
            lin = torch.nn.Linear(*w.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                lin.bias.copy_(torch.from_numpy(b))
            if i:
                mods.append(torch.nn.ReLU())
            mods.append(lin)
        return torch.nn.Sequential(*mods)

    def epoch(self, x, y):
        torch = self.torch
        model = self._model()
        opt = (torch.optim.Adam(model.parameters(), lr=self.w["learning_rate"]) if self.w.get("adam") else
               torch.optim.SGD(model.parameters(), lr=self.w["learning_rate"], momentum=self.w["momentum"]))
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        bs = self.w["batch_size"]
        order = np.random.default_rng(H.SHUFFLE_SEED).permutation(len(x))
        total = 0.0
        for start in range(0, len(x), bs):
            idx = torch.from_numpy(order[start:start + bs])
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        self.trained = model

    def predict(self, x):
        with self.torch.no_grad():
            return self.trained(self.torch.from_numpy(x)).numpy()

    def arrays(self):
        layers = [m for m in self.trained if isinstance(m, self.torch.nn.Linear)]
        return [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in layers]


CLASSES = {"lamina": Lamina, "reference": Reference, "floor": Floor, "torch": Torch}


# ---------------------------------------------------------------- measuring

def accuracy(impl, x_test, y_test) -> float:
    logits = np.concatenate([impl.predict(x_test[i:i + INFER_BATCH]) for i in range(0, len(x_test),
                                                                                    INFER_BATCH)])
    return float(np.mean(logits.argmax(axis=1) == y_test))


def max_relative_difference(arrays_a, arrays_b) -> float:
    """max |a - b| / max |b| over every weight and bias array."""
    worst = 0.0
    for pair_a, pair_b in zip(arrays_a, arrays_b):
        for a, b in zip(pair_a, pair_b):
            worst = max(worst, float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)))
    return worst


def time_training(names, workloads, threads, rounds, x, y, x_test, y_test, budget=None):
    """{workload: {impl: [seconds per round]}} plus accuracies and checks, after a short untimed warm-up.

    With ``budget`` (seconds), no new round starts once the rounds so far took longer than that
    (a collapsing multi-threaded BLAS on a busy machine can take a minute per epoch).
    """
    impls = {wl: {name: CLASSES[name](wl, threads) for name in names} for wl in workloads}
    for wl in workloads:  # warm-up: page in the data, let BLAS spin up its threads
        for impl in impls[wl].values():
            impl.epoch(x[:2048], y[:2048])
    times = {wl: {name: [] for name in names} for wl in workloads}
    cpu = {wl: {name: [] for name in names} for wl in workloads}
    # seconds of fit's one-off check of x, timed after each lamina epoch
    data_check = {wl: [] for wl in workloads}
    started = time.perf_counter()
    for r in range(rounds):
        if r and budget is not None and time.perf_counter() - started > budget:
            print(f"  stopped after {r} of {rounds} rounds: over the --budget of {budget:.0f} s", flush=True)
            break
        for wl in workloads:
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                gc.collect()
                t0, c0 = time.perf_counter(), time.process_time()
                impls[wl][name].epoch(x, y)
                times[wl][name].append(time.perf_counter() - t0)
                cpu[wl][name].append(time.process_time() - c0)
                if name == "lamina":
                    t0 = time.perf_counter()
                    Lamina.data_check(x)
                    data_check[wl].append(time.perf_counter() - t0)
            print(f"  round {r + 1}/{rounds} {wl} (threads {threads}): "
                  + ", ".join(f"{n} {times[wl][n][-1]:.2f}s" for n in names), flush=True)
    checks = {}
    for wl in workloads:
        c = {}
        for name in names:
            if name != "floor":
                c[f"acc_{name}"] = accuracy(impls[wl][name], x_test, y_test)
        c["weight_diff"] = max_relative_difference(impls[wl]["lamina"].arrays(),
                                                   impls[wl]["reference"].arrays())
        lamina_logits = np.concatenate([impls[wl]["lamina"].predict(x_test[i:i + INFER_BATCH])
                                        for i in range(0, len(x_test), INFER_BATCH)])
        reference_logits = impls[wl]["reference"].predict(x_test)
        c["agree"] = float(np.mean(lamina_logits.argmax(1) == reference_logits.argmax(1)))
        c["data_check"] = data_check[wl]
        checks[wl] = c
    return times, cpu, checks, impls


def time_inference(impls, names, rounds, x_test):
    """{workload: {impl: [samples per second per round]}}, each from INFER_PASSES passes over x_test in
    batches of 1000."""
    out = {}
    for wl, by_name in impls.items():
        names_here = [n for n in names if n != "floor"]
        rates = {n: [] for n in names_here}
        for r in range(rounds):
            for name in names_here[r % len(names_here):] + names_here[:r % len(names_here)]:
                impl = by_name[name]
                impl.predict(x_test[:INFER_BATCH])
                t0 = time.perf_counter()
                for _ in range(INFER_PASSES):
                    for i in range(0, len(x_test), INFER_BATCH):
                        impl.predict(x_test[i:i + INFER_BATCH])
                rates[name].append(INFER_PASSES * len(x_test) / (time.perf_counter() - t0))
        out[wl] = rates
    return out


def peak_rss(names, workloads, threads):
    """{workload: {impl: child report}}: one fresh process per implementation and workload."""
    out = {}
    for wl in workloads:
        out[wl] = {}
        for name in names:
            if name == "floor":
                continue
            text = H.run_child([__file__, "--child-rss", name, wl, "--threads", str(threads)])
            out[wl][name] = json.loads(text.strip().splitlines()[-1])
    return out


def child_rss(name, workload, threads):
    with threadpool_limits(limits=threads):
        from lamina import data
        (x, y), _ = data.mnist()
        impl = CLASSES[name](workload, threads)
        gc.collect()
        before = H.proc_status()
        reset = H.reset_peak_rss()
        impl.epoch(x, y)
        after = H.proc_status()
    print(json.dumps({"baseline_kb": before["VmRSS"], "peak_kb": after["VmHWM"], "reset": reset,
                      "anon_after_kb": after.get("RssAnon")}))


# ---------------------------------------------------------------- report

def med(values):
    return statistics.median(values)


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(threads, rounds, names, times, cpu, checks, rates, rss, rss_threads) -> str:
    out = [f"### Training, one epoch of MNIST (s), BLAS threads = {threads}, median of {rounds} rounds", ""]
    header = ["workload", *names, "lamina / reference", "lamina / floor", "reference / floor"]
    if "torch" in names:
        header.append("lamina / torch")
    rows = []
    for wl, by in times.items():
        m = {n: med(v) for n, v in by.items()}
        row = [H.WORKLOADS[wl]["label"], *(f"{m[n]:.2f}" for n in names),
               f"{m['lamina'] / m['reference']:.2f}", f"{m['lamina'] / m['floor']:.2f}",
               f"{m['reference'] / m['floor']:.2f}"]
        if "torch" in names:
            row.append(f"{m['lamina'] / m['torch']:.2f}")
        rows.append(row)
    out.append(table(header, rows))
    out.append("")
    out.append("spread (min-max s): " + "; ".join(
        f"{wl} " + ", ".join(f"{n} {min(v):.2f}-{max(v):.2f}" for n, v in by.items())
        for wl, by in times.items()))
    out += ["", "The same ratios by other estimators (a busy machine only ever adds time: the round whose "
                "columns add up to the least time was the least disturbed; process CPU time counts all "
                "threads of the process and not the waits for a core):", ""]
    header = ["workload", "estimator", "lamina / reference", "lamina / floor", "reference / floor"]
    if "torch" in names:
        header.append("lamina / torch")
    pairs = [("lamina", "reference"), ("lamina", "floor"), ("reference", "floor")]
    pairs += [("lamina", "torch")] if "torch" in names else []

    def row(wl, label, ratio):
        return [wl, label, *(f"{ratio(a, b):.2f}" for a, b in pairs)]

    rows = []
    for wl in times:
        quiet = min(range(rounds), key=lambda r: sum(v[r] for v in times[wl].values()))
        for label, source, fn in (("median wall", times, med),
                                  (f"least disturbed round (round {quiet + 1}: smallest total), wall", times,
                                   lambda v: v[quiet]),
                                  ("median process CPU", cpu, med)):
            m = {n: fn(v) for n, v in source[wl].items()}
            rows.append(row(wl, label, lambda a, b: m[a] / m[b]))
        # each round's own ratio (its columns ran one after another, seconds apart), then the median:
        # a disturbance that lasts a round cancels out of that round's ratios
        rows.append(row(wl, "median of the rounds' own ratios, wall",
                        lambda a, b: med([x / y for x, y in zip(times[wl][a], times[wl][b])])))
        # the training step alone: each round's lamina epoch less fit's one-off check of x, timed right after
        # it
        m = {n: med(v) for n, v in times[wl].items()}
        m["lamina"] = med([t - c for t, c in zip(times[wl]["lamina"], checks[wl]["data_check"])])
        rows.append(row(wl, "median wall, lamina less fit's one-off data check", lambda a, b: m[a] / m[b]))
    out.append(table(header, rows))
    out += ["", "fit checks x once per call before training (dtype, shape, and NaN/inf in one BLAS pass over "
                "all of x); on a one-epoch run that one-off is: " + "; ".join(
                    f"{wl} {1e3 * med(checks[wl]['data_check']):.1f} ms, "
                    f"{100 * med(checks[wl]['data_check']) / med(times[wl]['lamina']):.1f}% of lamina's epoch"
                    for wl in times)]
    out += ["", f"### Test accuracy after that epoch (BLAS threads = {threads})"
                + (" and peak RSS while training (fresh process each, BLAS threads = "
                   f"{rss_threads})" if rss else ""), ""]
    impl_names = [n for n in names if n != "floor"]
    header = ["workload", *(f"test acc {n}" for n in impl_names), "max rel. weight diff lamina vs reference",
              "same predictions", *(f"peak RSS {n} (MB)" for n in impl_names), "RSS lamina / reference"]
    rows = []
    for wl in times:
        c = checks[wl]
        row = [wl, *(f"{100 * c[f'acc_{n}']:.2f}%" for n in impl_names), f"{c['weight_diff']:.1e}",
               f"{100 * c['agree']:.2f}%"]
        if rss:
            row += [f"{rss[wl][n]['peak_kb'] / 1024:.0f}" for n in impl_names]
            row.append(f"{rss[wl]['lamina']['peak_kb'] / rss[wl]['reference']['peak_kb']:.2f}")
        else:
            row += ["-"] * (len(impl_names) + 1)
        rows.append(row)
    out.append(table(header, rows))
    if rss:
        base = "; ".join(f"{wl} " + ", ".join(f"{n} {r['baseline_kb'] / 1024:.0f}" for n, r in by.items())
                         for wl, by in rss.items())
        reset = all(r["reset"] for by in rss.values() for r in by.values())
        out.append("")
        out.append(f"RSS before training (data loaded, MB): {base}"
                   + ("" if reset else "  [peak could not be reset: it includes data loading]"))
    if rates:
        out += ["", f"### Inference, model(x) on the 10k test set in batches of {INFER_BATCH}, "
                    f"BLAS threads = {threads}, median of {rounds} rounds", ""]
        header = ["workload", *(f"{n} (samples/s)" for n in impl_names), "lamina time / reference time"]
        rows = []
        for wl, by in rates.items():
            m = {n: med(v) for n, v in by.items()}
            rows.append([wl, *(f"{m[n]:,.0f}" for n in impl_names), f"{m['reference'] / m['lamina']:.2f}"])
        out.append(table(header, rows))
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="BLAS thread counts (default: 1 2)")
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2"], choices=sorted(H.WORKLOADS))
    parser.add_argument("--budget", type=float, default=120.0,
                        help="start no new round after this many seconds per thread count (default 120; 0: "
                             "no limit)")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    parser.add_argument("--no-inference", action="store_true")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if it is installed")
    parser.add_argument("--child-rss", nargs=2, metavar=("IMPL", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    args.budget = args.budget or None
    if args.child_rss:
        child_rss(*args.child_rss, args.threads[0])
        return

    start = time.perf_counter()
    names = list(IMPLS) + (["torch"] if H.torch_available() and not args.no_torch else [])
    print("# lamina benchmark: bench/mlp.py " + " ".join(sys.argv[1:]))
    print()
    for line in H.machine_header():
        print(f"- {line}")
    from lamina import data
    (x, y), (x_test, y_test) = data.mnist()
    print(f"- data: MNIST from lamina.data.mnist(), train {x.shape} {x.dtype}, test {x_test.shape}")
    print(f"- columns: {', '.join(names)}"
          + ("" if "torch" in names else " (PyTorch not installed: no torch column)"))
    print(f"- load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}")
    busy0, own0 = H.cpu_ticks(), H.own_cpu_seconds()
    print(flush=True)

    reports = []
    rss, rss_threads = None, None
    for threads in args.threads:
        with threadpool_limits(limits=threads):
            times, cpu, checks, impls = time_training(names, args.workloads, threads, args.rounds, x, y,
                                                      x_test, y_test,
                                                      budget=args.budget)
            done = len(next(iter(next(iter(times.values())).values())))  # rounds run (fewer if over --budget)
            rates = None if args.no_inference else time_inference(impls, names, done, x_test)
        del impls
        if rss is None and not args.no_rss:  # memory does not depend on the thread count: measured once
            rss, rss_threads = peak_rss(names, args.workloads, threads), threads
        text = report(threads, done, names, times, cpu, checks, rates, rss, rss_threads)
        for wl in args.workloads:
            c = checks[wl]
            if abs(c["acc_lamina"] - c["acc_reference"]) > 0.005:
                text += (f"\n\nWARNING: {wl} test accuracy of lamina and the reference differ by more "
                         "than 0.5 points")
        reports.append(text)
        print()
        print(text, flush=True)
        print()
    load = os.getloadavg()
    other = H.other_cpu_seconds(busy0, H.cpu_ticks(), H.own_cpu_seconds() - own0)
    if other > 0.25 * (time.perf_counter() - start):
        print(f"NOTE: other processes used {other:.0f} CPU-seconds during this "
              f"{time.perf_counter() - start:.0f}-second run: wall times are disturbed (with 2 BLAS threads "
              "badly); compare the least-disturbed-round and CPU-time rows.")
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{H.describe_ticks(busy0, H.cpu_ticks(), H.own_cpu_seconds() - own0)}; whole run "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
