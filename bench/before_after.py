"""bench/mlp.py's columns for this checkout and another one (before a change), measured in turns, one run.

    git worktree add /tmp/before f3adca5          # lamina 0.2, the tree before issue 18
    python bench/before_after.py /tmp/before --workloads W1 W2 --rounds 12

The host's speed drifts by 10-30% within minutes here, so two runs of ``mlp.py`` one after the other
compare the host more than the code. Every round this script starts two child processes, each one thread
(BLAS pinned to 1): "after" imports this checkout's lamina, "before" the other checkout's, and both run
the same columns of ``mlp.py`` (lamina through ``optim.fit``, the careful NumPy loop, the matmul floor)
on the same data, batches and weights. Each column's epoch runs in one child, then at once in the other
(which goes first swaps every round), so each ratio compares epochs seconds apart; a fresh pair of
processes each round keeps one process's memory layout from weighing on every round. Every round gives:

- lamina after / lamina before: the change itself;
- each tree's lamina / reference and lamina / floor: ``mlp.py``'s ratios, before and after;
- reference after / reference before: the same code in both children, so its distance from 1 is the
  measurement's own noise.

The tables give the median of the rounds' ratios and their range. ``--together`` runs the two children
at the same moment, one per core (they then slow each other down through the shared cache and memory).
The reference and the floor come from this checkout's bench/ for both children. A checkout without
``lamina/__init__.py`` (0.2 maps its folders to ``lamina`` only when installed) gets this checkout's,
which serves the same folders from a source tree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COLUMNS = ("lamina", "reference", "floor")


# ---------------------------------------------------------------- the child: one checkout's columns

def child(workloads: list[str]) -> None:
    """Answer the parent's lines ("<column> <workload>" or "warm") with one JSON line each."""
    sys.path.insert(0, str(HERE))
    from threadpoolctl import threadpool_limits

    import lamina
    import mlp as M
    from lamina import data

    (x, y), _ = data.mnist()
    with threadpool_limits(limits=1):
        impls = {wl: {name: M.CLASSES[name](wl, 1) for name in COLUMNS} for wl in workloads}
        print(json.dumps({"lamina": lamina.__file__}), flush=True)
        for line in sys.stdin:
            words = line.split()
            if words == ["warm"]:  # page in the data, make the gradient buffers, let the allocator settle
                for by_name in impls.values():
                    for impl in by_name.values():
                        impl.epoch(x[:2048], y[:2048])
                print("{}", flush=True)
                continue
            name, wl = words
            cpu, wall = time.process_time(), time.perf_counter()
            impls[wl][name].epoch(x, y)
            print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}),
                  flush=True)


# ---------------------------------------------------------------- the parent

class Child:
    def __init__(self, label: str, root: Path, workloads: list[str]):
        env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        self.label = label
        self.proc = subprocess.Popen([sys.executable, __file__, "--child", *workloads], cwd=str(root),
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lamina = Path(self.receive()["lamina"]).resolve()
        if root.resolve() not in self.lamina.parents:
            raise SystemExit(f"{label}: imported lamina from {self.lamina}, not from {root}")

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.label}: the child ended (exit code {self.proc.wait()})")
        return json.loads(line)

    def pin(self, core: int) -> None:
        os.sched_setaffinity(self.proc.pid, {core})

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def run_together(children: list[Child], line: str) -> list[dict]:
    for c in children:
        c.send(line)
    out = {c.label: c.receive() for c in children}
    return [out["after"], out["before"]]


def run_in_turns(children: list[Child], line: str) -> list[dict]:
    out = {}
    for c in children:
        c.send(line)
        out[c.label] = c.receive()
    return [out["after"], out["before"]]


def with_shim(before: Path) -> list[str]:
    """Give a checkout without lamina/__init__.py (0.2's) this checkout's; -> the notes to print."""
    shim = before / "lamina" / "__init__.py"
    if shim.exists():
        return []
    shim.parent.mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "lamina" / "__init__.py", shim)
    return [f"{shim} copied from this checkout (its folders served as lamina from the source tree)"]


def revision(root: Path) -> str:
    out = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s"], capture_output=True,
                         text=True)
    return out.stdout.strip()[:90] or "not a git checkout"


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path,
                        help="the other checkout (e.g. a git worktree of the commit before)")
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--together", action="store_true",
                        help="both children at once, one per core (they slow each other down: shared "
                             "cache and memory)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import harness as H

    before = args.before.resolve()
    notes = with_shim(before)
    cores = sorted(os.sched_getaffinity(0))
    if args.together and len(cores) < 2:
        raise SystemExit("--together needs two cores")
    print(f"# lamina benchmark: bench/before_after.py {' '.join(sys.argv[1:])}")
    print()
    for line in H.machine_header():
        print(f"- {line}")
    print(f"- after: {ROOT} ({revision(ROOT)})")
    print(f"- before: {before} ({revision(before)})")
    print(f"- {'together: one child per core' if args.together else 'in turns: one child after the other'}, "
          f"BLAS 1 thread, {args.rounds} rounds, a fresh pair of processes each; the order (or the cores) "
          "swap every round")
    for note in notes:
        print(f"- {note}")
    print(flush=True)
    busy0, own0 = H.cpu_ticks(), H.own_cpu_seconds()
    run = run_together if args.together else run_in_turns
    ratios = {wl: {} for wl in args.workloads}
    for r in range(args.rounds):   # a fresh pair of processes every round: no process's memory layout stays
        children = [Child("after", ROOT, args.workloads), Child("before", before, args.workloads)]
        if r % 2:
            children.reverse()
        try:
            if args.together:
                for c, core in zip(children, cores):
                    c.pin(core)
            run(children, "warm")
            for wl in args.workloads:
                got = {}
                for name in COLUMNS:
                    after, before_ = run(children, f"{name} {wl}")
                    got[name] = (after["wall"], before_["wall"])
                times = ", ".join(f"{name} {a:.2f}/{b:.2f} s" for name, (a, b) in got.items())
                print(f"  round {r + 1}/{args.rounds} {wl}: {times} (after/before)", flush=True)
                row = ratios[wl]
                for name in COLUMNS:
                    row.setdefault(f"{name} after / before", []).append(got[name][0] / got[name][1])
                for k, tree in enumerate(("after", "before")):
                    for other in ("reference", "floor"):
                        ratio = got["lamina"][k] / got[other][k]
                        row.setdefault(f"lamina / {other}, {tree}", []).append(ratio)
        finally:
            for c in children:
                c.close()
    print()
    print("| workload | " + " | ".join(next(iter(ratios.values())).keys()) + " |")
    print("| --- " * (1 + len(next(iter(ratios.values())))) + "|")
    for wl, row in ratios.items():
        print(f"| {wl} | " + " | ".join(spread(v) for v in row.values()) + " |")
    print()
    print("Each cell: the median of the rounds' same-moment ratios (the range in brackets). "
          "reference after / before runs the same code in both children: its distance from 1 is the noise.")
    print(f"During the run: {H.describe_ticks(busy0, H.cpu_ticks(), H.own_cpu_seconds() - own0)}")


if __name__ == "__main__":
    main()
