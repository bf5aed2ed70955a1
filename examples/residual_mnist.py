"""A residual MLP with batch norm and dropout on MNIST: a template for your own architecture.

    pip install -e . && python examples/residual_mnist.py        # about 98.8% test accuracy, 1-2 minutes
    python examples/residual_mnist.py --blocks 3 --width 512 --dropout 0.3
    python examples/residual_mnist.py --help                     # every setting, with its default

Read it top to bottom: the model is written out with layers.Sequence and layers.Residual, so you
can change any piece (another block, a LayerNorm, a Concat of two branches) and train it the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from command_line import Help, Position, check_outputs, epoch_lines, interrupted, main_guard

from lamina import data, layers, losses, optim


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train a residual MLP with BatchNorm and Dropout on MNIST.",
                                formatter_class=Help)
    p.add_argument("--width", type=int, default=256, help="features inside the network")
    p.add_argument("--blocks", type=int, default=2, help="residual blocks")
    p.add_argument("--dropout", type=float, default=0.2, help="dropout rate inside each block")
    p.add_argument("--epochs", type=int, default=15, help="passes over the training samples")
    p.add_argument("--batch-size", type=int, default=128, help="samples per training step")
    p.add_argument("--lr", type=float, default=0.1, help="initial learning rate (cosine decay to 0)")
    p.add_argument("--momentum", type=float, default=0.9, help="Nesterov momentum")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="L2 penalty added to the gradients")
    p.add_argument("--val-size", type=int, default=5000, help="training samples held out for validation")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training samples only "
                                                           "(quick runs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the one generator: weights, split, shuffles, "
                                                       "dropout")
    p.add_argument("--threads", type=optim.threads.parse, default=optim.DEFAULT_THREADS,
                   help="BLAS threads: auto (chosen by timing), a count, or none (left as it is)")
    p.add_argument("--out", type=Path, default=Path("residual-mnist.npz"),
                   help="where the trained model is saved (its folder is made when missing)")
    p.add_argument("--report", type=Path, default=None, metavar="HTML",
                   help="record layer statistics while training and write an HTML report of the network "
                        "there (default: none)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="hide the progress bars; the per-epoch lines stay (default: bars shown)")
    args = p.parse_args(argv)
    if min(args.width, args.epochs, args.batch_size) < 1 or args.blocks < 0:
        p.error("--width, --epochs and --batch-size must be at least 1, --blocks at least 0")
    if not 0 <= args.dropout < 1:
        p.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.limit is not None and args.limit < 1:
        p.error(f"--limit must be at least 1, got {args.limit}")
    check_outputs(p, {"--out": args.out, "--report": args.report})   # before training, not after it
    return args


def block(rng, width: int, dropout: float) -> layers.Sequence:
    """x -> relu(x + F(x)), with F = Dense, BatchNorm, ReLU, Dropout, Dense, BatchNorm (a ResNet block, made
    flat)."""
    return layers.Sequence([
        layers.Residual(layers.Sequence([
            layers.Dense.init(rng, width, width),
            layers.BatchNorm.init(width),
            layers.ReLU(),
            layers.Dropout(dropout),
            layers.Dense.init(rng, width, width),
            layers.BatchNorm.init(width),
        ])),
        layers.ReLU(),
    ])


def build(rng, n_in: int, width: int, blocks: int, dropout: float, n_classes: int) -> layers.Sequence:
    """The stem (Dense, BatchNorm, ReLU), the residual blocks, and the classifier head."""
    return layers.Sequence([
        layers.Dense.init(rng, n_in, width),
        layers.BatchNorm.init(width),
        layers.ReLU(),
        *[block(rng, width, dropout) for _ in range(blocks)],
        layers.Dropout(dropout),
        layers.Dense.init(rng, width, n_classes),
    ])


def main(argv=None) -> float:
    args = parse_args(argv)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)

    # the data: MNIST ships with lamina; hold out a validation set from the training samples
    (x_train, y_train), (x_test, y_test) = data.mnist()
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    order = rng.permutation(len(x_train))
    n_val = min(args.val_size, len(x_train) // 5)
    x_val, y_val = x_train[order[:n_val]], y_train[order[:n_val]]
    x_train, y_train = x_train[order[n_val:]], y_train[order[n_val:]]

    # the model, the loss and the optimizer
    model = build(rng, x_train.shape[1], args.width, args.blocks, args.dropout, n_classes=10)
    print(model.summary())
    loss = losses.SoftmaxCrossEntropy()
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    opt = optim.SGD(optim.Cosine(args.lr, steps), momentum=args.momentum, nesterov=True,
                    weight_decay=args.weight_decay)

    # training: BatchNorm uses batch statistics and Dropout draws its masks from rng; evaluation
    # (validation, test, model(x)) runs in inference mode with the running statistics, no dropout
    monitor = None
    if args.report is not None:
        from lamina.diagnostics import Monitor
        monitor = Monitor()
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    position = Position()
    try:
        model, history = optim.fit(model, loss, opt, x_train, y_train, epochs=args.epochs,
                                   batch_size=args.batch_size, rng=rng, validation=(x_val, y_val),
                                   progress=args.progress, threads=args.threads,
                                   callbacks=[*([monitor] if monitor else []), position,
                                              *epoch_lines(args.progress)])
    except optim.TrainingInterrupted as stop:   # Ctrl-C: keep what was trained
        interrupted(stop, position, out=args.out, script=sys.argv[0], argv=sys.argv[1:],
                    save=lambda path, model, history: layers.save(path, model, history=history,
                                                                  settings=settings,
                                                                  interrupted=True),
                    not_resumable="this example writes no checkpoints: train again to go on "
                                  "(examples/mnist.py shows --checkpoint and --resume)")
    test = optim.evaluate(model, loss, x_test, y_test, threads=args.threads)
    layers.save(args.out, model, history=history, test=test, settings=settings,
                **({"diagnostics": monitor.records} if monitor else {}))
    print(f"{len(x_train)} training samples, {n_val} for validation (val_accuracy "
          f"{history['val_accuracy'][-1]:.4f}); saved to {args.out} ({time.perf_counter() - started:.0f} s "
          "in all)")
    if monitor:
        from lamina import diagnostics
        diagnostics.report(args.report, model, history=history, records=monitor.records,
                           data=(x_test, y_test),
                           image_shape=(28, 28), title="Residual MLP on MNIST: what the network is doing")
        print(f"wrote the report to {args.report}")
    print(f"test accuracy: {test['accuracy']:.4f}")
    return test["accuracy"]


if __name__ == "__main__":
    main_guard(main)
