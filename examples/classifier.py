"""The shared command line of the image-classifier examples (mnist.py, fashion_mnist.py)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lamina import data, layers, losses, optim

ACTIVATIONS = {"relu": layers.ReLU, "sigmoid": layers.Sigmoid, "tanh": layers.Tanh}
LOSSES = {"cross-entropy": losses.SoftmaxCrossEntropy, "mse": losses.MSE}
SCHEDULES = ("constant", "step", "cosine")


def parser(description: str, default_out: str) -> argparse.ArgumentParser:
    """Every setting of a run as a flag; the defaults reach 98% on MNIST in well under a minute."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--hidden", type=int, nargs="*", default=[256], metavar="N",
                   help="hidden layer sizes (none: a linear classifier)")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    p.add_argument("--loss", choices=sorted(LOSSES), default="cross-entropy")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (the initial one with a schedule)")
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=optim.threads.parse, default=optim.DEFAULT_THREADS,
                   help="BLAS threads: auto (chosen by timing), a count, or none (left as it is)")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="hold out this part of the training set for validation; 0 monitors the test set")
    p.add_argument("--keep-best", action="store_true", help="return the best-validation model (needs --val-fraction)")
    p.add_argument("--patience", type=int, default=None, help="early stopping (needs --val-fraction)")
    p.add_argument("--out", type=Path, default=Path(default_out), help="where the trained model is saved")
    p.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (one file per epoch)")
    p.add_argument("--resume", type=Path, default=None,
                   help="a checkpoint folder or file to resume from (and to go on checkpointing into)")
    p.add_argument("--plot", action="store_true", help="write training curves and a confusion matrix as PNG")
    p.add_argument("--report", type=Path, default=None, metavar="HTML",
                   help="record layer statistics while training and write an HTML report of the network there")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return p


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Reject settings argparse cannot see are wrong, with the flag's name."""
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be at least 1")
    if not args.lr > 0:
        p.error(f"--lr must be positive, got {args.lr}")
    if not 0 <= args.momentum < 1:
        p.error(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.nesterov and args.momentum == 0:
        args.nesterov = False
    if not 0 <= args.val_fraction < 1:
        p.error(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if (args.keep_best or args.patience) and args.val_fraction == 0:
        p.error("--keep-best and --patience choose by validation: give --val-fraction (the test set is not for choosing)")
    if any(n < 1 for n in args.hidden):
        p.error(f"--hidden sizes must be positive, got {args.hidden}")
    if args.report is not None:  # before training, not after it
        from lamina.diagnostics import check_output_path
        try:
            check_output_path(args.report, "--report")
        except OSError as error:
            p.error(str(error))
    return args


def optimizer(args, steps_per_epoch: int) -> optim.SGD:
    steps = args.epochs * steps_per_epoch
    rate = {"constant": lambda: args.lr,
            "step": lambda: optim.StepDecay(args.lr, 0.5, max(1, steps // 4)),
            "cosine": lambda: optim.Cosine(args.lr, steps)}[args.schedule]()
    return optim.SGD(rate, momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay)


def run(args, load, title: str) -> float:
    """Train, report, save; returns the test accuracy."""
    t0 = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load()
    rng = np.random.default_rng(args.seed)
    if args.val_fraction:
        (x_train, y_train), (x_val, y_val) = data.split(x_train, y_train, args.val_fraction, rng)
    else:
        x_val, y_val = x_test, y_test
    n_classes = int(y_train.max()) + 1
    model = layers.mlp(rng, [x_train.shape[1], *args.hidden, n_classes], activation=ACTIVATIONS[args.activation])
    loss = LOSSES[args.loss]()
    opt = optimizer(args, -(-len(x_train) // args.batch_size))
    print(f"{title}: {len(x_train)} training samples, {len(x_test)} test samples")
    print(model.summary())
    print(f"{loss!r}, {opt!r}, batch size {args.batch_size}, {args.epochs} epochs")
    checkpoint = args.checkpoint
    if checkpoint is None and args.resume is not None:  # a resumed run goes on checkpointing where it was
        checkpoint = args.resume if args.resume.is_dir() else args.resume.parent
    monitor = diagnostics_monitor(args)
    model, history = optim.fit(
        model, loss, opt, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, rng=rng,
        validation=(x_val, y_val), progress=args.progress, checkpoint=checkpoint, resume=args.resume,
        keep_best=args.keep_best, patience=args.patience, threads=args.threads,
        callbacks=[monitor] if monitor else [])
    test = optim.evaluate(model, loss, x_test, y_test, threads=args.threads)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    layers.save(args.out, model, history=history, settings=settings, test=test,
                **({"diagnostics": monitor.records} if monitor else {}))
    print(f"saved the model to {args.out} ({time.perf_counter() - t0:.1f} s in all)")
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


def plot(out: Path, history: dict, model, x_test, y_test, n_classes: int) -> None:
    """Training curves and the test confusion matrix, as PNG files beside the model."""
    try:
        import matplotlib
    except ImportError:
        sys.exit("--plot needs matplotlib: pip install -e '.[plot]'")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

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
    curves = out.with_name(out.stem + "-curves.png")
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
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_xticks(range(n_classes)), ax.set_yticks(range(n_classes))
    fig.colorbar(image)
    fig.tight_layout()
    matrix = out.with_name(out.stem + "-confusion.png")
    fig.savefig(matrix, dpi=100)
    plt.close(fig)
    print(f"wrote {curves} and {matrix}")


def main(argv, load, title: str, default_out: str) -> float:
    p = parser(f"Train an MLP classifier on {title} with lamina.", default_out)
    return run(check_args(p, p.parse_args(argv)), load, title)
