"""The shared command line of the image-classifier examples (mnist.py, fashion_mnist.py)."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time
from pathlib import Path

import attrs
import numpy as np
from command_line import (Help, Position, check_matplotlib, check_outputs, epoch_lines, interrupted,
                          main_guard,
                          plural, resume_command)

from lamina import data, layers, losses, optim

ACTIVATIONS = {"relu": layers.ReLU, "sigmoid": layers.Sigmoid, "tanh": layers.Tanh}
LOSSES = {"cross-entropy": losses.SoftmaxCrossEntropy, "mse": losses.MSE}
SCHEDULES = ("constant", "step", "cosine")
# the defaults of each optimizer that train the main job's MLP well (8 epochs, cosine schedule: 98%+)
OPTIMIZERS = {"sgd": {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0},
              "adam": {"lr": 1e-3, "weight_decay": 0.0},
              "adamw": {"lr": 1e-3, "weight_decay": 1e-2},
              "rmsprop": {"lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0}}


def _per_optimizer(key: str) -> str:
    return "default: " + ", ".join(f"{name} {d[key]:g}" for name, d in OPTIMIZERS.items() if key in d)


@attrs.frozen
class CosineRestarts:
    """lr(t) = initial (1 + cos(pi (t mod period) / period)) / 2: a cosine from ``initial`` down to 0 over
    each ``period`` steps, then again from ``initial`` (SGDR's warm restarts). Within one period:
    ``optim.Cosine``."""

    initial: float
    period: int

    def __call__(self, step: int) -> float:
        return float(self.initial * (1 + math.cos(math.pi * (step % self.period) / self.period)) / 2)


def parser(description: str, default_out: str) -> argparse.ArgumentParser:
    """Every setting of a run as a flag; the defaults reach 98% on MNIST in well under a minute."""
    p = argparse.ArgumentParser(description=description, formatter_class=Help, epilog=EPILOG)
    p.add_argument("--hidden", type=int, nargs="*", default=[256], metavar="N",
                   help="hidden layer sizes (none: a linear classifier)")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu",
                   help="activation after each hidden layer")
    p.add_argument("--loss", choices=sorted(LOSSES), default="cross-entropy", help="the loss trained on")
    p.add_argument("--epochs", type=int, default=8, help="passes over the training samples (the total, also "
                                                         "on resume)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per training step")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd", help="the update rule")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (the initial one with a schedule; {_per_optimizer('lr')})")
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                   help="learning-rate schedule: cosine decays to 0 over --schedule-epochs, then restarts; "
                        "step halves the rate every quarter of --schedule-epochs")
    p.add_argument("--schedule-epochs", type=int, default=None, metavar="N",
                   help="the epochs the schedule spans (default: --epochs; on --resume, the resumed run's). "
                        "Fixed for a run, so that a finished run can be extended: --epochs 16 --resume "
                        "FOLDER after 8 epochs trains 8 more with the cosine restarted (extend by whole "
                        "spans: in between, the rate has not decayed yet)")
    p.add_argument("--momentum", type=float, default=None,
                   help=f"momentum (sgd and rmsprop; {_per_optimizer('momentum')})")
    p.add_argument("--no-nesterov", dest="nesterov", action="store_false",
                   help="plain momentum instead of Nesterov's (sgd; default: Nesterov momentum)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help=f"L2 penalty (adamw: decoupled weight decay; {_per_optimizer('weight_decay')})")
    p.add_argument("--clip-norm", type=float, default=None,
                   help="clip the gradients' global L2 norm to this before each update (default: no "
                        "clipping)")
    p.add_argument("--seed", type=int, default=0, help="seed of the one generator: weights, split, shuffles")
    p.add_argument("--threads", type=optim.threads.parse, default=optim.DEFAULT_THREADS,
                   help="BLAS threads: auto (chosen by timing), a count, or none (left as it is)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="train on the first N training samples only, for quick runs (default: all)")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="hold out this part of the training set for validation; 0 monitors the test set")
    p.add_argument("--keep-best", action="store_true",
                   help="return the best-validation model (needs --val-fraction; default: the last model)")
    p.add_argument("--patience", type=int, default=None,
                   help="stop after this many epochs without a better val_loss (needs --val-fraction; "
                        "default: no early stopping)")
    p.add_argument("--out", type=Path, default=Path(default_out),
                   help="where the trained model is saved (its folder is made when missing)")
    p.add_argument("--checkpoint", type=Path, default=None, metavar="FOLDER",
                   help="write a checkpoint into FOLDER after every epoch and on Ctrl-C (default: none)")
    p.add_argument("--resume", type=Path, default=None, metavar="FOLDER",
                   help="go on from the newest checkpoint in FOLDER (or a checkpoint file) and keep "
                        "checkpointing there (default: a fresh run)")
    p.add_argument("--plot", action="store_true",
                   help="write training curves and a confusion matrix as PNG beside --out (default: off)")
    p.add_argument("--report", type=Path, default=None, metavar="HTML",
                   help="record layer statistics while training and write an HTML report of the network "
                        "there (default: none)")
    p.add_argument("--onnx", type=Path, default=None, metavar="FILE",
                   help="also write the model as an ONNX file (needs pip install onnx; default: none)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="hide the progress bars; the per-epoch lines stay (default: bars shown)")
    return p


EPILOG = """Ctrl-C stops at the next batch, saves the model trained so far to --out and, with --checkpoint,
prints the command that goes on from the checkpoint. To extend a finished run, resume it with more --epochs:
the schedule keeps the span of the first run (--schedule-epochs) and the cosine restarts from --lr, so extend
by whole spans (--epochs 16 after 8); a run that may be extended by less can plan for it with a longer
--schedule-epochs, or use --schedule step."""


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Reject settings argparse cannot see are wrong, with the flag's name; fill in the per-optimizer
    defaults."""
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be at least 1")
    if args.schedule_epochs is not None and args.schedule_epochs < 1:
        p.error(f"--schedule-epochs must be at least 1, got {args.schedule_epochs}")
    if args.limit is not None and args.limit < 1:
        p.error(f"--limit must be at least 1, got {args.limit}")
    defaults = OPTIMIZERS[args.optimizer]
    if args.momentum is not None and "momentum" not in defaults:
        p.error(f"--momentum applies to sgd and rmsprop, not {args.optimizer} (its betas are fixed at 0.9, "
                "0.999)")
    for key in ("lr", "momentum", "weight_decay"):
        if getattr(args, key) is None and key in defaults:
            setattr(args, key, defaults[key])
    if not args.lr > 0:
        p.error(f"--lr must be positive, got {args.lr}")
    if args.momentum is not None and not 0 <= args.momentum < 1:
        p.error(f"--momentum must be in [0, 1), got {args.momentum}")
    if not args.weight_decay >= 0:
        p.error(f"--weight-decay must be at least 0, got {args.weight_decay}")
    if args.clip_norm is not None and not args.clip_norm > 0:
        p.error(f"--clip-norm must be positive, got {args.clip_norm}")
    if args.optimizer != "sgd" or not args.momentum:
        args.nesterov = False
    if not 0 <= args.val_fraction < 1:
        p.error(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if (args.keep_best or args.patience) and args.val_fraction == 0:
        p.error("--keep-best and --patience choose by validation: give --val-fraction (the test set is not "
                "for choosing)")
    if any(n < 1 for n in args.hidden):
        p.error(f"--hidden sizes must be positive, got {args.hidden}")
    # every output is checked before training (a folder that is missing is made), not after it
    check_outputs(p, {"--out": args.out, "--report": args.report, "--onnx": args.onnx})
    if args.onnx is not None and importlib.util.find_spec("onnx") is None:
        p.error("--onnx needs the onnx package: pip install onnx (or pip install -e '.[onnx]')")
    if args.plot:
        check_matplotlib(p)
        check_outputs(p, {"--plot": plot_paths(args.out)[0]})
    return args


def optimizer(args, steps_per_epoch: int):
    """The optimizer of the flags; the schedule spans --schedule-epochs (else --epochs) epochs."""
    span = steps_per_epoch * (args.schedule_epochs or args.epochs)
    rate = {"constant": lambda: args.lr,
            "step": lambda: optim.StepDecay(args.lr, 0.5, max(1, span // 4)),
            "cosine": lambda: CosineRestarts(args.lr, span)}[args.schedule]()
    common = {"weight_decay": args.weight_decay, "clip_norm": args.clip_norm}
    if args.optimizer == "sgd":
        return optim.SGD(rate, momentum=args.momentum, nesterov=args.nesterov, **common)
    if args.optimizer == "rmsprop":
        return optim.RMSprop(rate, momentum=args.momentum, **common)
    return {"adam": optim.Adam, "adamw": optim.AdamW}[args.optimizer](rate, **common)


class RunSettings:
    """A fit callback that only carries the command line into the checkpoints (its ``state()``), so that a
    resumed run knows the first run's flags: the schedule's span, and the command to show when the settings
    differ."""

    def __init__(self, script: str, argv: list[str], schedule_epochs: int):
        self.saved = {"script": script, "argv": list(argv), "schedule_epochs": schedule_epochs}

    def on_train_begin(self, run) -> None:
        pass

    def state(self) -> dict:
        return self.saved

    def load_state(self, state) -> None:
        pass


def stored_settings(checkpoint) -> dict | None:
    """The RunSettings a checkpoint of this example carries (None for a checkpoint written otherwise)."""
    states = checkpoint.callbacks or []
    first = states[0] if states else None
    return first if isinstance(first, dict) and "argv" in first else None


def first_command(stored: dict | None) -> str:
    """ (it was started with: python ...)" when the checkpoint says so."""
    if stored is None:
        return ""
    import shlex
    return f" (it was started as: {shlex.join(['python', stored['script'], *stored['argv']])})"


def checkpoint_plan(p: argparse.ArgumentParser, args):
    """Before any work: the checkpoint folder and the checkpoint resumed from (or None), with errors that name
    flags."""
    folder = args.checkpoint
    if folder is not None:   # made now, before any work: fit would make it only after loading the data
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            p.error(f"--checkpoint {folder}: cannot make the folder: {error.strerror or error}")
        if not os.access(folder, os.W_OK | os.X_OK):
            p.error(f"--checkpoint {folder}: no permission to write in the folder")
    if args.resume is None:
        if folder is not None and folder.is_dir() and any(folder.glob("checkpoint-*.npz")):
            try:
                old = optim.load_checkpoint(folder)
                what = (f"holds a finished run ({plural(old.epoch, 'epoch')})" if old.position == 0 else
                        f"holds a run stopped in epoch {old.epoch + 1}") + first_command(stored_settings(old))
            except (OSError, ValueError):
                what = "holds checkpoints of another run"
            p.error(f"--checkpoint {folder} {what}. To go on from it, give --resume {folder} (with more "
                    "--epochs to extend a finished run); to start afresh, give another --checkpoint FOLDER "
                    f"(or delete {folder})")
        return folder, None
    try:
        ckpt = optim.load_checkpoint(args.resume)
    except (OSError, ValueError) as error:
        p.error(f"--resume {args.resume}: {error}")
    stored = stored_settings(ckpt)
    if args.schedule_epochs is None:
        args.schedule_epochs = stored["schedule_epochs"] if stored else args.epochs
    if ckpt.epoch >= args.epochs:
        status = (f"has finished its {plural(ckpt.epoch, 'epoch')}" if ckpt.epoch == args.epochs else
                  f"is past --epochs {args.epochs}: it has finished {plural(ckpt.epoch, 'epoch')}")
        p.error(f"--resume {args.resume}: the run {status} (--epochs is the total, counting the epochs "
                f"before the checkpoint). To extend it, give more --epochs, e.g. --epochs {ckpt.epoch + 2} "
                f"--resume {args.resume} (the schedule keeps its span of "
                f"{plural(args.schedule_epochs, 'epoch')} and the cosine restarts); to start afresh, leave "
                "out --resume and give another --checkpoint FOLDER")
    if folder is None:  # a resumed run goes on checkpointing where it was
        folder = args.resume if args.resume.is_dir() else args.resume.parent
    return folder, ckpt


def run(args, load, title: str, *, script: str = "examples/mnist.py", argv=(), p=None) -> float:
    """Train, report, save; returns the test accuracy."""
    p = p or parser(title, str(args.out))
    folder, resumed = checkpoint_plan(p, args)
    t0 = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load()
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    rng = np.random.default_rng(args.seed)
    if args.val_fraction:
        (x_train, y_train), (x_val, y_val) = data.split(x_train, y_train, args.val_fraction, rng)
    else:
        x_val, y_val = x_test, y_test
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    model = layers.mlp(rng, [x_train.shape[1], *args.hidden, n_classes],
                       activation=ACTIVATIONS[args.activation])
    loss = LOSSES[args.loss]()
    batches = -(-len(x_train) // args.batch_size)
    opt = optimizer(args, batches)
    print(f"{title}: {len(x_train)} training samples, {len(x_test)} test samples")
    print(model.summary())
    print(f"{loss!r}, {opt!r}, batch size {args.batch_size}, {plural(args.epochs, 'epoch')}")
    if resumed is not None:
        start = f"after batch {resumed.position} of {batches}" if resumed.position else "from its first batch"
        print(f"resuming from {resumed.path}: epoch {resumed.epoch + 1} of {args.epochs}, {start}")
    monitor = diagnostics_monitor(args)
    position = Position()
    callbacks = [RunSettings(script, list(argv), args.schedule_epochs or args.epochs),
                 *([monitor] if monitor else []),
                 position, *epoch_lines(args.progress)]
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}

    def save(path, model, history, **extra):
        layers.save(path, model, history=history, settings=settings, **extra,
                    **({"diagnostics": monitor.records} if monitor else {}))

    try:
        model, history = optim.fit(
            model, loss, opt, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, rng=rng,
            validation=(x_val, y_val), progress=args.progress, checkpoint=folder,
            resume=resumed and resumed.path,
            keep_best=args.keep_best, patience=args.patience, threads=args.threads, callbacks=callbacks)
    except optim.TrainingInterrupted as stop:
        interrupted(stop, position, out=args.out, script=script, argv=list(argv),
                    save=lambda path, model, history: save(path, model, history, interrupted=True))
    except ValueError as error:
        if not str(error).startswith("cannot resume from"):
            raise
        stored = stored_settings(resumed)
        again = resume_command(stored["script"], stored["argv"], folder) if stored else None
        hint = (f"resume with the flags of the run that wrote it: {again}" if again else
                "resume with the flags of the run that wrote it (--schedule-epochs: its --epochs)")
        p.exit(2, f"{p.prog}: error: {error}\n{hint}; with more --epochs to extend it\n")
    test = optim.evaluate(model, loss, x_test, y_test, threads=args.threads)
    save(args.out, model, history, test=test)
    print(f"saved the model to {args.out} ({time.perf_counter() - t0:.1f} s in all)")
    if args.onnx:
        layers.export_onnx(model, args.onnx, x_test.shape[1:])
        print(f"wrote the ONNX file {args.onnx}")
    if args.plot:
        plot(args.out, history, model, x_test, y_test, n_classes)
    if monitor:
        write_report(args.report, model, history, monitor.records, x_test, y_test, title)
    print(f"test accuracy: {test['accuracy']:.4f}")
    return test["accuracy"]


def diagnostics_monitor(args):
    """The layer-statistics recorder of --report (None without it)."""
    if args.report is None:
        return None
    from lamina.diagnostics import Monitor
    return Monitor()


def write_report(path: Path, model, history: dict, records: dict, x_test, y_test, title: str) -> None:
    """The HTML report of --report: training, layer statistics, and the test set's pictures."""
    from lamina import diagnostics
    side = int(np.sqrt(x_test.shape[1]))
    image_shape = (side, side) if side * side == x_test.shape[1] else None
    diagnostics.report(path, model, history=history, records=records, data=(x_test, y_test),
                       image_shape=image_shape, title=f"{title}: what the network is doing")
    print(f"wrote the report to {path} ({path.stat().st_size / 1e6:.2f} MB)")


def plot_paths(out: Path) -> tuple[Path, Path]:
    """The PNG files of --plot: the training curves and the confusion matrix, beside the model."""
    out = Path(out)
    return out.with_name(out.stem + "-curves.png"), out.with_name(out.stem + "-confusion.png")


def plot(out: Path, history: dict, model, x_test, y_test, n_classes: int) -> None:
    """Training curves and the test confusion matrix, as PNG files beside the model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    curves, matrix = plot_paths(out)
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "val_loss"):
        left.plot(epochs, history[key], marker="o", label=key)
    for key in ("accuracy", "val_accuracy"):
        if key in history:
            right.plot(epochs, history[key], marker="o", label=key)
    for ax, name in ((left, "loss"), (right, "accuracy")):
        ax.set_xlabel("epoch"), ax.set_ylabel(name), ax.legend(), ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(curves, dpi=100)
    plt.close(fig)

    predicted = model(x_test).argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y_test, predicted), 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, count, ha="center", va="center", fontsize=7,
                color="white" if count > confusion.max() / 2 else "black")
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    ax.set_xticks(range(n_classes)), ax.set_yticks(range(n_classes))
    fig.colorbar(image)
    fig.tight_layout()
    fig.savefig(matrix, dpi=100)
    plt.close(fig)
    print(f"wrote {curves} and {matrix}")


def main(argv, load, title: str, default_out: str, script: str | None = None) -> float:
    """The command line of ``script`` (shown in the command to resume after Ctrl-C)."""
    argv = list(argv)
    p = parser(f"Train an MLP classifier on {title} with lamina.", default_out)
    args = check_args(p, p.parse_args(argv))
    return run(args, load, title, script=script or sys.argv[0], argv=argv, p=p)


def script_main(load, title: str, default_out: str) -> None:
    """``python examples/NAME.py ...``: main with the script's own path, Ctrl-C outside training ending
    quietly."""
    main_guard(lambda: main(sys.argv[1:], load, title, default_out, script=sys.argv[0]))
