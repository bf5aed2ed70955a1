"""Bring your own arrays: regression on a small real table (442 patients, 10 features), against least squares.

    python examples/diabetes.py
    python examples/diabetes.py --loss huber     # or l1: losses that outliers pull less than MSE

The same layers as the MNIST job, on data that is not images: read a CSV with NumPy,
standardize with the training split's statistics, fit an MLP with MSE (or Huber, or L1), and
compare it with ordinary least squares on the same split. On 442 samples a small MLP only
matches the linear fit (test R^2 about 0.5 for both); a larger one or more epochs overfit,
which the validation loss in the history shows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from command_line import Help, check_outputs, main_guard, plural

from lamina import data, layers, losses, optim

CSV = Path(__file__).with_name("data") / "diabetes.csv"
LOSSES = {"mse": losses.MSE, "huber": losses.Huber, "l1": losses.L1}
ACTIVATIONS = {"tanh": layers.Tanh, "relu": layers.ReLU, "sigmoid": layers.Sigmoid}


def load(path: Path = CSV):
    """(x (442, 10), y (442, 1)) as float32, and the column names."""
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64)
    names = list(table.dtype.names)
    columns = np.column_stack([table[name] for name in names]).astype(np.float32)
    return columns[:, :-1], columns[:, -1:], names


def r2(y, pred) -> float:
    """Coefficient of determination: 1 - SS_res / SS_tot."""
    return float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="MLP regression on the diabetes table, against least squares.",
                                formatter_class=Help)
    p.add_argument("--loss", choices=sorted(LOSSES), default="mse",
                   help="mse; huber (quadratic within --delta of the target, linear beyond); l1 (absolute "
                        "error)")
    p.add_argument("--delta", type=float, default=1.0, help="Huber's delta, in standard deviations of the "
                                                            "target")
    p.add_argument("--hidden", type=int, nargs="*", default=[4], metavar="N", help="hidden layer sizes")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="tanh",
                   help="activation after each hidden layer")
    p.add_argument("--epochs", type=int, default=60, help="passes over the training patients")
    p.add_argument("--batch-size", type=int, default=16, help="patients per training step")
    p.add_argument("--lr", type=float, default=0.003, help="SGD learning rate")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=1e-3, help="L2 penalty added to the gradients")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="part of the patients held out for the test")
    p.add_argument("--seed", type=int, default=0, help="seed of the one generator: split, weights, shuffles")
    p.add_argument("--out", type=Path, default=None, help="save the trained model there (default: not saved)")
    p.add_argument("--report", type=Path, default=None, metavar="HTML",
                   help="record layer statistics while training and write an HTML report there (default: "
                        "none)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or any(n < 1 for n in args.hidden):
        p.error("--epochs, --batch-size and --hidden sizes must be at least 1")
    if not args.lr > 0 or not args.delta > 0:
        p.error("--lr and --delta must be positive")
    if not 0 <= args.momentum < 1 or args.weight_decay < 0:
        p.error("--momentum must be in [0, 1) and --weight-decay at least 0")
    if not 0 < args.test_fraction < 1:
        p.error(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    check_outputs(p, {"--out": args.out, "--report": args.report})
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    x, y, names = load()
    rng = np.random.default_rng(args.seed)
    (x_train, y_train), (x_test, y_test) = data.split(x, y, args.test_fraction, rng)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    y_mean, y_std = y_train.mean(), y_train.std()

    def scale_x(v):
        return (v - mean) / std

    def scale_y(v):
        return (v - y_mean) / y_std

    model = layers.mlp(rng, [x.shape[1], *args.hidden, 1], activation=ACTIVATIONS[args.activation])
    loss = losses.Huber(args.delta) if args.loss == "huber" else LOSSES[args.loss]()
    opt = optim.SGD(args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    monitor = None
    if args.report is not None:
        from lamina.diagnostics import Monitor
        monitor = Monitor()
    model, history = optim.fit(model, loss, opt, scale_x(x_train), scale_y(y_train),
                               epochs=args.epochs, batch_size=args.batch_size, rng=rng,
                               validation=(scale_x(x_test), scale_y(y_test)), progress=False,
                               callbacks=[monitor] if monitor else [])
    mlp_pred = model(scale_x(x_test)) * y_std + y_mean

    design = np.column_stack([scale_x(x_train), np.ones(len(x_train))])
    coef, *_ = np.linalg.lstsq(design, y_train, rcond=None)
    ols_pred = np.column_stack([scale_x(x_test), np.ones(len(x_test))]) @ coef

    result = {"mlp_r2": r2(y_test, mlp_pred), "least_squares_r2": r2(y_test, ols_pred),
              "mlp_mae": float(np.mean(np.abs(y_test - mlp_pred))),
              "least_squares_mae": float(np.mean(np.abs(y_test - ols_pred)))}
    print(f"features: {', '.join(names[:-1])}; target: {names[-1]}")
    print(f"{len(x_train)} training and {len(x_test)} test patients; {model.summary().splitlines()[-1]}")
    print(f"{loss!r}, {plural(args.epochs, 'epoch')}: final training loss (standardized) "
          f"{history['loss'][-1]:.4f}, validation {history['val_loss'][-1]:.4f}")
    if args.out is not None:
        layers.save(args.out, model, history=history, test=result,
                    settings={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    **({"diagnostics": monitor.records} if monitor else {}))
        print(f"saved the model to {args.out}")
    if monitor:
        from lamina import diagnostics
        diagnostics.report(args.report, model, history=history, records=monitor.records,
                           data=(scale_x(x_test), scale_y(y_test)),
                           title="Diabetes: what the network is doing")
        print(f"wrote the report to {args.report}")
    print(f"test mean absolute error: MLP {result['mlp_mae']:.1f}, least squares "
          f"{result['least_squares_mae']:.1f}")
    print(f"test R^2: MLP {result['mlp_r2']:.3f}, least squares {result['least_squares_r2']:.3f}")
    return result


if __name__ == "__main__":
    main_guard(lambda: main(sys.argv[1:]))
