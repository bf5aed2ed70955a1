"""A small training run for the checkpoint and signal tests, run in a subprocess (not a test module).

    python tests/train_worker.py train FOLDER [--epochs N] [--every K] [--writer W] [--final FILE] [--resume]
                                              [--announce B] [--linger S] [--chunk BYTES] [--pause SECONDS]
    python tests/train_worker.py serve

``train`` runs ``optim.fit`` on a fixed problem (the same one ``problem()`` gives a test in-process),
checkpointing into FOLDER every K batches (0: only after each epoch); with ``--final`` it saves the
trained model and its history to FILE; with ``--announce B`` it prints "at B" to stdout while
doing batch B (counted from the start of fit, 0-based) and lingers there for a moment (S seconds), so that a
test can send a signal during a known batch. ``serve`` is a fork server for many short runs: it imports
lamina once, then reads one JSON command per line on stdin and answers one JSON line on stdout:

    {"do": "train", "folder": ..., "epochs": ..., "every": ..., "writer": ..., "final": ..., "chunk": ...,
    "pause": ...}
        -> {"pid": PID}       a forked child runs the training, then exits (0 on success, 1 on an error)
    {"do": "reap", "pid": PID}
        -> {"signal": N} or {"exit": N}   after the child has ended

A child is only reaped when asked to, so its pid cannot be reused before the test has sent its
signal. ``--writer`` chooses how checkpoint files reach the disk:

    real    lamina's writer, unchanged
    slow    lamina's atomic writer, but the bytes go out in small chunks, each flushed, with a
            pause between them (a slow disk): a kill almost always lands in the middle of a write
    naive   the same slow chunks, written straight to the final path (no temporary file, no
            rename): the fault the atomic writer exists to prevent

Set OPENBLAS_NUM_THREADS=1 (and friends) in the environment: fit also pins BLAS to one thread.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import time
import traceback

import numpy as np

from lamina import layers, losses, optim

SEED = 20240611
N, D, K = 384, 16, 4          # samples, features, classes
BATCH_SIZE = 16               # 24 batches per epoch
KEEP = 4
CHUNK = 256                   # bytes per write of the slow writers
PAUSE = 0.002                 # seconds between chunks


def problem():
    """(model, loss, optimizer, x, y): Gaussian blobs and a small MLP, the same in every process."""
    rng = np.random.default_rng(SEED)
    centers = rng.normal(0, 3, size=(K, D))
    y = rng.integers(0, K, size=N)
    x = (centers[y] + rng.normal(0, 1, size=(N, D))).astype(np.float32)
    model = layers.mlp(rng, [D, 32, K])
    opt = optim.SGD(optim.Cosine(0.05, total=2000), momentum=0.9, nesterov=True, weight_decay=1e-4)
    return model, losses.SoftmaxCrossEntropy(), opt, x, y.astype(np.int64)


class Signpost:
    """The identity on batches; while converting batch ``at`` it prints "at <at>" and sleeps ``linger`` s."""

    def __init__(self, at=None, linger=0.5):
        self.at, self.linger, self.calls = at, linger, -1     # fit's first call is a 1-row probe

    def __repr__(self):                                       # the same for every Signpost: resume accepts it
        return "Signpost()"

    def __call__(self, xb):
        if self.calls == self.at:
            print(f"at {self.at}", flush=True)
            time.sleep(self.linger)
        self.calls += 1
        return xb


def train(folder, epochs, every, final=None, resume=False, announce=None, linger=0.5):
    """fit the problem from a fresh Generator(SEED), checkpointing into ``folder``; save the result to
    ``final``."""
    model, loss, opt, x, y = problem()
    model, history = optim.fit(model, loss, opt, x, y, epochs=epochs, batch_size=BATCH_SIZE,
                               rng=np.random.default_rng(SEED), progress=False, checkpoint=folder,
                               checkpoint_every=every or None, keep=KEEP, resume=folder if resume else None,
                               transform=Signpost(announce, linger))
    if final:
        layers.save(final, model, history=history)
    return model, history


def use_writer(kind, chunk=CHUNK, pause=PAUSE):
    """Replace how model files reach the disk (see the module docstring); "real" changes nothing."""
    if kind == "real":
        return
    if kind not in ("slow", "naive"):
        raise ValueError(f"unknown writer {kind!r}")
    from lamina.layers.files import model_file as files

    write_archive = files.write_archive

    def write_slowly(file, members):
        buffer = io.BytesIO()
        write_archive(buffer, members)
        data = buffer.getvalue()
        for start in range(0, len(data), chunk):
            file.write(data[start:start + chunk])
            file.flush()
            time.sleep(pause)

    files.write_archive = write_slowly
    if kind == "naive":
        def write_in_place(path, write):
            with open(path, "wb") as file:
                write(file)

        files.write_atomically = write_in_place


def serve():
    problem()  # warm up: the children start with everything imported
    for line in sys.stdin:
        command = json.loads(line)
        if command["do"] == "train":
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    use_writer(command["writer"], command.get("chunk", CHUNK), command.get("pause", PAUSE))
                    train(command["folder"], command["epochs"], command["every"], command.get("final"))
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stderr.flush()
                    os._exit(code)
            answer = {"pid": pid}
        elif command["do"] == "reap":
            _, status = os.waitpid(command["pid"], 0)
            answer = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                      else {"exit": os.WEXITSTATUS(status)})
        else:
            answer = {"error": f"unknown command {command!r}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("train")
    run.add_argument("folder")
    run.add_argument("--epochs", type=int, default=3)
    run.add_argument("--every", type=int, default=0)
    run.add_argument("--writer", default="real")
    run.add_argument("--final")
    run.add_argument("--resume", action="store_true")
    run.add_argument("--announce", type=int, help="the batch during which to print 'at B' and linger")
    run.add_argument("--linger", type=float, default=0.5, help="seconds to linger at batch B")
    run.add_argument("--chunk", type=int, default=CHUNK, help="bytes per write of the slow writers")
    run.add_argument("--pause", type=float, default=PAUSE, help="seconds between chunks")
    sub.add_parser("serve")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve()
    else:
        # as when run from a terminal, whatever the parent ignored: Ctrl-C raises, SIGTERM ends the process
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        use_writer(args.writer, args.chunk, args.pause)
        train(args.folder, args.epochs, args.every, args.final, args.resume, args.announce, args.linger)


if __name__ == "__main__":
    main()
